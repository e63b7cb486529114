"""Grid-transform sequences of displacement fields (CMRMotion DVFs) on the slicer-core wheel."""
import numpy as np
import pytest
import slicer  # noqa: F401  (fails loudly without the test wheel)

from cmrlib import Image
from cmrlib.mrml import (browser_node_for, displacement_from_grid_transform, grid_transform_sequence_from_displacements,
                         lps_to_ras, new_scene)
from conftest import oblique_direction

pytestmark = pytest.mark.mrml


def test_grid_transform_sequence_round_trip_and_maps_points(rng):
    grid = Image(np.zeros((1, 12, 16)), (1.5, 1.4, 8.0), (10.0, -20.0, 30.0), oblique_direction())
    fields = rng.normal(0, 2.0, (3, 1, 12, 16, 3))
    scene = new_scene()
    seq = grid_transform_sequence_from_displacements(scene, fields, grid, "DVF", [100.0, 180.0, 1100.0])
    assert seq.GetNumberOfDataNodes() == 3 and browser_node_for(seq) is not None
    for k in range(3):
        node = seq.GetNthDataNode(k)
        assert np.allclose(displacement_from_grid_transform(node, grid), fields[k], atol=1e-9)
        # a grid point x (LPS) is mapped to x + d(x): Slicer's "from parent" resampling direction
        ijk = np.array([5.0, 7.0, 0.0])
        x_lps = grid.index_to_lps(ijk)
        mapped = node.GetTransformFromParent().TransformPoint(*lps_to_ras(x_lps))
        assert np.allclose(mapped, lps_to_ras(x_lps + fields[k][0, 7, 5]), atol=1e-6)

"""Label arrays <-> vtkMRMLSegmentationNode on the real slicer-core libraries."""
from __future__ import annotations

import numpy as np
import pytest
import slicer  # plain import: a missing slicer-core wheel must fail, not skip
import vtk

from cmrlib import Image, InputError
from cmrlib.mrml import (labels_from_segmentation_node, load_segmentation, new_scene, save_node,
                         segmentation_node_from_labels)
from conftest import oblique_direction

pytestmark = pytest.mark.mrml

TABLE = {0: ("background", (0.0, 0.0, 0.0)),
         1: ("myocardium", (0.8, 0.2, 0.2)),
         2: ("blood pool", (0.2, 0.3, 0.9)),
         3: ("scar", (1.0, 1.0, 0.0))}


def _reference() -> Image:
    return Image(np.zeros((5, 12, 16), np.float32), (1.4, 1.6, 8.0), (12.5, -30.25, 41.0), oblique_direction())


def _labels(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 4, size=(5, 12, 16)).astype(np.int32)  # touches every border of the grid


def _segments(node) -> list[tuple[str, str, tuple[float, ...], int]]:
    s = node.GetSegmentation()
    return [(s.GetNthSegmentID(i), s.GetNthSegment(i).GetName(), s.GetNthSegment(i).GetColor(),
             s.GetNthSegment(i).GetLabelValue()) for i in range(s.GetNumberOfSegments())]


def test_round_trip_exact_labels_names_and_colours(rng):
    scene = new_scene()
    labels = _labels(rng)
    node = segmentation_node_from_labels(scene, labels, _reference(), TABLE, "myocardium segmentation")
    assert node.IsA("vtkMRMLSegmentationNode") and node.GetScene() is scene and node.GetDisplayNode() is not None
    assert _segments(node) == [(f"label_{v}", name, pytest.approx(color), v)
                               for v, (name, color) in TABLE.items() if v]
    assert node.GetSegmentation().GetNumberOfLayers() == 1  # one shared labelmap, as Slicer stores it
    back = labels_from_segmentation_node(node, _reference(), TABLE)
    assert back.shape == labels.shape and back.dtype == np.uint8
    np.testing.assert_array_equal(back, labels)


def test_segment_voxels_are_where_the_reference_grid_says(rng):
    scene = new_scene()
    labels = np.zeros((5, 12, 16), np.uint8)
    labels[3, 7, 11] = 3
    node = segmentation_node_from_labels(scene, labels, _reference(), TABLE, "seg")
    binary = slicer.vtkOrientedImageData()
    node.GetBinaryLabelmapRepresentation("label_3", binary)
    m = vtk.vtkMatrix4x4()
    binary.GetImageToWorldMatrix(m)
    ras = np.array(m.MultiplyPoint((11, 7, 3, 1)))[:3]
    np.testing.assert_allclose(ras, _reference().index_to_lps([11, 7, 3]) * [-1, -1, 1], atol=1e-9)


def test_save_and_load_seg_nrrd(rng, tmp_path):
    scene = new_scene()
    labels = _labels(rng)
    path = save_node(segmentation_node_from_labels(scene, labels, _reference(), TABLE, "seg"),
                     tmp_path / "seg.seg.nrrd")
    other = new_scene()
    loaded = load_segmentation(other, path)
    assert [s[1:] for s in _segments(loaded)] == [(name, pytest.approx(color), v)
                                                  for v, (name, color) in TABLE.items() if v]
    np.testing.assert_array_equal(labels_from_segmentation_node(loaded, _reference(), TABLE), labels)


def test_segments_are_found_by_name_with_any_label_values(rng):
    # a segmentation made in Slicer: its own IDs and label values, segments named as in the table
    scene = new_scene()
    labels = _labels(rng)
    node = segmentation_node_from_labels(scene, labels, _reference(), TABLE, "seg")
    renumbered = {10: ("myocardium", (1.0, 0.0, 0.0)), 20: ("blood pool", (0.0, 0.0, 1.0)),
                  30: ("scar", (1.0, 1.0, 0.0))}
    back = labels_from_segmentation_node(node, _reference(), renumbered)
    np.testing.assert_array_equal(back, labels * 10)


def test_absent_table_entries_stay_zero_but_no_match_is_an_error(rng):
    scene = new_scene()
    labels = _labels(rng)
    node = segmentation_node_from_labels(scene, labels, _reference(), TABLE, "seg")
    only_scar = {3: ("scar", (1.0, 1.0, 0.0)), 4: ("oedema", (0.0, 1.0, 0.0))}
    np.testing.assert_array_equal(labels_from_segmentation_node(node, _reference(), only_scar),
                                  np.where(labels == 3, 3, 0))
    with pytest.raises(InputError, match="none of the segments"):
        labels_from_segmentation_node(node, _reference(), {1: ("left atrium", (0.0, 1.0, 0.0))})


def test_resampled_onto_another_grid_through_a_transform(rng):
    scene = new_scene()
    labels = _labels(rng)
    reference = _reference()
    node = segmentation_node_from_labels(scene, labels, reference, TABLE, "seg")
    # move the segmentation by exactly one column step: labels shift by one column
    step_ras = reference.direction[:, 0] * reference.spacing[0] * [-1, -1, 1]
    transform = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "one column")
    m = vtk.vtkMatrix4x4()
    for r in range(3):
        m.SetElement(r, 3, float(step_ras[r]))
    transform.SetMatrixTransformToParent(m)
    node.SetAndObserveTransformNodeID(transform.GetID())
    back = labels_from_segmentation_node(node, reference, TABLE)
    np.testing.assert_array_equal(back[:, :, 1:], labels[:, :, :-1])
    assert not back[:, :, 0].any()


def test_bad_inputs_are_refused(rng):
    scene = new_scene()
    labels = _labels(rng)
    with pytest.raises(InputError, match="not in the label table"):
        segmentation_node_from_labels(scene, labels, _reference(), {1: ("myocardium", (1, 0, 0))}, "seg")
    with pytest.raises(InputError, match="reference grid"):
        segmentation_node_from_labels(scene, labels[:, :, :8], _reference(), TABLE, "seg")
    with pytest.raises(InputError, match="0..1"):
        segmentation_node_from_labels(scene, labels, _reference(), {**TABLE, 3: ("scar", (255, 255, 0))}, "seg")
    with pytest.raises(InputError, match="integer"):
        segmentation_node_from_labels(scene, labels.astype(float), _reference(), TABLE, "seg")
    assert scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode") == 0


def test_single_slice_reference_accepts_2d_labels(rng):
    reference = Image(np.zeros((12, 16)), (1.4, 1.6, 8.0), (0.0, 0.0, 0.0))
    labels = rng.integers(0, 3, size=(12, 16))
    node = segmentation_node_from_labels(new_scene(), labels, reference, TABLE, "seg")
    np.testing.assert_array_equal(labels_from_segmentation_node(node, reference, TABLE), labels[None])

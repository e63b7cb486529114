"""CMRSegmentation landmarks adapter headless on slicer-core: result folder → markups per slice + segment map."""
import json

import numpy as np
import pytest
import slicer  # noqa: F401

from cmrlib import Image
from cmrlib.errors import InputError
from cmrlib.mrml import image_from_volume_node, new_scene, points_from_markups_node
from CMRSegmentationLib.landmarks import LV_LABEL, RV_LABEL, outputs_to_nodes

pytestmark = pytest.mark.mrml


def _outputs():
    seg = np.zeros((2, 6, 5), np.uint8)
    seg[0, 2:4, 1:3] = 7
    seg[0, 2:4, 3:5] = 8
    segments = Image(seg, (1.5, 1.5, 8.0), (-20.0, 10.0, 30.0), np.eye(3))
    slices = [{"index": 0, "lv_centre_px": [2.0, 3.0], "rv_insertion_px": [1.0, 1.0],
               "lv_centre_lps": [-17.0, 14.5, 30.0], "rv_insertion_lps": [-18.5, 11.5, 30.0], "confidence": 0.9,
               "reason": None},
              {"index": 1, "lv_centre_px": None, "rv_insertion_px": None, "lv_centre_lps": None,
               "rv_insertion_lps": None, "confidence": 0.05, "reason": "low confidence 0.05"}]
    return {"landmarks": {"series": "LGE PSIR", "slices": slices},
            "summary": {"model": {"name": "landmarks-compact", "version": "1.0", "notice": "phantom-trained"}},
            "segments": segments, "segment_stats": []}


def test_landmarks_become_markups_per_slice_and_a_label_map():
    scene = new_scene()
    out = outputs_to_nodes(scene, _outputs(), "")
    assert out.points[1] is None and out.reasons[1] == "low confidence 0.05"
    node = out.points[0]
    assert node.GetName() == "LGE PSIR landmarks slice 1"
    lps, labels = points_from_markups_node(node)
    assert labels == [LV_LABEL, RV_LABEL]
    np.testing.assert_allclose(lps, [[-17.0, 14.5, 30.0], [-18.5, 11.5, 30.0]], atol=1e-9)
    pos = [0.0, 0.0, 0.0]
    node.GetNthControlPointPosition(0, pos)
    np.testing.assert_allclose(pos, [17.0, -14.5, 30.0])  # RAS in the scene
    assert out.segments.IsA("vtkMRMLLabelMapVolumeNode")
    back = image_from_volume_node(out.segments)
    np.testing.assert_array_equal(back.array, _outputs()["segments"].array)
    assert back.same_geometry(_outputs()["segments"])
    assert "1/2 slice(s)" in out.summary_text() and "phantom-trained" in out.summary_text()


def test_adapter_refuses_a_folder_without_landmarks():
    with pytest.raises(InputError, match="landmarks.json"):
        outputs_to_nodes(new_scene(), {"summary": {}}, "x")


def test_reader_output_reaches_the_adapter(tmp_path):
    """A folder written by cmrlib.landmarks.outputs, read back, made into nodes."""
    from cmrlib.io import write_image
    from cmrlib.landmarks.outputs import read_result
    o = _outputs()
    (tmp_path / "landmarks.json").write_text(json.dumps(o["landmarks"]))
    (tmp_path / "result.json").write_text(json.dumps(o["summary"]))
    write_image(o["segments"], tmp_path / "aha_segments.nrrd")
    out = outputs_to_nodes(new_scene(), read_result(tmp_path), "S")
    assert out.points[0] is not None and out.segments is not None

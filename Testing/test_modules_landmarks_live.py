"""CMRSegmentation's live AHA segments headless on slicer-core: point lists per slice → the same
segments as ``cmrlib.aha.aha_volume``; moving a point (observer attached) recomputes them; a missing
point leaves its slice without segments and with a reason; the bull's-eye PNG is refreshed; the
observers go away on cleanup; the panel's .ui and module file have the Landmarks section."""
from __future__ import annotations

import ast
import math
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import slicer  # noqa: F401

from cmrlib import Image
from cmrlib.aha import SEGMENT_NAMES, aha_volume, long_axis_positions, slice_levels
from cmrlib.errors import InputError
from cmrlib.mrml import (image_from_volume_node, lps_to_ras, markups_node_from_points, new_scene,
                         rows_from_table_node, segmentation_node_from_labels, volume_node_from_image)
from CMRSegmentationLib.landmarks import LV_LABEL, RV_LABEL, SLICE_ATTRIBUTE, outputs_to_nodes
from CMRSegmentationLib.landmarks_live import (AHA_COLOURS, COLOUR_TABLE_NAME, LiveSegments, PointObserver,
                                               colour_name, mask_labels, recompute_segments)
from CMRSegmentationLib.qcd import QCD_LABEL_TABLE

pytestmark = pytest.mark.mrml

ROOT = Path(__file__).resolve().parents[1]
MODULE = ROOT / "CMRSegmentation" / "CMRSegmentation.py"
UI = ROOT / "CMRSegmentation" / "Resources" / "UI" / "CMRSegmentation.ui"
CENTRE = (63.37, 64.71)  # [column, row]: off the pixel grid, so no pixel lies on a sector boundary
RV_ANGLE = 118.3  # deg, counter-clockwise on the page (rows run down) from the column axis


def _stack(n=10, size=128) -> tuple[Image, np.ndarray]:
    """A T1-map-like short-axis stack (standard display, identity LPS direction) and its labels:
    a myocardial ring (1) around a blood pool (2) on every slice, values varying around the ring."""
    rows, cols = np.mgrid[:size, :size]
    r = np.hypot(cols - CENTRE[0], rows - CENTRE[1])
    lab = np.zeros((n, size, size), np.uint8)
    lab[:, r < 14] = 2
    lab[:, (r >= 14) & (r < 22)] = 1
    values = np.broadcast_to(900.0 + 2.0 * cols + 1.0 * rows, (n, size, size)).astype(np.float32) + \
        np.arange(n, dtype=np.float32)[:, None, None] * 10
    image = Image(values.copy(), (1.4, 1.4, 8.0), (-90.0, -80.0, 30.0), np.eye(3),
                  meta={"kind": "t1map", "SeriesDescription": "T1 map SAX"})
    return image, lab


def _rv(angle_deg=RV_ANGLE, radius=22.0) -> list[float]:
    a = math.radians(angle_deg)
    return [CENTRE[0] + radius * math.cos(a), CENTRE[1] - radius * math.sin(a)]


def _ras(image: Image, col_row, k) -> list[float]:
    return lps_to_ras(image.index_to_lps([col_row[0], col_row[1], k])).tolist()


def _points(scene, image, slices=None, tag=True):
    nodes = []
    for k in range(image.spatial_shape[0]) if slices is None else slices:
        lps = np.array([image.index_to_lps([*CENTRE, k]), image.index_to_lps([*_rv(), k])])
        node = markups_node_from_points(scene, lps, [LV_LABEL, RV_LABEL], f"landmarks slice {k + 1}")
        if tag:
            node.SetAttribute(SLICE_ATTRIBUTE, str(k))
        nodes.append(node)
    return nodes


def _expected(image, lab, lv, rv, levels=None):
    myo = np.isin(lab, (1, 3))
    if levels is None:
        levels = slice_levels(long_axis_positions(image))
    return aha_volume(myo, lv, rv, levels, direction=image.direction, spacing=image.spacing[:2])


@pytest.fixture
def scene_inputs():
    scene = new_scene()
    image, lab = _stack()
    volume = volume_node_from_image(scene, image, "T1 map")
    mask = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "mask")
    volume_node_from_image(scene, image.with_array(lab), "mask", node=mask)
    return scene, image, lab, volume, mask


def test_recompute_equals_aha_volume_and_fills_the_nodes(scene_inputs, tmp_path):
    scene, image, lab, volume, mask = scene_inputs
    nodes = _points(scene, image)
    png = tmp_path / "bullseye.png"
    result = recompute_segments(scene, volume, mask, nodes, bullseye_path=png)
    n = image.spatial_shape[0]
    expected = _expected(image, lab, [list(CENTRE)] * n, [_rv()] * n)
    np.testing.assert_array_equal(result.segments, expected)
    assert result.reasons == [None] * n and result.levels == slice_levels(long_axis_positions(image))
    assert sorted(r["segment"] for r in result.stats) == list(range(1, 17))
    # the label map node on the image grid, coloured by the AHA table
    live_nodes = scene.GetNodesByClassByName("vtkMRMLLabelMapVolumeNode", "T1 map AHA segments")
    assert live_nodes.GetNumberOfItems() == 1
    seg_node = live_nodes.GetItemAsObject(0)
    back = image_from_volume_node(seg_node)
    np.testing.assert_array_equal(back.array, expected)
    assert back.same_geometry(image)
    colours = scene.GetNodesByClassByName("vtkMRMLColorTableNode", COLOUR_TABLE_NAME).GetItemAsObject(0)
    assert seg_node.GetDisplayNode().GetColorNodeID() == colours.GetID()
    assert [colours.GetColorName(k) for k in range(1, 18)] == [colour_name(k) for k in range(1, 18)]
    assert colours.GetColorName(1) == "AHA 1 basal anterior" and colour_name(17) == f"AHA 17 {SEGMENT_NAMES[17]}"
    rgba = [0.0] * 4
    assert colours.GetColor(0, rgba) and rgba[3] == 0.0  # background transparent
    assert len(set(AHA_COLOURS.values())) == 17
    # the statistics table: one row per segment, T1 in ms
    rows = rows_from_table_node(next(iter(_tables(scene))))
    assert [r["segment"] for r in rows] == [s["segment"] for s in result.stats]
    assert [r["median (ms)"] for r in rows] == pytest.approx([s["median"] for s in result.stats])
    assert result.table_cells()[0][:2] == ["1", "basal anterior"]
    assert png.is_file() and png.stat().st_size > 1000 and result.bullseye == png
    assert result.statistic == "median" and result.unit == "ms"


def _tables(scene):
    col = scene.GetNodesByClass("vtkMRMLTableNode")
    return [col.GetItemAsObject(i) for i in range(col.GetNumberOfItems())]


def test_moving_the_rv_point_rotates_the_segments_live(scene_inputs, tmp_path):
    """The observer recomputes on a programmatic move: the RV insertion point turned 60° about
    the LV centre (counter-clockwise viewed from the apex) moves every basal / mid segment one
    sector (AHA 2 → 1, 3 → 2, …, 1 → 6); during a drag the bull's-eye waits for the release."""
    scene, image, lab, volume, mask = scene_inputs
    nodes = _points(scene, image)
    png = tmp_path / "live.png"
    live = LiveSegments(scene, volume, mask, nodes, bullseye_path=png)
    first = live.recompute()
    before_png = png.read_bytes()
    observer = PointObserver(lambda final: live.recompute(bullseye=final))
    observer.observe(nodes)
    assert len(observer.nodes) == len(nodes)
    k = 8  # a basal slice (the slice axis runs superior, towards the base)
    assert first.levels[k] == "basal"
    nodes[k].SetNthControlPointPosition(1, *_ras(image, _rv(RV_ANGLE + 60.0), k))
    assert observer.calls >= 1 and observer.last_error is None
    after = live.last.segments
    old = first.segments[k]
    np.testing.assert_array_equal(after[k][old > 0], np.where(old[old > 0] == 1, 6, old[old > 0] - 1))
    np.testing.assert_array_equal(np.delete(after, k, 0), np.delete(first.segments, k, 0))  # the other slices stay
    n = image.spatial_shape[0]
    rv = [_rv()] * n
    rv[k] = _rv(RV_ANGLE + 60.0)
    np.testing.assert_allclose(live.last.rv_px[k], rv[k], atol=1e-9)
    np.testing.assert_array_equal(after, _expected(image, lab, [list(CENTRE)] * n, rv))
    seg_node = live.segments_node
    np.testing.assert_array_equal(image_from_volume_node(seg_node).array, after)
    refreshed = png.read_bytes()
    assert refreshed != before_png  # the values per segment changed, so did the picture
    # a drag: the segments follow each move, the bull's-eye only the release
    m = 5  # a mid slice
    nodes[m].InvokeEvent(nodes[m].PointStartInteractionEvent)
    nodes[m].SetNthControlPointPosition(1, *_ras(image, _rv(RV_ANGLE + 60.0), m))
    assert live.last.segments[m].max() == 12 and png.read_bytes() == refreshed
    assert live.last.bullseye == png  # the earlier picture, not refreshed yet
    nodes[m].InvokeEvent(nodes[m].PointEndInteractionEvent)
    assert png.read_bytes() != refreshed
    # cleanup: no observer left, moves no longer recompute
    calls = observer.calls
    observer.remove()
    assert observer.nodes == []
    nodes[k].SetNthControlPointPosition(1, *_ras(image, _rv(RV_ANGLE), k))
    assert observer.calls == calls
    np.testing.assert_array_equal(live.last.segments, image_from_volume_node(seg_node).array)
    # "Live update" off: observers stay, nothing recomputes
    observer.observe(nodes)
    observer.enabled = False
    nodes[k].SetNthControlPointPosition(1, *_ras(image, _rv(RV_ANGLE + 60.0), k))
    assert observer.calls == calls
    observer.remove()


def test_a_missing_point_leaves_its_slice_without_segments(scene_inputs):
    scene, image, lab, volume, mask = scene_inputs
    nodes = _points(scene, image)
    live = LiveSegments(scene, volume, mask, nodes)
    observer = PointObserver(lambda final: live.recompute(bullseye=final))
    observer.observe(nodes)
    nodes[4].RemoveNthControlPoint(1)  # the RV insertion point of slice 5
    result = live.last
    assert result is not None and not result.segments[4].any()
    assert "RV insertion" in result.reasons[4] and result.levels[4] is None
    assert all(r is None for j, r in enumerate(result.reasons) if j != 4)
    assert "slice 5: no 'RV insertion' point" in result.summary_text()
    # the levels come from the slices that have landmarks (as `cmr landmarks`), the segments from aha_volume
    have = [j != 4 for j in range(10)]
    levels = [None] * 10
    for j, v in zip([j for j in range(10) if have[j]],
                    slice_levels([long_axis_positions(image)[j] for j in range(10) if have[j]])):
        levels[j] = v
    lv = [list(CENTRE) if h else None for h in have]
    rv = [_rv() if h else None for h in have]
    np.testing.assert_array_equal(result.segments, _expected(image, lab, lv, rv, levels))
    # a point list missing altogether, a point outside the image, no myocardium in a slice
    lab2 = lab.copy()
    lab2[9] = 0
    volume_node_from_image(scene, image.with_array(lab2), "", node=mask)
    nodes[2].SetNthControlPointPosition(0, *_ras(image, [-20.0, 50.0], 2))
    live.read_inputs()
    live.set_points([nd for j, nd in enumerate(nodes) if j != 6])
    result = live.recompute(bullseye=False)
    assert "outside the image" in result.reasons[2]
    assert result.reasons[6].startswith("no point list")
    assert result.reasons[9] == "the mask holds no myocardium in this slice"
    assert not result.segments[[2, 4, 6, 9]].any()
    assert all(result.segments[j].any() for j in (0, 1, 3, 5, 7, 8))
    observer.remove()


def test_slices_from_positions_segmentation_mask_and_one_slice_with_a_level(scene_inputs):
    scene, image, lab, volume, mask = scene_inputs
    untagged = _points(scene, image, tag=False)  # slice found from the points' position
    seg = segmentation_node_from_labels(scene, lab, image, QCD_LABEL_TABLE, "QCD segmentation")
    np.testing.assert_array_equal(mask_labels(seg, image), lab)
    a = recompute_segments(scene, volume, seg, untagged[::-1])
    b = recompute_segments(scene, volume, mask, untagged)
    np.testing.assert_array_equal(a.segments, b.segments)
    assert a.segments.any()
    # one slice: the level is given, or there are no segments and the reason says to choose one
    one = Image(image.array[3:4].copy(), image.spacing, tuple(image.index_to_lps([0, 0, 3])), image.direction,
                meta=dict(image.meta))
    vol1 = volume_node_from_image(scene, one, "one slice")
    mask1 = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "mask one")
    volume_node_from_image(scene, one.with_array(lab[3:4]), "mask one", node=mask1)
    pts = _points(scene, one, [0])
    none = recompute_segments(scene, vol1, mask1, pts)
    assert not none.segments.any() and "choose a level" in none.reasons[0]
    mid = recompute_segments(scene, vol1, mask1, pts, level="mid")
    np.testing.assert_array_equal(mid.segments, _expected(one, lab[3:4], [list(CENTRE)], [_rv()], ["mid"]))
    assert set(np.unique(mid.segments)) == {0, 7, 8, 9, 10, 11, 12}


def test_wrong_inputs_are_refused(scene_inputs):
    scene, image, lab, volume, mask = scene_inputs
    with pytest.raises(InputError, match="choose a mask"):
        LiveSegments(scene, volume, None, [])
    empty = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "empty")
    volume_node_from_image(scene, image.with_array(np.zeros_like(lab)), "empty", node=empty)
    with pytest.raises(InputError, match="no myocardium"):
        LiveSegments(scene, volume, empty, [])
    pool = segmentation_node_from_labels(scene, np.where(lab == 2, 2, 0).astype(np.uint8), image,
                                         QCD_LABEL_TABLE, "pool only")
    with pytest.raises(InputError, match="Myocardium"):
        LiveSegments(scene, volume, pool, [])
    with pytest.raises(InputError, match="unknown AHA level"):
        LiveSegments(scene, volume, mask, [], level="top")


def test_adapter_nodes_drive_the_live_recompute(scene_inputs):
    """The `cmr landmarks` adapter's point lists carry their slice and feed the live recompute."""
    scene, image, lab, volume, mask = scene_inputs
    slices = []
    for k in range(10):
        lv, rv = image.index_to_lps([*CENTRE, k]).tolist(), image.index_to_lps([*_rv(), k]).tolist()
        slices.append({"index": k, "lv_centre_lps": lv, "rv_insertion_lps": rv, "confidence": 0.9, "reason": None}
                      if k != 8 else {"index": k, "lv_centre_lps": None, "rv_insertion_lps": None, "reason": "low"})
    outputs = outputs_to_nodes(scene, {"landmarks": {"series": "T1", "slices": slices}, "summary": {},
                                       "segments": None}, "T1")
    assert outputs.points[3].GetAttribute(SLICE_ATTRIBUTE) == "3"
    result = recompute_segments(scene, volume, mask, outputs.points)
    assert result.reasons[8].startswith("no point list") and not result.segments[8].any()
    assert all(result.segments[k].any() for k in range(10) if k != 8)


def test_recompute_is_fast_on_a_ten_slice_stack(scene_inputs, tmp_path):
    """The live path (segments, statistics, label-map and table nodes) on 10 × 128 × 128: well
    under the time between two mouse moves' worth of redraws; the bull's-eye is timed apart."""
    scene, image, lab, volume, mask = scene_inputs
    live = LiveSegments(scene, volume, mask, _points(scene, image), bullseye_path=tmp_path / "b.png")
    live.recompute()
    t0 = time.perf_counter()
    for _ in range(5):
        result = live.recompute(bullseye=False)
    per = (time.perf_counter() - t0) / 5
    full = live.recompute()
    print(f"\nlive recompute 10x128x128: {per * 1000:.1f} ms (segments + nodes), "
          f"bull's-eye {full.bullseye_seconds * 1000:.0f} ms")
    assert result.segments.any() and per < 0.5


# ---- the panel: .ui and module file ---------------------------------------------------------
def _ui_attribute_names(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and node.value.attr == "ui":
            names.add(node.attr)
    return names


def test_ui_has_the_landmarks_section_and_every_widget_the_module_uses():
    root = ET.parse(UI).getroot()
    widgets = {w.get("name"): w for w in root.iter("widget")}
    used = {n for n in _ui_attribute_names(MODULE) if n.startswith("landmarks")}
    want = {"landmarksInputSelector": "qMRMLNodeComboBox", "landmarksMaskSelector": "qMRMLNodeComboBox",
            "landmarksLevelComboBox": "QComboBox", "landmarksApplyButton": "QPushButton",
            "landmarksLiveCheckBox": "QCheckBox", "landmarksResultLabel": "QLabel",
            "landmarksBullseyeLabel": "QLabel", "landmarksSegmentTable": "QTableWidget"}
    assert set(want) <= used
    assert used <= set(widgets), sorted(used - set(widgets))
    assert {n: widgets[n].get("class") for n in want} == want
    section = widgets["landmarksCollapsibleButton"]
    assert section.findtext("property/string") == "Landmarks"
    names = [w.get("name") for w in root.iter("widget")]
    assert names.index("qcdCollapsibleButton") < names.index("landmarksCollapsibleButton")  # QCD above: its input

    def prop(widget, name):
        return next(p for p in widgets[widget].findall("property") if p.get("name") == name)

    assert [s.text for s in prop("landmarksMaskSelector", "nodeTypes").iter("string")] == \
        ["vtkMRMLLabelMapVolumeNode", "vtkMRMLSegmentationNode"]
    assert prop("landmarksLiveCheckBox", "checked").findtext("bool") == "true"
    from CMRSegmentationLib.landmarks_live import TABLE_COLUMNS
    assert [c.findtext("property/string") for c in widgets["landmarksSegmentTable"].findall("column")] == \
        list(TABLE_COLUMNS)
    assert [i.findtext("property/string") for i in widgets["landmarksLevelComboBox"].findall("item")] == \
        ["thirds", "basal", "mid", "apical"]
    receivers = {c.findtext("receiver") for c in root.iter("connection")}
    assert {"landmarksInputSelector", "landmarksMaskSelector"} <= receivers


def test_module_file_has_the_landmarks_parameters_handlers_and_self_test():
    tree = ast.parse(MODULE.read_text())
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    params = {n.target.id: n for n in classes["CMRSegmentationParameterNode"].body if isinstance(n, ast.AnnAssign)}
    assert {"landmarksInput", "landmarksMask", "landmarksLevel", "landmarksLiveUpdate"} <= set(params)
    assert ast.literal_eval(params["landmarksLiveUpdate"].value) is True
    assert ast.literal_eval(params["landmarksLevel"].value) == "thirds"
    assert "vtkMRMLSegmentationNode" in ast.unparse(params["landmarksMask"].annotation)
    widget = {f.name for f in classes["CMRSegmentationWidget"].body if isinstance(f, ast.FunctionDef)}
    assert {"onLandmarksApply", "onLandmarksLiveToggled", "recomputeLandmarks", "cleanupSections"} <= widget
    tests = {f.name for f in classes["CMRSegmentationTest"].body if isinstance(f, ast.FunctionDef)}
    assert "test_CMRSegmentationLandmarksLive" in tests


# ---- the logic: worker input, arguments, loading ---------------------------------------------
def test_logic_exports_image_and_mask_and_builds_the_worker_arguments(scene_inputs, tmp_path):
    from cmrlib.io import read_image
    from CMRSegmentationLib.logic import LANDMARKS_INPUT, LANDMARKS_MASK, SegmentationLogic
    scene, image, lab, volume, mask = scene_inputs
    logic = SegmentationLogic(scene)
    seg = segmentation_node_from_labels(scene, lab, image, QCD_LABEL_TABLE, "QCD segmentation")
    image_path, mask_path = logic.export_landmarks_input(volume, seg, tmp_path)
    assert (image_path.name, mask_path.name) == (LANDMARKS_INPUT, LANDMARKS_MASK)
    back = read_image(mask_path)
    assert back.same_geometry(image) and np.array_equal(back.array, lab)
    assert read_image(image_path).meta.get("kind") == "t1map"
    only_image, none = logic.export_landmarks_input(volume, None, tmp_path / "b")
    assert none is None and only_image.is_file()
    assert logic.landmarks_arguments("x.nrrd", "out", mask_path, "mid") == [
        "landmarks", "x.nrrd", "--out", "out", "--mask", str(mask_path), "--level", "mid", "--progress-lines"]
    assert logic.landmarks_arguments("x.nrrd", "out") == ["landmarks", "x.nrrd", "--out", "out", "--progress-lines"]
    with pytest.raises(InputError, match="level"):
        logic.landmarks_arguments("x.nrrd", "out", level="top")
    with pytest.raises(InputError):
        logic.export_landmarks_input(mask, None, tmp_path / "c")  # a label map is no input image
    assert not (tmp_path / "c").exists()


def test_logic_loads_a_result_folder_and_goes_live(scene_inputs, tmp_path):
    import json
    from cmrlib.io import write_image
    from CMRSegmentationLib.logic import SegmentationLogic
    scene, image, lab, volume, mask = scene_inputs
    n = image.spatial_shape[0]
    expected = _expected(image, lab, [list(CENTRE)] * n, [_rv()] * n)
    slices = [{"index": k, "lv_centre_lps": image.index_to_lps([*CENTRE, k]).tolist(),
               "rv_insertion_lps": image.index_to_lps([*_rv(), k]).tolist(), "confidence": 0.9, "reason": None}
              for k in range(n)]
    (tmp_path / "landmarks.json").write_text(json.dumps({"series": "T1 map SAX", "slices": slices}))
    (tmp_path / "result.json").write_text(json.dumps({"model": {"name": "landmarks-compact", "version": "1"}}))
    write_image(image.with_array(expected.astype(np.uint8)), tmp_path / "aha_segments.nrrd")
    logic = SegmentationLogic(scene)
    outputs = logic.load_landmarks_results(tmp_path, "T1")
    live = logic.live_segments(volume, mask, outputs, bullseye_path=tmp_path / "live.png")
    assert live.segments_node is outputs.segments  # updated in place, not a second node
    result = live.recompute()
    np.testing.assert_array_equal(result.segments, expected)
    np.testing.assert_array_equal(image_from_volume_node(outputs.segments).array, expected)
    assert outputs.segments.GetName() == "T1 AHA segments" and result.bullseye.is_file()

"""CMRStressT1's "Stress T1 reactivity" section headless on slicer-core: MRML nodes → `cmr stress`
worker arguments and input files, the worker command run for real (classical registration on a
phantom rest / stress pair), its folder → registered map, dT1 map (diverging colours, myocardium
only, legend), per-slice and per-segment tables, and the panel's .ui / module file (no Slicer
application needed).

The tests assert files, geometry, node settings, what the volume display pipeline draws and
that the tables hold result.json's values; not the registration's accuracy."""
from __future__ import annotations

import ast
import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import slicer  # noqa: F401

from cmrlib.errors import InputError
from cmrlib.io import read_image
from cmrlib.mrml import (image_from_volume_node, labels_from_segmentation_node, new_scene, rows_from_table_node,
                         volume_node_from_image)
from CMRStressT1Lib.logic import StressT1Logic
from CMRStressT1Lib.stress import (COLOUR_TABLE_NAME, DT1_LIMIT, N_COLOURS, OUTSIDE, REST_INPUT, REST_MASK_INPUT,
                                   SEGMENT_COLUMNS, SEGMENTS_INPUT, SLICE_COLUMNS, STRESS_INPUT, STRESS_MASK_INPUT,
                                   default_method, legend_text, method_available, outputs_to_nodes,
                                   phantom_pair_nodes, stress_arguments, table_cells)
from CMRSegmentationLib.qcd import mask_qc_failed_slices

from test_packaging_modules import ui_attribute_names  # the names the code looks up as ui.X

pytestmark = pytest.mark.mrml

ROOT = Path(__file__).resolve().parents[1]
MODULE = ROOT / "CMRStressT1" / "CMRStressT1.py"
UI = ROOT / "CMRStressT1" / "Resources" / "UI" / "CMRStressT1.ui"
SEGMENT_TABLE = {1: ("Myocardium", (1, 0, 0)), 2: ("Blood pool", (1, 1, 0)), 3: ("Scar", (1, 1, 1))}


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """The capability's example result (a phantom pair registered classically) and its reader's dict."""
    from cmrlib.stress.outputs import read_result, write_example
    folder = tmp_path_factory.mktemp("stress") / "stress"
    write_example(folder)
    return folder, read_result(folder)


@pytest.fixture(scope="module")
def pair():
    """A scene with the phantom pair as the panel takes it (maps, masks, AHA segments)."""
    scene = new_scene()
    return scene, phantom_pair_nodes(scene)


def _rgba(volume) -> np.ndarray:
    """What the volume's display node draws (RGBA uint8 ``[slice, row, col, 4]``), through
    slicer-core's volume display pipeline (window / level, colour table, threshold → alpha)."""
    from vtk.util.numpy_support import vtk_to_numpy
    display = volume.GetDisplayNode()
    display.SetInputImageDataConnection(volume.GetImageDataConnection())
    producer = display.GetOutputImageDataConnection().GetProducer()
    producer.Update()
    out = producer.GetOutputDataObject(0)
    cols, rows, slices = out.GetDimensions()
    return vtk_to_numpy(out.GetPointData().GetScalars()).reshape(slices, rows, cols, -1)


def _expected_slice_rows(summary: dict) -> list[dict]:
    """result.json's slices as rows_from_table_node reads the table (numbers as floats, NaN for none)."""
    return [{"slice": float(s["index"] + 1), "dT1 mean (%)": s["dt1_percent"], "dT1 sd (%)": s["dt1_sd_percent"],
             "pixels": float(s["n_pixels"]), "through-plane distance (mm)": s["distance_mm"],
             "mask QC": "failed" if s["mask_qc_failed"] else "passed",
             "map quality": "failed" if s["map_qc_failed"] else "passed"} for s in summary["slices"]]


def _expected_segment_rows(summary: dict) -> list[dict]:
    return [{"segment": float(s["segment"]), "name": s["name"], "dT1 mean (%)": s["mean"], "dT1 sd (%)": s["sd"],
             "pixels": float(s["n_pixels"])} for s in summary["segment_stats"]]


def _close(rows: list[dict], expected: list[dict]) -> None:
    assert [list(r) for r in rows] == [list(e) for e in expected]
    for r, e in zip(rows, expected, strict=True):
        for key, value in e.items():
            if value is None:  # no value: NaN in a number column
                assert math.isnan(r[key]), key
            else:
                assert r[key] == (pytest.approx(value, rel=1e-12) if isinstance(value, float) else value), key


# ---- the adapter --------------------------------------------------------------------------------
def test_adapter_on_the_capability_example(example):
    """Writer → reader → adapter on a real result: the registered map, the dT1 map (myocardium
    only, diverging colours, window -12..12 %, legend), the myocardium label map, and table rows
    equal to result.json's values."""
    from cmrlib.capabilities import capability
    from cmrlib.contract import resolve
    from cmrlib.stress.outputs import DISPLAY_RANGE

    folder, result = example
    assert resolve(capability("stress").adapter) is outputs_to_nodes
    summary = json.loads((folder / "result.json").read_text())
    scene = new_scene()
    out = outputs_to_nodes(scene, result, "")
    name = summary["series"]["rest"]
    assert out.registered.GetName() == f"{name} stress T1 registered" and out.dt1.GetName() == f"{name} dT1 (%)"
    registered = image_from_volume_node(out.registered)
    np.testing.assert_allclose(registered.array, result["registered"].array)
    assert registered.same_geometry(result["registered"])
    assert out.registered.GetDisplayNode().GetColorNodeID() == "vtkMRMLColorTableNodeGrey"
    # the dT1 node: dT1 in the myocardium, OUTSIDE elsewhere
    shown = image_from_volume_node(out.dt1)
    inside = np.asarray(result["myocardium"].array) > 0
    assert inside.any() and (~inside).any()
    np.testing.assert_allclose(shown.array[inside], result["dt1"].array[inside])
    assert np.all(shown.array[~inside] == OUTSIDE) and shown.same_geometry(result["dt1"])
    assert out.myocardium.IsA("vtkMRMLLabelMapVolumeNode")
    np.testing.assert_array_equal(image_from_volume_node(out.myocardium).array, result["myocardium"].array)
    # colour table: blue -> white -> red, one per scene
    colours = out.colours
    assert colours.GetName() == COLOUR_TABLE_NAME and colours.GetNumberOfColors() == N_COLOURS
    rgba = [0.0] * 4
    for index, colour in ((0, (0, 0, 1)), (N_COLOURS // 2, (1, 1, 1)), (N_COLOURS - 1, (1, 0, 0))):
        colours.GetColor(index, rgba)
        np.testing.assert_allclose(rgba, (*colour, 1.0))
    display = out.dt1.GetDisplayNode()
    assert display.GetColorNodeID() == colours.GetID()
    assert (display.GetWindowLevelMin(), display.GetWindowLevelMax()) == DISPLAY_RANGE == (-12.0, 12.0)
    assert display.GetApplyThreshold() and (display.GetLowerThreshold(), display.GetUpperThreshold()) == \
        (-DT1_LIMIT, DT1_LIMIT)
    # what is drawn: nothing outside the myocardium, blue below 0, red above, white at 0
    drawn = _rgba(out.dt1)
    assert np.all(drawn[~inside][:, 3] == 0) and np.all(drawn[inside][:, 3] == 255)
    dt1 = np.asarray(result["dt1"].array)
    neg, pos = inside & (dt1 < -1.0), inside & (dt1 > 1.0)
    assert neg.any() and pos.any()
    assert np.all(drawn[neg][:, 2] == 255) and np.all(drawn[neg][:, 0] < 255)  # blue side
    assert np.all(drawn[pos][:, 0] == 255) and np.all(drawn[pos][:, 2] < 255)  # red side
    strong = inside & (dt1 >= DISPLAY_RANGE[1])
    assert strong.any() and np.all(drawn[strong][:, :3] == (255, 0, 0))  # the end colour beyond the window
    # the legend
    legend = out.legend
    assert legend.IsA("vtkMRMLColorLegendDisplayNode") and legend.GetPrimaryDisplayNode() is display
    assert out.dt1.GetNumberOfDisplayNodes() == 2 and legend.GetTitleText() == "dT1 (%)"
    assert legend.GetScalarRange() == DISPLAY_RANGE and legend.GetVisibility()
    # the tables hold result.json's numbers
    _close(rows_from_table_node(out.slice_table), _expected_slice_rows(summary))
    assert list(rows_from_table_node(out.slice_table)[0]) == list(SLICE_COLUMNS)
    _close(rows_from_table_node(out.segment_table), _expected_segment_rows(summary))
    assert list(rows_from_table_node(out.segment_table)[0]) == list(SEGMENT_COLUMNS)
    assert [r["dT1 mean (%)"] for r in out.slice_rows] == pytest.approx(summary["dt1_slice_percent"], abs=5e-4)
    assert {str(r["segment"]): r["dT1 mean (%)"] for r in out.segment_rows} == pytest.approx(
        {k: v for k, v in summary["segments"].items()}, abs=5e-4)
    assert set(out.nodes()) == {"registered", "dt1", "myocardium", "slice_table", "segment_table", "colours",
                                "legend"}
    text = out.summary_text()
    assert f"{summary['dt1_slice_percent'][0]:+.2f} %" in text and "classical" in text and "Dice" in text
    # the example's breath-hold moved (phantom motion severity 0.98): the map-quality check says so
    assert out.mask_qc_failed_slices == [] and summary["map_qc_failed_slices"] == [0]
    assert out.qc_warning().startswith("map quality: slice 1 has")
    # a second result in the same scene reuses the colour table
    again = outputs_to_nodes(scene, result, "again")
    assert again.colours is colours and again.dt1.GetName() == "again dT1 (%)"


def test_adapter_refuses_an_incomplete_result_and_adds_nothing(example):
    _, result = example
    scene = new_scene()
    before = scene.GetNumberOfNodes()
    with pytest.raises(InputError, match="lacks registered, dt1"):
        outputs_to_nodes(scene, {"summary": {"slices": []}})
    broken = dict(result, summary=dict(result["summary"], slices=[]))
    with pytest.raises(InputError, match="lists 0 slice"):
        outputs_to_nodes(scene, broken)
    broken = dict(result, summary={k: v for k, v in result["summary"].items() if k != "slices"})
    with pytest.raises(InputError, match="result.json's slices"):
        outputs_to_nodes(scene, broken)
    slices = [{k: v for k, v in s.items() if k != "mask_qc_failed"} for s in result["summary"]["slices"]]
    with pytest.raises(KeyError):
        outputs_to_nodes(scene, dict(result, summary=dict(result["summary"], slices=slices)))
    assert scene.GetNumberOfNodes() == before


def test_table_cells_and_legend_text():
    rows = [{"slice": 2, "dT1 mean (%)": 3.14159, "dT1 sd (%)": None, "pixels": 12,
             "through-plane distance (mm)": 0.0, "mask QC": "failed", "map quality": "passed"}]
    assert table_cells(rows, SLICE_COLUMNS) == [["2", "3.14", "–", "12", "0.00", "failed", "passed"]]
    text = legend_text()
    assert "blue -12 %" in text and "white 0" in text and "red +12 %" in text


# ---- the worker's inputs ------------------------------------------------------------------------
def test_stress_arguments_write_the_selected_nodes(pair, tmp_path):
    """Maps, masks (segmentation and label map) and AHA segments as NRRD on the right grids, and
    the `cmr stress` arguments that name them."""
    _, nodes = pair
    folder, out = tmp_path / "inputs", tmp_path / "out"
    args = stress_arguments(nodes["rest"], nodes["stress"], nodes["rest_mask"], folder, out,
                            stress_mask=nodes["stress_mask"], segments=nodes["segments"], method="classical",
                            reverse=True, force=True)
    paths = {name: folder / name for name in (REST_INPUT, STRESS_INPUT, REST_MASK_INPUT, STRESS_MASK_INPUT,
                                              SEGMENTS_INPUT)}
    assert args == ["stress", "--rest", str(paths[REST_INPUT]), "--stress", str(paths[STRESS_INPUT]), "--out", str(out),
                    "--mask", str(paths[REST_MASK_INPUT]), "--stress-mask", str(paths[STRESS_MASK_INPUT]),
                    "--segments", str(paths[SEGMENTS_INPUT]), "--method", "classical", "--reverse", "--force",
                    "--progress-lines"]
    assert sorted(p.name for p in folder.iterdir()) == sorted(paths) and not out.exists()
    rest, stress = image_from_volume_node(nodes["rest"]), image_from_volume_node(nodes["stress"])
    assert not np.allclose(rest.direction, np.eye(3))  # an oblique grid: LPS <-> RAS is exercised
    for path, image in ((paths[REST_INPUT], rest), (paths[STRESS_INPUT], stress)):
        back = read_image(path)
        assert back.same_geometry(image) and back.meta["kind"] == "t1map"
        np.testing.assert_allclose(back.array, image.array)
        assert "qc_failed_slices" not in back.meta  # no mask failed its QC
    rest_mask = read_image(paths[REST_MASK_INPUT])
    assert rest_mask.same_geometry(rest) and rest_mask.meta["qc_failed_slices"] == []
    np.testing.assert_array_equal(rest_mask.array, labels_from_segmentation_node(nodes["rest_mask"], rest,
                                                                                 SEGMENT_TABLE))
    assert set(np.unique(rest_mask.array)) == {0, 1, 2}
    stress_mask = read_image(paths[STRESS_MASK_INPUT])
    assert stress_mask.same_geometry(stress)
    np.testing.assert_array_equal(stress_mask.array, image_from_volume_node(nodes["stress_mask"]).array)
    segments = read_image(paths[SEGMENTS_INPUT])
    assert segments.same_geometry(rest)
    np.testing.assert_array_equal(segments.array, image_from_volume_node(nodes["segments"]).array)
    # without the optional nodes and the method: only what the CLI needs
    args = stress_arguments(nodes["rest"], nodes["stress"], nodes["stress_mask"], tmp_path / "minimal", out)
    assert args == ["stress", "--rest", str(tmp_path / "minimal" / REST_INPUT), "--stress",
                    str(tmp_path / "minimal" / STRESS_INPUT), "--out", str(out), "--mask",
                    str(tmp_path / "minimal" / REST_MASK_INPUT), "--progress-lines"]


def test_mask_qc_failed_slices_from_qcd_nodes(pair):
    scene, nodes = pair
    seg = nodes["rest_mask"]
    assert mask_qc_failed_slices(seg, 1) == []
    seg.SetAttribute("CMR.qc_failed_slices", "0")  # as the QCD adapter marks its segmentation
    try:
        assert mask_qc_failed_slices(seg, 1) == [0]
        assert mask_qc_failed_slices(seg, 0) == []  # an index outside the map is dropped
    finally:
        seg.RemoveAttribute("CMR.qc_failed_slices")
    grid = image_from_volume_node(nodes["stress_mask"])
    grid.meta["qc_failed_slices"] = [2, 0]  # as QCD's labels.nrrd carries them
    label_map = volume_node_from_image(scene, grid, "labels", node=scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode"))
    assert mask_qc_failed_slices(label_map, 3) == [0, 2]
    label_map.SetAttribute("CMR.qc_failed_slices", "not a list")
    assert mask_qc_failed_slices(label_map, 3) == []
    scene.RemoveNode(label_map)


def test_bad_inputs_are_refused_and_nothing_is_written(pair, tmp_path):
    scene, nodes = pair
    rest, stress, mask = nodes["rest"], nodes["stress"], nodes["rest_mask"]
    folder, out = tmp_path / "inputs", tmp_path / "out"

    def refused(match, *args, **kwargs):
        with pytest.raises(InputError, match=match):
            stress_arguments(*args, **kwargs)

    refused("dT1 is averaged inside the rest map's myocardium: choose its mask", rest, stress, None, folder, out)
    refused("choose the rest T1 map", None, stress, mask, folder, out)
    refused("choose the stress T1 map", rest, None, mask, folder, out)
    refused("the stress T1 map must be a scalar volume", rest, nodes["stress_mask"], mask, folder, out)
    refused("Reverse .* choose the stress map's myocardium", rest, stress, mask, folder, out, reverse=True)
    refused("unknown method 'moconet'", rest, stress, mask, folder, out, method="moconet")
    refused("inside the input folder", rest, stress, mask, folder, folder / "out")
    grid = image_from_volume_node(rest)
    pool_only = volume_node_from_image(scene, grid.with_array(np.where(image_from_volume_node(
        nodes["segments"]).array > 0, 2, 0).astype(np.uint8)), "pool", node=scene.AddNewNodeByClass(
        "vtkMRMLLabelMapVolumeNode"))
    refused("has no myocardium", rest, stress, pool_only, folder, out)
    not_aha = volume_node_from_image(scene, grid.with_array(np.full(grid.spatial_shape, 40, np.int16)), "not AHA",
                                     node=scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode"))
    refused("not an AHA segment map", rest, stress, mask, folder, out, segments=not_aha)
    lge = volume_node_from_image(scene, grid.with_array(np.asarray(grid.array) / 100.0), "scaled")
    refused("does not look like a T1 map", lge, stress, mask, folder, out)
    psir = grid.with_array(np.asarray(grid.array))
    psir.meta["kind"] = "lge_psir"
    refused("is a lge_psir series, not a T1 map", rest, volume_node_from_image(scene, psir, "LGE PSIR"), mask,
            folder, out)
    assert not folder.exists() and not out.exists()


def test_cmr_stress_without_a_mask_says_so_and_writes_nothing(pair, tmp_path, capsys):
    from cmrlib.cli import main
    _, nodes = pair
    args = stress_arguments(nodes["rest"], nodes["stress"], nodes["rest_mask"], tmp_path / "inputs", tmp_path / "x")
    cut = args.index("--mask")
    out = tmp_path / "out"
    no_mask = args[:cut] + args[cut + 2:-1]
    no_mask[no_mask.index("--out") + 1] = str(out)
    assert main(no_mask + ["--quiet"]) != 0
    assert "give --mask" in capsys.readouterr().err
    assert not out.exists()


def test_default_method_follows_the_installed_weights():
    from cmrlib.models.zoo import model_installed
    swin = model_installed("dt1-swin-compact")
    assert default_method() == ("swin" if swin else "classical")
    assert method_available("classical") and method_available("none")
    assert method_available("swin") == swin and method_available("unet") == model_installed("dt1-unet-compact")


# ---- the panel's logic: the worker command for real --------------------------------------------------
def test_logic_runs_cmr_stress_and_loads_its_folder(pair, tmp_path):
    """The panel's path without Qt: the nodes as NRRD, `cmr stress` (the worker's arguments, run
    in-process, classical), the folder loaded through the reader and the adapter, the dT1 map
    over the grey rest map in the slice views; tables equal result.json, the bull's-eye found."""
    from cmrlib.cli import main
    scene, nodes = pair
    for name in ("Red", "Yellow"):  # slice views, as in the application
        view = scene.AddNewNodeByClass("vtkMRMLSliceNode")
        view.SetName(name)
        view.SetLayoutName(name)
        composite = scene.AddNewNodeByClass("vtkMRMLSliceCompositeNode")
        composite.SetLayoutName(name)
    logic = StressT1Logic(scene)
    out = tmp_path / "out"
    args = logic.stress_arguments(nodes["rest"], nodes["stress"], nodes["rest_mask"], tmp_path / "inputs", out,
                                  stress_mask=nodes["stress_mask"], segments=nodes["segments"], method="classical")
    assert main(args[:-1] + ["--quiet"]) == 0
    assert {"stress_registered.nrrd", "dt1_map.nrrd", "myocardium.nrrd", "result.json", "dt1.png", "segments.csv",
            "bullseye.png", "aha_segments.nrrd"} == {p.name for p in out.iterdir()}
    summary = json.loads((out / "result.json").read_text())
    assert summary["method"] == "classical" and summary["dice_before"] is not None
    assert summary["mask_qc_failed_slices"] == []
    loaded = logic.load_stress_results(out, "phantom", nodes["rest"])
    assert loaded.bullseye == out / "bullseye.png"
    _close(rows_from_table_node(loaded.slice_table), _expected_slice_rows(summary))
    _close(rows_from_table_node(loaded.segment_table), _expected_segment_rows(summary))
    assert len(loaded.segment_rows) >= 4
    rest = image_from_volume_node(nodes["rest"])
    shown = image_from_volume_node(loaded.dt1)
    assert shown.same_geometry(rest)
    myo = read_image(out / "myocardium.nrrd").array > 0
    np.testing.assert_allclose(shown.array[myo], read_image(out / "dt1_map.nrrd").array[myo])
    for i in range(2):
        composite = scene.GetNthNodeByClass(i, "vtkMRMLSliceCompositeNode")
        assert composite.GetBackgroundVolumeID() == nodes["rest"].GetID()
        assert composite.GetForegroundVolumeID() == loaded.dt1.GetID() and composite.GetForegroundOpacity() == 1.0
    assert nodes["rest"].GetDisplayNode().GetColorNodeID() == "vtkMRMLColorTableNodeGrey"
    normal = scene.GetNthNodeByClass(0, "vtkMRMLSliceNode").GetSliceToRAS()
    slice_axis_ras = np.array([normal.GetElement(i, 2) for i in range(3)])
    rest_axis_ras = rest.direction[:, 2] * np.array([-1.0, -1.0, 1.0])
    assert abs(float(slice_axis_ras @ rest_axis_ras)) == pytest.approx(1.0, abs=1e-6)  # the rest map's plane
    # the pair's stress breath-hold moved (the example's phantom seed): flagged, and only the map
    assert "classical" in loaded.summary_text() and loaded.qc_warning().startswith("map quality")
    assert loaded.mask_qc_failed_slices == []


def test_a_mask_that_failed_qc_is_flagged_in_the_result_and_the_status(pair, tmp_path):
    """A QCD segmentation whose slice failed QC: result.json flags the slice, the table says
    "failed" and the status warning carries the result's note."""
    from cmrlib.cli import main
    scene, nodes = pair
    seg = nodes["rest_mask"]
    seg.SetAttribute("CMR.qc_failed_slices", "0")
    try:
        args = stress_arguments(nodes["rest"], nodes["stress"], seg, tmp_path / "inputs", tmp_path / "out",
                                method="none")
    finally:
        seg.RemoveAttribute("CMR.qc_failed_slices")
    assert read_image(tmp_path / "inputs" / REST_MASK_INPUT).meta["qc_failed_slices"] == [0]
    assert main(args[:-1] + ["--quiet"]) == 0
    summary = json.loads((tmp_path / "out" / "result.json").read_text())
    assert summary["mask_qc_failed_slices"] == [0] and summary["slices"][0]["mask_qc_failed"]
    loaded = StressT1Logic(scene).load_stress_results(tmp_path / "out", "qc")
    assert loaded.slice_rows[0]["mask QC"] == "failed" and loaded.mask_qc_failed_slices == [0]
    assert rows_from_table_node(loaded.slice_table)[0]["mask QC"] == "failed"
    warning = loaded.qc_warning()
    assert "failed QC on slice(s) 1" in warning and warning in loaded.summary_text()
    assert loaded.bullseye is None and loaded.segment_table is None  # no AHA segments given


# ---- the panel: .ui and module file -------------------------------------------------------------
def test_ui_has_the_stress_section_and_every_widget_the_module_uses():
    root = ET.parse(UI).getroot()
    widgets = {w.get("name"): w for w in root.iter("widget")}
    used = ui_attribute_names(MODULE) - {"statusLabel"}  # the shared panel's
    assert {"restMapSelector", "stressMapSelector", "restMaskSelector", "stressMaskSelector", "segmentsSelector",
            "methodComboBox", "reverseCheckBox", "forceCheckBox", "stressApplyButton", "stressResultLabel",
            "stressLegendLabel", "stressBullseyeLabel", "stressSliceTable", "stressSegmentTable"} <= used
    assert used <= set(widgets), sorted(used - set(widgets))
    section = widgets["stressCollapsibleButton"]
    assert section.get("class") == "ctkCollapsibleButton" and section.findtext("property/string") == \
        "Stress T1 reactivity"

    def strings(widget, prop):
        return [s.text for p in widgets[widget].findall("property") if p.get("name") == prop for s in p.iter("string")]

    for name in ("restMapSelector", "stressMapSelector"):
        assert strings(name, "nodeTypes") == ["vtkMRMLScalarVolumeNode"]
    for name in ("restMaskSelector", "stressMaskSelector"):
        assert strings(name, "nodeTypes") == ["vtkMRMLLabelMapVolumeNode", "vtkMRMLSegmentationNode"]
    assert strings("segmentsSelector", "nodeTypes") == ["vtkMRMLLabelMapVolumeNode"]
    from cmrlib.stress.infer import METHODS
    assert [i.findtext("property/string") for i in widgets["methodComboBox"].findall("item")] == list(METHODS)
    assert [c.findtext("property/string") for c in widgets["stressSliceTable"].findall("column")] == \
        list(SLICE_COLUMNS)
    assert [c.findtext("property/string") for c in widgets["stressSegmentTable"].findall("column")] == \
        list(SEGMENT_COLUMNS)
    receivers = {c.findtext("receiver") for c in root.iter("connection")}
    assert {n for n in widgets if n.endswith("Selector")} <= receivers  # each gets the scene


def test_module_file_has_the_parameters_and_the_self_tests():
    tree = ast.parse(MODULE.read_text())
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    params = {n.target.id: n for n in classes["CMRStressT1ParameterNode"].body if isinstance(n, ast.AnnAssign)}
    assert set(params) == {"restMap", "stressMap", "restMask", "stressMask", "ahaSegments", "method", "reverse",
                           "force"}
    assert ast.literal_eval(params["method"].value) == "swin"  # checkMethod falls back to classical without weights
    assert "vtkMRMLSegmentationNode" in ast.unparse(params["restMask"].annotation)
    tests = {f.name for f in classes["CMRStressT1Test"].body if isinstance(f, ast.FunctionDef)}
    assert {"test_CMRStressT1Adapter", "test_CMRStressT1Worker", "test_CMRStressT1Apply"} <= tests
    widget = {f.name for f in classes["CMRStressT1Widget"].body if isinstance(f, ast.FunctionDef)}
    assert {"setupSections", "updateSections", "cleanupSections", "onApply", "checkMethod"} <= widget
    assert "planned" not in ast.get_docstring(tree).lower()
    assert "planned" not in (ROOT / "CMRStressT1" / "CMRStressT1Lib" / "logic.py").read_text().lower()

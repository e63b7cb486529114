"""CMRSegmentation's QCD section headless on slicer-core: a `cmr segment` folder → segmentation +
per-slice QC table, the slice jump, the training-pair export read back by `cmr train qcd --data`,
and the panel's .ui / self-tests (no Slicer application needed).

The tests assert structure, names, colours, table rows and round trips, never the segmentation's
quality: they pass with any installed QCD weights (CMR_MODELS_DIR may point at a test model)."""
from __future__ import annotations

import ast
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import slicer  # noqa: F401

from cmrlib import Image
from cmrlib.errors import InputError
from cmrlib.mrml import (image_from_volume_node, labels_from_segmentation_node, lps_to_ras, new_scene,
                         rows_from_table_node, segmentation_node_from_labels, sequence_node_from_image,
                         volume_node_from_image)
from CMRSegmentationLib.logic import QCD_INPUT, SegmentationLogic
from CMRSegmentationLib.qcd import (BLOOD_POOL, MYOCARDIUM, QC_COLOURS, QCD_LABEL_TABLE, TABLE_COLUMNS,
                                    export_training_pair, jump_slices_to, outputs_to_nodes, safe_name,
                                    slice_position, table_cells)

pytestmark = pytest.mark.mrml

ROOT = Path(__file__).resolve().parents[1]
MODULE = ROOT / "CMRSegmentation" / "CMRSegmentation.py"
UI = ROOT / "CMRSegmentation" / "Resources" / "UI" / "CMRSegmentation.ui"


def _needs_model():
    from cmrlib.qcd.pipeline import model_installed
    if not model_installed():
        pytest.skip("no QCD weights installed (set CMR_MODELS_DIR)")


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """The capability's example result (the installed QCD model on a 3-slice phantom LGE stack)."""
    _needs_model()
    from cmrlib.qcd.outputs import write_example
    folder = tmp_path_factory.mktemp("qcd") / "segment"
    write_example(folder)
    return folder


def _grid(n=3, rows=40, cols=36) -> Image:
    """An oblique short-axis-like grid (LPS)."""
    from scipy.spatial.transform import Rotation
    d = Rotation.from_euler("zyx", [20.0, -15.0, 35.0], degrees=True).as_matrix()
    rng = np.random.default_rng(3)
    return Image(rng.uniform(0, 500, (n, rows, cols)).astype(np.float32), (1.5, 1.4, 8.0), (12.5, -30.0, 41.0), d,
                 meta={"SeriesDescription": "LGE PSIR SAX"})


def _ring(grid: Image, slices=(0, 2)) -> np.ndarray:
    n, rows, cols = grid.spatial_shape
    yy, xx = np.mgrid[:rows, :cols]
    r = np.hypot(yy - rows / 2, xx - cols / 2)
    lab = np.zeros(grid.spatial_shape, np.uint8)
    for k in slices:
        lab[k][r < 6] = 2
        lab[k][(r >= 6) & (r < 10)] = 1
    return lab


def _synthetic_outputs(grid: Image) -> dict:
    """The reader's dict shape, in memory: rings on slices 1 and 3, slice 2 failed QC."""
    labels = grid.with_array(_ring(grid), is_sequence=False)
    slices = [{"index": 0, "predicted_dice": 0.91, "qc_pass": True, "candidate": "CCS k>=4",
               "candidates_predicted_dice": [0.9] * 12, "reason": None, "myocardium_mm2": 500.0, "blood_pool_mm2": 230.0},
              {"index": 1, "predicted_dice": 0.42, "qc_pass": False, "candidate": "SCS d3",
               "candidates_predicted_dice": [0.4] * 12, "reason": 'low "predicted"\tDice', "myocardium_mm2": 0.0,
               "blood_pool_mm2": 0.0},
              {"index": 2, "predicted_dice": 0.88, "qc_pass": True, "candidate": None,
               "candidates_predicted_dice": [], "reason": "", "myocardium_mm2": 500.0, "blood_pool_mm2": 230.0}]
    summary = {"series": "LGE PSIR SAX", "seconds": 0.5, "qc_threshold": 0.7, "failed_slices": [1],
               "mean_predicted_dice": 0.7367, "slices": slices, "notes": ["QCD: phantom-trained"],
               "model": {"name": "qcd-compact", "version": "1.0", "notice": "phantom-trained demonstration weights"}}
    return {"labels": labels, "summary": summary}


def _segment_names(node) -> list[str]:
    seg = node.GetSegmentation()
    return [seg.GetNthSegment(i).GetName() for i in range(seg.GetNumberOfSegments())]


def _expected_rows(slices: list[dict]) -> list[dict]:
    return [{"slice": float(s["index"] + 1), "predicted Dice": float(s["predicted_dice"]),
             "QC": "pass" if s["qc_pass"] else "FAIL", "candidate": s.get("candidate") or "",
             "reason": (s.get("reason") or "").replace('"', "'").replace("\t", " ")} for s in slices]


# ---- the adapter ------------------------------------------------------------------------
def test_adapter_on_the_capability_example(example):
    """Writer → reader → adapter on a real result: two named, coloured segments on the input
    grid, the labels round trip, and one table row per result.json slice with its QC."""
    from cmrlib.capabilities import capability
    from cmrlib.contract import resolve
    from cmrlib.qcd.outputs import read_result

    assert resolve(capability("segment").adapter) is outputs_to_nodes
    result = read_result(example)
    doc = json.loads((example / "result.json").read_text())
    scene = new_scene()
    out = outputs_to_nodes(scene, result, "")
    assert out.segmentation.IsA("vtkMRMLSegmentationNode") and out.table.IsA("vtkMRMLTableNode")
    assert out.segmentation.GetName() == f"{doc['series']} QCD segmentation"
    assert out.table.GetName() == f"{doc['series']} QCD QC per slice"
    assert _segment_names(out.segmentation) == [MYOCARDIUM, BLOOD_POOL]
    segmentation = out.segmentation.GetSegmentation()
    for value, (name, colour) in QCD_LABEL_TABLE.items():
        segment = segmentation.GetSegment(segmentation.GetSegmentIdBySegmentName(name))
        np.testing.assert_allclose(segment.GetColor(), colour, atol=1e-6)
        assert segment.GetLabelValue() == value
    labels = labels_from_segmentation_node(out.segmentation, result["labels"], QCD_LABEL_TABLE)
    np.testing.assert_array_equal(labels, result["labels"].array)
    rows = rows_from_table_node(out.table)
    assert list(rows[0]) == list(TABLE_COLUMNS)
    assert rows == _expected_rows(doc["slices"])
    assert out.rows == [{**r, "slice": int(r["slice"])} for r in _expected_rows(doc["slices"])]
    assert out.failed_slices == doc["failed_slices"] == [s["index"] for s in doc["slices"] if not s["qc_pass"]]
    assert set(out.nodes()) == {"segmentation", "table"}
    text = out.summary_text()
    assert f"{len(doc['slices'])} slice(s)" in text and doc["model"]["name"] in text
    assert ("every slice passed QC" in text) == (not doc["failed_slices"])


def test_adapter_on_a_synthetic_result_keeps_labels_table_and_geometry():
    grid = _grid()
    outputs = _synthetic_outputs(grid)
    scene = new_scene()
    volume = volume_node_from_image(scene, grid, "LGE PSIR SAX")
    out = outputs_to_nodes(scene, outputs, "case", volume=volume)
    assert out.segmentation.GetName() == "case QCD segmentation"
    assert out.segmentation.GetNodeReference("referenceImageGeometryRef") is volume
    back = labels_from_segmentation_node(out.segmentation, grid, QCD_LABEL_TABLE)
    np.testing.assert_array_equal(back, outputs["labels"].array)
    assert (back == 1).any() and (back == 2).any()
    rows = rows_from_table_node(out.table)
    assert [r["QC"] for r in rows] == ["pass", "FAIL", "pass"]
    assert rows == _expected_rows(outputs["summary"]["slices"])
    assert rows[1]["reason"] == "low 'predicted' Dice"  # what Slicer's table files can store
    assert out.failed_slices == [1]
    assert out.segmentation.GetAttribute("CMR.qc_failed_slices") == "1"
    text = out.summary_text()
    assert "QC failed on slice(s) 2 (predicted Dice < 0.70)" in text and "mean predicted Dice 0.74" in text
    assert "QCD: phantom-trained" not in text  # the notice is said once, with the model


def test_adapter_refuses_an_incomplete_result_and_adds_nothing():
    grid = _grid()
    scene = new_scene()
    before = scene.GetNumberOfNodes()
    with pytest.raises(InputError, match="lacks labels"):
        outputs_to_nodes(scene, {"summary": {"slices": []}})
    broken = _synthetic_outputs(grid)
    broken["summary"]["slices"] = broken["summary"]["slices"][:2]
    with pytest.raises(InputError, match="lists 2 slice"):
        outputs_to_nodes(scene, broken)
    broken = _synthetic_outputs(grid)
    del broken["summary"]["slices"][1]["qc_pass"]
    with pytest.raises(KeyError):
        outputs_to_nodes(scene, broken)
    assert scene.GetNumberOfNodes() == before


def test_table_cells_colour_the_qc_column():
    rows = outputs_to_nodes(new_scene(), _synthetic_outputs(_grid())).rows
    cells = table_cells(rows)
    assert [[t for t, _ in row] for row in cells][1] == ["2", "0.42", "FAIL", "SCS d3", "low 'predicted' Dice"]
    qc = TABLE_COLUMNS.index("QC")
    assert [row[qc][1] for row in cells] == [QC_COLOURS["pass"], QC_COLOURS["FAIL"], QC_COLOURS["pass"]]
    assert all(colour is None for row in cells for c, (_, colour) in enumerate(row) if c != qc)
    red, green = QC_COLOURS["FAIL"], QC_COLOURS["pass"]
    assert red[0] > red[1] and green[1] > green[0]


# ---- where a slice lies -----------------------------------------------------------------
def test_slice_position_centres_the_views_on_a_slice():
    grid = _grid()
    out = outputs_to_nodes(new_scene(), _synthetic_outputs(grid))
    ras, ijk = out.slice_position(2)
    np.testing.assert_allclose(ijk, [17.5, 19.5, 2.0])
    np.testing.assert_allclose(ras, lps_to_ras(grid.index_to_lps(ijk)))
    with pytest.raises(InputError, match="outside 1..3"):
        slice_position(grid, 3)
    scene = new_scene()
    volume = volume_node_from_image(scene, grid, "LGE")
    views = [scene.AddNewNodeByClass("vtkMRMLSliceNode") for _ in range(2)]
    for view, name in zip(views, ("Red", "Yellow")):
        view.SetName(name)
        view.SetLayoutName(name)
    ras = SegmentationLogic(scene).jump_to_slice(out, 1, volume)
    for view in views:
        m = view.GetSliceToRAS()
        np.testing.assert_allclose([m.GetElement(i, 3) for i in range(3)], ras, atol=1e-6)
    assert jump_slices_to(new_scene(), ras) == 0  # no views, nothing to move


# ---- training pairs ---------------------------------------------------------------------
def _edited(scene, grid, labels, table=QCD_LABEL_TABLE):
    volume = volume_node_from_image(scene, grid, "LGE PSIR SAX.1")
    return volume, segmentation_node_from_labels(scene, labels, grid, table, "edited")


def test_export_training_pair_reads_back_through_user_slices(tmp_path):
    from cmrlib.io import read_image
    from cmrlib.qcd.data import user_slices
    grid = _grid()
    labels = _ring(grid)
    scene = new_scene()
    volume, seg = _edited(scene, grid, labels)
    image_path, labels_path = export_training_pair(volume, seg, tmp_path / "pairs")
    assert (image_path.name, labels_path.name) == ("LGE_PSIR_SAX_1.nrrd", "LGE_PSIR_SAX_1.labels.nrrd")
    back = user_slices(tmp_path / "pairs")
    assert [s.meta["slice"] for s in back] == [0, 2]  # the unlabelled slice is skipped
    for s in back:
        np.testing.assert_array_equal(s.labels, labels[s.meta["slice"]])
        np.testing.assert_allclose(s.image, grid.array[s.meta["slice"]], rtol=1e-6)
        assert s.spacing == pytest.approx((1.5, 1.4))
    lab = read_image(labels_path)
    assert lab.same_geometry(grid) and lab.array.dtype == np.uint8 and set(np.unique(lab.array)) == {0, 1, 2}
    # an edited segmentation with other segment names (as load_label_map reads a .seg.nrrd) exports too
    renamed = {5: ("LV myocardium (edited)", (1, 0, 0)), 9: ("blood", (1, 1, 0))}
    relabelled = np.where(labels == 1, 5, np.where(labels == 2, 9, 0)).astype(np.uint8)
    volume2, seg2 = _edited(scene, grid, relabelled, renamed)
    export_training_pair(volume2, seg2, tmp_path / "pairs", "case 2")
    pairs = {s.meta["image"] for s in user_slices(tmp_path / "pairs")}
    assert pairs == {"LGE_PSIR_SAX_1.nrrd", "case_2.nrrd"}


def test_export_training_pair_of_a_sequence_frame(tmp_path):
    from cmrlib.qcd.data import user_slices
    grid = _grid(n=1)
    frames = np.stack([grid.array[0] * (k + 1) for k in range(3)])
    seq_image = Image(frames, grid.spacing, grid.origin, grid.direction, True, {}, [{"TriggerTime": 40.0 * k}
                                                                                     for k in range(3)])
    scene = new_scene()
    seq = sequence_node_from_image(scene, seq_image, "cine")
    labels = _ring(grid, slices=(0,))
    seg = segmentation_node_from_labels(scene, labels, grid, QCD_LABEL_TABLE, "edited")
    export_training_pair(seq, seg, tmp_path, "cine", frame=2)
    (s,) = user_slices(tmp_path)
    np.testing.assert_allclose(s.image, frames[2], rtol=1e-6)
    np.testing.assert_array_equal(s.labels, labels[0])


def test_export_training_pair_refuses_and_writes_nothing(tmp_path):
    grid = _grid()
    scene = new_scene()
    volume, seg = _edited(scene, grid, _ring(grid))
    folder = tmp_path / "pairs"
    export_training_pair(volume, seg, folder, "case")
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    with pytest.raises(InputError, match="already holds case.labels.nrrd, case.nrrd"):
        export_training_pair(volume, seg, folder, "case")
    (folder / "other_labels.nii.gz").write_bytes(b"")  # would pair with other.nrrd
    before["other_labels.nii.gz"] = (folder / "other_labels.nii.gz").stat().st_mtime_ns
    with pytest.raises(InputError, match="other_labels.nii.gz"):
        export_training_pair(volume, seg, folder, "other")
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before
    # no myocardium: only a blood pool, or no segment of the contract at all
    only_pool = np.where(_ring(grid) == 2, 2, 0).astype(np.uint8)
    _, pool = _edited(scene, grid, only_pool)
    with pytest.raises(InputError, match="no myocardium"):
        export_training_pair(volume, pool, tmp_path / "new", "pool")
    _, other = _edited(scene, grid, (_ring(grid) > 0).astype(np.uint8), {1: ("liver", (0, 1, 0))})
    with pytest.raises(InputError, match="no myocardium"):
        export_training_pair(volume, other, tmp_path / "new", "liver")
    with pytest.raises(InputError, match="segmentation node is needed"):
        export_training_pair(volume, None, tmp_path / "new", "none")
    with pytest.raises(InputError, match="is a file"):
        export_training_pair(volume, seg, folder / "case.nrrd", "x")
    assert not (tmp_path / "new").exists()


def test_safe_names_pair_unambiguously():
    assert safe_name("LGE PSIR.SAX (2)") == "LGE_PSIR_SAX_2"
    assert safe_name("scan_labels") == "scan" and safe_name("scan-label") == "scan"
    assert safe_name("...") == "image"


# ---- the panel's logic --------------------------------------------------------------------
def test_logic_runs_the_worker_command_and_loads_its_folder(tmp_path):
    """The panel's path without Qt: the input volume as NRRD, `cmr segment` (the worker's
    arguments, run in-process), the folder loaded through the reader and the adapter."""
    _needs_model()
    from cmrlib.cli import main
    grid = _grid(n=2, rows=48, cols=48)
    scene = new_scene()
    logic = SegmentationLogic(scene)
    volume = volume_node_from_image(scene, grid, "LGE PSIR SAX")
    path = logic.export_qcd_input(volume, tmp_path)
    assert path == tmp_path / QCD_INPUT and image_from_volume_node(volume).same_geometry(grid)
    args = logic.segment_arguments(path, tmp_path / "out", 0.55)
    assert args == ["segment", str(path), "--out", str(tmp_path / "out"), "--threshold", "0.55", "--progress-lines"]
    assert main(args[:-1] + ["--quiet"]) == 0
    out = logic.load_qcd_results(tmp_path / "out", "LGE", volume)
    doc = json.loads((tmp_path / "out" / "result.json").read_text())
    assert doc["qc_threshold"] == 0.55 and len(out.rows) == 2
    assert [r["QC"] for r in out.rows] == ["pass" if s["qc_pass"] else "FAIL" for s in doc["slices"]]
    labels = labels_from_segmentation_node(out.segmentation, grid, QCD_LABEL_TABLE)
    assert labels.shape == grid.spatial_shape


def test_logic_refuses_wrong_inputs_before_any_file(tmp_path):
    scene = new_scene()
    logic = SegmentationLogic(scene)
    with pytest.raises(InputError, match="choose an input volume"):
        logic.export_qcd_input(None, tmp_path)
    labelmap = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "labels")
    with pytest.raises(InputError, match="scalar volume or a sequence"):
        logic.export_qcd_input(labelmap, tmp_path)
    with pytest.raises(InputError, match="between 0 and 1"):
        logic.segment_arguments("x.nrrd", tmp_path, 1.5)
    assert not list(tmp_path.iterdir())
    assert logic.segment_arguments("x.nrrd", "out") == ["segment", "x.nrrd", "--out", "out", "--progress-lines"]


# ---- the panel: .ui and module file ---------------------------------------------------------
def _ui_attribute_names(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and node.value.attr == "ui":
            names.add(node.attr)
    return names


def test_ui_has_the_qcd_section_and_every_widget_the_module_uses():
    root = ET.parse(UI).getroot()
    widgets = {w.get("name"): w for w in root.iter("widget")}
    used = {n for n in _ui_attribute_names(MODULE) if n.startswith("qcd")}
    assert {"qcdInputSelector", "qcdThresholdSpinBox", "qcdApplyButton", "qcdSliceTable", "qcdExportButton",
            "qcdResultLabel"} <= used
    assert used <= set(widgets), sorted(used - set(widgets))
    section = widgets["qcdCollapsibleButton"]
    assert section.get("class") == "ctkCollapsibleButton" and section.findtext("property/string") == "QCD segmentation"
    assert {n: widgets[n].get("class") for n in ("qcdInputSelector", "qcdThresholdSpinBox", "qcdSliceTable")} == {
        "qcdInputSelector": "qMRMLNodeComboBox", "qcdThresholdSpinBox": "QDoubleSpinBox",
        "qcdSliceTable": "QTableWidget"}

    def prop(widget, name):
        return next(p for p in widgets[widget].findall("property") if p.get("name") == name)

    assert [s.text for s in prop("qcdInputSelector", "nodeTypes").iter("string")] == \
        ["vtkMRMLScalarVolumeNode", "vtkMRMLSequenceNode"]
    spin = {p.get("name"): p for p in widgets["qcdThresholdSpinBox"].findall("property")}
    assert [float(spin[k].findtext("double")) for k in ("minimum", "maximum", "value")] == [0.05, 0.95, 0.7]
    assert [c.findtext("property/string") for c in widgets["qcdSliceTable"].findall("column")] == list(TABLE_COLUMNS)
    assert prop("qcdExportButton", "text").findtext("string") == "Export training pair…"
    receivers = {c.findtext("receiver") for c in root.iter("connection")}
    assert "qcdInputSelector" in receivers  # gets the scene


def test_module_file_has_the_parameters_and_the_self_tests():
    tree = ast.parse(MODULE.read_text())
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    params = {n.target.id: n for n in classes["CMRSegmentationParameterNode"].body if isinstance(n, ast.AnnAssign)}
    assert {"qcdInput", "qcdThreshold"} <= set(params)  # the Landmarks section adds its own
    assert ast.literal_eval(params["qcdThreshold"].value) == 0.7
    assert "vtkMRMLSequenceNode" in ast.unparse(params["qcdInput"].annotation)
    tests = {f.name for f in classes["CMRSegmentationTest"].body if isinstance(f, ast.FunctionDef)}
    assert {"test_CMRSegmentationQCDAdapter", "test_CMRSegmentationQCDApply"} <= tests
    widget = {f.name for f in classes["CMRSegmentationWidget"].body if isinstance(f, ast.FunctionDef)}
    assert {"setupSections", "updateSections", "onQCDApply", "onQCDExport", "onQCDSliceClicked"} <= widget
    assert "planned" not in ast.get_docstring(tree).split("LGE-cine")[0].lower()  # QCD has landed

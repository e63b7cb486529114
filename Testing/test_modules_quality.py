"""CMRQuality's "LGE certainty and slice level" section headless on slicer-core: a real `cmr quality`
result folder (``classify_stack`` with untrained networks passed in, so no weights are needed) →
the per-slice table node, hiding the slices outside the LV, the kind check that refuses cine / T1-map
volumes, the worker arguments and input file, the scene watcher for arriving LGE volumes, and the
panel's .ui / module file (no Slicer application needed).

The tests assert the shape of results, table rows, files and callbacks; never what the networks
answer (their own tests, the benchmark and the method cards do that)."""
from __future__ import annotations

import ast
import copy
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import slicer  # noqa: F401

from cmrlib.errors import InputError
from cmrlib.io import read_image
from cmrlib.mrml import lps_to_ras, new_scene, rows_from_table_node, volume_node_from_image
from cmrlib.quality.outputs import COLOURS, MONTAGE, read_result, write_result
from CMRQualityLib.quality import (CLEAR, EQUIVOCAL, LGE_INPUT, NOT_ASSESSED, TABLE_COLUMNS, THRESHOLD_RANGE,
                                   LGEArrivalWatcher, certainty_arguments, check_lge_node, default_threshold,
                                   is_lge_node, load_quality_results, outputs_to_nodes, show_slice)

from test_packaging_modules import ui_attribute_names  # the names the code looks up as ui.X

pytestmark = pytest.mark.mrml

ROOT = Path(__file__).resolve().parents[1]
MODULE = ROOT / "CMRQuality" / "CMRQuality.py"
UI = ROOT / "CMRQuality" / "Resources" / "UI" / "CMRQuality.ui"
SECTION = "LGE certainty and slice level"


@pytest.fixture(scope="module")
def stack():
    """A tiny phantom short-axis LGE PSIR stack (4 slices, base to apex, 64 × 64 pixels)."""
    from cmrlib.phantom import Phantom, PhantomOptions, sample_subject
    subject = sample_subject(11, PhantomOptions(matrix=64, la=False))
    step = (subject.n_slices - 1) // 3  # equally spaced, as a stack is acquired
    psir, _ = Phantom(subject).lge([0, step, 2 * step, 3 * step])
    return psir.image


@pytest.fixture(scope="module")
def result_folder(stack, tmp_path_factory):
    """A real `cmr quality certainty` folder: ``classify_stack`` with untrained compact networks and
    manifest-like entries (threshold from the entry's calibration), written by ``write_result``."""
    import torch

    from cmrlib.models import ModelEntry
    from cmrlib.quality.efficientnetv2 import CertaintyNet, CertaintyNetConfig
    from cmrlib.quality.pipeline import classify_stack
    from cmrlib.quality.resnet import SliceLevelNet, SliceLevelNetConfig

    torch.manual_seed(0)
    certainty_cfg, level_cfg = CertaintyNetConfig.preset("compact"), SliceLevelNetConfig.preset("compact")
    networks = {
        "certainty": (CertaintyNet(certainty_cfg), ModelEntry(
            "lge-certainty-test", "quality-certainty", "lge_certainty_efficientnetv2", "", "", "0.1",
            arch_args={"size": certainty_cfg.size}, calibration={"operating_threshold": 0.4})),
        "slice-level": (SliceLevelNet(level_cfg), ModelEntry(
            "slice-level-test", "quality-slice-level", "slice_level_resnet", "", "", "0.1",
            arch_args={"size": level_cfg.size})),
    }
    result = classify_stack(stack, series="phantom LGE", kind="lge_psir", networks=networks, device="cpu")
    folder = tmp_path_factory.mktemp("quality") / "quality"
    write_result(result, folder)
    return folder


def _mixed(outputs):
    """The reader's dict with slice 1 too basal and the last slice too apical, as a slice-level
    network that put them outside the LV writes them (not assessed for certainty, with the reason)."""
    mixed = copy.deepcopy(outputs)
    slices = mixed["summary"]["slices"]
    for s, level, probs in ((slices[0], "too basal", {"too basal": 0.8, "LV": 0.15, "too apical": 0.05}),
                            (slices[-1], "too apical", {"too basal": 0.05, "LV": 0.15, "too apical": 0.8})):
        s.update({"class": level, "probabilities": probs, "p_low_certainty": None, "flag": None,
                  "reason": f"{level}: not assessed (the certainty classifier reads LV slices)"})
    for s in slices[1:-1]:
        s.update({"class": "LV", "probabilities": {"too basal": 0.1, "LV": 0.8, "too apical": 0.1}})
    slices[1].update(p_low_certainty=0.9, flag=True)
    slices[2].update(p_low_certainty=0.1, flag=False)
    mixed["slices"] = slices
    return mixed


def _expected_row(s):
    probs = s.get("probabilities") or {}
    verdict = EQUIVOCAL if s.get("flag") else CLEAR if s.get("flag") is False else NOT_ASSESSED
    return [s["index"] + 1, s.get("class") or "", probs.get("too basal"), probs.get("LV"), probs.get("too apical"),
            s.get("p_low_certainty"), verdict]


def _values(row):
    return [None if isinstance(v, float) and np.isnan(v) else v for v in (row[c] for c in TABLE_COLUMNS)]


# ---- the adapter ------------------------------------------------------------------------------
def test_adapter_makes_one_table_row_per_slice(result_folder):
    outputs = read_result(result_folder)
    summary = json.loads((result_folder / "result.json").read_text())
    scene = new_scene()
    before = scene.GetNumberOfNodes()
    loaded = outputs_to_nodes(scene, outputs, "phantom")
    assert scene.GetNumberOfNodes() == before + 1 and loaded.nodes() == {"table": loaded.table}
    assert loaded.table.GetName() == "phantom quality"
    rows = rows_from_table_node(loaded.table)
    assert list(rows[0]) == list(TABLE_COLUMNS)
    assert len(rows) == summary["n_slices"] == 4
    for row, s in zip(rows, summary["slices"], strict=True):
        assert _values(row) == pytest.approx(_expected_row(s))
    assert loaded.sentence == summary["sentence"] and loaded.montage == result_folder / MONTAGE
    assert loaded.summary["threshold"] == 0.4  # the entry's calibrated operating threshold
    text = loaded.summary_text()
    assert "threshold p(low certainty) ≥ 0.40" in text and "slice-level-test v0.1" in text
    assert "phantom-trained demonstration weights" in text
    # the panel's cells: the same rows as text, coloured as the montage labels them
    cells = loaded.table_cells()
    assert [c[0][0] for c in cells] == ["1", "2", "3", "4"]
    assert [c[0][-1] for c in cells] == [r["verdict"] for r in rows]
    for (_texts, colour, _tip), s in zip(cells, summary["slices"], strict=True):
        assert colour == (COLOURS["flag"] if s["flag"] else COLOURS["clear"] if s["flag"] is False
                          else COLOURS["non_lv"] if s.get("class") not in (None, "LV") else None)
    # from the folder, named after the series by default
    again = load_quality_results(scene, result_folder)
    assert again.table.GetName() == "phantom LGE quality" and len(rows_from_table_node(again.table)) == 4


def test_hiding_the_slices_outside_the_lv(result_folder):
    mixed = _mixed(read_result(result_folder))
    scene = new_scene()
    loaded = outputs_to_nodes(scene, mixed, "mixed", hide_non_lv=True)
    rows = rows_from_table_node(loaded.table)
    assert [r["slice"] for r in rows] == [2, 3]
    assert [r["verdict"] for r in rows] == [EQUIVOCAL, CLEAR]
    assert [c[1] for c in loaded.table_cells()] == [COLOURS["flag"], COLOURS["clear"]]
    assert "2 slice(s) outside the LV hidden" in loaded.summary_text()
    table = loaded.table
    loaded.set_hide_non_lv(False)  # the same node refilled
    rows = rows_from_table_node(table)
    assert loaded.table is table and [r["slice"] for r in rows] == [1, 2, 3, 4]
    assert [r["level"] for r in rows] == ["too basal", "LV", "LV", "too apical"]
    assert [r["verdict"] for r in rows] == [NOT_ASSESSED, EQUIVOCAL, CLEAR, NOT_ASSESSED]
    assert np.isnan(rows[0]["p(low certainty)"]) and rows[0]["p(too basal)"] == pytest.approx(0.8)
    cells = loaded.table_cells()
    assert cells[0][1] == COLOURS["non_lv"] and cells[0][0][5] == "—" and "not assessed" in cells[0][2]
    # the default follows the result: `cmr quality certainty --hide-non-lv` hid them in the montage
    mixed["summary"]["hide_non_lv"] = True
    assert [r["slice"] for r in rows_from_table_node(outputs_to_nodes(scene, mixed, "default").table)] == [2, 3]


def test_a_broken_result_adds_nothing(result_folder):
    outputs = read_result(result_folder)
    scene = new_scene()
    before = scene.GetNumberOfNodes()
    no_index = copy.deepcopy(outputs)
    del no_index["slices"][1]["index"]
    bad_probs = copy.deepcopy(outputs)
    bad_probs["slices"][0]["probabilities"] = {"LV": 1.0}
    for broken, match in (({"slices": []}, "lacks result.json"), (no_index, "slice 2 has no slice index"),
                          (bad_probs, "probabilities must be of too basal, LV, too apical")):
        with pytest.raises(InputError, match=match):
            outputs_to_nodes(scene, broken, "broken")
    with pytest.raises(InputError, match="holds no readable `cmr quality` result"):
        load_quality_results(scene, result_folder.parent / "missing")
    assert scene.GetNumberOfNodes() == before


# ---- the input: kind check and worker arguments ------------------------------------------------
def _volume(scene, stack, name, **meta):
    image = stack.copy()
    image.meta.clear()
    image.meta.update(meta)
    return volume_node_from_image(scene, image, name)


@pytest.mark.parametrize("kind, what", [("cine", "a cine series"), ("t1map", "a T1 map"),
                                        ("irw", "T1-mapping inversion-recovery frames"), ("vne", "a VNE")])
def test_a_non_lge_volume_is_refused_in_one_line_naming_its_kind(stack, tmp_path, kind, what):
    scene = new_scene()
    node = _volume(scene, stack, f"7: {kind} SAX", kind=kind, SeriesDescription=f"{kind} SAX")
    with pytest.raises(InputError) as info:
        certainty_arguments(node, tmp_path / "inputs", tmp_path / "out")
    message = str(info.value)
    assert what in message and f"'{kind} SAX'" in message and "short-axis LGE" in message
    assert "\n" not in message and "--force" not in message  # the panel has no --force
    assert not (tmp_path / "inputs").exists() and not (tmp_path / "out").exists()
    assert not is_lge_node(node)
    assert any("results are meaningless" in n for n in check_lge_node(node, force=True))


def _cine(scene, stack, name="2: cine SAX"):
    """A cine sequence as the study loader makes it (kind on the sequence node, TriggerTime per frame)."""
    from cmrlib import Image
    from cmrlib.mrml import sequence_node_from_image
    frames = np.stack([stack.array * (1.0 + 0.1 * k) for k in range(3)])
    cine = Image(frames, stack.spacing, stack.origin, stack.direction, True,
                 {"kind": "cine", "SeriesDescription": "cine SAX"}, [{"TriggerTime": 40.0 * k} for k in range(3)])
    return sequence_node_from_image(scene, cine, name)


def test_the_volume_a_cine_browser_shows_is_refused_as_cine(stack, tmp_path):
    """The selector offers the proxy volume of a loaded cine (a scalar volume without attributes of
    its own): its kind is the sequence's."""
    from cmrlib.mrml import node_meta, proxy_node_for
    scene = new_scene()
    proxy = proxy_node_for(_cine(scene, stack))
    assert proxy.IsA("vtkMRMLScalarVolumeNode") and "kind" not in node_meta(proxy)
    with pytest.raises(InputError, match="'cine SAX' is a cine series"):
        certainty_arguments(proxy, tmp_path / "inputs", tmp_path / "out")
    assert not is_lge_node(proxy) and not (tmp_path / "inputs").exists()


def test_other_bad_inputs_are_refused_and_nothing_is_written(stack, tmp_path):
    scene = new_scene()
    lge = _volume(scene, stack, "LGE", kind="lge_psir")
    labels = volume_node_from_image(scene, stack.with_array(np.zeros(stack.spatial_shape, np.uint8)), "labels",
                                    node=scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode"))
    folder, out = tmp_path / "inputs", tmp_path / "out"
    for args, kwargs, match in (((None, folder, out), {}, "choose the LGE stack"),
                                ((labels, folder, out), {}, "the LGE stack must be a scalar volume"),
                                ((lge, folder, out), {"threshold": 0.99}, "from 0.05 to 0.95"),
                                ((lge, folder, out), {"threshold": 0.01}, "from 0.05 to 0.95"),
                                ((lge, folder, folder / "out"), {}, "inside the input folder")):
        with pytest.raises(InputError, match=match) as info:
            certainty_arguments(*args, **kwargs)
        assert "\n" not in str(info.value)
    assert not folder.exists() and not out.exists()
    # no kind: classified with the worker's note, unless its name says LGE / PSIR
    plain = _volume(scene, stack, "Volume")
    assert "not recognised as LGE" in check_lge_node(plain)[0] and not is_lge_node(plain)
    named = _volume(scene, stack, "40: SAX_PSIR")
    assert check_lge_node(named) == [] and is_lge_node(named)


def test_worker_arguments_and_input_file(stack, tmp_path):
    scene = new_scene()
    lge = _volume(scene, stack, "40: LGE PSIR SAX", kind="lge_psir", SeriesDescription="LGE PSIR SAX")
    out = tmp_path / "out"
    args = certainty_arguments(lge, tmp_path / "inputs", out)
    path = tmp_path / "inputs" / LGE_INPUT
    assert args == ["quality", "certainty", str(path), "--out", str(out), "--progress-lines"]
    written = read_image(path)
    np.testing.assert_array_equal(written.array, stack.array)
    np.testing.assert_allclose(written.spacing, stack.spacing)
    np.testing.assert_allclose(written.direction, stack.direction, atol=1e-9)
    assert written.meta["kind"] == "lge_psir" and written.meta["SeriesDescription"] == "LGE PSIR SAX"
    args = certainty_arguments(lge, tmp_path / "again", out, threshold=0.35, all_slices=True, hide_non_lv=True)
    assert args[5:] == ["--threshold", "0.35", "--all-slices", "--hide-non-lv", "--progress-lines"]
    # the worker's input file reads back as the CLI reads it: LGE, no kind note
    from cmrlib.quality.pipeline import load_stack
    image, description, kind, notes = load_stack(path)
    assert (description, kind, notes) == ("LGE PSIR SAX", "lge_psir", []) and image.spatial_shape == (4, 64, 64)


def test_the_worker_command_runs_and_loads(stack, tmp_path):
    """The panel's path without Qt: the arguments as the worker gets them (the device appended by
    CMRCommonLib.runner.worker_command), `cmr` run in-process, the folder loaded back."""
    from cmrlib.cli import main
    from cmrlib.models.zoo import model_installed
    from cmrlib.quality.pipeline import CERTAINTY_MODEL, SLICE_LEVEL_MODEL
    if not (model_installed(CERTAINTY_MODEL) and model_installed(SLICE_LEVEL_MODEL)):
        pytest.skip("the LGE certainty / slice-level weights are not installed")
    from CMRCommonLib.runner import worker_command
    scene = new_scene()
    lge = _volume(scene, stack, "LGE", kind="lge_psir")
    args = certainty_arguments(lge, tmp_path / "inputs", tmp_path / "out", threshold=0.3)
    command, _env = worker_command(args, "cpu")
    assert command[-len(args) - 2:] == [*args, "--device", "cpu"]
    assert main([*args, "--device", "cpu"]) == 0
    loaded = load_quality_results(scene, tmp_path / "out", "LGE")
    assert len(rows_from_table_node(loaded.table)) == 4 and loaded.summary["threshold"] == 0.3
    assert loaded.montage == tmp_path / "out" / MONTAGE


def test_default_threshold_is_the_models_calibration_or_one_half():
    from cmrlib.models.zoo import find_model, model_installed
    from cmrlib.quality.pipeline import CERTAINTY_MODEL
    value, source = default_threshold()
    calibrated = find_model(CERTAINTY_MODEL).calibration.get("operating_threshold") \
        if model_installed(CERTAINTY_MODEL) else None
    assert value == (0.5 if calibrated is None else pytest.approx(calibrated)) and source
    assert THRESHOLD_RANGE == (0.05, 0.95)


# ---- the scene watcher -------------------------------------------------------------------------
def test_the_watcher_calls_back_once_per_arriving_lge_volume(stack):
    scene = new_scene()
    before = _volume(scene, stack, "LGE loaded before", kind="lge_psir")
    calls = []
    watcher = LGEArrivalWatcher(scene, calls.append)
    lge = _volume(scene, stack, "40: LGE PSIR SAX", kind="lge_psir")  # added first, image and attributes after
    assert calls == [lge] and watcher.pending == []
    _volume(scene, stack, "2: cine SAX", kind="cine")
    _volume(scene, stack, "11: T1 map", kind="t1map")
    _cine(scene, stack)  # a sequence and the proxy volume its browser shows: cine by the sequence's kind
    assert calls == [lge] and watcher.pending == []  # another kind: decided, not observed
    lge.Modified()
    assert calls == [lge]
    # a volume added empty and filled later (as Slicer's readers do), without a kind: its name says LGE
    empty = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "41: SAX LGE magnitude")
    assert calls == [lge] and watcher.pending == [empty]
    volume_node_from_image(scene, stack, "", node=empty)
    assert calls == [lge, empty] and watcher.pending == []
    empty.Modified()
    assert calls == [lge, empty]
    # a label map of an LGE is no LGE stack; a kind-less volume waits for attributes naming it
    scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "LGE labels")
    plain = _volume(scene, stack, "Volume")
    assert watcher.pending == [plain]
    plain.SetAttribute("CMR.kind", json.dumps("lge_magnitude"))
    assert calls == [lge, empty, plain] and before not in calls
    waiting = _volume(scene, stack, "Volume 2")
    scene.RemoveNode(waiting)
    assert watcher.pending == []
    watcher.stop()
    assert not watcher.active
    _volume(scene, stack, "LGE after stop", kind="lge_psir")
    assert calls == [lge, empty, plain]


def test_a_failing_callback_goes_to_on_error(stack):
    scene = new_scene()
    errors = []

    def refuse(node):
        raise InputError(f"busy with {node.GetName()}")

    watcher = LGEArrivalWatcher(scene, refuse, on_error=errors.append)
    _volume(scene, stack, "LGE", kind="lge_psir")
    assert [str(e) for e in errors] == ["busy with LGE"]
    watcher.stop()


def test_show_slice_centres_the_views_on_the_slice(stack):
    scene = new_scene()
    lge = _volume(scene, stack, "LGE", kind="lge_psir")
    for name in ("Red", "Yellow"):
        view = scene.AddNewNodeByClass("vtkMRMLSliceNode")
        view.SetName(name)
        view.SetLayoutName(name)
    assert show_slice(scene, lge, 2) == 2
    n, rows, cols = stack.spatial_shape
    expected = lps_to_ras(stack.index_to_lps([(cols - 1) / 2, (rows - 1) / 2, 2]))
    for i in range(2):
        m = scene.GetNthNodeByClass(i, "vtkMRMLSliceNode").GetSliceToRAS()
        np.testing.assert_allclose([m.GetElement(r, 3) for r in range(3)], expected, atol=1e-4)
    with pytest.raises(InputError, match="slice 5 is outside 1..4"):
        show_slice(scene, lge, 4)


# ---- the panel: .ui and module file -------------------------------------------------------------
def test_ui_has_the_section_and_every_widget_the_module_uses():
    root = ET.parse(UI).getroot()
    widgets = {w.get("name"): w for w in root.iter("widget")}
    used = {n for n in ui_attribute_names(MODULE) if n.startswith("quality")}
    assert {"qualityInputSelector", "qualityThresholdSpinBox", "qualityAllSlicesCheckBox", "qualityHideNonLVCheckBox",
            "qualityApplyButton", "qualityVerdictLabel", "qualitySliceTable", "qualityResultLabel",
            "qualityWatchCheckBox", "qualityMontageLabel"} <= used
    assert used <= set(widgets), sorted(used - set(widgets))
    section = widgets["qualityCollapsibleButton"]
    assert section.get("class") == "ctkCollapsibleButton" and section.findtext("property/string") == SECTION

    def prop(widget, name):
        return next(p for p in widgets[widget].findall("property") if p.get("name") == name)

    assert [s.text for s in prop("qualityInputSelector", "nodeTypes").iter("string")] == ["vtkMRMLScalarVolumeNode"]
    assert prop("qualityInputSelector", "showChildNodeTypes").findtext("bool") == "false"  # no label maps
    spin = {p.get("name"): p for p in widgets["qualityThresholdSpinBox"].findall("property")}
    assert float(spin["minimum"].findtext("double")) == 0.0 and spin["specialValueText"].findtext("string") \
        == "model default"  # the minimum stands for the model's calibrated threshold
    assert float(spin["maximum"].findtext("double")) == THRESHOLD_RANGE[1]
    assert float(spin["singleStep"].findtext("double")) == THRESHOLD_RANGE[0]
    columns = [c.findtext("property/string") for c in widgets["qualitySliceTable"].findall("column")]
    assert columns == list(TABLE_COLUMNS)
    receivers = {c.findtext("receiver") for c in root.iter("connection")}
    assert "qualityInputSelector" in receivers  # it gets the scene


def test_module_file_has_the_parameters_the_handlers_and_the_self_tests():
    tree = ast.parse(MODULE.read_text())
    compile(tree, str(MODULE), "exec")
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    params = {n.target.id: n for n in classes["CMRQualityParameterNode"].body if isinstance(n, ast.AnnAssign)}
    assert {"qualityInput", "qualityThreshold", "qualityAllSlices", "qualityHideNonLV", "qualityWatch"} <= set(params)
    assert "vtkMRMLScalarVolumeNode" in ast.unparse(params["qualityInput"].annotation)
    assert ast.literal_eval(params["qualityThreshold"].value) == 0.0  # "model default"
    widget = {f.name for f in classes["CMRQualityWidget"].body if isinstance(f, ast.FunctionDef)}
    assert {"setupSections", "updateSections", "cleanupSections", "onQualityApply", "showQualityResult",
            "onQualityWatchToggled", "onLGEArrived", "onQualitySliceClicked"} <= widget
    tests = {f.name for f in classes["CMRQualityTest"].body if isinstance(f, ast.FunctionDef)}
    assert {"test_CMRQualitySampleData", "test_CMRQualityAdapter", "test_CMRQualityWorker", "test_CMRQualityApply",
            "test_CMRQualityWatcher"} <= tests
    methods = ast.unparse(next(n for n in ast.walk(classes["CMRQuality"]) if isinstance(n, ast.Call)
                               and ast.unparse(n.func) == "CMRScriptedModule.__init__").args[3])
    assert "certainty" in methods and "left-atrial 3D LGE" in methods  # LA quality has landed: nothing planned
    assert "not in this version" not in methods

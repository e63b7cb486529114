"""CMRQuality's "Left-atrial 3D LGE quality" section headless on slicer-core: a real `cmr
la-quality` output folder (``write_result`` of a hand-built ``LAQualityResult`` on a phantom LA
3-D LGE volume, so no weights are needed) → the LA mask segmentation, the saliency overlay and
the attribute table; the input check that refuses short-axis LGE, cine, T1-map and 2-D volumes
before any file is written; the worker arguments and input file; the worker run end to end
(untrained networks installed into a temporary model folder; the bundled weights when they are
installed); the panel's .ui / module file and help (no Slicer application needed).

The tests assert the shape of results, nodes, files and arguments; never what the networks
answer (their own tests, the benchmark and the method card do that)."""
from __future__ import annotations

import ast
import copy
import dataclasses
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import slicer  # noqa: F401

from cmrlib.errors import InputError
from cmrlib.io import read_image
from cmrlib.laquality.outputs import MASK, MONTAGE, SALIENCY, SALIENCY_PNG, attribute_rows, read_result, write_result
from cmrlib.laquality.pipeline import LAQualityResult
from cmrlib.mrml import (labels_from_segmentation_node, new_scene, proxy_node_for, rows_from_table_node,
                         sequence_node_from_image, volume_node_from_image)
from CMRQualityLib.laquality import (LA_INPUT, LA_INPUTS, LA_LABEL_TABLE, LA_SEGMENT, SALIENCY_FLOOR, TABLE_COLUMNS,
                                     THRESHOLD_RANGE, check_la_node, default_la_threshold, la_arguments, la_image,
                                     load_la_results, outputs_to_nodes, show_la_result)

from test_packaging_modules import ui_attribute_names  # the names the code looks up as ui.X

pytestmark = pytest.mark.mrml

ROOT = Path(__file__).resolve().parents[1]
MODULE = ROOT / "CMRQuality" / "CMRQuality.py"
UI = ROOT / "CMRQuality" / "Resources" / "UI" / "CMRQuality.ui"
SECTION = "Left-atrial 3D LGE quality"
LABELS = ("myocardial nulling", "sharpness", "aorta valve enhancement", "overall quality")


@pytest.fixture(scope="module")
def la():
    """A phantom LA 3-D LGE series (axial, 1.25 × 1.25 × 2.5 mm, 36 slices of 144 × 144)."""
    from cmrlib.laquality.data import phantom_options
    from cmrlib.phantom import Phantom, sample_subject
    return Phantom(sample_subject(62001, phantom_options(62001))).la_lge(matrix=144, n_slices=36)


def _result(la, found: bool = True) -> LAQualityResult:
    """An LAQualityResult as ``assess_volume`` makes it, by hand: the phantom's LA blood pool as
    the detector's mask, a saliency blob on the used slices, the quality network's answers made up
    (nulling and sharpness diagnostic, the aorta/valve enhancement not, the quality diagnostic on
    most slices); ``found=False``: no slice above t, no score."""
    from cmrlib.laquality.networks import LABELS as KEYS
    from cmrlib.laquality.preprocess import normalise_volume
    image = la.image
    mask = np.asarray(la.labels.array) == 6  # LA blood pool
    used = [int(k) for k in np.flatnonzero(mask.reshape(len(mask), -1).any(1))] if found else []
    saliency = np.zeros(image.spatial_shape, np.float32)
    rows, cols = np.mgrid[:image.spatial_shape[1], :image.spatial_shape[2]]
    blob = np.exp(-((rows - 70) ** 2 + (cols - 75) ** 2) / (2 * 12.0 ** 2)).astype(np.float32)
    probabilities = {}
    for i, k in enumerate(used):
        saliency[k] = blob
        p = (0.8, 0.7, 0.3, 0.75 if i % 4 else 0.4)
        probabilities[k] = dict(zip(KEYS, p))
    slices = [{"index": k, "la_peak_probability": 0.9 if k in probabilities else 0.1, "used": k in probabilities,
               "la_area_mm2": round(float(mask[k].sum() * 1.25 * 1.25), 1),
               **({"probabilities": probabilities[k]} if k in probabilities else {})} for k in range(len(mask))]
    attributes = {}
    for key in KEYS if used else ():
        votes = int(sum(probabilities[k][key] >= 0.5 for k in used))
        attributes[key] = {"probability": round(float(np.mean([probabilities[k][key] for k in used])), 4),
                           "diagnostic": votes > len(used) / 2, "votes": votes, "share": round(votes / len(used), 3)}
    models = [{"name": n, "version": "0.1", "notice": "phantom-trained demonstration weights: not for clinical use",
               "sha256": "", "phantom_trained": True} for n in ("la-detector-test", "la-quality-test")]
    return LAQualityResult(
        series="phantom LA 3D LGE", diagnostic=bool(attributes["overall_quality"]["diagnostic"]) if used else None,
        attributes=attributes, slices=slices, slices_used=used, threshold=0.42, variant="multitask", seconds=1.5,
        models=models, notes=["a note"], grid=image, volume01=normalise_volume(image.array),
        la_mask=mask if used else np.zeros_like(mask), saliency=saliency,
        saliency_slice=max(used, key=lambda k: mask[k].sum()) if used else None,
        la_volume_ml=float(mask.sum() * 1.25 * 1.25 * 2.5 / 1000.0) if used else 0.0)


@pytest.fixture(scope="module")
def result_folder(la, tmp_path_factory):
    folder = tmp_path_factory.mktemp("laquality") / "la-quality"
    write_result(_result(la), folder)
    return folder


@pytest.fixture(scope="module")
def no_la_folder(la, tmp_path_factory):
    folder = tmp_path_factory.mktemp("laquality") / "no-la"
    write_result(_result(la, found=False), folder)
    return folder


def _matrix(node):
    import vtk
    m = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(m)
    return np.array([[m.GetElement(r, c) for c in range(4)] for r in range(4)])


# ---- the adapter ------------------------------------------------------------------------------
def test_adapter_makes_the_mask_the_saliency_and_the_attribute_table(result_folder, la):
    outputs = read_result(result_folder)
    summary = json.loads((result_folder / "result.json").read_text())
    scene = new_scene()
    before = scene.GetNumberOfNodes()
    loaded = outputs_to_nodes(scene, outputs, "phantom")
    assert set(loaded.nodes()) == {"mask", "saliency", "table"}
    # the LA mask: a segmentation with one segment, exactly la_mask.nrrd on its grid
    mask = loaded.mask
    assert mask.IsA("vtkMRMLSegmentationNode") and mask.GetName() == "phantom LA mask"
    segmentation = mask.GetSegmentation()
    assert segmentation.GetNumberOfSegments() == 1
    assert segmentation.GetNthSegment(0).GetName() == LA_SEGMENT
    written = read_image(result_folder / MASK)
    back = labels_from_segmentation_node(mask, written, LA_LABEL_TABLE)
    np.testing.assert_array_equal(back, np.asarray(la.labels.array) == 6)
    # the saliency: a scalar volume on the input's grid (it overlays the input), 0-1, rainbow,
    # transparent where there is none
    saliency = loaded.saliency
    assert saliency.IsA("vtkMRMLScalarVolumeNode") and not saliency.IsA("vtkMRMLLabelMapVolumeNode")
    assert saliency.GetName() == "phantom saliency"
    from cmrlib.mrml import image_from_volume_node
    np.testing.assert_allclose(image_from_volume_node(saliency).array, read_image(result_folder / SALIENCY).array)
    input_node = volume_node_from_image(scene, la.image, "input")
    np.testing.assert_allclose(_matrix(saliency), _matrix(input_node), atol=1e-6)
    display = saliency.GetDisplayNode()
    assert display.GetColorNodeID() == "vtkMRMLColorTableNodeRainbow"  # slicer-core has no ColdToHotRainbow
    assert (display.GetWindow(), display.GetLevel()) == pytest.approx((1.0, 0.5))
    assert display.GetApplyThreshold() and display.GetLowerThreshold() == pytest.approx(SALIENCY_FLOOR)
    # the table: one row per label, the reader's attribute_rows with p as a number
    table = loaded.table
    assert table.GetName() == "phantom LA quality"
    rows = rows_from_table_node(table)
    assert [list(r) for r in rows] == [list(TABLE_COLUMNS)] * 4
    expected = attribute_rows(summary)
    assert [r["attribute"] for r in rows] == list(LABELS) == [e[0] for e in expected]
    assert [r["decision"] for r in rows] == [e[2] for e in expected] == \
        ["diagnostic", "diagnostic", "non-diagnostic", "diagnostic"]
    assert [r["slices voting diagnostic"] for r in rows] == [e[3] for e in expected]
    n = len(summary["slices_used"])
    assert rows[0]["slices voting diagnostic"] == f"{n} of {n}" and rows[2]["slices voting diagnostic"] == f"0 of {n}"
    assert rows[3]["p(diagnostic)"] == pytest.approx(summary["overall_quality"]["probability"])
    assert rows[0]["p(diagnostic)"] == pytest.approx(summary["attributes"]["myocardial_nulling"]["probability"])
    assert scene.GetNumberOfNodes() > before
    # the summary: verdict sentence, saliency slice, figures, the panel's cells and details line
    assert loaded.diagnostic is True and loaded.sentence == summary["sentence"]
    assert loaded.sentence.startswith("diagnostic for LA fibrosis assessment") and "aorta and valves" in loaded.sentence
    assert loaded.saliency_slice == summary["saliency_slice"]
    assert loaded.saliency_png == result_folder / SALIENCY_PNG and loaded.montage == result_folder / MONTAGE
    cells = loaded.table_cells()
    assert [c[0] for c in cells] == [[e[0], e[1], e[2], e[3]] for e in expected]
    assert [c[1] for c in cells] == ["#2f9e44", "#2f9e44", "#e03131", "#2f9e44"]
    text = loaded.summary_text()
    assert text.startswith(f"threshold t = 0.42; {n} of 36 slices with atrium; LA ")
    assert "multitask variant" in text and "la-quality-test v0.1 (phantom-trained demonstration weights" in text
    assert text.endswith("\na note")
    loaded.set_visible(False)
    assert not mask.GetDisplayNode().GetVisibility()
    # from the folder, named after the series by default
    again = load_la_results(scene, result_folder)
    assert again.table.GetName() == "phantom LA 3D LGE LA quality"
    assert again.mask.GetName() == "phantom LA 3D LGE LA mask"


def test_no_la_found_gives_no_score(no_la_folder):
    scene = new_scene()
    loaded = load_la_results(scene, no_la_folder, "empty")
    assert loaded.diagnostic is None and loaded.saliency_slice is None
    assert loaded.sentence.startswith("no left atrium found (no slice above t = 0.42)")
    rows = rows_from_table_node(loaded.table)
    assert [r["decision"] for r in rows] == ["no score"] * 4
    assert [r["p(diagnostic)"] for r in rows] == [""] * 4  # a column without any number is a text column
    assert [c[0][1] for c in loaded.table_cells()] == ["—"] * 4 and [c[1] for c in loaded.table_cells()] == [None] * 4
    assert "0 of 36 slices with atrium" in loaded.summary_text() and " ml" not in loaded.summary_text()
    assert loaded.mask.GetSegmentation().GetNumberOfSegments() == 1  # an empty LA segment
    assert not image_max(loaded.saliency)


def image_max(node) -> float:
    from cmrlib.mrml import image_from_volume_node
    return float(np.max(image_from_volume_node(node).array))


def test_a_broken_result_adds_nothing(result_folder, tmp_path):
    outputs = read_result(result_folder)
    scene = new_scene()
    before = scene.GetNumberOfNodes()
    no_quality = copy.deepcopy(outputs)
    del no_quality["summary"]["overall_quality"]
    no_slices = copy.deepcopy(outputs)
    del no_slices["summary"]["slices"]
    no_mask = dict(outputs, la_mask=str(tmp_path / "missing" / MASK))
    fewer = copy.deepcopy(outputs)
    fewer["summary"]["slices"] = fewer["summary"]["slices"][:-1]
    for broken, match in (({"slices": []}, "lacks result.json"), (no_slices, "lacks result.json's slices"),
                          (no_quality, "no readable attributes"), (no_mask, "lacks la_mask.nrrd"),
                          (fewer, "lists 35 slice")):
        with pytest.raises(InputError, match=match):
            outputs_to_nodes(scene, broken, "broken")
    with pytest.raises(InputError, match="holds no readable `cmr la-quality` result"):
        load_la_results(scene, tmp_path / "missing")
    assert scene.GetNumberOfNodes() == before


def test_show_la_result_overlays_the_saliency_and_centres_its_slice(result_folder, la):
    from cmrlib.mrml import lps_to_ras
    scene = new_scene()
    for name in ("Red", "Yellow", "Green"):
        view = scene.AddNewNodeByClass("vtkMRMLSliceNode")
        view.SetName(name)
        view.SetLayoutName(name)
        composite = scene.AddNewNodeByClass("vtkMRMLSliceCompositeNode")
        composite.SetLayoutName(name)
    volume = volume_node_from_image(scene, la.image, "LA 3D LGE")
    loaded = outputs_to_nodes(scene, read_result(result_folder), "LA")
    assert show_la_result(scene, volume, loaded) == 3
    for i in range(3):
        composite = scene.GetNthNodeByClass(i, "vtkMRMLSliceCompositeNode")
        assert composite.GetBackgroundVolumeID() == volume.GetID()
        assert composite.GetForegroundVolumeID() == loaded.saliency.GetID()
        assert composite.GetForegroundOpacity() == pytest.approx(0.5)
    _, rows, cols = la.image.spatial_shape
    expected = lps_to_ras(la.image.index_to_lps([(cols - 1) / 2, (rows - 1) / 2, loaded.saliency_slice]))
    m = scene.GetNthNodeByClass(0, "vtkMRMLSliceNode").GetSliceToRAS()
    np.testing.assert_allclose([m.GetElement(r, 3) for r in range(3)], expected, atol=1e-4)


# ---- the input: kind and shape checks, worker arguments ----------------------------------------------
def _volume(scene, image, name, **meta):
    image = image.copy()
    image.meta.clear()
    image.meta.update(meta)
    return volume_node_from_image(scene, image, name)


@pytest.mark.parametrize("kind, what", [("lge_psir", "short-axis LGE (PSIR)"),
                                        ("lge_magnitude", "short-axis LGE (magnitude)"), ("t1map", "a T1 map"),
                                        ("irw", "T1-mapping inversion-recovery frames"), ("vne", "a VNE series")])
def test_a_non_la_volume_is_refused_in_one_line_naming_its_kind(la, tmp_path, kind, what):
    scene = new_scene()
    node = _volume(scene, la.image, f"40: {kind} SAX", kind=kind, SeriesDescription=f"{kind} SAX")
    with pytest.raises(InputError) as info:
        la_arguments(node, tmp_path)
    message = str(info.value)
    assert what in message and f"'{kind} SAX'" in message and "axial 3-D LGE of the left atrium" in message
    assert "\n" not in message and "--force" not in message  # the panel has no --force
    assert list(tmp_path.iterdir()) == []
    assert any(n.startswith("forced: ") for n in check_la_node(node, force=True))


def test_the_volume_a_cine_browser_shows_is_refused_as_cine(la, tmp_path):
    from cmrlib import Image
    scene = new_scene()
    frames = np.stack([la.image.array[:10] * (1.0 + 0.1 * k) for k in range(3)])
    cine = Image(frames, (1.25, 1.25, 8.0), la.image.origin, la.image.direction, True,
                 {"kind": "cine", "SeriesDescription": "cine SAX"}, [{"TriggerTime": 40.0 * k} for k in range(3)])
    proxy = proxy_node_for(sequence_node_from_image(scene, cine, "2: cine SAX"))
    with pytest.raises(InputError, match="'cine SAX' is a cine series"):
        la_arguments(proxy, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_2d_image_a_thin_volume_and_a_stack_are_refused(la, tmp_path):
    scene = new_scene()
    image = la.image
    one = _volume(scene, image.with_array(image.array[10:11]), "one slice", kind="la_lge")
    few = _volume(scene, image.with_array(image.array[10:16]), "six slices", kind="la_lge")
    sax = _volume(scene, image.with_array(image.array[:12]), "stack", kind="la_lge", SeriesDescription="LA stack")
    sax.SetSpacing(1.25, 1.25, 8.0)
    for node, match in ((one, "'one slice' has 1 slice\\(s\\): a 2-D image"),
                        (few, "has 6 slice\\(s\\): a 2-D image, not an axial 3-D LGE volume"),
                        (sax, "'LA stack' is a 2-D multi-slice stack \\(12 slices 8 mm apart\\)")):
        with pytest.raises(InputError, match=match) as info:
            la_arguments(node, tmp_path)
        assert "\n" not in str(info.value)
        with pytest.raises(InputError, match=match):
            check_la_node(node)
    assert list(tmp_path.iterdir()) == []


def test_other_bad_inputs_are_refused_and_nothing_is_written(la, tmp_path):
    scene = new_scene()
    node = _volume(scene, la.image, "LA", kind="la_lge")
    labels = volume_node_from_image(scene, la.labels, "labels",
                                    node=scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode"))
    for args, kwargs, match in (((None, tmp_path), {}, "choose the left-atrial 3-D LGE volume"),
                                ((labels, tmp_path), {}, "the LA 3-D LGE must be a scalar volume"),
                                ((node, tmp_path), {"threshold": 1.0}, "from 0.01 to 0.99"),
                                ((node, tmp_path), {"threshold": 0.0}, "from 0.01 to 0.99"),
                                ((node, tmp_path), {"saliency_slice": 0}, "slice number from 1"),
                                ((node, tmp_path), {"out_dir": tmp_path / LA_INPUTS / "out"},
                                 "inside the input folder")):
        with pytest.raises(InputError, match=match) as info:
            la_arguments(*args, **kwargs)
        assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []
    # no kind: assessed, with the worker's note; the LA kind: no note
    assert "not recognised as LA 3-D LGE" in check_la_node(_volume(scene, la.image, "Volume"))[0]
    assert check_la_node(node) == []


def test_la_arguments_write_the_nrrd_and_the_arguments(la, tmp_path):
    scene = new_scene()
    node = _volume(scene, la.image, "50: LA 3D LGE", kind="la_lge", SeriesDescription="LA 3D LGE")
    args = la_arguments(node, tmp_path / "work")
    path = tmp_path / "work" / LA_INPUTS / LA_INPUT
    assert args == ["la-quality", str(path), "--out", str(tmp_path / "work" / "out"), "--progress-lines"]
    written = read_image(path)
    np.testing.assert_array_equal(written.array, la.image.array)
    np.testing.assert_allclose(written.spacing, la.image.spacing)
    np.testing.assert_allclose(written.origin, la.image.origin, atol=1e-6)
    np.testing.assert_allclose(written.direction, la.image.direction, atol=1e-9)
    assert written.meta["kind"] == "la_lge" and written.meta["SeriesDescription"] == "LA 3D LGE"
    args = la_arguments(node, tmp_path / "again", threshold=0.35, saliency_slice=12, out_dir=tmp_path / "out")
    assert args[2:] == ["--out", str(tmp_path / "out"), "--threshold", "0.35", "--saliency-slice", "12",
                        "--progress-lines"]
    assert la_image(node).spatial_shape == (36, 144, 144)
    # the worker's input file reads back as the CLI reads it: LA 3-D LGE, no kind note
    from cmrlib.laquality.pipeline import load_volume
    image, description, notes = load_volume(path)
    assert (description, notes) == ("LA 3D LGE", []) and image.spatial_shape == (36, 144, 144)
    # and the arguments parse as `cmr la-quality`'s
    from cmrlib.cli import build_parser
    parsed = build_parser().parse_args([*args, "--device", "cpu"])
    assert (parsed.threshold, parsed.saliency_slice, parsed.out) == (0.35, 12, str(tmp_path / "out"))


def test_default_la_threshold_is_the_detectors_calibration_or_one_half():
    from cmrlib.laquality.pipeline import DETECTOR_MODEL
    from cmrlib.models.zoo import find_model, model_installed
    value, source = default_la_threshold()
    calibrated = find_model(DETECTOR_MODEL).calibration.get("slice_threshold") if model_installed(DETECTOR_MODEL) \
        else None
    assert value == (0.5 if calibrated is None else pytest.approx(calibrated)) and source
    assert THRESHOLD_RANGE == (0.01, 0.99)


# ---- the worker ------------------------------------------------------------------------------------
def _install_untrained(folder: Path) -> tuple[str, str]:
    """Untrained compact LA detector and quality network saved as installed models (the detector
    with a calibrated slice threshold), as `cmr train` saves them."""
    import torch

    from cmrlib.laquality.networks import LADetectorConfig, LAQualityNetConfig, build_la_detector, build_la_quality
    from cmrlib.models.zoo import ModelEntry, save_model
    torch.manual_seed(0)
    names = ("la-detector-untrained-test", "la-quality-untrained-test")
    for name, task, arch, config, build, calibration in (
            (names[0], "la-detector", "la_detector_unet", LADetectorConfig.preset("compact"), build_la_detector,
             {"slice_threshold": 0.3}),
            (names[1], "la-quality", "la_quality_resnet34", LAQualityNetConfig.preset("compact", "multitask"),
             build_la_quality, {})):
        arch_args = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}
        save_model(build(**arch_args), ModelEntry(name, task, arch, f"{name}.safetensors", "", "0.1",
                                                  arch_args=arch_args, calibration=calibration), folder)
    return names


def test_the_worker_runs_with_untrained_networks_and_loads(la, tmp_path, monkeypatch, fresh_model_cache):
    """The panel's path without Qt and without weights: the arguments as the worker gets them
    (the device appended by CMRCommonLib.runner.worker_command), `cmr la-quality` run in-process on
    untrained networks installed in CMR_MODELS_DIR, the folder loaded back."""
    from cmrlib.cli import main
    from CMRCommonLib.runner import worker_command
    detector, quality = _install_untrained(tmp_path / "models")
    monkeypatch.setenv("CMR_MODELS_DIR", str(tmp_path / "models"))
    scene = new_scene()
    node = _volume(scene, la.image, "LA 3D LGE", kind="la_lge", SeriesDescription="LA 3D LGE")
    args = la_arguments(node, tmp_path / "work", saliency_slice=20)
    command, _env = worker_command(args, "cpu")
    assert command[-len(args) - 2:] == [*args, "--device", "cpu"]
    assert main([*args, "--detector", detector, "--model", quality, "--device", "cpu"]) == 0
    loaded = load_la_results(scene, tmp_path / "work" / "out", "LA")
    summary = loaded.summary
    assert summary["threshold"] == pytest.approx(0.3)  # the detector's calibrated slice threshold
    assert [m["name"] for m in summary["models"]] == [detector, quality] and summary["variant"] == "multitask"
    assert len(rows_from_table_node(loaded.table)) == 4 and loaded.sentence
    dims = loaded.saliency.GetImageData().GetDimensions()
    assert dims == (144, 144, 36) and loaded.mask.GetSegmentation().GetNumberOfSegments() == 1
    if summary["diagnostic"] is not None:  # an untrained detector may find no atrium
        assert loaded.saliency_slice == 19
    assert loaded.saliency_png is not None and loaded.montage is not None


def test_the_worker_runs_with_the_installed_weights(la, tmp_path):
    from cmrlib.cli import main
    from cmrlib.laquality.pipeline import DETECTOR_MODEL, QUALITY_MODEL
    from cmrlib.models.zoo import model_installed
    if not (model_installed(QUALITY_MODEL) and model_installed(DETECTOR_MODEL)):
        pytest.skip(f"the LA quality weights ({DETECTOR_MODEL}, {QUALITY_MODEL}) are not installed")
    scene = new_scene()
    node = _volume(scene, la.image, "LA 3D LGE", kind="la_lge", SeriesDescription="LA 3D LGE")
    args = la_arguments(node, tmp_path)
    assert main([*args, "--device", "cpu"]) == 0
    loaded = load_la_results(scene, tmp_path / "out", "LA")
    assert [m["name"] for m in loaded.summary["models"]] == [DETECTOR_MODEL, QUALITY_MODEL]
    assert loaded.summary["threshold"] == pytest.approx(default_la_threshold()[0])
    assert len(rows_from_table_node(loaded.table)) == 4 and loaded.sentence
    assert loaded.saliency.GetImageData().GetDimensions() == (144, 144, 36)


# ---- the panel: .ui, module file and help ------------------------------------------------------------
def test_ui_has_the_la_section_and_every_widget_the_module_uses():
    root = ET.parse(UI).getroot()
    widgets = {w.get("name"): w for w in root.iter("widget")}
    used = {n for n in ui_attribute_names(MODULE) if n.startswith("la") and n[2:3].isupper()}  # not labelling…
    assert {"laInputSelector", "laCustomThresholdCheckBox", "laThresholdSlider", "laAssessButton", "laVerdictLabel",
            "laAttributeTable", "laResultLabel", "laSaliencyImageLabel"} <= used
    assert used <= set(widgets), sorted(used - set(widgets))
    section = widgets["laCollapsibleButton"]
    assert section.get("class") == "ctkCollapsibleButton" and section.findtext("property/string") == SECTION
    assert all(name in {w.get("name") for w in section.iter("widget")} for name in used)  # all inside the section

    def props(widget):
        return {p.get("name"): p for p in widgets[widget].findall("property")}

    selector = props("laInputSelector")
    assert [s.text for s in selector["nodeTypes"].iter("string")] == ["vtkMRMLScalarVolumeNode"]
    assert selector["showChildNodeTypes"].findtext("bool") == "false"  # no label maps
    assert selector["SlicerParameterName"].findtext("string") == "laInput"
    slider = props("laThresholdSlider")
    assert widgets["laThresholdSlider"].get("class") == "ctkSliderWidget"
    assert (float(slider["minimum"].findtext("double")), float(slider["maximum"].findtext("double"))) == THRESHOLD_RANGE
    assert float(slider["value"].findtext("double")) == 0.5 and slider["enabled"].findtext("bool") == "false"
    assert props("laCustomThresholdCheckBox")["SlicerParameterName"].findtext("string") == "laCustomThreshold"
    assert slider["SlicerParameterName"].findtext("string") == "laThreshold"
    assert props("laAssessButton")["text"].findtext("string") == "Assess"  # as the record's panel_help says
    columns = [c.findtext("property/string") for c in widgets["laAttributeTable"].findall("column")]
    assert columns == list(TABLE_COLUMNS)
    custom = {c.findtext("class"): c.findtext("extends") for c in root.iter("customwidget")}
    assert custom.get("ctkSliderWidget") == "QWidget"
    receivers = {c.findtext("receiver") for c in root.iter("connection")}
    assert "laInputSelector" in receivers  # it gets the scene


def test_module_file_has_the_la_parameters_handlers_and_self_tests():
    tree = ast.parse(MODULE.read_text())
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    params = {n.target.id: n for n in classes["CMRQualityParameterNode"].body if isinstance(n, ast.AnnAssign)}
    assert {"laInput", "laCustomThreshold", "laThreshold"} <= set(params)
    assert "vtkMRMLScalarVolumeNode" in ast.unparse(params["laInput"].annotation)
    assert ast.literal_eval(params["laCustomThreshold"].value) is False  # the detector's calibrated t by default
    widget = {f.name for f in classes["CMRQualityWidget"].body if isinstance(f, ast.FunctionDef)}
    assert {"onLAAssess", "assessLA", "showLAResult", "laThreshold"} <= widget
    tests = {f.name for f in classes["CMRQualityTest"].body if isinstance(f, ast.FunctionDef)}
    assert {"test_CMRQualityLAWorker", "test_CMRQualityLAAssess"} <= tests
    source = MODULE.read_text()
    assert "CMRQualityLib.laquality" in source and "runCmr(" in source
    methods = ast.unparse(next(n for n in ast.walk(classes["CMRQuality"]) if isinstance(n, ast.Call)
                               and ast.unparse(n.func) == "CMRScriptedModule.__init__").args[3])
    assert "left-atrial 3D LGE" in methods and "not in this version" not in methods


def test_the_record_names_this_adapter_and_the_help_shows_the_section():
    from cmrlib.capabilities import capability
    from cmrlib.contract import resolve
    from CMRCommonLib import help_text
    cap = capability("la-quality")
    assert cap.panel == "CMRQuality" and cap.adapter == "CMRQualityLib.laquality:outputs_to_nodes"
    assert resolve(cap.adapter) is outputs_to_nodes
    assert {o.name for o in cap.outputs} >= {MASK, SALIENCY, SALIENCY_PNG, MONTAGE}
    text = help_text.help_html("CMRQuality")
    assert cap.panel_help in text and "<i>Assess</i>" in cap.panel_help
    assert "Planned" not in text  # the last planned capability of the panel has landed
    assert cap.title in help_text.summary_text("CMRQuality")

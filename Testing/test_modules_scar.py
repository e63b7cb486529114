"""CMRSegmentation's "Scar" section headless on slicer-core: MRML nodes → `cmr scar` worker arguments
and input files (the LV-centre point lists as the ``--centres`` JSON in LPS), the worker command run
for real (5 SD above remote on a phantom LGE stack with its cine, no weights needed), its folder →
segmentation "Myocardium" / "Scar", matched cine, per-slice and per-method tables, AHA segments,
bull's-eye and LV-centre point lists, and the panel's .ui / module file (no Slicer application needed).

The tests assert files, geometry, voxel counts, table rows and what the views show; not the
quantification's accuracy (cmrlib's own tests and the benchmark do that)."""
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
from cmrlib.io import read_image
from cmrlib.mrml import (image_from_sequence_node, image_from_volume_node, labels_from_segmentation_node, new_scene,
                         points_from_markups_node, rows_from_table_node, sequence_node_from_image,
                         volume_node_from_image)
from cmrlib.scar.outputs import METHOD_FIELDS, SLICE_FIELDS
from CMRSegmentationLib.logic import SegmentationLogic
from CMRSegmentationLib.scar import (CENTRES_INPUT, CINE_CENTRES, CINE_INPUT, LGE_CENTRES, LGE_INPUT, MASK_INPUT,
                                     MYOCARDIUM, SCAR, SCAR_LABEL_TABLE, SEGMENTS_INPUT, centres_document,
                                     default_method, method_available, methods, outputs_to_nodes, phantom_scar_nodes,
                                     scar_arguments, show_scar, table_cells, typed_rows)

from test_packaging_modules import ui_attribute_names  # the names the code looks up as ui.X

pytestmark = pytest.mark.mrml

ROOT = Path(__file__).resolve().parents[1]
MODULE = ROOT / "CMRSegmentation" / "CMRSegmentation.py"
UI = ROOT / "CMRSegmentation" / "Resources" / "UI" / "CMRSegmentation.ui"


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """The capability's example result (5 SD above remote on a phantom stack) and its reader's dict."""
    from cmrlib.scar.outputs import read_result, write_example
    folder = tmp_path_factory.mktemp("scar") / "scar"
    write_example(folder)
    return folder, read_result(folder)


@pytest.fixture(scope="module")
def phantom():
    """A scene with a phantom LGE stack, its cine, true myocardium and AHA segments as the panel takes them."""
    scene = new_scene()
    return scene, phantom_scar_nodes(scene)


def _slice_views(scene, names=("Red", "Yellow")):
    """Slice views as in the application (slice and composite nodes named by layout)."""
    for name in names:
        view = scene.AddNewNodeByClass("vtkMRMLSliceNode")
        view.SetName(name)
        view.SetLayoutName(name)
        composite = scene.AddNewNodeByClass("vtkMRMLSliceCompositeNode")
        composite.SetLayoutName(name)


def _composite(scene, name):
    return next(scene.GetNthNodeByClass(i, "vtkMRMLSliceCompositeNode")
                for i in range(scene.GetNumberOfNodesByClass("vtkMRMLSliceCompositeNode"))
                if scene.GetNthNodeByClass(i, "vtkMRMLSliceCompositeNode").GetLayoutName() == name)


def _point_list(scene, name, ras_by_label):
    """A point list made as a user would, in RAS, with the control point labels given."""
    node = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", name)
    for label, ras in ras_by_label.items():
        node.AddControlPoint(*[float(v) for v in ras], label)
    return node


def _lps_to_ras(lps):
    return np.asarray(lps, float) * np.array([-1.0, -1.0, 1.0])  # written out: the check must not use the helper


def _segment_voxels(segmentation, grid):
    """{segment name: voxel count} of every segment of a segmentation node, each read on its own."""
    seg = segmentation.GetSegmentation()
    counts = {}
    for i in range(seg.GetNumberOfSegments()):
        name = seg.GetNthSegment(i).GetName()
        counts[name] = int((labels_from_segmentation_node(segmentation, grid, {1: (name, (1, 0, 0))}) == 1).sum())
    return counts


# ---- the adapter --------------------------------------------------------------------------------
def test_adapter_on_the_capability_example(example):
    """Writer → reader → adapter on a real result: both segments with labels.nrrd's voxels, tables
    of slices.csv and methods.csv (rows, columns, values), the per-segment table, the AHA map,
    the LGE LV centres at result.json's pixels, the bull's-eye through the logic."""
    from cmrlib.capabilities import capability
    from cmrlib.contract import resolve

    folder, result = example
    assert resolve(capability("scar").adapter) is outputs_to_nodes
    summary = json.loads((folder / "result.json").read_text())
    labels = result["labels"]
    arr = np.asarray(labels.array)
    assert (arr == 1).any() and (arr == 2).any()
    scene = new_scene()
    out = outputs_to_nodes(scene, result, "")
    name = summary["series"]
    assert out.segmentation.GetName() == f"{name} scar (nsd5)"
    seg = out.segmentation.GetSegmentation()
    assert [seg.GetNthSegment(i).GetName() for i in range(seg.GetNumberOfSegments())] == [MYOCARDIUM, SCAR]
    colours = {seg.GetNthSegment(i).GetName(): seg.GetNthSegment(i).GetColor() for i in range(2)}
    assert colours[SCAR][0] > 0.8 and max(colours[SCAR][1:]) < 0.2  # red
    assert colours[MYOCARDIUM][1] > 0.7 and max(colours[MYOCARDIUM][0], colours[MYOCARDIUM][2]) < 0.3  # green
    assert _segment_voxels(out.segmentation, labels) == {MYOCARDIUM: int((arr == 1).sum()), SCAR: int((arr == 2).sum())}
    assert out.voxel_counts() == {MYOCARDIUM: int((arr == 1).sum()), SCAR: int((arr == 2).sum())}
    np.testing.assert_array_equal(labels_from_segmentation_node(out.segmentation, labels, SCAR_LABEL_TABLE), arr)
    # per slice: slices.csv's columns (the other methods' %scar after the fixed ones), result.json's values
    slice_rows = rows_from_table_node(out.slice_table)
    others = [m["method"] for m in summary["methods"] if m["method"] != "nsd5"]
    assert len(slice_rows) == len(summary["slices"]) == labels.spatial_shape[0] == 3
    assert list(slice_rows[0]) == [*SLICE_FIELDS, *(f"percent_scar_{m}" for m in others)]
    for row, s in zip(slice_rows, summary["slices"], strict=True):
        assert row["slice"] == s["index"] + 1 and row["status"] == s["status"] and row["level"] == s["level"]
        assert row["percent_scar"] == pytest.approx(s["percent_scar"], abs=0.005)
        assert row["myocardium_ml"] == pytest.approx(s["myocardium_ml"], abs=5e-4)
        assert row["cine_slice"] == "" and row["reason"] == ""  # no cine in the example: empty cells
    per_method = {m["method"]: m["per_slice_percent"] for m in summary["methods"]}
    for m in others:
        assert [r[f"percent_scar_{m}"] for r in slice_rows] == pytest.approx(per_method[m], abs=0.005)
    # methods side by side
    method_rows = rows_from_table_node(out.method_table)
    assert list(method_rows[0]) == list(METHOD_FIELDS)
    assert [r["method"] for r in method_rows] == [m["method"] for m in summary["methods"]]
    assert [m for m in (r["method"] for r in method_rows) if m.startswith(("nsd", "fwhm"))] == \
        ["nsd2", "nsd3", "nsd5", "fwhm"]  # the installed U-Nets (LGE-only: no cine in the example) come first
    for row, m in zip(method_rows, summary["methods"], strict=True):
        assert row["percent_scar"] == pytest.approx(m["percent_scar"], abs=5e-4)
        assert row["scar_present"] == ("yes" if m["scar_present"] else "no") and row["title"] == m["title"]
    # AHA segments: the table and the label map
    segment_rows = rows_from_table_node(out.segment_table)
    assert [int(r["segment"]) for r in segment_rows] == [s["segment"] for s in summary["segments"]]
    assert [r["percent_scar"] for r in segment_rows] == pytest.approx([s["percent_scar"] for s in summary["segments"]])
    assert out.segments.IsA("vtkMRMLLabelMapVolumeNode")
    np.testing.assert_array_equal(image_from_volume_node(out.segments).array, result["segments"].array)
    assert out.segments.GetDisplayNode().GetColorNode().GetName() == "CMR AHA segments"
    # the LGE LV centres, one point per slice labelled with its number, at result.json's pixels
    lps, point_labels = points_from_markups_node(out.lge_centres)
    assert out.lge_centres.GetName() == f"{name} {LGE_CENTRES}" and point_labels == ["1", "2", "3"]
    for k, p in enumerate(lps):
        np.testing.assert_allclose(labels.lps_to_index(p), [*summary["slices"][k]["lv_centre_lge_px"], k], atol=1e-6)
    assert out.cine is None and out.cine_centres is None  # no cine in the example
    assert set(out.nodes()) == {"segmentation", "slice_table", "method_table", "segment_table", "segments",
                                "lge_centres"}
    text = out.summary_text()
    assert text.startswith(f"%scar {summary['percent_scar']:.1f} % (5 SD above remote)")
    assert f"myocardium {summary['myocardial_volume_ml']:.1f} mL" in text and "scar present (> 1 %)" in text
    assert "3/3 slices quantified" in text and LGE_CENTRES in out.centres_hint()
    # through the logic: the bull's-eye of the folder
    loaded = SegmentationLogic(scene).load_scar_results(folder, "again")
    assert loaded.bullseye == folder / "bullseye.png"
    assert loaded.bullseye.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert loaded.segmentation.GetName() == "again scar (nsd5)"


def test_adapter_shows_the_lge_with_the_scar_and_the_matched_cine_beside_it(example):
    """With the LGE node: every view in the LGE's planes, the LGE in the red view and the matched
    cine (cine_aligned.nrrd on the LGE grid) in the yellow one, the segmentation's reference
    geometry the LGE's."""
    _, result = example
    labels = result["labels"]
    scene = new_scene()
    _slice_views(scene)
    rng = np.random.default_rng(5)
    lge = volume_node_from_image(scene, labels.with_array(rng.uniform(0, 300, labels.spatial_shape).astype(np.float32)),
                                 "LGE")
    aligned = labels.with_array(rng.uniform(0, 200, labels.spatial_shape).astype(np.float32))
    out = outputs_to_nodes(scene, dict(result, cine_aligned=aligned), "withcine", lge=lge)
    assert out.cine.GetName() == "withcine matched cine"
    shown = image_from_volume_node(out.cine)
    np.testing.assert_allclose(shown.array, aligned.array)
    assert shown.same_geometry(labels)
    assert out.cine.GetDisplayNode().GetColorNodeID() == "vtkMRMLColorTableNodeGrey"
    assert _composite(scene, "Red").GetBackgroundVolumeID() == lge.GetID()
    assert _composite(scene, "Yellow").GetBackgroundVolumeID() == out.cine.GetID()
    assert all(_composite(scene, v).GetForegroundVolumeID() is None for v in ("Red", "Yellow"))
    assert out.segmentation.GetDisplayNode().GetVisibility()
    normal = scene.GetNthNodeByClass(1, "vtkMRMLSliceNode").GetSliceToRAS()
    slice_axis_ras = np.array([normal.GetElement(i, 2) for i in range(3)])
    assert abs(float(slice_axis_ras @ _lps_to_ras(labels.direction[:, 2]))) == pytest.approx(1.0, abs=1e-6)
    assert out.segmentation.GetNodeReferenceID("referenceImageGeometryRef") == lge.GetID()  # Segment Editor's grid
    assert show_scar(scene, lge, out) == 2


def test_adapter_refuses_an_incomplete_result_and_adds_nothing(example):
    _, result = example
    labels = result["labels"]
    scene = new_scene()
    before = scene.GetNumberOfNodes()
    with pytest.raises(InputError, match="lacks labels, summary, slices, methods"):
        outputs_to_nodes(scene, {})
    with pytest.raises(InputError, match="result.json's slices"):
        outputs_to_nodes(scene, dict(result, summary={k: v for k, v in result["summary"].items() if k != "slices"}))
    with pytest.raises(InputError, match="slices.csv 2, but labels.nrrd has 3"):
        outputs_to_nodes(scene, dict(result, slices=result["slices"][:2]))
    small = Image(np.zeros((3, 4, 4), np.float32))
    with pytest.raises(InputError, match="cine_aligned.nrrd .* is not on labels.nrrd's grid"):
        outputs_to_nodes(scene, dict(result, cine_aligned=small))
    with pytest.raises(InputError, match="labels \\[3\\] beyond"):
        outputs_to_nodes(scene, dict(result, labels=labels.with_array(np.full(labels.spatial_shape, 3, np.uint8))))
    assert scene.GetNumberOfNodes() == before


def test_typed_rows_and_table_cells():
    rows = [{"slice": "1", "level": "basal", "percent_scar": "11.02", "cine_slice": ""},
            {"slice": "2", "level": "", "percent_scar": "", "cine_slice": ""}]
    assert typed_rows(rows) == [{"slice": 1.0, "level": "basal", "percent_scar": 11.02, "cine_slice": None},
                                {"slice": 2.0, "level": "", "percent_scar": None, "cine_slice": None}]
    assert typed_rows([]) == []
    assert table_cells(rows) == (["slice", "level", "percent_scar", "cine_slice"],
                                 [["1", "basal", "11.02", "–"], ["2", "–", "–", "–"]])


def test_default_method_follows_the_installed_weights():
    from cmrlib.models.zoo import model_installed
    fusion, lge_only = model_installed("scar-fusion-compact"), model_installed("scar-lge-compact")
    assert default_method() == ("fusion" if fusion else "lge-only" if lge_only else "nsd5")
    assert method_available("fusion") == fusion and method_available("lge-only") == lge_only
    assert all(method_available(m) for m in ("nsd2", "nsd3", "nsd5", "fwhm"))
    assert methods() == ("fusion", "lge-only", "nsd2", "nsd3", "nsd5", "fwhm")


# ---- the worker's inputs ------------------------------------------------------------------------
def test_scar_arguments_write_the_selected_nodes(phantom, tmp_path):
    """LGE, cine (TriggerTime per frame), mask, AHA segments as NRRD on the right grids, the LV
    centres as the --centres JSON in LPS with LGE slice numbers, and the arguments that name them."""
    scene, nodes = phantom
    stack = nodes["stack"]
    lge_img = image_from_volume_node(nodes["lge"])
    assert not np.allclose(lge_img.direction, np.eye(3))  # an oblique grid: LPS <-> RAS is exercised
    # points placed in RAS as a user would: slice 2 and 3 on the LGE, slice 1 on the matched cine slice 0
    lge_lps = {"2": lge_img.index_to_lps([40.0, 38.0, 1.0]), "3": lge_img.index_to_lps([41.5, 36.0, 2.0])}
    cine_lps = {"1": stack.cine.index_to_lps([43.0, 39.0, 0.0])}
    lge_points = _point_list(scene, "my LGE centres", {k: _lps_to_ras(p) for k, p in lge_lps.items()})
    cine_points = _point_list(scene, "my cine centres", {k: _lps_to_ras(p) for k, p in cine_lps.items()})
    folder, out = tmp_path / "inputs", tmp_path / "out"
    args = scar_arguments(nodes["lge"], folder, out, cine=nodes["cine"], method="nsd5", mask=nodes["mask"],
                          segments=nodes["segments"], lge_centres=lge_points, cine_centres=cine_points, force=True)
    paths = {name: folder / name for name in (LGE_INPUT, CINE_INPUT, MASK_INPUT, SEGMENTS_INPUT, CENTRES_INPUT)}
    assert args == ["scar", "--lge", str(paths[LGE_INPUT]), "--out", str(out), "--cine", str(paths[CINE_INPUT]),
                    "--method", "nsd5", "--mask", str(paths[MASK_INPUT]), "--segments", str(paths[SEGMENTS_INPUT]),
                    "--centres", str(paths[CENTRES_INPUT]), "--force", "--progress-lines"]
    assert sorted(p.name for p in folder.iterdir()) == sorted(paths) and not out.exists()
    back = read_image(paths[LGE_INPUT])
    assert back.same_geometry(stack.lge) and back.meta["kind"] == stack.lge.meta["kind"]
    np.testing.assert_allclose(back.array, stack.lge.array)
    assert back.meta["TriggerTime"] == pytest.approx(stack.lge.meta["TriggerTime"])  # the matching needs it
    cine = read_image(paths[CINE_INPUT])
    assert cine.is_sequence and cine.n_frames == stack.cine.n_frames and cine.same_geometry(stack.cine)
    np.testing.assert_allclose(cine.array, stack.cine.array)
    assert cine.frame_values("TriggerTime") == pytest.approx(stack.cine.frame_values("TriggerTime"))
    assert cine.meta["rr_ms"] == pytest.approx(stack.cine.meta["rr_ms"])
    mask = read_image(paths[MASK_INPUT])
    assert mask.same_geometry(stack.lge) and mask.meta["qc_failed_slices"] == []
    np.testing.assert_array_equal(mask.array, stack.truth_mask().array)
    segments = read_image(paths[SEGMENTS_INPUT])
    assert segments.same_geometry(stack.lge)
    np.testing.assert_array_equal(segments.array, stack.aha.array)
    centres = json.loads(paths[CENTRES_INPUT].read_text())
    assert set(centres) == {"lge", "cine"} and set(centres["lge"]) == {"2", "3"} and set(centres["cine"]) == {"1"}
    for key, expected in (("lge", lge_lps), ("cine", cine_lps)):
        for k, p in expected.items():
            np.testing.assert_allclose(centres[key][k], p, atol=1e-6)  # LPS, not the RAS of the points
            assert not np.allclose(centres[key][k], _lps_to_ras(p), atol=1.0)
    assert centres_document(3, lge_points) == {"lge": centres["lge"]}
    assert centres_document(3) == {}
    # without the optional nodes and the method: only what the CLI needs
    args = scar_arguments(nodes["lge"], tmp_path / "minimal", out)
    assert args == ["scar", "--lge", str(tmp_path / "minimal" / LGE_INPUT), "--out", str(out), "--progress-lines"]
    assert [p.name for p in (tmp_path / "minimal").iterdir()] == [LGE_INPUT]


def test_bad_inputs_are_refused_in_one_line_and_nothing_is_written(phantom, tmp_path):
    scene, nodes = phantom
    stack = nodes["stack"]
    lge, cine, mask = nodes["lge"], nodes["cine"], nodes["mask"]
    folder, out = tmp_path / "inputs", tmp_path / "out"

    def refused(match, *args, **kwargs):
        with pytest.raises(InputError, match=match) as info:
            scar_arguments(*args, **kwargs)
        assert "\n" not in str(info.value)

    refused("choose the LGE stack", None, folder, out)
    refused("the LGE stack must be a scalar volume", cine, folder, out)
    refused("the LGE stack must be a scalar volume", mask, folder, out)
    refused("unknown method 'moconet'", lge, folder, out, method="moconet")
    refused("inside the input folder", lge, folder, folder / "out")
    refused("the fusion U-Net needs the cine stack", lge, folder, out, method="fusion")
    refused("nsd5 thresholds inside the myocardium: choose a myocardium mask", lge, folder, out, method="nsd5")
    refused("the cine must be a sequence of cardiac phases", lge, folder, out, cine=lge)
    no_times = Image(stack.cine.array, stack.cine.spacing, stack.cine.origin, stack.cine.direction, True,
                     dict(stack.cine.meta))
    refused("cine 'no times': .*no TriggerTime per frame", lge, folder, out,
            cine=sequence_node_from_image(scene, no_times, "no times"))
    other = image_from_sequence_node(cine)
    other.meta["StudyInstanceUID"] = "1.2.3"
    lge_img = image_from_volume_node(lge)
    lge_img.meta["StudyInstanceUID"] = "4.5.6"
    other_lge = volume_node_from_image(scene, lge_img, "LGE of another study")
    refused("different studies", other_lge, folder, out, cine=sequence_node_from_image(scene, other, "other cine"))
    one = volume_node_from_image(scene, lge_img.with_array(np.asarray(lge_img.array)[:1]), "one slice")
    refused("LGE 'one slice': the LGE stack has one slice", one, folder, out)
    dark = volume_node_from_image(scene, lge_img.with_array(np.zeros(lge_img.spatial_shape, np.float32)), "dark")
    refused("all dark", dark, folder, out)
    refused("cine LV centres are given without a cine", lge, folder, out,
            cine_centres=_point_list(scene, "c", {"1": (0, 0, 0)}))
    refused("point 'F-1' of 'bad label': its label must be the LGE slice number \\(1–3\\)", lge, folder, out,
            lge_centres=_point_list(scene, "bad label", {"F-1": (0, 0, 0)}))
    refused("its label must be the LGE slice number", lge, folder, out,
            lge_centres=_point_list(scene, "slice 4", {"4": (0, 0, 0)}))
    twice = _point_list(scene, "twice", {"2": (0, 0, 0)})
    twice.AddControlPoint(1.0, 1.0, 1.0, "2")
    refused("'twice' has two points for LGE slice 2", lge, folder, out, lge_centres=twice)
    refused("LV centres must be a point list", lge, folder, out, lge_centres=mask)
    pool_only = volume_node_from_image(scene, lge_img.with_array(np.where(image_from_volume_node(mask).array == 2, 2, 0)
                                                                 .astype(np.uint8)), "pool",
                                       node=scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode"))
    refused("has no myocardium", lge, folder, out, mask=pool_only)
    not_aha = volume_node_from_image(scene, lge_img.with_array(np.full(lge_img.spatial_shape, 40, np.int16)), "not AHA",
                                     node=scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode"))
    refused("not an AHA segment map", lge, folder, out, segments=not_aha)
    if not method_available("lge-only"):
        refused("the lge-only weights \\(scar-lge-compact\\) are not installed", lge, folder, out, method="lge-only")
    assert not folder.exists() and not out.exists()


# ---- the panel's logic: the worker command for real --------------------------------------------------
def test_logic_runs_cmr_scar_and_loads_its_folder(phantom, tmp_path):
    """The panel's path without Qt: the nodes and moved LV centres written, `cmr scar` (the worker's
    arguments, run in-process, 5 SD above remote) uses the given centres and matches the cine, the
    folder loads back with the centre point lists where they were given and the LGE in the views."""
    from cmrlib.cli import main
    scene, nodes = phantom
    _slice_views(scene)
    stack = nodes["stack"]
    lge_img = image_from_volume_node(nodes["lge"])
    given_lge = {1: [41.0, 37.5], 2: [44.5, 36.0]}  # (col, row) px on LGE slices 2 and 3
    given_cine = {0: [43.0, 38.0]}  # on the cine slice matched to LGE slice 1 (the same position)
    lge_points = _point_list(scene, "moved LGE", {str(k + 1): _lps_to_ras(lge_img.index_to_lps([*c, k]))
                                                  for k, c in given_lge.items()})
    cine_points = _point_list(scene, "moved cine", {str(k + 1): _lps_to_ras(stack.cine.index_to_lps([*c, k]))
                                                    for k, c in given_cine.items()})
    logic = SegmentationLogic(scene)
    out = tmp_path / "out"
    args = logic.scar_arguments(nodes["lge"], tmp_path / "inputs", out, cine=nodes["cine"], method="nsd5",
                                mask=nodes["mask"], segments=nodes["segments"], lge_centres=lge_points,
                                cine_centres=cine_points)
    assert main(args[:-1] + ["--quiet"]) == 0
    from cmrlib.models.zoo import model_installed
    expected = {"labels.nrrd", "slices.csv", "methods.csv", "result.json", "scar.png", "segments.csv", "bullseye.png",
                "aha_segments.nrrd"}
    if model_installed("scar-fusion-compact"):  # the fusion U-Net ran beside 5 SD: its aligned cine is written
        expected.add("cine_aligned.nrrd")
    assert expected == {p.name for p in out.iterdir()}
    summary = json.loads((out / "result.json").read_text())
    assert summary["method"] == "nsd5" and summary["slices_total"] == 3 and summary["complete"]
    slices = summary["slices"]
    assert [s["centre_source"] for s in slices] == ["mask", "user", "user"]
    for k, c in given_lge.items():
        assert slices[k]["lv_centre_lge_px"] == pytest.approx(c, abs=0.01)
    assert slices[0]["cine"]["cine_slice"] == 0 and slices[0]["lv_centre_cine_px"] == pytest.approx(given_cine[0],
                                                                                                      abs=0.01)
    assert all(s["cine"]["cine_frame"] is not None for s in slices)  # each LGE slice matched a cine frame
    loaded = logic.load_scar_results(out, "phantom", nodes["lge"], nodes["cine"])
    assert loaded.bullseye == out / "bullseye.png"
    assert len(rows_from_table_node(loaded.slice_table)) == 3 and loaded.slice_rows[1]["centre_source"] == "user"
    assert [r["method"] for r in rows_from_table_node(loaded.method_table)] == [m["method"] for m in summary["methods"]]
    assert {"nsd2", "nsd3", "nsd5", "fwhm"} <= {m["method"] for m in summary["methods"]}
    labels = read_image(out / "labels.nrrd")
    assert _segment_voxels(loaded.segmentation, labels) == {
        MYOCARDIUM: int((labels.array == 1).sum()), SCAR: int((labels.array == 2).sum())}
    # the centre point lists: where the result placed them, and given back they give the same JSON
    lps, point_labels = points_from_markups_node(loaded.lge_centres)
    assert point_labels == ["1", "2", "3"]
    for k, c in given_lge.items():
        np.testing.assert_allclose(lps[k], lge_img.index_to_lps([*c, k]), atol=0.05)
    cine_lps, cine_labels = points_from_markups_node(loaded.cine_centres)
    assert loaded.cine_centres.GetName() == f"phantom {CINE_CENTRES}" and cine_labels == ["1", "2", "3"]
    np.testing.assert_allclose(cine_lps[0], stack.cine.index_to_lps([*given_cine[0], 0]), atol=0.05)
    again = centres_document(3, loaded.lge_centres, loaded.cine_centres)
    for k, c in given_lge.items():
        np.testing.assert_allclose(again["lge"][str(k + 1)], lge_img.index_to_lps([*c, k]), atol=0.05)
    assert _composite(scene, "Red").GetBackgroundVolumeID() == nodes["lge"].GetID()
    # the matched cine beside the LGE when a fusion network ran (its weights installed), else the LGE
    yellow = loaded.cine.GetID() if loaded.cine is not None else nodes["lge"].GetID()
    assert _composite(scene, "Yellow").GetBackgroundVolumeID() == yellow
    assert "5 SD above remote" in loaded.summary_text()


def test_a_mask_that_failed_qc_leaves_its_slice_out(phantom, tmp_path):
    """A mask whose slice failed QC (as QCD marks it): the mask file's header says so, `cmr scar`
    leaves that slice out of the classical methods, and the result reads "partial"."""
    from cmrlib.cli import main
    scene, nodes = phantom
    mask = nodes["mask"]
    mask.SetAttribute("CMR.qc_failed_slices", "0")
    try:
        args = scar_arguments(nodes["lge"], tmp_path / "inputs", tmp_path / "out", method="nsd5", mask=mask)
    finally:
        mask.RemoveAttribute("CMR.qc_failed_slices")
    assert read_image(tmp_path / "inputs" / MASK_INPUT).meta["qc_failed_slices"] == [0]
    assert main(args[:-1] + ["--quiet"]) == 0
    loaded = SegmentationLogic(scene).load_scar_results(tmp_path / "out", "qc")
    assert loaded.slice_rows[0]["status"] == "not segmented" and not loaded.summary["complete"]
    assert "2/3 slices quantified (partial)" in loaded.summary_text()
    assert loaded.voxel_counts() == {MYOCARDIUM: int((read_image(tmp_path / "out" / "labels.nrrd").array == 1).sum()),
                                     SCAR: int((read_image(tmp_path / "out" / "labels.nrrd").array == 2).sum())}
    assert not (np.asarray(loaded.labels.array)[0] > 0).any()  # nothing on the left-out slice


# ---- the panel: .ui and module file -------------------------------------------------------------
def test_ui_has_the_scar_section_and_every_widget_the_module_uses():
    root = ET.parse(UI).getroot()
    widgets = {w.get("name"): w for w in root.iter("widget")}
    used = {n for n in ui_attribute_names(MODULE) if n.startswith("scar")}
    assert {"scarLgeSelector", "scarCineSelector", "scarMethodComboBox", "scarMaskSelector", "scarSegmentsSelector",
            "scarLgeCentresSelector", "scarCineCentresSelector", "scarForceCheckBox", "scarApplyButton",
            "scarResultLabel", "scarBullseyeLabel", "scarSliceTable", "scarMethodTable"} <= used
    assert used <= set(widgets), sorted(used - set(widgets))
    section = widgets["scarCollapsibleButton"]
    assert section.get("class") == "ctkCollapsibleButton" and section.findtext("property/string") == "Scar"

    def strings(widget, prop):
        return [s.text for p in widgets[widget].findall("property") if p.get("name") == prop for s in p.iter("string")]

    assert strings("scarLgeSelector", "nodeTypes") == ["vtkMRMLScalarVolumeNode"]
    assert strings("scarCineSelector", "nodeTypes") == ["vtkMRMLSequenceNode"]
    assert strings("scarMaskSelector", "nodeTypes") == ["vtkMRMLLabelMapVolumeNode", "vtkMRMLSegmentationNode"]
    assert strings("scarSegmentsSelector", "nodeTypes") == ["vtkMRMLLabelMapVolumeNode"]
    for name in ("scarLgeCentresSelector", "scarCineCentresSelector"):
        assert strings(name, "nodeTypes") == ["vtkMRMLMarkupsFiducialNode"]
    assert [i.findtext("property/string") for i in widgets["scarMethodComboBox"].findall("item")] == list(methods())
    assert [c.findtext("property/string") for c in widgets["scarSliceTable"].findall("column")] == list(SLICE_FIELDS)
    assert [c.findtext("property/string") for c in widgets["scarMethodTable"].findall("column")] == list(METHOD_FIELDS)
    receivers = {c.findtext("receiver") for c in root.iter("connection")}
    assert {n for n in widgets if n.startswith("scar") and n.endswith("Selector")} <= receivers  # each gets the scene


def test_module_file_has_the_scar_parameters_and_the_self_tests():
    tree = ast.parse(MODULE.read_text())
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    params = {n.target.id: n for n in classes["CMRSegmentationParameterNode"].body if isinstance(n, ast.AnnAssign)}
    assert {"scarLge", "scarCine", "scarMethod", "scarMask", "scarSegments", "scarLgeCentres", "scarCineCentres",
            "scarForce"} <= set(params)
    assert ast.literal_eval(params["scarMethod"].value) == "fusion"  # checkScarMethod falls back without weights
    assert "vtkMRMLSequenceNode" in ast.unparse(params["scarCine"].annotation)
    assert "vtkMRMLMarkupsFiducialNode" in ast.unparse(params["scarLgeCentres"].annotation)
    tests = {f.name for f in classes["CMRSegmentationTest"].body if isinstance(f, ast.FunctionDef)}
    assert {"test_CMRSegmentationScarAdapter", "test_CMRSegmentationScarWorker", "test_CMRSegmentationScarApply"} \
        <= tests
    widget = {f.name for f in classes["CMRSegmentationWidget"].body if isinstance(f, ast.FunctionDef)}
    assert {"onScarApply", "checkScarMethod", "showScarTables", "showScarBullseye", "onScarSliceClicked"} <= widget
    assert "planned" not in ast.get_docstring(tree).lower()
    assert "planned" not in (ROOT / "CMRSegmentation" / "CMRSegmentationLib" / "logic.py").read_text().lower()



def test_the_cine_of_the_lges_study_is_offered():
    from cmrlib.scar.data import phantom_stack
    from CMRSegmentationLib.scar import matching_cine
    scene = new_scene()
    st = phantom_stack(780_011, scar="none", slices=(3, 4))
    lge = st.lge.copy()
    lge.meta.update(kind="lge_psir", StudyInstanceUID="1.2.3")
    lge_node = volume_node_from_image(scene, lge, "LGE")
    assert matching_cine(scene, lge_node) is None  # no cine loaded
    cine_other = st.cine.copy()
    cine_other.meta.update(kind="cine", StudyInstanceUID="9.9.9")
    other = sequence_node_from_image(scene, cine_other, "cine of another study")
    assert matching_cine(scene, lge_node) is other  # the only cine: offered (matching refuses it later)
    cine_same = st.cine.copy()
    cine_same.meta.update(kind="cine", StudyInstanceUID="1.2.3")
    same = sequence_node_from_image(scene, cine_same, "cine")
    assert matching_cine(scene, lge_node) is same
    assert matching_cine(scene, None) is None

"""The capability contract: every registered capability keeps it, and `cmr run` orders and hands
results between steps as they declare (docs/architecture.md)."""
from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path

import numpy as np
import pytest

from cmrlib.capabilities import PLANNED, architecture_modules, capabilities, trainers
from cmrlib.contract import Capability, Output, ReportSection, Step, StepResult, resolve
from cmrlib.study import DONE, FAILED, SKIPPED, run_study, step_order

CAPS = capabilities()
IDS = [c.command for c in CAPS]


def test_registry_finds_the_landed_capabilities():
    assert {"motion", "phantom"} <= set(IDS)
    assert not set(IDS) & set(PLANNED), "a landed capability must leave PLANNED"
    assert trainers()["moconet"] == "cmrlib.motion.train"
    assert "cmrlib.motion.moconet" in architecture_modules()


@pytest.mark.parametrize("cap", CAPS, ids=IDS)
def test_plugin_functions_exist(cap: Capability):
    cli = cap.load_cli()
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    assert callable(cli.run)
    assert cap.title and cap.panel.startswith("CMR") and cap.panel_help
    if cap.step is not None:
        assert callable(resolve(cap.step.run))
    for ref in (cap.reader, cap.report):
        if ref:
            assert callable(resolve(ref))
    for model, module_name in cap.trainers.items():
        module = importlib.import_module(module_name)
        for fn in ("add_arguments", "run", "add_eval_arguments", "evaluate"):
            assert callable(getattr(module, fn, None)), f"{module_name}.{fn} missing (cmr train/evaluate {model})"
        train_parser = argparse.ArgumentParser()
        module.add_arguments(train_parser)
    names = [o.name for o in cap.outputs]
    assert len(names) == len(set(names))


def test_every_manifest_architecture_builds():
    from cmrlib.models import build_architecture, list_models
    models = list_models()
    assert models, "no bundled model found"
    for entry in models:
        net = build_architecture(entry.architecture, **entry.arch_args)
        assert sum(p.numel() for p in net.parameters()) > 0


WITH_OUTPUTS = [c for c in CAPS if c.reader]


@pytest.mark.parametrize("cap", WITH_OUTPUTS, ids=[c.command for c in WITH_OUTPUTS])
def test_outputs_round_trip_writer_reader_adapter(cap: Capability, tmp_path):
    """Every capability with outputs: its example result, written by its writer, holds exactly
    the declared files, reads back, and becomes MRML nodes through its adapter."""
    assert cap.example and cap.adapter, f"{cap.command}: a reader needs an example writer and an adapter"
    folder = tmp_path / cap.command
    resolve(cap.example)(folder)
    files = {p.name for p in folder.iterdir()}
    declared = {o.name for o in cap.outputs}
    required = {o.name for o in cap.outputs if not o.optional}
    assert required <= files, f"missing: {required - files}"
    assert files <= declared, f"undeclared files: {files - declared}"
    outputs = resolve(cap.reader)(folder)
    assert isinstance(outputs, dict) and outputs.get("summary") is not None
    pytest.importorskip("slicer")
    from cmrlib.mrml import new_scene
    scene = new_scene()
    before = scene.GetNumberOfNodes()
    nodes = resolve(cap.adapter)(scene, outputs, cap.command)
    assert nodes is not None and scene.GetNumberOfNodes() > before


def test_motion_outputs_read_back_equal(tmp_path):
    from cmrlib.motion.outputs import read_result, write_result
    from cmrlib.motion.pipeline import correct_and_map
    from conftest import irw_image
    image, mask = irw_image()
    result = correct_and_map(image, "none", mask=mask)
    written = write_result(result, tmp_path / "m")
    outputs = read_result(tmp_path / "m")
    np.testing.assert_allclose(outputs["t1"].array, result.t1.array)
    np.testing.assert_allclose(outputs["r2"].array, result.r2.array)
    assert outputs["corrected"].n_frames == image.n_frames
    assert outputs["summary"]["t1_myocardium_ms"] == pytest.approx(written["t1_myocardium_ms"])
    assert outputs["dvf"].shape[-1] == 3
    pytest.importorskip("slicer")
    from cmrlib.mrml import image_from_volume_node, new_scene
    nodes = resolve("CMRMotionLib.logic:outputs_to_nodes")(new_scene(), outputs, "IRW")
    np.testing.assert_allclose(image_from_volume_node(nodes.t1).array, result.t1.array, rtol=1e-6)
    assert nodes.summary["method"] == "none"


# ---- dependency-ordered `cmr run` with fake capabilities --------------------------------
def _record(command, run="", kinds=(), needs=(), uses=(), provides=(), report=None):
    step = Step(run=run or f"test_contract:{command}_step", series_kinds=kinds, needs=needs, uses=uses,
                provides=provides)
    return Capability(command, f"{command} title", "CMRSegmentation", "cmrlib.motion.cli", "help", step,
                      report=report)


def seg_step(context):
    masks = {s.series_uid: "mask" for s in context.series("irw")}
    return StepResult({"n": len(masks)}, [f"{len(masks)} masks"], {"myocardium_mask": masks})


def aha_step(context):
    assert "myocardium_mask" in context.results  # handed by the earlier step
    return StepResult({"segments": 16, "masks": len(context.results["myocardium_mask"])}, ["16 segments"],
                      {"aha_segments": "aha"})


def dt1_step(context):
    return StepResult({"got": sorted(context.results)})


def broken_step(context):
    from cmrlib.errors import InputError
    raise InputError("no usable slice")


def buggy_step(context):
    raise ZeroDivisionError("bug")


def fake_report(summary, out_dir):
    return ReportSection("fake", notes=[json.dumps(summary)])


def test_step_order_follows_declarations_not_names():
    caps = [_record("a_dt1", needs=("aha_segments",), uses=("myocardium_mask",)),
            _record("b_aha", needs=("myocardium_mask",), provides=("aha_segments",)),
            _record("z_seg", provides=("myocardium_mask",))]
    assert [c.command for c in step_order(caps)] == ["z_seg", "b_aha", "a_dt1"]
    with pytest.raises(ValueError, match="cycle"):
        step_order([_record("x", needs=("b",), provides=("a",)), _record("y", needs=("a",), provides=("b",))])
    with pytest.raises(ValueError, match="no registered step provides"):
        step_order([_record("x", needs=("nothing",))])


def test_run_hands_results_on_and_says_why_steps_were_skipped(study_dir, tmp_path):
    caps = (_record("dt1", run="test_contract:dt1_step", needs=("aha_segments",), report="test_contract:fake_report"),
            _record("aha", run="test_contract:aha_step", needs=("myocardium_mask",), provides=("aha_segments",)),
            _record("seg", run="test_contract:seg_step", kinds=("irw",), provides=("myocardium_mask",)),
            _record("scar", run="test_contract:dt1_step", kinds=("la_lge",)))
    summary = run_study(study_dir, tmp_path / "out", caps=caps)
    steps = summary["steps"]
    assert summary["order"] == ["scar", "seg", "aha", "dt1"]
    assert steps["seg"]["status"] == DONE and steps["seg"]["result"] == {"n": 2}
    assert steps["aha"]["result"]["masks"] == 2
    assert steps["dt1"]["result"]["got"] == ["aha_segments", "myocardium_mask"]
    assert steps["scar"]["status"] == SKIPPED
    assert steps["scar"]["reason"].startswith("no left-atrial") or "no " in steps["scar"]["reason"]
    assert "found:" in steps["scar"]["reason"] and "cine" in steps["scar"]["reason"]
    on_disk = json.loads((tmp_path / "out" / "run.json").read_text())
    assert on_disk["steps"]["dt1"]["status"] == DONE and (tmp_path / "out" / "report.html").is_file()


def test_a_failed_step_skips_its_dependants_and_others_go_on(study_dir, tmp_path):
    caps = (_record("seg", run="test_contract:broken_step", provides=("myocardium_mask",)),
            _record("aha", run="test_contract:aha_step", needs=("myocardium_mask",), provides=("aha_segments",)),
            _record("bug", run="test_contract:buggy_step"),
            _record("other", run="test_contract:dt1_step"))
    summary = run_study(study_dir, tmp_path / "out", caps=caps)
    steps = summary["steps"]
    assert steps["seg"] == {"status": FAILED, "error": "no usable slice", "seconds": steps["seg"]["seconds"]}
    assert steps["aha"]["status"] == SKIPPED and "seg failed: no usable slice" in steps["aha"]["reason"]
    assert steps["bug"]["status"] == FAILED and "ZeroDivisionError" in steps["bug"]["error"]
    assert steps["other"]["status"] == DONE


def test_cmr_run_exit_code_and_summary_name_skips_and_failures(study_dir, tmp_path, monkeypatch, capsys):
    import cmrlib.study
    from cmrlib.cli import main
    caps = (_record("seg", run="test_contract:broken_step", kinds=("irw",), provides=("myocardium_mask",)),
            _record("scar", run="test_contract:dt1_step", kinds=("la_lge",)))
    monkeypatch.setattr(cmrlib.study, "capabilities", lambda: caps)
    assert main(["run", str(study_dir), "--out", str(tmp_path / "out"), "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "step seg: failed: no usable slice" in out
    assert "step scar: skipped (no " in out and "found: " in out


def test_cine_only_study_skips_motion_with_the_reason(tmp_path, capsys):
    from cmrlib import Image
    from cmrlib.cli import main
    from cmrlib.io import StudyInfo, write_dicom_series
    rng = np.random.default_rng(0)
    cine = Image(rng.random((12, 2, 16, 16)).astype(np.float32) * 100, (1.5, 1.5, 8.0), (0, 0, 0), np.eye(3), True,
                 {"SeriesDescription": "cine SAX"}, [{"TriggerTime": 40.0 * k} for k in range(12)])
    write_dicom_series(cine, tmp_path / "study" / "cine", description="cine SAX", study=StudyInfo.new("cine"))
    assert main(["run", str(tmp_path / "study"), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "step motion: skipped (no IRW" in out and "found: cine" in out
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["steps"]["motion"]["status"] == SKIPPED


def test_reading_the_registry_imports_no_torch_and_no_vtk():
    """A wheel without Slicer's vtk, and `cmr --help`, must be able to list capabilities."""
    import subprocess
    import sys
    code = ("import sys; from cmrlib.capabilities import capabilities, trainers; capabilities(); trainers(); "
            "print('vtk' in sys.modules, 'torch' in sys.modules, 'cmrlib.mrml' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == ["False", "False", "False"], proc.stderr


def test_a_series_that_lost_a_file_says_so_in_every_result(study_dir, tmp_path, capsys):
    """MOLLI 8 frames, one file truncated: the scan, the series NRRD, the motion result,
    run.json and report.html all say that a file is missing."""
    from cmrlib.cli import main
    victim = sorted((study_dir / "molli").glob("*.dcm"))[3]
    victim.write_bytes(victim.read_bytes()[:-200])  # pixel data cut short
    out = tmp_path / "out"
    assert main(["run", str(study_dir), "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert victim.name in printed and "warning: 1 file(s) of this series could not be read" in printed
    run = json.loads((out / "run.json").read_text())
    molli = next(r for r in run["steps"]["motion"]["result"]["series"] if r["series"] == "MOLLI native SAX")
    assert molli["n_frames"] == 7
    assert any("1 file(s) of this series could not be read" in n and victim.name in n for n in molli["notes"])
    on_disk = json.loads((out / molli["out"] / "result.json").read_text())
    assert on_disk["notes"] == molli["notes"]
    assert any(victim.name in n for n in run["steps"]["motion"]["notes"])
    report = (out / "report.html").read_text()
    assert victim.name in report and "could not be read" in report


def test_a_new_capability_is_one_package_and_nothing_else(study_dir, tmp_path, monkeypatch, capsys):
    """Drop a package with capability.py, pipeline.py, outputs.py and cli.py next to cmrlib's
    own: the CLI, `cmr run`'s order and the report pick it up with no central list edited."""
    import cmrlib
    import cmrlib.capabilities as registry
    from cmrlib.cli import main
    pkg = tmp_path / "ext" / "toy"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "capability.py").write_text(
        "from ..contract import Capability, Output, Step\n"
        "CAPABILITY = Capability('toy', 'counts IRW frames', 'CMRQuality', 'cmrlib.toy.cli', 'Counts frames.',\n"
        "    Step('cmrlib.toy.pipeline:run_step', series_kinds=('irw',), needs=('t1_map',)),\n"
        "    outputs=(Output('frames.json', 'json', 'frame counts'),), report='cmrlib.toy.outputs:report_section')\n")
    (pkg / "pipeline.py").write_text(
        "import json\nfrom ..contract import StepResult\n"
        "def run_step(context):\n"
        "    counts = {s.description: s.n_frames for s in context.series('irw')}\n"
        "    folder = context.folder('toy'); folder.mkdir(parents=True)\n"
        "    (folder / 'frames.json').write_text(json.dumps(counts))\n"
        "    return StepResult({'counts': counts, 't1_maps': len(context.results['t1_map'])}, [f'{len(counts)} series'])\n")
    (pkg / "outputs.py").write_text(
        "from ..contract import Finding, ReportSection\n"
        "def report_section(summary, out):\n"
        "    return ReportSection('Toy', [Finding(k, float(v), 'frames', fmt='.0f') for k, v in summary['counts'].items()])\n")
    (pkg / "cli.py").write_text("def add_arguments(p):\n    p.add_argument('folder')\ndef run(args):\n    return 0\n")
    monkeypatch.setattr(cmrlib, "__path__", [*cmrlib.__path__, str(tmp_path / "ext")])
    registry.capabilities.cache_clear()
    try:
        assert "toy" in [c.command for c in registry.capabilities()]
        with pytest.raises(SystemExit):
            main(["--help"])
        assert "counts IRW frames" in capsys.readouterr().out
        assert main(["run", str(study_dir), "--out", str(tmp_path / "out"), "--quiet"]) == 0
        run = json.loads((tmp_path / "out" / "run.json").read_text())
        assert [c for c in run["order"] if c in ("motion", "toy")] == ["motion", "toy"]  # toy needs motion's t1_map
        assert run["steps"]["toy"]["result"]["t1_maps"] == 2
        report = (tmp_path / "out" / "report.html").read_text()
        assert "<h3>Toy</h3>" in report and ">7</td>" in report and ">8</td>" in report
    finally:
        registry.capabilities.cache_clear()

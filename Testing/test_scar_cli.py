"""`cmr scar` end to end on a phantom DICOM study (LGE + cine of one subject), its refusals (a
clear one-line message, nothing written), and the `cmr run` step."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cmrlib.cli import main
from conftest import tree_snapshot


@pytest.fixture(scope="module")
def scar_study(tmp_path_factory) -> Path:
    """A phantom study with an ischaemic scar: LGE PSIR and magnitude stacks and a 12-phase cine."""
    from cmrlib.phantom import Phantom, PhantomOptions, sample_subject
    from cmrlib.phantom.generate import Study
    from cmrlib.phantom.writer import write_study
    s = sample_subject(12, PhantomOptions(matrix=80, la=False, scar="ischemic", n_phases=12, n_slices=8))
    ph = Phantom(s)
    psir, mag = ph.lge()
    series = {"cine": ph.cine(), "lge_psir": psir, "lge_mag": mag}
    return write_study(Study(ph.s, series, ph.study_truth(series)), tmp_path_factory.mktemp("scar") / "study",
                       sheets=False)


def _folder(study: Path, word: str) -> Path:
    return next(p for p in sorted((study / "dicom").iterdir()) if word in p.name)


def _truth_labels(study: Path) -> Path:
    return next(p for p in sorted((study / "truth").iterdir()) if p.name.startswith("lge_psir") and "labels" in p.name)


def test_cmr_scar_on_dicom_folders_matches_by_tags_and_writes_every_output(scar_study, tmp_path, capsys):
    out = tmp_path / "scar"
    lge, cine = _folder(scar_study, "PSIR"), _folder(scar_study, "cine")
    assert main(["scar", "--lge", str(lge), "--cine", str(cine), "--method", "nsd5", "--mask",
                 str(_truth_labels(scar_study)), "--out", str(out), "--quiet"]) == 0
    for name in ("labels.nrrd", "slices.csv", "methods.csv", "result.json", "scar.png"):
        assert (out / name).is_file(), name
    res = json.loads((out / "result.json").read_text())
    for key in ("percent_scar", "myocardial_volume_ml", "scar_volume_ml", "scar_present", "slices_segmented",
                "slices_total", "method", "seconds", "model"):
        assert key in res, key
    assert res["method"] == "nsd5" and res["slices_total"] == 8 and res["scar_present"] is True
    # the LGE's DICOM TriggerTime chose the cine frame: the same one for every slice, the positions coincide
    frames = {s["cine"]["cine_frame"] for s in res["slices"]}
    lge_tt = {s["cine"]["lge_trigger_ms"] for s in res["slices"]}
    assert len(frames) == 1 and len(lge_tt) == 1 and None not in lge_tt
    assert all(s["cine"]["cine_slice"] == s["index"] and s["cine"]["distance_mm"] < 0.01 for s in res["slices"])
    from cmrlib.scar.outputs import read_result
    back = read_result(out)
    assert set(np.unique(back["labels"].array)) <= {0, 1, 2} and len(back["slices"]) == 8
    assert {r["method"] for r in back["methods"]} >= {"nsd2", "nsd3", "nsd5", "fwhm"}  # + the installed U-Nets
    printed = capsys.readouterr().out
    assert "%scar" in printed and "5 SD above remote" in printed


def test_lv_centre_overrides_come_in_lps_and_are_used(scar_study, tmp_path):
    from cmrlib.io import load_series, scan_folder
    lge_dir = _folder(scar_study, "PSIR")
    lge = load_series(scan_folder(lge_dir).series[0])
    p = lge.index_to_lps([30.0, 33.0, 2.0])
    centres = tmp_path / "centres.json"
    centres.write_text(json.dumps({"lge": {"3": [float(v) for v in p]}}))
    out = tmp_path / "scar"
    assert main(["scar", "--lge", str(lge_dir), "--method", "nsd5", "--mask", str(_truth_labels(scar_study)),
                 "--centres", str(centres), "--out", str(out), "--quiet"]) == 0
    s = json.loads((out / "result.json").read_text())["slices"][2]
    assert s["centre_source"] == "user" and s["lv_centre_lge_px"] == pytest.approx([30.0, 33.0], abs=0.01)


@pytest.mark.parametrize("args, message", [
    (["--method", "fusion"], "needs the cine"),
    (["--method", "nsd3"], "give --mask"),
    (["--cine", "{lge}"], "no cine series"),
    (["--centres", "{missing}"], "not a readable JSON"),
])
def test_user_errors_are_one_line_and_write_nothing(scar_study, tmp_path, capsys, args, message):
    lge = _folder(scar_study, "PSIR")
    out = tmp_path / "scar"
    before = tree_snapshot(scar_study)
    filled = [a.format(lge=lge, missing=tmp_path / "none.json") for a in args]
    assert main(["scar", "--lge", str(lge), "--out", str(out), "--quiet", *filled]) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists() and tree_snapshot(scar_study) == before


def test_an_output_inside_the_dicom_input_is_refused(scar_study, tmp_path, capsys):
    lge = _folder(scar_study, "PSIR")
    before = tree_snapshot(scar_study)
    assert main(["scar", "--lge", str(lge), "--method", "nsd5", "--mask", str(_truth_labels(scar_study)),
                 "--out", str(lge / "out"), "--quiet"]) == 1
    assert tree_snapshot(scar_study) == before


def test_cmr_run_quantifies_scar_with_the_qcd_mask_and_reports_the_methods(scar_study, tmp_path):
    out = tmp_path / "run"
    main(["run", str(scar_study / "dicom"), "--out", str(out), "--quiet"])
    step = json.loads((out / "run.json").read_text())["steps"]["scar"]
    assert step["status"] == "done", step
    (r,) = step["result"]["series"]
    assert r["series"].startswith("LGE PSIR") and r["cine"] == "cine SAX" and r["mask"] == "QCD"
    assert r["percent_scar"] is not None and (out / r["out"] / "labels.nrrd").is_file()
    report = (out / "report.html").read_text()
    assert "Scar quantification, LGE" in report and "methods side by side" in report

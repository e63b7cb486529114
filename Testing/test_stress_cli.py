"""`cmr stress` end to end (NRRD and DICOM inputs), the bad inputs the issue names (a clear
one-line message, nothing written), and the `cmr run` step on a phantom study that holds rest
and stress T1 maps."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from cmrlib.cli import main
from cmrlib.image import Image
from cmrlib.io import write_image
from conftest import tree_snapshot


@pytest.fixture(scope="module")
def pair_files(tmp_path_factory):
    from cmrlib.stress.data import phantom_pairs
    p = phantom_pairs([21], positions=("mid",))[0]
    d = tmp_path_factory.mktemp("pair")
    sp = (*p.spacing, 8.0)
    write_image(Image(p.rest[None], sp, meta={"kind": "t1map", "units": "ms"}), d / "rest.nrrd")
    write_image(Image(p.stress[None], sp, meta={"kind": "t1map", "units": "ms"}), d / "stress.nrrd")
    write_image(Image(p.rest_labels[None].astype(np.uint8), sp), d / "rest_labels.nrrd")
    write_image(Image(p.stress_labels[None].astype(np.uint8), sp), d / "stress_labels.nrrd")
    write_image(Image(p.rest_aha[None].astype(np.uint8), sp), d / "aha.nrrd")
    write_image(Image((p.rest / 30.0)[None], sp), d / "magnitude.nrrd")
    return d


def test_cmr_stress_writes_every_output(pair_files, tmp_path, capsys):
    d, out = pair_files, tmp_path / "dt1"
    assert main(["stress", "--rest", str(d / "rest.nrrd"), "--stress", str(d / "stress.nrrd"), "--mask",
                 str(d / "rest_labels.nrrd"), "--stress-mask", str(d / "stress_labels.nrrd"), "--segments",
                 str(d / "aha.nrrd"), "--method", "classical", "--out", str(out), "--quiet"]) == 0
    for name in ("stress_registered.nrrd", "dt1_map.nrrd", "myocardium.nrrd", "result.json", "dt1.png",
                 "segments.csv", "bullseye.png", "aha_segments.nrrd"):
        assert (out / name).is_file(), name
    res = json.loads((out / "result.json").read_text())
    assert res["method"] == "classical" and len(res["dt1_slice_percent"]) == 1
    assert res["dice_after"] > res["dice_before"]
    assert set(res["segments"]) == {str(s) for s in range(7, 13)}
    assert res["seconds"] > 0 and res["model"] is None
    from cmrlib.stress.outputs import read_result
    back = read_result(out)
    assert back["dt1"].array.shape == (1, *np.asarray(back["registered"].array).shape[1:])
    assert [r["segment"] for r in back["segment_stats"]] == list(range(7, 13))
    assert "dT1 per slice" in capsys.readouterr().out


@pytest.mark.parametrize("extra, message", [
    ([], "give --mask"),
    (["--mask", "{d}/rest_labels.nrrd", "--reverse"], "needs the stress map's myocardium mask"),
])
def test_missing_masks_are_refused(pair_files, tmp_path, capsys, extra, message):
    d, out = pair_files, tmp_path / "dt1"
    args = [a.format(d=d) for a in extra]
    assert main(["stress", "--rest", str(d / "rest.nrrd"), "--stress", str(d / "stress.nrrd"), "--method", "none",
                 "--out", str(out), "--quiet", *args]) != 0
    assert message in capsys.readouterr().err and not out.exists()


def test_a_magnitude_image_is_refused_and_nothing_changes(pair_files, tmp_path, capsys):
    d, out = pair_files, tmp_path / "dt1"
    out.mkdir()
    (out / "keep.txt").write_text("earlier result")
    before = tree_snapshot(out)
    assert main(["stress", "--rest", str(d / "magnitude.nrrd"), "--stress", str(d / "stress.nrrd"), "--mask",
                 str(d / "rest_labels.nrrd"), "--method", "none", "--out", str(out), "--quiet"]) != 0
    err = capsys.readouterr().err
    assert "does not look like a T1 map" in err and len(err.strip().splitlines()) == 1
    assert tree_snapshot(out) == before


def _stress_study(folder: Path, positions=("basal", "mid")) -> Path:
    """A phantom study of rest and stress IRW series with their scanner T1 maps only."""
    from cmrlib.phantom import Phantom, PhantomOptions, sample_subject
    from cmrlib.phantom.generate import Study
    from cmrlib.phantom.writer import write_study
    s = sample_subject(8, PhantomOptions(matrix=96, la=False, stress=True))
    mis = dict(s.misregistration)
    mis["rest_stress"] = [3.0, -2.0, 4.0, 0.5]
    ph = Phantom(replace(s, misregistration=mis))
    series = {}
    for cond in ("native", "stress"):
        for pos in positions:
            irw = ph.irw(pos, cond)
            series[irw.name] = irw
            t1 = ph.t1map(irw)
            series[t1.name] = t1
    return write_study(Study(ph.s, series, ph.study_truth(series)), folder, sheets=False)


def test_cmr_run_pairs_rest_and_stress_maps(tmp_path):
    study = _stress_study(tmp_path / "study")
    out = tmp_path / "run"
    assert main(["run", str(study / "dicom"), "--out", str(out), "--quiet"]) == 0
    step = json.loads((out / "run.json").read_text())["steps"]["stress"]
    assert step["status"] == "done", step
    pairs = step["result"]["pairs"]
    assert step["result"]["source"] == "scanner T1 maps" and len(pairs) == 2
    for p in pairs:
        assert "native" in p["name"] and "stress" in p["name"] and p["mask"] == "QCD"
        assert len(p["dt1_slice_percent"]) == 1 and p["dt1_slice_percent"][0] is not None
        assert (out / p["out"] / "dt1_map.nrrd").is_file()
    report = (out / "report.html").read_text()
    assert "Stress T1 reactivity, dT1" in report and "dT1 per slice" in report


def test_cmr_run_skips_stress_without_a_pair(study_dir, tmp_path):
    out = tmp_path / "run"
    main(["run", str(study_dir), "--out", str(out), "--quiet"])
    step = json.loads((out / "run.json").read_text())["steps"]["stress"]
    assert step["status"] == "skipped"


def test_cmr_stress_fits_irw_dicom_folders(tmp_path):
    """DICOM folders of one IRW series each: the maps are fitted (shared MOLLI / ShMOLLI fit) and
    the result says so."""
    from cmrlib.io import StudyInfo, write_dicom_series
    from cmrlib.phantom import Phantom, PhantomOptions, sample_subject
    ph = Phantom(sample_subject(8, PhantomOptions(matrix=64, la=False, stress=True, clean=True)))
    info = StudyInfo.new("stress-irw")
    folders = {}
    for cond in ("native", "stress"):
        irw = ph.irw("mid", cond, motion_severity=0.0)
        folders[cond] = write_dicom_series(irw.image, tmp_path / cond, description=irw.description, study=info)
        if cond == "native":
            write_image(irw.labels, tmp_path / "labels.nrrd")
    out = tmp_path / "dt1"
    assert main(["stress", "--rest", str(tmp_path / "native"), "--stress", str(tmp_path / "stress"), "--mask",
                 str(tmp_path / "labels.nrrd"), "--method", "none", "--out", str(out), "--quiet"]) == 0
    res = json.loads((out / "result.json").read_text())
    assert any("fitted here from its IRW series" in n for n in res["notes"])
    assert -20.0 < res["dt1_slice_percent"][0] < 25.0


def test_output_beside_input_files_is_fine_inside_a_dicom_input_is_not(pair_files, tmp_path, capsys):
    import shutil
    d = tmp_path / "files"
    shutil.copytree(pair_files, d)
    assert main(["stress", "--rest", str(d / "rest.nrrd"), "--stress", str(d / "stress.nrrd"), "--mask",
                 str(d / "rest_labels.nrrd"), "--method", "none", "--out", str(d / "dt1"), "--quiet"]) == 0
    assert (d / "dt1" / "result.json").is_file()
    dicom = tmp_path / "dicom"
    dicom.mkdir()
    assert main(["stress", "--rest", str(dicom), "--stress", str(d / "stress.nrrd"), "--mask",
                 str(d / "rest_labels.nrrd"), "--out", str(dicom / "out"), "--quiet"]) != 0
    assert "inside the input folder" in capsys.readouterr().err and not (dicom / "out").exists()


def _pairs_table(d: Path, rows: list[str]) -> Path:
    table = d.parent / f"{d.name}-pairs-{len(rows)}-{abs(hash(tuple(rows))) % 10**6}.csv"
    table.write_text("name,rest,stress,mask,stress_mask\n" + "".join(r + "\n" for r in rows))
    return table


def test_pairs_table_runs_a_cohort_in_one_process_and_reports_a_failed_pair(pair_files, tmp_path, capsys):
    d, out = pair_files, tmp_path / "cohort"
    good = f"{d.name}/rest.nrrd,{d.name}/stress.nrrd,{d.name}/rest_labels.nrrd,{d.name}/stress_labels.nrrd"
    table = _pairs_table(d, [f"p01,{good}", f"p02-mag,{d.name}/magnitude.nrrd,{d.name}/stress.nrrd,"
                                            f"{d.name}/rest_labels.nrrd,", f"p03,{good}"])
    assert main(["stress", "--pairs", str(table), "--method", "classical", "--out", str(out), "--quiet"]) == 1
    import csv
    with open(out / "pairs.csv", newline="") as fh:
        rows = {r["name"]: r for r in csv.DictReader(fh)}
    assert [rows[n]["status"] for n in ("p01", "p02-mag", "p03")] == ["done", "failed", "done"]
    assert "does not look like a T1 map" in rows["p02-mag"]["message"]
    assert not (out / "p02-mag").exists()  # a failed pair leaves nothing that looks like a result
    # the same pair run on its own gives the same numbers
    single = tmp_path / "single"
    assert main(["stress", "--rest", str(d / "rest.nrrd"), "--stress", str(d / "stress.nrrd"), "--mask",
                 str(d / "rest_labels.nrrd"), "--stress-mask", str(d / "stress_labels.nrrd"), "--method",
                 "classical", "--out", str(single), "--quiet"]) == 0
    want = json.loads((single / "result.json").read_text())
    for name in ("p01", "p03"):
        got = json.loads((out / name / "result.json").read_text())
        assert got["dt1_slice_percent"] == pytest.approx(want["dt1_slice_percent"], abs=1e-6)
        assert float(rows[name]["dt1_slice_percent"]) == pytest.approx(want["dt1_slice_percent"][0], abs=1e-3)
        assert float(rows[name]["dice_after"]) > float(rows[name]["dice_before"])
    assert "2 of 3 pairs done" in capsys.readouterr().out


@pytest.mark.parametrize("row, message", [
    ("p01,{n}/rest.nrrd,{n}/nothing.nrrd,{n}/rest_labels.nrrd,", "nothing.nrrd does not exist"),
    ("p01,{n}/rest.nrrd,{n}/stress.nrrd,,", "empty mask"),
    ("../up,{n}/rest.nrrd,{n}/stress.nrrd,{n}/rest_labels.nrrd,", "must be letters"),
])
def test_a_bad_pairs_table_is_refused_before_any_work(pair_files, tmp_path, capsys, row, message):
    d, out = pair_files, tmp_path / "cohort"
    good = f"p00,{d.name}/rest.nrrd,{d.name}/stress.nrrd,{d.name}/rest_labels.nrrd,"
    table = _pairs_table(d, [good, row.format(n=d.name)])
    assert main(["stress", "--pairs", str(table), "--method", "none", "--out", str(out), "--quiet"]) != 0
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()

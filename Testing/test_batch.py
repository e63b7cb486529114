"""`cmr batch` survives interruption: manifest, resume without redoing, batch.csv on every exit."""
from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cmrlib.batch import MANIFEST, TABLE, fingerprint
from cmrlib.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _cohort(study_dir: Path, tmp_path: Path, n: int) -> Path:
    cohort = tmp_path / "cohort"
    cohort.mkdir()
    for k in range(n):
        shutil.copytree(study_dir, cohort / f"s{k}")
    return cohort


def _states(out: Path) -> dict[str, dict]:
    try:
        return json.loads((out / MANIFEST).read_text())["studies"]
    except (OSError, ValueError):
        return {}


def _table(out: Path) -> dict[str, str]:
    with open(out / TABLE) as f:
        return {row["study"]: row["status"] for row in csv.DictReader(f)}


def _interrupt_after_first(cohort: Path, out: Path, sig: int, jobs: int = 1) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), CMR_DEVICE="cpu")
    proc = subprocess.Popen([sys.executable, "-m", "cmrlib.cli", "batch", str(cohort), "--out", str(out), "--quiet",
                             "--jobs", str(jobs)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if any(e.get("state") == "done" for e in _states(out).values()):
            break
        time.sleep(0.05)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


@pytest.mark.slow
def test_interrupted_batch_resumes_without_redoing(study_dir, tmp_path):
    cohort = _cohort(study_dir, tmp_path, 5)
    out = tmp_path / "res"
    first = _interrupt_after_first(cohort, out, signal.SIGINT)
    assert first.returncode == 130, first.stderr
    assert "Traceback" not in first.stderr and "interrupted" in first.stderr
    states = _states(out)
    done_before = {name for name, e in states.items() if e["state"] == "done"}
    assert 1 <= len(done_before) < 5, "the batch was not interrupted half-way"
    table = _table(out)  # written on the interrupted exit too
    assert set(table) == {f"s{k}" for k in range(5)} and all(table[n] == "done" for n in done_before)
    assert not list(out.glob(".*partial*")), "an interrupted study left its temporary folder"
    for name in set(table) - done_before:  # nothing half-written looks complete
        assert not (out / name / "run.json").exists()
    stamps = {n: (out / n / "run.json").stat().st_mtime_ns for n in done_before}

    second = subprocess.run([sys.executable, "-m", "cmrlib.cli", "batch", str(cohort), "--out", str(out), "--quiet"],
                            env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=400)
    assert second.returncode == 0, second.stderr
    assert f"{len(done_before)} already complete" in second.stdout
    states = _states(out)
    assert all(e["state"] == "done" and e["completed_runs"] == 1 for e in states.values()), states
    assert {n: (out / n / "run.json").stat().st_mtime_ns for n in done_before} == stamps  # none redone
    assert set(_table(out).values()) == {"done"}


@pytest.mark.slow
def test_sigterm_with_parallel_jobs_still_writes_the_table(study_dir, tmp_path):
    cohort = _cohort(study_dir, tmp_path, 4)
    out = tmp_path / "res"
    proc = _interrupt_after_first(cohort, out, signal.SIGTERM, jobs=2)
    assert proc.returncode == 130 and "Traceback" not in proc.stderr
    assert set(_table(out)) == {"s0", "s1", "s2", "s3"}
    assert main(["batch", str(cohort), "--out", str(out), "--quiet", "--jobs", "2"]) == 0
    states = _states(out)
    assert all(e["state"] == "done" and e["completed_runs"] == 1 for e in states.values())


def test_changed_inputs_are_redone_and_failures_recorded(study_dir, tmp_path, capsys):
    cohort = _cohort(study_dir, tmp_path, 2)
    (cohort / "empty").mkdir()
    (cohort / "empty" / "notes.txt").write_text("no DICOM here")
    out = tmp_path / "res"
    assert main(["batch", str(cohort), "--out", str(out), "--quiet"]) == 1
    assert _table(out) == {"empty": "failed", "s0": "done", "s1": "done"}
    assert "no DICOM image found" in _states(out)["empty"]["error"]
    before = fingerprint(cohort / "s1")
    extra = next((cohort / "s1").rglob("*.dcm"))
    os.utime(extra, ns=(extra.stat().st_atime_ns, extra.stat().st_mtime_ns + 10**9))
    assert fingerprint(cohort / "s1") != before
    capsys.readouterr()
    assert main(["batch", str(cohort), "--out", str(out), "--quiet"]) == 1
    states = _states(out)
    assert states["s0"]["completed_runs"] == 1 and states["s1"]["completed_runs"] == 2
    assert "1 already complete" in capsys.readouterr().out

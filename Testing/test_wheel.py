"""A wheel carries its data: built from this checkout, installed (not editable) into a fresh venv
with torch==2.13.0 first, it verifies its bundled models and runs `cmr demo` to a report."""
from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONSTRAINTS = ROOT / "requirements" / "constraints.txt"


#: the installed wheel must be what runs: nothing may point back at the checkout
CLEAN_ENV = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CMR_MODELS_DIR", "CMR_SAMPLE_DATA_DIR")}


def _run(cmd: list[str], cwd: Path, timeout: int = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env or CLEAN_ENV)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    # the checkout's own setuptools (no build isolation: nothing fetched to build)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(ROOT)],
         cwd=dist)
    (found,) = dist.glob("slicer_cmr-*.whl")
    return found


def test_wheel_holds_the_models_and_the_sample_study(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("cmrlib/resources/models/manifest.json", "cmrlib/resources/models/moconet-compact.safetensors",
                   "cmrlib/resources/models/moconet-compact.md", "cmrlib/resources/sampledata/sampledata.json",
                   "cmrlib/resources/sampledata/CMRPhantomStudy.zip"):
        assert needed in names, needed
    assert not [n for n in names if n.startswith(("Testing/", "CMRMotion/", "CMRCommonLib/"))]


@pytest.mark.slow
def test_installed_wheel_verifies_models_and_runs_the_demo(wheel, tmp_path):
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path)
    py = venv / "bin" / "python"
    pip = [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    _run(pip + ["torch==2.13.0"], cwd=tmp_path, timeout=900)
    _run(pip + ["-c", str(CONSTRAINTS), str(wheel)], cwd=tmp_path, timeout=900)
    env = dict(CLEAN_ENV, CMR_DEVICE="cpu")
    cmr = str(venv / "bin" / "cmr")
    where = _run([str(py), "-c", "import cmrlib, sys; print(cmrlib.__file__)"], cwd=tmp_path, env=env).stdout
    assert str(venv) in where, "the test must exercise the installed wheel, not the checkout"
    verify = _run([cmr, "models", "verify"], cwd=tmp_path, env=env)
    from cmrlib.models import bundled_models_dir, read_manifest
    n = len(read_manifest(bundled_models_dir()))  # every bundled model travels in the wheel
    assert n >= 2 and f"{n} of {n} model(s) verified" in verify.stdout
    demo = _run([cmr, "demo", "--out", str(tmp_path / "demo"), "--quiet"], cwd=tmp_path, env=env, timeout=600)
    last = demo.stdout.strip().splitlines()[-1]
    assert last == f"report: {tmp_path / 'demo' / 'results' / 'report.html'}"
    assert "MOCOnet, phantom-trained demonstration weights" in demo.stdout
    assert "step landmarks: done" in demo.stdout

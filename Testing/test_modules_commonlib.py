"""Qt-free parts of CMRCommonLib: requirements checking, device choice, subprocess runner.

The study loader and module logic (which need the slicer-core wheel) are tested in
test_modules_logic.py.
"""
from __future__ import annotations

import json
import os
import sys
import textwrap
import time
import types
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
for _p in (ROOT, *(ROOT / m for m in ("CMRQuality", "CMRMotion", "CMRStressT1", "CMRSegmentation"))):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from CMRCommonLib import dependencies as deps  # noqa: E402
from CMRCommonLib.device_choice import (DEVICE_ENV_VAR, DeviceChoice, GpuStatus, device_environment,  # noqa: E402
                                        device_warning, gpu_probe_command, parse_gpu_probe)
from CMRCommonLib.runner import (ProgressEvent, SubprocessRunner, child_environment, cmrlib_cli_command,  # noqa: E402
                                 cmrlib_search_path, python_executable)


# ---------------------------------------------------------------------------------------
# dependencies
# ---------------------------------------------------------------------------------------
def test_parse_requirements_skips_comments_options_and_inline_comments():
    lines = [
        "# a comment",
        "",
        "-c constraints.txt",
        "--index-url https://example.invalid/simple",
        "monai>=1.3  # networks",
        "einops>=0.7\t# tabs too",
        "pywin32>=300; sys_platform == 'win32'",
        "scikit-image[data]>=0.21",
    ]
    reqs = deps.parse_requirements(lines)
    assert [r.name for r in reqs] == ["monai", "einops", "pywin32", "scikit-image"]
    assert str(reqs[0].specifier) == ">=1.3"
    assert reqs[2].marker is not None
    assert reqs[3].extras == {"data"}


def test_parse_requirements_names_file_and_line_on_error(tmp_path):
    path = tmp_path / "CMRX-requirements.txt"
    path.write_text("numpy>=1.24\nthis is not a requirement!\n")
    with pytest.raises(deps.RequirementsFileError, match=r"CMRX-requirements.txt, line 2: expected a PEP 508"):
        deps.read_requirements(path)
    with pytest.raises(deps.RequirementsFileError, match="cannot read requirements file"):
        deps.read_requirements(tmp_path / "missing.txt")


def test_missing_requirements_versions_markers_prereleases():
    installed = {"numpy": "2.4.6", "monai": "1.2.0", "einops": "0.8.0rc1"}
    reqs = [Requirement(t) for t in (
        "numpy>=1.24",                          # satisfied
        "monai>=1.3",                           # too old
        "safetensors>=0.4",                     # not installed
        "einops>=0.7",                          # pre-release counts
        "pywin32>=300; sys_platform == 'win32'",  # marker does not apply below
        "tqdm",                                 # no specifier, not installed
    )]
    missing = deps.missing_requirements(reqs, environment={"sys_platform": "linux"},
                                        version_of=installed.get)
    assert [(m.requirement.name, m.installed_version) for m in missing] == [
        ("monai", "1.2.0"), ("safetensors", None), ("tqdm", None)]
    assert str(missing[0]) == "monai>=1.3 (found 1.2.0)"
    assert str(missing[1]) == "safetensors>=0.4 (not installed)"
    assert deps.pip_arguments(missing) == ["monai>=1.3", "safetensors>=0.4", "tqdm"]
    assert deps.describe_missing(missing).splitlines()[0] == "- monai>=1.3 (found 1.2.0)"
    on_windows = deps.missing_requirements(reqs[4:5], environment={"sys_platform": "win32"},
                                           version_of=installed.get)
    assert [m.requirement.name for m in on_windows] == ["pywin32"]


def test_missing_requirements_against_this_environment():
    reqs = [Requirement("numpy>=1.0"), Requirement("packaging"), Requirement("surely-not-a-package-cmr>=1")]
    missing = deps.missing_requirements(reqs)
    assert [m.requirement.name for m in missing] == ["surely-not-a-package-cmr"]


def test_forbidden_requirements_are_named_with_reason():
    reqs = [Requirement(t) for t in ("torch>=2.2", "VTK", "PySide6_Essentials", "slicer.core", "monai")]
    bad = deps.forbidden_requirements(reqs)
    assert [r.name for r, _ in bad] == ["torch", "VTK", "PySide6_Essentials", "slicer.core"]
    assert "PyTorch extension" in bad[0][1]


def test_the_extension_has_one_requirements_file():
    assert deps.REQUIREMENTS_FILE == ROOT / "CMRCommonLib" / "Resources" / "SlicerCMR-requirements.txt"
    assert deps.read_requirements(deps.REQUIREMENTS_FILE)
    assert not hasattr(deps, "requirements_file"), "no per-module requirements files any more"


@pytest.mark.parametrize("extension, version, satisfied, says", [
    (True, "2.13.0", True, ""),
    (True, "2.13.0+cu126", True, ""),
    (False, "2.5.1", True, ""),                      # torch from elsewhere is fine if recent enough
    (False, None, False, "install 'PyTorch' from the Extensions Manager"),
    (False, "2.0.1", False, "torch 2.0.1 is installed but SlicerCMR needs torch>=2.2; SlicerCMR runs"),
    (True, None, False, "PyTorch is not installed yet: the PyTorch extension installs it"),
    (True, "2.1.0", False, "reinstall it from the 'PyTorch Utils' module with the version requirement '>=2.2'"),
    (True, "not-a-version", False, "reinstall it"),
])
def test_torch_status(extension, version, satisfied, says):
    status = deps.torch_status(find_module=lambda name: object() if extension and name == "PyTorchUtils" else None,
                               version_of=lambda name: version if name == "torch" else None)
    assert status == deps.TorchStatus(extension, version)
    assert status.satisfied is satisfied
    problem = status.problem()
    assert (problem == "") is satisfied and says in problem


def test_torch_status_of_this_environment():
    status = deps.torch_status()
    assert status.extension is False  # PyTorchUtils is a Slicer module: not here
    assert status.satisfied and status.version  # torch itself is installed for the tests
    assert "Extensions Manager" in deps.PYTORCH_EXTENSION_MISSING


# ---------------------------------------------------------------------------------------
# device choice
# ---------------------------------------------------------------------------------------
def test_device_choice_maps_to_cmr_device():
    # the parameter node stores enum names: renaming a member breaks saved scenes
    assert [c.name for c in DeviceChoice] == ["AUTO", "CPU", "GPU"]
    assert device_environment(DeviceChoice.AUTO) == {DEVICE_ENV_VAR: "auto"}
    assert device_environment(DeviceChoice.CPU) == {"CMR_DEVICE": "cpu"}
    assert device_environment(DeviceChoice.GPU) == {"CMR_DEVICE": "cuda"}
    assert device_environment(None) == {"CMR_DEVICE": "auto"}
    assert DeviceChoice.from_value("gpu") is DeviceChoice.GPU
    assert DeviceChoice.from_value(" CUDA ") is DeviceChoice.GPU
    assert DeviceChoice.from_value("Cpu") is DeviceChoice.CPU
    labels = [c.label() for c in DeviceChoice]
    assert len(set(labels)) == 3 and all(labels)
    with pytest.raises(ValueError, match="unknown device choice 'tpu'"):
        DeviceChoice.from_value("tpu")


@pytest.mark.parametrize("choice, status, expected", [
    (DeviceChoice.AUTO, GpuStatus(False, None), "PyTorch is not installed"),
    (DeviceChoice.CPU, GpuStatus(True, None), ""),
    (DeviceChoice.CPU, GpuStatus(True, 1.0), ""),
    (DeviceChoice.AUTO, GpuStatus(True, None), "No CUDA GPU was found: models run on the CPU"),
    (DeviceChoice.GPU, GpuStatus(True, None), "No CUDA GPU was found: models will run on the CPU instead"),
    (DeviceChoice.GPU, GpuStatus(True, 2.0), "The GPU has 2.0 GB of memory (at least 4 GB recommended)"),
    (DeviceChoice.AUTO, GpuStatus(True, 3.9), "The GPU has 3.9 GB"),
    (DeviceChoice.GPU, GpuStatus(True, 16.0), ""),
])
def test_device_warning(choice, status, expected):
    text = device_warning(choice, status)
    if expected:
        assert expected in text
    else:
        assert text == ""


def test_parse_gpu_probe():
    assert parse_gpu_probe('noise\nCMR-GPU {"torch_installed": true, "memory_gb": 7.5}\n') == GpuStatus(True, 7.5)
    assert parse_gpu_probe('CMR-GPU {"torch_installed": false, "memory_gb": null}') == GpuStatus(False, None)
    with pytest.raises(ValueError, match="no 'CMR-GPU' line"):
        parse_gpu_probe("Traceback ...")


def test_gpu_probe_and_device_choice_reach_cmrlib_in_a_child_process(tmp_path):
    """The panel's GPU query and its CMR_DEVICE, run as the panel runs them: in a child."""
    result = SubprocessRunner(gpu_probe_command(sys.executable), cwd=tmp_path).run(timeout_s=120)
    assert result.returncode == 0, result.stderr
    status = parse_gpu_probe(result.stdout)
    assert status.torch_installed  # the test environment has the CPU torch
    assert status.memory_gb is None or status.memory_gb > 0
    code = "from cmrlib.device import pick_device; print(pick_device())"
    result = SubprocessRunner([sys.executable, "-c", code], cwd=tmp_path,
                              extra_env=device_environment(DeviceChoice.CPU)).run(timeout_s=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "cpu"


# ---------------------------------------------------------------------------------------
# runner
# ---------------------------------------------------------------------------------------
def test_progress_event_parsing():
    event = ProgressEvent.from_line('CMR-PROGRESS {"phase": "fit", "done": 3, "total": 4, "message": "slice 3"}\n')
    assert event == ProgressEvent("fit", 3, 4, "slice 3")
    assert event.fraction == 0.75
    assert ProgressEvent("fit", 5, 4).fraction == 1.0
    assert ProgressEvent("scan", 3, 0).fraction == 0.0  # total not known yet
    assert ProgressEvent.from_line("CMR-PROGRESS {not json") is None
    assert ProgressEvent.from_line('CMR-PROGRESS {"phase": "x", "done": "many"}') is None
    assert ProgressEvent.from_line("Traceback (most recent call last):") is None


CHILD = textwrap.dedent("""
    import json, sys
    from cmrlib.progress import line_progress
    report = line_progress()
    print("result line 1")
    for k in range(3):
        report("fit", k + 1, 3, f"slice {k + 1}")
    sys.stderr.write("a warning from the child\\n")
    sys.stderr.write('CMR-PROGRESS {"phase": "save", "done": 0, "total": 0, "message": ""}\\n')
    print(json.dumps({"ok": True}))
    sys.exit(3)
""")


def test_runner_reports_progress_and_collects_output(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    progress: list[tuple[str, float, str]] = []
    logs: list[str] = []
    runner = SubprocessRunner([sys.executable, str(script)], cwd=tmp_path,
                              on_progress=lambda p, f, m: progress.append((p, f, m)), on_log=logs.append)
    assert not runner.started
    result = runner.run(timeout_s=60)
    assert progress == [("fit", pytest.approx(1 / 3), "slice 1"), ("fit", pytest.approx(2 / 3), "slice 2"),
                        ("fit", 1.0, "slice 3"), ("save", 0.0, "")]
    assert result.returncode == 3 and not result.ok and not result.cancelled
    assert result.stdout.splitlines() == ["result line 1", '{"ok": true}']
    assert "CMR-PROGRESS" not in result.stderr
    assert result.stderr.strip() == "a warning from the child"
    assert logs == ["a warning from the child"]
    assert result.last_progress == ProgressEvent("save", 0, 0, "")
    assert result.error_text() == "a warning from the child"
    assert result.elapsed_s > 0
    assert not runner.running
    with pytest.raises(RuntimeError, match="already started"):
        runner.start()


def test_runner_poll_without_blocking(tmp_path):
    runner = SubprocessRunner([sys.executable, "-c", "import time; time.sleep(0.3); print('late')"], cwd=tmp_path)
    with pytest.raises(RuntimeError, match="before start"):
        runner.poll()
    runner.start()
    assert runner.running
    assert runner.poll() is None  # still sleeping
    deadline = time.monotonic() + 30
    result = None
    while result is None and time.monotonic() < deadline:
        result = runner.poll()
        time.sleep(0.02)
    assert result is not None and result.ok
    assert result.stdout == "late\n"
    assert runner.poll() is result


def _gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (absent, or a zombie nobody has reaped yet)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


@pytest.mark.skipif(os.name == "nt", reason="process-group kill is the POSIX path")
def test_cancel_terminates_the_child_and_its_children(tmp_path):
    code = textwrap.dedent("""
        import subprocess, sys, time
        grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        sys.stderr.write(f"grandchild {grandchild.pid}\\n"); sys.stderr.flush()
        time.sleep(120)
    """)
    logs: list[str] = []
    runner = SubprocessRunner([sys.executable, "-c", code], cwd=tmp_path, on_log=logs.append,
                              terminate_grace_s=5)
    runner.start()
    deadline = time.monotonic() + 30
    while not logs and time.monotonic() < deadline:
        assert runner.poll() is None
        time.sleep(0.02)
    assert logs and logs[0].startswith("grandchild ")
    grandchild = int(logs[0].split()[1])
    child = runner.pid
    started = time.monotonic()
    runner.cancel()
    result = runner.wait(timeout_s=30)
    assert time.monotonic() - started < 10
    assert result.cancelled and not result.ok
    assert result.returncode != 0
    deadline = time.monotonic() + 10
    while not (_gone(child) and _gone(grandchild)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(child) and _gone(grandchild)
    runner.cancel()  # a second cancel after exit is harmless


def test_wait_timeout_then_cancel(tmp_path):
    runner = SubprocessRunner([sys.executable, "-c", "import time; time.sleep(60)"], cwd=tmp_path)
    runner.start()
    with pytest.raises(TimeoutError, match="still running after 0.3 s"):
        runner.wait(timeout_s=0.3)
    runner.cancel()
    assert runner.wait(timeout_s=30).cancelled


def test_child_environment_finds_cmrlib_and_passes_the_device(tmp_path):
    env = child_environment({"CMR_DEVICE": "cuda"}, base={"PYTHONPATH": "/somewhere/else", "PATH": os.environ["PATH"]})
    search = cmrlib_search_path()
    assert search is not None and (Path(search) / "cmrlib" / "__init__.py").is_file()
    assert env["PYTHONPATH"].split(os.pathsep) == [search, "/somewhere/else"]
    assert env["CMR_DEVICE"] == "cuda" and env["PYTHONUNBUFFERED"] == "1"
    again = child_environment(base=env)
    assert again["PYTHONPATH"] == env["PYTHONPATH"]  # not added twice


def test_python_executable_headless_and_inside_slicer(tmp_path, monkeypatch):
    monkeypatch.delitem(sys.modules, "slicer", raising=False)
    assert python_executable() == sys.executable
    # Inside Slicer: PythonSlicer from PATH, else <slicerHome>/bin/PythonSlicer
    home = tmp_path / "Slicer-5.10"
    (home / "bin").mkdir(parents=True)
    exe = home / "bin" / ("PythonSlicer.exe" if os.name == "nt" else "PythonSlicer")
    fake_slicer = types.SimpleNamespace(app=types.SimpleNamespace(slicerHome=str(home)))
    monkeypatch.setitem(sys.modules, "slicer", fake_slicer)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match="PythonSlicer was not found"):
        python_executable()
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    assert python_executable() == str(exe)
    on_path = tmp_path / "onpath"
    on_path.mkdir()
    (on_path / exe.name).write_text("#!/bin/sh\n")
    (on_path / exe.name).chmod(0o755)
    monkeypatch.setenv("PATH", str(on_path))
    assert Path(python_executable()) == on_path / exe.name


@pytest.mark.parametrize("choice", list(DeviceChoice))
def test_worker_command_carries_the_device_choice(choice, tmp_path):
    """--device on the command line (what `cmr` reads first) and CMR_DEVICE in the environment;
    the `cmr` parser accepts --device after the sub-command's own arguments."""
    from CMRCommonLib.runner import worker_command

    args, env = worker_command(["info", str(tmp_path)], choice)
    assert args[:3] == [python_executable(), "-m", "cmrlib.cli"]
    assert args[3:] == ["info", str(tmp_path), "--device", choice.value]
    assert env == {DEVICE_ENV_VAR: choice.value}
    assert worker_command(["info"], choice.value) == worker_command(["info"], choice)
    from cmrlib.cli import build_parser

    parsed = build_parser().parse_args(["motion", "x.nrrd", "--out", str(tmp_path), "--progress-lines",
                                        "--device", choice.value])
    assert parsed.device == choice.value


def test_runner_runs_the_cmr_cli_with_progress_lines(tmp_path):
    """End to end with the real CLI: `python -m cmrlib.cli info <folder> --json --progress-lines`."""
    from CMRCommonLib.testing import write_synthetic_study

    study = write_synthetic_study(tmp_path / "study")
    phases: list[str] = []
    args = cmrlib_cli_command(["info", str(study.folder), "--json", "--progress-lines"], python=sys.executable)
    assert args[:3] == [sys.executable, "-m", "cmrlib.cli"]
    result = SubprocessRunner(args, cwd=tmp_path, on_progress=lambda p, f, m: phases.append(p)).run(timeout_s=120)
    assert result.ok, result.stderr
    assert "scan" in phases
    scan = json.loads(result.stdout)
    assert sorted(s["kind"] for s in scan["series"]) == ["cine", "irw", "lge_psir"]

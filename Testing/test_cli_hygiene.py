"""What a new user hits first: unwritable outputs, full disks, closed pipes, per-model help,
tracebacks only with --debug, `cmr models verify` with nothing to verify."""
from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cmrlib.cli import main
from conftest import irw_image, tree_snapshot

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def irw_file(tmp_path):
    from cmrlib.io import write_image
    image, _ = irw_image(matrix=32)
    return write_image(image, tmp_path / "in" / "irw.nrrd")


def test_output_under_a_file_is_refused_before_any_work(irw_file, tmp_path, capsys):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    before = tree_snapshot(tmp_path)
    for argv in (["motion", str(irw_file), "--out", str(blocker / "out"), "--method", "none"],
                 ["run", str(irw_file.parent), "--out", str(blocker / "out")],
                 ["demo", "--out", str(blocker)]):
        assert main(argv + ["--quiet"]) == 1
        err = capsys.readouterr().err
        assert err.startswith("cmr: error: ") and err.count("\n") == 1, err
        assert "not a folder" in err or "cannot write" in err
    assert tree_snapshot(tmp_path) == before


def test_a_full_disk_is_one_line_and_leaves_nothing_complete(irw_file, tmp_path, monkeypatch, capsys):
    import cmrlib.atomic
    import cmrlib.motion.outputs as outputs
    real_write = os.write

    def full(fd, data):  # the probe finds the disk full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(cmrlib.atomic.os, "write", full)
    assert main(["motion", str(irw_file), "--out", str(tmp_path / "out"), "--method", "none", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err == f"cmr: error: cannot write to output folder {tmp_path / 'out'}: No space left on device\n"
    assert not (tmp_path / "out").exists()
    monkeypatch.setattr(cmrlib.atomic.os, "write", real_write)

    calls = {"n": 0}
    real_image = outputs.write_image

    def fills_up(image, path):  # the disk fills while the results are written
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real_image(image, path)

    monkeypatch.setattr(outputs, "write_image", fills_up)
    assert main(["motion", str(irw_file), "--out", str(tmp_path / "out"), "--method", "none", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("cmr: error: No space left on device") and "Traceback" not in err
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".*partial*"))


def test_an_existing_result_survives_a_failed_rerun(irw_file, tmp_path, monkeypatch, capsys):
    import cmrlib.motion.outputs as outputs
    out = tmp_path / "out"
    assert main(["motion", str(irw_file), "--out", str(out), "--method", "none", "--quiet"]) == 0
    before = tree_snapshot(out)

    def broken(*a, **k):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(outputs, "write_figures", broken)
    assert main(["motion", str(irw_file), "--out", str(out), "--method", "none", "--quiet"]) == 1
    assert tree_snapshot(out) == before


def test_internal_errors_are_one_line_unless_debug(study_dir, tmp_path, monkeypatch, capsys):
    import cmrlib.io

    def bug(*a, **k):
        raise RuntimeError("something broke")

    monkeypatch.setattr(cmrlib.io, "scan_folder", bug)
    assert main(["info", str(study_dir)]) == 1
    err = capsys.readouterr().err
    assert err == "cmr: internal error: RuntimeError: something broke (run with --debug for the traceback)\n"
    assert main(["info", str(study_dir), "--debug"]) == 1
    assert "Traceback (most recent call last)" in capsys.readouterr().err


def test_closed_pipe_exits_quietly(study_dir):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = f"{sys.executable} -m cmrlib.cli info {study_dir} --json | head -c 10"
    proc = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, env=env, timeout=120)
    assert proc.stdout and "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("verb,option", [("train", "--train-sets"), ("evaluate", "--sets")])
def test_train_and_evaluate_name_show_that_models_options(verb, option, capsys):
    with pytest.raises(SystemExit) as exc:
        main([verb, "moconet", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: cmr {verb} moconet") and option in out
    with pytest.raises(SystemExit):
        main([verb, "--help"])
    assert "moconet" in capsys.readouterr().out


def test_models_verify_fails_when_no_model_is_found(tmp_path, monkeypatch, capsys):
    import cmrlib.models.zoo as zoo
    monkeypatch.setattr(zoo, "bundled_models_dir", lambda: tmp_path / "none")
    monkeypatch.setenv("CMR_MODELS_DIR", str(tmp_path / "empty"))
    assert main(["models", "verify"]) == 1
    assert "no model found" in capsys.readouterr().err


def test_a_model_is_loaded_once_per_device():
    from cmrlib.models import load_model, loaded_models
    a, _ = load_model("moconet-compact", device="cpu")
    b, _ = load_model("moconet-compact", device="cpu")
    assert a is b and "moconet-compact" in loaded_models()

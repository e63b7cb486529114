"""The `cmr` command end to end, in process (console-script parity checked once by subprocess)."""
import json
import subprocess
import sys

import pytest

from cmrlib.capabilities import capabilities
from cmrlib.cli import main
from cmrlib.progress import parse_progress_line
from conftest import tree_snapshot

COMMANDS = ["info", "models", "run", "batch", "demo", "train", "evaluate"] + [c.command for c in capabilities()]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert "usage: cmr" in capsys.readouterr().out


def test_info_lists_series(study_dir, capsys):
    before = tree_snapshot(study_dir)
    assert main(["info", str(study_dir)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("6 series in")
    for text in ("cine", "ShMOLLI", "MOLLI 5(3)3", "T1 map", "LGE PSIR", "LGE magnitude",
                 "TI 100, 180, 260, 1100, 1180, 2100, 3100 ms"):
        assert text in out
    assert main(["info", str(study_dir), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert sorted(s["kind"] for s in data["series"]) == ["cine", "irw", "irw", "lge_magnitude", "lge_psir", "t1map"]
    assert tree_snapshot(study_dir) == before


def test_console_script_info(study_dir):
    exe = [sys.executable, "-m", "cmrlib.cli"]
    proc = subprocess.run([*exe, "info", str(study_dir)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "ShMOLLI" in proc.stdout
    proc = subprocess.run([*exe, "info", str(study_dir / "nothing")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "folder not found" in proc.stderr


def test_info_bad_folder_exit_codes(tmp_path, capsys):
    (tmp_path / "a.txt").write_text("x")
    assert main(["info", str(tmp_path)]) == 1
    assert "no DICOM image found" in capsys.readouterr().err
    assert main([]) == 2


def test_run_writes_outputs_only_outside_input(study_dir, tmp_path, capsys):
    before = tree_snapshot(study_dir)
    assert main(["run", str(study_dir), "--out", str(study_dir / "out")]) == 1
    assert "inside the input folder" in capsys.readouterr().err
    out = tmp_path / "out"
    assert main(["run", str(study_dir), "--out", str(out), "--quiet"]) == 0
    summary = json.loads((out / "run.json").read_text())
    assert len(summary["converted"]) == 6 and all("file" in r for r in summary["converted"])
    assert (out / "series.csv").read_text().count("\n") == 7
    assert sorted(p.suffix for p in (out / "series").iterdir()) == [".nrrd"] * 6
    assert tree_snapshot(study_dir) == before


def test_batch_continues_after_a_bad_study(study_dir, tmp_path, capsys):
    cohort = tmp_path / "cohort"
    cohort.mkdir()
    study_dir.rename(cohort / "good")
    (cohort / "bad").mkdir()
    (cohort / "bad" / "x.txt").write_text("no dicom here")
    assert main(["batch", str(cohort), "--out", str(tmp_path / "res"), "--quiet"]) == 1
    rows = (tmp_path / "res" / "batch.csv").read_text().splitlines()
    assert rows[1].startswith("bad,failed") and rows[2].startswith("good,done")


def test_progress_lines_protocol(study_dir, capsys):
    assert main(["info", str(study_dir), "--progress-lines"]) == 0
    events = [parse_progress_line(l) for l in capsys.readouterr().err.splitlines()]
    events = [e for e in events if e]
    assert events and events[0]["phase"] == "scan" and events[-1]["done"] == events[-1]["total"]


def test_absent_capabilities_say_so(capsys):
    assert main(["train", "no-such-model"]) == 2
    assert "unknown model" in capsys.readouterr().err


def test_parser_builds_without_torch_import():
    """`cmr info` must start fast: building the parser does not import torch."""
    code = "import sys; from cmrlib.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "False", proc.stderr

"""`cmr quality certainty | slice-level | watch` end to end on phantom DICOM, with untrained
networks installed in a temporary model folder (the answers are not checked, the shape and the
refusals are), and the folder watcher on files that arrive while it polls."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cmrlib.cli import main
from conftest import tree_snapshot


@pytest.fixture(scope="module")
def quality_models(tmp_path_factory):
    """Untrained compact certainty and slice-level networks saved as installed models."""
    import torch

    from cmrlib.models import ModelEntry, save_model
    from cmrlib.quality.efficientnetv2 import CertaintyNet, CertaintyNetConfig
    from cmrlib.quality.efficientnetv2 import config_args as cert_args
    from cmrlib.quality.resnet import SliceLevelNet, SliceLevelNetConfig
    from cmrlib.quality.resnet import config_args as level_args
    folder = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    for name, net, args, arch, cal in (
            ("lge-certainty-compact", CertaintyNet(CertaintyNetConfig.preset("compact")),
             cert_args(CertaintyNetConfig.preset("compact")), "lge_certainty_efficientnetv2",
             {"operating_threshold": 0.5}),
            ("slice-level-compact", SliceLevelNet(SliceLevelNetConfig.preset("compact")),
             level_args(SliceLevelNetConfig.preset("compact")), "slice_level_resnet", {})):
        save_model(net.eval(), ModelEntry(name=name, task="quality", architecture=arch, file=f"{name}.safetensors",
                                          sha256="", arch_args=args, calibration=cal), folder)
    return folder


@pytest.fixture
def installed(quality_models, monkeypatch):
    from cmrlib.models import clear_model_cache
    monkeypatch.setenv("CMR_MODELS_DIR", str(quality_models))
    clear_model_cache()
    yield quality_models
    clear_model_cache()


@pytest.fixture(scope="module")
def lge_study(tmp_path_factory) -> Path:
    from cmrlib.phantom import Phantom, PhantomOptions, sample_subject
    from cmrlib.phantom.generate import Study
    from cmrlib.phantom.writer import write_study
    ph = Phantom(sample_subject(21, PhantomOptions(matrix=80, la=False, n_slices=6, n_phases=10)))
    psir, mag = ph.lge()
    series = {"cine": ph.cine(), "lge_psir": psir, "lge_mag": mag}
    return write_study(Study(ph.s, series, ph.study_truth(series)), tmp_path_factory.mktemp("q") / "study",
                       sheets=False)


def _folder(study: Path, word: str) -> Path:
    return next(p for p in sorted((study / "dicom").iterdir()) if word in p.name)


def test_certainty_on_a_study_folder_prefers_psir_and_writes_every_output(installed, lge_study, tmp_path, capsys):
    out = tmp_path / "q"
    assert main(["quality", "certainty", str(lge_study / "dicom"), "--out", str(out), "--quiet"]) == 0
    res = json.loads((out / "result.json").read_text())
    assert res["series"] == "LGE PSIR SAX" and res["n_slices"] == 6 and len(res["slices"]) == 6
    assert [s["index"] for s in res["slices"]] == list(range(6))
    for s in res["slices"]:
        assert s["class"] in ("too basal", "LV", "too apical") and abs(sum(s["probabilities"].values()) - 1) < 1e-3
        assert (s["p_low_certainty"] is None) == (s["class"] != "LV")
        assert s["flag"] is None or s["flag"] == (s["p_low_certainty"] >= res["threshold"])
    assert res["threshold"] == 0.5 and res["seconds"] > 0 and res["model"]["name"] == "lge-certainty-compact"
    assert [m["name"] for m in res["models"]] == ["slice-level-compact", "lge-certainty-compact"]
    assert (out / "quality.png").is_file() and len((out / "slices.csv").read_text().splitlines()) == 7
    printed = capsys.readouterr().out
    assert res["sentence"] in printed and "slice 6:" in printed


def test_slice_level_only_and_a_threshold(installed, lge_study, tmp_path):
    out = tmp_path / "s"
    assert main(["quality", "slice-level", str(_folder(lge_study, "MAG")), "--out", str(out), "--quiet"]) == 0
    res = json.loads((out / "result.json").read_text())
    assert res["kind"] == "lge_magnitude" and res["tasks"] == ["slice-level"]
    assert all("class" in s and s["p_low_certainty"] is None for s in res["slices"])
    out2 = tmp_path / "t"
    assert main(["quality", "certainty", str(_folder(lge_study, "PSIR")), "--out", str(out2), "--threshold", "0.01",
                 "--all-slices", "--quiet"]) == 0
    res2 = json.loads((out2 / "result.json").read_text())
    assert res2["threshold"] == 0.01 and all(s["flag"] for s in res2["slices"])  # every slice assessed and flagged


def test_nrrd_input_is_classified_with_a_note(installed, lge_study, tmp_path):
    from cmrlib.io import load_series, scan_folder, write_image
    img = load_series(scan_folder(_folder(lge_study, "PSIR")).series[0])
    img.meta = {}
    write_image(img, tmp_path / "lge.nrrd")
    out = tmp_path / "n"
    assert main(["quality", "certainty", str(tmp_path / "lge.nrrd"), "--out", str(out), "--quiet"]) == 0
    assert any("not recognised as LGE" in n for n in json.loads((out / "result.json").read_text())["notes"])


@pytest.mark.parametrize("make, message", [
    (lambda study, tmp: _folder(study, "cine"), "is a cine series"),
    (lambda study, tmp: (tmp / "empty").mkdir() or tmp / "empty", "no DICOM image found"),
    (lambda study, tmp: tmp / "missing", "no such file or folder"),
])
def test_refusals_are_one_line_and_write_nothing(installed, lge_study, tmp_path, capsys, make, message):
    src = make(lge_study, tmp_path)
    before = tree_snapshot(lge_study)
    out = tmp_path / "out"
    assert main(["quality", "certainty", str(src), "--out", str(out), "--quiet"]) != 0
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists() and tree_snapshot(lge_study) == before


def test_cine_forced_is_classified_with_a_warning(installed, lge_study, tmp_path):
    # a cine has several frames per slice: refused as multi-frame even when forced
    assert main(["quality", "slice-level", str(_folder(lge_study, "cine")), "--out", str(tmp_path / "f"),
                 "--force", "--quiet"]) != 0
    assert not (tmp_path / "f").exists()


def test_without_installed_weights_the_message_says_how_to_train(lge_study, tmp_path, monkeypatch, capsys):
    from cmrlib.models import clear_model_cache
    monkeypatch.setenv("CMR_MODELS_DIR", str(tmp_path / "none"))
    monkeypatch.setattr("cmrlib.models.zoo.bundled_models_dir", lambda: tmp_path / "none")
    clear_model_cache()
    assert main(["quality", "slice-level", str(_folder(lge_study, "PSIR")), "--out", str(tmp_path / "o"),
                 "--quiet"]) != 0
    assert "cmr train slice-level" in capsys.readouterr().err
    clear_model_cache()


# ---- watch -----------------------------------------------------------------------------------------
class _Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def test_watcher_waits_for_complete_series_and_classifies_each_once(installed, lge_study, tmp_path):
    from cmrlib.quality.watch import SeriesWatcher
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    clock = _Clock()
    w = SeriesWatcher(inbox, settle_s=2.0, clock=clock, out=tmp_path / "results")
    assert w.poll() == []  # empty folder: nothing, no error
    lge_files = sorted(_folder(lge_study, "PSIR").iterdir())
    for f in lge_files[:3]:
        shutil.copy(f, inbox / f.name)
    half = inbox / lge_files[3].name
    half.write_bytes(lge_files[3].read_bytes()[:300])  # a file still being written
    assert w.poll() == []
    clock.t += 3.0
    half.write_bytes(lge_files[3].read_bytes()[:600])  # still growing
    assert w.poll() == []  # 3 files stable, but a file of unknown series is in flight in the same folder
    for f in lge_files[3:]:
        shutil.copy(f, inbox / f.name)
    clock.t += 1.0
    assert w.poll() == []  # the last files have not settled
    clock.t += 2.5
    verdicts = w.poll()
    assert len(verdicts) == 1 and verdicts[0].n_files == 6 and verdicts[0].series == "LGE PSIR SAX"
    assert Path(verdicts[0].out, "result.json").is_file() and verdicts[0].sentence in verdicts[0].line()
    clock.t += 3.0
    assert w.poll() == []  # classified once
    cine = _folder(lge_study, "cine")
    (inbox / "cine").mkdir()
    for f in sorted(cine.iterdir()):
        shutil.copy(f, inbox / "cine" / f.name)
    assert w.poll() == []  # first seen now
    clock.t += 3.0
    skipped = w.poll()
    assert len(skipped) == 1 and "cine" in skipped[0].skipped and "skipped" in skipped[0].line()


def test_watch_command_logs_a_verdict_with_its_latency(installed, lge_study, tmp_path, capsys):
    inbox = tmp_path / "inbox"
    shutil.copytree(_folder(lge_study, "PSIR"), inbox)
    log = tmp_path / "verdicts.jsonl"
    assert main(["quality", "watch", str(inbox), "--settle", "0.2", "--interval", "0.1", "--max-verdicts", "1",
                 "--max-seconds", "60", "--log", str(log), "--quiet"]) == 0
    entry = json.loads(log.read_text().splitlines()[0])
    assert entry["series"] == "LGE PSIR SAX" and entry["n_files"] == 6 and 0 < entry["latency_s"] < 60
    assert [m["name"] for m in entry["models"]] == ["slice-level-compact", "lge-certainty-compact"]
    printed = capsys.readouterr().out
    assert "LGE PSIR SAX" in printed and "lge-certainty-compact 1.0:" in printed


def test_watch_refuses_a_missing_folder(tmp_path, capsys):
    assert main(["quality", "watch", str(tmp_path / "nope"), "--max-seconds", "1"]) != 0
    assert "is not a folder" in capsys.readouterr().err

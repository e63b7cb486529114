"""`cmr train moconet` end to end on a handful of phantom sets: trains, checkpoints, resumes with a
new schedule, and writes weights + manifest that the model zoo loads and verifies."""
import json

import pytest
import numpy as np
import torch

from cmrlib.cli import main


@pytest.mark.slow
def test_train_resume_and_load(tmp_path, capsys, monkeypatch):
    cache, out = tmp_path / "cache", tmp_path / "models"
    common = ["train", "--quiet", "moconet", "--preset", "compact", "--train-sets", "4", "--val-sets", "2", "--batch", "2",
              "--still-fraction", "0.5", "--cache", str(cache), "--out", str(out), "--name", "moconet-tiny"]
    assert main(common + ["--epochs", "1", "--lr", "3e-4"]) == 0
    state = torch.load(cache / "moconet-tiny.ckpt.pt", weights_only=False)
    assert state["epoch"] == 1 and len(state["history"]) == 1
    still_counts = next(cache.glob("still_*_n.npy"))  # train-sets × still-fraction motion-free sets
    assert len(np.load(still_counts)) == 2 and not np.load(str(still_counts).replace("_n.npy", "_dvf.npy")).any()
    first_val = state["history"][0]["val_epe_px"]
    assert 0 < first_val < 10
    # resuming continues at epoch 2 with the lr and patience of this command, not the saved ones
    assert main(common + ["--epochs", "2", "--lr", "1e-4", "--plateau-patience", "7", "--resume"]) == 0
    err = capsys.readouterr().err
    assert "resumed from" in err
    state = torch.load(cache / "moconet-tiny.ckpt.pt", weights_only=False)
    assert state["epoch"] == 2 and state["history"][1]["lr"] == pytest.approx(1e-4)
    assert state["scheduler"]["patience"] == 7
    manifest = json.loads((out / "manifest.json").read_text())
    entry = next(e for e in manifest["models"] if e["name"] == "moconet-tiny")
    assert entry["phantom_trained"] and entry["metrics"]["epochs"] == 2
    # the exported weights are the best validated epoch's
    vals = [h["val_epe_px"] for h in state["history"]]
    assert entry["metrics"]["selected_epoch"] == 1 + vals.index(min(vals))
    best = torch.load(cache / "moconet-tiny.best.pt", weights_only=False)
    assert best["epoch"] == entry["metrics"]["selected_epoch"]
    # the manifest tells how the weights were made: both runs, in order, with their schedules
    first, second = entry["train_command"].split(" && ")
    assert "--lr 0.0003" in first and "--resume" not in first
    assert "--lr 0.0001" in second and "--plateau-patience 7" in second and second.endswith("--resume")
    from cmrlib.models import load_model
    monkeypatch.setenv("CMR_MODELS_DIR", str(out))
    model, loaded = load_model("moconet-tiny", device="cpu")
    assert loaded.sha256 == entry["sha256"] and model.config.frame_slots == 11
    for key, value in best["model"].items():
        assert torch.equal(model.state_dict()[key].cpu(), value), key


@pytest.mark.slow
def test_train_on_a_sites_own_irw_series_and_fine_tune(tmp_path, capsys, monkeypatch):
    """--data: a folder of IRW sequence files (as `cmr run` writes them) deformed by the phantom's
    synthetic motion; --init: fine-tuning starts from an installed model's weights."""
    from cmrlib.io import write_image
    from cmrlib.motion.data import user_irw_series
    from cmrlib.phantom import Phantom, PhantomOptions, sample_subject
    data = tmp_path / "irw"
    data.mkdir()
    for k, scheme in enumerate(("ShMOLLI", "MOLLI 5(3)3")):
        ph = Phantom(sample_subject(50 + k, PhantomOptions(matrix=96, la=False, motion=0.0)))
        write_image(ph.irw("mid", "native", scheme, motion_severity=0.0).image, data / f"case{k}.nrrd")
    (data / "notes.txt").write_text("not an image")
    series = user_irw_series(data)
    assert [s[2] for s in series] == ["case0.nrrd", "case1.nrrd"] and series[0][0].shape[0] == 7
    out = tmp_path / "models"
    common = ["train", "--quiet", "moconet", "--preset", "compact", "--train-sets", "4", "--val-sets", "2",
              "--batch", "2", "--epochs", "1", "--still-fraction", "0.5", "--cache", str(tmp_path / "cache"),
              "--data", str(data), "--out", str(out)]
    assert main(common + ["--name", "moconet-site"]) == 0
    entry = json.loads((out / "manifest.json").read_text())["models"][0]
    assert not entry["phantom_trained"] and entry["trained_on"].startswith("user data: 1 IRW series")
    assert "--data" in entry["train_command"]
    monkeypatch.setenv("CMR_MODELS_DIR", str(out))
    assert main(common + ["--name", "moconet-site2", "--init", "moconet-site"]) == 0
    e2 = next(e for e in json.loads((out / "manifest.json").read_text())["models"] if e["name"] == "moconet-site2")
    assert e2["trained_on"].endswith("fine-tuned from moconet-site")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["train", "--quiet", "moconet", "--data", str(empty), "--out", str(tmp_path / "m2")]) == 1
    assert "no IRW series" in capsys.readouterr().err and not (tmp_path / "m2").exists()

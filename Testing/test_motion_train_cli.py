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

"""`cmr train la-detector` / `cmr train la-quality` (three variants, phantom and --data), for real on
tiny budgets: weights saved with a manifest entry that reproduces them, and bad data refused."""
from __future__ import annotations

import json

import numpy as np
import pytest

from cmrlib.cli import main
from cmrlib.models.zoo import read_manifest

from test_laquality_model import _write_user_folder

TINY = ["--epochs", "1", "--steps", "1", "--batch", "4", "--train-subjects", "2", "--val-subjects", "1"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("la-cache")


def test_train_detector_saves_a_calibrated_model(tmp_path, cache):
    out = tmp_path / "models"
    assert main(["train", "la-detector", "--out", str(out), "--cache", str(cache), "--quiet", *TINY]) == 0
    [entry] = read_manifest(out)
    assert entry.name == "la-detector-compact" and entry.architecture == "la_detector_unet"
    assert 0.0 < entry.calibration["slice_threshold"] < 1.0
    assert entry.train_command.startswith("cmr train la-detector --preset compact")
    assert entry.phantom_trained and entry.metrics["epochs"] == 1


@pytest.mark.parametrize("variant", ["baseline", "multitask", "contrastive"])
def test_train_quality_variants(tmp_path, cache, variant):
    out = tmp_path / "models"
    extra = ["--pretrain-epochs", "1"] if variant == "contrastive" else []
    assert main(["train", "la-quality", "--variant", variant, "--out", str(out), "--cache", str(cache), "--quiet",
                 *TINY, *extra]) == 0
    [entry] = read_manifest(out)
    assert entry.arch_args["variant"] == variant and entry.architecture == "la_quality_resnet34"
    assert f"--variant {variant}" in entry.train_command
    assert entry.metrics["simulated_raters"]["noise_sd_points"] > 0
    if variant == "contrastive":
        assert entry.metrics["pretrain_minutes"] is not None
        # the frozen encoder's weights are those of pre-training (the checkpoint of the supcon run)
        import torch
        from safetensors.torch import load_file
        pre = torch.load(cache / "la-quality-compact-supcon.ckpt.pt", weights_only=False)["model"]
        final = load_file(str(entry.path))
        key = "encoder.conv1.weight"
        assert torch.equal(pre[key], final[key])


def test_train_quality_on_site_data(tmp_path):
    _write_user_folder(tmp_path / "site", n=4)
    out = tmp_path / "models"
    assert main(["train", "la-quality", "--variant", "multitask", "--data", str(tmp_path / "site"), "--out", str(out),
                 "--cache", str(tmp_path / "c"), "--quiet", "--epochs", "1", "--steps", "1", "--batch", "4"]) == 0
    [entry] = read_manifest(out)
    assert not entry.phantom_trained and "user data: 4 LA LGE volumes" in entry.trained_on
    assert main(["train", "la-detector", "--data", str(tmp_path / "site"), "--out", str(out), "--cache",
                 str(tmp_path / "c"), "--quiet", "--epochs", "1", "--steps", "1", "--batch", "4"]) == 0


def test_bad_training_data_is_refused(tmp_path, capsys):
    _write_user_folder(tmp_path / "site", n=2, with_masks=False)
    out = tmp_path / "models"
    rc = main(["train", "la-detector", "--data", str(tmp_path / "site"), "--out", str(out), "--quiet"])
    assert rc != 0 and "mask" in capsys.readouterr().err
    assert not out.exists()

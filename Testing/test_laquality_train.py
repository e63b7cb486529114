"""`cmr train la-detector` / `cmr train la-quality` (three variants, phantom and --data), for real on
tiny budgets: weights saved with a manifest entry that reproduces them, and bad data refused."""
from __future__ import annotations

import json

import numpy as np
import pytest

from cmrlib.cli import main
from cmrlib.laquality.networks import LABELS
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
    # each label's decision threshold, fitted on the validation scans, travels with the model
    fitted = entry.calibration["decision_thresholds"]
    assert set(fitted) == set(LABELS) and all(0.05 <= t <= 0.95 for t in fitted.values())
    # the whole network is counted; the contrastive variant trains only its heads on the frozen encoder
    m = entry.metrics
    assert m["encoder_parameters"] > 0 and m["parameters"] > m["encoder_parameters"]
    assert (m["trainable_parameters"] < m["parameters"]) == (variant == "contrastive")
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


def test_decision_thresholds_are_fitted_for_the_best_validation_f1():
    """A head that ranks the scans right but gives every probability below 0.5 calls every scan
    non-diagnostic at 0.5 (F1 0); the fitted threshold separates them."""
    from cmrlib.laquality.train import decision_thresholds, fit_decision_thresholds, scan_metrics
    owner = np.repeat(np.arange(6), 3)
    diagnostic = np.repeat([1, 0, 1, 0, 0, 0], 3).astype(np.float32)
    y = np.repeat(diagnostic[:, None], 4, axis=1)
    p = np.where(y > 0, 0.3, 0.1).astype(np.float32)
    p[1, :] = 0.05  # one slice of a diagnostic scan disagrees: the mode still says diagnostic
    assert not scan_metrics(p, y, owner)["f1"]  # 0: no scan called diagnostic
    fitted = fit_decision_thresholds(p, y, owner)
    assert all(0.1 < t <= 0.3 for t in fitted.values())
    assert scan_metrics(p, y, owner, decision_thresholds({"decision_thresholds": fitted}))["f1"] == 1.0
    # no diagnostic validation scan: nothing to fit, the default stays
    assert fit_decision_thresholds(p, np.zeros_like(y), owner) == {k: 0.5 for k in fitted}
    assert list(decision_thresholds({})) == [0.5] * 4

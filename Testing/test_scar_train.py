"""`cmr train scar`: the U-Net presets, training samples (phantom and a user's --data folder),
and tiny training runs that write loadable weights with the exact command, used by `cmr scar`."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cmrlib.cli import main
from cmrlib.errors import InputError
from cmrlib.models.unet2d import n_parameters
from cmrlib.scar.data import classes_of, phantom_stack, training_sample, user_stacks
from cmrlib.scar.unet import CLASSES, ScarUNetConfig, build

TINY = ["--epochs", "1", "--steps", "2", "--batch", "2", "--scar-offsets", "0,1", "--quiet"]
pytestmark = pytest.mark.usefixtures("fresh_model_cache")


@pytest.fixture(scope="module")
def stack():
    return phantom_stack(700_001, scar="ischemic")


@pytest.mark.parametrize("preset, channels, params_m", [
    ("fusion-paper", 2, 1.27), ("lge-paper", 1, 2.95), ("fusion-compact", 2, 0.32), ("lge-compact", 1, 0.72)])
def test_presets_have_the_cards_layers(preset, channels, params_m):
    cfg = ScarUNetConfig.preset(preset)
    net = build(cfg).eval()
    assert cfg.in_channels == channels and len(cfg.filters) == 4
    assert n_parameters(net) / 1e6 == pytest.approx(params_m, abs=0.01)
    with torch.no_grad():
        y = net(torch.zeros(1, channels, cfg.size, cfg.size))
    assert y.shape == (1, len(CLASSES), cfg.size, cfg.size)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules()) == 14  # 7 double convolutions
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in net.modules()) == 1  # shared, used at 3 levels


def test_training_samples_keep_the_pair_aligned(stack):
    cfg = ScarUNetConfig.preset("fusion-compact")
    k = int(np.argmax([(stack.labels[i] == 3).sum() for i in range(stack.labels.shape[0])]))
    x, y = training_sample(stack, k, cfg, np.random.default_rng(0), augment=False)
    assert x.shape == (2, 128, 128) and y.shape == (128, 128) and 0.0 <= x.min() and x.max() <= 1.0
    assert set(np.unique(y)) == {0, 1, 2, 3}
    # without augmentation the crops are centred on each image's LV: the blood pool is at the centre
    rr, cc = np.nonzero(y == 2)
    assert abs(rr.mean() - 63.5) < 3 and abs(cc.mean() - 63.5) < 3
    rng = np.random.default_rng(1)
    for _ in range(5):
        xa, ya = training_sample(stack, k, cfg, rng)
        assert xa.shape == x.shape and ya.shape == y.shape and np.isfinite(xa).all()
    lge_only = training_sample(stack, k, ScarUNetConfig.preset("lge-compact"), rng)[0]
    assert lge_only.shape == (1, 128, 128)
    assert set(np.unique(classes_of(np.array([0, 1, 2, 3, 4, 7])))) == {0, 1, 2, 3}


def _user_folder(folder, stack):
    from cmrlib.io import write_image
    folder.mkdir()
    m = stack.truth_mask()
    write_image(stack.lge, folder / "case1_lge.nrrd")
    write_image(m, folder / "case1_labels.nrrd")
    matched = np.asarray(stack.cine.array)[1]  # the frame at the LGE trigger time, [slice, row, col]
    write_image(stack.lge.with_array(matched, is_sequence=False), folder / "case1_cine.nrrd")
    write_image(stack.lge, folder / "case2_lge.nii.gz")
    write_image(m, folder / "case2_labels.nii.gz")
    return folder


def test_user_stacks_format(tmp_path, stack):
    folder = _user_folder(tmp_path / "stacks", stack)
    got = user_stacks(folder)
    assert [s.meta["name"] for s in got] == ["case1", "case2"]
    assert got[0].cine is not None and got[1].cine is None and got[0].scar == "scar"
    assert (got[0].labels == 3).sum() == (stack.labels == 3).sum()
    (folder / "case3_lge.nrrd").write_bytes((folder / "case1_lge.nrrd").read_bytes())
    with pytest.raises(InputError, match="no case3_labels"):
        user_stacks(folder)
    with pytest.raises(InputError, match="not a folder"):
        user_stacks(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no NAME_lge"):
        user_stacks(tmp_path / "empty")


def _entry(folder, name):
    return next(m for m in json.loads((folder / "manifest.json").read_text())["models"] if m["name"] == name)


def test_train_on_user_stacks_then_quantify_with_the_weights(tmp_path, stack, monkeypatch, capsys):
    folder = _user_folder(tmp_path / "stacks", stack)
    out = tmp_path / "models"
    # the fusion network needs a cine for every stack
    assert main(["train", "scar", "--data", str(folder), "--cache", str(tmp_path / "c0"), "--out", str(out),
                 *TINY]) == 1
    assert "needs NAME_cine" in capsys.readouterr().err
    assert main(["train", "scar", "--preset", "lge-compact", "--data", str(folder), "--cache", str(tmp_path / "c1"),
                 "--out", str(out), "--name", "scar-tiny", "--dice-weight", "0.2", *TINY]) == 0
    e = _entry(out, "scar-tiny")
    assert e["architecture"] == "scar_unet" and e["arch_args"]["inputs"] == "lge"
    assert not e["phantom_trained"] and "user data" in e["trained_on"]
    assert e["train_command"].startswith("cmr train scar ") and "--dice-weight 0.2" in e["train_command"]
    assert e["metrics"]["published_parameters_m"] == 1.3 and e["metrics"]["validation"]["val_myo_dice"] is not None
    assert e["calibration"]["postprocess_dilate_px"] in (0, 1, 2)
    assert set(e["calibration"]["validation_volume_ratio_by_dilate_px"]) == {"0", "1", "2"}
    assert e["calibration"]["scar_logit_offset"] in [float(x) for x in e["calibration"]["validation_scar_slope_by_offset"]]
    errs = e["calibration"]["validation_scar_abs_error_by_gate_sd"]
    if errs:  # the gate with the smallest validation error is the one kept (None: no gate)
        gate = e["calibration"]["scar_gate_sd"]
        assert errs["none" if gate is None else f"{gate:g}"] == min(errs.values()) and "none" in errs
    # refit the decisions of the installed model: same weights, the command appended, nothing else changed
    monkeypatch.setenv("CMR_MODELS_DIR", str(out))
    out2 = tmp_path / "models2"
    assert main(["train", "scar", "--calibrate-only", "--init", "scar-tiny", "--data", str(folder), "--out", str(out2),
                 "--scar-offsets", "0,1", "--quiet"]) == 0
    e2 = _entry(out2, "scar-tiny")
    assert e2["sha256"] == e["sha256"] and e2["train_command"].startswith(e["train_command"] + " && ")
    assert set(e2["calibration"]["validation_scar_slope_by_offset"]) <= {"0", "1"}
    assert "--calibrate-only" in e2["train_command"] and e2["calibration"]["validation_stacks"] >= 1
    assert main(["train", "scar", "--calibrate-only", "--out", str(tmp_path / "models3"), "--quiet"]) == 1
    assert "needs --init" in capsys.readouterr().err and not (tmp_path / "models3").exists()
    monkeypatch.setenv("CMR_MODELS_DIR", str(out))
    res_dir = tmp_path / "scar"
    assert main(["scar", "--lge", str(folder / "case1_lge.nrrd"), "--model", "scar-tiny", "--out", str(res_dir),
                 "--quiet"]) == 0
    res = json.loads((res_dir / "result.json").read_text())
    assert res["method"] == "lge-only" and res["model"]["name"] == "scar-tiny" and res["slices_total"] == 10


def test_train_on_phantom_stacks(tmp_path):
    out = tmp_path / "models"
    assert main(["train", "scar", "--train-subjects", "2", "--val-subjects", "1", "--cache", str(tmp_path / "cache"),
                 "--out", str(out), "--name", "scar-fusion-tiny", *TINY]) == 0
    e = _entry(out, "scar-fusion-tiny")
    assert e["phantom_trained"] and e["arch_args"]["inputs"] == "fusion" and e["input"]["grid"] == [128, 128]
    assert (tmp_path / "cache" / "train_2.pkl").is_file()
    assert main(["train", "scar", "--train-subjects", "2", "--val-subjects", "1", "--cache", str(tmp_path / "cache"),
                 "--out", str(out), "--name", "scar-fusion-tiny", "--resume", "--epochs", "2", "--steps", "1",
                 "--batch", "2", "--quiet"]) == 0
    assert _entry(out, "scar-fusion-tiny")["metrics"]["epochs"] == 2

"""`cmr train dt1`: training pairs (phantom and a user's --data folder), the switchable pairing /
augmentation, and tiny training runs that write loadable weights with the exact command."""
from __future__ import annotations

import json

import numpy as np
import pytest

from cmrlib.cli import main
from cmrlib.errors import InputError
from cmrlib.stress.data import Augmentation, MapPair, phantom_pairs, training_sample, user_pairs

TINY = ["--epochs", "1", "--steps", "2", "--batch", "2", "--quiet"]


pytestmark = pytest.mark.usefixtures("fresh_model_cache")


@pytest.fixture(scope="module")
def pair() -> MapPair:
    return phantom_pairs([7], positions=("mid",))[0]


def test_phantom_pairs_carry_each_maps_own_truth(pair):
    assert pair.rest.shape == pair.stress.shape == pair.rest_labels.shape == pair.stress_aha.shape
    assert 600 < np.median(pair.rest[pair.rest_labels == 1]) < 1600  # T1 maps in ms
    mis = pair.truth["misregistration"]
    assert len(mis) == 4 and any(abs(v) > 0 for v in mis)
    assert pair.truth["heart_rate_bpm"]["stress"] > pair.truth["heart_rate_bpm"]["rest"]
    # misregistered: the stress map's own myocardium is not where the rest map's is
    assert (pair.rest_labels == 1).sum() > 0 and not np.array_equal(pair.rest_labels, pair.stress_labels)


def test_training_sample_switches(pair):
    rng = np.random.default_rng(0)
    regular = Augmentation(permuted=False, rotate_flip=False, synthetic_dvf=False, random_contrast=0.0)
    x, mm, fm = training_sample(pair, 64, 2.5, rng, regular)
    assert x.shape == (2, 64, 64) and x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.5
    assert mm.shape == fm.shape == (64, 64) and mm.any() and fm.any()
    # regular pairing is always stress (moving) → rest (fixed); permuted also draws rest→rest etc.
    moving_ids = set()
    for _ in range(40):
        p = Augmentation(permuted=True, rotate_flip=False, synthetic_dvf=False, random_contrast=0.0)
        xp, m2, f2 = training_sample(pair, 64, 2.5, rng, p)
        moving_ids.add(bool(np.array_equal(m2, f2)))
    assert moving_ids == {True, False}  # identical pairs (rest→rest / stress→stress) and moved ones
    assert Augmentation().label() == "rot+flip+DVF, permuted pairing"
    assert regular.label() == "none, regular pairing"


def _user_folder(folder, pair, with_labels=True):
    from cmrlib.image import Image
    from cmrlib.io import write_image
    folder.mkdir()
    sp = (*pair.spacing, 8.0)
    write_image(Image(pair.rest[None], sp), folder / "case1_rest.nrrd")
    write_image(Image(pair.stress[None], sp), folder / "case1_stress.nrrd")
    if with_labels:
        write_image(Image(pair.rest_labels[None].astype(np.uint8), sp), folder / "case1_rest_labels.nrrd")
        write_image(Image(pair.stress_labels[None].astype(np.uint8), sp), folder / "case1_stress_labels.nrrd")
    write_image(Image(pair.rest[None], sp), folder / "case2_rest.nii.gz")
    write_image(Image(pair.stress[None], sp), folder / "case2_stress.nii.gz")
    return folder


def test_user_pairs_format(tmp_path, pair):
    folder = _user_folder(tmp_path / "pairs", pair)
    pairs = user_pairs(folder)
    assert [p.name for p in pairs] == ["case1-0", "case2-0"]
    np.testing.assert_allclose(pairs[0].stress, pair.stress)
    assert (pairs[0].rest_labels == 1).sum() == (pair.rest_labels == 1).sum() and pairs[1].rest_labels is None
    (folder / "case3_rest.nrrd").write_bytes((folder / "case1_rest.nrrd").read_bytes())
    with pytest.raises(InputError, match="no case3_stress"):
        user_pairs(folder)
    with pytest.raises(InputError, match="not a folder"):
        user_pairs(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no NAME_rest"):
        user_pairs(tmp_path / "empty")


def _entry(folder, name):
    doc = json.loads((folder / "manifest.json").read_text())
    return next(m for m in doc["models"] if m["name"] == name)


def test_train_on_user_pairs_and_register_with_the_weights(tmp_path, pair, monkeypatch):
    folder = _user_folder(tmp_path / "pairs", pair)
    out = tmp_path / "models"
    assert main(["train", "dt1", "--backbone", "unet", "--data", str(folder), "--pairing", "regular",
                 "--no-synthetic-dvf", "--cache", str(tmp_path / "cache"), "--out", str(out), "--name", "dt1-tiny",
                 *TINY]) == 0
    e = _entry(out, "dt1-tiny")
    assert e["architecture"] == "dt1-registration" and e["arch_args"]["backbone"] == "unet"
    assert not e["phantom_trained"] and "user data" in e["trained_on"]
    cmd = e["train_command"]
    assert cmd.startswith("cmr train dt1 ") and "--pairing regular" in cmd and "--no-synthetic-dvf" in cmd
    assert e["metrics"]["augmentation"] == "rot+flip, regular pairing"
    assert e["metrics"]["validation"]["dice_before"] is not None
    monkeypatch.setenv("CMR_MODELS_DIR", str(out))
    assert main(["stress", "--rest", str(folder / "case1_rest.nrrd"), "--stress", str(folder / "case1_stress.nrrd"),
                 "--mask", str(folder / "case1_rest_labels.nrrd"), "--method", "unet", "--model", "dt1-tiny",
                 "--out", str(tmp_path / "dt1"), "--quiet"]) == 0
    res = json.loads((tmp_path / "dt1" / "result.json").read_text())
    assert res["model"] == "dt1-tiny" and res["method"] == "unet" and len(res["dt1_slice_percent"]) == 1


def test_train_on_phantom_pairs(tmp_path):
    out = tmp_path / "models"
    assert main(["train", "dt1", "--preset", "compact", "--train-subjects", "1", "--val-subjects", "1",
                 "--cache", str(tmp_path / "cache"), "--out", str(out), "--name", "dt1-swin-tiny", *TINY]) == 0
    e = _entry(out, "dt1-swin-tiny")
    assert e["phantom_trained"] and e["arch_args"]["backbone"] == "swin" and e["input"]["grid"] == [128, 128]
    assert e["metrics"]["validation"]["pairs"] == 3
    assert (tmp_path / "cache" / "train_1_rigid.pkl").is_file()  # generated, pre-aligned pairs cached for reruns
    assert e["arch_args"]["prealign"] == "rigid" and e["metrics"]["validation"]["dice_network_input"] is not None

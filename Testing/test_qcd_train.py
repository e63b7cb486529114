"""`cmr train qcd`: a tiny run on phantom images and on a user's --data folder writes loadable
weights with the QCD regressors (fitted on the validation split) and the exact command in the
manifest; bad options are refused with one line."""
from __future__ import annotations

import json

import numpy as np
import pytest

from cmrlib.cli import main

TINY = ["--epochs", "1", "--steps", "2", "--batch", "2", "--quiet"]


pytestmark = pytest.mark.usefixtures("fresh_model_cache")


def _entry(folder, name):
    doc = json.loads((folder / "manifest.json").read_text())
    return next(m for m in doc["models"] if m["name"] == name)


def test_train_on_phantom_images_stores_regressors_and_command(tmp_path, monkeypatch):
    out = tmp_path / "models"
    assert main(["train", "qcd", "--train-subjects", "2", "--val-subjects", "2", "--contrasts", "lge_psir,vne",
                 "--cache", str(tmp_path / "cache"), "--out", str(out), "--name", "qcd-tiny", *TINY]) == 0
    e = _entry(out, "qcd-tiny")
    coef = np.array(e["calibration"]["qcd_regressors"]["coefficients"])
    assert coef.shape == (12, 12) and np.isfinite(coef).all()
    assert e["calibration"]["qcd_regressors"]["fitted_on"].startswith("validation")
    assert e["train_command"].startswith("cmr train qcd ") and "--contrasts lge_psir,vne" in e["train_command"]
    assert e["phantom_trained"] and e["architecture"] == "qcd_ensemble"
    # the weights load and segment through the CLI
    monkeypatch.setenv("CMR_MODELS_DIR", str(out))
    from cmrlib.image import Image
    from cmrlib.io import write_image
    img = write_image(Image(np.random.default_rng(0).random((2, 40, 40)).astype(np.float32), (2.0, 2.0, 8.0),
                            (0, 0, 0), np.eye(3)), tmp_path / "x.nrrd")
    assert main(["segment", str(img), "--out", str(tmp_path / "seg"), "--model", "qcd-tiny", "--quiet"]) == 0
    assert json.loads((tmp_path / "seg" / "result.json").read_text())["model"]["name"] == "qcd-tiny"


def _user_folder(folder, n_stacks=3):
    from cmrlib.io import write_image
    from cmrlib.phantom import Phantom, PhantomOptions, sample_subject
    folder.mkdir()
    for i in range(n_stacks):
        s = sample_subject(40 + i, PhantomOptions(matrix=48, la=False, n_slices=14))
        psir, _ = Phantom(s).lge()
        write_image(psir.image, folder / f"case{i}.nrrd")
        write_image(psir.labels, folder / f"case{i}.labels.nrrd")
    return folder


def test_train_on_a_user_folder(tmp_path):
    data = _user_folder(tmp_path / "data")
    out = tmp_path / "models"
    assert main(["train", "qcd", "--data", str(data), "--cache", str(tmp_path / "cache"), "--out", str(out),
                 "--name", "qcd-site", *TINY]) == 0
    e = _entry(out, "qcd-site")
    assert not e["phantom_trained"] and "user data" in e["trained_on"] and "validation" in e["trained_on"]


def test_bad_training_options_are_refused(tmp_path, capsys):
    small = _user_folder(tmp_path / "small", n_stacks=1)
    for argv in (["--contrasts", "nonsense"], ["--data", str(small)], ["--contrasts", "lge_psir", "--val-subjects", "2"],
                 ["--data", str(small), "--contrasts", "vne"], ["--data", str(tmp_path / "missing")]):
        capsys.readouterr()
        assert main(["train", "qcd", *argv, "--out", str(tmp_path / "m"), "--cache", str(tmp_path / "c"),
                     *TINY]) in (1, 2)
        err = capsys.readouterr().err.strip()
        assert err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "m").exists()

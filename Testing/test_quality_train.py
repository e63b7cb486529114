"""`cmr train lge-certainty | slice-level` for real on a few phantom stacks or a site's own
labelled slices (one short epoch): the manifest entry (simulated raters, operating threshold,
parameters beside the published count, the reproducing command), the trained model used by `cmr
quality`, and `cmr evaluate`'s refusal without weights."""
from __future__ import annotations

import json

import numpy as np

from cmrlib import Image
from cmrlib.cli import main

TINY = ["--epochs", "1", "--steps", "2", "--batch", "4", "--quiet"]


def _entry(folder, name):
    return next(e for e in json.loads((folder / "manifest.json").read_text())["models"] if e["name"] == name)


def test_certainty_on_phantom_stacks_records_raters_and_the_operating_point(tmp_path, fresh_model_cache):
    out = tmp_path / "models"
    assert main(["train", "lge-certainty", "--train-subjects", "4", "--val-subjects", "3", "--cache",
                 str(tmp_path / "cache"), "--out", str(out), "--name", "cert-tiny", "--balance", "--resample-raters",
                 "--likelihood-weight", "1", *TINY]) == 0
    e = _entry(out, "cert-tiny")
    assert e["architecture"] == "lge_certainty_efficientnetv2" and e["phantom_trained"]
    assert e["arch_args"]["likelihood_head"] is True and e["input"]["grid"] == [112, 112]
    raters = e["metrics"]["simulated_raters"]
    assert 0 < raters["sd"] < 60 and -1 <= raters["spearman"] <= 1 and "Spearman" in e["trained_on"]
    assert 0.2 <= e["calibration"]["operating_threshold"] <= 0.9 and e["calibration"]["beta"] == 0.5
    assert e["metrics"]["published_parameters"] == 23_590_049 and e["metrics"]["parameters"] > 0
    assert e["train_command"].startswith("cmr train lge-certainty ") and "--resample-raters" in e["train_command"]
    assert (tmp_path / "cache" / "train_4_128.pkl").is_file()


def test_slice_level_on_user_slices_then_used_by_cmr_quality(tmp_path, monkeypatch, fresh_model_cache):
    from cmrlib.io import write_image
    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    data.mkdir()
    rows = ["image,slice,class,rating"]
    for i in range(3):
        write_image(Image(rng.normal(100, 20, (5, 48, 40)).astype(np.float32), (1.6, 1.6, 8.0)), data / f"s{i}.nrrd")
        rows += [f"s{i}.nrrd,0,too basal,2900", *(f"s{i}.nrrd,{k},LV,1500" for k in (1, 2, 3)),
                 f"s{i}.nrrd,4,too apical,100"]
    (data / "slice_levels.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "models"
    assert main(["train", "slice-level", "--data", str(data), "--cache", str(tmp_path / "c"), "--out", str(out),
                 "--name", "level-tiny", *TINY]) == 0
    e = _entry(out, "level-tiny")
    assert not e["phantom_trained"] and "user data: 15 slices" in e["trained_on"]
    assert e["metrics"]["training_slices_per_class"]["LV"] >= 6 and e["metrics"]["published_parameters"] == 22_199_747
    monkeypatch.setenv("CMR_MODELS_DIR", str(out))
    res = tmp_path / "res"
    assert main(["quality", "slice-level", str(data / "s0.nrrd"), "--out", str(res), "--slice-level-model",
                 "level-tiny", "--quiet"]) == 0
    doc = json.loads((res / "result.json").read_text())
    assert doc["models"][0]["name"] == "level-tiny" and "trained on: user data" in doc["models"][0]["notice"]


def test_a_class_without_examples_is_refused(tmp_path, capsys):
    from cmrlib.io import write_image
    data = tmp_path / "data"
    data.mkdir()
    write_image(Image(np.ones((2, 32, 32), np.float32), (1.6, 1.6, 8.0)), data / "a.nrrd")
    (data / "lge_scores.csv").write_text("image,slice,score\na.nrrd,0,5\na.nrrd,1,95\n")
    assert main(["train", "lge-certainty", "--data", str(data), "--cache", str(tmp_path / "c"), "--out",
                 str(tmp_path / "m"), *TINY]) == 1
    assert "no training slices of class low certainty" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()

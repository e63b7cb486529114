"""The landmarks' LV-presence gate: its network, its training images, `cmr train landmarks-presence`
(phantom and `--data`), its threshold, and what the pipeline does with it — the bundled gate
refuses noise and slices beyond the apex with a reason and keeps LV slices."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from cmrlib import Image
from cmrlib.cli import main
from cmrlib.errors import InputError


def test_the_gate_is_the_landmark_network_with_one_output():
    import torch
    from dataclasses import replace

    from cmrlib.landmarks.resnetv2 import LandmarkNet, LandmarkNetConfig, landmark_net
    cfg = replace(LandmarkNetConfig.preset("compact"), outputs=1)
    net = LandmarkNet(cfg).eval()
    with torch.no_grad():
        p = net(torch.zeros(3, 1, cfg.stage1_size, cfg.stage1_size))
    assert p.shape == (3, 1) and bool(((p > 0) & (p < 1)).all())
    # a manifest without "outputs" (the bundled landmark regressor's) still builds the 4-output network
    args = LandmarkNetConfig.preset("compact").to_args()
    args.pop("outputs")
    assert landmark_net(**args).config.outputs == 4
    assert landmark_net(**net.arch_args()).config == cfg


def test_no_lv_images_have_no_landmarks_and_are_of_the_expected_kinds():
    from cmrlib.landmarks.data import no_lv_sources, non_cardiac_sources
    seeds = range(710_900, 710_906)
    sources = no_lv_sources(seeds)
    assert sources and not any(s.has_lv for s in sources)
    assert {s.meta["class"] for s in sources} <= {"too basal", "too apical", "LV"}  # LV: apical, without the RV
    again = no_lv_sources(seeds)
    assert [(s.subject, s.contrast) for s in again] == [(s.subject, s.contrast) for s in sources]
    np.testing.assert_array_equal(again[0].image, sources[0].image)
    other = non_cardiac_sources(2, 710_950)
    assert [s.contrast for s in other] == ["non-cardiac (body, no heart)", "pure noise"] * 2
    assert not any(s.has_lv for s in other)


def test_fitted_threshold_keeps_the_share_of_lv_images():
    from cmrlib.landmarks.presence import fit_threshold
    rng = np.random.default_rng(0)
    p_lv, p_none = rng.uniform(0.3, 1.0, 200), rng.uniform(0.0, 0.5, 100)
    fit = fit_threshold(p_lv, p_none, keep=0.98)
    assert np.mean(p_lv >= fit["presence_threshold"]) >= 0.98
    assert fit["validation_lv_kept"] >= 0.98 and 0 < fit["validation_no_lv_refused"] < 1


def test_cmr_train_landmarks_presence_on_the_phantom(tmp_path, monkeypatch):
    import cmrlib.landmarks.resnetv2 as nets
    from cmrlib.models import read_manifest
    tiny = nets.LandmarkNetConfig(widths=(2, 2, 2, 2), blocks=(1, 1, 1, 1), stem=4, dense=8, stage1_size=32,
                                  stage1_pixel_mm=8.0, stage2_size=24, stage2_pixel_mm=4.0)
    monkeypatch.setattr(nets.LandmarkNetConfig, "preset", classmethod(lambda cls, name: tiny))
    out = tmp_path / "models"
    assert main(["train", "landmarks-presence", "--train-subjects", "3", "--val-subjects", "2", "--epochs", "2",
                 "--steps", "2", "--batch", "4", "--out", str(out), "--cache", str(tmp_path / "cache"), "--quiet"]) == 0
    entry = next(e for e in read_manifest(out) if e.name == "landmarks-presence-compact")
    assert entry.task == "landmarks-presence" and entry.arch_args["outputs"] == 1 and entry.phantom_trained
    assert 0.0 <= entry.calibration["presence_threshold"] <= 1.0
    assert entry.metrics["epochs"] == 2 and "cmr train landmarks-presence" in entry.train_command


def _user_folder(tmp_path):
    """A phantom LGE stack extended beyond base and apex: its LV slices annotated in landmarks.csv, the others in no_landmarks.csv."""
    from cmrlib.io import write_image
    from cmrlib.phantom.sets import extended_phantom
    folder = tmp_path / "mine"
    folder.mkdir()
    psir, _ = extended_phantom(710_977, False, np.random.default_rng(0), at_least=1).lge()
    write_image(psir.image, folder / "stack.nrrd")
    with (folder / "landmarks.csv").open("w", newline="") as fh, (folder / "no_landmarks.csv").open("w", newline="") as fn:
        w, wn = csv.writer(fh), csv.writer(fn)
        w.writerow(["image", "slice", "lv_col", "lv_row", "rv_col", "rv_row"])
        wn.writerow(["image", "slice"])
        for k, t in enumerate(psir.truth["slices"]):
            lv, rv = t.get("lv_centre"), t.get("rv_insertion_anterior")
            if t["class"] == "LV" and lv and rv:
                w.writerow(["stack.nrrd", k, *lv["pixel_col_row"], *rv["pixel_col_row"]])
            else:
                wn.writerow(["stack.nrrd", k])
    return folder


def test_cmr_train_landmarks_presence_on_a_user_folder(tmp_path, monkeypatch):
    import cmrlib.landmarks.resnetv2 as nets
    from cmrlib.landmarks.data import user_negative_sources
    from cmrlib.models import read_manifest
    folder = _user_folder(tmp_path)
    negatives = user_negative_sources(folder)
    assert negatives and all(not s.has_lv for s in negatives)
    tiny = nets.LandmarkNetConfig(widths=(2, 2, 2, 2), blocks=(1, 1, 1, 1), stem=4, dense=8, stage1_size=32,
                                  stage1_pixel_mm=8.0, stage2_size=24, stage2_pixel_mm=4.0)
    monkeypatch.setattr(nets.LandmarkNetConfig, "preset", classmethod(lambda cls, name: tiny))
    out = tmp_path / "models"
    assert main(["train", "landmarks-presence", "--data", str(folder), "--epochs", "1", "--steps", "2", "--batch", "4",
                 "--out", str(out), "--cache", str(tmp_path / "cache"), "--quiet"]) == 0
    entry = next(e for e in read_manifest(out) if e.name == "landmarks-presence-compact")
    assert not entry.phantom_trained and "--data" in entry.train_command
    # without the list of slices that have no landmarks: one line, nothing written
    (folder / "no_landmarks.csv").unlink()
    assert main(["train", "landmarks-presence", "--data", str(folder), "--out", str(tmp_path / "other"),
                 "--quiet"]) == 1
    assert not (tmp_path / "other").exists()
    with pytest.raises(InputError, match="no_landmarks.csv"):
        user_negative_sources(folder)
    (folder / "no_landmarks.csv").write_text("image,slice\nstack.nrrd,99\n")
    with pytest.raises(InputError, match="no slice 99"):
        user_negative_sources(folder)


@pytest.fixture(scope="module")
def bundled(bundled_models_only):
    from cmrlib.landmarks.pipeline import MODEL_NAME, PRESENCE_MODEL
    from cmrlib.models.zoo import model_installed
    if not (model_installed(MODEL_NAME) and model_installed(PRESENCE_MODEL)):
        pytest.skip("the bundled landmark / LV-presence weights are not installed")


def test_the_bundled_gate_refuses_noise_and_beyond_the_apex_and_keeps_lv_slices(bundled):
    from cmrlib.landmarks.data import TEST_SEED_BASE, no_lv_sources, phantom_sources
    from cmrlib.landmarks.pipeline import detect
    lv = phantom_sources(range(TEST_SEED_BASE, TEST_SEED_BASE + 2), ("lge_psir", "t1_native", "cine"))
    kept = 0
    for src in lv:
        res = detect(Image(src.image[None], (*src.spacing, 8.0)))
        kept += res.slices[0].lv_centre_px is not None
        assert res.slices[0].lv_presence is not None
        assert res.to_dict()["presence_gate"]["model"] == "landmarks-presence-compact"
    assert kept >= len(lv) - 1
    rng = np.random.default_rng(3)
    noise = np.abs(rng.normal(0, 1, (1, 128, 128)) + 1j * rng.normal(0, 1, (1, 128, 128))).astype(np.float32) * 100
    res = detect(Image(noise, (2.0, 2.0, 8.0)))
    assert res.slices[0].lv_centre_px is None and "LV-presence" in res.slices[0].reason
    apical = [s for s in no_lv_sources(range(TEST_SEED_BASE + 40, TEST_SEED_BASE + 50)) if s.meta["class"] == "too apical"]
    refused = [detect(Image(s.image[None], (*s.spacing, 8.0))).slices[0].lv_centre_px is None for s in apical]
    assert apical and np.mean(refused) >= 0.5
    # switched off: the same noise image goes to the regressor (and only its agreement may refuse it)
    res = detect(Image(noise, (2.0, 2.0, 8.0)), presence_model=None)
    assert res.slices[0].lv_presence is None and res.to_dict()["presence_gate"] is None
    with pytest.raises(InputError, match="no LV-presence model"):
        detect(Image(noise, (2.0, 2.0, 8.0)), presence_model="no-such-gate")


def test_a_threshold_outside_0_1_is_refused_before_anything_is_written(tmp_path):
    (tmp_path / "in").mkdir()
    assert main(["landmarks", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--presence-threshold", "2",
                 "--quiet"]) == 1
    assert not (tmp_path / "out").exists()


def test_held_out_evaluation_reports_each_gate(bundled):
    from cmrlib.landmarks.evaluate import evaluate, format_table
    result = evaluate(subjects=1, speed_images=2)
    assert result["presence_gate"]["model"] == "landmarks-presence-compact"
    kinds = {r["images"]: r for r in result["no_lv"]}
    assert "pure noise" in kinds and any("extended beyond base and apex" in k for k in kinds)
    for row in kinds.values():  # the pipeline refuses what either gate refuses
        assert row["refused %"] >= max(row["by confidence %"], row["by LV-presence gate %"])
    held = next(r for r in result["rows"] if r["set"] == "heldout / all" and r["method"] == "two stages")
    assert 0 <= held["by LV-presence gate %"] <= held["refused %"]
    assert "no-LV images" in format_table(result)

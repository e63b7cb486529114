"""The bundled landmarks-compact weights (phantom-trained demonstration weights) on held-out
phantom images, mirrored acquisitions, images without an LV, and `cmr run` end to end."""
from __future__ import annotations

import json

import numpy as np
import pytest

from cmrlib import Image
from cmrlib.models import clear_model_cache


pytestmark = pytest.mark.usefixtures("bundled_models_only")  # conftest: the bundled weights, nothing else


def _heldout_series():
    from cmrlib.phantom import Phantom, PhantomOptions, sample_subject
    out = []
    for seed in (790_101, 790_102, 790_103):
        s = sample_subject(seed, PhantomOptions(field_t=1.5, matrix=112, la=False))
        ph = Phantom(s)
        k = s.n_slices // 2
        psir, mag = ph.lge([k])
        out += [psir, mag, ph.vne([k]), ph.cine([k], n_phases=2)]
    return out


def test_bundled_weights_find_the_points_on_held_out_phantom_images():
    from cmrlib.landmarks.pipeline import detect
    from cmrlib.metrics import landmark_error_mm
    errs, centre_errs = [], []
    for ser in _heldout_series():
        img = ser.image.frame(0) if ser.image.is_sequence else ser.image
        t = ser.truth["slices"][0]
        t = t.get("ed", t)
        truth = np.array([t["rv_insertion_anterior"]["pixel_col_row"], t["lv_centre"]["pixel_col_row"]])
        s = detect(img).slices[0]
        assert s.lv_centre_px is not None, s.reason
        errs.extend(landmark_error_mm(np.array([s.rv_insertion_px, s.lv_centre_px]), truth, img.spacing[:2]))
        centre = (np.array(img.spatial_shape[1:][::-1]) - 1) / 2  # the trivial guess: the image centre
        centre_errs.extend(landmark_error_mm(np.stack([centre, centre]), truth, img.spacing[:2]))
    assert np.median(errs) < 0.35 * np.median(centre_errs), (np.median(errs), np.median(centre_errs))


def test_a_mirrored_acquisition_gives_the_same_points_in_patient_space():
    from cmrlib.landmarks.pipeline import detect
    ser = _heldout_series()[0]
    img = ser.image
    w = img.spatial_shape[2]
    direction = img.direction.copy()
    direction[:, 0] *= -1
    mirrored = Image(np.ascontiguousarray(img.array[..., ::-1]), img.spacing, tuple(img.index_to_lps([w - 1, 0, 0])),
                     direction, False, dict(img.meta))
    a, b = detect(img).slices[0], detect(mirrored).slices[0]
    np.testing.assert_allclose(b.lv_centre_lps, a.lv_centre_lps, atol=0.05)
    np.testing.assert_allclose(b.rv_insertion_lps, a.rv_insertion_lps, atol=0.05)
    assert b.lv_centre_px[0] == pytest.approx(w - 1 - a.lv_centre_px[0], abs=0.01)


def test_noise_and_a_heart_free_image_get_no_confident_points():
    from cmrlib.landmarks.pipeline import detect
    rng = np.random.default_rng(3)
    noise = np.abs(rng.normal(0, 1, (1, 96, 96)) + 1j * rng.normal(0, 1, (1, 96, 96))).astype(np.float32) * 100
    s = detect(Image(noise, (3.0, 3.0, 8.0))).slices[0]
    assert s.lv_centre_px is None and "LV-presence" in s.reason and s.lv_presence < 0.1
    # without the LV-presence gate the stages' agreement still refuses this one
    s = detect(Image(noise, (3.0, 3.0, 8.0)), presence_model=None).slices[0]
    assert s.lv_centre_px is None and "low confidence" in s.reason


def test_cmr_run_step_gives_landmarks_segments_and_t1_per_segment(tmp_path):
    from cmrlib.cli import main
    assert main(["phantom", "--out", str(tmp_path / "ph"), "--seed", "5", "--matrix", "96", "--no-la", "--no-post",
                 "--phases", "2", "--slices", "9", "--no-sheets", "--quiet"]) == 0
    out = tmp_path / "run"
    assert main(["run", str(tmp_path / "ph" / "subject_000" / "dicom"), "--out", str(out), "--quiet"]) in (0, 1)
    run = json.loads((out / "run.json").read_text())
    step = run["steps"]["landmarks"]
    assert step["status"] == "done", step
    t1 = [r for r in step["result"]["series"] if r["kind"] == "t1map"]
    # the QCD step runs first: its label maps are the masks (the phantom truth only without it)
    assert len(t1) == 3 and all(r["mask"].startswith("QCD qcd-compact") for r in t1)
    with_segments = [r for r in t1 if r["segments"]]
    assert with_segments, [r["notes"] for r in t1]
    for r in with_segments:
        means = [s["mean"] for s in r["segment_stats"] if s["mean"] is not None]
        assert means and 800 < np.median(means) < 1500  # native myocardial T1 (ms)
        assert (out / r["out"] / "bullseye.png").is_file()
    report = (out / "report.html").read_text()
    assert "myocardial T1 per AHA segment" in report and "landmarks-compact" in report

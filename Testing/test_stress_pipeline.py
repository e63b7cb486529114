"""dT1 pipeline on small synthetic T1 maps with a known answer: the dT1 formula, the
classical registration undoing a known shift, AHA segments, and every bad input."""
import numpy as np
import pytest

from cmrlib.errors import InputError
from cmrlib.image import Image
from cmrlib.stress.pipeline import condition_of, dt1_percent, pair_maps, roi, stress_t1

N = 72


def ring_maps(shift_rows: float = 0.0, shift_cols: float = 0.0, reactivity: float = 0.05):
    """(rest, stress, rest labels, stress labels): an LV ring (myocardium 1000 ms) round a blood
    pool (1600 ms) in a body (800 ms); the stress map's heart shifted and its myocardium
    ``reactivity`` × higher."""
    def one(dr, dc, react):
        r, c = np.mgrid[0:N, 0:N]
        d = np.hypot(r - 36 - dr, c - 36 - dc)
        t1 = np.where(np.hypot(r - 36, c - 36) < 33, 800.0, 0.0)
        lab = np.zeros((N, N), np.int16)
        lab[d < 11] = 2
        lab[(d >= 11) & (d < 17)] = 1
        t1 = np.where(lab == 2, 1600.0, t1)
        t1 = np.where(lab == 1, 1000.0 * (1 + react), t1)
        return t1.astype(np.float32), lab
    rest, rl = one(0, 0, 0.0)
    stress, sl = one(shift_rows, shift_cols, reactivity)
    return rest, stress, rl, sl


def images(rest, stress, spacing=(1.5, 1.5, 8.0), stress_origin=(0.0, 0.0, 0.0)):
    return (Image(rest[None], spacing, meta={"kind": "t1map"}),
            Image(stress[None], spacing, stress_origin, meta={"kind": "t1map"}))


def test_dt1_formula():
    rest = np.array([[1000.0, 0.0]], np.float32)
    stress = np.array([[1050.0, 100.0]], np.float32)
    np.testing.assert_allclose(dt1_percent(rest, stress), [[5.0, 0.0]])


def test_aligned_pair_gives_the_reactivity_without_registration():
    rest, stress, rl, sl = ring_maps(reactivity=0.05)
    r, s = images(rest, stress)
    res = stress_t1(r, s, rest_mask=rl[None], stress_mask=sl[None], method="none")
    assert res.dt1_slice_percent[0] == pytest.approx(5.0, abs=1e-3)
    assert res.slices[0].dice_before == pytest.approx(1.0)
    d = res.to_dict()
    assert d["method"] == "none" and d["dt1_slice_percent"] == [pytest.approx(5.0, abs=1e-3)]
    assert d["dice_after"] == pytest.approx(1.0)


def test_classical_registration_undoes_a_shift():
    rest, stress, rl, sl = ring_maps(shift_rows=4.0, shift_cols=-3.0, reactivity=0.05)
    r, s = images(rest, stress)
    none = stress_t1(r, s, rest_mask=rl[None], stress_mask=sl[None], method="none")
    reg = stress_t1(r, s, rest_mask=rl[None], stress_mask=sl[None], method="classical")
    assert none.slices[0].dice_before < 0.7
    assert reg.slices[0].dice_after > 0.9 > none.slices[0].dice_after
    # misregistered: blood (1600 ms) and body (800 ms) inside the rest myocardium bias dT1; registered: close to 5 %
    assert abs(none.dt1_slice_percent[0] - 5.0) > 2.5
    assert reg.dt1_slice_percent[0] == pytest.approx(5.0, abs=1.5)


def test_registered_stress_map_holds_only_measured_t1_values():
    # a sub-pixel shift: a blending warp would make T1s between blood (1600 ms) and myocardium
    rest, stress, rl, sl = ring_maps(shift_rows=2.5, shift_cols=-1.5, reactivity=0.05)
    r, s = images(rest, stress)
    res = stress_t1(r, s, rest_mask=rl[None], stress_mask=sl[None], method="classical")
    values = set(np.unique(np.asarray(res.registered.array)).tolist())
    assert values <= set(np.unique(stress).tolist()) | {0.0}
    assert res.slices[0].dice_after > 0.85


def test_segments_and_reverse():
    from cmrlib.aha import aha_segments
    rest, stress, rl, sl = ring_maps(reactivity=0.04)
    seg = aha_segments(rl == 1, (36.0, 36.0), (30.0, 22.0), "mid")
    r, s = images(rest, stress)
    res = stress_t1(r, s, rest_mask=rl[None], stress_mask=sl[None], segments=seg[None], method="none")
    assert {row["segment"] for row in res.segments} == set(range(7, 13))
    for row in res.segments:
        assert row["mean"] == pytest.approx(4.0, abs=1e-3)
    assert res.to_dict()["segments"]["9"] == pytest.approx(4.0, abs=1e-3)
    rev = stress_t1(r, s, rest_mask=rl[None], stress_mask=sl[None], method="none", reverse=True)
    assert rev.reversed and rev.dt1_slice_percent[0] == pytest.approx(-100 * 0.04 / 1.04, abs=1e-3)
    with pytest.raises(InputError, match="stress-mask"):
        stress_t1(r, s, rest_mask=rl[None], method="none", reverse=True)


def test_bad_inputs_are_refused_with_a_reason():
    rest, stress, rl, sl = ring_maps()
    r, s = images(rest, stress)
    with pytest.raises(InputError, match="myocardium"):
        stress_t1(r, s, method="none")
    magnitude = Image((rest / 20.0)[None], (1.5, 1.5, 8.0))  # a magnitude image: myocardium 50 'ms'
    with pytest.raises(InputError, match="does not look like a T1 map"):
        stress_t1(magnitude, s, rest_mask=rl[None], method="none")
    with pytest.raises(InputError, match="stress input does not look like a T1 map"):
        stress_t1(r, Image((stress * 10)[None], (1.5, 1.5, 8.0)), rest_mask=rl[None], method="none")
    lge = Image(rest[None], (1.5, 1.5, 8.0), meta={"kind": "lge_psir"})
    with pytest.raises(InputError, match="not a T1 map"):
        stress_t1(lge, s, rest_mask=rl[None], method="none")


def test_slice_positions_warn_refuse_or_force():
    rest, stress, rl, _ = ring_maps()
    r, s = images(rest, stress, stress_origin=(0.0, 0.0, 2.5))  # 2.5 mm through-plane
    res = stress_t1(r, s, rest_mask=rl[None], method="none")
    assert any("2.5 mm through-plane" in n for n in res.notes)
    far = images(rest, stress, stress_origin=(0.0, 0.0, 6.0))[1]  # > half of 8 mm
    with pytest.raises(InputError, match="more than half the slice thickness"):
        stress_t1(r, far, rest_mask=rl[None], method="none")
    forced = stress_t1(r, far, rest_mask=rl[None], method="none", force=True)
    assert forced.slices[0].distance_mm == pytest.approx(6.0) and any("forced" in n for n in forced.notes)


def test_other_grid_is_resampled_and_said():
    rest, stress, rl, _ = ring_maps(reactivity=0.05)
    # the stress map at half the pixel size: 144 px of 0.75 mm over the same field of view
    from scipy import ndimage
    fine = ndimage.zoom(stress, 2, order=0)
    s = Image(fine[None], (0.75, 0.75, 8.0), (-0.375, -0.375, 0.0), meta={"kind": "t1map"})
    r = Image(rest[None], (1.5, 1.5, 8.0), meta={"kind": "t1map"})
    res = stress_t1(r, s, rest_mask=rl[None], method="none")
    assert any("resampled onto the rest grid" in n for n in res.notes)
    assert res.registered.array.shape == r.array.shape
    assert res.dt1_slice_percent[0] == pytest.approx(5.0, abs=1.0)


def test_mask_that_failed_qc_is_flagged():
    rest, stress, rl, _ = ring_maps()
    r, s = images(rest, stress)
    mask = Image(rl[None], (1.5, 1.5, 8.0), meta={"qc_failed_slices": [0]})
    res = stress_t1(r, s, rest_mask=mask, method="none")
    assert res.slices[0].mask_qc_failed and res.to_dict()["mask_qc_failed_slices"] == [0]
    assert any("failed QC" in n for n in res.notes)


def test_finding_rest_and_stress_pairs():
    assert condition_of("MOLLI stress MID T1 map") == "stress"
    assert condition_of("T1 map adenosine") == "stress"
    assert condition_of("MOLLI 5(3)3 native MID") == "rest"
    assert condition_of("MOLLI post Gd") is None
    rest, stress, _, _ = ring_maps()
    a = Image(rest[None], (1.5, 1.5, 8.0))
    b = Image(stress[None], (1.5, 1.5, 8.0), (0.0, 0.0, 1.0))
    c = Image(stress[None], (1.5, 1.5, 8.0), (0.0, 0.0, 30.0))
    pairs = pair_maps([("T1 rest", a, 1), ("T1 stress far", c, 2), ("T1 stress", b, 3)])
    assert [(r[2], s[2]) for r, s in pairs] == [(1, 3)]


def test_a_registration_that_makes_the_pair_worse_is_not_used():
    from cmrlib.stress.infer import no_worse
    rest, stress, rl, _ = ring_maps(shift_rows=2.0)
    good = np.zeros((2, N, N), np.float32)
    good[0] = 2.0  # undoes the shift
    bad = np.zeros((2, N, N), np.float32)
    bad[1] = 9.0  # 9 columns off
    chosen, index = no_worse(rest, stress, [np.zeros_like(good), bad], rl, (1.5, 1.5))
    assert index == 0  # the failed registration is dropped: the pair stays as it was
    chosen, index = no_worse(rest, stress, [np.zeros_like(good), bad, good], rl, (1.5, 1.5))
    assert index == 2 and np.array_equal(chosen, good)


def test_slice_dt1_is_the_change_of_the_roi_mean_not_the_mean_pixel_ratio():
    """With noisy maps the mean of pixel-wise ratios is biased upwards by about (sd/mean)²; the
    slice and segment values are the relative change of the ROI's mean T1, as an ROI reading."""
    from cmrlib.aha import aha_segments
    rng = np.random.default_rng(3)
    rest, stress, rl, sl = ring_maps(reactivity=0.0)
    myo = rl == 1
    rest = rest + np.where(myo, rng.normal(0, 200.0, rest.shape), 0).astype(np.float32)  # 20 % pixel scatter
    stress = stress + np.where(myo, rng.normal(0, 200.0, stress.shape), 0).astype(np.float32)
    seg = aha_segments(myo, (36.0, 36.0), (30.0, 22.0), "mid")
    r, s = images(rest, stress)
    res = stress_t1(r, s, rest_mask=rl[None], stress_mask=sl[None], segments=seg[None], method="none")
    inset = roi(rl) & (rest > 50)

    def roi_mean(v):  # the ROI's mean T1 without pixels more than 30 % off its median
        return v[np.abs(v / np.median(v) - 1) <= 0.3].mean()
    want = (roi_mean(stress[inset]) / roi_mean(rest[inset]) - 1) * 100
    pixel_mean = dt1_percent(rest, stress)[inset].mean()
    assert res.dt1_slice_percent[0] == pytest.approx(want, abs=1e-3)
    assert abs(want) < 1.5 and pixel_mean - want > 1.0  # the pixel-ratio mean reads high (Jensen: E[1/T1] > 1/E[T1])
    for row in res.segments:
        sel = inset & (seg == row["segment"])
        assert row["mean"] == pytest.approx((roi_mean(stress[sel]) / roi_mean(rest[sel]) - 1) * 100, abs=1e-3)


def test_map_quality_flags_corrupted_maps_only():
    rest, stress, rl, sl = ring_maps(reactivity=0.05)
    r, s = images(rest, stress)
    clean = stress_t1(r, s, rest_mask=rl[None], stress_mask=sl[None], method="none")
    assert not clean.slices[0].map_qc_failed and clean.slices[0].stress_implausible_percent == 0.0
    assert clean.to_dict()["map_qc_failed_slices"] == []
    # motion within the stress breath-hold: a band of the myocardium reads blood-like T1
    bad = stress.copy()
    band = (rl == 1) & (np.arange(N)[:, None] < 30)
    bad[band] = 1500.0
    res = stress_t1(r, Image(bad[None], (1.5, 1.5, 8.0), meta={"kind": "t1map"}), rest_mask=rl[None],
                    stress_mask=sl[None], method="none")
    s0 = res.slices[0]
    assert s0.map_qc_failed and s0.stress_implausible_percent > 12.0 and s0.rest_implausible_percent == 0.0
    assert res.to_dict()["map_qc_failed_slices"] == [0]
    assert any("map quality" in n and "registered stress map" in n for n in res.notes)


def test_the_papers_exclusions_as_the_benchmark_applies_them():
    from cmrlib.stress.data import MapPair
    from cmrlib.stress.evaluate import OUT_OF_PLANE_MM, exclusion, included
    rest, stress, rl, sl = ring_maps()

    def pair(artefacts, through):
        return MapPair(rest, stress, (1.5, 1.5), "p", rl, sl, truth={"artefacts": artefacts, "through_plane_mm": through})
    clean = pair({"motion": 0.0, "noise": 0.8, "banding": 0.6}, 0.5)
    moved = pair({"motion": 0.45}, 0.0)
    ghost = pair({"ghosting": 0.3}, 0.0)
    tilted = pair({}, -(OUT_OF_PLANE_MM + 0.5))
    assert exclusion(clean) is None and OUT_OF_PLANE_MM == 2.0
    assert exclusion(moved).startswith("imaging artefacts (motion 0.45")
    assert exclusion(ghost).startswith("imaging artefacts (ghosting")
    assert exclusion(tilted).startswith("out-of-plane motion (2.5 mm")
    assert included([clean, moved, ghost, tilted]) == [clean]


def test_registration_sees_through_the_noise_of_a_fitted_lung():
    """Lung beside the heart fits to salt-and-pepper T1 (0 … 4095 ms, independent in each map):
    the registration view median-filters it away, the anatomy stays, and a known shift is still
    undone with that noise beside the heart."""
    from cmrlib.stress.data import registration_view
    rng = np.random.default_rng(5)
    rest, stress, rl, sl = ring_maps(shift_rows=3.0, shift_cols=-2.0, reactivity=0.05)
    lung = np.zeros((N, N), bool)
    lung[8:30, 50:70] = True
    for m in (rest, stress):
        m[lung] = rng.uniform(0, 4095, int(lung.sum())).astype(np.float32)
    view = registration_view(rest, (1.5, 1.5))
    assert view.shape == rest.shape and view.dtype == np.float32
    assert np.std(view[lung]) < 0.6 * np.std(rest[lung])  # the noise is damped
    ring = roi(rl)
    assert np.median(view[ring]) == pytest.approx(1000.0, abs=1.0)  # the myocardium is kept
    r, s = images(rest, stress)
    res = stress_t1(r, s, rest_mask=rl[None], stress_mask=sl[None], method="classical")
    assert res.slices[0].dice_before < 0.8 and res.slices[0].dice_after > 0.9
    assert res.dt1_slice_percent[0] == pytest.approx(5.0, abs=1.0)

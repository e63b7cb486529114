"""Scar quantification's pieces on small real inputs: tag matching, LV centres, the card's
post-processing, the classical thresholds, volumes and %scar, AHA segments, and the bad inputs
the issue names (a clear message; nothing partial presented as complete)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from cmrlib.errors import InputError
from cmrlib.image import Image
from cmrlib.scar import classical
from cmrlib.scar.data import phantom_stack
from cmrlib.scar.infer import OUT_MYOCARDIUM, OUT_SCAR, postprocess
from cmrlib.scar.matching import centre_from_mask, detect_lv_centre, match_series
from cmrlib.scar.pipeline import quantify_scar, segment_burden, voxel_ml
from cmrlib.scar.unet import BLOOD, MYOCARDIUM, SCAR, ScarUNetConfig, build


@pytest.fixture(scope="module")
def ischaemic():
    return phantom_stack(780_003, scar="ischemic")


@pytest.fixture(scope="module")
def no_scar():
    return phantom_stack(780_005, scar="none")


def _ring(shape=(96, 96), centre=(48.0, 48.0), r_in=14.0, r_out=22.0):
    r, c = np.mgrid[0:shape[0], 0:shape[1]]
    d = np.hypot(r - centre[1], c - centre[0])
    ang = np.degrees(np.arctan2(r - centre[1], c - centre[0]))
    return (d >= r_in) & (d < r_out), ang


# ---- matching ---------------------------------------------------------------------------------------------
def test_each_lge_slice_gets_the_cine_frame_at_its_trigger_time_and_the_same_position(ischaemic):
    m = match_series(ischaemic.lge, ischaemic.cine)
    tt = [fm["TriggerTime"] for fm in ischaemic.cine.frame_meta]
    lge_tt = ischaemic.lge.meta["TriggerTime"]
    best = int(np.argmin(np.abs(np.asarray(tt) - lge_tt)))
    assert [s.cine_slice for s in m.slices] == list(range(ischaemic.lge.spatial_shape[0]))
    assert all(s.cine_frame == best and s.distance_mm < 1e-3 for s in m.slices)
    assert not m.notes


def test_a_cine_shifted_through_plane_beyond_half_a_slice_is_refused_per_slice_unless_forced(ischaemic):
    cine = ischaemic.cine.copy()
    normal = np.asarray(cine.direction)[:, 2]
    half = ischaemic.lge.meta["SliceThickness"] / 2
    cine.origin = tuple(np.asarray(cine.origin) + normal * (half + 0.8))
    m = match_series(ischaemic.lge, cine)
    unmatched = [s for s in m.slices if s.cine_slice is None]
    assert unmatched and "more than half the LGE slice thickness" in unmatched[0].reason
    forced = match_series(ischaemic.lge, cine, force=True)
    assert all(s.cine_slice is not None for s in forced.slices) and any(s.forced for s in forced.slices)


def test_different_studies_are_refused_unless_forced(ischaemic):
    lge = ischaemic.lge.copy()
    cine = ischaemic.cine.copy()
    lge.meta["StudyInstanceUID"], cine.meta["StudyInstanceUID"] = "1.2.3", "1.2.4"
    with pytest.raises(InputError, match="different studies"):
        match_series(lge, cine)
    assert any("forced" in n for n in match_series(lge, cine, force=True).notes)
    cine.meta["StudyInstanceUID"] = "1.2.3"
    lge.meta["FrameOfReferenceUID"], cine.meta["FrameOfReferenceUID"] = "9.1", "9.2"
    with pytest.raises(InputError, match="frames of reference"):
        match_series(lge, cine)


def test_a_cine_without_trigger_times_is_refused(ischaemic):
    cine = ischaemic.cine.copy()
    cine.frame_meta = [{} for _ in cine.frame_meta]
    with pytest.raises(InputError, match="no TriggerTime"):
        match_series(ischaemic.lge, cine)


def test_the_blood_pool_detector_finds_the_lv_centre(ischaemic):
    sp = ischaemic.lge.spacing
    errors = []
    for k in range(ischaemic.labels.shape[0]):
        if (ischaemic.labels[k] == 2).sum() < 30:
            continue
        truth = centre_from_mask(ischaemic.labels[k])
        found = detect_lv_centre(ischaemic.lge.array[k], sp)
        errors.append(np.inf if found is None else float(np.hypot(*((found - truth) * np.asarray(sp[:2])))))
    assert len(errors) >= 4
    assert np.mean(np.asarray(errors) < 5.0) >= 0.75, errors


# ---- post-processing and classical thresholds ------------------------------------------------------------
def test_postprocessing_closes_gaps_keeps_the_largest_ring_and_drops_scar_outside_it():
    ring, ang = _ring()
    cls = np.zeros(ring.shape, np.uint8)
    cls[ring] = MYOCARDIUM
    cls[ring & (np.abs(ang) < 2.0)] = BLOOD  # a 1-pixel-ish gap in the ring
    cls[ring & (ang > 40) & (ang < 80)] = SCAR
    cls[5:8, 5:8] = MYOCARDIUM  # a far-away island
    cls[88:91, 88:91] = SCAR
    out = postprocess(cls, 1.2)
    assert out[5:8, 5:8].sum() == 0 and out[88:91, 88:91].sum() == 0
    gap = ring & (np.abs(ang) < 2.0)
    assert (out[gap] > 0).all()
    assert (out[ring & (ang > 45) & (ang < 75)] == OUT_SCAR).all()
    assert (out > 0).sum() > ring.sum()  # dilated by one pixel


def test_nsd_and_fwhm_find_a_bright_sector_and_auto_remote_is_the_darkest_sector():
    rng = np.random.default_rng(1)
    ring, ang = _ring()
    img = np.full(ring.shape, 300.0) + rng.normal(0, 10, ring.shape)
    img[ring] = 100.0 + rng.normal(0, 8, ring.sum())
    scar = ring & (ang > 0) & (ang < 60)
    img[scar] = 420.0 + rng.normal(0, 10, scar.sum())
    dark = ring & (ang < -120)
    img[dark] -= 30.0
    remote = classical.auto_remote(img, ring, (48.0, 48.0))
    assert (remote & dark).sum() / remote.sum() > 0.7
    stack, myo = img[None], ring[None]
    for method in ("nsd5", "fwhm"):
        found = classical.classical_scar(method, stack, myo, centres_px=[(48.0, 48.0)])[0]
        dice = 2 * (found & scar).sum() / (found.sum() + scar.sum())
        assert dice > 0.95, (method, dice)
    # a user remote region that includes the scar raises the threshold: less scar
    user = classical.nsd_scar(stack, myo, 2.0, remote=myo)[0]
    assert user.sum() < classical.nsd_scar(stack, myo, 2.0)[0].sum()


# ---- quantities ---------------------------------------------------------------------------------------------
def test_classical_percent_scar_and_volumes_on_the_phantom_match_the_truth(ischaemic):
    res = quantify_scar(ischaemic.lge, None, method="nsd5", mask=ischaemic.truth_mask(), mask_source="truth")
    vox = voxel_ml(ischaemic.lge)
    truth_myo = ischaemic.truth_myocardium.sum() * vox
    truth_pct = 100 * ischaemic.truth_scar.sum() / ischaemic.truth_myocardium.sum()
    d = res.to_dict()
    assert d["myocardial_volume_ml"] == pytest.approx(truth_myo, rel=1e-6)
    assert abs(d["percent_scar"] - truth_pct) < 2.5 and d["scar_present"] is True
    assert d["slices_total"] == ischaemic.lge.spatial_shape[0] and d["complete"]
    assert {m["method"] for m in d["methods"]} >= {"nsd2", "nsd3", "nsd5", "fwhm"}  # + the installed U-Nets
    n2 = next(m for m in d["methods"] if m["method"] == "nsd2")["percent_scar"]
    assert n2 >= d["percent_scar"]  # a lower threshold finds at least as much
    per = [s for s in d["slices"] if s["status"] == "segmented"]
    assert sum(s["myocardium_ml"] for s in per) == pytest.approx(d["myocardial_volume_ml"], rel=1e-4)  # rounded
    assert {s["level"] for s in per} >= {"basal", "mid", "apical"}


def test_per_segment_percent_scar_adds_up_to_the_total(ischaemic):
    res = quantify_scar(ischaemic.lge, None, method="nsd5", mask=ischaemic.truth_mask(), segments=ischaemic.aha)
    segs = res.segments
    assert {s["segment"] for s in segs} >= set(range(1, 17))
    assert sum(s["myocardium_ml"] for s in segs) == pytest.approx(res.primary.myocardial_volume_ml, rel=1e-4)
    assert sum(s["scar_ml"] for s in segs) == pytest.approx(res.primary.scar_volume_ml, rel=1e-3)
    lab = np.asarray(res.labels.array)
    assert segment_burden(lab, np.asarray(ischaemic.aha.array), voxel_ml(ischaemic.lge)) == segs


def test_a_fusion_network_runs_through_matching_alignment_and_post_processing(ischaemic):
    net = build(ScarUNetConfig.preset("fusion-compact")).eval()
    res = quantify_scar(ischaemic.lge, ischaemic.cine, method="fusion", networks={"fusion": net})
    assert res.labels.array.shape == ischaemic.lge.array.shape
    assert res.cine_aligned is not None and res.cine_aligned.shape == ischaemic.lge.array.shape
    assert {"fusion_inference_s_per_slice", "fusion_postprocess_s_per_slice"} <= set(res.timing)
    assert all(s.cine is not None and s.cine["cine_slice"] == s.index for s in res.slices)
    with pytest.raises(InputError, match="needs the cine"):
        quantify_scar(ischaemic.lge, None, method="fusion")


# ---- bad input ----------------------------------------------------------------------------------------------
def test_a_one_slice_stack_and_an_all_dark_lge_are_refused(ischaemic):
    one = ischaemic.lge.with_array(np.asarray(ischaemic.lge.array)[4:5], is_sequence=False)
    one.meta = dict(ischaemic.lge.meta)
    mask1 = ischaemic.truth_mask().with_array(np.asarray(ischaemic.truth_mask().array)[4:5], is_sequence=False)
    with pytest.raises(InputError, match="one slice"):
        quantify_scar(one, None, method="nsd5", mask=mask1)
    forced = quantify_scar(one, None, method="nsd5", mask=mask1, force=True)
    assert forced.to_dict()["slices_total"] == 1
    dark = ischaemic.lge.with_array(np.zeros(ischaemic.lge.array.shape, np.float32), is_sequence=False)
    with pytest.raises(InputError, match="all dark"):
        quantify_scar(dark, None, method="nsd5", mask=ischaemic.truth_mask())


def test_a_mask_that_failed_qc_gives_a_result_marked_partial(ischaemic):
    mask = ischaemic.truth_mask()
    mask.meta = {"qc_failed_slices": [4, 5]}
    res = quantify_scar(ischaemic.lge, None, method="nsd5", mask=mask)
    d = res.to_dict()
    assert d["complete"] is False
    assert [s["status"] for s in d["slices"]][4:6] == ["not segmented", "not segmented"]
    assert any(n.startswith("partial") for n in d["notes"])
    full = quantify_scar(ischaemic.lge, None, method="nsd5", mask=ischaemic.truth_mask()).to_dict()
    assert d["myocardial_volume_ml"] < full["myocardial_volume_ml"]


def test_a_mask_on_another_grid_and_a_classical_method_without_a_mask_are_refused(ischaemic):
    with pytest.raises(InputError, match="not the LGE's grid"):
        quantify_scar(ischaemic.lge, None, method="nsd5", mask=np.zeros((2, 8, 8), np.uint8))
    with pytest.raises(InputError, match="give --mask"):
        quantify_scar(ischaemic.lge, None, method="fwhm")


def test_a_stack_without_scar_reads_low(no_scar):
    res = quantify_scar(no_scar.lge, None, method="nsd5", mask=no_scar.truth_mask())
    assert res.primary.percent_scar < 3.0


def test_review_flags_fire_on_implausible_volumes_and_disagreeing_networks():
    from cmrlib.scar.pipeline import MethodSummary, plausibility_notes
    f = MethodSummary("fusion", 4.0, 120.0, 4.8, 8, [], "network")
    g = MethodSummary("lge-only", 12.0, 118.0, 14.0, 8, [], "network")
    assert any("disagree" in n for n in plausibility_notes([f, g], "fusion"))
    assert not plausibility_notes([f, replace(g, percent_scar=5.0)], "fusion")
    tiny = MethodSummary("nsd5", 3.0, 12.0, 0.4, 6, [], "mask")
    assert any("outside 30–400 mL" in n for n in plausibility_notes([tiny], "nsd5"))


def test_the_final_dilation_is_a_setting_the_card_default_one_pixel():
    ring, ang = _ring()
    cls = np.where(ring, MYOCARDIUM, 0).astype(np.uint8)
    none, card, two = (int((postprocess(cls, 1.5, d) > 0).sum()) for d in (0, 1, 2))
    assert none == ring.sum() and none < card < two
    assert int((postprocess(cls, 1.5) > 0).sum()) == card



def test_a_scar_logit_offset_moves_the_decision_towards_scar():
    import torch
    from cmrlib.scar.infer import predict

    class Fixed(torch.nn.Module):  # logits: myocardium 1.0, scar rising across the image 0 .. 2
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):
            n, _, h, w = x.shape
            out = torch.zeros(n, 4, h, w)
            out[:, MYOCARDIUM] = 1.0
            out[:, SCAR] = torch.linspace(0, 2, w)[None, None, :].expand(n, h, w)
            return out
    x = np.zeros((1, 1, 4, 8), np.float32)
    plain, shifted = predict(Fixed(), x), predict(Fixed(), x, scar_logit_offset=0.5)
    assert (plain == SCAR).sum() < (shifted == SCAR).sum() < x[0, 0].size

# ---- the bundled networks ----------------------------------------------------------------------------------
@pytest.mark.usefixtures("bundled_models_only")
@pytest.mark.parametrize("offset, scar", [(15, "ischemic"), (20, "none")])
def test_the_bundled_fusion_network_quantifies_held_out_stacks(offset, scar):
    from cmrlib.metrics import dice
    from cmrlib.scar.data import TEST_SEED_BASE
    st = phantom_stack(TEST_SEED_BASE + offset, scar=scar)
    res = quantify_scar(st.lge, st.cine)
    d = res.to_dict()
    assert d["method"] == "fusion" and d["model"]["name"] == "scar-fusion-compact" and d["complete"]
    assert d["postprocess_dilate_px"]["fusion"] == 0  # calibrated, stored in the manifest
    assert d["scar_logit_offset"]["fusion"] > 0  # the decision calibrated on validation stacks
    truth_pct = 100 * st.truth_scar.sum() / st.truth_myocardium.sum()
    truth_ml = st.truth_myocardium.sum() * voxel_ml(st.lge)
    assert abs(d["percent_scar"] - truth_pct) < 2.0, (d["percent_scar"], truth_pct)
    assert d["myocardial_volume_ml"] == pytest.approx(truth_ml, rel=0.15)
    assert d["scar_present"] is (scar != "none")
    assert dice(np.asarray(res.labels.array) > 0, st.truth_myocardium) > 0.85
    by = {m["method"]: m for m in d["methods"]}
    assert set(by) == {"fusion", "lge-only", "nsd2", "nsd3", "nsd5", "fwhm"}
    assert by["nsd5"]["myocardium"] == "fusion myocardium"  # no mask given: the thresholds use the network's
    assert not [n for n in d["notes"] if n.startswith("review")]


@pytest.mark.usefixtures("bundled_models_only")
def test_an_image_that_is_no_heart_gives_no_confident_scar():
    rng = np.random.default_rng(5)
    st = phantom_stack(780_007, scar="ischemic")
    noise = st.lge.with_array(rng.gamma(2.0, 100.0, st.lge.array.shape).astype(np.float32), is_sequence=False)
    noise.meta = dict(st.lge.meta)
    res = quantify_scar(noise, None)
    d = res.to_dict()
    assert d["percent_scar"] is None or any(n.startswith("review") or "no LV myocardium" in n for n in d["notes"])


def test_intensity_gate_keeps_enhanced_scar_and_returns_dim_scar_to_myocardium():
    from cmrlib.scar.classical import NO_GATE, gate_scar
    rng = np.random.default_rng(0)
    lge = rng.normal(100.0, 5.0, (1, 40, 40))
    yy, xx = np.mgrid[:40, :40]
    r = np.hypot(yy - 20, xx - 20)
    myo = (r >= 8) & (r <= 12)
    lab = np.where(myo, OUT_MYOCARDIUM, 0)[None].astype(np.uint8)
    bright = myo & (xx > 27)  # enhanced: scar the network found correctly
    dim = myo & (xx < 13)  # not enhanced: scar the network read into texture
    lge[0][bright] += 200.0
    lab[0][bright | dim] = OUT_SCAR
    gated = gate_scar(lab, lge, 2.0, None, [(20.0, 20.0)], OUT_SCAR, OUT_MYOCARDIUM)
    assert (gated[0][bright] == OUT_SCAR).all()
    assert (gated[0][dim] == OUT_SCAR).mean() < 0.1  # only noise above mean + 2 sd of remote stays
    assert ((gated > 0) == (lab > 0)).all()  # the myocardium is never changed
    assert (gate_scar(lab, lge, NO_GATE) == lab).all()


def test_the_model_gate_is_applied_and_reported(ischaemic):
    from cmrlib.scar.classical import NO_GATE
    plain = quantify_scar(ischaemic.lge, ischaemic.cine, method="fusion", compare=False, scar_gate_sd=NO_GATE)
    strict = quantify_scar(ischaemic.lge, ischaemic.cine, method="fusion", compare=False, scar_gate_sd=50.0)
    assert plain.to_dict()["scar_gate_sd"] == {"fusion": None}
    assert strict.to_dict()["scar_gate_sd"] == {"fusion": 50.0}
    assert plain.primary.percent_scar > 1.0 and strict.primary.percent_scar < 0.5 * plain.primary.percent_scar
    assert strict.primary.myocardial_volume_ml == pytest.approx(plain.primary.myocardial_volume_ml)

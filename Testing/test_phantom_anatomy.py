"""Phantom masks, slice classes, landmarks and AHA segments agree with the stated parameters."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from cmrlib.phantom import Phantom, PhantomOptions, TERRITORIES, sample_subject
from cmrlib.phantom.labels import model_volumes, slice_class
from cmrlib.phantom.tissue import T

FAST = dict(clean=True, la=False)


def _ray_completeness(labels: np.ndarray, centre_col_row: tuple[float, float], pixel_mm: float,
                      reach_mm: float = 70.0) -> float:
    """Fraction of 0.5° rays from the LV centre that meet LV myocardium (labels 1 or 3)."""
    myo = (labels == 1) | (labels == 3)
    ang = np.deg2rad(np.arange(0.0, 360.0, 0.5))
    radii = np.arange(0.0, reach_mm / pixel_mm, 0.25)
    cols = centre_col_row[0] + np.cos(ang)[:, None] * radii[None]
    rows = centre_col_row[1] - np.sin(ang)[:, None] * radii[None]
    hit = ndimage.map_coordinates(myo.astype(np.uint8), [rows.ravel(), cols.ravel()], order=0, mode="constant")
    return float(hit.reshape(len(ang), -1).any(axis=1).mean())


@pytest.fixture(scope="module")
def lge_stacks():
    """LGE stacks (labels + truth) of a few clean subjects, incl. one HCM."""
    out = []
    for seed, extra in ((11, {}), (12, {"scar": "ischemic"}), (13, {"phenotype": "hcm", "scar": "nonischemic"}),
                        (14, {"scar": "none"})):
        opt = PhantomOptions(matrix=128, pixel_mm=1.6, **FAST, **extra)
        ph = Phantom(sample_subject(seed, opt))
        psir, _ = ph.lge()
        out.append((ph, psir))
    return out


def test_ring_completeness_and_slice_classes(lge_stacks):
    seen = set()
    for ph, psir in lge_stacks:
        for k, sl in enumerate(psir.truth["slices"]):
            labels = psir.labels.array[k]
            has_myo = bool(np.any((labels == 1) | (labels == 3)))
            seen.add(sl["class"])
            assert sl["class"] == slice_class(ph.anat, sl["material_z_mm"])[0]
            if sl["class"] == "too apical":
                assert not has_myo, "beyond the apex there is no LV myocardium"
                continue
            if sl["lv_centre"] is None:  # above the mitral plane
                assert sl["class"] == "too basal" and sl["ring_completeness"] == 0.0
                continue
            centre = sl["lv_centre"]["pixel_col_row"]
            measured = _ray_completeness(labels, centre, ph.s.pixel_mm)
            assert abs(measured - sl["ring_completeness"]) < 0.05, (k, measured, sl["ring_completeness"])
            assert (measured < 0.5) == (sl["class"] == "too basal") or abs(measured - 0.5) < 0.05
    assert {"too basal", "LV"} <= seen


def test_landmarks_match_masks(lge_stacks):
    for ph, psir in lge_stacks:
        s = ph.s
        for k, sl in enumerate(psir.truth["slices"]):
            if sl["class"] != "LV" or sl["ring_completeness"] < 1.0 or sl["aha_level"] not in ("mid", "basal"):
                continue
            labels = psir.labels.array[k]
            blood = labels == 2
            cy, cx = ndimage.center_of_mass(blood)
            col, row = sl["lv_centre"]["pixel_col_row"]
            assert np.hypot(cx - col, cy - row) < 1.0, "LV centre = blood-pool centroid"
            ant, inf = sl["rv_insertion_anterior"], sl["rv_insertion_inferior"]
            if ant is None:
                continue
            myo = (labels == 1) | (labels == 3)
            rv = (labels == 4) | (labels == 5)
            d_myo = ndimage.distance_transform_edt(~myo)
            d_rv = ndimage.distance_transform_edt(~rv)
            for pt in (ant, inf):
                c, r = pt["pixel_col_row"]
                ri, ci = int(round(r)), int(round(c))
                assert d_myo[ri, ci] <= 1.5 and d_rv[ri, ci] <= 2.0, "insertion point on the LV epicardium next to the RV"
            # LPS and pixel coordinates describe the same point
            lps = np.asarray(ant["lps_mm"])
            px = np.asarray(ant["pixel_col_row"])
            img = psir.image
            back = img.index_to_lps([px[0], px[1], k])
            assert np.allclose(back, lps, atol=1e-3)
            # insertion points 110-140 degrees apart around the LV centre
            a1 = np.degrees(np.arctan2(-(ant["pixel_col_row"][1] - row), ant["pixel_col_row"][0] - col))
            a2 = np.degrees(np.arctan2(-(inf["pixel_col_row"][1] - row), inf["pixel_col_row"][0] - col))
            span = (a2 - a1) % 360.0
            assert abs(span - s.rv_span_deg) < 3.0 and 110.0 <= s.rv_span_deg <= 140.0


def test_aha_segments_follow_insertion_point(lge_stacks):
    ph, psir = lge_stacks[0]
    for k, sl in enumerate(psir.truth["slices"]):
        if sl["ring_completeness"] < 1.0 or sl["rv_insertion_anterior"] is None or sl["aha_level"] not in ("basal", "mid"):
            continue
        aha = psir.aha.array[k]
        col, row = sl["lv_centre"]["pixel_col_row"]
        c, r = sl["rv_insertion_anterior"]["pixel_col_row"]
        a0 = np.arctan2(-(r - row), c - col)
        first = 1 if sl["aha_level"] == "basal" else 7
        # just counter-clockwise of the anterior insertion point: anteroseptal; clockwise: anterior
        for da, seg in ((+0.12, first + 1), (-0.12, first)):
            rr = np.hypot(c - col, r - row) * 0.85
            pc, pr = col + rr * np.cos(a0 + da), row - rr * np.sin(a0 + da)
            assert aha[int(round(pr)), int(round(pc))] == seg
        assert set(np.unique(aha[aha > 0])) <= set(range(first, first + 6))


def test_mask_volumes_match_model():
    """Thin-slice mask volumes equal the analytic anatomy's integrated volumes."""
    for seed, scar in ((21, "ischemic"), (22, "nonischemic")):
        opt = PhantomOptions(matrix=112, pixel_mm=1.0, n_slices=80, slice_thickness_mm=1.4, scar=scar, **FAST)
        ph = Phantom(sample_subject(seed, opt))
        psir, _ = ph.lge()
        lab = psir.labels.array
        vox = ph.s.pixel_mm ** 2 * ph.s.slice_spacing_mm / 1000.0
        assert ph.s.slice_z()[-1] > ph.anat.l_epi and ph.s.slice_z()[0] < 1.5
        model = model_volumes(ph.anat, ph.t_mid)
        myo = np.sum((lab == 1) | (lab == 3)) * vox
        scar_ml = np.sum(lab == 3) * vox
        assert abs(myo / model["myocardium_ml"] - 1) < 0.03, (myo, model)
        assert abs(np.sum(lab == 2) * vox / model["cavity_ml"] - 1) < 0.03
        assert model["scar_ml"] > 0.5 and abs(scar_ml / model["scar_ml"] - 1) < 0.1, (scar_ml, model)


def test_reference_geometry_and_cycle():
    """ED/ES diameters, wall thickness and thickening, HCM septum, cine volumes (phantom-reference.md)."""
    for seed, pheno in ((31, "normal"), (32, "normal"), (33, "hcm")):
        opt = PhantomOptions(matrix=96, pixel_mm=2.0, n_phases=20, phenotype=pheno, **FAST)
        s = sample_subject(seed, opt)
        ph = Phantom(s)
        assert 80.0 <= s.epi_length_mm <= 96.0
        ed_d = 2 * s.endo_radius_mm
        es_d = ed_d * s.es_radius_ratio
        if pheno == "normal":
            assert 42 <= ed_d <= 58 and 25 <= es_d <= 40
            assert 6 <= s.wall_mm <= 11 and 0.4 <= s.thickening <= 0.6
        else:
            assert s.wall_mm + s.septal_extra_mm >= 15.0
            # septal thickness on the basal T1-mapping slice at end-diastole: length of the
            # myocardium run along a ray from the LV axis through the septal centre
            grid = ph.irw_grid("basal")
            myo = np.isin(ph.render(grid, 0, 0.0)["tissue"], (T.MYOCARDIUM, T.SCAR))
            z = float(ph.anat.to_heart(grid.slice_origin(0)[None].astype(np.float32))[0, 2])
            a = np.deg2rad(s.septal_centre_deg)
            ts = np.arange(0.0, 70.0, 0.25)
            pts = ph.anat.to_lps(np.stack([ts * np.cos(a), ts * np.sin(a), np.full_like(ts, z)], axis=1))
            px = grid.to_pixel(pts, 0)
            hits = ndimage.map_coordinates(myo.astype(np.uint8), [px[:, 1], px[:, 0]], order=0)
            assert hits.sum() * 0.25 >= 14.0  # HCM: >= 15 mm septum (2 mm pixels: allow one pixel)
        cine = ph.cine(n_phases=20)
        vols = cine.truth["lv_blood_volume_ml_by_phase_stack"]
        assert np.argmin(vols) == cine.truth["end_systolic_phase"]
        assert min(vols) < 0.75 * vols[0], "cavity shrinks in systole"
        assert 0 < cine.truth["end_systolic_phase"] < 12


def test_stress_reactivity_by_segment():
    opt = PhantomOptions(matrix=96, pixel_mm=2.0, stress=True, stress_territory="LAD", **FAST)
    ph = Phantom(sample_subject(41, opt))
    rest = ph.irw("mid", "native")
    stress = ph.irw("mid", "stress")
    aha = rest.aha.array[0]
    lab = rest.labels.array[0]
    # reactivity is a change of the (MOLLI-type) reference T1 the tissue tables hold
    ratio = stress.maps["t1_reference_ms"].array[0] / rest.maps["t1_reference_ms"].array[0] - 1.0
    assert ph.s.stress_territory == "LAD"
    for seg in np.unique(aha[lab == 1]):
        got = ratio[(aha == seg) & (lab == 1)]
        assert np.allclose(got, ph.s.stress_reactivity[int(seg)], atol=1e-5)
        if int(seg) in TERRITORIES["LAD"]:
            assert 0.0 <= ph.s.stress_reactivity[int(seg)] <= 0.02
        else:
            assert 0.03 <= ph.s.stress_reactivity[int(seg)] <= 0.04
    assert stress.truth["heart_rate_bpm"] > rest.truth["heart_rate_bpm"] * 1.15


def test_ischemic_scar_in_its_territory():
    for seed in range(51, 56):
        opt = PhantomOptions(matrix=96, pixel_mm=2.0, scar="ischemic", **FAST)
        ph = Phantom(sample_subject(seed, opt))
        psir, _ = ph.lge()
        scar = psir.labels.array == 3
        segs = psir.aha.array[scar]
        assert scar.sum() > 0
        inside = np.isin(segs, TERRITORIES[ph.s.scar.territory]).mean()
        assert inside > 0.8, (ph.s.scar.territory, inside)

"""Ground-truth labels derived from the anatomy and the simulated images (phantom layer e).

* slice geometry facts: material long-axis level, slice-level class (too basal / LV / too
  apical, SCMR definitions), ring completeness, AHA level;
* landmarks: LV centre and anterior/inferior RV insertion points (LPS mm and pixels);
* model volumes by numerical integration of the analytic anatomy (mL);
* the LGE-likelihood score (0-100) of an LGE slice from scar conspicuity versus artefact
  severity, and left-atrial LGE quality attributes on the 1-5 scale.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from .anatomy import Anatomy, contraction
from .geometry import Grid, RigidMotion

SLICE_CLASSES = ("too basal", "LV", "too apical")


def slice_class(anat: Anatomy, za: float) -> tuple[str, float]:
    """(class, ring completeness 0..1) of a SAX plane at material level ``za`` (mm).

    Too basal: LV myocardium around < 50 % of the blood-pool circumference (outflow
    tract, or above the mitral plane); too apical: beyond the epicardial apex (no LV
    myocardium); LV otherwise (including the apical cap).
    """
    if za >= anat.l_epi:
        return "too apical", 0.0
    comp = anat.ring_completeness(za)
    return ("too basal" if comp < 0.5 else "LV"), comp


def plane_level(anat: Anatomy, grid: Grid, k: int, t_frac: float, motion: RigidMotion | None = None,
                pivot: np.ndarray | None = None) -> tuple[float, float]:
    """(spatial heart z, material z) in mm of slice k's centre plane at phase t_frac."""
    centre = grid.slice_origin(k) + 0.5 * (grid.cols - 1) * grid.spacing[0] * grid.col_dir \
        + 0.5 * (grid.rows - 1) * grid.spacing[1] * grid.row_dir
    p = centre[None].astype(np.float32)
    if motion is not None and pivot is not None:
        p = motion.sample_points(p, grid, pivot)
    z = float(anat.to_heart(p)[0, 2])
    c = float(contraction(t_frac, anat.s.t_es))
    return z, float(anat.anatomical_z(np.float32(z), c))


def _forward(motion: RigidMotion | None, grid: Grid, pivot: np.ndarray | None, ref: np.ndarray) -> np.ndarray:
    """Image-space LPS position of a reference-anatomy point after the patient moved."""
    if motion is None or motion.is_identity or pivot is None:
        return ref
    # inverse of RigidMotion.sample_points: solve p from ref = R^-1 (p - pivot - shift) + pivot
    from .geometry import _rotate
    n = grid.slice_dir
    shift = motion.d_col_mm * grid.col_dir + motion.d_row_mm * grid.row_dir + motion.through_mm * n
    rot = np.array([_rotate(e, n, motion.rot_deg) for e in np.eye(3)]).T
    return (ref - pivot) @ rot.T + pivot + shift


def landmarks(anat: Anatomy, grid: Grid, k: int, t_frac: float, motion: RigidMotion | None = None,
              pivot: np.ndarray | None = None) -> dict[str, Any]:
    """LV centre and RV insertion points of slice k (LPS mm and (col, row) pixels).

    The anterior insertion point is where the RV free wall meets the LV epicardium
    (the epicardial contour at the anterior insertion angle); the inferior one likewise.
    Points are None where the slice has no LV myocardium or no RV.
    """
    z, za = plane_level(anat, grid, k, t_frac, motion, pivot)
    c = float(contraction(t_frac, anat.s.t_es))
    out: dict[str, Any] = {}
    s = anat.s
    lv_present = 0.0 <= za < anat.l_epi
    rv_len = s.rv_length_fraction * anat.l_endo
    centre_ref = anat.to_lps(np.array([[0.0, 0.0, z]]))[0]
    pts = {"lv_centre": centre_ref if lv_present else None}
    for name, ang in (("rv_insertion_anterior", s.rv_anterior_deg),
                      ("rv_insertion_inferior", s.rv_anterior_deg + s.rv_span_deg)):
        if lv_present and za < rv_len:
            r_epi = float(anat.radii(np.array([ang % 360], np.float32), np.array([za], np.float32), c)[1][0])
            a = np.deg2rad(ang)
            pts[name] = anat.to_lps(np.array([[r_epi * np.cos(a), r_epi * np.sin(a), z]]))[0]
        else:
            pts[name] = None
    for name, ref in pts.items():
        if ref is None:
            out[name] = None
            continue
        lps = _forward(motion, grid, pivot, ref)
        px = grid.to_pixel(lps, k)
        out[name] = {"lps_mm": [round(float(v), 4) for v in lps], "pixel_col_row": [round(float(v), 4) for v in px]}
    return out


def model_volumes(anat: Anatomy, t_frac: float, with_scar: bool = True, dz: float = 0.5) -> dict[str, float]:
    """LV volumes (mL) of the analytic anatomy at phase t_frac by numerical integration.

    Integrates over material z in [0, l_epi) (spatial slices compress by the long-axis
    shortening factor), 0.5° in angle and 24 transmural samples for the scar. Cavity
    includes the outflow-tract lumen and papillary muscles (labelled blood pool).
    """
    c = float(contraction(t_frac, anat.s.t_es))
    s_long = 1.0 - anat.s.long_shortening * c  # spatial dz = s_long * material dz
    za = np.arange(dz / 2, anat.l_epi, dz, dtype=np.float32)
    phi = np.arange(0.25, 360.0, 0.5, dtype=np.float32)
    Z, P = np.meshgrid(za, phi, indexing="ij")
    r_endo, r_epi = anat.radii(P, Z, c)
    gap = Z < anat.z_ring(P)
    cap = Z >= anat.l_endo
    r_endo = np.where(cap, 0.0, r_endo)
    dphi = np.deg2rad(0.5)
    ring = 0.5 * (r_epi ** 2 - r_endo ** 2) * dphi
    myo_area = np.where(gap, 0.0, ring).sum(axis=1)
    cav_area = (0.5 * r_endo ** 2 * dphi).sum(axis=1) + np.where(gap, ring, 0.0).sum(axis=1)
    scale = dz * s_long / 1000.0
    out = {"myocardium_ml": float(myo_area.sum() * scale), "cavity_ml": float(cav_area.sum() * scale)}
    if with_scar and anat.s.scar is not None:
        taus = (np.arange(24, dtype=np.float32) + 0.5) / 24
        scar_vol = 0.0
        for tau in taus:
            r = r_endo + tau * (r_epi - r_endo)
            dep = np.where(cap, (Z - anat.l_endo) / max(anat.l_epi - anat.l_endo, 1e-3), tau).astype(np.float32)
            m = anat.scar_mask(P.ravel(), Z.ravel(), dep.ravel(), cap.ravel()).reshape(P.shape) & ~gap
            scar_vol += float(np.sum(np.where(m, r * (r_epi - r_endo) / 24 * dphi, 0.0)))
        out["scar_ml"] = scar_vol * scale
    else:
        out["scar_ml"] = 0.0
    out["scar_percent"] = 100.0 * out["scar_ml"] / max(out["myocardium_ml"], 1e-9)
    return out


def _touching(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pixels of mask a that touch mask b (8-neighbourhood)."""
    return a & ndimage.binary_dilation(b, structure=np.ones((3, 3), bool))


def lge_likelihood(labels: np.ndarray, clean: np.ndarray, observed: np.ndarray, ghost: np.ndarray, sigma: float,
                   pixel_mm: float, blood_ref: float, severities: dict[str, float],
                   remote_ref: tuple[float, float] = (0.0, 0.0)) -> dict[str, Any]:
    """LGE likelihood 0-100 of one LGE slice, as a rater's visual-analogue score would follow it.

    ``clean``: noise-free magnitude at the intended TI without artefacts; ``observed``:
    noise-free magnitude with this slice's TI error, bright blood and blur (ghosts
    excluded); ``ghost``: the ghost image added on top; ``sigma``: noise SD;
    ``blood_ref``: blood-pool signal at the intended TI (same units); ``remote_ref``:
    (observed, clean) remote-myocardium signal used when the slice has no normal
    myocardium of its own (e.g. a fully infarcted apical cap).

    Evidence E (0..1) = scar conspicuity: contrast of scar over remote myocardium against
    noise and ghosts (1 - exp(-CNR/3)), scar size (1 - exp(-area / 25 mm²)) and, for scar
    touching the blood pool, its contrast against the blood. Uncertainty M (0..1) combines
    measured artefact strength (1 - prod(1 - u)): remote myocardium brighter than at the
    intended TI (poor nulling, relative to blood), ghost energy in the heart, noise
    (sigma / blood), blur and a bright blood pool. Score = 50 + 50 (2E - 1)(1 - M²): clear
    scar on a clean image -> 100, a clean image without scar -> 0, a faint scar or a badly
    degraded image -> towards 50 (equivocal).
    """
    scar = labels == 3
    myo = labels == 1
    blood = labels == 2
    heart = scar | myo | blood
    core = ndimage.binary_erosion(myo, structure=np.ones((3, 3), bool))  # avoid partial volume with blood
    if core.sum() < 4:
        core = myo
    b = max(float(blood_ref), 1e-6)
    out: dict[str, Any] = {}
    remote_obs = float(np.median(observed[core])) if core.any() else float(remote_ref[0])
    remote_clean = float(np.median(clean[core])) if core.any() else float(remote_ref[1])
    ghost_rms = float(np.sqrt(np.mean(ghost[heart] ** 2))) if heart.any() else 0.0
    if scar.sum() >= 2:
        s_mean = float(observed[scar].mean())
        cnr = (s_mean - remote_obs) / np.sqrt(sigma ** 2 + ghost_rms ** 2 + 1e-12)
        area = float(scar.sum() * pixel_mm ** 2)
        e = (1.0 - np.exp(-max(cnr, 0.0) / 3.0)) * (1.0 - np.exp(-area / 25.0))
        edge = _touching(scar, blood)
        if edge.any():
            frac = float(edge.sum() / scar.sum())
            b_obs = float(observed[blood].mean()) if blood.any() else b
            cb = (s_mean - b_obs) / max(s_mean, 1e-6)
            e *= 1.0 - frac * (1.0 - float(np.clip(0.5 + 2.0 * cb, 0.2, 1.0)))
        out.update({"scar_cnr": round(float(cnr), 3), "scar_area_mm2": round(area, 2)})
    else:
        e = 0.0
        out.update({"scar_cnr": 0.0, "scar_area_mm2": round(float(scar.sum() * pixel_mm ** 2), 2)})
    u = {
        "nulling": float(np.clip((remote_obs - remote_clean) / b / 0.7, 0.0, 1.0)),
        "ghosting": float(np.clip(ghost_rms / (0.2 * b), 0.0, 1.0)),
        "noise": float(np.clip((sigma / b - 0.03) / 0.15, 0.0, 1.0)),
        "blur": 0.6 * float(severities.get("blur", 0.0)),
        "bright_blood": 0.5 * float(severities.get("bright_blood", 0.0)),
    }
    m = 1.0 - float(np.prod([1.0 - v for v in u.values()]))
    # signed evidence (2E - 1: -1 confident absence .. +1 confident presence), pulled towards
    # 50 as artefacts grow; mild artefacts barely move a confident reading, severe ones
    # (M -> 1) make any slice equivocal
    score = 50.0 + 50.0 * (2.0 * e - 1.0) * (1.0 - m ** 2)
    out.update({"evidence": round(float(e), 4), "uncertainty": round(m, 4),
                "uncertainty_parts": {k: round(v, 4) for k, v in u.items()},
                "remote_over_blood": round(remote_obs / b, 4), "ghost_rms_over_blood": round(ghost_rms / b, 4),
                "lge_likelihood": round(float(np.clip(score, 0.0, 100.0)), 2)})
    return out


def certainty_class(likelihood: float) -> str:
    """high (0-25 or 75-100) / low (26-74) certainty, as in the LGE-certainty card."""
    return "low" if 25.0 < likelihood < 75.0 else "high"


def la_quality_continuous(myo_over_blood: float, edge_sigma_mm: float, enhancement: float,
                          snr: float) -> dict[str, float]:
    """The unrounded 1-5 scores behind :func:`la_quality` (5 best): each attribute's measure mapped
    linearly between its worst (1) and best (5) value, the overall quality the worst attribute
    pulled towards their mean minus an SNR penalty below 10. Simulated raters add their noise to
    these before rounding (:mod:`cmrlib.laquality.data`)."""
    def score(v: float, best: float, worst: float) -> float:
        return float(np.clip(1.0 + 4.0 * (v - worst) / (best - worst), 1.0, 5.0))

    attrs = {"myocardial_nulling": score(myo_over_blood, 0.0, 0.45), "sharpness": score(edge_sigma_mm, 0.8, 3.2),
             "aorta_valve_enhancement": score(enhancement, 0.55, 0.05)}
    return {**attrs, "overall_quality": overall_quality(list(attrs.values()), snr)}


def overall_quality(attributes: list[float], snr: float) -> float:
    """Overall quality for fibrosis assessment (1-5, unrounded) from the three attribute scores."""
    overall = 0.6 * min(attributes) + 0.4 * float(np.mean(attributes))
    if np.isfinite(snr) and snr < 10:
        overall -= (10 - snr) / 5.0
    return float(np.clip(overall, 1.0, 5.0))


def la_quality(myo_over_blood: float, edge_sigma_mm: float, enhancement: float, snr: float) -> dict[str, Any]:
    """Left-atrial LGE quality attributes on the 1-5 scale (5 best) and the overall score.

    myocardial nulling: LV myocardium signal / LA blood signal (0 -> 5, >= 0.45 -> 1);
    sharpness: edge blur SD in mm (<= 0.8 -> 5, >= 3.2 -> 1); aorta/valve enhancement:
    wall-over-myocardium contrast relative to blood (>= 0.55 -> 5, <= 0.05 -> 1); overall quality for fibrosis
    assessment: the worst attribute pulled towards their mean, minus an SNR penalty
    below 10; diagnostic when >= 3.
    """
    c = la_quality_continuous(myo_over_blood, edge_sigma_mm, enhancement, snr)
    nulling, sharp, enh = (int(np.round(c[k])) for k in ("myocardial_nulling", "sharpness", "aorta_valve_enhancement"))
    overall_i = int(np.clip(np.round(overall_quality([nulling, sharp, enh], snr)), 1, 5))
    return {"myocardial_nulling": nulling, "sharpness": sharp, "aorta_valve_enhancement": enh,
            "overall_quality": overall_i, "diagnostic": overall_i >= 3,
            "measures": {"lv_myocardium_over_blood": round(myo_over_blood, 4), "edge_sigma_mm": round(edge_sigma_mm, 3),
                         "wall_enhancement_over_blood": round(enhancement, 4), "snr": snr if np.isfinite(snr) else None}}

"""LGE ↔ cine matching from DICOM tags, and in-plane alignment by LV centres (seed 003).

For every LGE slice: the cine frame at the LGE trigger time (``TriggerTime``, ms) and the cine
slice nearest through-plane (``ImagePositionPatient`` along the LGE's slice normal), with that
distance; pairs further apart than half the LGE slice thickness are refused unless forced.
The two images are then aligned by translation only: each is resampled onto a network grid
centred on its own LV centre (:func:`cmrlib.planes.centred_map` with ``centre_px``), so the
centres coincide. LV centres come, in order of preference, from the user (a point per image),
from the landmarks capability or a myocardium mask of the LGE, or from :func:`detect_lv_centres`
(a blood-pool detector: the roundest bright region, on the cine helped by the heart's motion
over the cycle, on the LGE searched near the cine's centre).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np
from scipy import ndimage

from ..errors import InputError
from ..image import Image
from ..planes import PLANE_TOLERANCE_DEG, nearest_slices, plane_angle_deg

#: a LGE trigger time is unknown: the cine frame at this fraction of R-R (mid-diastole)
DEFAULT_TRIGGER_FRACTION = 0.7
#: the farthest (mm) a detected LV centre may lie from the stack's median centre line
CENTRE_OUTLIER_MM = 15.0


@dataclass
class SliceMatch:
    """One LGE slice and its cine partner (``cine_slice`` None: no cine within tolerance)."""

    lge_slice: int
    cine_slice: int | None
    cine_frame: int | None
    distance_mm: float | None  # through-plane, along the LGE normal
    lge_trigger_ms: float | None
    cine_trigger_ms: float | None
    forced: bool = False
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()}


@dataclass
class Matching:
    """Every LGE slice's match and the notes a user should read."""

    slices: list[SliceMatch]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"slices": [m.to_dict() for m in self.slices], "notes": list(self.notes)}


def _uid(img: Image, key: str) -> str | None:
    v = img.meta.get(key)
    return str(v) if v else None


def check_same_study(lge: Image, cine: Image, force: bool = False) -> list[str]:
    """InputError when LGE and cine carry different StudyInstanceUID or FrameOfReferenceUID
    (different studies or reference frames: slice positions cannot be compared) unless ``force``."""
    notes = []
    for key, what in (("StudyInstanceUID", "studies"), ("FrameOfReferenceUID", "frames of reference")):
        a, b = _uid(lge, key), _uid(cine, key)
        if a and b and a != b:
            msg = f"the LGE and the cine come from different {what} ({key} differs)"
            if not force:
                raise InputError(msg + "; refused (use --force to match them anyway)")
            notes.append(msg + " (forced)")
    return notes


def lge_trigger_times(lge: Image) -> list[float | None]:
    """Per-slice TriggerTime (ms) of an LGE volume: ``meta["TriggerTimes"]`` (DICOM loading), else
    one ``TriggerTime`` for all, else None per slice."""
    n = lge.spatial_shape[0]
    per = lge.meta.get("TriggerTimes")
    if per and len(per) == n:
        return [None if t is None else float(t) for t in per]
    one = lge.meta.get("TriggerTime")
    return [float(one) if one is not None else None] * n


def cine_trigger_times(cine: Image) -> np.ndarray:
    """TriggerTime (ms) of each cine frame; InputError when the cine has none."""
    if not cine.is_sequence or cine.n_frames < 2:
        raise InputError("the cine is a single image, not a series of cardiac phases: it cannot be matched to the "
                         "LGE trigger time")
    tt = [fm.get("TriggerTime") for fm in cine.frame_meta] if cine.frame_meta else []
    if len(tt) != cine.n_frames or any(t is None for t in tt):
        raise InputError("the cine has no TriggerTime per frame: its cardiac phases cannot be matched to the LGE")
    return np.asarray(tt, float)


def match_series(lge: Image, cine: Image, *, force: bool = False) -> Matching:
    """Each LGE slice's cine frame (nearest trigger time, cyclic over R-R) and cine slice
    (nearest through-plane). Refuses different studies, tilted planes and, per slice, a
    distance over half the LGE slice thickness (that slice then has no cine) unless ``force``."""
    notes = check_same_study(lge, cine, force)
    angle = plane_angle_deg(lge, cine)
    if angle > PLANE_TOLERANCE_DEG:
        msg = f"the cine slices are tilted {angle:.0f}° to the LGE slices (not the same short-axis planes)"
        if not force:
            raise InputError(msg + "; refused (use --force to match them anyway)")
        notes.append(msg + " (forced)")
    cine_tt = cine_trigger_times(cine)
    rr = float(cine.meta.get("rr_ms") or 0.0) or float(cine_tt[-1] + np.median(np.diff(cine_tt)))
    lge_tt = lge_trigger_times(lge)
    if any(t is None for t in lge_tt):
        notes.append(f"the LGE has no TriggerTime: cine frames at {DEFAULT_TRIGGER_FRACTION:.0%} of R-R "
                     "(mid-diastole) are used")
    thickness = float(lge.meta.get("SliceThickness") or lge.spacing[2] or 8.0)
    nearest, distance = nearest_slices(lge, cine)
    matches = []
    for k, (j, d) in enumerate(zip(nearest, distance)):
        t = lge_tt[k] if lge_tt[k] is not None else DEFAULT_TRIGGER_FRACTION * rr
        gap = np.abs(cine_tt - t)
        gap = np.minimum(gap, np.abs(rr - gap))  # cyclic: late diastole is near frame 0
        f = int(np.argmin(gap))
        m = SliceMatch(k, int(j), f, float(d), lge_tt[k], float(cine_tt[f]))
        if d > thickness / 2:
            reason = (f"the nearest cine slice is {d:.1f} mm away through-plane, more than half the LGE slice "
                      f"thickness ({thickness:.1f} mm)")
            if force:
                m.forced, m.reason = True, reason + " (forced)"
            else:
                m.cine_slice, m.cine_frame, m.reason = None, None, reason
        matches.append(m)
    unmatched = [m.lge_slice + 1 for m in matches if m.cine_slice is None]
    if unmatched and len(unmatched) == len(matches):
        notes.append("no LGE slice has a cine slice within half a slice thickness")
    elif unmatched:
        notes.append(f"LGE slice(s) {', '.join(map(str, unmatched))} have no cine slice within half a slice thickness")
    return Matching(matches, notes)


def cine_frame(cine: Image, match: SliceMatch) -> np.ndarray:
    """The matched cine image ``[row, col]`` of one LGE slice."""
    arr = np.asarray(cine.array, np.float32)
    if arr.ndim == 3:  # [frame, row, col]: one slice
        return arr[match.cine_frame]
    return arr[match.cine_frame, match.cine_slice]


# ---- LV centres --------------------------------------------------------------------------------------

def _candidates(img: np.ndarray, spacing: Sequence[float], prior: np.ndarray | None) -> list[tuple[float, np.ndarray]]:
    """Bright, round regions of plausible LV-cavity size: (score, centre (col, row) px)."""
    px_mm = float(np.sqrt(spacing[0] * spacing[1]))
    x = ndimage.gaussian_filter(np.asarray(img, np.float32), 1.5 / px_mm)
    lo, hi = np.percentile(x, [2, 99.5])
    if hi - lo <= 1e-6:
        return []
    x = (x - lo) / (hi - lo)
    found = []
    for level in (0.35, 0.45, 0.55, 0.65):
        lab, n = ndimage.label(ndimage.binary_opening(x > level, iterations=1))
        for i in range(1, n + 1):
            reg = lab == i
            area = float(reg.sum()) * spacing[0] * spacing[1]
            if not 80.0 <= area <= 7000.0:
                continue
            rr, cc = np.nonzero(reg)
            cov = np.cov(np.stack([cc * spacing[0], rr * spacing[1]])) if rr.size > 2 else np.eye(2)
            ev = np.sort(np.linalg.eigvalsh(cov))
            roundness = float(np.sqrt(max(ev[0], 1e-6) / max(ev[1], 1e-6)))
            # solidity: a disc fills the ellipse of its moments; a crescent (RV) does not
            ellipse_area = 4.0 * np.pi * np.sqrt(max(ev[0] * ev[1], 1e-9))
            solidity = float(min(1.0, area / ellipse_area))
            contrast = float(x[reg].mean() - x[ndimage.binary_dilation(reg, iterations=3) & ~reg].mean())
            score = roundness * solidity ** 2 * max(contrast, 0.0) ** 0.5 * np.sqrt(area / 1500.0 + 0.2)
            if prior is not None:
                score *= float(prior[reg].mean())
            found.append((score, np.array([cc.mean(), rr.mean()])))
    return found


def detect_lv_centre(img: np.ndarray, spacing: Sequence[float], *, motion: np.ndarray | None = None,
                     near_px: np.ndarray | None = None, near_sd_mm: float = 12.0) -> np.ndarray | None:
    """The LV blood pool's centre (col, row) px of one short-axis image, or None.

    ``motion``: the cine's temporal sd (the heart is what moves); ``near_px``: an expected
    position (e.g. the cine's centre mapped onto this image) weighting candidates by a
    Gaussian of ``near_sd_mm``. Without either, candidates near the image centre are preferred.
    """
    shape = np.asarray(img).shape
    r, c = np.mgrid[0:shape[0], 0:shape[1]]
    if near_px is not None:
        d2 = ((c - near_px[0]) * spacing[0]) ** 2 + ((r - near_px[1]) * spacing[1]) ** 2
        prior = np.exp(-d2 / (2 * near_sd_mm ** 2))
    else:
        half = 0.5 * min(shape[0] * spacing[1], shape[1] * spacing[0])
        d2 = ((c - (shape[1] - 1) / 2) * spacing[0]) ** 2 + ((r - (shape[0] - 1) / 2) * spacing[1]) ** 2
        prior = np.exp(-d2 / (2 * (0.45 * half) ** 2))
    if motion is not None:
        m = ndimage.gaussian_filter(np.asarray(motion, np.float32), 6.0 / float(np.sqrt(spacing[0] * spacing[1])))
        prior = prior * (0.15 + m / max(float(m.max()), 1e-6))
    found = _candidates(img, spacing, prior)
    if not found:
        return None
    return max(found, key=lambda t: t[0])[1]


def centre_from_mask(labels2d: np.ndarray) -> np.ndarray | None:
    """LV centre (col, row) px from a label map: the blood pool's centroid (label 2), else the
    myocardium's (label 1, and 3 scar); None on an empty slice."""
    lab = np.asarray(labels2d)
    for sel in (lab == 2, (lab == 1) | (lab == 3)):
        if sel.sum() >= 5:
            rr, cc = np.nonzero(sel)
            return np.array([cc.mean(), rr.mean()])
    return None


def regularise_centres(centres: list[np.ndarray | None], spacing: Sequence[float]) -> tuple[list[np.ndarray | None], list[int]]:
    """Replace centres further than :data:`CENTRE_OUTLIER_MM` from the stack's median (and the
    missing ones) by that median; returns (centres, replaced slice indices). A short-axis stack's
    LV centres lie within a few mm of one line."""
    have = [c for c in centres if c is not None]
    if not have:
        return centres, []
    med = np.median(np.stack(have), axis=0)
    out, replaced = [], []
    for k, c in enumerate(centres):
        far = c is None or float(np.hypot((c[0] - med[0]) * spacing[0], (c[1] - med[1]) * spacing[1])) > CENTRE_OUTLIER_MM
        if far and len(have) >= 3:
            out.append(med.copy())
            replaced.append(k)
        else:
            out.append(c)
    return out, replaced


def cine_motion_map(cine: Image, cine_slice: int) -> np.ndarray | None:
    """Temporal sd of one cine slice over its frames (where the heart moves)."""
    arr = np.asarray(cine.array, np.float32)
    stack = arr if arr.ndim == 3 else arr[:, cine_slice]
    return stack.std(axis=0) if stack.shape[0] > 2 else None


def lps_to_px(image: Image, point_lps: Sequence[float], k: int) -> np.ndarray:
    """An LPS point (mm) as (col, row) px on slice ``k`` of ``image`` (projected in-plane)."""
    ijk = image.lps_to_index(np.asarray(point_lps, float))
    return np.array([float(ijk[0]), float(ijk[1])])


def px_to_lps(image: Image, centre_px: Sequence[float], k: int) -> np.ndarray:
    return np.asarray(image.index_to_lps([float(centre_px[0]), float(centre_px[1]), float(k)]), float)

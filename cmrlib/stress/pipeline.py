"""Stress T1 reactivity: register each stress T1 map to the rest map of the same slice
position, then dT1 = (T1_stress,registered − T1_rest) / T1_rest × 100 % per pixel, its mean
per slice and per AHA segment inside the rest map's myocardial ROI — the myocardium 1 pixel in
from its borders, :func:`roi` (thesis ch. 3).

The one computation the CLI (`cmr stress`), `cmr run` (:func:`run_step`) and the Slicer
worker call: :func:`stress_t1` (Images in → :class:`StressResult`).

Inputs are checked before anything is computed: both must be T1 maps (myocardial median —
or, without a mask, the central region's — within 100–3000 ms), the slices of the two maps
must lie at the same positions (a through-plane distance over 1 mm is reported; beyond half
a slice thickness the pair is refused unless ``force``); a stress map of another grid is
resampled onto the rest grid (and the result says so).
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from ..errors import InputError
from ..image import Image
from ..planes import PLANE_TOLERANCE_DEG, nearest_slices, plane_angle_deg, slice_normal
from ..progress import ProgressCallback, report
from ..warp import warp_image
from .infer import METHODS, register_classical, register_network

T1_RANGE_MS = (100.0, 3000.0)
MODEL_NAMES = {"swin": "dt1-swin-compact", "unet": "dt1-unet-compact"}
TRAINER = "dt1"
POSITION_WARN_MM = 1.0


@dataclass
class SliceResult:
    index: int  # slice of the rest map (0-based)
    dt1_percent: float | None  # dT1 (%) of the myocardial ROI's mean T1 (roi(): 1 px in from the borders)
    dt1_sd_percent: float | None  # sd of the pixel-wise dT1 (%) in the ROI
    n_pixels: int
    dice_before: float | None = None  # myocardium of rest vs stress
    dice_after: float | None = None  # myocardium of rest vs registered stress
    distance_mm: float = 0.0  # through-plane distance between the two slice positions
    mask_qc_failed: bool = False
    #: share (%) of ROI pixels more than 30 % off the ROI's median T1 in the rest map / the
    #: registered stress map (motion, ghosting, a failed registration); map_qc_failed above 12 %
    rest_implausible_percent: float | None = None
    stress_implausible_percent: float | None = None
    map_qc_failed: bool = False
    reason: str = ""  # why no value

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class StressResult:
    method: str  # swin | unet | classical | none
    model: str | None
    model_version: str | None
    model_notice: str | None
    reversed: bool
    slices: list[SliceResult]
    segments: list[dict]  # aha.segment_stats rows of dT1 (%)
    seconds: float
    notes: list[str] = field(default_factory=list)
    series: dict[str, str] = field(default_factory=dict)  # rest / stress descriptions
    registered: Image | None = None
    dt1: Image | None = None
    myocardium: Image | None = None
    segment_map: Image | None = None
    rest: Image | None = None

    @property
    def dt1_slice_percent(self) -> list[float | None]:
        return [s.dt1_percent for s in self.slices]

    def _mean(self, key: str) -> float | None:
        v = [getattr(s, key) for s in self.slices if getattr(s, key) is not None]
        return float(np.mean(v)) if v else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method, "model": self.model, "model_version": self.model_version,
            "model_notice": self.model_notice, "reversed": self.reversed, "seconds": round(self.seconds, 3),
            "dt1_slice_percent": [None if v is None else round(v, 3) for v in self.dt1_slice_percent],
            "segments": {str(r["segment"]): None if r["mean"] is None else round(r["mean"], 3) for r in self.segments},
            "segment_stats": self.segments,
            "dice_before": self._mean("dice_before"), "dice_after": self._mean("dice_after"),
            "slices": [s.to_dict() for s in self.slices], "series": self.series, "notes": self.notes,
            "mask_qc_failed_slices": [s.index for s in self.slices if s.mask_qc_failed],
            "map_qc_failed_slices": [s.index for s in self.slices if s.map_qc_failed],
        }


# ---- input checks --------------------------------------------------------------------------------
def check_t1_map(img: Image, myocardium: np.ndarray | None, name: str) -> float:
    """The map's myocardial (or central-region) median T1 (ms); InputError outside 100–3000 ms."""
    kind = img.meta.get("kind")
    if kind and kind not in ("t1map",):
        raise InputError(f"the {name} input is a {kind} series, not a T1 map (give the scanner's T1 map, or a map "
                         "fitted by `cmr motion`)")
    arr = np.asarray(img.array, float)
    if myocardium is not None and myocardium.any():
        v = arr[myocardium & (arr > 0)]
    else:
        _, rows, cols = arr.shape
        centre = arr[:, rows // 4: 3 * rows // 4, cols // 4: 3 * cols // 4]
        v = centre[centre > 0]
    med = float(np.median(v)) if v.size else 0.0
    lo, hi = T1_RANGE_MS
    if not lo <= med <= hi:
        where = "myocardial" if myocardium is not None else "central"
        raise InputError(f"the {name} input does not look like a T1 map: its {where} median is {med:.0f}, outside "
                         f"{lo:.0f}–{hi:.0f} ms (a magnitude image or a map in other units?)")
    return med


def resample_to(src: Image, grid: Image, order: int = 1) -> Image:
    """``src`` sampled on ``grid``'s spatial grid (LPS geometry; zero outside)."""
    import SimpleITK as sitk

    from ..io.files import to_sitk
    target = Image(np.zeros(grid.spatial_shape, np.float32), grid.spacing, grid.origin, grid.direction)
    interp = sitk.sitkLinear if order == 1 else sitk.sitkNearestNeighbor
    res = sitk.Resample(to_sitk(src.with_array(np.asarray(src.array, np.float32), is_sequence=False)),
                        to_sitk(target), sitk.Transform(), interp, 0.0)
    return grid.with_array(sitk.GetArrayFromImage(res).astype(np.float32), is_sequence=False)


def match_positions(rest: Image, stress: Image, force: bool) -> tuple[list[int], list[float], list[str]]:
    """For each rest slice the stress slice at its position: (indices, through-plane
    distances mm, notes). InputError when a distance exceeds half a slice thickness (unless
    ``force``)."""
    angle = plane_angle_deg(rest, stress)
    if angle > PLANE_TOLERANCE_DEG:
        msg = f"rest and stress slices are tilted {angle:.0f}° to each other (not the same plane)"
        if not force:
            raise InputError(msg + "; refused (use --force to register anyway)")
        notes = [msg]
    else:
        notes = []
    thickness = float(rest.meta.get("SliceThickness") or rest.spacing[2] or 8.0)
    nearest, distance = nearest_slices(rest, stress)
    idx, dist = [int(j) for j in nearest], [float(d) for d in distance]
    for k, d in enumerate(dist):
        if d > thickness / 2:
            msg = (f"slice {k + 1}: the nearest stress slice is {d:.1f} mm away through-plane, more than half the "
                   f"slice thickness ({thickness:.1f} mm)")
            if not force:
                raise InputError(msg + "; refused (use --force to register anyway)")
            notes.append(msg + " (forced)")
        elif d > POSITION_WARN_MM:
            notes.append(f"slice {k + 1}: rest and stress positions differ by {d:.1f} mm through-plane")
    return idx, dist, notes


# ---- registration -------------------------------------------------------------------------------
def _load_model(method: str, model_name: str | None, device):
    from ..models.zoo import load_installed
    return load_installed(model_name or MODEL_NAMES[method], device, TRAINER)


def choose_method(method: str | None, model_name: str | None = None) -> tuple[str, list[str]]:
    """The method to use: ``swin`` when its weights are installed, else ``classical`` (with a note)."""
    from ..models.zoo import model_installed
    if method is None:
        if model_installed(model_name or MODEL_NAMES["swin"]):
            return "swin", []
        return "classical", [f"no {model_name or MODEL_NAMES['swin']} weights installed: classical SimpleITK "
                             "registration (rigid + B-spline) used"]
    if method not in METHODS:
        raise InputError(f"--method must be one of {', '.join(METHODS)}; got {method!r}")
    return method, []


def dt1_percent(rest: np.ndarray, registered_stress: np.ndarray) -> np.ndarray:
    """Pixel-wise (stress − rest) / rest × 100 %; 0 where the rest map has no signal (< 50 ms)."""
    ok = rest > 50.0
    out = np.zeros(rest.shape, np.float32)
    out[ok] = (registered_stress[ok] - rest[ok]) / rest[ok] * 100.0
    return np.clip(out, -100.0, 100.0)


def _myo(labels: np.ndarray) -> np.ndarray:
    return np.isin(labels, (1, 3))


#: the myocardium is averaged 1 pixel in from the endo- and epicardial borders: partial volume
#: with blood (T1 ~50 % higher) and fat at the borders would otherwise swamp a 3–6 % response
#: (the usual conservative T1 ROI, as the 10 % border offsets of clinical T1 tools)
ROI_INSET_PX = 1


def roi(labels2d: np.ndarray, inset_px: int = ROI_INSET_PX) -> np.ndarray:
    """The myocardial ROI of one slice: the myocardium eroded by ``inset_px`` (per slice
    independently), or the whole myocardium where the erosion would leave under a third."""
    myo = _myo(labels2d)
    if inset_px <= 0 or not myo.any():
        return myo
    inner = ndimage.binary_erosion(myo, iterations=inset_px)
    return inner if inner.sum() >= myo.sum() / 3 else myo


def roi_mean_t1(values_ms: np.ndarray) -> float | None:
    """Mean T1 (ms) of an ROI's pixels, leaving out implausible ones (more than
    :data:`MAP_OUTLIER_FRACTION` off the ROI's median: partial volume with blood or epicardial
    fat where the contour and the map disagree by a pixel) — the conservative ROI a reader draws."""
    if values_ms.size == 0:
        return None
    med = float(np.median(values_ms))
    keep = np.abs(values_ms / med - 1.0) <= MAP_OUTLIER_FRACTION if med > 0 else np.ones(values_ms.shape, bool)
    return float(np.mean(values_ms[keep])) if keep.any() else None


def relative_change_percent(rest_t1: np.ndarray, stress_t1: np.ndarray) -> float | None:
    """(mean stress − mean rest) / mean rest × 100 % of two ROIs' T1 (ms, :func:`roi_mean_t1`): the
    ROI measurement of stress T1 reactivity. Averaging the pixel-wise ratio instead would add a
    bias of about (pixel sd / mean)² — +1 % for a map whose myocardial pixels scatter by 10 %."""
    ref, st = roi_mean_t1(rest_t1), roi_mean_t1(stress_t1)
    if ref is None or st is None or ref <= 0:
        return None
    return (st - ref) / ref * 100.0


#: map quality: a ROI pixel is implausible beyond this fraction off the ROI's median T1, and a
#: slice fails when more than MAP_QC_MAX_PERCENT of its ROI is implausible — what motion or
#: ghosting within a breath-hold leaves in a map, or a registration that pulled blood into the
#: ROI (clean maps stay below about 8 %, noise included)
MAP_OUTLIER_FRACTION = 0.3
MAP_QC_MAX_PERCENT = 12.0


def implausible_percent(values_ms: np.ndarray) -> float | None:
    """Share (%) of ``values_ms`` more than :data:`MAP_OUTLIER_FRACTION` off their median."""
    if values_ms.size == 0:
        return None
    med = float(np.median(values_ms))
    return float(np.mean(np.abs(values_ms / med - 1.0) > MAP_OUTLIER_FRACTION)) * 100.0 if med > 0 else 100.0


def _dice(a: np.ndarray, b: np.ndarray) -> float | None:
    from ..metrics import dice
    return dice(a, b) if a.any() or b.any() else None


def stress_t1(rest: Image, stress: Image, *, rest_mask: Image | np.ndarray | None = None,
              stress_mask: Image | np.ndarray | None = None, segments: Image | np.ndarray | None = None,
              method: str | None = None, model_name: str | None = None, reverse: bool = False,
              force: bool = False, device=None, progress: ProgressCallback | None = None) -> StressResult:
    """dT1 of a rest / stress T1 map pair (Images of one or more slices, ms).

    ``rest_mask`` / ``stress_mask``: label maps on each map's grid (1 myocardium, 2 blood
    pool; 3 counts as myocardium); the rest mask is required (dT1 is averaged inside it), the
    stress mask only scores Dice before / after. ``segments``: AHA segment labels 1–17 on the
    rest grid (e.g. ``cmr landmarks``' ``aha_segments.nrrd``). ``reverse``: the pair reversed
    (the stress map is the fixed image and needs ``stress_mask``; a simulated negative
    response, as in the paper's check). ``method`` None picks the Swin model when installed.
    """
    t0 = time.perf_counter()
    notes: list[str] = []
    if reverse:
        if stress_mask is None:
            raise InputError("--reverse registers the rest map to the stress map: it needs the stress map's "
                             "myocardium mask (--stress-mask)")
        rest, stress, rest_mask, stress_mask = stress, rest, stress_mask, rest_mask
        segments = None
        notes.append("reversed pair: the stress map is the reference and the rest map is registered to it "
                     "(dT1 = (rest − stress) / stress; AHA segments of the rest map do not apply)")
    if rest_mask is None:
        raise InputError("dT1 is averaged inside the rest map's myocardium: give a mask (--mask: a label map or "
                         ".seg.nrrd, e.g. from `cmr segment`)")
    if rest.is_sequence or stress.is_sequence:
        raise InputError("rest and stress inputs must be T1 maps (one image per slice), not frame sequences "
                         "(fit IRW series with `cmr motion` first)")
    rest_lab = np.asarray(rest_mask.array if isinstance(rest_mask, Image) else rest_mask).reshape(rest.spatial_shape)
    qc_failed = set(int(k) for k in (rest_mask.meta.get("qc_failed_slices") or [])) if isinstance(rest_mask, Image) \
        else set()
    if not _myo(rest_lab).any():
        raise InputError("the rest mask holds no myocardium (label 1)")
    check_t1_map(rest, _myo(rest_lab), "reversed-pair reference (stress)" if reverse else "rest")
    if not stress.same_geometry(rest):
        if stress.spatial_shape[1:] != rest.spatial_shape[1:] or not np.allclose(stress.spacing[:2], rest.spacing[:2]):
            notes.append(f"the stress map ({stress.spatial_shape[2]}×{stress.spatial_shape[1]} px of "
                         f"{stress.spacing[0]:.2f} mm) was resampled onto the rest grid "
                         f"({rest.spatial_shape[2]}×{rest.spatial_shape[1]} px of {rest.spacing[0]:.2f} mm)")
    idx, dist, pos_notes = match_positions(rest, stress, force)
    notes += pos_notes
    stress_lab = None
    if stress_mask is not None:
        stress_lab = np.asarray(stress_mask.array if isinstance(stress_mask, Image) else stress_mask).reshape(
            stress.spatial_shape)
    # each stress slice on the rest slice's grid (in-plane resampling through LPS; identity when equal)
    stress_on_rest, stress_lab_on_rest = [], []
    for k, j in enumerate(idx):
        one = stress.with_array(np.asarray(stress.array[j:j + 1], np.float32), is_sequence=False)
        one.origin = tuple(float(v) for v in stress.index_to_lps([0, 0, j]))
        target = rest.with_array(np.zeros((1, *rest.spatial_shape[1:]), np.float32), is_sequence=False)
        target.origin = tuple(float(v) for v in rest.index_to_lps([0, 0, k]))
        # project the stress slice onto the rest plane (the through-plane distance was checked above)
        one.origin = tuple(np.asarray(one.origin) - slice_normal(rest) * float(
            np.dot(np.asarray(one.origin) - np.asarray(target.origin), slice_normal(rest))))
        # nearest neighbour, as the warp below: a measured map keeps measured T1 values
        stress_on_rest.append(resample_to(one, target, order=0).array[0])
        if stress_lab is not None:
            lab = one.with_array(stress_lab[j:j + 1].astype(np.float32))
            stress_lab_on_rest.append(resample_to(lab, target, order=0).array[0].astype(np.int16))
    check_t1_map(stress.with_array(np.stack(stress_on_rest)), None, "rest (reversed pair)" if reverse else "stress")
    method, m_notes = choose_method(method, model_name)
    notes += m_notes
    model = entry = None
    if method in ("swin", "unet"):
        model, entry = _load_model(method, model_name, device)
    seg_arr = None
    if segments is not None:
        seg_arr = np.asarray(segments.array if isinstance(segments, Image) else segments).reshape(rest.spatial_shape)
        seg_arr = np.where(_myo(rest_lab), seg_arr, 0).astype(np.int16)
    rest_arr = np.asarray(rest.array, np.float32)
    registered = np.zeros_like(rest_arr)
    dt1 = np.zeros_like(rest_arr)
    spacing = (float(rest.spacing[0]), float(rest.spacing[1]))
    slices: list[SliceResult] = []
    for k in range(rest_arr.shape[0]):
        report(progress, "registering stress to rest", k, rest_arr.shape[0], f"slice {k + 1}")
        mov = stress_on_rest[k]
        if method == "none":
            dvf = np.zeros((2, *mov.shape), np.float32)
        elif method == "classical":
            dvf = register_classical(rest_arr[k], mov, spacing, rest_lab[k])
        else:
            dvf = register_network(model, rest_arr[k], mov, spacing, rest_lab[k])
        # the stress map is warped by picking pixels, not blending them: a bilinear blend of a
        # blood pixel (~1800 ms) with a myocardial one (~1200 ms) is a T1 no tissue has, and at
        # the ROI borders it biased slice dT1 upwards. Measured on clinical-protocol pairs kept
        # apart for it (seeds 8800–8839, the paper's exclusions, 36 pairs): slice dT1 error Swin
        # +0.31 ± 0.59 % bilinear → +0.02 ± 0.37 % nearest, classical +0.17 ± 0.68 → −0.06 ± 0.41 %;
        # then once on fresh seeds 9700–9759 (75 pairs): Swin +0.10 ± 0.62 %
        registered[k] = warp_image(mov, dvf, nearest=True)
        dt1[k] = dt1_percent(rest_arr[k], registered[k])
        myo = roi(rest_lab[k]) & (rest_arr[k] > 50.0)
        vals = dt1[k][myo]
        bad_rest, bad_stress = implausible_percent(rest_arr[k][myo]), implausible_percent(registered[k][myo])
        sr = SliceResult(k, relative_change_percent(rest_arr[k][myo], registered[k][myo]),
                         float(vals.std(ddof=1)) if vals.size > 1 else None, int(vals.size),
                         distance_mm=round(dist[k], 3), mask_qc_failed=k in qc_failed,
                         rest_implausible_percent=None if bad_rest is None else round(bad_rest, 2),
                         stress_implausible_percent=None if bad_stress is None else round(bad_stress, 2),
                         map_qc_failed=bool(vals.size) and max(bad_rest, bad_stress) > MAP_QC_MAX_PERCENT,
                         reason="" if vals.size else "no myocardium in the rest mask on this slice")
        if stress_lab_on_rest:
            s_myo = _myo(stress_lab_on_rest[k])
            sr.dice_before = _dice(_myo(rest_lab[k]), s_myo)
            sr.dice_after = _dice(_myo(rest_lab[k]), warp_image(s_myo.astype(np.uint8), dvf, nearest=True) > 0)
        slices.append(sr)
    report(progress, "registering stress to rest", rest_arr.shape[0], rest_arr.shape[0], "done")
    map_failed = [sr for sr in slices if sr.map_qc_failed]
    if map_failed:
        notes.append("map quality: " + "; ".join(
            f"slice {sr.index + 1} has {max(sr.rest_implausible_percent, sr.stress_implausible_percent):.0f} % of its "
            f"myocardial ROI more than {MAP_OUTLIER_FRACTION * 100:.0f} % off the median T1 in the "
            + ("rest map" if sr.rest_implausible_percent >= sr.stress_implausible_percent else "registered stress map")
            for sr in map_failed)
            + f" (over {MAP_QC_MAX_PERCENT:.0f} %: motion or ghosting in the breath-hold, or a failed registration): "
            "check the maps before reading these dT1 values")
    if qc_failed:
        notes.append("the myocardium mask failed QC on slice(s) " + ", ".join(str(k + 1) for k in sorted(qc_failed))
                     + ": their dT1 values are flagged and should be checked")
    seg_rows: list[dict] = []
    if seg_arr is not None and seg_arr.any():
        from ..aha import segment_stats
        inset = np.stack([roi(lab) for lab in rest_lab]) & (rest_arr > 50.0)
        seg_rows = segment_stats(dt1, seg_arr, inset)
        # the segment's value is the relative change of its mean T1, as the slice's (sd and
        # median stay those of the pixel-wise dT1)
        for row in seg_rows:
            sel = inset & (seg_arr == row["segment"])
            row["mean"] = relative_change_percent(rest_arr[sel], registered[sel])
    elif not reverse:
        notes.append("no AHA segments: give --segments (e.g. `cmr landmarks` aha_segments.nrrd) for the "
                     "per-segment table and the bull's-eye")
    for which, img in (("rest", rest), ("stress", stress)):
        if img.meta.get("fitted_from_irw"):
            notes.append(f"the {which} T1 map was fitted here from its IRW series (MOLLI / ShMOLLI fit, no motion "
                         "correction)")
    for key in ("unreadable_files",):
        for which, img in (("rest", rest), ("stress", stress)):
            if img.meta.get(key):
                notes.append(f"{which} series: {len(img.meta[key])} file(s) could not be read")
    meta = {"units": "%", "quantity": "dT1 = (T1 stress registered - T1 rest) / T1 rest x 100"}
    res = StressResult(
        method=method, model=entry.name if entry else None, model_version=entry.version if entry else None,
        model_notice=entry.notice if entry else None, reversed=reverse, slices=slices, segments=seg_rows,
        seconds=time.perf_counter() - t0, notes=notes,
        series={"rest": str(rest.meta.get("SeriesDescription", "")), "stress": str(stress.meta.get("SeriesDescription", ""))},
        registered=rest.with_array(registered, is_sequence=False),
        dt1=_with_meta(rest.with_array(dt1, is_sequence=False), meta),
        myocardium=_with_meta(rest.with_array(np.where(_myo(rest_lab), 1, 0).astype(np.uint8), is_sequence=False),
                              {"labels": {"1": "myocardium"}}),
        segment_map=rest.with_array(seg_arr, is_sequence=False) if seg_arr is not None else None,
        rest=rest)
    res.registered.meta.update({"units": "ms", "SeriesDescription": "stress T1 registered to rest"})
    return res


def _with_meta(img: Image, meta: dict) -> Image:
    img.meta = {k: v for k, v in img.meta.items() if k in ("SeriesDescription",)}
    img.meta.update(meta)
    return img


def t1_map_from_irw(irw: Image) -> Image:
    """The T1 map (ms) of one IRW (MOLLI / ShMOLLI) series by the shared fit
    (:func:`cmrlib.t1.fit.fit_irw`: ShMOLLI with conditional reconstruction), without motion
    correction — `cmr motion` first for MOCOnet-corrected maps."""
    from ..t1.fit import fit_irw, scheme_of
    frames = np.asarray(irw.frames()[:, 0], np.float32)  # one slice position: [frame, row, col]
    tis = [float(t) for t in irw.frame_values("InversionTime")]
    rr = irw.meta.get("NominalInterval")
    fit = fit_irw(frames, tis, scheme_of(irw.meta, frames.shape[0]), rr_ms=float(rr) if rr else None,
                  rr_source="NominalInterval" if rr else "")
    img = irw.with_array(np.clip(fit.t1, 0.0, 5000.0)[None].astype(np.float32), is_sequence=False)
    img.meta = {k: v for k, v in irw.meta.items() if k in ("SeriesDescription", "condition", "position",
                                                               "SliceThickness", "unreadable_files")}
    img.meta.update(kind="t1map", units="ms", fitted_from_irw=True)
    return img


# ---- finding rest / stress pairs ------------------------------------------------------------------
_STRESS_WORDS = ("stress", "adenosine", "regadenoson", "dipyridamole", "dobutamine", "vasodilat")
_POST_WORDS = ("post", "gd", "contrast", "+c", "enhanced")


def condition_of(description: str, meta: dict | None = None) -> str | None:
    """'stress', 'rest' or None (post-contrast or unknown) from a series description (and the
    phantom's ``condition`` meta)."""
    cond = (meta or {}).get("condition")
    if cond in ("stress",):
        return "stress"
    if cond in ("native", "rest"):
        return "rest"
    if cond == "post":
        return None
    low = description.lower()
    if any(w in low for w in _STRESS_WORDS):
        return "stress"
    words = low.replace("_", " ").replace("-", " ").split()
    if any(w in words for w in _POST_WORDS) or "post" in low:
        return None
    return "rest"


def pair_maps(maps: list[tuple[str, Image, Any]]) -> list[tuple[tuple[str, Image, Any], tuple[str, Image, Any]]]:
    """(rest, stress) pairs among ``maps`` [(name, Image, key)]: same plane orientation, slice
    centres within half a slice thickness through-plane; each map used once."""
    rests = [m for m in maps if condition_of(m[0], m[1].meta) == "rest"]
    stresses = [m for m in maps if condition_of(m[0], m[1].meta) == "stress"]
    pairs, used = [], set()
    for r in rests:
        thick = float(r[1].meta.get("SliceThickness") or r[1].spacing[2] or 8.0)
        best, best_d = None, None
        for i, s in enumerate(stresses):
            if i in used or plane_angle_deg(r[1], s[1]) > PLANE_TOLERANCE_DEG:
                continue
            d = float(np.min(nearest_slices(r[1], s[1])[1]))
            if d <= thick / 2 and (best_d is None or d < best_d):
                best, best_d = i, d
        if best is not None:
            used.add(best)
            pairs.append((r, stresses[best]))
    return pairs


def run_step(context) -> Any:
    """`cmr run` step: dT1 for every rest / stress T1 map pair of the study at the same slice
    position — the scanner's T1 maps, else CMRMotion's maps fitted from the IRW series — with
    the QCD mask of the rest map (else the phantom's truth) and its AHA segments when the
    landmarks step made them."""
    from ..contract import StepResult
    from ..errors import NotApplicableError
    from ..io import load_series, read_image
    from ..phantom.truth import find_phantom_mask
    from .outputs import write_result
    masks = context.results.get("myocardium_mask") or {}
    segments = context.results.get("aha_segments") or {}
    scanner = [(s.description, load_series(s), s) for s in context.series("t1map")]
    fitted = []
    by_desc = {s.description: s for s in context.series("irw")}
    for desc, path in (context.results.get("t1_map") or {}).items():
        img = read_image(path)
        img.meta.setdefault("kind", "t1map")
        series = by_desc.get(desc)
        if series is not None:
            img.meta.setdefault("SeriesDescription", desc)
        fitted.append((f"{desc} (fitted)", img, series))
    pairs = pair_maps(scanner)
    source = "scanner T1 maps"
    if not pairs:
        pairs, source = pair_maps(fitted), "T1 maps fitted from the IRW series (CMRMotion)"
    if not pairs:
        found = ", ".join(f"{n!r} ({condition_of(n, im.meta) or 'post/unknown'})" for n, im, _ in scanner + fitted)
        raise NotApplicableError("no rest and stress T1 maps of the same slice position in this study "
                                f"(T1 maps: {found or 'none'})")
    out = context.folder("stress")
    results, lines, notes = [], [], []
    for k, ((rname, rimg, rser), (sname, simg, sser)) in enumerate(pairs):
        def mask_of(series, img):
            if series is not None and series.series_uid in masks:
                return masks[series.series_uid], "QCD"
            if series is not None:
                truth = find_phantom_mask(series, context.scan.root)
                if truth is not None:
                    from ..io.masks import load_label_map
                    return load_label_map(truth, img), "phantom truth"
            return None, None
        rmask, rsource = mask_of(rser, rimg)
        smask, _ = mask_of(sser, simg)
        if rmask is None:
            notes.append(f"{rname}: no myocardium mask for the rest map (no QCD result, no phantom truth): "
                         "no dT1 for this pair")
            continue
        seg = None
        if rser is not None and rser.series_uid in segments:
            seg = read_image(segments[rser.series_uid])
        name = f"{rname} / {sname}"
        result = stress_t1(rimg, simg, rest_mask=rmask, stress_mask=smask, segments=seg, device=context.device,
                           progress=context.progress)
        folder = out / f"{k + 1:02d}_{re.sub(r'[^A-Za-z0-9]+', '_', rname).strip('_')}" if len(pairs) > 1 else out
        summary = write_result(result, folder)
        summary.update(name=name, out=str(folder.relative_to(context.out_dir)), mask=rsource, source=source)
        results.append(summary)
        vals = [v for v in summary["dt1_slice_percent"] if v is not None]
        lines.append(f"{name}: dT1 {', '.join(f'{v:+.1f}' for v in vals)} % ({result.method}"
                     + (f", Dice {summary['dice_before']:.2f} → {summary['dice_after']:.2f}"
                        if summary["dice_before"] is not None else "") + ")")
        notes += [f"{name}: {n}" for n in result.notes if "QC" in n or "could not be read" in n]
    return StepResult({"pairs": results, "source": source}, lines, {"dt1_map": {r["name"]: r["out"] for r in results}},
                      notes)

"""Scar quantification of one LGE short-axis stack: %scar, myocardial and scar volume (mL).

:func:`quantify_scar` is the one computation behind `cmr scar`, `cmr run` and the Slicer
module. Methods (:data:`METHODS`):

* ``fusion`` — the LGE–cine fusion U-Net (seed 003): each LGE slice with its cine frame at the
  LGE trigger time and the nearest cine slice (:mod:`cmrlib.scar.matching`), aligned by LV
  centres; ``lge-only`` — the LGE-only U-Net. Both post-processed per the card
  (:func:`cmrlib.scar.infer.postprocess`).
* ``nsd2`` / ``nsd3`` / ``nsd5`` / ``fwhm`` — the classical thresholds inside a myocardium
  mask (:mod:`cmrlib.scar.classical`).

%scar = scar volume / LV myocardial volume × 100; volumes = pixels × pixel area × slice
spacing; scar present when %scar > 1 %. Every other method that can run on the same input is
computed too (``methods``), so one table compares them; the classical ones use the given
mask, else the chosen network's myocardium (said in the table).
"""
from __future__ import annotations

import re
import time
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from ..errors import InputError
from ..image import Image
from ..progress import ProgressCallback, report
from . import infer
from .classical import CLASSICAL_METHODS, NO_GATE, classical_scar, gate_scar
from .matching import (Matching, SliceMatch, centre_from_mask, cine_frame, cine_motion_map, detect_lv_centre,
                       lps_to_px, match_series, px_to_lps, regularise_centres)

from .methods import METHOD_TITLES, METHODS, MODEL_NAMES, NETWORK_METHODS  # noqa: F401 (re-exported)

TRAINER = "scar"
SCAR_PRESENT_PERCENT = 1.0


@dataclass
class SliceScar:
    """One LGE slice's answer (volumes in mL, %scar of its own myocardium)."""

    index: int
    status: str  # segmented | no myocardium | not segmented
    reason: str = ""
    level: str | None = None
    myocardium_ml: float | None = None
    scar_ml: float | None = None
    percent_scar: float | None = None
    cine: dict | None = None  # the match: cine slice / frame, distance (mm), trigger times (ms)
    lv_centre_lge_px: list | None = None  # (col, row)
    lv_centre_cine_px: list | None = None
    centre_source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        for k in ("myocardium_ml", "scar_ml", "percent_scar"):
            if d[k] is not None:
                d[k] = round(float(d[k]), 4)
        for k in ("lv_centre_lge_px", "lv_centre_cine_px"):
            if d[k] is not None:
                d[k] = [round(float(v), 2) for v in d[k]]
        return d


@dataclass
class MethodSummary:
    """One method's totals on this stack."""

    method: str
    percent_scar: float | None
    myocardial_volume_ml: float | None
    scar_volume_ml: float | None
    slices_segmented: int
    per_slice_percent: list[float | None]
    myocardium: str  # where its myocardium came from

    @property
    def scar_present(self) -> bool | None:
        return None if self.percent_scar is None else bool(self.percent_scar > SCAR_PRESENT_PERCENT)

    def to_dict(self) -> dict[str, Any]:
        r = (lambda v: None if v is None else round(float(v), 4))
        return {"method": self.method, "title": METHOD_TITLES[self.method], "percent_scar": r(self.percent_scar),
                "myocardial_volume_ml": r(self.myocardial_volume_ml), "scar_volume_ml": r(self.scar_volume_ml),
                "scar_present": self.scar_present, "slices_segmented": self.slices_segmented,
                "per_slice_percent": [r(v) for v in self.per_slice_percent], "myocardium": self.myocardium}


@dataclass
class ScarResult:
    method: str
    lge: Image
    labels: Image  # 0 background, 1 normal myocardium, 2 scar on the LGE grid
    slices: list[SliceScar]
    methods: list[MethodSummary]
    segments: list[dict] = field(default_factory=list)  # per AHA segment: id, percent_scar, myocardium_ml, scar_ml
    segment_map: Image | None = None
    matching: Matching | None = None
    cine_aligned: np.ndarray | None = None  # matched cine frames on the LGE grid, aligned ([slice, row, col])
    model: str | None = None
    model_version: str | None = None
    model_notice: str | None = None
    seconds: float = 0.0
    timing: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    dilate_px: dict[str, int] = field(default_factory=dict)  # network method → post-processing dilation used
    scar_logit_offset: dict[str, float] = field(default_factory=dict)  # network method → its decision's offset
    scar_gate_sd: dict[str, float | None] = field(default_factory=dict)  # network method → intensity gate (sd)

    @property
    def primary(self) -> MethodSummary:
        return next(m for m in self.methods if m.method == self.method)

    @property
    def complete(self) -> bool:
        """False when a slice that should have been quantified was not (no cine match, mask QC)."""
        return not any(s.status == "not segmented" for s in self.slices)

    def to_dict(self) -> dict[str, Any]:
        p = self.primary.to_dict()
        return {
            "method": self.method, "percent_scar": p["percent_scar"], "myocardial_volume_ml": p["myocardial_volume_ml"],
            "scar_volume_ml": p["scar_volume_ml"], "scar_present": p["scar_present"],
            "scar_present_threshold_percent": SCAR_PRESENT_PERCENT,
            "slices_segmented": p["slices_segmented"], "slices_total": len(self.slices), "complete": self.complete,
            "series": self.lge.meta.get("SeriesDescription", ""),
            "model": {"name": self.model, "version": self.model_version, "notice": self.model_notice},
            "seconds": round(self.seconds, 3), "timing": {k: round(v, 5) for k, v in self.timing.items()},
            "postprocess_dilate_px": dict(self.dilate_px), "scar_logit_offset": dict(self.scar_logit_offset),
            "scar_gate_sd": dict(self.scar_gate_sd),
            "slices": [s.to_dict() for s in self.slices], "methods": [m.to_dict() for m in self.methods],
            "segments": self.segments, "matching": self.matching.to_dict() if self.matching else None,
            "notes": list(self.notes),
        }


# ---- checks ---------------------------------------------------------------------------------------
def check_lge(lge: Image, force: bool = False) -> np.ndarray:
    """The LGE volume ``[slice, row, col]`` (float32); InputError for what cannot be quantified."""
    kind = lge.meta.get("kind")
    if kind and kind not in ("lge_psir", "lge_magnitude", "lge"):
        raise InputError(f"the LGE input is a {kind} series, not a short-axis LGE stack")
    if lge.is_sequence:
        raise InputError("the LGE input is a series of frames, not a short-axis LGE volume")
    arr = np.asarray(lge.array, np.float32)
    if not np.isfinite(arr).all():
        raise InputError("the LGE has non-finite pixel values")
    lo, hi = np.percentile(arr, [1.0, 99.9])
    if hi - lo < 1e-3 * max(abs(hi), abs(lo), 1.0) or float(np.abs(arr).max()) < 1e-6:
        raise InputError("the LGE is all dark (no signal above the background): nothing to quantify")
    if arr.shape[0] < 2 and not force:
        raise InputError("the LGE stack has one slice: %scar and volumes need the short-axis stack covering the LV "
                         "(use --force to quantify the one slice)")
    return arr


def _mask_myocardium(mask: Image | np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, list[int]]:
    arr = np.asarray(mask.array if isinstance(mask, Image) else mask)
    if arr.shape != tuple(shape):
        raise InputError(f"the myocardium mask is {arr.shape}, not the LGE's grid {tuple(shape)}")
    failed = [int(k) for k in ((mask.meta or {}).get("qc_failed_slices") or [])] if isinstance(mask, Image) else []
    return (arr == 1) | (arr == 3), failed


def choose_method(method: str | None, have_cine: bool, have_mask: bool,
                  model_name: str | None = None) -> tuple[str, list[str]]:
    """The method to use: fusion with a cine, else LGE-only, when their weights are installed;
    else 5-SD with a mask. InputError when nothing applies."""
    from ..models.zoo import model_installed
    if method is not None:
        if method not in METHODS:
            raise InputError(f"--method must be one of {', '.join(METHODS)}; got {method!r}")
        if method == "fusion" and not have_cine:
            raise InputError("the fusion method needs the cine stack (--cine); use --method lge-only or a classical "
                             "method without one")
        if method in CLASSICAL_METHODS and not have_mask:
            raise InputError(f"{method} thresholds inside a myocardium mask: give --mask (e.g. `cmr segment` "
                             "labels.nrrd), or use a network method")
        return method, []
    if model_name is not None:
        from ..models.zoo import find_model
        entry = find_model(model_name) if model_installed(model_name) else None
        if entry is None:
            raise InputError(f"--model {model_name}: no such model installed (see `cmr models list`)")
        inputs = (entry.arch_args or {}).get("inputs", "fusion")
        if inputs == "fusion" and not have_cine:
            raise InputError(f"--model {model_name} is a fusion network: it needs the cine stack (--cine)")
        return ("fusion" if inputs == "fusion" else "lge-only"), []
    for m in (("fusion",) if have_cine else ()) + ("lge-only",):
        if model_installed(MODEL_NAMES[m]):
            notes = ["no fusion weights installed: LGE-only U-Net used"] if m == "lge-only" and have_cine else []
            return m, notes
    if have_mask:
        return "nsd5", ["no scar U-Net weights installed: 5-SD threshold inside the given myocardium used"]
    raise InputError("no scar U-Net weights are installed and no myocardium mask was given: train them with "
                     "`cmr train scar`, or give --mask for the classical methods")


# ---- quantities --------------------------------------------------------------------------------------
def voxel_ml(lge: Image) -> float:
    """One voxel's volume (mL): pixel area × slice spacing (mm³ / 1000)."""
    return float(lge.spacing[0] * lge.spacing[1] * lge.spacing[2]) / 1000.0


def summarise(method: str, myo: np.ndarray, scar: np.ndarray, counted: list[bool], vox_ml: float,
              source: str) -> MethodSummary:
    """Totals of boolean ``myo`` (scar included) and ``scar`` masks over the ``counted`` slices."""
    per, myo_ml, scar_ml, n = [], 0.0, 0.0, 0
    for k in range(myo.shape[0]):
        m = int(myo[k].sum())
        if not counted[k] or m == 0:
            per.append(None)
            continue
        s = int((scar[k] & myo[k]).sum())
        per.append(100.0 * s / m)
        myo_ml += m * vox_ml
        scar_ml += s * vox_ml
        n += 1
    if n == 0:
        return MethodSummary(method, None, None, None, 0, per, source)
    return MethodSummary(method, 100.0 * scar_ml / myo_ml, myo_ml, scar_ml, n, per, source)


def segment_burden(labels: np.ndarray, segments: np.ndarray, vox_ml: float) -> list[dict]:
    """%scar per AHA segment; myocardium pixels outside the segment map take the nearest segment."""
    out: dict[int, list[float]] = {}
    for k in range(labels.shape[0]):
        seg = np.asarray(segments[k]).astype(np.int16)
        myo = labels[k] > 0
        if not myo.any() or not (seg > 0).any():
            continue
        idx = ndimage.distance_transform_edt(seg == 0, return_distances=False, return_indices=True)
        filled = seg[tuple(idx)]
        for s in np.unique(filled[myo]):
            sel = myo & (filled == s)
            acc = out.setdefault(int(s), [0.0, 0.0])
            acc[0] += float(sel.sum())
            acc[1] += float((sel & (labels[k] == infer.OUT_SCAR)).sum())
    return [{"segment": s, "percent_scar": round(100.0 * v[1] / v[0], 3), "myocardium_ml": round(v[0] * vox_ml, 4),
             "scar_ml": round(v[1] * vox_ml, 4)} for s, v in sorted(out.items()) if v[0] > 0]


#: LV myocardial volume (mL) outside which a result is flagged for review (adult hearts ~60–250 mL)
PLAUSIBLE_MYOCARDIUM_ML = (30.0, 400.0)
#: the two networks' %scar (points) and volume ratio beyond which they "disagree"
DISAGREE_PERCENT_POINTS, DISAGREE_VOLUME_RATIO = 5.0, 1.4


def plausibility_notes(summaries: list[MethodSummary], chosen: str) -> list[str]:
    """Review flags a reader must see: an implausible myocardial volume, and the fusion and
    LGE-only networks disagreeing (one of them cannot read this image)."""
    by = {m.method: m for m in summaries}
    notes = []
    p = by.get(chosen)
    if p is not None and p.myocardial_volume_ml is not None and p.slices_segmented >= 3:
        lo, hi = PLAUSIBLE_MYOCARDIUM_ML
        if not lo <= p.myocardial_volume_ml <= hi:
            notes.append(f"review: LV myocardial volume {p.myocardial_volume_ml:.0f} mL is outside {lo:.0f}–{hi:.0f} mL")
    f, g = by.get("fusion"), by.get("lge-only")
    if f is not None and g is not None and f.percent_scar is not None and g.percent_scar is not None:
        ratio = max(f.myocardial_volume_ml, g.myocardial_volume_ml) / max(min(f.myocardial_volume_ml,
                                                                              g.myocardial_volume_ml), 1e-6)
        if abs(f.percent_scar - g.percent_scar) > DISAGREE_PERCENT_POINTS or ratio > DISAGREE_VOLUME_RATIO:
            notes.append(f"review: the fusion and LGE-only networks disagree (%scar {f.percent_scar:.1f} vs "
                         f"{g.percent_scar:.1f} %, myocardium {f.myocardial_volume_ml:.0f} vs "
                         f"{g.myocardial_volume_ml:.0f} mL)")
    return notes


def _levels(lge: Image, has_myo: list[bool]) -> list[str | None]:
    from ..aha import long_axis_positions, slice_levels
    idx = [k for k, h in enumerate(has_myo) if h]
    if len(idx) < 2:
        return [None] * len(has_myo)
    pos = long_axis_positions(lge)
    lv = slice_levels([pos[k] for k in idx])
    out: list[str | None] = [None] * len(has_myo)
    for k, level in zip(idx, lv):
        out[k] = level
    return out


# ---- LV centres -----------------------------------------------------------------------------------
def _centres(lge: Image, lge_arr: np.ndarray, cine: Image | None, matching: Matching | None,
             mask_myo: np.ndarray | None, given: dict | None, notes: list[str]):
    """LV centres (col, row) px per LGE slice and per matched cine slice, and their source."""
    n = lge_arr.shape[0]
    given = given or {}
    sp = lge.spacing
    cine_c: list[np.ndarray | None] = [None] * n
    if cine is not None and matching is not None:
        for m in matching.slices:
            if m.cine_slice is None:
                continue
            k = m.lge_slice
            if given.get("cine", {}).get(k) is not None:
                cine_c[k] = np.asarray(given["cine"][k], float)
                continue
            cine_c[k] = detect_lv_centre(cine_frame(cine, m), cine.spacing, motion=cine_motion_map(cine, m.cine_slice))
        auto = [k for k in range(n) if cine_c[k] is not None and given.get("cine", {}).get(k) is None]
        fixed, replaced = regularise_centres([cine_c[k] if k in auto else None for k in range(n)], cine.spacing)
        for k in auto:
            cine_c[k] = fixed[k]
        if replaced:
            notes.append("cine LV centre detection disagreed with the stack on slice(s) "
                         f"{', '.join(str(k + 1) for k in replaced if k in auto)}: the stack's median used")
    lge_c: list[np.ndarray | None] = [None] * n
    source: list[str] = [""] * n
    for k in range(n):
        if given.get("lge", {}).get(k) is not None:
            lge_c[k], source[k] = np.asarray(given["lge"][k], float), "user"
        elif given.get("landmarks", {}).get(k) is not None:
            lge_c[k], source[k] = np.asarray(given["landmarks"][k], float), "landmarks"
        elif mask_myo is not None and mask_myo[k].sum() >= 5:
            lge_c[k], source[k] = centre_from_mask(mask_myo[k].astype(np.uint8)), "mask"
    detect = [k for k in range(n) if lge_c[k] is None]
    for k in detect:
        near = None
        if cine_c[k] is not None and matching is not None:
            m = matching.slices[k]
            near = lps_to_px(lge, px_to_lps(cine, cine_c[k], m.cine_slice), k)
        lge_c[k], source[k] = detect_lv_centre(lge_arr[k], sp, near_px=near), "detector"
    # a detected or landmark centre far from the stack's line is replaced (the user's are kept)
    auto = [k for k in range(n) if source[k] in ("detector", "landmarks")]
    fixed, replaced = regularise_centres([lge_c[k] if k in auto else None for k in range(n)], sp)
    for k in auto:
        lge_c[k] = fixed[k]
    if [k for k in replaced if k in auto]:
        notes.append("LGE LV centres (detected or from the landmarks) disagreed with the stack on slice(s) "
                     f"{', '.join(str(k + 1) for k in replaced if k in auto)}: the stack's median used")
    return lge_c, cine_c, source


# ---- the computation ---------------------------------------------------------------------------------
def _run_network(method: str, lge: Image, lge_arr: np.ndarray, cine: Image | None, matching: Matching | None,
                 lge_c, cine_c, device, timing: dict, network=None,
                 model_name: str | None = None, dilate_px: int | None = None,
                 scar_offset: float | None = None, scar_gate_sd: float | None = None,
                 remote: np.ndarray | None = None) -> tuple[np.ndarray, list[str], Any, np.ndarray | None]:
    """Labels 0/1/2 on the LGE grid, per-slice reasons for slices not segmented, the model entry,
    and the aligned cine on the LGE grid (fusion). ``network``: a model in hand (training's
    validation) instead of the installed one. ``dilate_px``: the post-processing's final
    dilation; None: the model's calibrated one (manifest ``calibration``), else the card's.
    ``scar_offset``: the scar-logit offset of the decision; None: the model's calibrated one, else 0.
    ``scar_gate_sd``: the intensity gate (:func:`cmrlib.scar.classical.gate_scar`, sd above remote);
    None: the model's calibrated one, else none; :data:`cmrlib.scar.classical.NO_GATE`: none."""
    from ..models.zoo import load_installed
    model, entry = ((network, None) if network is not None
                    else load_installed(model_name or MODEL_NAMES[method], device, TRAINER))
    cfg = model.config
    if dilate_px is None:
        dilate_px = int(((entry.calibration if entry else None) or {}).get("postprocess_dilate_px",
                                                                           infer.CARD_DILATE_PX))
    if scar_offset is None:
        scar_offset = float(((entry.calibration if entry else None) or {}).get("scar_logit_offset", 0.0))
    timing[f"{method}_dilate_px"] = float(dilate_px)  # popped into ScarResult.dilate_px
    timing[f"{method}_scar_logit_offset"] = float(scar_offset)  # popped into ScarResult.scar_logit_offset
    if scar_gate_sd is None:
        gate = ((entry.calibration if entry else None) or {}).get("scar_gate_sd")
        scar_gate_sd = NO_GATE if gate is None else float(gate)
    timing[f"{method}_scar_gate_sd"] = float(scar_gate_sd)  # popped into ScarResult.scar_gate_sd
    n, shape = lge_arr.shape[0], lge_arr.shape[1:]
    labels = np.zeros(lge_arr.shape, np.uint8)
    reasons = [""] * n
    aligned = np.zeros(lge_arr.shape, np.float32) if method == "fusion" else None
    inputs, maps, ks = [], [], []
    for k in range(n):
        pm_l = infer.grid_map(shape, lge.spacing, lge_c[k], cfg)
        if method == "fusion":
            m = matching.slices[k]
            if m.cine_slice is None:
                reasons[k] = m.reason or "no matched cine slice"
                continue
            c2d = cine_frame(cine, m)
            pm_c = infer.grid_map(c2d.shape, cine.spacing, cine_c[k], cfg)
            x = infer.network_input(lge_arr[k], pm_l, c2d, pm_c)
            aligned[k] = pm_l.sample_back(pm_c.sample(c2d), shape)
        else:
            x = infer.network_input(lge_arr[k], pm_l)
        inputs.append(x)
        maps.append(pm_l)
        ks.append(k)
    t0 = time.perf_counter()
    classes = (infer.predict(model, np.stack(inputs), device, scar_logit_offset=scar_offset) if inputs
               else np.zeros((0,), np.uint8))
    t1 = time.perf_counter()
    for cls, pm, k in zip(classes, maps, ks):
        labels[k] = infer.labels_to_lge(infer.postprocess(cls, cfg.pixel_mm, dilate_px), pm, shape)
    labels = gate_scar(labels, lge_arr, scar_gate_sd, remote, list(lge_c), infer.OUT_SCAR, infer.OUT_MYOCARDIUM)
    t2 = time.perf_counter()
    if ks:
        timing[f"{method}_inference_s_per_slice"] = (t1 - t0) / len(ks)
        timing[f"{method}_postprocess_s_per_slice"] = (t2 - t1) / len(ks)
    return labels, reasons, entry, aligned


def quantify_scar(lge: Image, cine: Image | None = None, *, method: str | None = None,
                  mask: Image | np.ndarray | None = None, mask_source: str = "given mask",
                  segments: Image | np.ndarray | None = None, centres: dict | None = None,
                  remote: np.ndarray | None = None, force: bool = False, compare: bool = True,
                  device=None, progress: ProgressCallback | None = None, networks: dict | None = None,
                  model_name: str | None = None, dilate_px: int | None = None,
                  scar_offset: float | None = None, scar_gate_sd: float | None = None) -> ScarResult:
    """%scar, volumes and labels of one LGE stack (see the module docstring).

    ``mask``: label map on the LGE grid (1 myocardium, 3 scar counted as myocardium; Image meta
    ``qc_failed_slices`` excludes those slices from the classical methods). ``centres``: LV centre
    overrides ``{"lge": {slice: (col, row)}, "cine": {slice: (col, row)}, "landmarks": {…}}`` in
    pixels of each image. ``remote``: the user's remote-myocardium mask (n-SD). ``networks``:
    method → a model in hand, used instead of the installed weights (training, benchmarks).
    ``model_name``: an installed scar model used for the network method (its inputs decide
    fusion or LGE-only), e.g. one trained on a site's own data. ``dilate_px``: the final
    myocardial dilation of the post-processing (pixels of the network grid); default the model's
    calibrated value (the card: 1). ``scar_offset``: the scar-logit offset of the networks'
    decision; default the model's calibrated value (0 without one). ``scar_gate_sd``: the networks'
    intensity gate, scar kept only above remote + this many sd; default the model's calibrated
    value (no gate without one; :data:`cmrlib.scar.classical.NO_GATE`: none).
    """
    t_start = time.perf_counter()
    notes: list[str] = []
    lge_arr = check_lge(lge, force)
    n = lge_arr.shape[0]
    mask_myo, failed = (None, [])
    if mask is not None:
        mask_myo, failed = _mask_myocardium(mask, lge_arr.shape)
        if not mask_myo.any():
            raise InputError("the myocardium mask has no myocardium on the LGE grid")
    if remote is not None and np.asarray(remote).shape != lge_arr.shape:
        raise InputError(f"the remote-myocardium mask is {np.asarray(remote).shape}, not the LGE's grid {lge_arr.shape}")
    networks = networks or {}
    if method in networks:
        chosen, method_notes = method, []
    else:
        if model_name is not None and method in CLASSICAL_METHODS:
            raise InputError(f"--model names a network; --method {method} is a classical threshold")
        chosen, method_notes = choose_method(None if model_name else method, cine is not None, mask is not None,
                                             model_name)
        if model_name is not None and method is not None and method != chosen:
            raise InputError(f"--model {model_name} is a {chosen} network, not {method}")
    notes += method_notes
    matching = None
    if cine is not None:
        matching = match_series(lge, cine, force=force)
        notes += matching.notes
    report(progress, "scar", 0, 3, "LV centres")
    lge_c, cine_c, c_source = _centres(lge, lge_arr, cine, matching, mask_myo, centres, notes)
    vox = voxel_ml(lge)
    timing: dict[str, float] = {}
    runnable = [chosen]
    if compare:
        from ..models.zoo import model_installed
        runnable += [m for m in NETWORK_METHODS if m != chosen and (m in networks or model_installed(MODEL_NAMES[m]))
                     and (m != "fusion" or cine is not None)]
    report(progress, "scar", 1, 3, "segmentation")
    net_labels: dict[str, tuple[np.ndarray, list[str]]] = {}
    entry, aligned = None, None
    for m in [r for r in runnable if r in NETWORK_METHODS]:
        lab, reasons, e, al = _run_network(m, lge, lge_arr, cine, matching, lge_c, cine_c, device, timing,
                                           networks.get(m), model_name if m == chosen else None, dilate_px,
                                           scar_offset, scar_gate_sd, remote)
        net_labels[m] = (lab, reasons)
        if m == chosen:
            entry = e
        if al is not None:
            aligned = al
    # classical methods: the given mask, else the chosen network's myocardium
    if mask_myo is not None:
        class_myo, class_source, class_skip = mask_myo, mask_source, set(failed)
    elif chosen in net_labels:
        class_myo, class_source, class_skip = net_labels[chosen][0] > 0, f"{chosen} myocardium", set()
    else:
        class_myo, class_source, class_skip = None, "", set()
    summaries: list[MethodSummary] = []
    primary_labels = None
    primary_reasons = [""] * n
    for m in METHODS:
        if m in net_labels:
            lab, reasons = net_labels[m]
            s = summarise(m, lab > 0, lab == infer.OUT_SCAR, [not r for r in reasons], vox, "network")
        elif m in CLASSICAL_METHODS and class_myo is not None and (compare or m == chosen):
            t0 = time.perf_counter()
            scar = classical_scar(m, lge_arr, class_myo, remote, lge_c)
            timing[f"{m}_s_per_slice"] = (time.perf_counter() - t0) / n
            counted = [k not in class_skip for k in range(n)]
            lab = np.where(class_myo, infer.OUT_MYOCARDIUM, 0).astype(np.uint8)
            lab[scar & class_myo] = infer.OUT_SCAR
            for k in class_skip:
                lab[k] = 0
            reasons = [("the myocardium mask failed QC on this slice" if k in class_skip else "") for k in range(n)]
            s = summarise(m, class_myo, scar, counted, vox, class_source)
        else:
            continue
        summaries.append(s)
        if m == chosen:
            primary_labels, primary_reasons = lab, reasons
    if primary_labels is None:
        raise InputError(f"the {chosen} method could not run on this input")
    if failed and chosen in CLASSICAL_METHODS:
        notes.append("the myocardium mask failed QC on slice(s) " + ", ".join(str(k + 1) for k in failed)
                     + ": not quantified — the totals cover the other slices only")
    has_myo = [bool(primary_labels[k].any()) for k in range(n)]
    levels = _levels(lge, has_myo)
    slices = []
    for k in range(n):
        match = matching.slices[k].to_dict() if matching is not None else None
        common = dict(level=levels[k], cine=match, lv_centre_lge_px=None if lge_c[k] is None else list(lge_c[k]),
                      lv_centre_cine_px=None if cine_c[k] is None else list(cine_c[k]), centre_source=c_source[k])
        if primary_reasons[k]:
            slices.append(SliceScar(k, "not segmented", primary_reasons[k], **common))
        elif not has_myo[k]:
            slices.append(SliceScar(k, "no myocardium", "no LV myocardium found on this slice", **common))
        else:
            myo_px = int((primary_labels[k] > 0).sum())
            scar_px = int((primary_labels[k] == infer.OUT_SCAR).sum())
            slices.append(SliceScar(k, "segmented", "", myocardium_ml=myo_px * vox, scar_ml=scar_px * vox,
                                    percent_scar=100.0 * scar_px / myo_px, **common))
    if not any(has_myo):
        notes.append(f"the {METHOD_TITLES[chosen]} found no LV myocardium on any slice: no %scar "
                     "(is this a short-axis LGE stack of the heart?)")
    notes += plausibility_notes(summaries, chosen)
    seg_list, seg_img = [], None
    if segments is not None:
        seg_arr = np.asarray(segments.array if isinstance(segments, Image) else segments)
        if seg_arr.shape != lge_arr.shape:
            raise InputError(f"the AHA segment map is {seg_arr.shape}, not the LGE's grid {lge_arr.shape}")
        seg_list = segment_burden(primary_labels, seg_arr, vox)
        seg_img = lge.with_array(seg_arr.astype(np.int16), is_sequence=False)
    report(progress, "scar", 3, 3, "done")
    labels_img = lge.with_array(primary_labels, is_sequence=False)
    labels_img.meta = {"labels": {"0": "background", "1": "normal myocardium", "2": "scar"}, "method": chosen,
                       "SeriesDescription": f"{lge.meta.get('SeriesDescription', 'LGE')} scar ({chosen})"}
    from ..io import unreadable_notes
    notes += unreadable_notes(lge, "the scar quantification")
    dilation = {k[: -len("_dilate_px")]: int(timing.pop(k)) for k in list(timing) if k.endswith("_dilate_px")}
    offsets = {k[: -len("_scar_logit_offset")]: float(timing.pop(k)) for k in list(timing)
               if k.endswith("_scar_logit_offset")}
    gates = {k[: -len("_scar_gate_sd")]: (None if timing[k] == NO_GATE else float(timing[k])) for k in list(timing)
             if k.endswith("_scar_gate_sd")}
    for k in [k for k in timing if k.endswith("_scar_gate_sd")]:
        timing.pop(k)
    result = ScarResult(chosen, lge, labels_img, slices, summaries, seg_list, seg_img, matching, aligned,
                        entry.name if entry else None, entry.version if entry else None,
                        entry.notice if entry else None, 0.0, timing, notes, dilation, offsets, gates)
    if not result.complete:
        missing = [s.index + 1 for s in slices if s.status == "not segmented"]
        notes.append(f"partial: slice(s) {', '.join(map(str, missing))} not quantified — %scar and volumes cover "
                     f"{result.primary.slices_segmented} of {n} slices")
    result.seconds = time.perf_counter() - t_start
    return result


# ---- cmr run -------------------------------------------------------------------------------------
def _landmark_centres(path, lge: Image) -> dict[int, tuple[float, float]]:
    """LV centres (col, row) px per slice from the landmarks capability's landmarks.json."""
    import json
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    out = {}
    for s in data.get("slices", []):
        c = s.get("lv_centre_px")
        if c is not None and s.get("index") is not None:
            out[int(s["index"])] = (float(c[0]), float(c[1]))
    return out


def run_step(context) -> Any:
    """`cmr run` step: scar on every short-axis LGE stack (PSIR preferred over magnitude of the same
    acquisition), with the cine of the study when there is one, the QCD mask (else the phantom's
    truth) for the classical methods, LV centres and AHA segments from the landmarks step."""
    from ..contract import StepResult
    from ..errors import NotApplicableError
    from ..io import load_series
    from ..phantom.truth import find_phantom_mask
    from .outputs import write_result
    lges = context.series("lge_psir") or context.series("lge_magnitude")
    if not lges:
        raise NotApplicableError("no short-axis LGE series in this study")
    cines = context.series("cine")
    masks = context.results.get("myocardium_mask") or {}
    segments = context.results.get("aha_segments") or {}
    landmarks = context.results.get("landmarks") or {}
    out = context.folder("scar")
    cine_img = load_series(cines[0]) if cines else None
    results, lines, notes, skipped = [], [], [], []
    for i, series in enumerate(lges):
        lge = load_series(series)
        mask, source = None, ""
        if series.series_uid in masks:
            mask, source = masks[series.series_uid], "QCD"
        else:
            truth = find_phantom_mask(series, context.scan.root)
            if truth is not None:
                from ..io.masks import load_label_map
                mask, source = lge.with_array(load_label_map(truth, lge), is_sequence=False), "phantom truth"
                mask.meta = {}
        seg = None
        if series.series_uid in segments:
            from ..io import read_image
            seg = read_image(segments[series.series_uid])
        centres = {"landmarks": _landmark_centres(landmarks[series.series_uid], lge)} if series.series_uid in landmarks else None
        if mask is not None and not np.isin(np.asarray(mask.array), (1, 3)).any():
            mask, source = None, ""  # QCD found no myocardium: the classical methods have no region
        kwargs = dict(mask=mask, mask_source=source or "given mask", segments=seg, centres=centres,
                      device=context.device, progress=context.progress)
        try:
            try:
                result = quantify_scar(lge, cine_img, **kwargs)
            except InputError as exc:
                if cine_img is None:
                    raise
                notes.append(f"{series.description}: the cine could not be used ({exc}); without it")
                result = quantify_scar(lge, None, **kwargs)
        except InputError as exc:
            skipped.append(f"{series.description}: {exc}")
            continue
        folder = out / f"{i + 1:02d}_{re.sub(r'[^A-Za-z0-9]+', '_', series.description).strip('_')}" if len(lges) > 1 else out
        summary = write_result(result, folder)
        summary.update(out=str(folder.relative_to(context.out_dir)), mask=source or None,
                       cine=cines[0].description if cines else None)
        results.append(summary)
        pct, vol = summary["percent_scar"], summary["myocardial_volume_ml"]
        lines.append(f"{series.description}: %scar {'–' if pct is None else format(pct, '.1f')} % "
                     f"({METHOD_TITLES[result.method]}), myocardium {'–' if vol is None else format(vol, '.0f')} mL, "
                     f"scar {'present' if summary['scar_present'] else 'absent'}; "
                     f"{summary['slices_segmented']}/{summary['slices_total']} slices")
        notes += [f"{series.description}: {n}" for n in result.notes if "partial" in n or "could not be read" in n]
    if not results:
        raise NotApplicableError("no LGE stack could be quantified: " + "; ".join(skipped))
    notes += [f"not quantified: {s}" for s in skipped]
    return StepResult({"series": results}, lines, {"scar": {r["series"]: r["out"] for r in results}}, notes)

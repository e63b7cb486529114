"""CMRMotion pipeline: IRW frames → (motion correction) → T1, R² maps and DVFs.

``correct_and_map`` (one IRW image → :class:`MotionResult`) is the single computation that
`cmr motion`, `cmr run` (:func:`run_step`) and the Slicer worker call; :func:`process_input`
applies it to a folder or file and writes each result with :mod:`cmrlib.motion.outputs`.
Methods: ``moconet`` (bundled phantom-trained compact network), ``classical`` (model-driven
B-spline registration, :mod:`cmrlib.motion.registration`) or ``none`` (fit only).
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..image import Image
from ..progress import ProgressCallback, report
from . import METHODS
from ..t1.fit import FIT_METHOD, MIN_FRAMES, fit_irw, scheme_of, validate_inversion_times
from ..t1.sequence import recovery_warning
from .outputs import write_result

MOCONET_MODEL = "moconet-compact"


@dataclass
class MotionResult:
    """Outputs on the input grid. ``dvf`` is ``[frame, (slice,) 2, row, col]`` in pixels."""

    method: str
    corrected: Image  # sequence, frames ordered by TI
    t1: Image  # ms
    r2: Image
    valid: np.ndarray
    dvf: np.ndarray
    inversion_times_ms: list[float]
    seconds: float
    t1_myocardium_ms: float | None = None
    r2_myocardium_mean: float | None = None
    r2_before: Image | None = None  # R² of the fit to the uncorrected frames (before / after view)
    r2_myocardium_mean_before: float | None = None
    notes: list[str] = field(default_factory=list)
    scheme: str = ""  # sampling scheme (classifier subtype / phantom), "" when unknown
    rr_ms: float | None = None  # R-R interval (ms) of the acquisition
    rr_source: str = ""  # the DICOM tag it came from, or how it was inferred
    fit: str = FIT_METHOD  # the T1 fit used (ShMOLLI: conditional reconstruction)
    conditional: dict | None = None  # ShMOLLI: pixels fitted with 5 / 6 / 7 samples, R-R and thresholds used
    scanner_maps: list[dict] = field(default_factory=list)  # median difference to the scanner's own T1 map(s)
    warnings: list[str] = field(default_factory=list)  # e.g. an R-R too short for the scheme's recovery

    @property
    def heart_rate_bpm(self) -> float | None:
        return round(60000.0 / self.rr_ms, 1) if self.rr_ms else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method, "n_frames": len(self.inversion_times_ms),
            "inversion_times_ms": self.inversion_times_ms, "t1_myocardium_ms": self.t1_myocardium_ms,
            "r2_myocardium_mean": self.r2_myocardium_mean,
            "r2_myocardium_mean_before_correction": self.r2_myocardium_mean_before,
            "seconds": round(self.seconds, 4),
            "valid_pixels": int(self.valid.sum()), "fit": self.fit, "notes": self.notes,
            "scheme": self.scheme, "heart_rate_bpm": self.heart_rate_bpm, "rr_ms": self.rr_ms,
            "rr_source": self.rr_source, "conditional_reconstruction": self.conditional,
            "scanner_t1_maps": self.scanner_maps, "warnings": self.warnings,
        }


def check_irw(image: Image) -> list[float]:
    """Inversion times (ms) of an IRW sequence, or InputError saying what was passed instead."""
    kind = image.meta.get("kind")
    if not image.is_sequence:
        what = "a T1 map" if kind == "t1map" else f"a single-frame volume ({kind or 'no kind'})"
        raise InputError(f"expected IRW frames (a sequence with an InversionTime per frame); got {what}")
    if kind not in (None, "irw"):
        raise InputError(f"expected IRW frames; got a {kind} series ({image.meta.get('SeriesDescription', '')!r})")
    if image.n_frames < MIN_FRAMES:
        raise InputError(f"T1 mapping needs at least {MIN_FRAMES} IRW frames; this series has {image.n_frames}")
    tis = validate_inversion_times(image.frame_values("InversionTime"), image.n_frames)
    frames = image.frames()
    if not np.isfinite(frames).all():
        raise InputError("IRW frames contain NaN or infinite values")
    zero = [k for k in range(image.n_frames) if not np.any(frames[k])]
    if zero:
        raise InputError(f"IRW frame(s) {zero} are all zero")
    return tis.tolist()


def moconet_installed() -> bool:
    """True when MOCOnet weights (``moconet-compact``) are in a model folder."""
    from ..models import list_models
    return any(m.name == MOCONET_MODEL for m in list_models())


def _moconet_correct(frames: np.ndarray, tis: list[float], device: Any) -> tuple[np.ndarray, np.ndarray]:
    from ..models import load_model
    from .moconet_infer import correct_frames
    model, _ = load_model(MOCONET_MODEL, device=device)  # cached per (name, device) in the process
    return correct_frames(model, frames, tis)


def correct_and_map(irw: Image, method: str = "moconet", *, mask: np.ndarray | None = None,
                    device: str | None = None, progress: ProgressCallback | None = None,
                    all_samples: bool = False) -> MotionResult:
    """Motion-correct the IRW sequence (per slice) and fit T1 / R² maps.

    ShMOLLI (7 frames) is fitted with conditional reconstruction (5, 6 or 7 samples per pixel
    by T1 / R-R, :func:`cmrlib.t1.fit.fit_t1_shmolli`; R-R from the heart-rate tags in
    ``irw.meta['rr_ms']``, else inferred from the TI spacing) unless ``all_samples``; MOLLI
    schemes with the plain fit of all frames.

    ``mask``: optional myocardium mask on the frame grid ``[slice, row, col]`` (or
    ``[row, col]`` for one slice); when given, ``t1_myocardium_ms`` is the median T1 and
    ``r2_myocardium_mean`` the mean R² over valid mask pixels.
    """
    if method not in METHODS:
        raise InputError(f"unknown motion-correction method {method!r}; expected one of {', '.join(METHODS)}")
    tis = check_irw(irw)
    if method == "moconet" and not moconet_installed():
        from ..errors import ModelError
        raise ModelError(f"MOCOnet weights ({MOCONET_MODEL}) are not installed in this version; train them with "
                         "`cmr train moconet` (or point CMR_MODELS_DIR at a folder that has them), or use "
                         "--method classical or none")
    from ..device import pick_device
    dev = pick_device(device) if not hasattr(device, "type") else device  # one device for network and fit
    frames_all = irw.frames().astype(np.float32)  # [frame, slice, row, col]
    n, n_slices = frames_all.shape[:2]
    if mask is not None:
        mask = np.asarray(mask)
        if mask.size != int(np.prod(irw.spatial_shape)):
            raise InputError(f"mask shape {mask.shape} does not match the IRW frame grid {irw.spatial_shape}")
        mask = mask.astype(bool).reshape(irw.spatial_shape)
    order = np.argsort(tis)
    tis_sorted = [tis[k] for k in order]
    frames_all = frames_all[order]
    scheme = scheme_of(irw.meta, n)
    rr_ms = float(irw.meta["rr_ms"]) if irw.meta.get("rr_ms") else None
    rr_source = str(irw.meta.get("rr_source") or "")
    fit_kw = dict(rr_ms=rr_ms, rr_source=rr_source, all_samples=all_samples, device=dev)
    counts: dict[str, int] = {}
    conditional: dict | None = None
    fit_text = FIT_METHOD
    t0 = time.perf_counter()
    corrected = np.empty_like(frames_all)
    dvf = np.zeros((n, n_slices, 2, *frames_all.shape[2:]), np.float32)
    t1 = np.zeros(irw.spatial_shape, np.float32)
    r2 = np.zeros_like(t1)
    r2_before = np.zeros_like(t1)
    valid = np.zeros(irw.spatial_shape, bool)
    valid_before = np.zeros(irw.spatial_shape, bool)
    for s in range(n_slices):
        report(progress, f"motion ({method})", s, n_slices, f"slice {s + 1}/{n_slices}")
        frames = frames_all[:, s]
        if method == "moconet":
            corrected[:, s], dvf[:, s] = _moconet_correct(frames, tis_sorted, dev)
        elif method == "classical":
            from .registration import register_irw_classical
            corrected[:, s], dvf[:, s] = register_irw_classical(frames, tis_sorted)
        else:
            corrected[:, s] = frames
        fit = fit_irw(corrected[:, s], tis_sorted, scheme, **fit_kw)
        t1[s], r2[s], valid[s] = fit.t1, fit.r2, fit.valid
        fit_text = fit.method
        if fit.conditional:
            conditional = dict(fit.conditional)
            for k, v in fit.conditional["pixels_by_samples"].items():
                counts[k] = counts.get(k, 0) + v
        if method != "none":  # the same fit before correction: the R² before / after view
            before = fit_irw(frames, tis_sorted, scheme, **fit_kw)
            r2_before[s], valid_before[s] = before.r2, before.valid
    report(progress, f"motion ({method})", n_slices, n_slices, "done")
    seconds = time.perf_counter() - t0
    frame_meta = [dict(irw.frame_meta[k]) for k in order] if irw.frame_meta else [{"InversionTime": t} for t in tis_sorted]
    seq_array = corrected[:, 0] if irw.array.ndim == 3 else corrected
    meta = dict(irw.meta, kind="irw", motion_correction=method)
    corrected_img = Image(seq_array, irw.spacing, irw.origin, irw.direction, True, meta, frame_meta)
    map_meta = {k: v for k, v in irw.meta.items() if k in ("SeriesInstanceUID", "StudyInstanceUID", "SeriesDescription",
                                                            "MagneticFieldStrength", "PatientID")}
    t1_img = Image(t1, irw.spacing, irw.origin, irw.direction, False, dict(map_meta, kind="t1map", units="ms",
                                                                           motion_correction=method))
    r2_img = Image(r2, irw.spacing, irw.origin, irw.direction, False, dict(map_meta, kind="r2map", motion_correction=method))
    result = MotionResult(method, corrected_img, t1_img, r2_img, valid,
                          dvf[:, 0] if n_slices == 1 else dvf, tis_sorted, seconds)
    _heart_rate_and_scheme(result, irw, scheme, rr_ms, rr_source, conditional, counts, fit_text, method)
    if method != "none":
        result.r2_before = Image(r2_before, irw.spacing, irw.origin, irw.direction, False,
                                 dict(map_meta, kind="r2map", motion_correction="none"))
    if mask is not None:
        sel = mask & valid
        if sel.any():
            result.t1_myocardium_ms = float(np.median(t1[sel]))
            result.r2_myocardium_mean = float(r2[sel].mean())
            if method != "none" and (mask & valid_before).any():
                result.r2_myocardium_mean_before = float(r2_before[mask & valid_before].mean())
        else:
            result.notes.append("the myocardium mask holds no validly fitted pixel")
    if method == "moconet":
        from ..models import PHANTOM_NOTICE
        result.notes.append(f"MOCOnet: {PHANTOM_NOTICE}")
    from ..io import unreadable_notes
    result.notes.extend(unreadable_notes(irw, "the fit"))
    return result


def _heart_rate_and_scheme(result: MotionResult, irw: Image, scheme: str, rr_ms: float | None, rr_source: str,
                           conditional: dict | None, counts: dict[str, int], fit_text: str, method: str) -> None:
    """Scheme, heart rate, conditional-reconstruction reasons and warnings into ``result``."""
    result.scheme, result.fit = scheme, fit_text
    if conditional is not None:
        conditional["pixels_by_samples"] = counts
        result.conditional = conditional
        if rr_ms is None:  # inferred by the fit from the TI spacing: say which R-R was assumed
            rr_ms, rr_source = conditional["rr_ms"], conditional["rr_source"]
            result.notes.append(f"no heart-rate tags (NominalInterval / HeartRate / TriggerTime): {rr_source}")
        used = ", ".join(f"{k} samples: {v}" for k, v in sorted(counts.items()))
        result.notes.append(("ShMOLLI fitted with all 7 samples (forced); long T1 reads low" if
                             conditional.get("forced_all_samples") else
                             "ShMOLLI conditional reconstruction") + f" (pixels with {used})")
    elif rr_ms is None:
        result.notes.append("heart rate not recorded (no NominalInterval / HeartRate / TriggerTime tags)")
    result.rr_ms, result.rr_source = (round(float(rr_ms), 1) if rr_ms else None), rr_source
    if scheme and rr_ms:
        warning = recovery_warning(scheme, float(rr_ms))
        if warning:
            result.warnings.append(warning)
    if "vendor MOCO" in str(irw.meta.get("subtype", "")) and method != "none":
        result.warnings.append("this series is already motion-corrected by the scanner (MOCO): "
                               "--method none is recommended")


def default_method() -> str:
    """MOCOnet when its weights are installed, else the classical registration."""
    return "moconet" if moconet_installed() else "classical"


def _series_folder(out: Path, series, n_series: int) -> Path:
    if n_series == 1:
        return out
    return out / f"{series.series_number or 0:03d}_{re.sub(r'[^A-Za-z0-9]+', '_', series.description).strip('_')}"


def irw_series(scan, number: int | None = None) -> list:
    """The IRW series of a scan (the one with SeriesNumber ``number`` when given)."""
    irw = scan.of_kind("irw")
    if number is not None:
        irw = [s for s in irw if s.series_number == number]
        if not irw:
            raise InputError(f"no IRW series with SeriesNumber {number} in {scan.root}")
    if not irw:
        found = ", ".join(f"{s.description!r} ({s.kind})" for s in scan.series) or "nothing"
        raise InputError(f"no IRW (MOLLI/ShMOLLI) series in {scan.root}; found {found}")
    return irw


def process_input(source: Path, out: Path, method: str, *, mask_path: str | None = None, mask_label: int = 1,
                  series_number: int | None = None, device: str | None = None,
                  progress: ProgressCallback | None = None, scan=None,
                  masks: dict[str, Image] | None = None, all_samples: bool = False) -> list[dict[str, Any]]:
    """Every selected IRW series of ``source`` (DICOM folder, study folder or IRW sequence file):
    results into ``out`` (a sub-folder per series when several); returns the result dicts.

    ``masks``: myocardium label images by SeriesInstanceUID handed by an earlier `cmr run`
    step; otherwise ``mask_path``, else the phantom's ground-truth labels when ``source`` is a
    phantom study. Every input is loaded and checked before anything is written. When the
    study holds the scanner's own T1 map of a series' slice, ``result.json`` reports the median
    difference of our map from it (:mod:`cmrlib.motion.scanner_map`). ``all_samples``: fit
    ShMOLLI with all 7 samples instead of conditional reconstruction.
    """
    from ..io import load_mask, load_series, read_image, scan_folder
    from ..io.files import SUFFIXES
    from ..phantom.truth import find_phantom_mask
    if source.is_file() and source.name.lower().endswith(SUFFIXES):
        image = read_image(source)
        jobs = [(image.meta.get("SeriesDescription", source.name), image, mask_path, None)]
    else:
        scan = scan or scan_folder(source, progress)
        chosen = irw_series(scan, series_number)
        jobs = []
        for s in chosen:
            image = load_series(s)
            mask_file = mask_path or (None if masks and s.series_uid in masks
                                      else find_phantom_mask(s, source if source.is_dir() else source.parent))
            jobs.append((s.description, image, mask_file, s))
    prepared = []
    for name, image, mask_file, series in jobs:  # inputs all checked before any output is written
        check_irw(image)
        if mask_file:
            mask = load_mask(mask_file, image, mask_label)
        elif masks and series is not None and series.series_uid in masks:
            mask = load_mask_image(masks[series.series_uid], image)
        else:
            mask = None
        scanner = []
        if scan is not None and series is not None:
            from .scanner_map import scanner_maps_for
            scanner = scanner_maps_for(scan, image, series)
        prepared.append((name, image, mask, mask_file, series, scanner))
    results = []
    for name, image, mask, mask_file, series, scanner in prepared:
        result = correct_and_map(image, method, mask=mask, device=device, progress=progress, all_samples=all_samples)
        if scanner:
            from .scanner_map import compare_with_scanner_map
            for map_series, map_image in scanner:
                info = compare_with_scanner_map(result.t1, result.valid, map_image, mask=mask, series=map_series)
                result.scanner_maps.append(info)
                result.notes.extend(f"scanner map {info['series']!r}: {n}" for n in info["notes"])
        target = out if series is None else _series_folder(out, series, len(prepared))
        summary = write_result(result, target)
        summary.update(series=name, out=str(target),
                       mask=str(mask_file) if mask_file else ("from an earlier step" if mask is not None else None))
        results.append(summary)
    return results


def load_mask_image(mask: Image, grid: Image) -> np.ndarray:
    """A boolean myocardium mask from a label image handed by an earlier step (label 1)."""
    arr = np.asarray(mask.array)
    if arr.size != int(np.prod(grid.spatial_shape)):
        raise InputError(f"myocardium mask of shape {arr.shape} is not on the IRW grid {grid.spatial_shape}")
    return (arr == 1).reshape(grid.spatial_shape)


def run_step(context) -> Any:
    """`cmr run` step: every IRW series with MOCOnet when its weights are installed, else fit only
    (the classical registration takes tens of seconds per series: too slow for a default run)."""
    from ..contract import StepResult
    method = "moconet" if moconet_installed() else "none"
    out = context.folder("motion")
    results = process_input(context.scan.root, out, method, device=context.device, progress=context.progress,
                            scan=context.scan, masks=context.results.get("myocardium_mask"))
    label = "MOCOnet, phantom-trained demonstration weights" if method == "moconet" else "no motion correction"
    lines, t1_maps = [], {}
    for r in results:
        t1_maps[r["series"]] = Path(r["out"]) / "t1_map.nrrd"
        r["out"] = str(Path(r["out"]).relative_to(context.out_dir))  # run.json paths are relative to it
        lines.append(f"{r['series']}: T1/R² maps ({label})"
                     + (f", myocardial T1 {r['t1_myocardium_ms']:.0f} ms, mean R² {r['r2_myocardium_mean']:.3f}"
                        if r["t1_myocardium_ms"] is not None else ""))
    notes = [f"{r['series']}: {n}" for r in results for n in r["notes"] if "could not be read" in n]
    return StepResult({"method": method, "series": results}, lines, {"t1_map": t1_maps}, notes)

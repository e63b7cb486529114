"""QCD pipeline: short-axis images → myocardium / blood-pool label map and per-slice QC.

:func:`segment_image` (one image: a slice or a stack → :class:`QCDResult`) is the single
computation that `cmr segment`, `cmr run` (:func:`run_step`) and the Slicer worker call;
:func:`process_input` applies it to a folder or an image file and writes each result with
:mod:`cmrlib.qcd.outputs`.

Never a confident wrong mask without a flag: an empty or constant slice gets no mask and a
failed QC with the reason; a plane holding the long axis (from the DICOM geometry) is refused
as not short-axis; everything else goes through the ensemble, whose predicted Dice decides
(:mod:`cmrlib.qcd.framework`). Pixel spacing outside 0.5–4 mm is resampled to the network's
grid like any other (the note says so); a sequence (cine phases, IRW frames) is refused with
the frame option to use.
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

MODEL_NAME = "qcd-compact"
SERIES_KINDS = ("lge_psir", "lge_magnitude", "vne", "t1map")
USUAL_SPACING_MM = (0.5, 4.0)


@dataclass
class SliceQC:
    """One image's QC: ``predicted_dice`` of the returned candidate, pass / fail and why."""

    index: int
    predicted_dice: float
    qc_pass: bool
    candidate: str | None
    candidates_predicted_dice: list[float] = field(default_factory=list)
    reason: str = ""
    myocardium_mm2: float = 0.0
    blood_pool_mm2: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "predicted_dice": round(float(self.predicted_dice), 4), "qc_pass": self.qc_pass,
                "candidate": self.candidate, "candidates_predicted_dice": self.candidates_predicted_dice,
                "reason": self.reason or None, "myocardium_mm2": round(self.myocardium_mm2, 1),
                "blood_pool_mm2": round(self.blood_pool_mm2, 1)}


@dataclass
class QCDResult:
    """Labels of every slice of one image (0 background, 1 myocardium, 2 blood pool) and their QC."""

    image: Image
    labels: Image
    slices: list[SliceQC]
    model: str
    model_version: str
    notice: str
    threshold: float
    seconds: float
    notes: list[str] = field(default_factory=list)

    @property
    def series(self) -> str:
        return str(self.image.meta.get("SeriesDescription", ""))

    @property
    def failed(self) -> list[int]:
        return [s.index for s in self.slices if not s.qc_pass]

    def to_dict(self) -> dict[str, Any]:
        return {"series": self.series, "kind": self.image.meta.get("kind"), "seconds": round(self.seconds, 4),
                "model": {"name": self.model, "version": self.model_version, "notice": self.notice},
                "qc_threshold": self.threshold, "n_slices": len(self.slices), "n_failed": len(self.failed),
                "failed_slices": self.failed,
                "mean_predicted_dice": round(float(np.mean([s.predicted_dice for s in self.slices])), 4)
                if self.slices else None,
                "slices": [s.to_dict() for s in self.slices], "notes": self.notes}


def model_installed(name: str = MODEL_NAME) -> bool:
    from ..models.zoo import model_installed as installed
    return installed(name)


def _load(name: str, device):
    from ..models.zoo import load_installed
    return load_installed(name, device, "qcd")


def _not_short_axis(image: Image) -> str | None:
    """Why the image's plane is not short-axis (it holds the long axis), from its geometry; None if fine."""
    from ..aha import display_sign
    try:
        display_sign(image.direction)
    except InputError as exc:
        return f"not a short-axis image: {exc}"
    return None


def segment_image(image: Image, *, threshold: float | None = None, frame: int | None = None,
                  model_name: str = MODEL_NAME, device: str | None = None,
                  progress: ProgressCallback | None = None) -> QCDResult:
    """QCD segmentation of ``image`` (one slice or a short-axis stack)."""
    from ..device import pick_device
    from .framework import DEFAULT_THRESHOLD, QCDecision, candidate_names
    from .infer import regressors_of, segment
    if image.is_sequence:
        n_frames = image.array.shape[0]
        if frame is None:
            raise InputError(f"the image is a sequence of {n_frames} frames (cine phases or IRW frames); QCD segments "
                             f"one 2-D image or a stack: choose a frame with --frame 0..{n_frames - 1}")
        if not 0 <= frame < n_frames:
            raise InputError(f"--frame {frame} is outside 0..{n_frames - 1}")
        image = image.frame(frame)
    arr = np.asarray(image.array, np.float32).reshape(image.spatial_shape)
    if not np.isfinite(arr).all():
        raise InputError("the image holds NaN or infinite values")
    dev = pick_device(device) if not hasattr(device, "type") else device
    model, entry = _load(model_name, dev)
    regressors = regressors_of(entry)
    thr = float(threshold if threshold is not None else entry.calibration.get("qc_threshold", DEFAULT_THRESHOLD))
    if not 0.0 < thr < 1.0:
        raise InputError(f"the QC threshold must lie between 0 and 1; got {thr}")
    t0 = time.perf_counter()
    n = arr.shape[0]
    notes: list[str] = []
    spacing = (float(image.spacing[0]), float(image.spacing[1]))
    lo, hi = USUAL_SPACING_MM
    if not (lo <= spacing[0] <= hi and lo <= spacing[1] <= hi):
        notes.append(f"pixel spacing {spacing[0]:g} × {spacing[1]:g} mm is outside the usual {lo:g}–{hi:g} mm: resampled "
                     f"to the network's {model.config.pixel_mm:g} mm grid ({model.config.size} px, "
                     f"{model.config.size * model.config.pixel_mm:g} mm field of view"
                     + (f", centred on the heart found on a {model.config.overview_size * model.config.overview_pixel_mm:g} mm "
                        "overview" if model.config.two_pass else "") + "); check the QC")
    labels = np.zeros(arr.shape, np.uint8)
    decisions: list[QCDecision | None] = [None] * n
    reasons: dict[int, str] = {}
    plane = _not_short_axis(image)
    todo = []
    for k in range(n):
        if plane:
            reasons[k] = plane
        elif not np.any(arr[k]) or float(arr[k].std()) == 0.0:
            reasons[k] = "the slice is empty (constant intensity): no segmentation"
        else:
            todo.append(k)
    names = candidate_names(len(model.nets))
    chunk = 8
    for start in range(0, len(todo), chunk):
        report(progress, "QCD segmentation", start, len(todo), f"slice {todo[start] + 1}/{n}")
        ks = todo[start:start + chunk]
        for k, seg in zip(ks, segment(model, regressors, [arr[k] for k in ks], spacing, threshold=thr, device=dev)):
            labels[k], decisions[k] = seg.labels, seg.decision
    report(progress, "QCD segmentation", len(todo), len(todo), "done")
    px_mm2 = spacing[0] * spacing[1]
    slices = []
    for k in range(n):
        d = decisions[k]
        if d is None:
            slices.append(SliceQC(k, 0.0, False, None, [], reasons[k]))
            continue
        slices.append(SliceQC(k, d.predicted_dice, d.qc_pass, names[d.candidate], d.candidates_predicted_dice,
                              d.reason, float((labels[k] == 1).sum() * px_mm2), float((labels[k] == 2).sum() * px_mm2)))
    failed = [s.index for s in slices if not s.qc_pass]
    label_img = Image(labels, image.spacing, image.origin, image.direction, False,
                      {"labels": {"0": "background", "1": "myocardium", "2": "blood pool"},
                       "SeriesDescription": f"{image.meta.get('SeriesDescription', 'image')} QCD labels",
                       "source": f"QCD {entry.name} {entry.version}", "qc_threshold": thr,
                       "qc_failed_slices": failed,
                       "qc_predicted_dice": [round(s.predicted_dice, 4) for s in slices]})
    result = QCDResult(image, label_img, slices, entry.name, entry.version, entry.notice, thr, 0.0, notes)
    if entry.phantom_trained:
        result.notes.append(f"QCD: {entry.notice}")
    if failed:
        result.notes.append(f"{len(failed)} of {n} slice(s) failed QC (predicted Dice < {thr:.2f}): "
                            + ", ".join(str(k + 1) for k in failed) + " — review them")
    from ..io import unreadable_notes
    result.notes.extend(unreadable_notes(image, "the segmentation"))
    result.seconds = time.perf_counter() - t0
    return result


def _series_folder(out: Path, name: str, number: int | None, n_series: int) -> Path:
    if n_series == 1:
        return out
    return out / f"{number or 0:03d}_{re.sub(r'[^A-Za-z0-9]+', '_', name).strip('_')}"


def process_input(source: Path, out: Path, *, threshold: float | None = None, frame: int | None = None,
                  device: str | None = None, progress: ProgressCallback | None = None, scan=None,
                  model_name: str = MODEL_NAME) -> list[dict[str, Any]]:
    """Every short-axis LGE / VNE / T1-map series of ``source`` (DICOM or study folder), or one
    image file: results into ``out`` (a sub-folder per series when several); returns
    result.json dicts with ``out`` and ``uid``. Every input is loaded before anything is written."""
    from ..io import load_series, read_image, scan_folder
    from ..io.files import SUFFIXES
    from .outputs import write_result
    jobs = []
    if source.is_file() and source.name.lower().endswith(SUFFIXES):
        image = read_image(source)
        image.meta.setdefault("SeriesDescription", source.name)
        jobs.append((image, None))
    elif source.is_file():
        raise InputError(f"{source} is not an image file QCD reads (NRRD / NIfTI / MHA) nor a DICOM folder")
    else:
        scan = scan or scan_folder(source, progress)
        chosen = [s for s in scan.series if s.kind in SERIES_KINDS]
        if not chosen:
            found = ", ".join(f"{s.description!r} ({s.kind})" for s in scan.series) or "nothing"
            raise InputError(f"no short-axis LGE, VNE or T1-map series in {scan.root}; found {found}")
        jobs = [(load_series(s), s) for s in chosen]
    done = [(segment_image(image, threshold=threshold, frame=frame, model_name=model_name, device=device,
                           progress=progress), series) for image, series in jobs]
    results = []
    for result, series in done:
        target = out if series is None else _series_folder(out, result.series, series.series_number, len(done))
        summary = write_result(result, target)
        summary.update(out=str(target), uid=series.series_uid if series is not None else None)
        results.append(summary)
    return results


def run_step(context) -> Any:
    """`cmr run` step: QCD on every short-axis LGE, VNE and T1-map series; provides their label
    maps (``myocardium_mask``, with the failed slices in the image's meta) to later steps."""
    from ..contract import StepResult
    from ..io import read_image
    from .outputs import LABELS
    out = context.folder("segment")
    results = process_input(context.scan.root, out, device=context.device, progress=context.progress,
                            scan=context.scan)
    lines, masks = [], {}
    for r in results:
        folder = Path(r["out"])
        r["out"] = str(folder.relative_to(context.out_dir))
        if r.get("uid"):
            masks[r["uid"]] = read_image(folder / LABELS)
        failed = r["failed_slices"]
        lines.append(f"{r['series']}: myocardium on {r['n_slices']} slice(s), mean predicted Dice "
                     f"{r['mean_predicted_dice']:.2f}; " + (f"QC failed on slice(s) {', '.join(str(k + 1) for k in failed)}"
                                                             if failed else "every slice passed QC"))
    notes = [f"{r['series']}: {n}" for r in results for n in r["notes"] if "could not be read" in n or "failed QC" in n]
    return StepResult({"series": results}, lines, {"myocardium_mask": masks}, notes)

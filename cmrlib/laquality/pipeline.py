"""Diagnostic quality of one left-atrial 3-D LGE volume — the one computation the CLI, `cmr run`
and the Slicer worker call (:func:`assess_volume`).

Order (seed 001): the volume onto the card's axial grid (:mod:`.preprocess`); stage 1, the LA
detector on every slice, a slice *contains LA* when any pixel's probability exceeds the threshold
t; stage 2, the quality network on those slices (a window centred on the detected atrium); the
scan's verdict for each attribute and for the quality for fibrosis assessment is the **mode of
its slices' decisions** (probability ≥ the label's threshold = diagnostic; the thresholds are
fitted on validation scans at training and kept in the model's manifest, 0.5 for older models); HiResCAM saliency of the quality output
on every used slice.

No answer when the network cannot read the input: no connected blood pool of at least 5 ml with
a slice above t gives "no LA found" and no score (:func:`select_atrium`); a detected atrium of
implausible volume or filling the whole stack, slices that split evenly, or used slices with gaps
are said in the notes.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError
from ..image import Image
from .networks import ATTRIBUTES, LABELS

QUALITY_MODEL = "la-quality-compact"
DETECTOR_MODEL = "la-detector-compact"
PIXEL_THRESHOLD = 0.5  # blood-pool mask: pixel probability
MIN_ATRIUM_ML = 5.0  # smallest connected blood pool taken for an atrium
LA_VOLUME_ML = (10.0, 250.0)  # a detected atrium outside this is said in the notes
SPLIT_VOTE = (0.4, 0.6)  # share of slices voting diagnostic that is reported as a split verdict
NAMES = {"myocardial_nulling": "myocardial nulling", "sharpness": "sharpness",
         "aorta_valve_enhancement": "enhancement of aorta and valves",
         "overall_quality": "quality for fibrosis assessment"}
WRONG_KINDS = {
    "cine": "a cine series", "irw": "T1-mapping inversion-recovery frames", "t1map": "a T1 map",
    "fit_map": "a fit-parameter map", "map_display": "a colour map display", "vne": "a VNE series",
    "lge_psir": "short-axis LGE (PSIR)", "lge_magnitude": "short-axis LGE (magnitude)",
}


@dataclass
class LAQualityResult:
    series: str
    diagnostic: bool | None  # None: no LA found, no score
    attributes: dict[str, dict[str, Any]]  # label → probability, diagnostic, votes, share
    slices: list[dict[str, Any]]
    slices_used: list[int]
    threshold: float
    variant: str
    seconds: float
    models: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    grid: Image | None = None  # the assessed volume (card grid), for the files and figures
    volume01: np.ndarray | None = None
    la_mask: np.ndarray | None = None
    saliency: np.ndarray | None = None
    saliency_slice: int | None = None
    la_volume_ml: float = 0.0

    @property
    def sentence(self) -> str:
        if self.diagnostic is None:
            return f"no left atrium found (no slice above t = {self.threshold:.2f}): no quality score"
        failed = [NAMES[k] for k in ATTRIBUTES if not self.attributes[k]["diagnostic"]]
        o = self.attributes["overall_quality"]
        head = "diagnostic" if self.diagnostic else "non-diagnostic"
        why = f"; non-diagnostic {', '.join(failed)}" if failed else "; every attribute diagnostic"
        return (f"{head} for LA fibrosis assessment ({o['votes']} of {len(self.slices_used)} LA slices vote "
                f"diagnostic{why})")

    def to_dict(self) -> dict[str, Any]:
        return {"series": self.series, "diagnostic": self.diagnostic, "sentence": self.sentence,
                "attributes": {k: v for k, v in self.attributes.items() if k != "overall_quality"},
                "overall_quality": self.attributes.get("overall_quality"),
                "slices_used": self.slices_used, "slices": self.slices, "threshold": self.threshold,
                "variant": self.variant, "saliency_slice": self.saliency_slice,
                "la_volume_ml": round(self.la_volume_ml, 1), "seconds": round(self.seconds, 3),
                "models": self.models, "notes": self.notes}


def _model_info(entry) -> dict[str, Any]:
    return {"name": entry.name, "version": entry.version, "notice": entry.notice, "sha256": entry.sha256,
            "phantom_trained": entry.phantom_trained}


def detect(model, volume01: np.ndarray, dev) -> tuple[np.ndarray, np.ndarray]:
    """(LA probability on the grid ``[Z, H, W]``, each slice's peak probability in the network view)."""
    from .preprocess import detector_input, unwindow
    from .train import predict_masks
    x, side, centre = detector_input(volume01)
    p = predict_masks(model, x, dev)[:, 0]
    peaks = p.reshape(len(p), -1).max(1)
    prob = np.stack([unwindow(v, volume01.shape[1:], centre, side) for v in p])
    return prob, peaks


def select_atrium(prob: np.ndarray, threshold: float, voxel_ml: float) -> tuple[np.ndarray, list[int], np.ndarray]:
    """(the atrium's mask, the slices that contain it, each slice's peak probability inside it).

    The card's rule — a slice contains LA when any pixel exceeds t — is applied inside the
    largest connected 3-D blood-pool component (pixels > 0.5) of at least :data:`MIN_ATRIUM_ML`:
    on its own it fires on speckle, noise and any bright spot, which is exactly the input the
    network cannot read; no such component is "no LA found"."""
    from scipy import ndimage
    mask = prob > PIXEL_THRESHOLD
    labels, n = ndimage.label(mask)
    atrium = np.zeros(mask.shape, bool)
    if n:
        sizes = np.bincount(labels.ravel())[1:]
        if sizes.max() * voxel_ml >= MIN_ATRIUM_ML:
            atrium = labels == int(np.argmax(sizes)) + 1
    peaks = np.where(atrium, prob, 0.0).reshape(len(prob), -1).max(1)
    return atrium, [int(k) for k in np.flatnonzero(peaks > threshold)], peaks


def assess_volume(image: Image, *, threshold: float | None = None, series: str = "", notes: list[str] | None = None,
                  quality_model: str = QUALITY_MODEL, detector_model: str = DETECTOR_MODEL,
                  saliency_slice: int | None = None, with_saliency: bool = True, device: str | None = None,
                  progress=None) -> LAQualityResult:
    """Stage 1 + stage 2 + scan mode + saliency of one 3-D LA LGE volume (see the module docstring)."""
    import torch

    from ..device import pick_device
    from ..models.zoo import load_installed
    from ..progress import report
    from .preprocess import check_volume, normalise_volume, quality_input, to_card_grid, unwindow, quality_side_px
    from .saliency import hirescam
    from .train import decision_thresholds, predict_labels, scan_mode
    t0 = time.perf_counter()
    desc = series or str(image.meta.get("SeriesDescription", "LA 3D LGE"))
    check_volume(image, repr(desc))
    notes = list(notes or [])
    grid, grid_notes = to_card_grid(image)
    notes += grid_notes
    dev = device if isinstance(device, torch.device) else pick_device(device)
    detector, d_entry = load_installed(detector_model, dev, "la-detector")
    quality, q_entry = load_installed(quality_model, dev, "la-quality")
    t = float(threshold if threshold is not None else d_entry.calibration.get("slice_threshold", 0.5))
    variant = str(q_entry.arch_args.get("variant", "baseline"))
    models = [_model_info(d_entry), _model_info(q_entry)]
    vol01 = normalise_volume(grid.array)
    report(progress, "LA detector", 0, 3, "finding the left atrium")
    prob, _ = detect(detector, vol01, dev)
    voxel_ml = float(np.prod(grid.spacing)) / 1000.0
    la_mask, used, peaks = select_atrium(prob, t, voxel_ml)
    la_ml = float(la_mask.sum() * voxel_ml)
    slices = [{"index": int(k), "la_peak_probability": round(float(peaks[k]), 4), "used": bool(peaks[k] > t),
               "la_area_mm2": round(float(la_mask[k].sum() * grid.spacing[0] * grid.spacing[1]), 1)}
              for k in range(len(peaks))]
    base = dict(series=desc, slices=slices, slices_used=used, threshold=t, variant=variant, models=models,
                notes=notes, grid=grid, volume01=vol01, la_mask=la_mask, la_volume_ml=la_ml)
    if not used:
        return LAQualityResult(diagnostic=None, attributes={}, seconds=time.perf_counter() - t0,
                               saliency=np.zeros_like(vol01), **base)
    # stage 2 on a window centred on the detected atrium (probability-weighted over the used slices)
    w = la_mask[used].sum(0).astype(float)  # the used slices hold atrium pixels (select_atrium)
    rows, cols = np.nonzero(w)
    centre = (float(np.average(rows, weights=w[rows, cols])), float(np.average(cols, weights=w[rows, cols])))
    report(progress, "LA quality", 1, 3, f"{len(used)} slices with atrium")
    x = quality_input(vol01, used, centre)
    p = predict_labels(quality, x, dev)
    attributes = {}
    thresholds = decision_thresholds(q_entry.calibration)
    for j, k in enumerate(LABELS):
        decisions = p[:, j] >= thresholds[j]
        verdict, share = scan_mode(decisions, p[:, j], thresholds[j])
        attributes[k] = {"probability": round(float(p[:, j].mean()), 4), "threshold": float(thresholds[j]),
                         "diagnostic": verdict, "votes": int(decisions.sum()), "share": round(share, 3)}
    for s in slices:
        if s["used"]:
            row = p[used.index(s["index"])]
            s["probabilities"] = {k: round(float(v), 4) for k, v in zip(LABELS, row)}
    share = attributes["overall_quality"]["share"]
    if SPLIT_VOTE[0] <= share <= SPLIT_VOTE[1]:
        notes.append(f"the slices split ({attributes['overall_quality']['votes']} of {len(used)} vote diagnostic): a "
                     "borderline scan, worth an expert's look")
    if not LA_VOLUME_ML[0] <= la_ml <= LA_VOLUME_ML[1]:
        notes.append(f"the detected atrium is {la_ml:.0f} ml (expected {LA_VOLUME_ML[0]:.0f}–{LA_VOLUME_ML[1]:.0f}): "
                     "the detector may not have found the left atrium; check the LA mask")
    if la_mask[0].any() and la_mask[-1].any():
        notes.append("the detected atrium runs through the whole volume, first slice to last: the detector may have "
                     "taken another structure for it; check the LA mask")
    gaps = [b for a, b in zip(used, used[1:]) if b - a > 2]
    if gaps:
        notes.append(f"the slices with atrium are not contiguous (gap before slice {gaps[0] + 1}): check the LA mask")
    saliency = np.zeros_like(vol01)
    chosen = None
    if with_saliency:
        report(progress, "saliency", 2, 3, "HiResCAM")
        # the explanation of the scan's verdict: what made it diagnostic, or non-diagnostic
        sign = 1.0 if attributes["overall_quality"]["diagnostic"] else -1.0
        cam = np.concatenate([hirescam(quality, torch.from_numpy(x[i:i + 16]).to(dev), sign=sign)
                              for i in range(0, len(x), 16)])
        cam = cam / max(float(cam.max()), 1e-12)
        for i, k in enumerate(used):
            saliency[k] = np.clip(unwindow(cam[i], vol01.shape[1:], centre, quality_side_px()), 0.0, 1.0)
        if saliency_slice is not None:
            if not 0 <= saliency_slice < len(vol01):
                raise InputError(f"--saliency-slice must be 1..{len(vol01)}; got {saliency_slice + 1}")
            chosen = int(saliency_slice)
        else:
            chosen = max(used, key=lambda k: la_mask[k].sum())
    diagnostic = bool(attributes["overall_quality"]["diagnostic"])
    report(progress, "LA quality", 3, 3, "done")
    return LAQualityResult(diagnostic=diagnostic, attributes=attributes, seconds=time.perf_counter() - t0,
                           saliency=saliency, saliency_slice=chosen, **base)


def check_series_kind(kind: str | None, reason: str, description: str, force: bool = False) -> list[str]:
    """Notes for an input of DICOM ``kind``; InputError for a kind that is not LA 3-D LGE unless ``force``."""
    from ..io.kinds import check_input_kind
    return check_input_kind(kind, reason, description, accepted=("la_lge",), wrong=WRONG_KINDS,
                            reads="the LA quality assessment reads axial 3-D LGE of the left atrium",
                            name="LA 3-D LGE", read_as="LA 3-D LGE", verbs=("assesses", "assessed"), force=force)


def load_volume(path, force: bool = False) -> tuple[Image, str, list[str]]:
    """(image, description, notes) of a command's input: an image file, or a DICOM folder with one LA
    3-D LGE series (or exactly one series of any kind, then checked)."""
    from pathlib import Path

    from ..io import image_or_scan, load_series
    found = image_or_scan(path, "input")
    if isinstance(found, Image):
        desc = str(found.meta.get("SeriesDescription", Path(path).name))
        return found, desc, check_series_kind(found.meta.get("kind"), "", desc, force)
    la = [s for s in found.series if s.kind == "la_lge"]
    if len(la) > 1:
        raise InputError(f"{path}: {len(la)} LA 3-D LGE series ({', '.join(repr(s.description) for s in la)}); give "
                         "the folder of one")
    pick = la[0] if la else (found.series[0] if len(found.series) == 1 else None)
    if pick is None:
        seen = ", ".join(f"{s.description!r} ({s.kind})" for s in found.series) or "nothing"
        raise InputError(f"{path}: no LA 3-D LGE series; found {seen}")
    notes = check_series_kind(pick.kind, pick.kind_reason, pick.description, force)
    img = load_series(pick)
    if pick.unreadable_files:
        notes.append(f"{len(pick.unreadable_files)} file(s) of the series could not be read and are missing")
    return img, pick.description, notes


def run_step(context) -> Any:
    """`cmr run` step: diagnostic quality of every LA 3-D LGE series."""
    import re

    from ..contract import StepResult
    from ..errors import NotApplicableError
    from ..io import load_series
    from .outputs import write_result
    las = context.series("la_lge")
    if not las:
        raise NotApplicableError("no left-atrial 3-D LGE series in this study")
    out = context.folder("la-quality")
    results, lines, notes = [], [], []
    for i, series in enumerate(las):
        img = load_series(series)
        extra = [f"{len(series.unreadable_files)} file(s) could not be read"] if series.unreadable_files else []
        result = assess_volume(img, series=series.description, notes=extra, device=context.device,
                               progress=context.progress)
        folder = out / f"{i + 1:02d}_{re.sub(r'[^A-Za-z0-9]+', '_', series.description).strip('_')}" \
            if len(las) > 1 else out
        summary = write_result(result, folder)
        summary.update(out=str(folder.relative_to(context.out_dir)), series_uid=series.series_uid)
        results.append(summary)
        lines.append(f"{series.description}: {result.sentence}")
        notes += [f"{series.description}: {n}" for n in result.notes]
    provided = {r["series_uid"]: {"diagnostic": r["diagnostic"], "overall_quality": r["overall_quality"],
                                  "attributes": r["attributes"]} for r in results}
    return StepResult({"series": results}, lines, {"la_quality": provided}, notes)

"""LGE certainty and LV slice level of one short-axis LGE stack — the one computation the CLI,
`cmr run`, `cmr quality watch` and the Slicer worker call (:func:`classify_stack`).

Order (the cards): the slice-level network first on every slice (too basal / LV / too apical);
the certainty network then on the LV slices only (the certainty card labelled only slices
with at least half of the LV myocardium visible), unless ``all_slices``. A slice is flagged
*equivocal* when its probability of low certainty reaches the operating threshold (the
model's calibrated one unless given; it favours precision, as the authors did).

Right input only (:func:`check_series_kind`): a DICOM series classified as cine, T1 map, IRW,
VNE, a fit-parameter map, a colour display or 3-D left-atrial LGE is refused with the
classifier's reason (``force`` overrides); an unclassified series or an image file without a
kind is classified with a warning in the notes.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError
from .data import SLICE_CLASSES

CERTAINTY_MODEL = "lge-certainty-compact"
SLICE_LEVEL_MODEL = "slice-level-compact"
TASKS = ("slice-level", "certainty")
LGE_KINDS = ("lge_psir", "lge_magnitude")
#: kinds refused by the certainty / slice-level classifiers, with what to use instead
WRONG_KINDS = {
    "cine": "a cine series", "irw": "T1-mapping inversion-recovery frames (IRW)", "t1map": "a T1 map",
    "fit_map": "a fit-parameter map", "map_display": "a colour map display", "vne": "a VNE (virtual native) series",
    "la_lge": "3-D left-atrial LGE (not short-axis slices)",
}
UNUSUAL_ASPECT = 1.6  # rows / columns beyond this (or its inverse) are distorted by the square resize
#: below this highest class probability the slice level is reported as uncertain (an image the
#: network cannot read: on phantom slices it is rare, on a disk or stripes it fires)
LEVEL_CONFIDENCE = 0.6


def check_series_kind(kind: str | None, reason: str, description: str, force: bool = False) -> list[str]:
    """Notes for an input of DICOM ``kind``; InputError for a non-LGE kind unless ``force``."""
    from ..io.kinds import check_input_kind
    return check_input_kind(kind, reason, description, accepted=LGE_KINDS, wrong=WRONG_KINDS,
                            reads="the LGE certainty and slice-level classifiers read short-axis LGE (PSIR or magnitude) "
                                  "only", name="LGE", read_as="short-axis LGE", verbs=("classifies", "classified"),
                            forced_note="; its results are meaningless", force=force)


@dataclass
class SliceQuality:
    index: int
    slice_class: str | None = None  # too basal / LV / too apical; None without the slice-level network
    probabilities: dict[str, float] | None = None
    p_low_certainty: float | None = None
    flag: bool | None = None  # equivocal at the operating threshold; None when not assessed
    reason: str = ""  # why certainty was not assessed

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"index": self.index}
        if self.slice_class is not None:
            d["class"] = self.slice_class
            d["probabilities"] = self.probabilities
        d["p_low_certainty"] = self.p_low_certainty
        d["flag"] = self.flag
        if self.reason:
            d["reason"] = self.reason
        return d


@dataclass
class QualityResult:
    series: str
    kind: str | None
    tasks: tuple[str, ...]
    slices: list[SliceQuality]
    threshold: float | None
    sentence: str
    seconds: float
    ms_per_slice: float
    models: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    images: np.ndarray | None = None  # [slice, row, col] for the montage (not in to_dict)
    hide_non_lv: bool = False  # the montage shows LV slices only

    @property
    def flagged(self) -> list[int]:
        return [s.index for s in self.slices if s.flag]

    @property
    def non_lv(self) -> list[int]:
        return [s.index for s in self.slices if s.slice_class not in (None, "LV")]

    def to_dict(self) -> dict[str, Any]:
        return {"series": self.series, "kind": self.kind, "tasks": list(self.tasks),
                "slices": [s.to_dict() for s in self.slices], "n_slices": len(self.slices),
                "flagged": self.flagged, "non_lv": self.non_lv, "threshold": self.threshold,
                "sentence": self.sentence, "seconds": round(self.seconds, 3),
                "ms_per_slice": round(self.ms_per_slice, 2), "models": self.models,
                "model": self.models[-1] if self.models else None, "hide_non_lv": self.hide_non_lv,
                "notes": self.notes}


def stack_sentence(slices: list[SliceQuality]) -> str:
    """The per-stack verdict a radiographer reads ("2 of 9 slices equivocal: …")."""
    parts = []
    levels = [s for s in slices if s.slice_class is not None]
    if levels:
        non = [s for s in levels if s.slice_class != "LV"]
        if non:
            basal = sum(s.slice_class == "too basal" for s in non)
            apical = len(non) - basal
            kinds = ", ".join(t for t in (f"{basal} too basal" if basal else "", f"{apical} too apical" if apical else "") if t)
            parts.append(f"{len(non)} of {len(levels)} slices outside the LV ({kinds})")
        else:
            parts.append(f"all {len(levels)} slices in the LV")
    assessed = [s for s in slices if s.flag is not None]
    if assessed:
        n = sum(bool(s.flag) for s in assessed)
        what = "LV slices" if levels else "slices"
        if n:
            parts.append(f"{n} of {len(assessed)} {what} equivocal: consider repeating them or adding intersecting views")
        else:
            parts.append(f"0 of {len(assessed)} {what} equivocal: LGE presence or absence is clear on every one")
    elif levels and any(s.slice_class == "LV" for s in levels) is False:
        parts.append("no LV slice to assess for LGE certainty")
    return "; ".join(parts) if parts else "nothing assessed"


def _slices_of(image) -> np.ndarray:
    arr = np.asarray(image.array, np.float32)
    if image.is_sequence:
        raise InputError("a multi-frame (cine-like) image: the classifiers read one image per slice")
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[0] == 0:
        raise InputError(f"expected a stack of 2-D slices; got an array of shape {arr.shape}")
    return arr


def _inputs(arr: np.ndarray, size: int) -> np.ndarray:
    from .preprocess import network_input
    return np.stack([network_input(a, size)[None] for a in arr]).astype(np.float32)


def _model_record(entry) -> dict[str, Any]:
    return {"name": entry.name, "version": entry.version, "notice": entry.notice, "task": entry.task}


def classify_stack(image, *, tasks: tuple[str, ...] = TASKS, threshold: float | None = None, all_slices: bool = False,
                   series: str = "", kind: str | None = None, notes: list[str] | None = None,
                   certainty_model: str = CERTAINTY_MODEL, slice_level_model: str = SLICE_LEVEL_MODEL,
                   networks: dict[str, Any] | None = None, device=None, progress=None,
                   hide_non_lv: bool = False) -> QualityResult:
    """Slice level and / or LGE certainty of every slice of ``image`` (an LGE stack ``[slice, row, col]``).

    ``networks``: already-loaded ``{"certainty": (model, entry), "slice-level": (model, entry)}``
    (tests, the watcher); else the installed models are loaded (once per process).
    ``threshold``: probability of low certainty that flags a slice (default: the model's calibrated
    operating threshold). ``hide_non_lv``: the montage leaves slices outside the LV out (they stay
    in the result).
    """
    import torch

    from ..device import pick_device
    from ..models.zoo import load_installed, model_installed
    from ..progress import report
    from .train import predict_probabilities
    unknown = [t for t in tasks if t not in TASKS]
    if unknown or not tasks:
        raise InputError(f"tasks must be among {', '.join(TASKS)}; got {', '.join(tasks) or 'none'}")
    if threshold is not None and not 0.0 < threshold < 1.0:
        raise InputError(f"the operating threshold is a probability between 0 and 1; got {threshold}")
    arr = _slices_of(image)
    notes = list(notes or [])
    n, rows, cols = arr.shape
    aspect = max(rows, cols) / max(min(rows, cols), 1)
    if aspect > UNUSUAL_ASPECT or min(rows, cols) < 48:
        notes.append(f"slices are {rows}×{cols} pixels (unusual size or aspect): cropped and resized to the "
                     "networks' square input, which distorts them; read the results with care")
    if n == 1:
        notes.append("a single slice: assessed on its own (no stack context)")
    dev = device if isinstance(device, torch.device) else pick_device(device)
    nets = dict(networks or {})
    run_levels = "slice-level" in tasks
    if "certainty" in tasks and not run_levels and not all_slices and "slice-level" not in nets \
            and model_installed(slice_level_model):
        run_levels = True  # the certainty card assesses LV slices only
    for task, name, trainer in (("slice-level", slice_level_model, "slice-level"),
                                ("certainty", certainty_model, "lge-certainty")):
        if task not in nets and (task in tasks or (task == "slice-level" and run_levels)):
            nets[task] = load_installed(name, dev, trainer)
    t0 = time.perf_counter()
    out = [SliceQuality(i) for i in range(n)]
    models = []
    torch.set_grad_enabled(False)
    try:
        if run_levels:
            model, entry = nets["slice-level"]
            model.eval()
            report(progress, "slice level", 0, n, entry.name)
            p = predict_probabilities(model, _inputs(arr, int(entry.arch_args.get("size", 224))), dev)
            for s, row in zip(out, p):
                s.slice_class = SLICE_CLASSES[int(row.argmax())]
                s.probabilities = {c: round(float(v), 4) for c, v in zip(SLICE_CLASSES, row)}
            unsure = [s.index + 1 for s, row in zip(out, p) if row.max() < LEVEL_CONFIDENCE]
            if unsure:
                notes.append(f"slice level uncertain on slice(s) {', '.join(map(str, unsure))} (highest class "
                             f"probability < {LEVEL_CONFIDENCE}): check that they are short-axis LGE of the heart")
            models.append(_model_record(entry))
        elif "certainty" in tasks and not all_slices:
            notes.append("no slice-level model: every slice assessed for LGE certainty, including any beyond the "
                         "base or apex")
        if "certainty" in tasks:
            model, entry = nets["certainty"]
            model.eval()
            thr = float(threshold if threshold is not None else entry.calibration.get("operating_threshold", 0.5))
            todo = [s for s in out if all_slices or s.slice_class in (None, "LV")]
            for s in out:
                if s not in todo:
                    s.reason = f"{s.slice_class}: not assessed (the certainty classifier reads LV slices)"
            report(progress, "LGE certainty", 0, len(todo), entry.name)
            if todo:
                size = int(entry.arch_args.get("size", 224))
                p = predict_probabilities(model, _inputs(arr[[s.index for s in todo]], size), dev)[:, 1]
                for s, v in zip(todo, p):
                    s.p_low_certainty = round(float(v), 4)
                    s.flag = bool(v >= thr)
            models.append(_model_record(entry))
        else:
            thr = None
    finally:
        torch.set_grad_enabled(True)
    seconds = time.perf_counter() - t0
    report(progress, "quality", n, n, "done")
    return QualityResult(series or str(image.meta.get("SeriesDescription", "")), kind, tuple(tasks), out,
                         None if thr is None else round(thr, 4), stack_sentence(out), seconds,
                         1000.0 * seconds / n, models, notes, arr, hide_non_lv)


def load_stack(path, force: bool = False):
    """(image, description, kind, notes) of a command's input: a DICOM folder holding one LGE series
    (PSIR preferred over magnitude; or exactly one series of any kind, then checked) or an image file."""
    from pathlib import Path

    from ..image import Image
    from ..io import image_or_scan, load_series
    found = image_or_scan(path, "input")
    if isinstance(found, Image):
        kind = found.meta.get("kind")
        desc = str(found.meta.get("SeriesDescription", Path(path).name))
        notes = check_series_kind(kind, "from the image file's header" if kind else "an image file carries no DICOM "
                                  "classification", desc, force)
        return found, desc, kind, notes
    series = found.series
    # PSIR preferred over the magnitude image of the same acquisition (the card's images)
    lge = [s for s in series if s.kind == "lge_psir"] or [s for s in series if s.kind == "lge_magnitude"]
    if len(lge) > 1:
        names = ", ".join(repr(s.description) for s in lge)
        raise InputError(f"{path}: {len(lge)} LGE series ({names}); give the folder of one")
    pick = lge[0] if lge else (series[0] if len(series) == 1 else None)
    if pick is None:
        seen = ", ".join(f"{s.description!r} ({s.kind})" for s in series) or "nothing"
        raise InputError(f"{path}: no short-axis LGE series; found {seen}")
    notes = check_series_kind(pick.kind, pick.kind_reason, pick.description, force)
    img = load_series(pick)
    if pick.unreadable_files:
        notes.append(f"{len(pick.unreadable_files)} file(s) of the series could not be read and are missing")
    return img, pick.description, pick.kind, notes


def run_step(context) -> Any:
    """`cmr run` step: slice level, then LGE certainty on the LV slices, of every short-axis LGE stack."""
    import re

    from ..contract import StepResult
    from ..errors import NotApplicableError
    from ..io import load_series
    from .outputs import write_result
    lges = context.series(*LGE_KINDS)
    if not lges:
        raise NotApplicableError("no short-axis LGE series in this study")
    out = context.folder("quality")
    results, lines, notes = [], [], []
    for i, series in enumerate(lges):
        img = load_series(series)
        extra = [f"{len(series.unreadable_files)} file(s) could not be read"] if series.unreadable_files else []
        result = classify_stack(img, series=series.description, kind=series.kind, notes=extra,
                                device=context.device, progress=context.progress)
        folder = out / f"{i + 1:02d}_{re.sub(r'[^A-Za-z0-9]+', '_', series.description).strip('_')}" \
            if len(lges) > 1 else out
        summary = write_result(result, folder)
        summary.update(out=str(folder.relative_to(context.out_dir)), series_uid=series.series_uid)
        results.append(summary)
        lines.append(f"{series.description}: {result.sentence}")
        notes += [f"{series.description}: {n}" for n in result.notes]
    levels = {r["series_uid"]: [s.get("class") for s in r["slices"]] for r in results}
    certainty = {r["series_uid"]: [s.get("p_low_certainty") for s in r["slices"]] for r in results}
    return StepResult({"series": results}, lines, {"slice_levels": levels, "lge_certainty": certainty}, notes)

"""Landmarks pipeline: short-axis images → RV insertion / LV centre per slice → AHA segments and
per-segment statistics (docs/methods/landmarks.md).

:func:`detect` (one image, a slice or a stack → :class:`LandmarkResult`) is the single
computation that `cmr landmarks`, `cmr run` (:func:`run_step`) and the Slicer worker call;
:func:`process_input` applies it to a folder or file and writes each result with
:mod:`cmrlib.landmarks.outputs`.

No landmarks, with a reason, rather than a confident wrong point: a plane that holds the
long axis (geometry), an empty slice, a slice whose mask holds no myocardium, a slice the
LV-presence gate does not recognise as showing an LV with its RV insertion point
(:mod:`cmrlib.landmarks.presence`: too basal, too apical, not cardiac), and any slice whose two
stages or test-time flip disagree (confidence under :data:`cmrlib.landmarks.infer.MIN_CONFIDENCE`).
With a myocardium mask the LV centre becomes the centroid of the slice's myocardium (when
it is near the network's point), the RV insertion point is moved along the RV entry line to
the epicardial contour (card), and the AHA segments (:mod:`cmrlib.aha`) and the statistics of
the image's values per segment follow (T1 maps: myocardial T1 per segment, ms).
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

MODEL_NAME = "landmarks-compact"
PRESENCE_MODEL = "landmarks-presence-compact"  # the LV-presence gate (cmrlib.landmarks.presence)
SERIES_KINDS = ("t1map", "lge_psir", "lge_magnitude")
MASK_CENTRE_MAX_MM = 15.0  # mask centroid accepted as the LV centre within this of the network's
MIN_POINT_DISTANCE_MM = 5.0  # closer points give no usable angular reference
LEVEL_WORDS = re.compile(r"\b(basal|base|mid|apical|apex)\b", re.IGNORECASE)


@dataclass
class SliceLandmarks:
    """One image's points (``[column, row]`` pixels and LPS mm) or the reason there are none."""

    index: int
    lv_centre_px: list[float] | None = None
    rv_insertion_px: list[float] | None = None
    lv_centre_lps: list[float] | None = None
    rv_insertion_lps: list[float] | None = None
    confidence: float | None = None
    reason: str | None = None
    disagreement_mm: float | None = None
    level: str | None = None  # AHA level when segments were made
    lv_presence: float | None = None  # the LV-presence gate's p (an LV with its RV insertion point)

    def to_dict(self) -> dict[str, Any]:
        r = lambda v: None if v is None else [round(float(x), 3) for x in v]  # noqa: E731
        return {"index": self.index, "lv_centre_px": r(self.lv_centre_px), "rv_insertion_px": r(self.rv_insertion_px),
                "lv_centre_lps": r(self.lv_centre_lps), "rv_insertion_lps": r(self.rv_insertion_lps),
                "confidence": None if self.confidence is None else round(float(self.confidence), 4),
                "reason": self.reason,
                "disagreement_mm": None if self.disagreement_mm is None else round(float(self.disagreement_mm), 3),
                "level": self.level,
                "lv_presence": None if self.lv_presence is None else round(float(self.lv_presence), 4)}


@dataclass
class LandmarkResult:
    """Landmarks of every slice of one image; segments and statistics when a mask was given."""

    image: Image
    slices: list[SliceLandmarks]
    model: str
    model_version: str
    notice: str
    seconds: float
    stages: int = 2
    segments: Image | None = None  # AHA labels 0..17 on the image grid
    segment_stats: list[dict] = field(default_factory=list)
    values_unit: str = ""
    mask_source: str | None = None
    notes: list[str] = field(default_factory=list)
    presence: dict | None = None  # the LV-presence gate: model name, version, threshold (None: not used)

    @property
    def series(self) -> str:
        return str(self.image.meta.get("SeriesDescription", ""))

    def to_dict(self) -> dict[str, Any]:
        found = [s for s in self.slices if s.lv_centre_px is not None]
        return {"series": self.series, "kind": self.image.meta.get("kind"), "seconds": round(self.seconds, 4),
                "model": {"name": self.model, "version": self.model_version, "notice": self.notice},
                "stages": self.stages, "n_slices": len(self.slices), "n_with_landmarks": len(found),
                "mean_confidence": round(float(np.mean([s.confidence for s in found])), 4) if found else None,
                "segments": self.segments is not None, "values_unit": self.values_unit,
                "segment_stats": self.segment_stats, "mask": self.mask_source, "presence_gate": self.presence,
                "notes": self.notes}


# ---- the computation ------------------------------------------------------------------------------
def model_installed(name: str = MODEL_NAME) -> bool:
    from ..models.zoo import model_installed as installed
    return installed(name)


def _load(name: str, device):
    from ..models.zoo import load_installed
    return load_installed(name, device, "landmarks")


def _refine_to_epicardium(rv: np.ndarray, lv: np.ndarray, myo: np.ndarray, spacing) -> np.ndarray:
    """The point on the ray LV centre → RV point where it leaves the myocardium (outermost
    myocardium pixel within 1.6× the predicted distance); the prediction if the ray meets none."""
    sp = np.asarray(spacing[:2], float)
    d_mm = (rv - lv) * sp
    length = float(np.hypot(*d_mm))
    if length < 1e-6:
        return rv
    steps = np.linspace(0.0, 1.6, int(1.6 * length / 0.25) + 2)
    pts = lv[None] + steps[:, None] * (rv - lv)[None]
    c, r = np.round(pts[:, 0]).astype(int), np.round(pts[:, 1]).astype(int)
    inside = (c >= 0) & (r >= 0) & (c < myo.shape[1]) & (r < myo.shape[0])
    hit = np.zeros(len(steps), bool)
    hit[inside] = myo[r[inside], c[inside]]
    if not hit.any() or hit[0]:  # no wall on the ray, or the centre itself on the wall: keep the prediction
        return rv
    # the first outer boundary after entering the wall: last hit of the first run of hits
    first = int(np.argmax(hit))
    end = first
    while end + 1 < len(hit) and hit[end + 1]:
        end += 1
    return pts[end]


def _mask_centre(lv: np.ndarray, myo: np.ndarray, spacing) -> np.ndarray:
    """With a mask, the LV centre is the centroid of the slice's myocardium (for a ring, its
    centre) when that lies within :data:`MASK_CENTRE_MAX_MM` of the network's LV centre (the
    same ventricle); otherwise the network's point is kept."""
    rows, cols = np.nonzero(myo)
    centre = np.array([cols.mean(), rows.mean()])
    if float(np.hypot(*((centre - lv) * np.asarray(spacing[:2])))) <= MASK_CENTRE_MAX_MM:
        return centre
    return lv


def aha_levels(image: Image, myo: np.ndarray, cavity: np.ndarray | None, have: list[bool],
            level: str | None) -> list[str | None]:
    """AHA level per slice: ``level`` for all when given, else thirds of the stack's LV extent
    (slices with landmarks and myocardium; a slice with myocardium but no cavity is the cap).

    ``myo`` / ``cavity``: boolean ``[slice, row, col]`` (cavity None for a binary mask);
    ``have``: per slice whether it has both landmarks. Slices outside get None. Also used by
    CMRSegmentation's live recompute, so the panel and `cmr landmarks` agree."""
    from ..aha import long_axis_positions, slice_levels
    n = myo.shape[0]
    use = [k for k in range(n) if have[k] and myo[k].any()]
    if level is not None:
        return [level if k in use else None for k in range(n)]
    if len(use) < 2:
        return [None] * n
    pos = long_axis_positions(image)
    cap = [bool(cavity is not None and not cavity[k].any()) for k in use]
    lv = slice_levels([pos[k] for k in use], cap=cap)
    out: list[str | None] = [None] * n
    for k, v in zip(use, lv):
        out[k] = v
    return out


def _presence_gate(name: str | None, threshold: float | None, device, notes: list[str]):
    """(the LV-presence network or None, {name, version, threshold} or None); a note when the
    default gate is not installed (then only the confidence check refuses images without an LV)."""
    if name is None:
        return None, None
    from ..models.zoo import model_installed as installed
    if not installed(name):
        if name != PRESENCE_MODEL:
            raise InputError(f"no LV-presence model {name!r} is installed (`cmr models list`)")
        notes.append(f"no LV-presence gate installed ({PRESENCE_MODEL}): only the stages' agreement refuses "
                     "images without an LV")
        return None, None
    from ..models.zoo import load_installed
    net, entry = load_installed(name, device, "landmarks-presence")
    t = float(threshold if threshold is not None else (entry.calibration or {}).get("presence_threshold", 0.5))
    if not 0.0 <= t <= 1.0:
        raise InputError(f"--presence-threshold must lie in 0–1; got {t}")
    return net, {"model": entry.name, "version": entry.version, "threshold": round(t, 4),
                 "fitted": threshold is None}


def detect(image: Image, *, labels: np.ndarray | None = None, mask_source: str | None = None,
           level: str | None = None, model_name: str = MODEL_NAME, device: str | None = None, stages: int = 2,
           presence_model: str | None = PRESENCE_MODEL, presence_threshold: float | None = None,
           progress: ProgressCallback | None = None) -> LandmarkResult:
    """Landmarks (and with ``labels``, AHA segments and per-segment statistics) of ``image``.

    ``labels``: label map on the image grid ``[slice, row, col]`` (1 myocardium, 2 blood pool,
    3 scar; a binary mask is myocardium). ``level``: the AHA level of every slice (for
    single-slice images, whose level the stack cannot tell); default from the stack's thirds.
    ``presence_model``: the LV-presence gate (:mod:`cmrlib.landmarks.presence`; None: not
    used, the default one is skipped with a note when not installed); ``presence_threshold``
    overrides its fitted threshold.
    """
    from ..device import pick_device
    from .geometry import is_mirrored
    from .infer import MIN_CONFIDENCE, predict
    if image.is_sequence:
        image = image.frame(0)
    arr = np.asarray(image.array, np.float32).reshape(image.spatial_shape)
    n = arr.shape[0]
    if not np.isfinite(arr).all():
        raise InputError("the image holds NaN or infinite values")
    dev = pick_device(device) if not hasattr(device, "type") else device
    model, entry = _load(model_name, dev)
    t0 = time.perf_counter()
    slices = [SliceLandmarks(k) for k in range(n)]
    myo = cavity = None
    notes: list[str] = []
    gate, gate_info = _presence_gate(presence_model, presence_threshold, dev, notes)
    if labels is not None:
        lab = np.asarray(labels).reshape(image.spatial_shape)
        binary = set(np.unique(lab).tolist()) <= {0, 1}
        myo = lab != 0 if binary else np.isin(lab, (1, 3))
        cavity = None if binary else lab == 2
        if not myo.any():
            notes.append("the mask holds no myocardium (label 1 or 3): no AHA segments")
    try:
        mirrored = is_mirrored(image.direction)
    except InputError as exc:
        for s in slices:
            s.reason = f"not a short-axis image: {exc}"
        mirrored = None
    todo = []
    for s in slices:
        if s.reason:
            continue
        img = arr[s.index]
        if not np.any(img) or float(img.std()) == 0.0:
            s.reason = "the slice is empty (constant intensity)"
        elif myo is not None and myo.any() and not myo[s.index].any():
            s.reason = "the mask holds no myocardium in this slice (too apical / too basal?)"
        else:
            todo.append(s)
    spacing = (image.spacing[0], image.spacing[1])
    for i, s in enumerate(todo):
        report(progress, "landmarks", i, len(todo), f"slice {s.index + 1}/{n}")
        if gate is not None:
            from .presence import probabilities
            s.lv_presence = float(probabilities(gate, [arr[s.index]], spacing, bool(mirrored), dev)[0])
            if s.lv_presence < gate_info["threshold"]:
                s.reason = (f"no LV with its RV insertion point recognised (LV-presence p {s.lv_presence:.2f} < "
                            f"{gate_info['threshold']:.2f}: too basal, too apical, not cardiac?)")
                continue
        p = predict(model, [arr[s.index]], spacing, bool(mirrored), stages=stages, device=dev)[0]
        s.confidence, s.disagreement_mm = p.confidence, p.disagreement_mm
        rows, cols = arr.shape[1:]
        inside = all(-0.5 <= q[0] <= cols - 0.5 and -0.5 <= q[1] <= rows - 0.5 for q in (p.rv_px, p.lv_px))
        if p.confidence < MIN_CONFIDENCE:
            s.reason = (f"low confidence {p.confidence:.2f}: the two stages / the flipped image disagree by "
                        f"{p.disagreement_mm:.1f} mm (no LV visible, too apical, or not a short-axis image?)")
            continue
        if not inside:
            s.reason = "the predicted points lie outside the image"
            continue
        apart = float(np.hypot(*((p.rv_px - p.lv_px) * np.asarray(spacing))))
        if apart < MIN_POINT_DISTANCE_MM:
            s.reason = (f"the predicted points are {apart:.1f} mm apart (an LV centre lies at least a wall and a "
                        "cavity radius from the insertion point): unreliable")
            continue
        rv, lv = p.rv_px, p.lv_px
        if myo is not None and myo[s.index].any():
            lv = _mask_centre(lv, myo[s.index], spacing)
            refined = _refine_to_epicardium(rv, lv, myo[s.index], spacing)
            if float(np.hypot(*((refined - lv) * np.asarray(spacing)))) >= MIN_POINT_DISTANCE_MM:
                rv = refined
        s.lv_centre_px, s.rv_insertion_px = [float(v) for v in lv], [float(v) for v in rv]
        s.lv_centre_lps = image.index_to_lps([lv[0], lv[1], s.index]).tolist()
        s.rv_insertion_lps = image.index_to_lps([rv[0], rv[1], s.index]).tolist()
    report(progress, "landmarks", len(todo), len(todo), "done")
    result = LandmarkResult(image, slices, entry.name, entry.version, entry.notice, 0.0, stages,
                            mask_source=mask_source, notes=notes, presence=gate_info)
    if entry.phantom_trained:
        result.notes.append(f"landmarks: {entry.notice}")
    if myo is not None and myo.any() and mirrored is not None:
        _segments(result, arr, myo, cavity, level)
    result.seconds = time.perf_counter() - t0
    from ..io import unreadable_notes
    result.notes.extend(unreadable_notes(image, "the landmarks"))
    return result


def _segments(result: LandmarkResult, arr: np.ndarray, myo: np.ndarray, cavity, level: str | None) -> None:
    from ..aha import aha_volume, segment_stats
    image = result.image
    have = [s.lv_centre_px is not None for s in result.slices]
    levels = aha_levels(image, myo, cavity, have, level)
    if not any(levels):
        result.notes.append("no AHA segments: " + ("no slice has both landmarks and myocardium" if not any(have) else
                            "the AHA level of a single slice is unknown (give --level, or a description naming "
                            "basal / mid / apical)"))
        return
    skipped: list[dict] = []
    seg = aha_volume(myo, [s.lv_centre_px for s in result.slices], [s.rv_insertion_px for s in result.slices],
                     levels, direction=image.direction, spacing=image.spacing[:2], skipped=skipped)
    for s, lv in zip(result.slices, levels):
        s.level = lv
    result.segments = Image(seg.astype(np.uint8), image.spacing, image.origin, image.direction, False,
                            {"labels": "AHA segments 1-17", "SeriesDescription": f"{result.series} AHA segments"})
    kind = image.meta.get("kind")
    valid = arr > 0 if kind == "t1map" else None
    result.segment_stats = segment_stats(arr, seg, valid)
    result.values_unit = "ms" if kind == "t1map" else str(image.meta.get("units", ""))
    result.notes.extend(f"slice {d['index'] + 1}: {d['reason']}" for d in skipped if have[d["index"]])


def level_from_description(description: str) -> str | None:
    """"basal" / "mid" / "apical" when the series description names one level."""
    words = {w.lower() for w in LEVEL_WORDS.findall(description or "")}
    mapped = {{"base": "basal", "apex": "apical"}.get(w, w) for w in words}
    return mapped.pop() if len(mapped) == 1 else None


# ---- folders, masks, cmr run --------------------------------------------------------------------------
def labels_on_grid(labels: Image | str | Path, grid: Image) -> tuple[np.ndarray, str | None]:
    """A label map on ``grid`` (nearest-neighbour resampled when on another grid; the note says so)."""
    import SimpleITK as sitk
    from ..io import read_image
    from ..io.files import to_sitk
    lab = read_image(labels) if not isinstance(labels, Image) else labels
    if lab.is_sequence:
        lab = lab.frame(0)
    target = Image(np.zeros(grid.spatial_shape, np.uint8), grid.spacing, grid.origin, grid.direction)
    axes = 2 if grid.spatial_shape[0] == 1 else 3  # one slice: its slice axis does not matter
    if (lab.spatial_shape == target.spatial_shape and np.allclose(lab.spacing[:axes], target.spacing[:axes], atol=1e-3)
            and np.allclose(lab.origin, target.origin, atol=1e-2)
            and np.allclose(lab.direction[:, :axes], target.direction[:, :axes], atol=1e-4)):
        # the same grid up to DICOM's decimal rounding of positions and orientations
        return np.asarray(lab.array).reshape(grid.spatial_shape), None
    res = sitk.Resample(to_sitk(lab.with_array(np.asarray(lab.array).astype(np.int16))), to_sitk(target),
                        sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    out = sitk.GetArrayFromImage(res).reshape(grid.spatial_shape)
    if not out.any():
        raise InputError("the mask does not overlap the image (another grid, no common voxel)")
    return out, ("the mask was on another grid (slice order, orientation or size differ): resampled "
                 "(nearest neighbour) onto the image")


def _series_folder(out: Path, name: str, number: int | None, n_series: int) -> Path:
    if n_series == 1:
        return out
    return out / f"{number or 0:03d}_{re.sub(r'[^A-Za-z0-9]+', '_', name).strip('_')}"


def process_input(source: Path, out: Path, *, mask_path: str | None = None, level: str | None = None,
                  device: str | None = None, progress: ProgressCallback | None = None, scan=None,
                  masks: dict[str, Image] | None = None, model_name: str = MODEL_NAME,
                  presence_model: str | None = PRESENCE_MODEL,
                  presence_threshold: float | None = None) -> list[dict[str, Any]]:
    """Every short-axis T1 map / LGE series of ``source`` (DICOM or study folder, or one image
    file): results into ``out`` (a sub-folder per series when several); returns result dicts.

    Masks: ``masks`` (label images by SeriesInstanceUID from an earlier `cmr run` step), else
    ``mask_path``, else the phantom's truth labels when ``source`` is a phantom study.
    Every input is loaded and checked before anything is written.
    """
    from ..io import load_series, read_image, scan_folder
    from ..io.files import SUFFIXES
    from ..phantom.truth import find_phantom_mask
    from .outputs import write_result
    jobs = []
    if source.is_file() and source.name.lower().endswith(SUFFIXES):
        image = read_image(source)
        jobs.append((image.meta.get("SeriesDescription") or source.name, image, None, None))
    else:
        scan = scan or scan_folder(source, progress)
        chosen = [s for s in scan.series if s.kind in SERIES_KINDS]
        if not chosen:
            found = ", ".join(f"{s.description!r} ({s.kind})" for s in scan.series) or "nothing"
            raise InputError(f"no short-axis T1 map or LGE series in {scan.root}; found {found}")
        for s in chosen:
            jobs.append((s.description, load_series(s), s, None))
    prepared = []
    for name, image, series, _ in jobs:
        labels, note, mask_source = None, None, None
        if masks and series is not None and series.series_uid in masks:
            mask_img = masks[series.series_uid]
            labels, note = labels_on_grid(mask_img, image)
            mask_source = str(getattr(mask_img, "meta", {}).get("source") or "from an earlier step")
            failed = list(getattr(mask_img, "meta", {}).get("qc_failed_slices") or [])
            if failed:  # a QC failure of the mask travels into every result made from it
                qc = ("the mask failed its QC on slice(s) " + ", ".join(str(k + 1) for k in failed)
                      + f" ({mask_source}): the AHA segments and statistics there need review")
                note = f"{note}; {qc}" if note else qc
        elif mask_path:
            labels, note = labels_on_grid(mask_path, image)
            mask_source = str(mask_path)
        elif series is not None:
            truth = find_phantom_mask(series, source if source.is_dir() else source.parent)
            if truth is not None:
                labels, note = labels_on_grid(truth, image)
                mask_source = "phantom ground truth"
        prepared.append((name, image, series, labels, note, mask_source))
    # single-slice T1 maps of one study: their AHA levels from their positions together
    levels = _series_levels([(im, s) for _, im, s, lab, _, _ in prepared]) if level is None else {}
    results = []
    for name, image, series, labels, note, mask_source in prepared:
        lv = level or levels.get(id(image)) or (level_from_description(name) if image.spatial_shape[0] == 1 else None)
        result = detect(image, labels=labels, mask_source=mask_source, level=lv, device=device, progress=progress,
                        model_name=model_name, presence_model=presence_model, presence_threshold=presence_threshold)
        if note:
            result.notes.insert(0, note)
        target = out if series is None else _series_folder(out, name, series.series_number, len(prepared))
        summary = write_result(result, target)
        summary.update(out=str(target))
        results.append(summary)
    return results


def _series_levels(items: list[tuple[Image, Any]]) -> dict[int, str]:
    """AHA level of each single-slice T1 map from the positions of all of them (thirds)."""
    from ..aha import long_axis_positions, slice_levels
    singles = [im for im, s in items if im.spatial_shape[0] == 1 and im.meta.get("kind", "t1map") == "t1map"]
    if len(singles) < 3:
        return {}
    try:
        pos = [long_axis_positions(im)[0] for im in singles]
    except InputError:
        return {}
    if max(pos) - min(pos) < 10.0:  # all at one position: the thirds say nothing
        return {}
    return {id(im): lv for im, lv in zip(singles, slice_levels(pos))}


def run_step(context) -> Any:
    """`cmr run` step: landmarks on every short-axis T1 map and LGE series; with a myocardium
    mask (an earlier step's, else the phantom's truth) AHA segments and T1 per segment."""
    from ..contract import StepResult
    out = context.folder("landmarks")
    results = process_input(context.scan.root, out, device=context.device, progress=context.progress,
                            scan=context.scan, masks=context.results.get("myocardium_mask"))
    lines, provided, segments = [], {}, {}
    uids = {s.description: s.series_uid for s in context.scan.series}
    for r in results:
        folder = Path(r["out"])
        r["out"] = str(folder.relative_to(context.out_dir))
        uid = uids.get(r["series"])
        provided[uid or r["series"]] = folder / "landmarks.json"
        if r["segments"]:
            segments[uid or r["series"]] = folder / "aha_segments.nrrd"
        t1 = ""
        if r["segments"] and r["kind"] == "t1map":
            medians = [s["median"] for s in r["segment_stats"] if s["median"] is not None]
            t1 = (f", median myocardial T1 per AHA segment {min(medians):.0f}–{max(medians):.0f} ms "
                  f"({len(medians)} segments)" if medians else "")
        lines.append(f"{r['series']}: landmarks on {r['n_with_landmarks']}/{r['n_slices']} slice(s)" + t1)
    notes = [f"{r['series']}: {n}" for r in results for n in r["notes"] if "could not be read" in n]
    return StepResult({"series": results}, lines, {"landmarks": provided, "aha_segments": segments}, notes)

"""Landmarks' output folder: file names, the writer and reader shared by the CLI, `cmr run` and
the Slicer adapter, the figures, and the capability's section of ``report.html``.

One folder per series (see ``CAPABILITY.outputs`` in :mod:`cmrlib.landmarks.capability`)::

    landmarks.json  result.json  landmarks.png  [aha_segments.nrrd  segments.csv  bullseye.png]

``landmarks.json``: ``slices`` — one entry per image (slice) with ``index``,
``lv_centre_px`` / ``rv_insertion_px`` as ``[column, row]`` pixels of that image (0-based,
pixel centres at integers), the same points as ``lv_centre_lps`` / ``rv_insertion_lps`` (LPS
mm), ``confidence`` (0–1), ``lv_presence`` (the LV-presence gate's p, 0–1; null when the gate
did not run) and ``reason`` (why there are no landmarks; else null).
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from ..contract import Figure, Finding, ReportSection
from ..io import read_image, write_image

LANDMARKS, RESULT, OVERLAY, SEGMENTS, SEGMENTS_CSV, BULLSEYE = (
    "landmarks.json", "result.json", "landmarks.png", "aha_segments.nrrd", "segments.csv", "bullseye.png")
CSV_FIELDS = ("segment", "name", "mean", "sd", "median", "n_pixels")


def landmarks_document(result) -> dict[str, Any]:
    """``landmarks.json`` of a :class:`~cmrlib.landmarks.pipeline.LandmarkResult`."""
    img = result.image
    return {"series": result.series, "kind": img.meta.get("kind"),
            "grid": {"shape_slice_row_col": list(img.spatial_shape), "spacing_mm": list(img.spacing),
                     "origin_lps_mm": list(img.origin), "direction_lps": np.asarray(img.direction).tolist()},
            "conventions": {"px": "[column, row] of that slice, 0-based, pixel centres at integers",
                            "lps": "DICOM patient coordinates (LPS), mm",
                            "rv_insertion": "anterior RV insertion point"},
            "model": {"name": result.model, "version": result.model_version, "notice": result.notice},
            "slices": [s.to_dict() for s in result.slices]}


def write_result(result, out: Path) -> dict[str, Any]:
    """Write a :class:`~cmrlib.landmarks.pipeline.LandmarkResult` into ``out``; return result.json's dict."""
    out.mkdir(parents=True, exist_ok=True)
    (out / LANDMARKS).write_text(json.dumps(landmarks_document(result), indent=2))
    summary = result.to_dict()
    figures = [write_overlay(result, out / OVERLAY)]
    if result.segments is not None:
        write_image(result.segments, out / SEGMENTS)
        with (out / SEGMENTS_CSV).open("w", newline="") as fh:
            w = csv.DictWriter(fh, CSV_FIELDS)
            w.writeheader()
            for row in result.segment_stats:
                w.writerow({k: ("" if row[k] is None else (round(row[k], 3) if isinstance(row[k], float) else row[k]))
                            for k in CSV_FIELDS})
        # medians, as the motion step's myocardial T1: robust to partial volume at a thin wall
        if result.image.meta.get("kind") == "t1map" and any(r["median"] is not None for r in result.segment_stats):
            from ..aha import bullseye
            values = {r["segment"]: r["median"] for r in result.segment_stats}
            lo, hi = t1_bullseye_range(values)
            bullseye(values, out / BULLSEYE, title=f"{result.series}: median myocardial T1", unit="T1 (ms)", vmin=lo, vmax=hi)
            figures.append(BULLSEYE)
    summary["figures"] = figures
    (out / RESULT).write_text(json.dumps(summary, indent=2))
    return summary


def t1_bullseye_range(values: dict[int, float | None]) -> tuple[float, float]:
    """Colour range (ms) of a T1 bull's-eye: 0–1000 ms for post-contrast values (median under
    700 ms), else 800–1600 ms (native); also the Slicer panel's live bull's-eye."""
    finite = [v for v in values.values() if v is not None and np.isfinite(v)]
    return (0.0, 1000.0) if finite and np.nanmedian(finite) < 700 else (800.0, 1600.0)


def write_overlay(result, path: Path) -> str:
    """``landmarks.png``: each slice with the LV centre (+), the RV insertion point (x), the RV
    entry line, and the reason where there are no landmarks."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    arr = np.asarray(result.image.array, np.float32).reshape(result.image.spatial_shape)
    n = arr.shape[0]
    ncol = min(n, 6)
    nrow = (n + ncol - 1) // ncol
    fig, axes = plt.subplots(nrow, ncol, figsize=(2.6 * ncol, 2.6 * nrow + 0.3), squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for s, ax in zip(result.slices, axes.ravel()):
        img = arr[s.index]
        lo, hi = np.percentile(img, [1, 99]) if img.any() else (0, 1)
        ax.imshow(img, cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1, interpolation="nearest")
        if s.lv_centre_px is not None:
            (lc, lr), (rc, rr) = s.lv_centre_px, s.rv_insertion_px
            ax.plot([rc, lc], [rr, lr], "-", color="yellow", lw=1)
            ax.plot(lc, lr, "+", color="red", ms=9, mew=2)
            ax.plot(rc, rr, "x", color="cyan", ms=7, mew=2)
            ax.set_title(f"{s.index + 1}: conf {s.confidence:.2f}", fontsize=8)
        else:
            ax.set_title(f"{s.index + 1}: none", fontsize=8)
            ax.text(0.5, 0.05, (s.reason or "")[:60], transform=ax.transAxes, ha="center", va="bottom", fontsize=5,
                    color="orange", wrap=True)
    fig.suptitle(f"{result.series} — LV centre (+), RV insertion (x); {result.notice}", fontsize=8)
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)
    return path.name


def write_example(folder: Path) -> None:
    """A small real result: the bundled network on a 3-slice phantom LGE stack with its truth
    labels (so AHA segments and per-segment statistics are written too)."""
    from ..phantom import Phantom, PhantomOptions, sample_subject
    from .pipeline import detect
    subject = sample_subject(11, PhantomOptions(matrix=96, la=False))
    k = subject.n_slices // 2
    psir, _ = Phantom(subject).lge([k - 2, k, k + 2])
    write_result(detect(psir.image, labels=psir.labels.array, mask_source="phantom truth"), Path(folder))


def read_result(folder: str | Path) -> dict[str, Any]:
    """A landmarks output folder back: ``landmarks`` (landmarks.json), ``summary`` (result.json),
    ``segments`` (the AHA label Image or None) and ``segment_stats`` (rows of segments.csv)."""
    folder = Path(folder)
    doc = json.loads((folder / LANDMARKS).read_text())
    summary = json.loads((folder / RESULT).read_text())
    segments = read_image(folder / SEGMENTS) if (folder / SEGMENTS).is_file() else None
    stats = []
    if (folder / SEGMENTS_CSV).is_file():
        with (folder / SEGMENTS_CSV).open(newline="") as fh:
            for row in csv.DictReader(fh):
                stats.append({"segment": int(row["segment"]), "name": row["name"],
                              **{k: (float(row[k]) if row[k] != "" else None) for k in ("mean", "sd", "median")},
                              "n_pixels": int(row["n_pixels"])})
    return {"landmarks": doc, "summary": summary, "segments": segments, "segment_stats": stats}


def report_section(step: dict[str, Any], study_out: Path) -> ReportSection:
    """Landmarks' part of ``report.html``: landmarks found per series, myocardial T1 per AHA
    segment of the T1 maps, the overlays and bull's-eyes."""
    section = ReportSection("Landmarks and AHA segments (CMRSegmentation)")
    notices = set()
    for r in step.get("series", []):
        name = r.get("series", "series")
        section.findings.append(Finding(f"{name}: slices with landmarks", f"{r['n_with_landmarks']} / {r['n_slices']}",
                                        "", f"mean confidence {r['mean_confidence']:.2f}"
                                        if r.get("mean_confidence") is not None else "no landmarks"))
        stats = [s for s in r.get("segment_stats", []) if s.get("median") is not None]
        if stats and r.get("kind") == "t1map":
            text = ", ".join(f"{s['segment']}: {s['median']:.0f}" for s in stats)
            section.findings.append(Finding(f"{name}: median myocardial T1 per AHA segment", text, "ms",
                                            f"mask: {r.get('mask')}"))
        for fig in r.get("figures", []):
            caption = "landmarks (LV centre +, RV insertion x)" if fig == OVERLAY else "median myocardial T1 bull's-eye (ms)"
            section.figures.append(Figure(str(Path(r["out"]) / fig), f"{name}: {caption}"))
        notices.add(r.get("model", {}).get("notice", ""))
        section.notes.extend(f"{name}: {n}" for n in r.get("notes", []) if not n.startswith("landmarks: "))
    section.notes.extend(f"landmark model: {n}" for n in sorted(notices) if n)
    return section

"""CMRStressT1's output folder: file names, the writer and reader shared by the CLI, `cmr run`
and the Slicer adapter, the figures, and the section of ``report.html``.

One folder per rest / stress pair (``CAPABILITY.outputs`` in :mod:`cmrlib.stress.capability`)::

    stress_registered.nrrd  dt1_map.nrrd  myocardium.nrrd  result.json  dt1.png
    [segments.csv  bullseye.png  aha_segments.nrrd]

``dt1_map.nrrd``: dT1 (%) on the rest grid, every pixel with rest signal (clipped ±100 %);
the mean per slice and segment is taken inside ``myocardium.nrrd`` (the rest mask used).
``result.json``: ``dt1_slice_percent`` (one value per rest slice, slice order), ``segments``
(AHA id → mean dT1 %), ``segment_stats`` (mean, sd, median, pixels), ``dice_before`` /
``dice_after`` (with masks of both maps), ``slices`` (per slice: dT1 mean and sd, pixels,
Dice, through-plane distance mm, mask QC, map quality: the share of implausible ROI pixels in the
rest and the registered stress map and ``map_qc_failed``), ``map_qc_failed_slices``, ``method``, ``model`` / ``model_version``,
``seconds``, ``notes``.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import write_text_atomic
from ..contract import Figure, Finding, ReportSection, Table
from ..io import read_image, write_image

REGISTERED, DT1_MAP, MYOCARDIUM, RESULT, FIGURE, SEGMENTS_CSV, BULLSEYE, SEGMENT_MAP = (
    "stress_registered.nrrd", "dt1_map.nrrd", "myocardium.nrrd", "result.json", "dt1.png", "segments.csv",
    "bullseye.png", "aha_segments.nrrd")
CSV_FIELDS = ("segment", "name", "mean_percent", "sd_percent", "median_percent", "n_pixels")
#: bull's-eye colour bands (%): the card's suggested thresholds of a blunted response at 3, 6 and 9 %
BULLSEYE_BOUNDS = (-6.0, -3.0, 0.0, 3.0, 6.0, 9.0, 12.0)
#: dT1 display range of the overlays (%), diverging about 0
DISPLAY_RANGE = (-12.0, 12.0)


def write_result(result, out: Path) -> dict[str, Any]:
    """Every file of one pair into ``out``; returns the result.json dict."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_image(result.registered, out / REGISTERED)
    write_image(result.dt1, out / DT1_MAP)
    write_image(result.myocardium, out / MYOCARDIUM)
    summary = result.to_dict()
    figures = [write_figure(result, out / FIGURE)]
    if result.segments:
        write_image(result.segment_map, out / SEGMENT_MAP)
        with open(out / SEGMENTS_CSV, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(CSV_FIELDS)
            for r in result.segments:
                w.writerow([r["segment"], r["name"], *("" if r[k] is None else f"{r[k]:.3f}"
                                                       for k in ("mean", "sd", "median")), r["n_pixels"]])
        figures.append(write_bullseye({r["segment"]: r["mean"] for r in result.segments}, out / BULLSEYE,
                                      result.method))
    summary["figures"] = figures
    write_text_atomic(out / RESULT, json.dumps(summary, indent=2))
    return summary


def write_bullseye(values: dict[int, float | None], path: Path, method: str = "") -> str:
    from ..aha import bullseye
    bullseye(values, path, title=f"stress T1 reactivity dT1 per AHA segment ({method})", unit="dT1 (%)",
             cmap="RdYlBu", bounds=BULLSEYE_BOUNDS, label_fmt=".1f")
    return path.name


def write_figure(result, path: Path) -> str:
    """Per slice: rest map, registered stress map, dT1 over the grey rest map (diverging colours
    inside the myocardium, colour bar in %)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rest = np.asarray(result.rest.array, float)
    reg = np.asarray(result.registered.array, float)
    dt1 = np.asarray(result.dt1.array, float)
    myo = np.asarray(result.myocardium.array) > 0
    n = rest.shape[0]
    fig, axes = plt.subplots(n, 3, figsize=(9, 3 * n), squeeze=False)
    hi = float(np.percentile(rest[rest > 0], 99)) if (rest > 0).any() else 1.0
    im = None
    for k in range(n):
        s = result.slices[k]
        ys, xs = np.nonzero(myo[k]) if myo[k].any() else (np.array([0, rest.shape[1] - 1]), np.array([0, rest.shape[2] - 1]))
        pad = 12
        box = (slice(max(ys.min() - pad, 0), ys.max() + pad + 1), slice(max(xs.min() - pad, 0), xs.max() + pad + 1))
        axes[k, 0].imshow(rest[k][box], cmap="gray", vmin=0, vmax=hi)
        axes[k, 0].set_title(f"slice {k + 1}: rest T1", fontsize=8)
        axes[k, 1].imshow(reg[k][box], cmap="gray", vmin=0, vmax=hi)
        axes[k, 1].set_title("stress T1, registered", fontsize=8)
        axes[k, 2].imshow(rest[k][box], cmap="gray", vmin=0, vmax=hi)
        over = np.ma.masked_where(~myo[k][box], dt1[k][box])
        im = axes[k, 2].imshow(over, cmap="RdBu_r", vmin=DISPLAY_RANGE[0], vmax=DISPLAY_RANGE[1])
        value = "no myocardium" if s.dt1_percent is None else f"mean {s.dt1_percent:+.1f} %"
        flag = " (mask failed QC)" if s.mask_qc_failed else " (map quality failed)" if s.map_qc_failed else ""
        axes[k, 2].set_title(f"dT1 {value}{flag}", fontsize=8, color="orange" if flag else "black")
        for ax in axes[k]:
            ax.set_axis_off()
    if im is not None:
        bar = fig.colorbar(im, ax=axes[:, 2].tolist(), fraction=0.05, pad=0.02)
        bar.set_label("dT1 (%)")
    notice = f"; {result.model_notice}" if result.model_notice else ""
    fig.suptitle(f"stress-to-rest registration: {result.method}{notice}", fontsize=8)
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)
    return path.name


def read_result(folder: str | Path) -> dict[str, Any]:
    """A stress output folder back: ``summary`` (result.json), the Images ``registered``,
    ``dt1``, ``myocardium``, ``segments`` (AHA labels or None) and ``segment_stats`` (CSV rows)."""
    folder = Path(folder)
    summary = json.loads((folder / RESULT).read_text())
    stats = []
    if (folder / SEGMENTS_CSV).is_file():
        with (folder / SEGMENTS_CSV).open(newline="") as fh:
            for row in csv.DictReader(fh):
                stats.append({"segment": int(row["segment"]), "name": row["name"],
                              **{k: (float(row[k]) if row[k] != "" else None)
                                 for k in ("mean_percent", "sd_percent", "median_percent")},
                              "n_pixels": int(row["n_pixels"])})
    return {"summary": summary, "registered": read_image(folder / REGISTERED), "dt1": read_image(folder / DT1_MAP),
            "myocardium": read_image(folder / MYOCARDIUM),
            "segments": read_image(folder / SEGMENT_MAP) if (folder / SEGMENT_MAP).is_file() else None,
            "segment_stats": stats}


def write_example(folder: Path) -> None:
    """A small real result: a phantom rest / stress pair (mid slice, misregistered) with its truth
    masks and AHA segments, registered classically (no weights needed)."""
    from .evaluate import pair_images
    from .data import phantom_pairs
    from .pipeline import stress_t1
    pair = phantom_pairs([31], positions=("mid",))[0]
    write_result(stress_t1(**pair_images(pair), method="classical"), Path(folder))


def _map_quality(s: dict[str, Any]) -> str:
    shares = [s.get("rest_implausible_percent"), s.get("stress_implausible_percent")]
    if any(v is None for v in shares):
        return "–"
    return f"{'failed' if s.get('map_qc_failed') else 'passed'} (rest {shares[0]:.0f} %, stress {shares[1]:.0f} %)"


def report_section(step: dict[str, Any], study_out: Path) -> ReportSection:
    """CMRStressT1's part of ``report.html``: dT1 per slice and segment of each pair, Dice before /
    after, the figures."""
    section = ReportSection("Stress T1 reactivity, dT1 (CMRStressT1)")
    notices = set()
    for r in step.get("pairs", []):
        name = r.get("name", "pair")
        vals = [v for v in r.get("dt1_slice_percent", []) if v is not None]
        section.findings.append(Finding(f"{name}: mean dT1", round(float(np.mean(vals)), 2) if vals else None, "%",
                                        f"{r.get('method')}; normal response about 3–6 %"))
        if r.get("dice_before") is not None:
            section.findings.append(Finding(f"{name}: myocardial Dice rest vs stress",
                                            f"{r['dice_before']:.2f} → {r['dice_after']:.2f}", "", "before → after"))
        rows = [[str(s["index"] + 1), "–" if s["dt1_percent"] is None else f"{s['dt1_percent']:.2f}",
                 "–" if s["dt1_sd_percent"] is None else f"{s['dt1_sd_percent']:.2f}", str(s["n_pixels"]),
                 f"{s['distance_mm']:.1f}", "failed" if s["mask_qc_failed"] else "passed", _map_quality(s)]
                for s in r.get("slices", [])]
        if rows:
            section.tables.append(Table(f"{name}: dT1 per slice", ["slice", "dT1 (%)", "pixel sd (%)", "pixels",
                                                                   "through-plane distance (mm)", "mask QC",
                                                                   "map quality (implausible ROI pixels)"], rows,
                                        ["fail" if s["mask_qc_failed"] or s.get("map_qc_failed") else "pass"
                                         for s in r.get("slices", [])]))
        segs = [s for s in r.get("segment_stats", []) if s.get("mean") is not None]
        if segs:
            section.tables.append(Table(f"{name}: dT1 per AHA segment", ["segment", "name", "mean (%)", "sd (%)",
                                                                         "pixels"],
                                        [[str(s["segment"]), s["name"], f"{s['mean']:.2f}",
                                          "–" if s["sd"] is None else f"{s['sd']:.2f}", str(s["n_pixels"])]
                                         for s in segs]))
        for fig in r.get("figures", []):
            caption = "rest, registered stress and dT1" if fig == FIGURE else "dT1 bull's-eye (%)"
            section.figures.append(Figure(str(Path(r["out"]) / fig), f"{name}: {caption}"))
        if r.get("model_notice"):
            notices.add(r["model_notice"])
        section.notes.extend(f"{name}: {n}" for n in r.get("notes", []))
    section.notes.extend(f"registration model: {n}" for n in sorted(notices))
    return section

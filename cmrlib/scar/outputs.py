"""Scar quantification's output folder: file names, the writer and reader shared by the CLI,
`cmr run` and the Slicer adapter, the figures, and the section of ``report.html``.

One folder per LGE stack (``CAPABILITY.outputs`` in :mod:`cmrlib.scar.capability`)::

    labels.nrrd  slices.csv  methods.csv  result.json  scar.png
    [cine_aligned.nrrd  segments.csv  bullseye.png  aha_segments.nrrd]

``labels.nrrd``: 0 background, 1 normal myocardium, 2 scar on the LGE grid (the label table
and the method in the header). ``result.json``: ``percent_scar``, ``myocardial_volume_ml``,
``scar_volume_ml``, ``scar_present`` (%scar > 1 %), ``slices_segmented``, ``slices_total``,
``complete``, ``method``, ``model`` (name, version, notice), ``seconds``, ``timing`` (inference and
post-processing s per slice), ``slices`` (per slice: status, level, volumes, %scar, the cine
match and the LV centres), ``methods`` (every method run: totals and per-slice %scar),
``segments`` (per AHA segment %scar), ``matching``, ``notes``.
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

LABELS, SLICES_CSV, METHODS_CSV, RESULT, FIGURE, CINE_ALIGNED, SEGMENTS_CSV, BULLSEYE, SEGMENT_MAP = (
    "labels.nrrd", "slices.csv", "methods.csv", "result.json", "scar.png", "cine_aligned.nrrd", "segments.csv",
    "bullseye.png", "aha_segments.nrrd")
SLICE_FIELDS = ("slice", "level", "status", "myocardium_ml", "scar_ml", "percent_scar", "cine_slice", "cine_frame",
                "cine_distance_mm", "lge_trigger_ms", "cine_trigger_ms", "centre_source", "reason")
METHOD_FIELDS = ("method", "title", "percent_scar", "myocardial_volume_ml", "scar_volume_ml", "scar_present",
                 "slices_segmented", "myocardium")


def _fmt(v: Any, spec: str = ".3f") -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return format(v, spec)
    return str(v)


def write_result(result, out: Path) -> dict[str, Any]:
    """Every file of one LGE stack into ``out``; returns the result.json dict."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_image(result.labels, out / LABELS)
    summary = result.to_dict()
    methods = {m["method"]: m for m in summary["methods"]}
    with open(out / SLICES_CSV, "w", newline="") as fh:
        w = csv.writer(fh)
        others = [m for m in methods if m != result.method]
        w.writerow([*SLICE_FIELDS, *(f"percent_scar_{m}" for m in others)])
        for s in summary["slices"]:
            c = s["cine"] or {}
            w.writerow([s["index"] + 1, s["level"] or "", s["status"], _fmt(s["myocardium_ml"]), _fmt(s["scar_ml"]),
                        _fmt(s["percent_scar"], ".2f"), "" if c.get("cine_slice") is None else c["cine_slice"] + 1,
                        "" if c.get("cine_frame") is None else c["cine_frame"] + 1, _fmt(c.get("distance_mm"), ".2f"),
                        _fmt(c.get("lge_trigger_ms"), ".1f"), _fmt(c.get("cine_trigger_ms"), ".1f"),
                        s["centre_source"] or "", s["reason"],
                        *(_fmt(methods[m]["per_slice_percent"][s["index"]], ".2f") for m in others)])
    with open(out / METHODS_CSV, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(METHOD_FIELDS)
        for m in summary["methods"]:
            w.writerow([_fmt(m[k], ".3f") for k in METHOD_FIELDS])
    figures = [write_figure(result, out / FIGURE)]
    if result.cine_aligned is not None:
        write_image(result.lge.with_array(result.cine_aligned, is_sequence=False), out / CINE_ALIGNED)
    if result.segments:
        write_image(result.segment_map, out / SEGMENT_MAP)
        with open(out / SEGMENTS_CSV, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(("segment", "percent_scar", "myocardium_ml", "scar_ml"))
            for r in result.segments:
                w.writerow([r["segment"], f"{r['percent_scar']:.3f}", f"{r['myocardium_ml']:.4f}", f"{r['scar_ml']:.4f}"])
        from ..aha import bullseye
        vals = {r["segment"]: r["percent_scar"] for r in result.segments}
        bullseye(vals, out / BULLSEYE, title=f"%scar per AHA segment ({result.method})", unit="%scar",
                 vmin=0.0, vmax=max(50.0, max(vals.values())), cmap="magma", label_fmt=".0f")
        figures.append(BULLSEYE)
    summary["figures"] = figures
    write_text_atomic(out / RESULT, json.dumps(summary, indent=2))
    return summary


def write_figure(result, path: Path) -> str:
    """Per slice with myocardium: the LGE with myocardium (green contour) and scar (red) and, with
    fusion, the matched cine frame aligned beside it."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    lge = np.asarray(result.lge.array, float)
    lab = np.asarray(result.labels.array)
    show = [s for s in result.slices if s.status != "no myocardium"] or result.slices[:1]
    from matplotlib.colors import ListedColormap
    red = ListedColormap(["red"])
    cols = 2 if result.cine_aligned is not None else 1
    fig, axes = plt.subplots(len(show), cols, figsize=(3.2 * cols, 3.0 * len(show)), squeeze=False)
    fig.subplots_adjust(top=1.0 - 0.25 / (3.0 * len(show)), hspace=0.25)
    for row, s in enumerate(show):
        k = s.index
        ys, xs = np.nonzero(lab[k]) if lab[k].any() else (np.array([0, lge.shape[1] - 1]), np.array([0, lge.shape[2] - 1]))
        pad = 15
        box = (slice(max(ys.min() - pad, 0), ys.max() + pad + 1), slice(max(xs.min() - pad, 0), xs.max() + pad + 1))
        lo, hi = np.percentile(lge[k], [1, 99.5])
        ax = axes[row, 0]
        ax.imshow(lge[k][box], cmap="gray", vmin=lo, vmax=hi)
        if (lab[k][box] > 0).any():
            ax.contour(lab[k][box] > 0, levels=[0.5], colors="lime", linewidths=0.8)
        scar = np.ma.masked_where(lab[k][box] != 2, np.ones(lab[k][box].shape))
        ax.imshow(scar, cmap=red, alpha=0.6, vmin=0, vmax=1)
        pct = "" if s.percent_scar is None else f", {s.percent_scar:.1f} % scar"
        ax.set_title(f"slice {k + 1} ({s.level or '–'}){pct}" if s.status == "segmented" else
                     f"slice {k + 1}: {s.status}", fontsize=8, color="black" if s.status == "segmented" else "orange")
        if cols == 2:
            c = result.cine_aligned[k]
            axes[row, 1].imshow(c[box], cmap="gray")
            if (lab[k][box] > 0).any():
                axes[row, 1].contour(lab[k][box] > 0, levels=[0.5], colors="lime", linewidths=0.6)
            m = s.cine or {}
            axes[row, 1].set_title("matched cine" + (f" (slice {m['cine_slice'] + 1}, frame {m['cine_frame'] + 1})"
                                                     if m.get("cine_slice") is not None else ": none"), fontsize=8)
        for a in axes[row]:
            a.set_axis_off()
    p = result.primary
    total = "no myocardium" if p.percent_scar is None else (f"%scar {p.percent_scar:.1f} %, myocardium "
                                                            f"{p.myocardial_volume_ml:.0f} mL")
    notice = f"\n{result.model_notice}" if result.model_notice else ""
    # above the first row's titles (the tight bounding box keeps it)
    fig.suptitle(f"{result.method}: {total}{notice}", fontsize=8, y=1.0 + 0.3 / (3.0 * len(show)))
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)
    return path.name


def read_result(folder: str | Path) -> dict[str, Any]:
    """A scar output folder back: ``summary`` (result.json), ``labels`` (Image), ``cine_aligned``
    and ``segments`` (Images or None), ``slices`` and ``methods`` (CSV rows as dicts)."""
    folder = Path(folder)
    summary = json.loads((folder / RESULT).read_text())
    with (folder / SLICES_CSV).open(newline="") as fh:
        slices = list(csv.DictReader(fh))
    with (folder / METHODS_CSV).open(newline="") as fh:
        methods = list(csv.DictReader(fh))
    opt = (lambda name: read_image(folder / name) if (folder / name).is_file() else None)
    return {"summary": summary, "labels": read_image(folder / LABELS), "cine_aligned": opt(CINE_ALIGNED),
            "segments": opt(SEGMENT_MAP), "slices": slices, "methods": methods}


def write_example(folder: Path) -> None:
    """A small real result without weights: a phantom LGE stack with an ischaemic scar, its true
    myocardium and AHA segments, quantified by 5-SD (the other classical methods beside it)."""
    from .data import phantom_stack
    from .pipeline import quantify_scar
    st = phantom_stack(31, scar="ischemic", slices=(3, 4, 5))
    write_result(quantify_scar(st.lge, None, method="nsd5", mask=st.truth_mask(), mask_source="phantom truth",
                               segments=st.aha), Path(folder))


def report_section(step: dict[str, Any], study_out: Path) -> ReportSection:
    """Scar's part of ``report.html``: %scar, volumes and presence per LGE stack, the methods side
    by side, per-slice table, scar over the LGE."""
    section = ReportSection("Scar quantification, LGE (CMRSegmentation)")
    notices = set()
    for r in step.get("series", []):
        name = r.get("series", "LGE")
        section.findings.append(Finding(f"{name}: %scar", r.get("percent_scar"), "%",
                                        f"{r.get('method')}; scar {'present' if r.get('scar_present') else 'absent'} "
                                        f"(> 1 %)", ".1f"))
        section.findings.append(Finding(f"{name}: LV myocardial volume", r.get("myocardial_volume_ml"), "mL", "", ".0f"))
        section.findings.append(Finding(f"{name}: scar volume", r.get("scar_volume_ml"), "mL", "", ".1f"))
        section.findings.append(Finding(f"{name}: slices quantified",
                                        f"{r.get('slices_segmented')} of {r.get('slices_total')}", "",
                                        "" if r.get("complete", True) else "partial"))
        section.tables.append(Table(f"{name}: methods side by side", ["method", "%scar", "myocardium (mL)", "scar (mL)",
                                                                      "scar present", "slices", "myocardium from"],
                                    [[m["title"], _fmt(m["percent_scar"], ".1f"), _fmt(m["myocardial_volume_ml"], ".0f"),
                                      _fmt(m["scar_volume_ml"], ".1f"), _fmt(m["scar_present"]),
                                      str(m["slices_segmented"]), m["myocardium"]] for m in r.get("methods", [])]))
        slices = r.get("slices", [])
        section.tables.append(Table(f"{name}: per slice", ["slice", "level", "status", "%scar", "myocardium (mL)",
                                                           "cine slice / frame", "distance (mm)"],
                                    [[str(s["index"] + 1), s["level"] or "–", s["status"], _fmt(s["percent_scar"], ".1f"),
                                      _fmt(s["myocardium_ml"], ".1f"),
                                      (f"{s['cine']['cine_slice'] + 1} / {s['cine']['cine_frame'] + 1}"
                                       if s.get("cine") and s["cine"].get("cine_slice") is not None else "–"),
                                      _fmt((s.get("cine") or {}).get("distance_mm"), ".1f")] for s in slices],
                                    ["fail" if s["status"] == "not segmented" else "pass" if s["status"] == "segmented"
                                     else "" for s in slices]))
        for fig in r.get("figures", []):
            caption = "scar (red) and myocardium (green) over the LGE" if fig == FIGURE else "%scar bull's-eye"
            section.figures.append(Figure(str(Path(r["out"]) / fig), f"{name}: {caption}"))
        if (r.get("model") or {}).get("notice"):
            notices.add(r["model"]["notice"])
        section.notes.extend(f"{name}: {n}" for n in r.get("notes", []))
    section.notes.extend(f"scar model: {n}" for n in sorted(notices))
    return section

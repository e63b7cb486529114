"""`cmr la-quality` / `cmr quality la` output folder: the files, the figures, reading back, the report.

::

    result.json  slices.csv  la_mask.nrrd  saliency.nrrd  saliency.png  la_quality.png

``result.json`` is :meth:`cmrlib.laquality.pipeline.LAQualityResult.to_dict` (``index`` counts from
0; tables and figures show slice numbers from 1). ``la_mask.nrrd`` and ``saliency.nrrd`` lie on the
assessed grid (the input's own when it was at the card's spacing, else the axial 1.25 × 1.25 ×
2.5 mm grid it was resampled to), in patient coordinates, so that Slicer overlays them on the
input.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from ..contract import Figure, Finding, ReportSection, Table
from ..image import Image
from .networks import ATTRIBUTES, LABELS

RESULT, SLICES_CSV, MASK, SALIENCY, SALIENCY_PNG, MONTAGE = ("result.json", "slices.csv", "la_mask.nrrd",
                                                            "saliency.nrrd", "saliency.png", "la_quality.png")
CSV_FIELDS = ["index", "slice", "la_peak_probability", "used", "la_area_mm2", *[f"p_{k}" for k in LABELS]]
SHORT = {"myocardial_nulling": "nulling", "sharpness": "sharpness", "aorta_valve_enhancement": "Ao/valve enh.",
         "overall_quality": "quality"}


def _window(img: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(img, [1, 99.5])
    return float(lo), float(max(hi, lo + 1e-6))


def write_saliency_png(result, path: Path) -> str:
    """``saliency.png``: the chosen slice, alone and with its HiResCAM overlay and the LA contour."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    vol = result.volume01
    k = result.saliency_slice if result.saliency_slice is not None else len(vol) // 2
    fig, axes = plt.subplots(1, 2, figsize=(8, 4.4))
    fig.patch.set_facecolor("black")
    lo, hi = _window(vol[k])
    for ax in axes:
        ax.imshow(vol[k], cmap="gray", vmin=lo, vmax=hi)
        ax.axis("off")
    if result.saliency is not None and result.saliency[k].max() > 0:
        axes[1].imshow(np.ma.masked_less(result.saliency[k], 0.05), cmap="jet", alpha=0.45, vmin=0, vmax=1)
    if result.la_mask is not None and result.la_mask[k].any():
        for ax in axes:
            ax.contour(result.la_mask[k].astype(float), levels=[0.5], colors="#40c057", linewidths=1)
    axes[0].set_title(f"slice {k + 1}: LA contour (detector)", color="white", fontsize=9)
    verdict = "diagnostic" if result.diagnostic else "non-diagnostic"
    axes[1].set_title(f"HiResCAM: what made the slice {verdict}", color="white", fontsize=9)
    return _finish(fig, result, path, top=0.92, dpi=90)


def _finish(fig, result, path: Path, top: float, dpi: int) -> str:
    """The figure's title (the verdict), the models' notice, saved as ``path``."""
    import matplotlib.pyplot as plt
    fig.suptitle(f"{result.series}: {result.sentence}", color="white", fontsize=9, wrap=True)
    notice = "; ".join(sorted({m["notice"] for m in result.models if m.get("notice")}))
    if notice:
        fig.text(0.5, 0.005, notice, color="#adb5bd", ha="center", fontsize=7)
    fig.tight_layout(rect=(0, 0.03, 1, top))
    fig.savefig(path, dpi=dpi, facecolor="black")
    plt.close(fig)
    return path.name


def write_montage(result, path: Path) -> str:
    """``la_quality.png``: the used slices (at most 24, evenly chosen) with the LA contour and each
    slice's vote on the quality for fibrosis assessment (green diagnostic, red not)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    vol = result.volume01
    used = result.slices_used or [len(vol) // 2]
    shown = [used[int(i)] for i in np.unique(np.linspace(0, len(used) - 1, min(len(used), 24)).round())]
    ncol = min(len(shown), 6)
    nrow = int(np.ceil(len(shown) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(2.2 * ncol, 2.5 * nrow + 0.7), squeeze=False)
    fig.patch.set_facecolor("black")
    lo, hi = _window(vol[used])
    by_index = {s["index"]: s for s in result.slices}
    for ax in axes.ravel():
        ax.axis("off")
    for k, ax in zip(shown, axes.ravel()):
        ax.imshow(vol[k], cmap="gray", vmin=lo, vmax=hi)
        if result.la_mask is not None and result.la_mask[k].any():
            ax.contour(result.la_mask[k].astype(float), levels=[0.5], colors="#fab005", linewidths=0.8)
        p = by_index[k].get("probabilities")
        if p:
            ok = p["overall_quality"] >= result.attributes["overall_quality"].get("threshold", 0.5)
            ax.set_title(f"slice {k + 1}: p={p['overall_quality']:.2f}", color="#2f9e44" if ok else "#e03131",
                         fontsize=8)
        else:
            ax.set_title(f"slice {k + 1}: no LA", color="#868e96", fontsize=8)
    return _finish(fig, result, path, top=0.93, dpi=80)


def write_result(result, out: Path) -> dict[str, Any]:
    """Write a :class:`~cmrlib.laquality.pipeline.LAQualityResult` into ``out``; return result.json's dict."""
    from ..io import write_image
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = result.to_dict()
    with (out / SLICES_CSV).open("w", newline="") as fh:
        w = csv.DictWriter(fh, CSV_FIELDS)
        w.writeheader()
        for s in summary["slices"]:
            probs = s.get("probabilities") or {}
            w.writerow({"index": s["index"], "slice": s["index"] + 1, "la_peak_probability": s["la_peak_probability"],
                        "used": int(s["used"]), "la_area_mm2": s["la_area_mm2"],
                        **{f"p_{k}": probs.get(k, "") for k in LABELS}})
    grid = result.grid
    write_image(Image(result.la_mask.astype(np.uint8), grid.spacing, grid.origin, grid.direction,
                      meta={"labels": {"1": "LA blood pool"}}), out / MASK)
    write_image(Image(result.saliency.astype(np.float32), grid.spacing, grid.origin, grid.direction,
                      meta={"saliency": "HiResCAM of the verdict (the quality logit, negated for a non-diagnostic "
                                        "scan), scaled 0-1 over the volume"}),
                out / SALIENCY)
    summary["figures"] = [write_saliency_png(result, out / SALIENCY_PNG), write_montage(result, out / MONTAGE)]
    (out / RESULT).write_text(json.dumps(summary, indent=2))
    return summary


def read_result(folder: str | Path) -> dict[str, Any]:
    """An LA quality output folder back: ``summary`` (result.json) and the paths of its volumes and figures."""
    folder = Path(folder)
    summary = json.loads((folder / RESULT).read_text())
    return {"summary": summary, "slices": summary["slices"], "la_mask": str(folder / MASK),
            "saliency": str(folder / SALIENCY), "saliency_png": str(folder / SALIENCY_PNG),
            "montage": str(folder / MONTAGE)}


def attribute_rows(summary: dict[str, Any]) -> list[list[str]]:
    """[label, p(diagnostic), decision, slice votes] for the three attributes and the quality."""
    rows = []
    n = len(summary.get("slices_used", []))
    for k in LABELS:
        a = summary["overall_quality"] if k == "overall_quality" else (summary.get("attributes") or {}).get(k)
        if not a:
            rows.append([k.replace("_", " "), "—", "no score", "—"])
            continue
        rows.append([k.replace("_", " "), f"{a['probability']:.2f}", "diagnostic" if a["diagnostic"] else
                     "non-diagnostic", f"{a['votes']} of {n}"])
    return rows


def report_section(step: dict[str, Any], study_out: Path) -> ReportSection:
    """LA quality's part of ``report.html``: per LA 3-D LGE series the verdict, the attribute table,
    the saliency figure and the slice montage."""
    section = ReportSection("Left-atrial 3D LGE quality (CMRQuality)")
    for r in step.get("series", []):
        name = r.get("series", "series")
        verdict = "no score (no LA found)" if r["diagnostic"] is None else \
            "diagnostic" if r["diagnostic"] else "non-diagnostic"
        section.findings.append(Finding(f"{name}: quality for fibrosis assessment", verdict, "", r["sentence"]))
        section.findings.append(Finding(f"{name}: slices with atrium", len(r.get("slices_used", [])), "",
                                        f"threshold t = {r['threshold']:.2f}; LA {r.get('la_volume_ml', 0):.0f} ml",
                                        fmt=".0f"))
        rows = attribute_rows(r)
        status = ["" if row[2] == "no score" else "pass" if row[2] == "diagnostic" else "fail" for row in rows]
        section.tables.append(Table(f"{name}: attributes ({r.get('variant')} variant; scan = mode of its slices)",
                                    ["attribute", "p(diagnostic), mean of slices", "decision", "slices voting "
                                     "diagnostic"], rows, status))
        for fig, caption in zip(r.get("figures", []), ("chosen slice: LA contour and HiResCAM saliency",
                                                       "slices with atrium and each slice's vote")):
            section.figures.append(Figure(str(Path(r["out"]) / fig), f"{name}: {caption}"))
        for m in r.get("models", []):
            if m not in section.models:
                section.models.append(m)
        section.notes.extend(f"{name}: {n}" for n in r.get("notes", []))
    return section


def write_example(folder: Path) -> None:
    """A small real result: the installed networks on a phantom LA 3-D LGE volume."""
    from ..phantom import Phantom, sample_subject
    from .data import phantom_options
    from .pipeline import assess_volume
    la = Phantom(sample_subject(62_001, phantom_options(62_001))).la_lge(matrix=144, n_slices=36)
    write_result(assess_volume(la.image, series="example LA 3D LGE"), Path(folder))


__all__ = ["write_result", "read_result", "report_section", "write_example", "attribute_rows", "ATTRIBUTES"]

"""QCD's output folder: file names, the writer and reader shared by the CLI, `cmr run` and the
Slicer adapter, the contour figure and the capability's section of ``report.html``.

One folder per series (see ``CAPABILITY.outputs`` in :mod:`cmrlib.qcd.capability`)::

    labels.nrrd  result.json  contours.png

``labels.nrrd``: 0 background, 1 myocardium, 2 blood pool on the input grid (LPS), with the
failed slices and the predicted Dice per slice in its header (``qc_failed_slices``,
``qc_predicted_dice``). ``result.json``: ``slices`` — one entry per image with ``index``,
``predicted_dice``, ``qc_pass``, ``candidate``, ``candidates_predicted_dice`` (SCS d1…d6 then
CCS k≥1…k≥6), ``reason`` and the myocardium / blood-pool areas (mm²); plus ``seconds``, the
model's name and version, ``qc_threshold`` and ``failed_slices``.
"""
from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from ..contract import Figure, Finding, ReportSection, Table
from ..io import read_image, write_image

LABELS, RESULT, CONTOURS = "labels.nrrd", "result.json", "contours.png"


def write_result(result, out: Path) -> dict[str, Any]:
    """Write a :class:`~cmrlib.qcd.pipeline.QCDResult` into ``out``; return result.json's dict."""
    out.mkdir(parents=True, exist_ok=True)
    write_image(result.labels, out / LABELS)
    summary = result.to_dict()
    summary["figures"] = [write_contours(result.image, result.labels.array, result.slices, out / CONTOURS,
                                         f"{result.series} — QCD myocardium (red), blood pool (yellow); {result.notice}")]
    (out / RESULT).write_text(json.dumps(summary, indent=2))
    return summary


def write_contours(image, labels: np.ndarray, slices, path: Path, title: str) -> str:
    """``contours.png``: each slice with the myocardium (red) and blood-pool (yellow) contours
    and its predicted Dice; a failed slice's title is red with "QC FAIL"."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    arr = np.asarray(image.array, np.float32).reshape(image.spatial_shape)
    lab = np.asarray(labels).reshape(image.spatial_shape)
    n = arr.shape[0]
    ncol = min(n, 6)
    nrow = (n + ncol - 1) // ncol
    fig, axes = plt.subplots(nrow, ncol, figsize=(2.6 * ncol, 2.7 * nrow + 0.3), squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for s, ax in zip(slices, axes.ravel()):
        img = arr[s.index]
        lo, hi = np.percentile(img, [1, 99]) if img.any() else (0, 1)
        ax.imshow(img, cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1, interpolation="nearest")
        for value, colour in ((1, "red"), (2, "yellow")):
            m = (lab[s.index] == value).astype(float)
            if m.any() and m.min() != m.max():
                ax.contour(m, levels=[0.5], colors=colour, linewidths=0.8)
        ok = s.qc_pass
        ax.set_title(f"{s.index + 1}: Dice* {s.predicted_dice:.2f} " + ("QC pass" if ok else "QC FAIL"), fontsize=8,
                     color="green" if ok else "red")
        if not ok and s.reason:
            ax.text(0.5, 0.03, "\n".join(textwrap.wrap(s.reason, 38)[:3]), transform=ax.transAxes, ha="center",
                    va="bottom", fontsize=5, color="orange")
    fig.suptitle(title + "  (Dice* = predicted Dice)", fontsize=8)
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)
    return path.name


def write_example(folder: Path) -> None:
    """A small real result: the bundled ensemble on a 3-slice phantom LGE stack."""
    from ..phantom import Phantom, PhantomOptions, sample_subject
    from .pipeline import segment_image
    subject = sample_subject(11, PhantomOptions(matrix=96, la=False))
    k = subject.n_slices // 2
    psir, _ = Phantom(subject).lge([k - 2, k, k + 2])
    write_result(segment_image(psir.image), Path(folder))


def read_result(folder: str | Path) -> dict[str, Any]:
    """A QCD output folder back: ``labels`` (the label Image) and ``summary`` (result.json)."""
    folder = Path(folder)
    return {"labels": read_image(folder / LABELS), "summary": json.loads((folder / RESULT).read_text())}


def slice_table(r: dict[str, Any]) -> Table:
    """One row per slice: predicted Dice, myocardium area, the chosen candidate, QC pass / FAIL."""
    rows, status = [], []
    for s in r.get("slices", []):
        rows.append([str(s["index"] + 1), f"{s['predicted_dice']:.2f}", f"{s.get('myocardium_mm2', 0):.0f}",
                     s.get("candidate") or "—", s.get("reason") or "", "pass" if s["qc_pass"] else "FAIL"])
        status.append("pass" if s["qc_pass"] else "fail")
    return Table(f"{r.get('series', 'series')}: QC per slice (threshold {r.get('qc_threshold', 0.7):.2f})",
                 ["slice", "predicted Dice", "myocardium mm²", "candidate", "reason", "QC"], rows, status)


def report_section(step: dict[str, Any], study_out: Path) -> ReportSection:
    """QCD's part of ``report.html``: per series the slices that failed QC and the mean predicted
    Dice, a per-slice QC table, and the contour figures."""
    section = ReportSection("Myocardium segmentation with QC (CMRSegmentation, QCD)")
    notices = set()
    for r in step.get("series", []):
        name = r.get("series", "series")
        failed = r.get("failed_slices", [])
        section.findings.append(Finding(f"{name}: slices failing QC", ", ".join(str(k + 1) for k in failed) or "none",
                                        "", f"{len(failed)} of {r['n_slices']}; threshold {r['qc_threshold']:.2f}"))
        section.findings.append(Finding(f"{name}: mean predicted Dice", r.get("mean_predicted_dice"), "", "", ".2f"))
        section.tables.append(slice_table(r))
        for fig in r.get("figures", []):
            section.figures.append(Figure(str(Path(r["out"]) / fig), f"{name}: QCD contours and QC per slice"))
        notices.add(r.get("model", {}).get("notice", ""))
        section.notes.extend(f"{name}: {n}" for n in r.get("notes", []) if not n.startswith("QCD: "))
    section.notes.extend(f"QCD model: {n}" for n in sorted(notices) if n)
    return section

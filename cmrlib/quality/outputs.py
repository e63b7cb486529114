"""`cmr quality` output folder: the files, the montage, reading back, the report section.

::

    result.json  slices.csv  quality.png

``result.json`` is :meth:`cmrlib.quality.pipeline.QualityResult.to_dict` (``index`` counts from 0;
tables and figures show slice numbers from 1).
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from ..contract import Figure, Finding, ReportSection, Table
from .data import SLICE_CLASSES

RESULT, SLICES_CSV, MONTAGE = "result.json", "slices.csv", "quality.png"
CSV_FIELDS = ["index", "slice", "class", *[f"p_{c.replace(' ', '_')}" for c in SLICE_CLASSES], "p_low_certainty",
              "flag", "reason"]
#: montage label colours: equivocal red, clear green, outside the LV grey
COLOURS = {"flag": "#e03131", "clear": "#2f9e44", "non_lv": "#868e96", "none": "#ffffff"}


def slice_label(s: dict[str, Any]) -> tuple[str, str]:
    """(text, colour) of one slice in the montage and the panel's table."""
    parts = [f"slice {s['index'] + 1}"]
    if s.get("class"):
        parts.append(s["class"])
    if s.get("p_low_certainty") is not None:
        parts.append(("EQUIVOCAL" if s.get("flag") else "clear") + f" p={s['p_low_certainty']:.2f}")
    colour = (COLOURS["flag"] if s.get("flag") else COLOURS["clear"] if s.get("flag") is False
              else COLOURS["non_lv"] if s.get("class") not in (None, "LV") else COLOURS["none"])
    return "\n".join(parts), colour


def write_montage(result, path: Path) -> str:
    """``quality.png``: every slice (the card's crop region outlined) with its class and flag."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from .preprocess import card_square
    arr = result.images
    shown = [s for s in result.slices if not (result.hide_non_lv and s.slice_class not in (None, "LV"))] \
        or result.slices
    n = len(shown)
    ncol = min(n, 6)
    nrow = int(np.ceil(n / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(2.5 * ncol, 3.1 * nrow + 0.6), squeeze=False)
    fig.patch.set_facecolor("black")
    for ax in axes.ravel():
        ax.axis("off")
    for s, ax in zip(shown, axes.ravel()):
        img = arr[s.index]
        lo, hi = np.percentile(img, [1, 99.5])
        ax.imshow(img, cmap="gray", vmin=lo, vmax=hi)
        r, c, side = card_square(img.shape)
        text, colour = slice_label(s.to_dict())
        ax.add_patch(Rectangle((c - side / 2, r - side / 2), side, side, fill=False, lw=1.5, ec=colour,
                               ls="-" if s.flag else ":"))
        ax.set_title(text, color=colour, fontsize=8)
    fig.suptitle(f"{result.series}: {result.sentence}", color="white", fontsize=9, wrap=True)
    notice = "; ".join(sorted({m["notice"] for m in result.models if m.get("notice")}))
    if notice:
        fig.text(0.5, 0.005, notice, color="#adb5bd", ha="center", fontsize=7)
    fig.tight_layout(rect=(0, 0.02, 1, 0.95))
    fig.savefig(path, dpi=90, facecolor="black")
    plt.close(fig)
    return path.name


def write_result(result, out: Path) -> dict[str, Any]:
    """Write a :class:`~cmrlib.quality.pipeline.QualityResult` into ``out``; return result.json's dict."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = result.to_dict()
    with (out / SLICES_CSV).open("w", newline="") as fh:
        w = csv.DictWriter(fh, CSV_FIELDS)
        w.writeheader()
        for s in summary["slices"]:
            probs = s.get("probabilities") or {}
            w.writerow({"index": s["index"], "slice": s["index"] + 1, "class": s.get("class") or "",
                        **{f"p_{c.replace(' ', '_')}": probs.get(c, "") for c in SLICE_CLASSES},
                        "p_low_certainty": "" if s.get("p_low_certainty") is None else s["p_low_certainty"],
                        "flag": "" if s.get("flag") is None else int(s["flag"]), "reason": s.get("reason", "")})
    summary["figures"] = [write_montage(result, out / MONTAGE)] if result.images is not None else []
    (out / RESULT).write_text(json.dumps(summary, indent=2))
    return summary


def read_result(folder: str | Path) -> dict[str, Any]:
    """A quality output folder back: ``summary`` (result.json) and ``slices`` (its per-slice list)."""
    summary = json.loads((Path(folder) / RESULT).read_text())
    return {"summary": summary, "slices": summary["slices"], "montage": str(Path(folder) / MONTAGE)}


def slice_table(r: dict[str, Any]) -> Table:
    header = ["slice", "level", "p(too basal / LV / too apical)", "p(low certainty)", "verdict"]
    rows, status = [], []
    for s in r["slices"]:
        probs = s.get("probabilities")
        p_text = " / ".join(f"{probs[c]:.2f}" for c in SLICE_CLASSES) if probs else "—"
        verdict = ("equivocal" if s.get("flag") else "clear" if s.get("flag") is False
                   else "not assessed" if s.get("reason") else "")
        rows.append([str(s["index"] + 1), s.get("class") or "—", p_text,
                     "—" if s.get("p_low_certainty") is None else f"{s['p_low_certainty']:.2f}", verdict or "—"])
        status.append("fail" if s.get("flag") else "pass" if s.get("flag") is False else "")
    return Table(f"{r.get('series', 'series')}: per slice (threshold {r.get('threshold')})", header, rows, status)


def report_section(step: dict[str, Any], study_out: Path) -> ReportSection:
    """Quality's part of ``report.html``: per LGE stack the verdict, equivocal and non-LV slices,
    the per-slice table and the montage."""
    section = ReportSection("LGE certainty and slice level (CMRQuality)")
    notices = set()
    for r in step.get("series", []):
        name = r.get("series", "series")
        section.findings.append(Finding(f"{name}: verdict", r["sentence"]))
        flagged = r.get("flagged", [])
        assessed = sum(s.get("flag") is not None for s in r["slices"])
        section.findings.append(Finding(f"{name}: equivocal slices", ", ".join(str(k + 1) for k in flagged) or "none",
                                        "", f"{len(flagged)} of {assessed} assessed; threshold {r.get('threshold')}"))
        section.findings.append(Finding(f"{name}: slices outside the LV",
                                        ", ".join(str(k + 1) for k in r.get("non_lv", [])) or "none"))
        section.tables.append(slice_table(r))
        for fig in r.get("figures", []):
            section.figures.append(Figure(str(Path(r["out"]) / fig), f"{name}: slice level and LGE certainty per slice"))
        for m in r.get("models", []):
            notices.add(f"{m['name']} {m['version']}: {m['notice']}")
            if m not in section.models:
                section.models.append(m)
        section.notes.extend(f"{name}: {n}" for n in r.get("notes", []))
    section.notes.extend(f"quality model {n}" for n in sorted(notices))
    return section


def write_example(folder: Path) -> None:
    """A small real result: the installed networks on a 4-slice phantom LGE stack."""
    from ..phantom import Phantom, PhantomOptions, sample_subject
    from .pipeline import classify_stack
    subject = sample_subject(11, PhantomOptions(matrix=96, la=False))
    step = (subject.n_slices - 1) // 3  # equally spaced slices, first to last
    psir, _ = Phantom(subject).lge([0, step, 2 * step, 3 * step])
    write_result(classify_stack(psir.image, series="example LGE", kind="lge_psir"), Path(folder))

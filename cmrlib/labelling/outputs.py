"""`cmr label export`: a training folder that `cmr train lge-certainty | slice-level --data` reads.

::

    images/<subject>_<stack>.nrrd   every stack with an exported slice (anonymised: pixels, geometry, kind)
    lge_scores.csv     (scoring) image,slice,score,rater — one row per rater's latest score
    lge_classes.csv    (scoring) image,slice,key,mean_score,raters,class,class_derived
    bland_altman.png   (scoring) inter-rater differences against means, bias and 95 % limits
    slice_levels.csv   (ranking) image,slice,class,rating
    ranking.csv        (ranking) rank,image,slice,key,class,rating,live_rating,views,volatility
    summary.json       mode, counts, agreement, thresholds or cut points, notes

``image`` is the NRRD's path relative to the folder and ``slice`` its slice index from 0 — the
columns of :mod:`cmrlib.quality.data` (``SCORES_CSV``, ``LEVELS_CSV``; the file names are
repeated here because capability packages do not import each other, and a test checks that
they agree). ``class`` in ``lge_classes.csv`` is the card's 25 / 75 on the mean score (what the
trainer applies), ``class_derived`` the pool's own thresholds from its inter-rater limits.
``rating`` in the ranking files is the final ordering's fitted rating (0 very apical … 3000 very
basal, clipped), ``live_rating`` the online rating that steered the batches
(:mod:`cmrlib.labelling.ranking`).
"""
from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from . import ranking, vas
from .pool import MODE_NAMES, RATING_MAX, RATING_MIN, Pool

SCORES_CSV, LEVELS_CSV = "lge_scores.csv", "slice_levels.csv"
CLASSES_CSV, RANKING_CSV = "lge_classes.csv", "ranking.csv"
BLAND_ALTMAN, SUMMARY, IMAGES = "bland_altman.png", "summary.json", "images"


def image_name(stack: dict[str, Any]) -> str:
    return f"{IMAGES}/{stack['subject']}_{stack['key']}.nrrd"


def csv_text(header: list[str], rows: list[dict[str, Any]]) -> str:
    """``rows`` as CSV text with ``header`` (None written empty)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, header, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: "" if r.get(k) is None else r[k] for k in header})
    return buf.getvalue()


def png_bytes(pool: Pool, key: str) -> bytes:
    """Image ``key`` as a greyscale PNG (window: the 1st–99.5th percentile; the viewer adjusts it)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    pixels, _ = pool.pixels(key)
    lo, hi = np.percentile(pixels, [1.0, 99.5])
    buf = io.BytesIO()
    plt.imsave(buf, pixels, cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1.0, format="png")
    return buf.getvalue()


def write_png(pool: Pool, key: str, path: Path) -> Path:
    """Image ``key`` as a PNG file, for a rater without a viewer (`cmr label next --png`)."""
    Path(path).write_bytes(png_bytes(pool, key))
    return Path(path)


def write_bland_altman(pairs: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]], agreement: dict[str, Any],
                       path: Path) -> None:
    """Differences (first − second rater) against means for every rater pair, with the pooled bias
    and 95 % limits of agreement and the derived thresholds in the title."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for (a, b), (x, y) in pairs.items():
        ax.scatter((x + y) / 2, x - y, s=12, alpha=0.7, label=f"{a} − {b} (n={x.size})")
    pooled = agreement["pooled"]
    for value, style, text in ((pooled["bias"], "-", "bias"), (pooled["lower"], "--", "−1.96 SD"),
                               (pooled["upper"], "--", "+1.96 SD")):
        ax.axhline(value, color="k", ls=style, lw=1)
        ax.text(101, value, f"{text} {value:.1f}", va="center", fontsize=8)
    ax.set_xlim(0, 100)
    ax.set_xlabel("mean of the two scores (0–100)")
    ax.set_ylabel("difference between raters (points)")
    rho = pooled.get("spearman")
    t = agreement["thresholds"]
    ax.set_title(f"LGE likelihood: Spearman ρ {rho:.2f}, limits {pooled['lower']:.1f} … {pooled['upper']:.1f}; "
                 f"thresholds {t[0]:.0f} / {t[1]:.0f}" if rho is not None else "LGE likelihood", fontsize=9)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _write_stacks(pool: Pool, keys: set[str], stage: Path) -> dict[str, str]:
    """NRRD of every stack in ``keys``; stack key → its name relative to the folder."""
    from ..image import Image
    from ..io import write_image
    (stage / IMAGES).mkdir()
    names = {}
    for st in pool.stacks():
        if st["key"] not in keys:
            continue
        meta = {"labelling_stack": st["key"], "labelling_subject": st["subject"]}
        if st["kind"]:
            meta["kind"] = st["kind"]
        image = Image(pool.stack_array(st["key"]), st["spacing"], st["origin"], np.array(st["direction"]), False, meta)
        names[st["key"]] = image_name(st)
        write_image(image, stage / names[st["key"]])
    return names


def export(pool: Pool, stage: Path) -> dict[str, Any]:
    """Write the export of ``pool`` into the (empty, staged) folder ``stage``; returns summary.json's
    dict. InputError, before anything is written, for a pool with nothing to export."""
    from .. import __version__
    images = pool.images()
    if not images:
        raise InputError(f"{pool.path}: the pool has no images; nothing to export")
    by_key = {im.key: im for im in images}
    summary: dict[str, Any] = {"mode": pool.mode, "mode_name": MODE_NAMES[pool.mode], "pool": pool.path.name,
                               "exported": time.strftime("%Y-%m-%dT%H:%M:%S"), "software": __version__,
                               "images": len(images), "stacks": len({im.stack for im in images}),
                               "subjects": len({im.subject for im in images}), "raters": list(pool.raters()),
                               "notes": []}
    if pool.mode == "vas":
        scores = vas.latest_scores(pool)
        if not scores:
            raise InputError(f"{pool.path}: no image has been scored yet; nothing to export")
        agree = vas.agreement(scores=scores)
        thresholds = agree["thresholds"]
        names = _write_stacks(pool, {by_key[k].stack for k in scores}, stage)
        rows, classes = [], []
        for m in vas.mean_scores(scores, thresholds):
            im = by_key[m["image"]]
            where = {"image": names[im.stack], "slice": im.slice}
            rows += [{**where, "score": round(s, 2), "rater": r} for r, s in scores[m["image"]].items()]
            classes.append({**m, **where, "key": m["image"]})
        (stage / SCORES_CSV).write_text(csv_text(["image", "slice", "score", "rater"], rows))
        (stage / CLASSES_CSV).write_text(csv_text(["image", "slice", "key", "mean_score", "raters", "class",
                                                    "class_derived"], classes))
        files = [SCORES_CSV, CLASSES_CSV]
        if agree["pooled"] is not None:
            write_bland_altman(vas.paired_scores(scores), agree, stage / BLAND_ALTMAN)
            files.append(BLAND_ALTMAN)
        else:
            summary["notes"].append(f"no agreement statistics: {agree['reason']}")
        single = sum(len(s) < 2 for s in scores.values())
        if single:
            summary["notes"].append(f"{single} image(s) scored by one rater only (the card's label is the mean of two)")
        unscored = len(images) - len(scores)
        if unscored:
            summary["notes"].append(f"{unscored} image(s) not scored yet: left out")
        summary.update({"exported_images": len(scores), "scores": len(rows), "coverage": vas.coverage(pool),
                        "agreement": agree, "thresholds": thresholds,
                        "published_thresholds": list(vas.PUBLISHED_THRESHOLDS),
                        "classes": {c: sum(x["class"] == c for x in classes) for c in ("high", "low")}})
    else:
        labelled, cuts = ranking.labels(pool)
        prog = ranking.progress(images, pool.target_views)
        names = _write_stacks(pool, {im.stack for im, _, _ in labelled}, stage)
        levels = [{"image": names[im.stack], "slice": im.slice, "class": cls,
                   "rating": round(float(np.clip(im.fitted_rating, RATING_MIN, RATING_MAX)), 1),
                   "live_rating": round(im.rating, 1), "rank": k + 1, "key": im.key, "views": im.views,
                   "volatility": round(im.volatility, 4)} for im, k, cls in labelled]
        (stage / LEVELS_CSV).write_text(csv_text(["image", "slice", "class", "rating"], levels))
        (stage / RANKING_CSV).write_text(csv_text(["rank", "image", "slice", "key", "class", "rating", "live_rating",
                                                    "views", "volatility"], levels))
        files = [LEVELS_CSV, RANKING_CSV]
        if not prog["done"]:
            summary["notes"].append(f"ranking not done: {prog['images'] - prog['seen_enough']} image(s) seen fewer "
                                    f"than {prog['target_views']} times; their classes are provisional")
        if cuts.get("settled") is False:
            summary["notes"].append("cut points not settled: more boundary questions would place them better")
        summary.update({"exported_images": len(levels), "progress": prog, "agreement": ranking.pair_agreement(pool),
                        "cut_points": cuts, "classes": {c: sum(x["class"] == c for x in levels)
                                                        for c in ranking.SLICE_CLASSES}})
    summary["files"] = [IMAGES, *files, SUMMARY]
    (stage / SUMMARY).write_text(json.dumps(summary, indent=2))
    return summary


def read_result(folder: str | Path) -> dict[str, Any]:
    """An export folder back: ``summary`` (summary.json), ``rows`` (its main CSV: lge_scores.csv or
    slice_levels.csv), ``classes`` (lge_classes.csv or ranking.csv) and ``figure`` (bland_altman.png
    or None)."""
    folder = Path(folder)
    summary = json.loads((folder / SUMMARY).read_text())
    main, extra = (SCORES_CSV, CLASSES_CSV) if summary["mode"] == "vas" else (LEVELS_CSV, RANKING_CSV)

    def rows(name: str) -> list[dict[str, str]]:
        with open(folder / name, newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))

    figure = folder / BLAND_ALTMAN
    return {"summary": summary, "rows": rows(main), "classes": rows(extra),
            "figure": str(figure) if figure.is_file() else None}


def write_example(folder: Path) -> None:
    """A small real export: two simulated raters score a pool of two synthetic 3-slice stacks."""
    import tempfile

    from .pool import StackInput
    from .simulate import SimulatedRater, run_raters
    rng = np.random.default_rng(7)
    stacks = [StackInput(rng.normal(100.0, 20.0, (3, 24, 20)).astype(np.float32), (1.5, 1.5, 8.0), (0.0, 0.0, 8.0 * i),
                         np.eye(3), "lge_psir", f"subject {i}") for i in range(2)]
    with tempfile.TemporaryDirectory() as tmp:
        pool, _ = Pool.create(Path(tmp) / "example.sqlite", stacks, "vas", raters=["rater A", "rater B"], seed=1)
        with pool:
            truth = {im.key: 15.0 * k for k, im in enumerate(pool.images())}
            raters = [SimulatedRater(name, scores={k: float(np.clip(v + off + rng.normal(0, 6), 0, 100))
                                                   for k, v in truth.items()}) for name, off in (("rater A", 3.0),
                                                                                              ("rater B", -3.0))]
            run_raters(pool, raters)
            folder = Path(folder)
            folder.mkdir(parents=True, exist_ok=True)
            export(pool, folder)

"""Held-out evaluation of a QCD model on phantom subjects never used in training.

Sets: ``heldout`` (the training distribution: 1.5 T, every contrast, T1 maps by the
phantom's inline MOLLI/ShMOLLI fit) and ``shifted`` (3 T, lower SNR, poor LGE nulling /
bright blood, hearts 20–30 % smaller or larger: :func:`cmrlib.phantom.sets.shifted_options`);
both with :data:`cmrlib.qcd.data.EVAL_CORRUPT_FRACTION` of the images corrupted (noise, blur,
ghosting, banding, signal void, crop, low resolution, inversion; severity 0.3–1), so that
some segmentations are poor, and one image per subject without a short-axis answer.

Per image with myocardium in the truth: the true myocardium Dice of the selected candidate
and of the deepest single U-Net, the predicted Dice, the QC decision. Figures: mean Dice by
contrast and by scar pattern; predicted-Dice MAE; good/poor classification at the threshold
with the confusion matrix (positive = poor, i.e. true Dice < threshold, as the card's TP/TN);
the share wrong (Dice < 0.5) and unflagged; images without an answer flagged. Speed: the
compact ensemble + QC on a 10-slice stack, and per slice. Used by `cmr evaluate qcd` and
``python -m benchmarks qcd``.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from ..metrics import binary_stats, dice
from ..progress import ProgressCallback, report
from .data import EVAL_CORRUPT_FRACTION, SHIFTED_SEED_BASE, TEST_SEED_BASE, Slice2D, phantom_slices, user_slices
from .framework import DEFAULT_THRESHOLD, MYOCARDIUM
from .pipeline import MODEL_NAME

WRONG_DICE = 0.5


def score(model, regressors, items: list[Slice2D], threshold: float = DEFAULT_THRESHOLD, device=None) -> list[dict]:
    """Per-image records of the QCD inference on ``items`` (dice on the source grid)."""
    from .infer import labels_to_source, segment
    out = []
    deepest = len(model.nets) - 1
    for sl in items:
        seg = segment(model, regressors, [sl.image], sl.spacing, threshold=threshold, device=device)[0]
        truth = sl.labels == MYOCARDIUM
        rec = {"contrast": sl.contrast, "kind": sl.kind, "scar": sl.scar, "corruption": sl.corruption or "none",
               "predicted": seg.decision.predicted_dice, "qc_pass": seg.decision.qc_pass,
               "candidate": seg.decision.candidate, "has_truth": bool(truth.any())}
        if truth.any():
            pm = seg.plane_map
            rec["dice"] = dice(seg.labels == MYOCARDIUM, truth)
            rec["dice_deepest"] = dice(labels_to_source(seg.candidates_net[deepest], pm, sl.image.shape) == MYOCARDIUM, truth)
        out.append(rec)
    return out


def _mean(v) -> float | None:
    return round(float(np.mean(v)), 3) if len(v) else None


def summarise(records: list[dict], threshold: float = DEFAULT_THRESHOLD) -> dict[str, Any]:
    """QC figures of a set: Dice, MAE, accuracy, confusion counts, wrong-and-unflagged share."""
    with_truth = [r for r in records if r["has_truth"]]
    d = np.array([r["dice"] for r in with_truth])
    p = np.array([r["predicted"] for r in with_truth])
    poor_true = d < threshold
    poor_pred = p < threshold
    st = binary_stats(poor_true, poor_pred)
    negatives = [r for r in records if not r["has_truth"]]
    wrong_unflagged = [(r["dice"] < WRONG_DICE) and r["qc_pass"] for r in with_truth]
    return {"images": len(with_truth), "mean Dice (QCD)": _mean(d), "sd Dice": round(float(np.std(d)), 3) if len(d) else None,
            "mean Dice (deepest U-Net)": _mean([r["dice_deepest"] for r in with_truth]),
            "MAE predicted Dice": _mean(np.abs(d - p)),
            "MAE constant predictor": _mean(np.abs(d - d.mean())) if len(d) else None, "accuracy @%.2f" % threshold: _mean(poor_true == poor_pred),
            "poor %": round(100 * float(np.mean(poor_true)), 1) if len(d) else None,
            "TP": st.tp, "TN": st.tn, "FP": st.fp, "FN": st.fn,
            "wrong & unflagged %": round(100 * float(np.mean(wrong_unflagged)), 1) if with_truth else None,
            "no-answer images": len(negatives),
            "no-answer flagged %": round(100 * float(np.mean([not r["qc_pass"] for r in negatives])), 1) if negatives else None}


def _group_rows(records: list[dict], key: str, name: str) -> list[dict]:
    rows = []
    for value in sorted({r[key] for r in records if r["has_truth"]}):
        sel = [r for r in records if r[key] == value and r["has_truth"]]
        d = [r["dice"] for r in sel]
        rows.append({name: value, "images": len(sel), "mean Dice (QCD)": _mean(d),
                     "mean Dice (deepest U-Net)": _mean([r["dice_deepest"] for r in sel]),
                     "MAE predicted Dice": _mean([abs(r["dice"] - r["predicted"]) for r in sel]),
                     "QC flagged %": round(100 * float(np.mean([not r["qc_pass"] for r in sel])), 1)})
    return rows


def speed(model, regressors, device=None, n_slices: int = 10) -> dict[str, Any]:
    """Seconds for the whole ensemble + QC on a ``n_slices`` stack (phantom LGE, 128 matrix) and per slice."""
    from ..phantom import Phantom, PhantomOptions, sample_subject
    from .infer import segment
    ph = Phantom(sample_subject(TEST_SEED_BASE + 999, PhantomOptions(matrix=128, la=False, n_slices=n_slices)))
    psir, _ = ph.lge()
    stack = [np.asarray(a, np.float32) for a in psir.image.array]
    sp = (psir.image.spacing[0], psir.image.spacing[1])
    segment(model, regressors, stack[:1], sp, device=device)  # warm-up
    t = time.perf_counter()
    segment(model, regressors, stack, sp, device=device)
    total = time.perf_counter() - t
    return {"slices": len(stack), "stack s": round(total, 3), "per slice ms": round(1000 * total / len(stack), 1)}


def evaluate(model_name: str | None = None, subjects: int = 8, *, data: str | None = None, device=None,
             threshold: float = DEFAULT_THRESHOLD, progress: ProgressCallback | None = None,
             sets: tuple[str, ...] = ("heldout", "shifted")) -> dict[str, Any]:
    """The held-out tables (module docstring) of ``model_name`` (default qcd-compact)."""
    from ..device import pick_device
    from ..models import load_model
    from .infer import regressors_of
    dev = pick_device(device) if not hasattr(device, "type") else device
    model, entry = load_model(model_name or MODEL_NAME, device=dev)
    regressors = regressors_of(entry)
    result: dict[str, Any] = {"model": entry.name, "version": entry.version, "notice": entry.notice,
                              "threshold": threshold, "sets": {}, "by_contrast": {}, "by_scar": {}, "by_corruption": {}}
    if data:
        plan = {"user": user_slices(data)}
    else:
        plan = {}
        for name in sets:
            base = TEST_SEED_BASE if name == "heldout" else SHIFTED_SEED_BASE
            report(progress, "evaluation images", 0, 1, name)
            plan[name] = phantom_slices(range(base, base + subjects), shifted=name == "shifted", fitted_t1=True,
                                        corrupt_fraction=EVAL_CORRUPT_FRACTION)
    for name, items in plan.items():
        report(progress, "QCD evaluation", 0, 1, f"{name}: {len(items)} images")
        recs = score(model, regressors, items, threshold, dev)
        result["sets"][name] = summarise(recs, threshold)
        result["by_contrast"][name] = _group_rows(recs, "contrast", "contrast")
        result["by_scar"][name] = _group_rows(recs, "scar", "scar pattern")
        result["by_corruption"][name] = _group_rows(recs, "corruption", "corruption")
    if "heldout" in result["sets"] and "shifted" in result["sets"]:
        h, s = result["sets"]["heldout"], result["sets"]["shifted"]
        result["generalisation_gap"] = {"Dice (held-out − shifted)": round(h["mean Dice (QCD)"] - s["mean Dice (QCD)"], 3),
                                        "MAE (shifted − held-out)": round(s["MAE predicted Dice"] - h["MAE predicted Dice"], 3)}
    result["speed"] = speed(model, regressors, dev)
    return result


def format_table(result: dict[str, Any]) -> str:
    lines = [f"{result['model']} v{result['version']} ({result['notice']}), QC threshold {result['threshold']}"]
    for name, s in result["sets"].items():
        lines.append(f"[{name}] " + ", ".join(f"{k} {v}" for k, v in s.items()))
        for row in result["by_contrast"][name]:
            lines.append(f"  {row['contrast']:>14}: " + ", ".join(f"{k} {v}" for k, v in row.items() if k != "contrast"))
    if "generalisation_gap" in result:
        lines.append("generalisation gap: " + ", ".join(f"{k} {v}" for k, v in result["generalisation_gap"].items()))
    lines.append("speed: " + ", ".join(f"{k} {v}" for k, v in result["speed"].items()))
    return "\n".join(lines)

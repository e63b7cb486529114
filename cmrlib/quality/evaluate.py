"""Held-out evaluation of the certainty and slice-level classifiers (`cmr evaluate lge-certainty /
slice-level`, benchmarks/bench_quality.py): the cards' Table-3 statistics on phantom stacks the
networks never saw, through the same path as a user's stack (:func:`classify_stack`).

Sets: ``held-out`` (:data:`~cmrlib.quality.data.TEST_SEED_BASE`, 1.5 T like training) and
``shifted`` (3 T, other SNR, poor nulling and bright blood, hearts outside the training range),
both with stacks extended beyond base and apex.

Certainty is scored on the truly-LV slices (the card's test set had only those), against two
truths: the **rater mean** (two new simulated raters per slice, noise calibrated as in training:
the card's labels) and the phantom's **noise-free** class. The ceiling a perfect reader could
reach against the rater mean is reported beside it (the truth class against the rater-mean
class). Baselines: a logistic regression on image statistics of the same network input
(certainty) and the position of a slice in its stack (slice level: the first / last slices
called too basal / too apical, the cut points fitted on training stacks).
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..metrics import binary_stats, confusion_matrix, roc_auc
from .data import (SHIFTED_SEED_BASE, SLICE_CLASSES, TEST_SEED_BASE, TRAIN_SEED_BASE, calibrate_rater_sd,
                   ideal_reader_p_low, is_low_certainty, phantom_lge_stack, rater_agreement, simulate_raters)

PUBLISHED_CERTAINTY = {"internal": {"accuracy": 0.94, "recall": 0.80, "precision": 0.97, "specificity": 0.99,
                                    "f1": 0.87, "auc": 0.94},
                       "external": {"accuracy": 0.91, "recall": 0.73, "precision": 0.93, "specificity": 0.98,
                                    "f1": 0.82, "auc": 0.91}}
PUBLISHED_SLICE_LEVEL = {"accuracy": 0.86, "macro_auc": 0.95, "f1": 0.86,
                         "auc": {"too basal": 0.98, "LV": 0.95, "too apical": 0.97}}


@dataclass
class EvalStack:
    image: Any  # cmrlib.Image [slice, row, col]
    classes: list[str]
    likelihood: list[float]
    subject: int
    kind: str
    meta: dict = field(default_factory=dict)


def phantom_stacks(seed_base: int, n_subjects: int, shifted: bool = False, progress=None) -> list[EvalStack]:
    """Whole extended LGE stacks (PSIR; magnitude for a quarter) with the truth per slice."""
    from ..progress import report
    out = []
    for i in range(n_subjects):
        seed = seed_base + i
        report(progress, "phantom LGE stacks", i, n_subjects, f"subject {seed}")
        series = phantom_lge_stack(seed, shifted)
        sl = series.truth["slices"]
        out.append(EvalStack(series.image, [s["class"] for s in sl], [float(s["lge_likelihood"]) for s in sl], seed,
                             series.kind))
    return out


def _binary(truth: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float | None]:
    b = binary_stats(truth, p >= threshold)
    prec, rec = b.precision, b.sensitivity
    f1 = 2 * prec * rec / (prec + rec) if prec == prec and rec == rec and prec + rec else float("nan")
    auc = roc_auc(truth, p) if 0 < truth.sum() < truth.size else float("nan")
    return {k: (None if v != v else round(float(v), 4)) for k, v in
            {"accuracy": b.accuracy, "precision": prec, "recall": rec, "specificity": b.specificity, "f1": f1,
             "auc": auc}.items()} | {"n": int(truth.size), "n_low": int(truth.sum())}


# ---- baselines -------------------------------------------------------------------------------
def image_features(x: np.ndarray) -> np.ndarray:
    """Statistics of a network input (0–1): percentiles, spread, edge energy, bright fraction (centre)."""
    h = x.shape[0]
    c = x[h // 4:3 * h // 4, h // 4:3 * h // 4]
    gy, gx = np.gradient(c)
    return np.array([*np.percentile(c, [10, 25, 50, 75, 90]), c.std(), np.mean(np.hypot(gx, gy)),
                     np.mean(c > 0.7), np.mean(c < 0.15)], float)


def fit_logistic(features: np.ndarray, y: np.ndarray, l2: float = 1e-2, iterations: int = 50) -> np.ndarray:
    """Weights (standardisation folded in) of an L2 logistic regression by Newton's method."""
    mu, sd = features.mean(0), features.std(0) + 1e-9
    z = np.c_[np.ones(len(y)), (features - mu) / sd]
    w = np.zeros(z.shape[1])
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-z @ w))
        g = z.T @ (p - y) + l2 * np.r_[0, w[1:]]
        hess = (z * (p * (1 - p))[:, None]).T @ z + l2 * np.diag(np.r_[0, np.ones(len(w) - 1)])
        w -= np.linalg.solve(hess, g)
    return np.r_[w[0] - np.sum(w[1:] * mu / sd), w[1:] / sd]


def logistic_p(w: np.ndarray, features: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-(w[0] + features @ w[1:])))


def position_cut_points(stacks: list[EvalStack]) -> tuple[float, float]:
    """(a, b): relative positions (0 first … 1 last slice) below / above which the stack-position
    baseline says too basal / too apical, chosen for the best training accuracy."""
    pos, cls = [], []
    for st in stacks:
        n = len(st.classes)
        pos += list(np.arange(n) / max(n - 1, 1))
        cls += st.classes
    pos, cls = np.array(pos), np.array(cls)
    best = (0.0, 1.0, -1.0)
    for a in np.linspace(0, 0.5, 26):
        for b in np.linspace(0.5, 1.0, 26):
            pred = np.where(pos < a, "too basal", np.where(pos > b, "too apical", "LV"))
            acc = float(np.mean(pred == cls))
            if acc > best[2]:
                best = (float(a), float(b), acc)
    return best[0], best[1]


# ---- evaluation ----------------------------------------------------------------------------------
def evaluate_certainty(stacks: list[EvalStack], network, *, rater_sd: float, threshold: float,
                       baseline_w: np.ndarray | None = None, seed: int = 7, gate=None) -> dict[str, Any]:
    """Certainty statistics on the truly-LV slices of ``stacks`` (module docstring)."""
    from .pipeline import classify_stack
    p, lk, feats, gated_out = [], [], [], 0
    t0 = time.perf_counter()
    n_slices = 0
    for st in stacks:
        res = classify_stack(st.image, tasks=("certainty",), all_slices=True, networks={"certainty": network})
        lv = [i for i, c in enumerate(st.classes) if c == "LV"]
        n_slices += len(st.classes)
        p += [res.slices[i].p_low_certainty for i in lv]
        lk += [st.likelihood[i] for i in lv]
        if baseline_w is not None:
            feats += [image_features(x[0]) for x in _inputs_of(st, lv, network[1])]
        if gate is not None:
            lev = classify_stack(st.image, tasks=("slice-level",), networks={"slice-level": gate})
            gated_out += sum(lev.slices[i].slice_class != "LV" for i in lv)
    seconds = time.perf_counter() - t0
    p, lk = np.array(p), np.array(lk)
    scores = simulate_raters(lk, rater_sd, np.random.default_rng(seed))
    rater_mean_low = is_low_certainty(scores.mean(1))
    truth_low = is_low_certainty(lk)
    out = {"rater_mean": _binary(rater_mean_low, p, threshold), "noise_free": _binary(truth_low, p, threshold),
           "rater_mean_at_0.5": _binary(rater_mean_low, p, 0.5),
           "ceiling_vs_rater_mean": round(float(np.mean(truth_low == rater_mean_low)), 4),
           "ideal_reader_vs_rater_mean": _binary(rater_mean_low, ideal_reader_p_low(lk, rater_sd, seed=seed), 0.5),
           "raters": rater_agreement(scores), "threshold": threshold, "lv_slices": int(lk.size),
           "seconds_per_slice_with_overhead": round(seconds / max(n_slices, 1), 4)}
    if baseline_w is not None:
        pb = logistic_p(baseline_w, np.array(feats))
        out["baseline_rater_mean"] = _binary(rater_mean_low, pb, 0.5)
        out["baseline_noise_free"] = _binary(truth_low, pb, 0.5)
    if gate is not None:
        out["lv_slices_gated_out_by_slice_level"] = int(gated_out)
    return out


def _inputs_of(st: EvalStack, idx: list[int], entry) -> np.ndarray:
    from .pipeline import _inputs
    return _inputs(np.asarray(st.image.array, np.float32)[idx], int(entry.arch_args.get("size", 224)))


def slice_level_probabilities(image, network) -> np.ndarray:
    """[slices, 3] probabilities of too basal / LV / too apical for a stack, through the user's path."""
    from .pipeline import classify_stack
    res = classify_stack(image, tasks=("slice-level",), networks={"slice-level": network})
    return np.array([[s.probabilities[c] for c in SLICE_CLASSES] for s in res.slices], float)


def evaluate_slice_level(stacks: list[EvalStack], network, cut_points: tuple[float, float] | None = None) -> dict:
    truth, prob, pos = [], [], []
    for st in stacks:
        truth += [SLICE_CLASSES.index(c) for c in st.classes]
        prob.append(slice_level_probabilities(st.image, network))
        n = len(st.classes)
        pos += list(np.arange(n) / max(n - 1, 1))
    y, p, pos = np.array(truth), np.concatenate(prob), np.array(pos)
    out = multiclass_stats(y, p)
    if cut_points is not None:
        a, b = cut_points
        pred = np.where(pos < a, 0, np.where(pos > b, 2, 1))
        score = np.stack([1 - pos, -np.abs(pos - 0.5), pos], 1)
        base = multiclass_stats(y, score, pred)
        base["cut_points"] = [round(a, 3), round(b, 3)]
        out["baseline_position"] = base
    return out


def multiclass_stats(y: np.ndarray, score: np.ndarray, pred: np.ndarray | None = None) -> dict[str, Any]:
    """Accuracy, macro AUC / F1, per-class F1 / AUC and the confusion matrix of slice-level classes."""
    pred = score.argmax(1) if pred is None else pred
    m = confusion_matrix(y, pred, len(SLICE_CLASSES))
    per = {}
    for c, name in enumerate(SLICE_CLASSES):
        tp, fp, fn = m[c, c], m[:, c].sum() - m[c, c], m[c].sum() - m[c, c]
        f1 = 2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else float("nan")
        auc = roc_auc(y == c, score[:, c]) if 0 < (y == c).sum() < len(y) else float("nan")
        per[name] = {"f1": round(float(f1), 4), "auc": round(float(auc), 4), "n": int((y == c).sum())}
    return {"accuracy": round(float(np.mean(pred == y)), 4),
            "macro_auc": round(float(np.nanmean([v["auc"] for v in per.values()])), 4),
            "macro_f1": round(float(np.nanmean([v["f1"] for v in per.values()])), 4), "per_class": per,
            "confusion": m.tolist(), "n": int(len(y))}


def network_ms_per_slice(network, size: int, batch: int, repeats: int = 5) -> float:
    """Median milliseconds per slice of the network alone on CPU (``batch`` slices at a time)."""
    import torch
    model = network[0].eval()
    x = torch.rand(batch, 1, size, size)
    times = []
    with torch.no_grad():
        model(x)
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(x)
            times.append((time.perf_counter() - t0) / batch)
    return round(1000 * float(np.median(times)), 2)


def evaluate(n_subjects: int = 40, device=None, progress=None, tasks=("certainty", "slice-level"),
             certainty_model: str | None = None, slice_level_model: str | None = None) -> dict[str, Any]:
    """Both classifiers (those installed) on the held-out and shifted sets, with baselines and speed."""
    from ..device import pick_device
    from ..models.zoo import load_model, model_installed
    from .pipeline import CERTAINTY_MODEL, SLICE_LEVEL_MODEL, _inputs
    dev = pick_device(device)
    names = {"certainty": certainty_model or CERTAINTY_MODEL, "slice-level": slice_level_model or SLICE_LEVEL_MODEL}
    nets = {t: load_model(names[t], device=dev) for t in tasks if model_installed(names[t])}
    sets = {"held-out": phantom_stacks(TEST_SEED_BASE, n_subjects, progress=progress),
            "shifted": phantom_stacks(SHIFTED_SEED_BASE, max(4, n_subjects // 2), shifted=True, progress=progress)}
    train = phantom_stacks(TRAIN_SEED_BASE, max(10, n_subjects // 2), progress=progress)  # baselines' fitting
    result: dict[str, Any] = {"models": {t: {"name": e.name, "version": e.version, "notice": e.notice}
                                         for t, (_, e) in nets.items()},
                              "not_installed": [names[t] for t in tasks if t not in nets], "sets": {}}
    baseline_w, cuts = None, position_cut_points(train)
    if "certainty" in nets:
        entry = nets["certainty"][1]
        raters = (entry.metrics or {}).get("simulated_raters") or calibrate_rater_sd(
            np.array([v for st in train for v, c in zip(st.likelihood, st.classes) if c == "LV"]))
        result["rater_sd"] = raters["sd"]
        size = int(entry.arch_args.get("size", 224))
        feats, ys = [], []
        for st in train:
            lv = [i for i, c in enumerate(st.classes) if c == "LV"]
            x = _inputs(np.asarray(st.image.array, np.float32)[lv], size)
            feats += [image_features(v[0]) for v in x]
            ys += list(is_low_certainty(simulate_raters(np.array(st.likelihood)[lv], raters["sd"],
                                                        np.random.default_rng(st.subject)).mean(1)))
        baseline_w = fit_logistic(np.array(feats), np.array(ys, float))
    for set_name, stacks in sets.items():
        r: dict[str, Any] = {"stacks": len(stacks), "slices": int(sum(len(s.classes) for s in stacks))}
        if "certainty" in nets:
            thr = float(nets["certainty"][1].calibration.get("operating_threshold", 0.5))
            r["certainty"] = evaluate_certainty(stacks, nets["certainty"], rater_sd=result["rater_sd"], threshold=thr,
                                                baseline_w=baseline_w, gate=nets.get("slice-level"))
        if "slice-level" in nets:
            r["slice_level"] = evaluate_slice_level(stacks, nets["slice-level"], cuts)
        result["sets"][set_name] = r
    speed = {}
    for t, (model, entry) in nets.items():
        size = int(entry.arch_args.get("size", 224))
        speed[f"{entry.name}: one slice"] = network_ms_per_slice((model, entry), size, 1)
        speed[f"{entry.name}: a 12-slice stack, per slice"] = network_ms_per_slice((model, entry), size, 12)
    result["ms_per_slice"] = speed
    return result


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--subjects", type=int, default=40, help="held-out phantom subjects (shifted: half)")
    parser.add_argument("--model", help="installed model to evaluate (default the bundled compact one)")
    parser.add_argument("--json", help="also write the results to this JSON file")


def format_lines(result: dict[str, Any]) -> list[str]:
    lines = []
    for set_name, r in result["sets"].items():
        c = r.get("certainty")
        if c:
            for key in ("rater_mean", "noise_free", "baseline_rater_mean"):
                if key in c:
                    v = c[key]
                    lines.append(f"{set_name} certainty vs {key.replace('_', ' ')}: acc {v['accuracy']} prec "
                                 f"{v['precision']} rec {v['recall']} spec {v['specificity']} F1 {v['f1']} AUC {v['auc']}")
            lines.append(f"{set_name} certainty ceiling vs rater mean {c['ceiling_vs_rater_mean']}; raters {c['raters']}")
        s = r.get("slice_level")
        if s:
            lines.append(f"{set_name} slice level: acc {s['accuracy']} macro AUC {s['macro_auc']} per class "
                         + ", ".join(f"{k} F1 {v['f1']} AUC {v['auc']}" for k, v in s["per_class"].items()))
    lines += [f"{k}: {v} ms" for k, v in result.get("ms_per_slice", {}).items()]
    return lines


def evaluate_cli(args: argparse.Namespace, task: str) -> int:
    from ..progress import make_progress
    kw = {"certainty_model": args.model} if task == "certainty" else {"slice_level_model": args.model}
    result = evaluate(args.subjects, device=getattr(args, "device", None), progress=make_progress(args),
                      tasks=(task,), **kw)
    if result["not_installed"]:
        from ..errors import NotAvailableError
        raise NotAvailableError(f"{', '.join(result['not_installed'])} not installed; train it with "
                                f"`cmr train {'lge-certainty' if task == 'certainty' else 'slice-level'}`")
    print("\n".join(format_lines(result)))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=float))
    return 0

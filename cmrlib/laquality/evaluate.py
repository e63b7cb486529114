"""Evaluation of the LA detector and the LA quality network on held-out (and shifted) phantom scans.

* :func:`detector_stats` — sensitivity / specificity of "slice contains LA" at the detector's t
  (truth: the phantom's LA blood-pool mask) and the blood-pool Dice;
* :func:`quality_stats` — the card's Table 2 for one quality model: precision, recall, F1 and
  specificity of *diagnostic* (quality for fibrosis assessment) per scan, the scan being the mode
  of its slices at the model's fitted decision thresholds; the slices and the atrium's centre come from the detector (the whole pipeline);
  also per attribute, and against the noise-free label;
* :func:`image_statistics_baseline` — a logistic regression on per-scan image statistics of the
  same windows (intensity percentiles, contrast, edge strength, high-pass noise), the baseline the
  networks are compared with; :func:`rater_ceiling` — the simulated raters' label against the
  noise-free one (what no model can beat).

`cmr evaluate la-detector | la-quality` print these for installed models.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass

import numpy as np

from ..metrics import binary_stats
from .data import TEST_SEED_BASE, LAScan
from .networks import LABELS

PUBLISHED_TABLE2 = {  # seed 001, 20 test scans, mean ± sd over runs
    "baseline": {"precision": (0.60, 0.05), "recall": (0.90, 0.15), "f1": (0.71, 0.05), "specificity": (0.38, 0.20)},
    "multitask": {"precision": (0.63, 0.07), "recall": (0.90, 0.12), "f1": (0.73, 0.04), "specificity": (0.44, 0.24)},
    "contrastive": {"precision": (0.65, 0.07), "recall": (0.94, 0.08), "f1": (0.76, 0.05),
                    "specificity": (0.48, 0.17)},
}


def _stats(truth, pred) -> dict:
    st = binary_stats(np.asarray(truth, bool), np.asarray(pred, bool))
    return {k: None if v != v else round(float(v), 4) for k, v in
            (("precision", st.precision), ("recall", st.recall), ("f1", st.f1), ("specificity", st.specificity))}


@dataclass
class Detected:
    """Stage-1 output of one scan: slices used and the atrium's centre (row, col), and the truth."""

    used: list[int]
    centre: tuple[float, float]
    peaks: np.ndarray
    has_la: np.ndarray
    dice: float


def run_detector(model, scans: list[LAScan], threshold: float, dev) -> list[Detected]:
    from .pipeline import detect, select_atrium
    from .preprocess import CARD_SPACING_MM
    voxel_ml = float(np.prod(CARD_SPACING_MM)) / 1000.0
    out = []
    for s in scans:
        prob, _ = detect(model, s.volume.astype(np.float32), dev)
        mask, used, peaks = select_atrium(prob, threshold, voxel_ml)
        w = mask[used].sum(0) if used else mask.sum(0)
        if w.sum() > 0:
            rows, cols = np.nonzero(w)
            centre = (float(np.average(rows, weights=w[rows, cols])), float(np.average(cols, weights=w[rows, cols])))
        else:
            centre = ((s.volume.shape[1] - 1) / 2.0, (s.volume.shape[2] - 1) / 2.0)
        inter = float((mask & s.mask).sum())
        dice = 2 * inter / max(float(mask.sum() + s.mask.sum()), 1.0)
        out.append(Detected(used, centre, peaks, s.mask.reshape(len(s.mask), -1).any(1), dice))
    return out


def detector_stats(detected: list[Detected], threshold: float) -> dict:
    peaks = np.concatenate([d.peaks for d in detected])
    has = np.concatenate([d.has_la for d in detected])
    st = binary_stats(has, peaks > threshold)
    return {"slices": int(len(has)), "sensitivity": round(st.sensitivity, 4), "specificity": round(st.specificity, 4),
            "dice": round(float(np.mean([d.dice for d in detected])), 4), "threshold": threshold,
            "scans_without_la_found": int(sum(not d.used for d in detected))}


def quality_probabilities(model, scans: list[LAScan], detected: list[Detected], dev) -> list[np.ndarray]:
    from .preprocess import quality_input
    from .train import predict_labels
    return [predict_labels(model, quality_input(s.volume.astype(np.float32), d.used, d.centre), dev)
            for s, d in zip(scans, detected)]


def scan_predictions(probabilities: list[np.ndarray], thresholds: np.ndarray | None = None) -> np.ndarray:
    """Scan decisions ``[n_scans, 4]`` by the mode of slice decisions against each label's threshold
    (default 0.5; no slices: non-diagnostic)."""
    from .train import scan_decisions
    thresholds = np.full(len(LABELS), 0.5) if thresholds is None else np.asarray(thresholds, float)
    out = np.zeros((len(probabilities), len(LABELS)), bool)
    for i, p in enumerate(probabilities):
        if len(p):
            out[i] = scan_decisions(p, np.zeros(len(p), int), thresholds)[0]
    return out


def quality_stats(probabilities: list[np.ndarray], scans: list[LAScan], thresholds: np.ndarray | None = None) -> dict:
    pred = scan_predictions(probabilities, thresholds)
    truth = np.stack([s.labels for s in scans]) > 0.5
    out = {"overall": _stats(truth[:, 3], pred[:, 3])}
    for j, k in enumerate(LABELS[:3]):
        out[k] = _stats(truth[:, j], pred[:, j])
    noise_free = np.stack([s.truth_labels for s in scans if s.truth is not None]) > 0.5
    if len(noise_free) == len(scans):
        out["overall_vs_noise_free"] = _stats(noise_free[:, 3], pred[:, 3])
    return out


def rater_ceiling(scans: list[LAScan]) -> dict:
    """The raters' mean label scored against the noise-free label (as if it were a prediction)."""
    truth = np.stack([s.truth_labels for s in scans])[:, 3] > 0.5
    label = np.stack([s.labels for s in scans])[:, 3] > 0.5
    return _stats(label, truth)


def window_features(volume01: np.ndarray, used: list[int], centre) -> np.ndarray:
    """Per-scan image statistics of the stage-2 windows (the baseline's inputs)."""
    from scipy import ndimage

    from .preprocess import quality_input
    x = quality_input(volume01, used, centre)[:, 0] if used else volume01[len(volume01) // 2][None]
    grad = np.hypot(ndimage.sobel(x, axis=1), ndimage.sobel(x, axis=2))
    high = x - ndimage.gaussian_filter(x, (0, 1.0, 1.0))
    p = np.percentile(x, [5, 25, 50, 75, 95])
    return np.array([*p, x.mean(), x.std(), grad.mean(), np.percentile(grad, 95), np.median(np.abs(high)),
                     (p[4] - p[0]) / max(p[2], 1e-3), len(used)], np.float64)


def image_statistics_baseline(train: list[LAScan], train_det: list[Detected], test: list[LAScan],
                              test_det: list[Detected]) -> np.ndarray:
    """Scan decisions ``[n_test]`` of *diagnostic* overall quality by a logistic regression on
    :func:`window_features` (standardised, L2, fitted on the training scans)."""
    import torch
    f_tr = np.stack([window_features(s.volume.astype(np.float32), d.used, d.centre) for s, d in zip(train, train_det)])
    f_te = np.stack([window_features(s.volume.astype(np.float32), d.used, d.centre) for s, d in zip(test, test_det)])
    mu, sd = f_tr.mean(0), f_tr.std(0) + 1e-9
    x = torch.tensor((f_tr - mu) / sd, dtype=torch.float64)
    y = torch.tensor(np.array([s.labels[3] for s in train]), dtype=torch.float64)
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=200)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(x @ w + b, y) + 1e-2 * (w ** 2).sum()
        loss.backward()
        return loss
    opt.step(closure)
    with torch.no_grad():
        return ((torch.tensor((f_te - mu) / sd) @ w + b) > 0).numpy()


def time_per_scan(scan_volumes, quality_model: str, detector_model: str, device=None) -> float:
    """Seconds of :func:`~cmrlib.laquality.pipeline.assess_volume` per scan (saliency included)."""
    from .pipeline import assess_volume
    times = []
    for img in scan_volumes:
        t = time.perf_counter()
        assess_volume(img, quality_model=quality_model, detector_model=detector_model, device=device)
        times.append(time.perf_counter() - t)
    return float(np.median(times))


# ---- `cmr evaluate la-detector | la-quality` --------------------------------------------------------
def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None, help="installed model (default the compact one)")
    parser.add_argument("--detector", default=None, help="la-quality: the detector selecting slices "
                                                         "(default la-detector-compact)")
    parser.add_argument("--subjects", type=int, default=30, help="held-out phantom scans")
    parser.add_argument("--shifted", action="store_true", help="re-acquire them differently (resolution, coil "
                                                               "shading, position, scale)")
    parser.add_argument("--cache", default=".cache/la", help="folder for generated scans")


def evaluation_scans(n: int, cache: str, shifted: bool = False) -> list[LAScan]:
    from .data import cached_phantom_scans, shift_scan
    scans = cached_phantom_scans(cache, TEST_SEED_BASE, n)
    if shifted:
        scans = [shift_scan(s, np.random.default_rng([s.meta["seed"], 5])) for s in scans]
    return scans


def evaluate_cli(args: argparse.Namespace, trainer: str) -> int:
    from ..device import pick_device
    from ..models.zoo import load_installed
    from .pipeline import DETECTOR_MODEL, QUALITY_MODEL
    dev = pick_device(getattr(args, "device", None))
    scans = evaluation_scans(args.subjects, args.cache, args.shifted)
    det_name = (args.model if trainer == "la-detector" else args.detector) or DETECTOR_MODEL
    detector, d_entry = load_installed(det_name, dev, "la-detector")
    t = float(d_entry.calibration.get("slice_threshold", 0.5))
    detected = run_detector(detector, scans, t, dev)
    out = {"scans": len(scans), "shifted": bool(args.shifted), "detector": {"model": det_name,
                                                                            **detector_stats(detected, t)}}
    if trainer == "la-quality":
        name = args.model or QUALITY_MODEL
        model, entry = load_installed(name, dev, "la-quality")
        probs = quality_probabilities(model, scans, detected, dev)
        from .train import decision_thresholds
        out["quality"] = {"model": name, "variant": entry.arch_args.get("variant"),
                          **quality_stats(probs, scans, decision_thresholds(entry.calibration))}
        out["rater_ceiling"] = rater_ceiling(scans)
    print(json.dumps(out, indent=2))
    return 0

"""`cmr train la-detector` and `cmr train la-quality`: the two stages of seed 001.

Card recipe: Adam lr 1e-3, batch 128, ≤ 40 epochs, early stopping with patience 7 on the
validation loss (the MSE of the slice probabilities for the quality network), cosine annealing;
flips, perspective, shift / scale / rotate with probability 0.5 each; slices resized to 128².
"Perspective" is done here as a random shear of the affine view (a projective warp of a slice
changes little else at these angles).

**Detector**: Dice + BCE on the LA blood pool of axial slices — half of them with atrium, half
drawn from the whole volume — seen through a random square of 150–250 mm anywhere near the
slice centre (field of view and heart position), rotated and mirrored, with full domain
randomisation of intensities (curves, bias, resolution, blur, noise: the detector must find the
atrium in any image). The slice-selection threshold t is then fitted on the validation slices
(the best sensitivity + specificity of "contains LA") and kept in the manifest's calibration;
``cmr quality la --threshold`` overrides it.

**Quality network**: the slices with atrium (the card's stage-1 selection; in training, from the
LA mask), the scan's labels on each, a 200 mm window around the atrium with random shift,
scale, rotation, mirror and shear; intensities only mildly changed (a gamma, a weak bias field)
because nulling, sharpness and noise *are* the labels. Variants: ``baseline`` (BCE over the
three attributes and the quality), ``multitask`` (+ Dice of a decoder's LA blood pool),
``contrastive`` (supervised contrastive pre-training of the encoder over the four labels with
LARS, then the heads trained on the frozen encoder with the baseline recipe). Each label's
decision threshold of *diagnostic* is then fitted on the validation scans (best scan F1,
:func:`fit_decision_thresholds`) and kept in the manifest's calibration.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from ..progress import report
from .data import (RATER_NOISE_SD, RATER_OFFSET_SD, TRAIN_SEED_BASE, VAL_SEED_BASE, LAScan, cached_phantom_scans,
                   rater_agreement, user_scans)
from .networks import LABELS, VARIANTS
from .preprocess import SIZE, detector_side_px, quality_side_px, window

PUBLISHED_QUALITY_PARAMETERS = 21_800_000  # ResNet-34 (ImageNet), the card does not count the heads


def add_common(parser: argparse.ArgumentParser, model: str, epochs: int, steps: int, batch: int) -> None:
    parser.add_argument("--preset", choices=("compact", "paper"), default="compact",
                        help="compact (CPU size) or paper (the card's widths)")
    parser.add_argument("--out", default="models", help="model folder to add the weights to (default ./models)")
    parser.add_argument("--name", default=None, help=f"model name (default {model}-<preset>)")
    parser.add_argument("--data", help="folder of your own LA 3-D LGE volumes with la_scores.csv (README 'LA quality "
                                       "training data'); replaces the phantom")
    parser.add_argument("--init", help="start from the weights of this installed model (fine-tuning)")
    parser.add_argument("--train-subjects", type=int, default=240, help="phantom LA scans for training")
    parser.add_argument("--val-subjects", type=int, default=30, help="phantom LA scans for validation")
    parser.add_argument("--epochs", type=int, default=epochs, help="(card: at most 40, early stopping)")
    parser.add_argument("--steps", type=int, default=steps, help="batches per epoch")
    parser.add_argument("--batch", type=int, default=batch, help="(card: 128)")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (card: 1e-3)")
    parser.add_argument("--patience", type=int, default=7, help="early stopping: epochs without a better validation "
                                                                "loss (card: 7)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", default=".cache/la", help="folder for generated scans and checkpoints")
    parser.add_argument("--max-minutes", type=float, default=None, help="stop after this many minutes (at an epoch end)")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint in --cache")


def add_detector_arguments(parser: argparse.ArgumentParser) -> None:
    add_common(parser, "la-detector", 12, 60, 32)


def add_quality_arguments(parser: argparse.ArgumentParser) -> None:
    add_common(parser, "la-quality", 12, 40, 32)
    parser.add_argument("--variant", choices=VARIANTS, default="contrastive",
                        help="baseline; multitask (+ LA segmentation decoder); contrastive (supervised contrastive "
                             "pre-training, then a frozen encoder) — default contrastive, the card's best")
    parser.add_argument("--pretrain-epochs", type=int, default=40,
                        help="contrastive: pre-training epochs (card: 100; at 10 the encoder is not ready)")
    parser.add_argument("--pretrain-lr", type=float, default=0.5, help="contrastive: LARS learning rate (card: 0.5)")
    parser.add_argument("--temperature", type=float, default=0.1, help="contrastive: τ of the loss")


# ---- data ---------------------------------------------------------------------------------------
def load_scans(args, need_scores: bool, need_masks: bool, progress=None) -> tuple[list[LAScan], list[LAScan], str]:
    if args.data:
        scans = user_scans(args.data, need_scores=need_scores, need_masks=need_masks)
        order = np.random.default_rng(args.seed).permutation(len(scans))
        n_val = max(1, len(scans) // 10) if len(scans) > 3 else 0
        val = [scans[i] for i in order[:n_val]]
        train = [scans[i] for i in order[n_val:]] or scans
        return train, val, f"user data: {len(scans)} LA LGE volumes from {args.data}"
    train = cached_phantom_scans(args.cache, TRAIN_SEED_BASE, args.train_subjects, progress)
    val = cached_phantom_scans(args.cache, VAL_SEED_BASE, args.val_subjects, progress)
    return train, val, (f"phantom: {args.train_subjects} LA 3-D LGE scans from seed {TRAIN_SEED_BASE} (1.25 × 1.25 × "
                        "2.5 mm, 240 mm field of view), labels from two simulated raters")


def detector_view(scan: LAScan, k: int, rng: np.random.Generator, augment: bool) -> tuple[np.ndarray, np.ndarray]:
    """(image, mask) ``[S, S]`` of slice k as stage 1 sees it; randomised when ``augment``."""
    from ..augment import degrade
    sl = scan.volume[k].astype(np.float32)
    m = scan.mask[k].astype(np.float32)
    h, w = sl.shape
    centre, side, angle, flip, shear = ((h - 1) / 2.0, (w - 1) / 2.0), detector_side_px(sl.shape), 0.0, False, 0.0
    if augment:
        side = float(rng.uniform(120, 200))
        centre = (centre[0] + rng.uniform(-25, 25), centre[1] + rng.uniform(-25, 25))
        angle = float(rng.uniform(-25, 25)) if rng.random() < 0.5 else 0.0
        flip = bool(rng.random() < 0.5)
        shear = float(rng.uniform(-0.12, 0.12)) if rng.random() < 0.5 else 0.0
    x = window(sl, centre, side, SIZE, angle, flip, shear)
    y = window(m, centre, side, SIZE, angle, flip, shear, order=1) > 0.5
    if augment and rng.random() < 0.8:
        x = np.clip(degrade(x, rng), 0.0, None)
    return x.astype(np.float32), y.astype(np.float32)


def quality_view(scan: LAScan, k: int, rng: np.random.Generator, augment: bool,
                 with_mask: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """(image, LA mask or None) ``[S, S]``: the window on the atrium of slice k."""
    from ..augment import bias_field
    sl = scan.volume[k].astype(np.float32)
    centre, side, angle, flip, shear = scan.la_centre, quality_side_px(), 0.0, False, 0.0
    if augment:
        if rng.random() < 0.5:
            centre = (centre[0] + rng.normal(0, 6), centre[1] + rng.normal(0, 6))
            side *= float(rng.uniform(0.85, 1.15))
        angle = float(rng.uniform(-15, 15)) if rng.random() < 0.5 else 0.0
        flip = bool(rng.random() < 0.5)
        shear = float(rng.uniform(-0.1, 0.1)) if rng.random() < 0.5 else 0.0
    x = window(sl, centre, side, SIZE, angle, flip, shear)
    if augment:
        x = np.clip(x, 0.0, 1.0) ** float(np.exp(rng.normal(0.0, 0.1)))
        if rng.random() < 0.5:
            x = x * bias_field(x.shape, rng, float(rng.uniform(0.03, 0.1)))
    m = None
    if with_mask and scan.mask is not None:
        m = (window(scan.mask[k].astype(np.float32), centre, side, SIZE, angle, flip, shear) > 0.5).astype(np.float32)
    return x.astype(np.float32), m


def _batch(arrays: list[np.ndarray], dev) -> torch.Tensor:
    return torch.from_numpy(np.stack(arrays)[:, None]).to(dev)


# ---- detector -----------------------------------------------------------------------------------
def detector_val_set(val: list[LAScan]) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for s in val:
        for k in range(len(s.volume)):
            x, y = detector_view(s, k, np.random.default_rng(0), False)
            xs.append(x)
            ys.append(y)
    return np.stack(xs)[:, None], np.stack(ys)[:, None]


def slice_detection(peaks: np.ndarray, has_la: np.ndarray, t: float) -> dict:
    from ..metrics import binary_stats
    st = binary_stats(has_la.astype(bool), peaks > t)
    return {"sensitivity": round(st.sensitivity, 4), "specificity": round(st.specificity, 4)}


def fit_slice_threshold(peaks: np.ndarray, has_la: np.ndarray, lowest: float = 0.5) -> dict:
    """The t ≥ ``lowest`` with the best sensitivity + specificity of "slice contains LA" (ties: the
    middle one). Inside the atrium every pixel is above the mask's 0.5, so lower t change nothing."""
    grid = np.round(np.arange(lowest, 0.951, 0.01), 3)
    j = np.array([sum(slice_detection(peaks, has_la, t).values()) for t in grid])
    best = grid[np.flatnonzero(j >= j.max() - 1e-9)]
    t = float(best[len(best) // 2])
    return {"slice_threshold": t, **{f"validation_{k}": v for k, v in slice_detection(peaks, has_la, t).items()}}


def calibrate_detector(model, val: list[LAScan], dev) -> dict:
    """The slice threshold t fitted on whole validation volumes, with the pipeline's rule (a slice's
    peak inside the detected atrium, :func:`cmrlib.laquality.pipeline.select_atrium`)."""
    from .pipeline import detect, select_atrium
    from .preprocess import CARD_SPACING_MM
    voxel_ml = float(np.prod(CARD_SPACING_MM)) / 1000.0
    peaks, has = [], []
    model.eval()
    for s in val:
        prob, _ = detect(model, s.volume.astype(np.float32), dev)
        peaks.append(select_atrium(prob, 1.0, voxel_ml)[2])  # the peaks do not depend on t
        has.append(s.mask.reshape(len(s.mask), -1).any(1))
    return {**fit_slice_threshold(np.concatenate(peaks), np.concatenate(has)),
            "rule": "peak inside the largest connected blood pool of >= 5 ml"}


def predict_sigmoid(model, x: np.ndarray, dev, batch: int = 32) -> np.ndarray:
    """``sigmoid(model(x))`` of network inputs ``x`` ``[n, 1, S, S]`` in batches (no gradients)."""
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            out.append(torch.sigmoid(model(torch.from_numpy(np.ascontiguousarray(x[i:i + batch])).to(dev))).cpu().numpy())
    return np.concatenate(out)


def predict_masks(model, x: np.ndarray, dev) -> np.ndarray:
    """LA blood-pool probabilities ``[n, 1, S, S]`` of detector inputs."""
    return predict_sigmoid(model, x, dev)


def run_detector(args: argparse.Namespace) -> int:
    from monai.losses import DiceLoss

    from ..models.zoo import reproducing_command
    from .networks import LADetector, LADetectorConfig, config_args
    progress = _setup(args)
    cfg = LADetectorConfig.preset(args.preset)
    model = LADetector(cfg)
    name = args.name or f"la-detector-{args.preset}"
    train, val, trained_on = load_scans(args, need_scores=False, need_masks=True, progress=progress)
    with_la = [(i, k) for i, s in enumerate(train) for k in s.la_slices]
    if not with_la:
        raise InputError("no training slice contains the left atrium (every mask is empty)")
    dice = DiceLoss(sigmoid=True, batch=True)
    rng = np.random.default_rng(args.seed)
    xv, yv = detector_val_set(val) if val else (None, None)

    def step(model, opt, dev):
        picks = []
        for _ in range(args.batch):
            if rng.random() < 0.5:
                picks.append(with_la[int(rng.integers(len(with_la)))])
            else:
                i = int(rng.integers(len(train)))
                picks.append((i, int(rng.integers(len(train[i].volume)))))
        views = [detector_view(train[i], k, rng, True) for i, k in picks]
        x, y = _batch([v[0] for v in views], dev), _batch([v[1] for v in views], dev)
        logits = model(x)
        loss = dice(logits, y) + F.binary_cross_entropy_with_logits(logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    def validate(model, dev):
        p = predict_masks(model, xv, dev)
        t = torch.from_numpy(yv)
        loss = float(dice(torch.logit(torch.from_numpy(p).clamp(1e-6, 1 - 1e-6)), t) +
                     F.binary_cross_entropy(torch.from_numpy(p), t))
        inter = float((p > 0.5)[yv > 0].sum())
        d = 2 * inter / max(float((p > 0.5).sum() + (yv > 0).sum()), 1.0)
        return {"val_loss": round(loss, 5), "val_dice": round(d, 4),
                **slice_detection(p.reshape(len(p), -1).max(1), yv.reshape(len(yv), -1).max(1) > 0, 0.5)}

    command = reproducing_command("cmr train la-detector", add_detector_arguments, args)
    model, session, dev, history = _fit(args, model, name, command, step, validate if val else None,
                                        "la_detector_unet", config_args(cfg), progress)
    calibration = {}
    if val:
        calibration = calibrate_detector(model, val, dev)
        print(f"slice threshold t = {calibration['slice_threshold']} (validation sensitivity "
              f"{calibration['validation_sensitivity']}, specificity {calibration['validation_specificity']})")
    return _save(args, model, name, "la-detector", "la_detector_unet", config_args(cfg), session, trained_on,
                 {"grid": [SIZE, SIZE], "channels": ["one axial slice of a 3-D LA LGE volume"],
                  "preprocessing": "axial grid at 1.25 × 1.25 × 2.5 mm; volume 0.5–99.5th percentile to 0–1; the "
                                   "central ≤ 240 mm square of each slice resized to 128 px",
                  "outputs": "logit of LA blood pool per pixel"},
                 {"0": "background", "1": "LA blood pool"}, calibration, {})


# ---- quality ------------------------------------------------------------------------------------
def quality_items(scans: list[LAScan]) -> list[tuple[int, int]]:
    return [(i, k) for i, s in enumerate(scans) for k in s.la_slices]


def quality_val_set(val: list[LAScan]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validation inputs, slice targets ``[n, 4]`` and each slice's scan index."""
    xs, ys, owner = [], [], []
    for i, s in enumerate(val):
        for k in s.la_slices:
            xs.append(quality_view(s, k, np.random.default_rng(0), False)[0])
            ys.append(s.labels)
            owner.append(i)
    return np.stack(xs)[:, None], np.stack(ys), np.array(owner)


def predict_labels(model, x: np.ndarray, dev) -> np.ndarray:
    """Probabilities of *diagnostic* ``[n, 4]`` of quality inputs ``[n, 1, S, S]``."""
    return predict_sigmoid(model, x, dev, 64) if len(x) else np.zeros((0, len(LABELS)), np.float32)


def scan_mode(decisions: np.ndarray, probabilities: np.ndarray, threshold: float = 0.5) -> tuple[bool, float]:
    """The card's scan score: the mode of the slice decisions (a tie goes to the mean probability
    against the same ``threshold`` the decisions used), and the share of slices voting *diagnostic*."""
    share = float(np.mean(decisions)) if len(decisions) else float("nan")
    if share == 0.5:
        return bool(np.mean(probabilities) >= threshold), share
    return bool(share > 0.5), share


def decision_thresholds(calibration: dict) -> np.ndarray:
    """The per-label probability thresholds of *diagnostic* ``[4]`` kept in a quality model's
    manifest calibration (0.5 for a model trained before they were fitted, or without validation)."""
    fitted = calibration.get("decision_thresholds", {})
    return np.array([float(fitted.get(k, 0.5)) for k in LABELS])


def scan_decisions(p: np.ndarray, owner: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Scan decisions ``[n_scans, 4]`` (scans in ``np.unique(owner)`` order) by the mode of slice
    probabilities ``p`` ``[n, 4]`` against each label's threshold."""
    return np.array([[scan_mode(p[owner == i, j] >= thresholds[j], p[owner == i, j], thresholds[j])[0]
                      for j in range(p.shape[1])] for i in np.unique(owner)], bool).reshape(-1, p.shape[1])


def scan_metrics(p: np.ndarray, y_slices: np.ndarray, owner: np.ndarray, thresholds: np.ndarray | None = None) -> dict:
    """Precision / recall / F1 / specificity of *diagnostic* (overall quality), per scan by the mode."""
    from ..metrics import binary_stats
    thresholds = np.full(len(LABELS), 0.5) if thresholds is None else thresholds
    pred = scan_decisions(p, owner, thresholds)[:, 3]
    truth = np.array([bool(y_slices[owner == i][0, 3]) for i in np.unique(owner)])
    st = binary_stats(truth, pred)
    return {k: None if v != v else round(float(v), 4) for k, v in
            (("precision", st.precision), ("recall", st.recall), ("f1", st.f1), ("specificity", st.specificity))}


THRESHOLD_GRID = np.round(np.arange(0.05, 0.951, 0.01), 2)


def fit_decision_thresholds(p: np.ndarray, y_slices: np.ndarray, owner: np.ndarray) -> dict:
    """Each label's probability threshold of *diagnostic*: the one of :data:`THRESHOLD_GRID` whose
    scan decisions (mode of the slices) have the best F1 on the validation scans, the middle of
    the best run when several tie; 0.5 when the validation scans hold no diagnostic one. Why: a
    head trained on a 1:2 class balance gives probabilities below 0.5 to most scans, so at 0.5 a
    weak model calls every scan non-diagnostic (F1 0) and its ranking is never scored; the card
    reports F1, so the operating point is chosen for it, on validation scans only."""
    from ..metrics import binary_stats
    out = {}
    scans = np.unique(owner)
    for j, k in enumerate(LABELS):
        truth = np.array([bool(y_slices[owner == i][0, j]) for i in scans])
        if not truth.any():
            out[k] = 0.5
            continue
        f1 = []
        for t in THRESHOLD_GRID:
            st = binary_stats(truth, scan_decisions(p[:, j:j + 1], owner, np.array([t]))[:, 0])
            f1.append(0.0 if st.f1 != st.f1 else float(st.f1))
        f1 = np.array(f1)
        best = np.flatnonzero(f1 >= f1.max() - 1e-9)
        out[k] = float(THRESHOLD_GRID[best[len(best) // 2]])
    return out


def run_quality(args: argparse.Namespace) -> int:
    from monai.losses import DiceLoss

    from ..models.zoo import reproducing_command
    from .networks import LAQualityNet, LAQualityNetConfig, config_args
    progress = _setup(args)
    cfg = LAQualityNetConfig.preset(args.preset, args.variant)
    model = LAQualityNet(cfg)
    name = args.name or f"la-quality-{args.preset}"
    train, val, trained_on = load_scans(args, need_scores=True, need_masks=args.variant == "multitask",
                                        progress=progress)
    items = quality_items(train)
    if not items:
        raise InputError("no training slice with left atrium: quality training reads the slices inside the LA mask "
                         "(give masks in la_scores.csv's mask column)")
    labels = np.stack([s.labels for s in train])
    print("training scans diagnostic / non-diagnostic: " + ", ".join(
        f"{k} {int(labels[:, j].sum())}/{int(len(labels) - labels[:, j].sum())}" for j, k in enumerate(LABELS)))
    agreement = rater_agreement(train)
    if agreement:
        print("simulated raters: " + json.dumps(agreement))
    rng = np.random.default_rng(args.seed)
    dice = DiceLoss(sigmoid=True, batch=True)
    xv, yv, ov = quality_val_set(val) if val else (None, None, None)
    multitask = args.variant == "multitask"
    command = reproducing_command("cmr train la-quality", add_quality_arguments, args)

    pretrain_minutes = None
    if args.variant == "contrastive":
        pretrain_minutes = _pretrain(args, model, train, items, rng, command, progress)
        for p in model.encoder.parameters():
            p.requires_grad_(False)

    def step(model, opt, dev):
        if args.variant == "contrastive":
            model.encoder.eval()  # frozen: its batch statistics stay those of pre-training
        picks = [items[int(j)] for j in rng.integers(0, len(items), args.batch)]
        views = [quality_view(train[i], k, rng, True, with_mask=multitask) for i, k in picks]
        x = _batch([v[0] for v in views], dev)
        y = torch.from_numpy(np.stack([train[i].labels for i, _ in picks])).to(dev)
        if multitask:
            logits, seg = model.forward_with_mask(x)
            loss = F.binary_cross_entropy_with_logits(logits, y) + dice(seg, _batch([v[1] for v in views], dev))
        else:
            loss = F.binary_cross_entropy_with_logits(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    def validate(model, dev):
        p = predict_labels(model, xv, dev)
        return {"val_loss": round(float(np.mean((p - yv) ** 2)), 5), **{f"val_{k}": v for k, v in
                                                                        scan_metrics(p, yv, ov).items()}}

    params = model.head_parameters() if args.variant == "contrastive" else None
    model, session, dev, history = _fit(args, model, name, command, step, validate if val else None,
                                        "la_quality_resnet34", config_args(cfg), progress, params)
    calibration = {}
    if val:
        model.eval()
        pv = predict_labels(model, xv, dev)
        fitted = fit_decision_thresholds(pv, yv, ov)
        calibration = {"decision_thresholds": fitted,
                       "rule": f"per label, the threshold with the best scan F1 (mode of slices) on the {len(val)} "
                               "validation scans",
                       "validation_overall": scan_metrics(pv, yv, ov, decision_thresholds({"decision_thresholds": fitted}))}
        print("decision thresholds of diagnostic (best validation F1): " + json.dumps(fitted))
    from ..models.unet2d import n_parameters
    return _save(args, model, name, "la-quality", "la_quality_resnet34", config_args(cfg), session, trained_on,
                 {"grid": [SIZE, SIZE], "channels": ["one axial slice of a 3-D LA LGE volume containing the atrium"],
                  "preprocessing": "axial grid at 1.25 × 1.25 × 2.5 mm; volume 0.5–99.5th percentile to 0–1; a 200 mm "
                                   "square centred on the detected atrium resized to 128 px",
                  "outputs": f"logits of diagnostic (score ≥ 3) for {', '.join(LABELS)}"},
                 {str(i): k for i, k in enumerate(LABELS)}, calibration,
                 # all parameters: the contrastive variant's frozen encoder is part of the model
                 {"variant": args.variant, "parameters": n_parameters(model, trainable_only=False),
                  "trainable_parameters": n_parameters(model),
                  "encoder_parameters": n_parameters(model.encoder, trainable_only=False),
                  "published_encoder_parameters": PUBLISHED_QUALITY_PARAMETERS,
                  "pretrain_minutes": pretrain_minutes,
                  "simulated_raters": None if args.data else {"noise_sd_points": RATER_NOISE_SD,
                                                              "offset_sd_points": RATER_OFFSET_SD, **agreement}})


def _pretrain(args, model, train, items, rng, command, progress) -> float:
    """Supervised contrastive pre-training of the encoder + projector (LARS, cosine schedule)."""
    from ..models.training import TrainingRun
    from .contrastive import LARS, SupConLoss, multi_label_supcon
    dev = model_device(args)
    model.to(dev).train()
    params = list(model.encoder.parameters()) + list(model.projector.parameters())
    opt = LARS(params, lr=args.pretrain_lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(args.pretrain_epochs * args.steps, 1))
    loss_fn = SupConLoss(args.temperature)
    name = (args.name or f"la-quality-{args.preset}") + "-supcon"
    session = TrainingRun(args.cache, name, command + " [supervised contrastive pre-training]",
                          lambda m: m["supcon_loss"], None)
    start = session.begin(model, opt, args.resume, None, dev)
    for epoch in range(start, args.pretrain_epochs):
        total = 0.0
        for s in range(args.steps):
            picks = [items[int(j)] for j in rng.integers(0, len(items), args.batch)]
            v1 = [quality_view(train[i], k, rng, True)[0] for i, k in picks]
            v2 = [quality_view(train[i], k, rng, True)[0] for i, k in picks]
            y = torch.from_numpy(np.stack([train[i].labels for i, _ in picks] * 2)).to(dev)
            z = model.project(_batch(v1 + v2, dev))
            loss = multi_label_supcon(loss_fn, z, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
            report(progress, f"pre-training {epoch + 1}/{args.pretrain_epochs}", s + 1, args.steps,
                   f"supcon {total / (s + 1):.4f}")
        session.end_epoch(epoch, model, opt, {"supcon_loss": round(total / args.steps, 5)})
    # the encoder after the last pre-training epoch (the contrastive loss is not a validation score)
    model.eval()
    return round(session.minutes, 1)


# ---- the shared loop ----------------------------------------------------------------------------
def model_device(args):
    from ..device import pick_device
    return pick_device(getattr(args, "device", None))


def _setup(args):
    from ..progress import make_progress
    torch.manual_seed(args.seed)
    if args.epochs < 1 or args.steps < 1 or args.batch < 2:
        raise InputError("--epochs and --steps must be ≥ 1 and --batch ≥ 2")
    return make_progress(args)


def _fit(args, model, name, command, step, validate, arch, arch_args, progress, params=None):
    """Adam + cosine annealing over ``args.epochs``, early stopping on ``val_loss`` with ``args.patience``."""
    from ..models import load_model
    from ..models.training import TrainingRun
    dev = model_device(args)
    model = model.to(dev)
    if args.init:
        base, entry0 = load_model(args.init, device=dev)
        if entry0.architecture != arch or {k: v for k, v in entry0.arch_args.items() if k != "variant"} != \
                {k: v for k, v in arch_args.items() if k != "variant"}:
            raise InputError(f"--init {args.init} is not a {args.preset} network of this kind")
        model.load_state_dict(base.state_dict(), strict=False)
    trainable = list(params) if params is not None else [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(trainable, lr=args.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)
    session = TrainingRun(args.cache, name, command, lambda m: m["val_loss"], args.max_minutes)
    start = session.begin(model, opt, args.resume, args.lr if not args.resume else None, dev)
    for _ in range(start):
        sched.step()
    model.train()
    stale = 0
    for epoch in range(start, args.epochs):
        total = 0.0
        for s in range(args.steps):
            total += step(model, opt, dev)
            report(progress, f"epoch {epoch + 1}/{args.epochs}", s + 1, args.steps, f"loss {total / (s + 1):.4f}")
        sched.step()
        if validate is not None:
            model.eval()
            metrics = validate(model, dev)
            model.train()
        else:
            metrics = {"val_loss": total / args.steps}
        best_before = min((h["val_loss"] for h in session.history), default=float("inf"))
        go_on = session.end_epoch(epoch, model, opt, {"train_loss": round(total / args.steps, 5), **metrics})
        stale = 0 if metrics["val_loss"] < best_before else stale + 1
        if not go_on:
            break
        if stale >= args.patience:
            print(f"early stopping after {epoch + 1} epochs (no better validation loss for {args.patience})")
            break
    session.finish(model, dev)
    return model, session, dev, session.history


def _save(args, model, name, trainer, arch, arch_args, session, trained_on, inp, label_table, calibration,
          extra) -> int:
    from ..models import ModelEntry, save_model
    from ..models.unet2d import n_parameters
    train_command, minutes = " && ".join(session.commands + [session.command]), session.minutes
    best = min(session.history, key=lambda h: h["val_loss"]) if session.history else {}
    entry = ModelEntry(
        name=name, task=trainer, architecture=arch, file=f"{name}.safetensors", sha256="", version="1.0",
        arch_args=arch_args, input=inp, label_table=label_table, trained_on=trained_on,
        phantom_trained=not args.data, train_command=train_command,
        metrics={"validation": best, "selected_epoch": best.get("epoch"), "epochs": len(session.history),
                 "minutes": round(minutes, 1), "batch": args.batch, "steps": args.steps,
                 "parameters": n_parameters(model), **extra},
        calibration=calibration, card=f"{name}.md")
    entry = save_model(model, entry, Path(args.out))
    print(f"saved {entry.path} (sha256 {entry.sha256[:12]}…); {entry.notice}")
    print(json.dumps(best))
    return 0

"""`cmr train landmarks-presence`: the landmarks' LV-presence gate — does a short-axis image show
an LV with its anterior RV insertion point?

Why: the two-stage regressor always answers, and on images without an LV it gives points that
agree with themselves (the stage / flip-test confidence refused only a third of them:
benchmarks/bench_landmarks.py, "no-LV images"). The card asks for no landmarks, with a reason,
rather than a confident wrong point. The gate is a classifier of the regressor's own topology
(:class:`~cmrlib.landmarks.resnetv2.LandmarkNet`, one sigmoid output) on the stage-1 grid.

Training (phantom; :mod:`cmrlib.landmarks.data`): images *with* landmarks are the regressor's
training images (every contrast); images *without* are slices of stacks extended 1–2 slices
beyond the base and the apex (too basal, too apical, apical LV without the RV:
:func:`~cmrlib.landmarks.data.no_lv_sources`), the body away from the heart and pure noise
(:func:`~cmrlib.landmarks.data.non_cardiac_sources`). Both get the regressor's augmentation
and domain randomisation (:func:`~cmrlib.landmarks.data.stage1_input`); batches hold both kinds
equally; binary cross-entropy, Adam. The weights kept are those of the epoch with the lowest
validation loss. ``--data DIR``: a site's own slices, those annotated as for `cmr train
landmarks --data` against those ``no_landmarks.csv`` names (README "Landmark training data").

Threshold (``calibration.presence_threshold``): fitted on the validation images to keep
:data:`KEEP_LV` of those with landmarks; the pipeline gives no landmarks below it. Inference
averages the image and its mirror image, as the regressor's flip test.
"""
from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from ..models.training import TrainingRun, cached_pickle
from ..progress import report
from .data import (TRAIN_SEED_BASE, VAL_SEED_BASE, Source, no_lv_sources, non_cardiac_sources, phantom_sources,
                   stage1_input, user_negative_sources, user_sources)
from .geometry import stage1_map, standardise
from .resnetv2 import LandmarkNet, LandmarkNetConfig

MODEL_TASK = "landmarks-presence"
PRESENCE_MODEL = "landmarks-presence-compact"
KEEP_LV = 0.98  # share of validation images with landmarks the fitted threshold keeps


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", choices=("compact", "paper"), default="compact",
                        help="the landmark network's topology (grid of stage 1) with one output")
    parser.add_argument("--out", default="models", help="model folder to add the weights to (default ./models)")
    parser.add_argument("--name", default=None, help="model name (default landmarks-presence-<preset>)")
    parser.add_argument("--data", help="folder of your own short-axis slices: annotated ones (as `cmr train landmarks "
                                       "--data`) and no_landmarks.csv naming slices without landmarks")
    parser.add_argument("--init", help="start from the weights of this installed gate (fine-tuning)")
    parser.add_argument("--train-subjects", type=int, default=240, help="phantom subjects for training")
    parser.add_argument("--val-subjects", type=int, default=24, help="phantom subjects for validation")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--steps", type=int, default=60, help="batches per epoch")
    parser.add_argument("--batch", type=int, default=16, help="images per batch, half with landmarks")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", default=".cache/landmarks-presence", help="folder for generated images, checkpoints")
    parser.add_argument("--max-minutes", type=float, default=None, help="stop after this many minutes (at an epoch end)")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint in --cache")


def _phantom_negatives(seed_base: int, n_subjects: int, progress=None) -> list[Source]:
    return (no_lv_sources(range(seed_base, seed_base + n_subjects), progress=progress)
            + non_cardiac_sources(max(2, n_subjects // 3), seed_base + 9000))


def training_sets(args, progress=None) -> tuple[list[Source], list[Source], list[Source], list[Source], str]:
    """(train with landmarks, train without, validation with, validation without, what they are)."""
    if args.data:
        pos, neg = user_sources(args.data), user_negative_sources(args.data)
        rng = np.random.default_rng(args.seed)

        def split(items):
            order = rng.permutation(len(items))
            n_val = max(1, len(items) // 10) if len(items) > 1 else 0
            return [items[i] for i in order[n_val:]] or items, [items[i] for i in order[:n_val]] or items
        (tp, vp), (tn, vn) = split(pos), split(neg)
        return tp, tn, vp, vn, f"user data {args.data}: {len(pos)} slices with landmarks, {len(neg)} without"
    cache = Path(args.cache)
    n, nv = args.train_subjects, args.val_subjects
    tp = cached_pickle(cache, f"pos_train_{n}", lambda: phantom_sources(range(TRAIN_SEED_BASE, TRAIN_SEED_BASE + n),
                                                                       progress=progress))
    tn = cached_pickle(cache, f"neg_train_{n}", lambda: _phantom_negatives(TRAIN_SEED_BASE, n, progress))
    vp = cached_pickle(cache, f"pos_val_{nv}", lambda: phantom_sources(range(VAL_SEED_BASE, VAL_SEED_BASE + nv),
                                                                      progress=progress))
    vn = cached_pickle(cache, f"neg_val_{nv}", lambda: _phantom_negatives(VAL_SEED_BASE, nv, progress))
    return tp, tn, vp, vn, (f"synthetic SlicerCMR phantom (1.5 T): {n} subjects, {len(tp)} short-axis images with "
                            f"landmarks (every contrast) against {len(tn)} without (stacks extended beyond base and "
                            "apex, body away from the heart, noise); augmented + domain-randomised")


def _net_input(src: Source, cfg: LandmarkNetConfig, mirrored: bool) -> np.ndarray:
    pm = stage1_map(src.image.shape, src.spacing, cfg.stage1_size, cfg.stage1_pixel_mm, mirrored)
    return standardise(pm.sample(src.image))


def probabilities(model: LandmarkNet, images: list[np.ndarray], spacing: tuple[float, float], mirrored: bool = False,
                  device=None) -> np.ndarray:
    """p(an LV with its RV insertion point) per ``[row, col]`` image of one grid: the mean over
    the image and its mirror image."""
    cfg = model.config
    dev = device if device is not None else next(model.parameters()).device
    model.eval()
    x = [_net_input(Source(im, spacing, None, None, "", -1), cfg, m) for m in (mirrored, not mirrored) for im in images]
    with torch.no_grad():
        p = model(torch.from_numpy(np.stack(x)[:, None].astype(np.float32)).to(dev))[:, 0].cpu().numpy()
    return p.reshape(2, len(images)).mean(0)


def source_probabilities(model: LandmarkNet, sources: list[Source], device=None) -> np.ndarray:
    return np.array([probabilities(model, [s.image], s.spacing, s.mirrored, device)[0] for s in sources])


def fit_threshold(p_lv: np.ndarray, p_none: np.ndarray, keep: float = KEEP_LV) -> dict:
    """The highest threshold that keeps ``keep`` of the images with landmarks, with what it refuses."""
    t = float(np.quantile(p_lv, 1.0 - keep, method="lower")) if p_lv.size else 0.5
    return {"presence_threshold": round(t, 4), "validation_lv_kept": round(float(np.mean(p_lv >= t)), 4),
            "validation_no_lv_refused": round(float(np.mean(p_none < t)), 4) if p_none.size else None}


def validate(model: LandmarkNet, pos: list[Source], neg: list[Source], device=None) -> dict:
    from ..metrics import roc_auc
    p_lv, p_none = source_probabilities(model, pos, device), source_probabilities(model, neg, device)
    eps = 1e-6
    loss = 0.5 * (-np.mean(np.log(p_lv + eps)) - np.mean(np.log(1 - p_none + eps)))
    truth = np.r_[np.ones(p_lv.size, bool), np.zeros(p_none.size, bool)]
    return {"val_loss": round(float(loss), 5), "val_auc": round(roc_auc(truth, np.r_[p_lv, p_none]), 4),
            **fit_threshold(p_lv, p_none)}


def run(args: argparse.Namespace) -> int:
    from ..device import pick_device
    from ..models import ModelEntry, load_model, save_model
    from ..models.zoo import reproducing_command
    from ..progress import make_progress
    progress = make_progress(args)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    cfg = replace(LandmarkNetConfig.preset(args.preset), outputs=1)
    name = args.name or f"landmarks-presence-{args.preset}"
    tp, tn, vp, vn, trained_on = training_sets(args, progress)
    if not tp or not tn:
        raise InputError("the LV-presence gate needs training images with and without landmarks")
    print(f"training images: {len(tp)} with landmarks, {len(tn)} without; validation {len(vp)} / {len(vn)}")
    dev = pick_device(getattr(args, "device", None))
    model = LandmarkNet(cfg).to(dev)
    if args.init:
        base, entry0 = load_model(args.init, device=dev)
        if getattr(base, "config", None) != cfg:
            raise InputError(f"--init {args.init} is not a {args.preset} LV-presence gate")
        model.load_state_dict(base.state_dict())
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    command = reproducing_command("cmr train landmarks-presence", add_arguments, args)
    session = TrainingRun(args.cache, name, command, lambda m: m["val_loss"], args.max_minutes)
    start_epoch = session.begin(model, opt, args.resume, args.lr if args.resume else None, dev)
    if start_epoch:
        rng = np.random.default_rng(args.seed + start_epoch)
    half = max(1, args.batch // 2)
    y = torch.tensor([1.0] * half + [0.0] * half, device=dev)
    for epoch in range(start_epoch, args.epochs):
        model.train()
        total = 0.0
        for step in range(args.steps):
            batch = [tp[int(i)] for i in rng.integers(0, len(tp), half)] + [tn[int(i)] for i in rng.integers(0, len(tn), half)]
            x = np.stack([stage1_input(s, cfg.stage1_size, cfg.stage1_pixel_mm, rng)[0] for s in batch])
            p = model(torch.from_numpy(x[:, None].astype(np.float32)).to(dev))[:, 0]
            loss = F.binary_cross_entropy(p.clamp(1e-6, 1 - 1e-6), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
            report(progress, f"epoch {epoch + 1}/{args.epochs}", step + 1, args.steps, f"loss {total / (step + 1):.4f}")
        metrics = validate(model, vp, vn, dev)
        if not session.end_epoch(epoch, model, opt, {"train_loss": round(total / args.steps, 5), **metrics}):
            break
    train_command, minutes = session.finish(model, dev)
    best = min(session.history, key=lambda h: h["val_loss"]) if session.history else {}
    entry = ModelEntry(
        name=name, task=MODEL_TASK, architecture="landmark-resnetv2", file=f"{name}.safetensors", sha256="",
        version="1.0", arch_args=model.arch_args(),
        input={"grid": [cfg.stage1_size, cfg.stage1_size], "pixel_mm": cfg.stage1_pixel_mm,
               "normalisation": "mean / sd of the non-zero pixels of the resampled grid (as stage 1)",
               "outputs": "sigmoid p(an LV with its anterior RV insertion point); mean over the image and its mirror"},
        label_table={}, trained_on=trained_on, phantom_trained=not args.data, train_command=train_command,
        metrics={"validation": best, "selected_epoch": best.get("epoch"), "epochs": len(session.history),
                 "minutes": round(minutes, 1), "batch": args.batch, "steps": args.steps},
        card=f"{name}.md")
    entry.calibration = fit_threshold(source_probabilities(model, vp, dev), source_probabilities(model, vn, dev))
    entry = save_model(model, entry, Path(args.out))
    print(f"saved {entry.path} (sha256 {entry.sha256[:12]}…); threshold {entry.calibration['presence_threshold']} "
          f"keeps {entry.calibration['validation_lv_kept']:.1%} of validation LV images and refuses "
          f"{entry.calibration['validation_no_lv_refused']:.1%} of those without; {entry.notice}")
    return 0


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None, help=f"installed gate (default {PRESENCE_MODEL})")
    parser.add_argument("--subjects", type=int, default=8, help="held-out phantom subjects per set")
    parser.add_argument("--json", help="also write the results to this JSON file")


def evaluate(args: argparse.Namespace) -> int:
    """The landmarks' held-out evaluation with this gate: refusals of images with and without an LV."""
    import json

    from ..progress import make_progress
    from .evaluate import evaluate as run_evaluation
    from .evaluate import format_table
    result = run_evaluation(None, args.subjects, device=getattr(args, "device", None), progress=make_progress(args),
                            presence_model=args.model or PRESENCE_MODEL)
    print(format_table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0

"""`cmr train lge-certainty` and `cmr train slice-level`: one training loop, two tasks (seeds 000, 004).

Both cards: Adam with weight decay, lr 1e-4, the model kept at the best validation loss, the
crop / random-crop / flip / rotation recipe (:mod:`cmrlib.quality.preprocess`). Here, on top:
domain randomisation (:mod:`cmrlib.augment`) — for the certainty task only what leaves the
rater's evidence in place (a mild gamma, weak bias fields, mild blur; added noise, a random
intensity curve or a strong bias field would change the label), for the slice level all of it
(curves, bias, resolution, blur, noise and, for a share, random intensities per tissue of the
phantom's label map).

Model selection: the slice level keeps the epoch with the lowest validation loss (the card);
the certainty network the one with the highest validation ROC AUC against the rater-mean
labels (its flag threshold is fitted afterwards, so the ranking is what has to be right, and
``--balance`` shifts the probabilities, which the loss would punish).

Labels: certainty — the card's binary class from the mean of two simulated raters' scores on
LV slices (:mod:`cmrlib.quality.data`; the rater noise calibrated to the published Spearman ρ
and stored in the manifest); slice level — the phantom's SCMR class of every slice, with class
weights 1/√frequency (too apical slices are rare). After training the operating threshold of
the certainty flag is fitted on the validation slices: the one with the best F0.5 (the authors
favour precision: flagging a good slice costs scan time), kept in the manifest's ``calibration``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from ..models.training import TrainingRun, cached_pickle
from ..progress import report
from .data import (SLICE_CLASSES, TRAIN_SEED_BASE, VAL_SEED_BASE, QualitySlice, add_raters, calibrate_rater_sd,
                   is_low_certainty, phantom_slices, simulate_raters, user_slices)
from .preprocess import normalise, training_view

TASKS = {
    "certainty": {"model": "lge-certainty", "arch": "lge_certainty_efficientnetv2", "published": 23_590_049,
                  "classes": ("high certainty", "low certainty")},
    "slice-level": {"model": "slice-level", "arch": "slice_level_resnet", "published": 22_199_747,
                    "classes": SLICE_CLASSES},
}


def add_arguments(parser: argparse.ArgumentParser, task: str) -> None:
    parser.add_argument("--preset", choices=("compact", "paper"), default="compact",
                        help="compact (CPU size, 112 px) or paper (EfficientNetV2-S / ResNet-34 at 224 px)")
    parser.add_argument("--out", default="models", help="model folder to add the weights to (default ./models)")
    parser.add_argument("--name", default=None, help=f"model name (default {TASKS[task]['model']}-<preset>)")
    parser.add_argument("--data", help=("folder of your own slices with lge_scores.csv (README 'Quality training "
                                        "data'); replaces the phantom") if task == "certainty" else
                        "folder of your own slices with slice_levels.csv (README 'Quality training data'); "
                        "replaces the phantom")
    parser.add_argument("--init", help="start from the weights of this installed model (fine-tuning)")
    parser.add_argument("--train-subjects", type=int, default=600, help="phantom subjects (LGE stacks) for training")
    parser.add_argument("--val-subjects", type=int, default=60, help="phantom subjects for validation")
    parser.add_argument("--epochs", type=int, default=40, help="(cards: 100 certainty, 70 slice level)")
    parser.add_argument("--steps", type=int, default=100, help="batches per epoch")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (cards: 1e-4, from ImageNet "
                                                               "weights / for 224-px networks)")
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--no-augment", action="store_true", help="switch off flips / rotations / randomisation")
    parser.add_argument("--balance", action="store_true", help="draw every class equally often (the operating "
                                                               "threshold is fitted afterwards on validation data)")
    if task == "certainty":
        parser.add_argument("--likelihood-weight", type=float, default=0.0,
                            help="weight of a training-only regression of the raters' mean LGE likelihood (0–100 "
                                 "scaled to 0–1) beside the card's binary cross-entropy (0: the card)")
        parser.add_argument("--resample-raters", action="store_true",
                            help="phantom only: two new simulated raters score a slice each time it is drawn (the "
                                 "label noise of the card's two raters, without memorising one draw of it)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", default=f".cache/quality-{task}", help="folder for generated slices, checkpoints")
    parser.add_argument("--max-minutes", type=float, default=None, help="stop after this many minutes (at an epoch end)")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint in --cache")


def _config(task: str, preset: str, likelihood_head: bool = False):
    if task == "certainty":
        from dataclasses import replace as _replace

        from .efficientnetv2 import CertaintyNet, CertaintyNetConfig, config_args
        cfg = _replace(CertaintyNetConfig.preset(preset), likelihood_head=likelihood_head)
        return cfg, CertaintyNet(cfg), config_args(cfg)
    from .resnet import SliceLevelNet, SliceLevelNetConfig, config_args
    cfg = SliceLevelNetConfig.preset(preset)
    return cfg, SliceLevelNet(cfg), config_args(cfg)


def target(task: str, s: QualitySlice) -> int:
    return int(bool(s.low_certainty)) if task == "certainty" else SLICE_CLASSES.index(s.slice_class)


def training_slices(task: str, args, crop_size: int, progress=None) -> tuple[list, list, str, dict]:
    """(train, validation, what they are, rater calibration) for ``task``."""
    if args.data:
        items = user_slices(args.data, task, crop_size)
        rng = np.random.default_rng(args.seed)
        order = rng.permutation(len(items))
        n_val = max(1, len(items) // 7) if len(items) > 3 else 0
        val = [items[i] for i in order[:n_val]]
        train = [items[i] for i in order[n_val:]] or items
        return train, val, f"user data: {len(items)} slices from {args.data}", {}
    cache = Path(args.cache)
    train = cached_pickle(cache, f"train_{args.train_subjects}_{crop_size}",
                          lambda: phantom_slices(TRAIN_SEED_BASE, args.train_subjects, crop_size, progress=progress))
    val = cached_pickle(cache, f"val_{args.val_subjects}_{crop_size}",
                        lambda: phantom_slices(VAL_SEED_BASE, args.val_subjects, crop_size, progress=progress))
    raters: dict = {}
    what = (f"phantom: {args.train_subjects} training subjects from seed {TRAIN_SEED_BASE}, every slice of LGE stacks "
            "extended beyond base and apex, domain-randomised")
    if task == "certainty":
        raters = calibrate_rater_sd(np.array([s.likelihood for s in train if s.slice_class == "LV"]))
        add_raters(train, raters["sd"], args.seed + 1)
        add_raters(val, raters["sd"], args.seed + 2)
        train = [s for s in train if s.slice_class == "LV"]
        val = [s for s in val if s.slice_class == "LV"]
        what += (f"; LV slices only, labels = mean of two simulated raters (noise SD {raters['sd']} points, "
                 f"Spearman {raters['spearman']}, class agreement {raters['accuracy']})")
    return train, val, what, raters


def augment_intensity(task: str, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    from scipy import ndimage

    from ..augment import bias_field, degrade
    if task == "certainty":
        # gentle only: a random intensity curve can lift nulled myocardium to grey, which is the
        # very artefact that makes a rater unsure; a strong bias field mimics it regionally
        x = np.clip(x, 0.0, 1.0) ** float(np.exp(rng.normal(0.0, 0.15)))
        if rng.random() < 0.5:
            x = x * bias_field(x.shape, rng, float(rng.uniform(0.03, 0.12)))
        if rng.random() < 0.2:
            x = ndimage.gaussian_filter(x, float(rng.uniform(0.3, 0.6)))
        return x
    return degrade(x, rng)


def sample(task: str, s: QualitySlice, cfg, rng: np.random.Generator, augment: bool) -> np.ndarray:
    """One network input ``[1, size, size]`` (0–1): the card's view, augmented when ``augment``; for the
    slice level a share of the views are random intensities per tissue of the phantom's label map."""
    ctx = s.context.astype(np.float32)
    if augment and task != "certainty" and s.tissue is not None and rng.random() < 0.15:
        from ..augment import random_contrast_image
        ctx = random_contrast_image(s.tissue, rng)
    x = training_view(ctx, cfg.crop_size, cfg.size, rng, augment)
    if augment:
        x = augment_intensity(task, x, rng)
    return normalise(x)[None]


def predict_probabilities(model, inputs: np.ndarray, device, batch: int = 64) -> np.ndarray:
    """Softmax probabilities ``[n, classes]`` of network inputs ``[n, 1, S, S]``."""
    out = []
    with torch.no_grad():
        for i in range(0, len(inputs), batch):
            x = torch.from_numpy(np.ascontiguousarray(inputs[i:i + batch], np.float32)).to(device)
            out.append(model(x).softmax(1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0))


def validate(task: str, model, val: list[QualitySlice], cfg, device) -> dict:
    from ..metrics import roc_auc
    model.eval()
    x = np.stack([sample(task, s, cfg, np.random.default_rng(0), False) for s in val])
    y = np.array([target(task, s) for s in val])
    p = predict_probabilities(model, x, device)
    model.train()
    loss = float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-7, 1.0))))
    acc = float(np.mean(p.argmax(1) == y))
    out = {"val_loss": round(loss, 5), "val_accuracy": round(acc, 4)}
    if task == "certainty" and 0 < y.sum() < len(y):
        out["val_auc"] = round(float(roc_auc(y, p[:, 1])), 4)
    elif task != "certainty":
        aucs = [roc_auc(y == c, p[:, c]) for c in range(p.shape[1]) if 0 < (y == c).sum() < len(y)]
        out["val_macro_auc"] = round(float(np.mean(aucs)), 4) if aucs else None
    return out


def fit_operating_threshold(model, val: list[QualitySlice], cfg, device, beta: float = 0.5) -> dict:
    """The probability-of-low-certainty threshold with the best F-beta on the validation slices."""
    x = np.stack([sample("certainty", s, cfg, np.random.default_rng(0), False) for s in val])
    y = np.array([target("certainty", s) for s in val], bool)
    p = predict_probabilities(model, x, device)[:, 1]
    best = (0.5, -1.0)
    for t in np.linspace(0.2, 0.9, 71):
        flag = p >= t
        tp, fp, fn = float(np.sum(flag & y)), float(np.sum(flag & ~y)), float(np.sum(~flag & y))
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        f = (1 + beta ** 2) * prec * rec / (beta ** 2 * prec + rec) if prec + rec else 0.0
        if f > best[1]:
            best = (float(t), f)
    return {"operating_threshold": round(best[0], 3), "validation_f_beta": round(best[1], 4), "beta": beta}


def _score(metrics: dict) -> float:
    if metrics.get("val_auc") is not None:
        return -metrics["val_auc"]
    return metrics["val_loss"]


def run(args: argparse.Namespace, task: str) -> int:
    from ..device import pick_device
    from ..models import ModelEntry, load_model, save_model
    from ..models.unet2d import n_parameters
    from ..models.zoo import reproducing_command
    from ..progress import make_progress
    spec = TASKS[task]
    progress = make_progress(args)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    aux = task == "certainty" and getattr(args, "likelihood_weight", 0.0) > 0
    cfg, model, arch_args = _config(task, args.preset, aux)
    name = args.name or f"{spec['model']}-{args.preset}"
    print(f"{args.preset}: {n_parameters(model):,} parameters (published: {spec['published']:,})")
    train, val, trained_on, raters = training_slices(task, args, cfg.crop_size, progress)
    labels = np.array([target(task, s) for s in train])
    counts = np.bincount(labels, minlength=len(spec["classes"]))
    if (counts == 0).any():
        missing = [c for c, n in zip(spec["classes"], counts) if n == 0]
        raise InputError(f"no training slices of class {', '.join(missing)}; every class needs examples")
    print("training slices per class: " + ", ".join(f"{c} {n}" for c, n in zip(spec["classes"], counts)))
    dev = pick_device(getattr(args, "device", None))
    model = model.to(dev)
    if args.init:
        base, entry0 = load_model(args.init, device=dev)
        if entry0.architecture != spec["arch"] or entry0.arch_args != arch_args:
            raise InputError(f"--init {args.init} is not a {args.preset} {task} network")
        model.load_state_dict(base.state_dict())
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    command = reproducing_command(f"cmr train {spec['model']}", lambda p: add_arguments(p, task), args)
    session = TrainingRun(args.cache, name, command, _score, args.max_minutes)
    start_epoch = session.begin(model, opt, args.resume, args.lr, dev)
    if start_epoch:
        rng = np.random.default_rng(args.seed + start_epoch)
    # the certainty classes are kept as the raters give them (the card); the slice levels get
    # 1/sqrt(frequency) weights so that the rare too-apical slices are learned (none when --balance)
    weight = (counts.sum() / np.maximum(counts, 1)) ** 0.5 if task != "certainty" and not args.balance \
        else np.ones(len(counts))
    weight_t = torch.tensor(weight / weight.mean(), dtype=torch.float32, device=dev)
    by_class = [np.flatnonzero(labels == c) for c in range(len(counts))]
    resample = task == "certainty" and getattr(args, "resample_raters", False) and not args.data
    likelihood = np.array([s.likelihood if s.likelihood is not None else np.nan for s in train])
    model.train()
    for epoch in range(start_epoch, args.epochs):
        total = 0.0
        for step in range(args.steps):
            if args.balance:
                cls = rng.integers(0, len(counts), args.batch)
                picks = np.array([by_class[c][rng.integers(0, len(by_class[c]))] for c in cls])
            else:
                picks = rng.integers(0, len(train), args.batch)
            x = torch.from_numpy(np.stack([sample(task, train[int(j)], cfg, rng, not args.no_augment)
                                           for j in picks])).to(dev)
            if resample:
                score = simulate_raters(likelihood[picks], raters["sd"], rng).mean(1)
            else:
                score = np.array([train[int(j)].label_likelihood or 0.0 for j in picks])
            y_np = is_low_certainty(score).astype(np.int64) if resample else labels[picks].astype(np.int64)
            y = torch.from_numpy(y_np).to(dev)
            if aux:
                logits, lk = model.forward_with_likelihood(x)
                target_lk = torch.from_numpy((score / 100.0).astype(np.float32)).to(dev)
                loss = F.cross_entropy(logits, y, weight=weight_t) + args.likelihood_weight * F.mse_loss(lk, target_lk)
            else:
                loss = F.cross_entropy(model(x), y, weight=weight_t)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
            report(progress, f"epoch {epoch + 1}/{args.epochs}", step + 1, args.steps, f"loss {total / (step + 1):.4f}")
        metrics = validate(task, model, val, cfg, dev) if val else {"val_loss": total / args.steps}
        if not session.end_epoch(epoch, model, opt, {"train_loss": round(total / args.steps, 5), **metrics}):
            break
    train_command, minutes = session.finish(model, dev)
    best = min(session.history, key=_score) if session.history else {}
    entry = ModelEntry(
        name=name, task=f"quality-{task}", architecture=spec["arch"], file=f"{name}.safetensors", sha256="",
        version="1.0", arch_args=arch_args,
        input={"grid": [cfg.size, cfg.size], "channels": ["one short-axis LGE slice (PSIR or magnitude)"],
               "preprocessing": "card crop (central 60 % rows × 70 % columns), square of the shorter side resized "
                                f"to {cfg.crop_size} then to {cfg.size} px; 0.5–99.5th percentile scaled to 0–1",
               "outputs": f"logits of {', '.join(spec['classes'])}"},
        label_table={str(i): c for i, c in enumerate(spec["classes"])}, trained_on=trained_on,
        phantom_trained=not args.data, train_command=train_command,
        metrics={"validation": best, "selected_epoch": best.get("epoch"), "epochs": len(session.history),
                 "minutes": round(minutes, 1), "batch": args.batch, "steps": args.steps,
                 "parameters": n_parameters(model), "published_parameters": spec["published"],
                 "training_slices_per_class": {c: int(n) for c, n in zip(spec["classes"], counts)},
                 "simulated_raters": raters or None},
        card=f"{name}.md")
    if task == "certainty" and val:
        entry.calibration = fit_operating_threshold(model, val, cfg, dev)
        print(f"operating threshold {entry.calibration['operating_threshold']} (validation F0.5 "
              f"{entry.calibration['validation_f_beta']})")
    entry = save_model(model, entry, Path(args.out))
    print(f"saved {entry.path} (sha256 {entry.sha256[:12]}…); {entry.notice}")
    print(json.dumps(best))
    return 0

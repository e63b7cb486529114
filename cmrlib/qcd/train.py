"""`cmr train qcd` / `cmr evaluate qcd`: the six-U-Net QCD ensemble and its Dice regressors.

Recipe (card, scaled to a CPU for ``--preset compact``): the M U-Nets trained side by side on
the same batches, each with its own Adam (lr 1e-3, the appendix) and its own early stopping
on the validation myocardium Dice (patience ``--patience`` epochs, the card's 20 at paper
size); loss categorical cross-entropy (the card) plus a soft Dice term (MONAI
``DiceCELoss``), which makes the thin myocardium converge within a CPU budget. Every sample is
augmented anew (:mod:`cmrlib.qcd.data`). After training, the QCD regressors are fitted by
ordinary least squares on the **validation** split (35 % corrupted images, so it holds poor
segmentations) and stored in the manifest entry (``calibration.qcd_regressors``) with the
weights (safetensors, sha256, the exact command). ``--data DIR`` trains — or with
``--init MODEL`` fine-tunes — on a user's own images with label maps; its validation split
(10 %) fits the regressors. A checkpoint after every epoch; ``--resume`` continues, and with
a lower ``--lr`` every network goes on from its best epoch (reduce-on-plateau).
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError
from ..models.training import cached_pickle
from ..progress import report
from .data import (CONTRASTS, EVAL_CORRUPT_FRACTION, TRAIN_SEED_BASE, VAL_SEED_BASE, Slice2D, phantom_slices,
                   training_sample, user_slices)
from .unet import QCDConfig, QCDEnsemble, config_args

MODEL_TASK = "segmentation"
#: the 2M = 12 regressors have 12 parameters each: at least 13 validation images (more is better)
MIN_VALIDATION_IMAGES = 13
LEARNING_DICE = 0.2  # early stopping applies to a network once its validation Dice passed this


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", choices=("compact", "paper"), default="compact")
    parser.add_argument("--out", default="models", help="model folder to add the weights to (default ./models; "
                        "use it with CMR_MODELS_DIR=models; the bundled folder is cmrlib/resources/models)")
    parser.add_argument("--name", default=None, help="model name (default qcd-<preset>)")
    parser.add_argument("--contrasts", default=",".join(CONTRASTS),
                        help=f"phantom contrasts to train on, comma-separated (default all: {','.join(CONTRASTS)})")
    parser.add_argument("--data", help="folder of your own images with label maps (README 'QCD training data') "
                                       "instead of the phantom")
    parser.add_argument("--init", help="start from the weights of this installed QCD model (fine-tuning)")
    parser.add_argument("--train-subjects", type=int, default=300, help="phantom subjects for training")
    parser.add_argument("--val-subjects", type=int, default=40, help="phantom subjects for validation + regressors")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--steps", type=int, default=None, help="batches per epoch (default: one pass over the images)")
    parser.add_argument("--batch", type=int, default=16, help="batch size (card: 16)")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (appendix: 1e-3)")
    parser.add_argument("--patience", type=int, default=6, help="early stopping per network (epochs; card: 20)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", default=".cache/qcd", help="folder for the generated images and checkpoints")
    parser.add_argument("--max-minutes", type=float, default=None, help="stop after this many minutes (at an epoch end)")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint in --cache")


def _contrasts(text: str) -> tuple[str, ...]:
    names = tuple(c.strip() for c in text.split(",") if c.strip())
    bad = [c for c in names if c not in CONTRASTS]
    if bad or not names:
        raise InputError(f"--contrasts: unknown {', '.join(bad) or '(none given)'}; expected some of {', '.join(CONTRASTS)}")
    return names


def _sources(args, progress) -> tuple[list[Slice2D], list[Slice2D], str]:
    if args.data:
        items = user_slices(args.data)
        need = 2 * MIN_VALIDATION_IMAGES
        if len(items) < need:
            raise InputError(f"--data {args.data}: {len(items)} labelled slice(s); QCD needs at least {need} "
                             f"({MIN_VALIDATION_IMAGES} are held out to fit its Dice regressors, never trained on)")
        rng = np.random.default_rng(args.seed)
        order = rng.permutation(len(items))
        n_val = max(MIN_VALIDATION_IMAGES, len(items) // 10)
        val = [items[i] for i in order[:n_val]]
        train = [items[i] for i in order[n_val:]]
        return train, val, (f"user data {args.data}: {len(items)} labelled slices ({len(train)} training, "
                            f"{len(val)} validation)")
    contrasts = _contrasts(args.contrasts)
    # checked before any image is made: 3 slices per contrast and one image without an answer each
    n_val = args.val_subjects * (3 * len(contrasts) + 1)
    if n_val < MIN_VALIDATION_IMAGES:
        raise InputError(f"--val-subjects {args.val_subjects} with {len(contrasts)} contrast(s) gives {n_val} validation "
                         f"images; the QCD regressors need at least {MIN_VALIDATION_IMAGES}: raise --val-subjects")
    tag = "-".join(contrasts)
    cache = Path(args.cache)
    train = cached_pickle(cache, f"train_{tag}_{args.train_subjects}", lambda: phantom_slices(
        range(TRAIN_SEED_BASE, TRAIN_SEED_BASE + args.train_subjects), contrasts, progress=progress))
    val = cached_pickle(cache, f"val_{tag}_{args.val_subjects}", lambda: phantom_slices(
        range(VAL_SEED_BASE, VAL_SEED_BASE + args.val_subjects), contrasts, fitted_t1=True,
        corrupt_fraction=EVAL_CORRUPT_FRACTION, progress=progress))
    return train, val, (f"synthetic SlicerCMR phantom (1.5 T): {args.train_subjects} subjects, {len(train)} images "
                        f"({', '.join(contrasts)}, plus images without a short-axis answer), augmented + "
                        f"domain-randomised (cmrlib/qcd/data.py)")


def _command_line(args: argparse.Namespace) -> str:
    from ..models.zoo import reproducing_command
    return reproducing_command("cmr train qcd", add_arguments, args)


#: share of training batches on the overview grid (two-pass models): they teach the deepest U-Net
#: to find the heart in the whole image; the other batches are heart-centred crops
OVERVIEW_SHARE = 0.3


def _net_inputs(items: list[Slice2D], cfg: QCDConfig) -> tuple[np.ndarray, np.ndarray]:
    """Validation inputs for early stopping: crops centred on the true heart (two-pass models)."""
    pairs = [training_sample(s, cfg.size, cfg.pixel_mm, None, augment=False, heart_centred=cfg.two_pass)
             for s in items]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def _batch(train: list[Slice2D], cfg: QCDConfig, batch: int, rng: np.random.Generator):
    """One augmented batch: an overview batch (share :data:`OVERVIEW_SHARE` of two-pass models)
    or a batch of crops (heart-centred for two-pass models)."""
    overview = cfg.two_pass and rng.random() < OVERVIEW_SHARE
    size, pixel_mm = (cfg.overview_size, cfg.overview_pixel_mm) if overview else (cfg.size, cfg.pixel_mm)
    idx = rng.integers(0, len(train), batch)
    pairs = [training_sample(train[i], size, pixel_mm, rng, heart_centred=cfg.two_pass and not overview) for i in idx]
    return np.stack([p[0] for p in pairs])[:, None], np.stack([p[1] for p in pairs])[:, None]


def validate_nets(model: QCDEnsemble, x: np.ndarray, y: np.ndarray, device) -> list[float]:
    """Mean myocardium Dice of each network on the validation inputs (images with myocardium)."""
    from ..metrics import dice
    from .infer import class_maps
    maps = class_maps(model, x, device)  # [N, M, S, S]
    keep = [i for i in range(len(y)) if (y[i] == 1).any()]
    return [float(np.mean([dice(maps[i, m] == 1, y[i] == 1) for i in keep])) for m in range(maps.shape[1])]


def fit_qc(model: QCDEnsemble, items: list[Slice2D], device, progress=None):
    """Fit the QCD regressors on ``items`` (the validation split); returns (regressors, summary)."""
    from .data import network_input
    from .framework import candidates, dice_matrix, fit_regressors, true_dice
    from .infer import class_maps, network_maps
    report(progress, "QCD regressors", 0, 1, f"{len(items)} validation images")
    model.eval()
    # the grids inference reads (the overview pass's crop for two-pass models), so that the
    # regressors learn the errors the user will get, a missed heart included
    grids = [network_maps(model, [s.image], s.spacing, device)[0] for s in items]
    x = np.stack([network_input(s.image, pm) for s, pm in zip(items, grids)])
    y = np.stack([pm.sample(s.labels.astype(np.float32), order=0).astype(np.int64) for s, pm in zip(items, grids)])
    maps = class_maps(model, x, device)
    mats, targets = [], []
    for i in range(len(items)):
        c = candidates(maps[i])
        mats.append(dice_matrix(c))
        targets.append(true_dice(c, y[i]))
    reg = fit_regressors(mats, targets)
    report(progress, "QCD regressors", 1, 1, "fitted")
    return reg, {"images": len(items), "poor_fraction_deepest": round(float(np.mean([t[len(t) // 2 - 1] < 0.7 for t in targets])), 3)}


def run(args: argparse.Namespace) -> int:
    from ..device import pick_device
    from ..models import load_model, save_model
    from ..progress import make_progress
    from monai.losses import DiceCELoss
    progress = make_progress(args)
    if args.data and args.contrasts != ",".join(CONTRASTS):
        raise InputError("--contrasts selects phantom images; it cannot be combined with --data")
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    cfg = QCDConfig.preset(args.preset)
    name = args.name or f"qcd-{args.preset}"
    cache = Path(args.cache)
    t_start = time.perf_counter()
    train, val, trained_on = _sources(args, progress)
    dev = pick_device(getattr(args, "device", None))
    model = QCDEnsemble(cfg).to(dev)
    if args.init:
        base, entry0 = load_model(args.init, device=dev)
        if getattr(base, "config", None) is None or not base.config.same_layers(cfg):
            raise InputError(f"--init {args.init} is a {entry0.arch_args} ensemble, not the {args.preset} preset's networks")
        model.load_state_dict(base.state_dict())
    m = len(model.nets)
    opts = [torch.optim.Adam(net.parameters(), lr=args.lr) for net in model.nets]
    ckpt = cache / f"{name}.ckpt.pt"
    cache.mkdir(parents=True, exist_ok=True)
    start_epoch, history, earlier_commands, earlier_minutes = 0, [], [], 0.0
    best = {"dice": [-1.0] * m, "epoch": [0] * m, "state": [copy.deepcopy(n.state_dict()) for n in model.nets]}
    command = _command_line(args)
    if args.resume and ckpt.exists():
        state = torch.load(ckpt, weights_only=False, map_location=dev)
        model.load_state_dict(state["model"])
        for o, s in zip(opts, state["optimizers"]):
            o.load_state_dict(s)
            for group in o.param_groups:  # --lr of this command (a lower rate to finish a run)
                group["lr"] = args.lr
        start_epoch, history, best = state["epoch"], state["history"], state["best"]
        earlier_commands, earlier_minutes = state.get("commands", []), state.get("minutes", 0.0)
        rng = np.random.default_rng(args.seed + start_epoch)
        print(f"resumed from {ckpt} at epoch {start_epoch}", file=sys.stderr)
        if history and args.lr < history[-1]["lr"]:
            # a lower rate after a plateau (reduce-on-plateau): every network goes on from its best
            # weights, and its patience counts from here
            for j, net in enumerate(model.nets):
                net.load_state_dict(best["state"][j])
            best["patience_from"] = [start_epoch] * m
            print(f"learning rate {history[-1]['lr']:g} -> {args.lr:g}: every network continues from its best "
                  "epoch", file=sys.stderr)
    patience_from = best.setdefault("patience_from", [0] * m)
    # Dice over the whole batch (not per image): images without myocardium still teach, and the
    # thin myocardium gets a strong gradient from the first batches
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True, include_background=False, batch=True)
    xv, yv = _net_inputs(val, cfg)
    steps = args.steps or max(1, len(train) // args.batch)
    def waited(j: int, epochs_done: int) -> int:
        return epochs_done - max(best["epoch"][j], patience_from[j])

    active = [best["dice"][i] <= LEARNING_DICE or waited(i, len(history)) < args.patience for i in range(m)]
    for epoch in range(start_epoch, args.epochs):
        if not any(active):
            print(f"every network stopped early (patience {args.patience})", file=sys.stderr)
            break
        model.train()
        totals = np.zeros(m)
        for step in range(steps):
            xb, yb = _batch(train, cfg, args.batch, rng)
            x, y = torch.from_numpy(xb).to(dev), torch.from_numpy(yb).to(dev)
            for j, (net, opt) in enumerate(zip(model.nets, opts)):
                if not active[j]:
                    continue
                loss = loss_fn(net(x), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                totals[j] += loss.item()
            report(progress, f"epoch {epoch + 1}/{args.epochs}", step + 1, steps,
                   f"loss {np.mean(totals[active] if any(active) else totals) / (step + 1):.4f}")
        model.eval()
        dices = validate_nets(model, xv, yv, dev)
        for j in range(m):
            if active[j] and dices[j] > best["dice"][j]:
                best["dice"][j], best["epoch"][j] = dices[j], epoch + 1
                best["state"][j] = copy.deepcopy(model.nets[j].state_dict())
            # early stopping only once a network has learned something (a net still at Dice ~0 is
            # waiting for the myocardium to appear, not over-fitting)
            if active[j] and best["dice"][j] > LEARNING_DICE and waited(j, epoch + 1) >= args.patience:
                active[j] = False
        minutes_now = earlier_minutes + (time.perf_counter() - t_start) / 60
        history.append({"epoch": epoch + 1, "lr": args.lr, "batch": args.batch,
                        "train_loss": [round(t / steps, 5) for t in totals],
                        "val_dice": [round(d, 4) for d in dices], "active": list(active), "minutes": round(minutes_now, 2)})
        print(json.dumps(history[-1]), file=sys.stderr, flush=True)
        torch.save({"model": model.state_dict(), "optimizers": [o.state_dict() for o in opts], "epoch": epoch + 1,
                    "history": history, "best": best, "commands": earlier_commands + [command],
                    "minutes": minutes_now}, ckpt)
        if args.max_minutes and (time.perf_counter() - t_start) / 60 > args.max_minutes:
            print(f"stopping after {epoch + 1} epochs (--max-minutes {args.max_minutes})", file=sys.stderr)
            break
    for j, net in enumerate(model.nets):
        net.load_state_dict(best["state"][j])
    model.eval()
    regressors, qc_summary = fit_qc(model, val, dev, progress)
    minutes = earlier_minutes + (time.perf_counter() - t_start) / 60
    entry = model_entry(cfg, name, history, best, " && ".join(earlier_commands + [command]), minutes, trained_on,
                        regressors, qc_summary, phantom=not args.data)
    entry = save_model(model, entry, Path(args.out))
    print(f"saved {entry.path} (sha256 {entry.sha256[:12]}…); {entry.notice}")
    return 0


def model_entry(cfg: QCDConfig, name: str, history: list[dict], best: dict, train_command: str, minutes: float,
                trained_on: str, regressors, qc_summary: dict, phantom: bool = True):
    from ..models import ModelEntry
    from .framework import DEFAULT_THRESHOLD, candidate_names
    return ModelEntry(
        name=name, task=MODEL_TASK, architecture="qcd_ensemble", file=f"{name}.safetensors", sha256="",
        version="2.0" if cfg.two_pass else "1.0", arch_args=config_args(cfg),
        input={"size": [cfg.size, cfg.size], "pixel_mm": cfg.pixel_mm,
               "grid": (f"two passes: a {cfg.overview_size} px overview of {cfg.overview_pixel_mm:g} mm centred on the image, "
                        f"where the deepest U-Net finds the heart; the ensemble reads a {cfg.size} px crop of "
                        f"{cfg.pixel_mm:g} mm centred on it (cmrlib.qcd.infer.network_maps)" if cfg.two_pass else
                        "centred on the image, zero-padded / cropped (cmrlib.planes.centred_map)"),
               "normalisation": "0-1 between the 0.5th and 99.5th percentiles of the pixels inside the image",
               "outputs": "per U-Net logits [3, size, size]: background, myocardium, blood pool"},
        label_table={"0": "background", "1": "myocardium", "2": "blood pool"},
        trained_on=trained_on, phantom_trained=phantom, train_command=train_command,
        metrics={"validation_dice_per_depth": {f"d{d}": round(v, 4) for d, v in zip(cfg.depths, best["dice"])},
                 "selected_epoch_per_depth": {f"d{d}": e for d, e in zip(cfg.depths, best["epoch"])},
                 "epochs": len(history), "minutes": round(minutes, 1), "qc_fit": qc_summary},
        card=f"{name}.md",
        calibration={"qcd_regressors": {**regressors.to_dict(), "candidates": candidate_names(len(cfg.depths)),
                                        "fitted_on": "validation split (never the training split)"},
                     "qc_threshold": DEFAULT_THRESHOLD})


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None, help="installed model name (default qcd-compact)")
    parser.add_argument("--subjects", type=int, default=8, help="held-out phantom subjects per set")
    parser.add_argument("--data", help="evaluate on your own labelled folder instead (as `cmr train qcd --data`)")
    parser.add_argument("--json", help="also write the results to this JSON file")


def evaluate(args: argparse.Namespace) -> int:
    """Held-out table: per contrast and scar pattern, QC figures, the shifted set (:mod:`.evaluate`)."""
    from ..progress import make_progress
    from .evaluate import evaluate as run_evaluation
    from .evaluate import format_table
    result = run_evaluation(args.model, args.subjects, data=args.data, device=getattr(args, "device", None),
                            progress=make_progress(args))
    print(format_table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0

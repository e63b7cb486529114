"""`cmr train dt1`: unsupervised stress-to-rest T1 map registration (thesis appendix A.2).

Loss: MSE(warped moving, fixed) + 0.02 × smoothness (MONAI ``DiffusionLoss``: the mean
squared spatial gradient of the DVF, VoxelMorph's ``grad`` regulariser), Adam, gradient norm
clipped at 0.5; the MSE is weighted by a Gaussian window on the heart (:func:`heart_window`).
Where a training pair has myocardium masks of both maps (the phantom's; a user's labels) an
auxiliary soft-Dice loss of the warped moving myocardium against the fixed one is added
(``--seg-weight``, default 0.1; VoxelMorph's auxiliary-segmentation variant, Balakrishnan et
al., IEEE TMI 2019): measured here, the purely unsupervised compact Swin lowered the image MSE
but not the myocardial misalignment left after the rigid pre-alignment (validation Dice 0.80 vs
0.81 for the rigid stage alone after 600 CPU batches). Masks are never needed at inference. Pairing and augmentation are switchable (``--pairing``, ``--no-rotate-flip``,
``--no-synthetic-dvf``) so their effect can be measured (the card's Table 3.3; benchmarks/
bench_stress.py). Data: phantom subjects (:func:`cmrlib.stress.data.phantom_pairs`) or a
user's own pairs (``--data DIR``, :func:`cmrlib.stress.data.user_pairs`). The model kept is
the epoch with the best validation myocardial Dice (rest vs registered stress, held-out
pairs with masks; without masks, the lowest validation MSE).

Paper: batch 32, 200 epochs, lr 1e-4. The compact preset on this CPU uses batch 8 and lr 3e-4
(the paper's rate learned too slowly for a minutes-long budget — measured in the model card).
"""
from __future__ import annotations

import argparse
import json
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError
from ..models.training import TrainingRun, cached_pickle
from ..progress import report
from .data import Augmentation, MapPair, phantom_pairs, training_sample, user_pairs
from .swin_unet import RegistrationConfig, StressRegistration

MODEL_TASK = "dt1"
TRAIN_SEED_BASE, VAL_SEED_BASE = 5000, 9000  # evaluation uses 9500+ (evaluate.EVAL_SEED_BASE)
SMOOTHNESS = 0.02


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", choices=("compact", "paper"), default="compact")
    parser.add_argument("--backbone", choices=("swin", "unet"), default="swin",
                        help="swin: Swin-U-Net VoxelMorph (the method); unet: the VoxelMorph U-Net baseline")
    parser.add_argument("--prealign", choices=("preset", "rigid", "none"), default="preset",
                        help="rigid pre-alignment before the network (compact preset: rigid; paper: none)")
    parser.add_argument("--out", default="models", help="model folder to add the weights to (default ./models)")
    parser.add_argument("--name", default=None, help="model name (default dt1-<backbone>-<preset>)")
    parser.add_argument("--data", help="folder of your own NAME_rest / NAME_stress T1 map pairs (README "
                                       "'dT1 training data'); replaces the phantom")
    parser.add_argument("--init", help="start from the weights of this installed model (fine-tuning)")
    parser.add_argument("--train-subjects", type=int, default=60, help="phantom subjects for training (3 pairs each)")
    parser.add_argument("--val-subjects", type=int, default=8, help="phantom subjects for validation")
    parser.add_argument("--pairing", choices=("permuted", "regular"), default="permuted",
                        help="permuted: every within-subject, within-slice combination; regular: stress→rest only")
    parser.add_argument("--no-rotate-flip", action="store_true", help="switch off rotation / flip augmentation")
    parser.add_argument("--no-synthetic-dvf", action="store_true", help="switch off synthetic-DVF augmentation")
    parser.add_argument("--seg-weight", type=float, default=0.1,
                        help="weight of the auxiliary myocardial soft-Dice loss on training pairs with masks "
                             "(VoxelMorph's auxiliary segmentation; 0: unsupervised as the appendix)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--steps", type=int, default=150, help="batches per epoch")
    parser.add_argument("--batch", type=int, default=8, help="batch size (paper: 32)")
    parser.add_argument("--lr", type=float, default=None, help="Adam learning rate (default: paper 1e-4, compact 3e-4)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", default=".cache/dt1", help="folder for the generated pairs and checkpoints")
    parser.add_argument("--max-minutes", type=float, default=None, help="stop after this many minutes (at an epoch end)")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint in --cache")


def training_pairs(args, progress=None, prealigned: bool = False) -> tuple[list[MapPair], list[MapPair], str]:
    if args.data:
        pairs = user_pairs(args.data, prealigned=prealigned)
        rng = np.random.default_rng(args.seed)
        order = rng.permutation(len(pairs))
        n_val = max(1, len(pairs) // 10) if len(pairs) > 1 else 0
        val = [pairs[i] for i in order[:n_val]]
        train = [pairs[i] for i in order[n_val:]] or pairs
        return train, val or train, f"user data {args.data}: {len(pairs)} rest/stress map pairs"
    cache = Path(args.cache)
    tag = "_rigid" if prealigned else ""
    train = cached_pickle(cache, f"train_{args.train_subjects}{tag}", lambda: phantom_pairs(
        range(TRAIN_SEED_BASE, TRAIN_SEED_BASE + args.train_subjects), prealigned=prealigned, progress=progress))
    val = cached_pickle(cache, f"val_{args.val_subjects}{tag}", lambda: phantom_pairs(
        range(VAL_SEED_BASE, VAL_SEED_BASE + args.val_subjects), prealigned=prealigned, progress=progress))
    return train, val, (f"synthetic SlicerCMR phantom (1.5 T, MOLLI / ShMOLLI maps fitted from simulated "
                        f"acquisitions at rest and stress heart rates): {args.train_subjects} subjects, {len(train)} "
                        "rest/stress pairs with rigid misregistration of random severity; domain-randomised "
                        "(cmrlib/stress/data.py)")


#: share of moved training pairs shown rigidly pre-aligned to a ``prealign="rigid"`` model: most,
#: as at inference, but not all, so it also learns what a failed pre-alignment leaves
PREALIGNED_SHARE = 0.7


def augmentation(args, cfg: RegistrationConfig | None = None) -> Augmentation:
    return Augmentation(permuted=args.pairing == "permuted", rotate_flip=not args.no_rotate_flip,
                        synthetic_dvf=not args.no_synthetic_dvf,
                        prealigned=PREALIGNED_SHARE if cfg is not None and cfg.prealign == "rigid" else 0.0)


#: the image loss is weighted by a Gaussian window about the grid centre (the heart), sd in mm:
#: measured here, a plain MSE over the whole grid was lowered by deforming chest wall, lungs and
#: noise while the myocardial Dice fell below the rigid pre-alignment's (0.80 vs 0.81 on the
#: validation pairs after 900 batches)
HEART_WINDOW_SD_MM = 35.0


def heart_window(cfg: RegistrationConfig) -> torch.Tensor:
    """``[1, 1, S, S]`` weights (mean 1) of the image loss."""
    c = (cfg.size - 1) / 2
    r = (torch.arange(cfg.size, dtype=torch.float32) - c) * cfg.pixel_mm
    w = torch.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * HEART_WINDOW_SD_MM ** 2))
    return (w / w.mean())[None, None]


def loss_terms(model, x: torch.Tensor, window: torch.Tensor | None = None,
               masks: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(MSE of warped moving vs fixed — weighted by ``window`` when given —, smoothness of the
    DVF, soft-Dice loss of the warped moving myocardium vs the fixed one — 0 without ``masks``
    ``[N, 2, S, S]`` (moving, fixed; all-zero rows are left out)) of a batch ``[N, 2, S, S]``."""
    from monai.losses import DiffusionLoss
    warped, dvf = model(x[:, :1], x[:, 1:])
    with warnings.catch_warnings():  # MONAI's gradient indexing warns under torch 2.x; harmless
        warnings.filterwarnings("ignore", message="Using a non-tuple sequence")
        smooth = DiffusionLoss()(dvf)
    sq = (warped - x[:, 1:]) ** 2
    seg = torch.zeros((), device=x.device)
    if masks is not None:
        known = masks.flatten(1).amax(1) > 0
        if known.any():
            moved = model.voxelmorph.warp(masks[known, :1], dvf[known])
            fixed = masks[known, 1:]
            inter = (moved * fixed).flatten(1).sum(1)
            seg = torch.mean(1.0 - 2.0 * inter / (moved.flatten(1).sum(1) + fixed.flatten(1).sum(1) + 1e-6))
    return torch.mean(sq * window if window is not None else sq), smooth, seg


def validate(model, pairs: list[MapPair], cfg: RegistrationConfig) -> dict:
    """Stress→rest on ``pairs`` without augmentation: myocardial Dice (rest vs registered
    stress, on the network grid) before, at the network's input (after the rigid pre-alignment
    of ``prealign="rigid"``) and after, and the image MSE after."""
    from ..metrics import dice
    from ..warp import warp_torch
    model.eval()
    before, start, after, mses = [], [], [], []
    rng = np.random.default_rng(0)
    none = Augmentation(permuted=False, rotate_flip=False, synthetic_dvf=False, random_contrast=0.0)
    with torch.no_grad():
        for p in pairs:
            x, mm, fm, raw = _plain_sample(p, cfg, rng, none)
            t = torch.from_numpy(x[None])
            warped, dvf = model(t[:, :1], t[:, 1:])
            mses.append(float(torch.mean((warped - t[:, 1:]) ** 2)))
            if mm is not None and fm is not None:
                moved = warp_torch(torch.from_numpy(mm[None, None].astype(np.float32)), dvf, mode="nearest")[0, 0] > 0.5
                before.append(dice(raw, fm))
                start.append(dice(mm, fm))  # what the network starts from (after a rigid pre-alignment)
                after.append(dice(moved.numpy(), fm))
    model.train()
    r = lambda v: round(float(np.mean(v)), 4) if v else None  # noqa: E731
    return {"pairs": len(pairs), "dice_before": r(before), "dice_network_input": r(start), "dice_after": r(after),
            "mse": r(mses)}


def _plain_sample(p: MapPair, cfg: RegistrationConfig, rng, aug: Augmentation):
    """The validation sample: no intensity curve, no jitter (pipeline grid and scaling)."""
    from .data import myocardium, network_pair, pair_scale
    from .infer import network_grid
    grid = network_grid(p.rest.shape, p.spacing, cfg.size, cfg.pixel_mm, p.rest_labels)
    moving, m_lab = p.stress, p.stress_labels
    if cfg.prealign == "rigid" and (1, 0) in p.prealigned:  # as at inference: the network sees the aligned pair
        moving, m_lab, _ = p.prealigned[(1, 0)]
    x = network_pair(moving, p.rest, grid, pair_scale(p.rest))
    mm = grid.sample(myocardium(m_lab).astype(np.float32), order=0) > 0.5 if m_lab is not None else None
    fm = grid.sample(myocardium(p.rest_labels).astype(np.float32), order=0) > 0.5 if p.rest_labels is not None else None
    raw = grid.sample(myocardium(p.stress_labels).astype(np.float32), order=0) > 0.5 \
        if p.stress_labels is not None else None
    return x, mm, fm, raw


def _command_line(args: argparse.Namespace) -> str:
    from ..models.zoo import reproducing_command
    return reproducing_command("cmr train dt1", add_arguments, args)


def _score(metrics: dict) -> float:
    return -metrics["dice_after"] if metrics.get("dice_after") is not None else metrics["mse"]


def run(args: argparse.Namespace) -> int:
    from ..device import pick_device
    from ..models import load_model, save_model
    from ..progress import make_progress
    progress = make_progress(args)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    cfg = RegistrationConfig.preset(args.preset, args.backbone)
    if args.prealign != "preset":
        cfg = replace(cfg, prealign=args.prealign)
    aug = augmentation(args, cfg)
    lr = args.lr if args.lr is not None else (1e-4 if args.preset == "paper" else 3e-4)
    name = args.name or f"dt1-{args.backbone}-{args.preset}"
    train, val, trained_on = training_pairs(args, progress, prealigned=cfg.prealign == "rigid")
    dev = pick_device(getattr(args, "device", None))
    model = StressRegistration(cfg).to(dev)
    if args.init:
        base, entry0 = load_model(args.init, device=dev)
        if base.cfg != cfg:
            raise InputError(f"--init {args.init} is a {entry0.arch_args} network, not the {args.preset} "
                             f"{args.backbone} preset")
        model.load_state_dict(base.state_dict())
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    session = TrainingRun(args.cache, name, _command_line(args), _score, args.max_minutes)
    start_epoch = session.begin(model, opt, args.resume, lr, dev)
    if start_epoch:
        rng = np.random.default_rng(args.seed + start_epoch)
    window = heart_window(cfg).to(dev)
    model.train()
    for epoch in range(start_epoch, args.epochs):
        totals = np.zeros(3)
        for step in range(args.steps):
            samples = [training_sample(train[int(i)], cfg.size, cfg.pixel_mm, rng, aug)
                       for i in rng.integers(0, len(train), args.batch)]
            x = torch.from_numpy(np.stack([smp[0] for smp in samples])).to(dev)
            masks = None
            if args.seg_weight > 0:
                empty = np.zeros((cfg.size, cfg.size), np.float32)
                masks = torch.from_numpy(np.stack([
                    np.stack([smp[1], smp[2]]).astype(np.float32) if smp[1] is not None and smp[2] is not None
                    else np.stack([empty, empty]) for smp in samples])).to(dev)
            mse, smooth, seg = loss_terms(model, x, window, masks)
            loss = mse + SMOOTHNESS * smooth + args.seg_weight * seg
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
            opt.step()
            totals += [mse.item(), smooth.item(), seg.item()]
            report(progress, f"epoch {epoch + 1}/{args.epochs}", step + 1, args.steps,
                   f"mse {totals[0] / (step + 1):.5f}")
        metrics = validate(model, val, cfg)
        if not session.end_epoch(epoch, model, opt, {"train_mse": round(totals[0] / args.steps, 6),
                                                  "train_smoothness": round(totals[1] / args.steps, 6),
                                                  "train_seg": round(totals[2] / args.steps, 6), "lr": lr,
                                                  **metrics}):
            break
    train_command, minutes = session.finish(model, dev)
    history = session.history
    entry = model_entry(cfg, name, history, train_command, minutes, trained_on, aug, args, phantom=not args.data)
    entry = save_model(model, entry, Path(args.out))
    print(f"saved {entry.path} (sha256 {entry.sha256[:12]}…); {entry.notice}")
    return 0


def model_entry(cfg: RegistrationConfig, name: str, history: list[dict], train_command: str, minutes: float,
                trained_on: str, aug: Augmentation, args, phantom: bool = True):
    from ..models import ModelEntry
    best = min(history, key=_score) if history else {}
    return ModelEntry(
        name=name, task=MODEL_TASK, architecture="dt1-registration", file=f"{name}.safetensors", sha256="",
        version="1.0", arch_args=cfg.to_args(),
        input={"grid": [cfg.size, cfg.size], "pixel_mm": cfg.pixel_mm,
               "channels": ["moving (stress) T1 map", "fixed (rest) T1 map"],
               "centre": "centroid of the rest myocardium + blood pool (image centre without a mask)",
               "normalisation": "both maps / the rest map's 99th percentile, clipped 0–1.5",
               "outputs": "sampling DVF [2, row, col] in network pixels (rows, cols)"},
        label_table={}, trained_on=trained_on, phantom_trained=phantom, train_command=train_command,
        metrics={"validation": best, "selected_epoch": best.get("epoch"), "epochs": len(history),
                 "minutes": round(minutes, 1), "augmentation": aug.label(), "batch": args.batch, "steps": args.steps},
        card=f"{name}.md")


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None, help="installed model name (default dt1-swin-compact)")
    parser.add_argument("--subjects", type=int, default=10, help="held-out phantom subjects per set")
    parser.add_argument("--json", help="also write the results to this JSON file")


def evaluate(args: argparse.Namespace) -> int:
    """Held-out table: dT1 agreement and Dice, normal and shifted phantom sets (:mod:`.evaluate`)."""
    from ..progress import make_progress
    from .evaluate import evaluate as run_evaluation
    from .evaluate import format_table
    result = run_evaluation(args.model, args.subjects, device=getattr(args, "device", None),
                            progress=make_progress(args))
    print(format_table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0

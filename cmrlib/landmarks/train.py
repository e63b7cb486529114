"""`cmr train landmarks` / `cmr evaluate landmarks`: the two-stage landmark regressors.

Recipe (card, scaled to a CPU for ``--preset compact``): both stages trained together, MSE
on the four sigmoid outputs (points / input size), Adam (card: lr 1e-4 with batch 8 and up
to 1000 epochs; the compact default is 1e-3 so that a CPU budget of minutes gets somewhere),
every sample augmented anew each epoch (:mod:`cmrlib.landmarks.data`). One generalist over
every phantom contrast by default; ``--contrast NAME`` trains a specialist; ``--data DIR``
trains (or, with ``--init MODEL``, fine-tunes) on a user's own annotated images. A
checkpoint is written after every epoch and ``--resume`` continues from it; the weights
exported are those of the epoch with the lowest validation median error, saved with
:func:`cmrlib.models.save_model` (safetensors + manifest entry with sha256, the command and
the held-out validation metrics).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError
from ..models.training import TrainingRun, cached_pickle
from ..progress import report
from .data import CONTRASTS, TRAIN_SEED_BASE, VAL_SEED_BASE, augment_stage1, phantom_sources, stage2_sample, user_sources
from .resnetv2 import LandmarkNetConfig, TwoStageLandmarkNet

MODEL_TASK = "landmarks"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", choices=("compact", "paper"), default="compact")
    parser.add_argument("--out", default="models", help="model folder to add the weights to (default ./models; "
                        "use it with CMR_MODELS_DIR=models; the bundled folder is cmrlib/resources/models)")
    parser.add_argument("--name", default=None, help="model name (default landmarks-<preset>[-<contrast>])")
    parser.add_argument("--contrast", choices=("all", *CONTRASTS), default="all",
                        help="train a specialist on one phantom contrast (default: all, the generalist)")
    parser.add_argument("--data", help="folder of your own short-axis images with points (.mrk.json or "
                                       "landmarks.csv; README 'Landmark training data') instead of the phantom")
    parser.add_argument("--init", help="start from the weights of this installed model (fine-tuning)")
    parser.add_argument("--train-subjects", type=int, default=400, help="phantom subjects for training")
    parser.add_argument("--val-subjects", type=int, default=24, help="phantom subjects for validation")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch", type=int, default=8, help="batch size (card: 8)")
    parser.add_argument("--lr", type=float, default=None, help="Adam learning rate (default: paper 1e-4, compact 1e-3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", default=".cache/landmarks", help="folder for the generated images and checkpoints")
    parser.add_argument("--max-minutes", type=float, default=None, help="stop after this many minutes (at an epoch end)")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint in --cache")


def _sources(args, progress) -> tuple[list, list, str]:
    if args.data:
        sources = user_sources(args.data)
        rng = np.random.default_rng(args.seed)
        order = rng.permutation(len(sources))
        n_val = max(1, len(sources) // 10) if len(sources) > 1 else 0
        val = [sources[i] for i in order[:n_val]]
        train = [sources[i] for i in order[n_val:]] or sources
        return train, val or train, f"user data {args.data}: {len(sources)} annotated images"
    contrasts = CONTRASTS if args.contrast == "all" else (args.contrast,)
    tag = "-".join(contrasts) if args.contrast != "all" else "all"
    cache = Path(args.cache)
    train = cached_pickle(cache, f"train_{tag}_{args.train_subjects}", lambda: phantom_sources(
        range(TRAIN_SEED_BASE, TRAIN_SEED_BASE + args.train_subjects), contrasts, progress=progress))
    val = cached_pickle(cache, f"val_{tag}_{args.val_subjects}", lambda: phantom_sources(
        range(VAL_SEED_BASE, VAL_SEED_BASE + args.val_subjects), contrasts, progress=progress))
    what = ("every contrast (" + ", ".join(contrasts) + ")") if args.contrast == "all" else f"contrast {args.contrast}"
    return train, val, (f"synthetic SlicerCMR phantom (1.5 T): {args.train_subjects} subjects, {len(train)} short-axis "
                        f"images, {what}; augmented + domain-randomised (cmrlib/landmarks/data.py)")


def _command_line(args: argparse.Namespace) -> str:
    """This run as a `cmr train landmarks` command with every setting spelled out (for the manifest)."""
    from ..models.zoo import reproducing_command
    return reproducing_command("cmr train landmarks", add_arguments, args)


def validate(model: TwoStageLandmarkNet, sources: list, stages: int = 2) -> dict:
    """Median (IQR) Euclidean error (mm, both points pooled) and angular error (°) of the RV
    entry line on ``sources`` with the inference of the pipeline (flip test included)."""
    from ..metrics import landmark_error_mm, line_angle_error_deg
    from .infer import predict
    errs, angs, confs = [], [], []
    for src in sources:
        p = predict(model, [src.image], src.spacing, src.mirrored, stages=stages)[0]
        errs.extend(landmark_error_mm(np.stack([p.rv_px, p.lv_px]), np.stack([src.rv_px, src.lv_px]), src.spacing))
        angs.append(float(line_angle_error_deg(p.rv_px, p.lv_px, src.rv_px, src.lv_px, src.spacing)))
        confs.append(p.confidence)
    q = lambda v, k: round(float(np.percentile(v, k)), 3) if len(v) else None  # noqa: E731
    return {"images": len(sources), "median_error_mm": q(errs, 50), "error_iqr_mm": [q(errs, 25), q(errs, 75)],
            "median_angle_deg": q(angs, 50), "angle_iqr_deg": [q(angs, 25), q(angs, 75)],
            "median_confidence": q(confs, 50)}


def run(args: argparse.Namespace) -> int:
    from ..device import pick_device
    from ..models import load_model, save_model
    from ..progress import make_progress
    progress = make_progress(args)
    if args.data and args.contrast != "all":
        raise InputError("--contrast selects phantom images; it cannot be combined with --data")
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    cfg = LandmarkNetConfig.preset(args.preset)
    lr = args.lr if args.lr is not None else (1e-4 if args.preset == "paper" else 1e-3)
    name = args.name or f"landmarks-{args.preset}" + ("" if args.contrast == "all" else f"-{args.contrast}")
    cache = Path(args.cache)
    train, val, trained_on = _sources(args, progress)
    dev = pick_device(getattr(args, "device", None))  # `--device` / CMR_DEVICE reaches training too
    model = TwoStageLandmarkNet(cfg).to(dev)
    if args.init:
        base, entry0 = load_model(args.init, device=dev)
        if base.config != cfg:
            raise InputError(f"--init {args.init} is a {entry0.arch_args} network, not the {args.preset} preset")
        model.load_state_dict(base.state_dict())
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    session = TrainingRun(cache, name, _command_line(args), lambda m: m["median_error_mm"], args.max_minutes)
    start_epoch = session.begin(model, opt, args.resume, lr if args.resume and args.lr is not None else None, dev)
    if start_epoch:
        rng = np.random.default_rng(args.seed + start_epoch)
    loss_fn = torch.nn.MSELoss()
    steps = max(1, len(train) // args.batch)
    for epoch in range(start_epoch, args.epochs):
        model.train()
        order = rng.permutation(len(train))
        total = 0.0
        for step in range(steps):
            batch = [train[i] for i in order[step * args.batch:(step + 1) * args.batch]]
            if len(batch) < 2:  # batch norm needs two samples: the same image augmented twice
                batch = batch * 2
            s1 = [augment_stage1(s, cfg.stage1_size, cfg.stage1_pixel_mm, rng) for s in batch]
            s2 = [stage2_sample(s, cfg.stage2_size, cfg.stage2_pixel_mm, rng) for s in batch]
            loss = 0.0
            for stage, pairs in ((1, s1), (2, s2)):
                x = torch.from_numpy(np.stack([p[0] for p in pairs])[:, None]).to(dev)
                y = torch.from_numpy(np.stack([p[1] for p in pairs]).astype(np.float32)).to(dev)
                loss = loss + loss_fn(model(x, stage), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
            report(progress, f"epoch {epoch + 1}/{args.epochs}", step + 1, steps, f"loss {total / (step + 1):.5f}")
        metrics = validate(model, val)
        if not session.end_epoch(epoch, model, opt, {"train_loss": total / steps, "lr": lr, **metrics}):
            break
    train_command, minutes = session.finish(model, dev)
    history = session.history
    entry = model_entry(model, cfg, name, history, train_command, minutes, trained_on, phantom=not args.data)
    entry = save_model(model, entry, Path(args.out))
    print(f"saved {entry.path} (sha256 {entry.sha256[:12]}…); {entry.notice}")
    return 0


def model_entry(model, cfg: LandmarkNetConfig, name: str, history: list[dict], train_command: str, minutes: float,
                trained_on: str, phantom: bool = True):
    from ..models import ModelEntry
    best = min(history, key=lambda h: h["median_error_mm"]) if history else {}
    return ModelEntry(
        name=name, task=MODEL_TASK, architecture="landmark-two-stage", file=f"{name}.safetensors", sha256="",
        version="1.0", arch_args=model.arch_args(),
        input={"stage1": [cfg.stage1_size, cfg.stage1_size], "stage1_pixel_mm": cfg.stage1_pixel_mm,
               "stage2": [cfg.stage2_size, cfg.stage2_size], "stage2_pixel_mm": cfg.stage2_pixel_mm,
               "normalisation": "mean / sd of the non-zero pixels of the resampled grid",
               "outputs": "sigmoid (rv_x, rv_y, lv_x, lv_y) / size, network grid (column, row)"},
        label_table={}, trained_on=trained_on, phantom_trained=phantom, train_command=train_command,
        metrics={"validation": best, "selected_epoch": best.get("epoch"), "epochs": len(history),
                 "minutes": round(minutes, 1)},
        card=f"{name}.md")


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None, help="installed model name (default landmarks-compact)")
    parser.add_argument("--subjects", type=int, default=8, help="held-out phantom subjects per set")
    parser.add_argument("--data", help="evaluate on your own annotated folder instead (as `cmr train --data`)")
    parser.add_argument("--json", help="also write the results to this JSON file")


def evaluate(args: argparse.Namespace) -> int:
    """Held-out table: per contrast, overall, the shifted set and the baseline (:mod:`.evaluate`)."""
    from ..progress import make_progress
    from .evaluate import evaluate as run_evaluation
    from .evaluate import format_table
    result = run_evaluation(args.model, args.subjects, data=args.data, device=getattr(args, "device", None),
                            progress=make_progress(args))
    print(format_table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0

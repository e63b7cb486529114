"""`cmr train moconet` / `cmr evaluate moconet`: train MOCOnet on phantom IRW sets; evaluate held out.

Recipe (appendix A.1, scaled to a CPU): multi-scale weighted MSE on the DVFs (weights 0.08,
0.02, 0.01, 0.005 coarse → fine, as in PWC-Net from which the warping design comes) plus
0.1 × smoothness (squared spatial gradients of the finest DVF); Adam, lr 1e-3, reduced by
√0.1 on a validation plateau down to 5e-5. The training sets are generated once (see
:mod:`cmrlib.motion.data`) and cached as ``.npy`` memory maps; each epoch flips/transposes
them at random (DVF components follow); a fraction of the batch entries
(``--still-fraction``) are motion-free phantom sets with a zero target. A checkpoint is written after every epoch and
``--resume`` continues from it; the weights exported are those of the epoch with the lowest
validation end-point error (kept in ``<name>.best.pt``), not merely the last epoch's.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..progress import report
from .data import IRW_SIGNAL_VERSION, MATRIX, STILL_SEED_BASE, TRAIN_MAX_SEVERITY, TRAIN_SEED_BASE, make_sample
from .moconet import MOCOnetConfig, moconet_from_config

SCALE_WEIGHTS = (0.08, 0.02, 0.01, 0.005)  # coarse → fine
SMOOTH_WEIGHT = 0.1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", choices=("compact", "paper"), default="compact")
    parser.add_argument("--out", default="models", help="model folder to add the weights to (default ./models; "
                        "use it with CMR_MODELS_DIR=models; the bundled folder is cmrlib/resources/models)")
    parser.add_argument("--name", default=None, help="model name (default moconet-<preset>)")
    parser.add_argument("--train-sets", type=int, default=1536, help="phantom IRW sets for training")
    parser.add_argument("--val-sets", type=int, default=96, help="phantom IRW sets for validation")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (A.1: 1e-3)")
    parser.add_argument("--plateau-patience", type=int, default=2,
                        help="epochs without validation improvement before the lr drops by √0.1")
    parser.add_argument("--still-fraction", type=float, default=0.1,
                        help="fraction of training batch entries replaced by motion-free phantom sets "
                             "(target: zero DVFs; train-sets × fraction of them are generated), so that "
                             "still series stay unchanged")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", default=".cache/moconet", help="folder for the generated training sets")
    parser.add_argument("--max-minutes", type=float, default=None, help="stop after this many minutes (at an epoch end)")
    parser.add_argument("--data", help="folder of your own motion-free (or motion-corrected) IRW series: sequence "
                                       "files with an InversionTime per frame, or DICOM folders (README 'MOCOnet "
                                       "training data'); deformed by the same synthetic motion as the phantom's")
    parser.add_argument("--init", help="start from the weights of this installed model (fine-tuning)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the checkpoint in --cache (with the --lr and --plateau-patience given now)")


def _dataset(cache: Path, seeds: range, slots: int, size: int, tag: str, progress=None,
             severity: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frames [N,slots,H,W] float16 normalised, dvf [N,slots,2,H,W] float16, n_frames [N]) cached on disk.

    ``severity`` None: random per set (:func:`make_sample`); 0: motion-free sets."""
    cache.mkdir(parents=True, exist_ok=True)
    # the phantom's IRW signal model is part of the key: sets cached from another model are not reused
    base = cache / f"{tag}_{seeds.start}_{len(seeds)}_{size}_{slots}_{IRW_SIGNAL_VERSION}"
    names = [Path(f"{base}_{k}.npy") for k in ("frames", "dvf", "n")]
    if all(p.exists() for p in names):
        return (np.load(names[0], mmap_mode="r"), np.load(names[1], mmap_mode="r"), np.load(names[2]))
    from .moconet_infer import normalise_frames
    frames = np.lib.format.open_memmap(str(names[0]) + ".part", "w+", np.float16, (len(seeds), slots, size, size))
    dvf = np.lib.format.open_memmap(str(names[1]) + ".part", "w+", np.float16, (len(seeds), slots, 2, size, size))
    counts = np.zeros(len(seeds), np.int16)
    for i, seed in enumerate(seeds):
        report(progress, f"generating {tag} sets", i, len(seeds), f"seed {seed}")
        s = make_sample(seed, severity=severity, matrix=size)
        n = s.frames.shape[0]
        frames[i] = 0
        dvf[i] = 0
        frames[i, :n] = normalise_frames(s.frames)
        dvf[i, :n] = s.inverse_dvf
        counts[i] = n
    report(progress, f"generating {tag} sets", len(seeds), len(seeds), "done")
    frames.flush()
    dvf.flush()
    del frames, dvf
    for p in names[:2]:
        Path(str(p) + ".part").rename(p)
    np.save(names[2], counts)
    return _dataset(cache, seeds, slots, size, tag, severity=severity)


def _user_dataset(series: list, n_sets: int, slots: int, size: int, seed_base: int, severity: float | None = None,
                  progress=None, tag: str = "user") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Like :func:`_dataset` from a user's IRW series (:func:`cmrlib.motion.data.user_irw_series`),
    cycling through them with a new random motion per set; in memory (a site's data is small)."""
    from ..errors import InputError
    from .data import user_sample
    from .moconet_infer import normalise_frames
    too_long = [name for f, _, name in series if f.shape[0] > slots]
    if too_long:
        raise InputError(f"--data: {too_long[0]} has more than the network's {slots} frames")
    frames = np.zeros((n_sets, slots, size, size), np.float16)
    dvf = np.zeros((n_sets, slots, 2, size, size), np.float16)
    counts = np.zeros(n_sets, np.int16)
    for i in range(n_sets):
        report(progress, f"deforming {tag} sets", i, n_sets, "")
        fr, inv = user_sample(series[i % len(series)], seed_base + i, size, severity)
        n = fr.shape[0]
        frames[i, :n] = normalise_frames(fr)
        dvf[i, :n] = inv
        counts[i] = n
    report(progress, f"deforming {tag} sets", n_sets, n_sets, "done")
    return frames, dvf, counts


def _augment(x: torch.Tensor, d: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random row/col flips and transpose of frames [B,F,H,W] and DVFs [B,F,2,H,W] (components follow)."""
    if torch.rand(1, generator=gen) < 0.5:
        x, d = x.flip(-2), d.flip(-2)
        d = torch.stack([-d[:, :, 0], d[:, :, 1]], dim=2)
    if torch.rand(1, generator=gen) < 0.5:
        x, d = x.flip(-1), d.flip(-1)
        d = torch.stack([d[:, :, 0], -d[:, :, 1]], dim=2)
    if torch.rand(1, generator=gen) < 0.5:
        x, d = x.transpose(-1, -2), d.transpose(-1, -2)
        d = torch.stack([d[:, :, 1], d[:, :, 0]], dim=2)
    return x.contiguous(), d.contiguous()


def _mix_still(x: torch.Tensor, d: torch.Tensor, counts: torch.Tensor, still, fraction: float,
               gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Replace a random ``fraction`` of the sets in a batch by motion-free sets (target: zero DVFs).

    Random severities rarely draw a still set, yet a still series must come out unchanged
    (thesis: "no noise added to motion-free maps"). The still sets are phantom frames never
    resampled: a moved set is interpolated once, so undoing its motion would not give the
    sharp frames a still acquisition has.
    """
    pick = torch.nonzero(torch.rand(x.shape[0], generator=gen) < fraction).flatten().tolist()
    if not pick or still is None or not len(still[2]):
        return x, d, counts
    x, d, counts = x.clone(), d.clone(), counts.clone()
    for i in pick:
        j = int(torch.randint(len(still[2]), (1,), generator=gen))
        x[i] = torch.from_numpy(np.asarray(still[0][j], np.float32))
        d[i] = 0
        counts[i] = int(still[2][j])
    return x, d, counts


def _resize_target(d: torch.Tensor, size: int) -> torch.Tensor:
    """Ground-truth DVF [B,F,2,H,W] at a coarser scale, in that scale's pixels."""
    b, f, _, h, w = d.shape
    out = F.interpolate(d.reshape(b, f * 2, h, w), size=(size, size), mode="bilinear", align_corners=True)
    return out.view(b, f, 2, size, size) * ((size - 1) / (h - 1))


def moconet_loss(preds: list[torch.Tensor], target: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Σ w_i·MSE(DVF_i, DVF_i^gt) over present frames + 0.1·smoothness of the finest DVF."""
    m = present.to(target.dtype)[:, :, None, None, None]
    denom = m.sum().clamp_min(1.0)
    loss = target.new_zeros(())
    for w, pred in zip(SCALE_WEIGHTS, preds):
        gt = _resize_target(target, pred.shape[-1]) if pred.shape[-1] != target.shape[-1] else target
        loss = loss + w * (((pred - gt) ** 2) * m).sum() / (denom * 2 * pred.shape[-1] * pred.shape[-2])
    fine = preds[-1]
    gy = (fine[..., 1:, :] - fine[..., :-1, :]) ** 2
    gx = (fine[..., :, 1:] - fine[..., :, :-1]) ** 2
    smooth = ((gy * m).sum() / gy[0, 0].numel() + (gx * m).sum() / gx[0, 0].numel()) / (denom * 2)
    return loss + SMOOTH_WEIGHT * smooth


def _epe(pred: torch.Tensor, target: torch.Tensor, present: torch.Tensor) -> float:
    e = torch.sqrt(((pred - target) ** 2).sum(dim=2))  # [B,F,H,W]
    return float(e[present].mean())


def _command_line(args: argparse.Namespace) -> str:
    """This run as a `cmr train moconet` command with every setting spelled out (for the manifest)."""
    from ..models.zoo import reproducing_command
    return reproducing_command("cmr train moconet", add_arguments, args)


def run(args: argparse.Namespace) -> int:
    from ..progress import make_progress
    from ..models import save_model
    progress = make_progress(args)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    cfg = MOCOnetConfig.preset(args.preset)
    name = args.name or f"moconet-{args.preset}"
    cache = Path(args.cache)
    t_start = time.perf_counter()
    n_still = round(args.train_sets * args.still_fraction)
    cache.mkdir(parents=True, exist_ok=True)
    if args.data:
        from .data import user_irw_series
        series = user_irw_series(args.data)
        order = np.random.default_rng(args.seed).permutation(len(series))
        n_val = max(1, len(series) // 10) if len(series) > 1 else 0
        val_series = [series[i] for i in order[:n_val]] or [series[order[0]]]  # one series: validated on itself
        train_series = [series[i] for i in order[n_val:]] or val_series
        size, slots = cfg.input_size, cfg.frame_slots
        train = _user_dataset(train_series, args.train_sets, slots, size, TRAIN_SEED_BASE, progress=progress)
        val = _user_dataset(val_series, args.val_sets, slots, size, TRAIN_SEED_BASE + 500_000, progress=progress,
                            tag="validation")
        still = _user_dataset(train_series, n_still, slots, size, STILL_SEED_BASE, 0.0, progress, "still") \
            if n_still else None
        args.trained_on = (f"user data: {len(train_series)} IRW series from {args.data} (validation: "
                           f"{len(val_series)}), deformed by random smooth DVFs (severity 0..{TRAIN_MAX_SEVERITY})")
    else:
        train = _dataset(cache, range(TRAIN_SEED_BASE, TRAIN_SEED_BASE + args.train_sets), cfg.frame_slots,
                         cfg.input_size, "train", progress)
        val = _dataset(cache, range(TRAIN_SEED_BASE + 500_000, TRAIN_SEED_BASE + 500_000 + args.val_sets),
                       cfg.frame_slots, cfg.input_size, "val", progress)
        still = _dataset(cache, range(STILL_SEED_BASE, STILL_SEED_BASE + n_still), cfg.frame_slots, cfg.input_size,
                         "still", progress, severity=0.0) if n_still else None
    from ..device import pick_device
    dev = pick_device(getattr(args, "device", None))  # `--device` / CMR_DEVICE reaches training too
    model = moconet_from_config(cfg).to(dev)
    if args.init and not (args.resume and (cache / f"{name}.ckpt.pt").exists()):
        from ..errors import InputError
        from ..models import load_model
        base, entry0 = load_model(args.init, device=dev)
        if entry0.architecture != "moconet" or base.arch_args() != model.arch_args():
            raise InputError(f"--init {args.init} is not a MOCOnet of the {args.preset} preset")
        model.load_state_dict(base.state_dict())
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=math.sqrt(0.1), patience=args.plateau_patience, min_lr=5e-5)
    ckpt = cache / f"{name}.ckpt.pt"
    best_path = cache / f"{name}.best.pt"  # weights of the epoch with the lowest validation EPE
    start_epoch, history = 0, []
    # the commands and minutes of earlier runs of a resumed training, so the manifest can say
    # how the weights were made end to end
    earlier_commands: list[str] = []
    earlier_minutes = 0.0
    command = _command_line(args)
    if args.resume and ckpt.exists():
        state = torch.load(ckpt, weights_only=False, map_location=dev)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        start_epoch, history = state["epoch"], state["history"]
        earlier_commands, earlier_minutes = state.get("commands", []), state.get("minutes", 0.0)
        # a resumed run takes this command's schedule: the lr and patience given now, not the
        # (possibly decayed) ones saved; Adam's moment estimates are kept
        for group in opt.param_groups:
            group["lr"] = args.lr
        sched.patience, sched.num_bad_epochs = args.plateau_patience, 0
        print(f"resumed from {ckpt} at epoch {start_epoch}", file=sys.stderr)
    else:
        best_path.unlink(missing_ok=True)  # a fresh run must not export an earlier run's best epoch
    n_train = len(train[2])
    steps = n_train // args.batch
    for epoch in range(start_epoch, args.epochs):
        model.train()
        order = torch.randperm(n_train, generator=gen).numpy()
        total = 0.0
        for step in range(steps):
            idx = np.sort(order[step * args.batch:(step + 1) * args.batch])
            x = torch.from_numpy(np.asarray(train[0][idx], np.float32))
            d = torch.from_numpy(np.asarray(train[1][idx], np.float32))
            x, d, counts = _mix_still(x, d, torch.from_numpy(train[2][idx].astype(np.int64)), still,
                                      args.still_fraction, gen)
            present = torch.arange(cfg.frame_slots)[None, :] < counts[:, None]
            x, d = _augment(x, d, gen)
            x, d, present = x.to(dev), d.to(dev), present.to(dev)
            loss = moconet_loss(model.forward_scales(x, present), d, present)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
            report(progress, f"epoch {epoch + 1}/{args.epochs}", step + 1, steps, f"loss {total / (step + 1):.4f}")
        val_epe, val_before = _validate(model, val, cfg)
        sched.step(val_epe)
        history.append({"epoch": epoch + 1, "train_loss": total / max(steps, 1), "val_epe_px": val_epe,
                        "val_epe_before_px": val_before, "lr": opt.param_groups[0]["lr"]})
        print(json.dumps(history[-1]), file=sys.stderr, flush=True)
        if val_epe < min((h["val_epe_px"] for h in history[:-1]), default=math.inf):  # ties: the first, as model_entry
            torch.save({"model": model.state_dict(), "epoch": epoch + 1}, best_path)
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                    "epoch": epoch + 1, "history": history, "commands": earlier_commands + [command],
                    "minutes": earlier_minutes + (time.perf_counter() - t_start) / 60}, ckpt)
        if args.max_minutes and (time.perf_counter() - t_start) / 60 > args.max_minutes:
            print(f"stopping after {epoch + 1} epochs (--max-minutes {args.max_minutes})", file=sys.stderr)
            break
    minutes = earlier_minutes + (time.perf_counter() - t_start) / 60
    if best_path.exists():  # export the best validated epoch, not merely the last one
        model.load_state_dict(torch.load(best_path, weights_only=False, map_location=dev)["model"])
    entry = model_entry(args, model, cfg, name, history, " && ".join(earlier_commands + [command]), minutes)
    model.eval()
    entry = save_model(model, entry, Path(args.out))
    print(f"saved {entry.path} (sha256 {entry.sha256[:12]}…); {entry.notice}")
    return 0


def model_entry(args: argparse.Namespace, model: torch.nn.Module, cfg: MOCOnetConfig, name: str, history: list[dict],
                train_command: str, minutes: float):
    """The manifest entry of trained MOCOnet weights; metrics of the selected (best validation) epoch."""
    from ..models import ModelEntry
    best = min(history, key=lambda h: h["val_epe_px"]) if history else {}
    return ModelEntry(
        name=name, task="motion", architecture="moconet", file=f"{name}.safetensors", sha256="",
        version="1.0", arch_args=model.arch_args(),
        input=_input_description(cfg),
        label_table={}, trained_on=(getattr(args, "trained_on", None) or (
            f"synthetic SlicerCMR phantom: {args.train_sets} motion-free IRW sets "
            f"(ShMOLLI / MOLLI 5(3)3 / MOLLI 3(3)3(3)5, {MATRIX}x{MATRIX}) deformed by "
            f"random smooth DVFs (severity 0..{TRAIN_MAX_SEVERITY}), mean removed"))
        + (f"; fine-tuned from {args.init}" if args.init else ""),
        phantom_trained=not args.data, train_command=train_command,
        metrics={"validation": best, "selected_epoch": best.get("epoch"), "epochs": len(history),
                 "minutes": round(minutes, 1)},
        card=f"{name}.md")


def _input_description(cfg: MOCOnetConfig) -> dict:
    """The manifest's ``input`` entry: what the network takes and how frames are prepared."""
    norm = "frames ordered by TI, each divided by its own 99th percentile; zero-padded to a centred square and resized"
    if cfg.design == "groupwise":
        return {"size": ["frames", cfg.input_size, cfg.input_size], "normalisation": norm,
                "frame_counts": "any (one encoder shared by all frames); trained on 7, 8 and 11"}
    return {"size": [cfg.frame_slots, cfg.input_size, cfg.input_size],
            "normalisation": norm + "; absent frame slots zero", "frame_counts": [n for n in (7, 8, 11) if n <= cfg.frame_slots]}


@torch.no_grad()
def _validate(model: torch.nn.Module, val, cfg: MOCOnetConfig) -> tuple[float, float]:
    model.eval()
    dev = next(model.parameters()).device
    epes, before = [], []
    for i in range(0, len(val[2]), 8):
        x = torch.from_numpy(np.asarray(val[0][i:i + 8], np.float32))
        d = torch.from_numpy(np.asarray(val[1][i:i + 8], np.float32))
        present = torch.arange(cfg.frame_slots)[None, :] < torch.from_numpy(val[2][i:i + 8].astype(np.int64))[:, None]
        x, d, present = x.to(dev), d.to(dev), present.to(dev)
        epes.append(_epe(model(x, present), d, present))
        before.append(_epe(torch.zeros_like(d), d, present))
    return float(np.mean(epes)), float(np.mean(before))


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sets", type=int, default=6, help="held-out sets per severity group")
    parser.add_argument("--methods", default="none,classical,moconet",
                        help="comma-separated: none, classical, moconet (classical is slow)")
    parser.add_argument("--json", help="also write the per-set results to this JSON file")


def evaluate(args: argparse.Namespace) -> int:
    """Held-out phantom evaluation table (before / classical / MOCOnet per severity group)."""
    from dataclasses import asdict

    from ..progress import make_progress
    from .evaluate import evaluate as run_evaluation
    from .evaluate import motion_free_change, summary_rows
    results = run_evaluation(args.sets, tuple(args.methods.split(",")), progress=make_progress(args),
                             device=getattr(args, "device", None))
    rows = summary_rows(results)
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
    for r in rows:
        print("| " + " | ".join(f"{r[k]:.4g}" if isinstance(r[k], float) else str(r[k]) for k in keys) + " |")
    if "moconet" in args.methods:
        print(f"\nmotion-free sets: largest myocardial T1 change by MOCOnet {motion_free_change(results):.3f} %")
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in results], indent=2))
    return 0

"""`cmr train scar`: the fusion (LGE + cine) or the LGE-only scar U-Net (seed 003).

Loss: cross-entropy over the four classes (the card) plus ``--dice-weight`` × a soft Dice of the
myocardium and scar classes (default 0.5; scar is a few percent of the pixels, and with
cross-entropy alone the compact networks learned no scar within a CPU budget — see the model
card). Adam; the learning rate decays ×0.8 every ``--decay-every`` epochs down to 5e-4 (the
card: lr 0.005, ×0.8 every 30 of 250 epochs). The model kept is the epoch with the best
validation score: the mean of the myocardial and the scar Dice over held-out phantom stacks,
run through the same pipeline as a user's stack (tag matching, detected LV centres,
post-processing). Data: phantom stacks (:func:`cmrlib.scar.data.phantom_stacks`) or a user's
own (``--data DIR``, :func:`cmrlib.scar.data.user_stacks`).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from ..metrics import dice
from ..models.training import TrainingRun, cached_pickle
from ..progress import report
from .data import TRAIN_SEED_BASE, VAL_SEED_BASE, ScarStack, phantom_stacks, training_sample, user_stacks
from .unet import CLASSES, MYOCARDIUM, PUBLISHED_PARAMETERS_M, SCAR, ScarUNetConfig, build, config_args

MODEL_TASK = "scar"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", choices=("fusion-compact", "lge-compact", "fusion-paper", "lge-paper"),
                        default="fusion-compact", help="network (fusion: LGE + cine; lge: LGE only)")
    parser.add_argument("--out", default="models", help="model folder to add the weights to (default ./models)")
    parser.add_argument("--name", default=None, help="model name (default scar-<preset>)")
    parser.add_argument("--data", help="folder of your own NAME_lge / NAME_labels (/ NAME_cine) images (README "
                                       "'Scar training data'); replaces the phantom")
    parser.add_argument("--init", help="start from the weights of this installed model (fine-tuning)")
    parser.add_argument("--train-subjects", type=int, default=240, help="phantom subjects (LGE stacks) for training")
    parser.add_argument("--val-subjects", type=int, default=12, help="phantom subjects for validation")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--steps", type=int, default=100, help="batches per epoch")
    parser.add_argument("--batch", type=int, default=16, help="slices per batch (paper: 4 patients)")
    parser.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate (paper 5e-3)")
    parser.add_argument("--decay-every", type=int, default=4, help="epochs between ×0.8 learning-rate steps "
                                                                   "(paper 30 of 250)")
    parser.add_argument("--dice-weight", type=float, default=0.5,
                        help="weight of the soft Dice of myocardium and scar added to the cross-entropy (0: the card)")
    parser.add_argument("--scar-weight", type=float, default=1.0,
                        help="cross-entropy weight of the scar class (1: the card's plain cross-entropy)")
    parser.add_argument("--no-augment", action="store_true", help="switch off the domain randomisation")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", default=".cache/scar", help="folder for the generated stacks and checkpoints")
    parser.add_argument("--max-minutes", type=float, default=None, help="stop after this many minutes (at an epoch end)")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint in --cache")
    parser.add_argument("--scar-offsets", default=None,
                        help="comma-separated scar-logit offsets the calibration tries (default 0 to 3 in steps of "
                             "0.25)")
    parser.add_argument("--calibrate-only", action="store_true",
                        help="no training: refit the post-processing dilation and the scar-logit offset of the "
                             "--init model on the validation stacks and save it to --out")


def training_stacks(args, progress=None, fusion: bool | None = None) -> tuple[list[ScarStack], list[ScarStack], str]:
    """(training, validation, description); ``fusion`` (default: from ``--preset``) needs a cine per stack."""
    fusion = args.preset.startswith("fusion") if fusion is None else fusion
    if args.data:
        stacks = user_stacks(args.data)
        if fusion and any(s.cine is None for s in stacks):
            missing = [s.meta.get("name") for s in stacks if s.cine is None]
            raise InputError(f"--data {args.data}: the fusion network needs NAME_cine for every stack; missing for "
                             f"{', '.join(missing[:5])}")
        rng = np.random.default_rng(args.seed)
        order = rng.permutation(len(stacks))
        n_val = max(1, len(stacks) // 10) if len(stacks) > 1 else 0
        val = [stacks[i] for i in order[:n_val]]
        return [stacks[i] for i in order[n_val:]] or stacks, val, f"user data: {len(stacks)} stacks from {args.data}"
    cache = Path(args.cache)
    train = cached_pickle(cache, f"train_{args.train_subjects}",
                          lambda: phantom_stacks(TRAIN_SEED_BASE, args.train_subjects, progress=progress))
    val = cached_pickle(cache, f"val_{args.val_subjects}",
                        lambda: phantom_stacks(VAL_SEED_BASE, args.val_subjects, progress=progress))
    return train, val, (f"phantom: {args.train_subjects} training subjects from seed {TRAIN_SEED_BASE} "
                        "(ischaemic / non-ischaemic / no scar in turn), domain-randomised")


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, classes=(MYOCARDIUM, SCAR)) -> torch.Tensor:
    """1 − mean soft Dice over ``classes`` (batch-pooled, so a batch without scar adds ~0)."""
    prob = logits.softmax(1)
    losses = []
    for c in classes:
        p, t = prob[:, c], (target == c).float()
        inter, total = (p * t).sum(), p.sum() + t.sum()
        losses.append(1.0 - (2 * inter + 1.0) / (total + 1.0))
    return torch.stack(losses).mean()


def validate(model, val: list[ScarStack], method: str, device) -> dict:
    """Mean myocardial and scar Dice and %scar error over the validation stacks (the pipeline's path)."""
    from .infer import OUT_SCAR
    from .pipeline import quantify_scar
    model.eval()
    myo_d, scar_d, err = [], [], []
    for st in val:
        res = quantify_scar(st.lge, st.cine if method == "fusion" else None, method=method,
                            networks={method: model}, compare=False, device=device)
        lab = np.asarray(res.labels.array)
        myo_d.append(dice(lab > 0, st.truth_myocardium))
        if st.truth_scar.any():
            scar_d.append(dice(lab == OUT_SCAR, st.truth_scar))
        tm = st.truth_myocardium.sum()
        truth_pct = 100.0 * st.truth_scar.sum() / tm if tm else 0.0
        err.append((res.primary.percent_scar or 0.0) - truth_pct)
    model.train()
    return {"val_myo_dice": round(float(np.mean(myo_d)), 4), "val_scar_dice": round(float(np.mean(scar_d)), 4)
            if scar_d else None, "val_pct_error_mean": round(float(np.mean(err)), 3),
            "val_pct_error_sd": round(float(np.std(err)), 3)}


#: scar-logit offsets tried by the calibration (0: the plain arg-max)
SCAR_OFFSET_CHOICES = tuple(np.round(np.arange(0.0, 3.01, 0.25), 2).tolist())


def calibrate_postprocess(model, val: list[ScarStack], method: str, device, choices=(0, 1, 2),
                          offsets=SCAR_OFFSET_CHOICES, gates=None) -> dict:
    """Three decisions fitted on the validation stacks only (never the training or test stacks):

    * the post-processing's final myocardial dilation (pixels) that makes the validation stacks'
      myocardial volume agree best (total predicted / true volume nearest 1). The card's one pixel
      compensates its network's border; measured here, the compact networks' myocardium needs none
      (with one pixel the volume slope was 1.33 on held-out stacks);
    * then the scar-logit offset (:func:`cmrlib.scar.infer.predict`) whose per-stack %scar
      regression slope through the origin against the truth is nearest 1: the class-weighted
      networks still under-call scar (validation slope 0.90 for the bundled fusion network);
    * then the intensity gate (:func:`fit_scar_gate`): scar kept only where the LGE is brighter
      than remote myocardium + n sd, n with the smallest validation %scar error."""
    gates = SCAR_GATE_CHOICES if gates is None else gates
    from .pipeline import quantify_scar, voxel_ml

    from .classical import NO_GATE

    def run(st, px, off):  # ungated: the gate is fitted last, on these labels
        return quantify_scar(st.lge, st.cine if method == "fusion" else None, method=method,
                             networks={method: model}, compare=False, device=device, dilate_px=px, scar_offset=off,
                             scar_gate_sd=NO_GATE)
    slopes = {}
    for px in choices:
        truth, pred = [], []
        for st in val:
            res = run(st, px, 0.0)
            truth.append(float(st.truth_myocardium.sum()) * voxel_ml(st.lge))
            pred.append(float((np.asarray(res.labels.array) > 0).sum()) * voxel_ml(st.lge))
        slopes[px] = float(np.sum(pred) / max(np.sum(truth), 1e-9))
    best = min(slopes, key=lambda k: abs(slopes[k] - 1.0))
    truth_pct = [100.0 * st.truth_scar.sum() / max(st.truth_myocardium.sum(), 1) for st in val]
    scar_slopes = {}
    if any(t > 0 for t in truth_pct):
        for off in offsets:
            pred_pct = np.array([run(st, best, off).primary.percent_scar or 0.0 for st in val])
            t = np.array(truth_pct)  # least-squares slope through the origin (one stack will do)
            scar_slopes[off] = float(t @ pred_pct / (t @ t))
    offset = min(scar_slopes, key=lambda k: abs(scar_slopes[k] - 1.0)) if scar_slopes else 0.0
    gate, gate_errors = fit_scar_gate([(st, run(st, best, offset)) for st in val], truth_pct, gates) \
        if any(t > 0 for t in truth_pct) else (None, {})
    return {"postprocess_dilate_px": int(best),
            "validation_volume_ratio_by_dilate_px": {str(k): round(v, 4) for k, v in slopes.items()},
            "scar_logit_offset": float(offset),
            "validation_scar_slope_by_offset": {f"{k:g}": round(v, 4) for k, v in scar_slopes.items()},
            "scar_gate_sd": gate, "validation_scar_abs_error_by_gate_sd": gate_errors,
            "validation_stacks": len(val)}


#: intensity gates tried by the calibration (sd above remote; None: no gate)
SCAR_GATE_CHOICES = (None, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0)


def fit_scar_gate(runs: list, truth_pct: list[float], gates=SCAR_GATE_CHOICES) -> tuple[float | None, dict]:
    """The intensity gate (:func:`cmrlib.scar.classical.gate_scar`) whose validation stacks' %scar
    has the smallest mean absolute error against the truth (points), from each stack's ungated
    result; ties go to the weaker gate. Measured on the bundled fusion network's 100 validation
    stacks: the error fell from 1.34 (no gate) to 1.06 points at 2 sd, r 0.86 → 0.89."""
    from .classical import NO_GATE, gate_scar
    errors: dict[str, float] = {}
    best, best_err = None, None
    for g in gates:
        err = []
        for (st, res), t in zip(runs, truth_pct):
            lab = np.asarray(res.labels.array)
            centres = [s.lv_centre_lge_px for s in res.slices]
            gated = gate_scar(lab, np.asarray(st.lge.array, float), NO_GATE if g is None else g, None, centres)
            myo = int((gated > 0).sum())
            err.append(abs((100.0 * int((gated == 2).sum()) / myo if myo else 0.0) - t))
        e = float(np.mean(err))
        errors["none" if g is None else f"{g:g}"] = round(e, 4)
        if best_err is None or e < best_err - 1e-9:
            best, best_err = g, e
    return (None if best is None else float(best)), errors


def _gate(calibration: dict) -> str:
    g = calibration.get("scar_gate_sd")
    return "none" if g is None else f"{g:g} sd above remote"


def scar_offsets(args: argparse.Namespace) -> tuple[float, ...]:
    """The offsets of ``--scar-offsets`` (InputError for a malformed list), else the default grid."""
    if not getattr(args, "scar_offsets", None):
        return SCAR_OFFSET_CHOICES
    try:
        values = tuple(float(v) for v in str(args.scar_offsets).split(",") if v.strip())
    except ValueError:
        values = ()
    if not values:
        raise InputError(f"--scar-offsets {args.scar_offsets!r}: give numbers separated by commas, e.g. 0,0.5,1")
    return values


def calibrate_only(args: argparse.Namespace) -> int:
    """``--calibrate-only --init NAME``: refit the post-processing decisions of an installed model
    on the validation stacks and write it (same weights) with its manifest entry to ``--out``."""
    from dataclasses import replace as dc_replace

    import shutil

    from ..atomic import replace_file
    from ..device import pick_device
    from ..models import load_model
    from ..models.zoo import register_model
    if not args.init:
        raise InputError("--calibrate-only needs --init NAME (the installed model to calibrate)")
    dev = pick_device(getattr(args, "device", None))
    model, entry0 = load_model(args.init, device=dev)
    method = "fusion" if model.config.inputs == "fusion" else "lge-only"
    if args.data:
        _, val, _ = training_stacks(args, fusion=method == "fusion")
    else:
        val = cached_pickle(Path(args.cache), f"val_{args.val_subjects}",
                            lambda: phantom_stacks(VAL_SEED_BASE, args.val_subjects))
    if not val:
        raise InputError("--calibrate-only: no validation stacks (a --data folder needs at least 2 stacks)")
    calibration = calibrate_postprocess(model, val, method, dev, offsets=scar_offsets(args))
    entry = dc_replace(entry0, name=args.name or entry0.name, calibration=calibration,
                       train_command=f"{entry0.train_command} && {_command_line(args)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    source = entry0.path
    if (out / entry.file).resolve() != source.resolve():  # the weights byte for byte: they are not retrained
        tmp = out / f".tmp-{entry.file}"
        shutil.copyfile(source, tmp)
        replace_file(tmp, out / entry.file)
    entry = register_model(entry, out)
    print(f"calibrated {entry.name}: dilation {calibration['postprocess_dilate_px']} px, scar-logit offset "
          f"{calibration['scar_logit_offset']:g} (validation %scar slope by offset: "
          f"{calibration['validation_scar_slope_by_offset']}), intensity gate {_gate(calibration)} (validation "
          f"%scar mean abs error by gate: {calibration['validation_scar_abs_error_by_gate_sd']}); saved to {entry.path}")
    return 0


def _score(metrics: dict) -> float:
    return -0.5 * (metrics["val_myo_dice"] + (metrics["val_scar_dice"] or 0.0))


def _command_line(args: argparse.Namespace) -> str:
    from ..models.zoo import reproducing_command
    return reproducing_command("cmr train scar", add_arguments, args)


def run(args: argparse.Namespace) -> int:
    from ..device import pick_device
    from ..models import load_model, save_model
    from ..models.unet2d import n_parameters
    from ..progress import make_progress
    scar_offsets(args)  # a malformed --scar-offsets is refused before any work
    if args.calibrate_only:
        return calibrate_only(args)
    progress = make_progress(args)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    cfg = ScarUNetConfig.preset(args.preset)
    method = "fusion" if cfg.inputs == "fusion" else "lge-only"
    name = args.name or f"scar-{args.preset}"
    train, val, trained_on = training_stacks(args, progress)
    dev = pick_device(getattr(args, "device", None))
    model = build(cfg).to(dev)
    print(f"{args.preset}: {n_parameters(model) / 1e6:.2f} M parameters (published {cfg.inputs}: "
          f"{PUBLISHED_PARAMETERS_M[cfg.inputs]} M)")
    if args.init:
        base, entry0 = load_model(args.init, device=dev)
        if base.config != cfg:
            raise InputError(f"--init {args.init} is a {entry0.arch_args} network, not the {args.preset} preset")
        model.load_state_dict(base.state_dict())
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    session = TrainingRun(args.cache, name, _command_line(args), _score, args.max_minutes)
    start_epoch = session.begin(model, opt, args.resume, args.lr, dev)
    if start_epoch:
        rng = np.random.default_rng(args.seed + start_epoch)
    index = [(i, k) for i, st in enumerate(train) for k in range(st.labels.shape[0])]
    class_weight = torch.ones(len(CLASSES), device=dev)
    class_weight[SCAR] = args.scar_weight
    model.train()
    for epoch in range(start_epoch, args.epochs):
        lr = max(5e-4, args.lr * 0.8 ** (epoch // max(args.decay_every, 1)))
        for group in opt.param_groups:
            group["lr"] = lr
        totals = np.zeros(2)
        for step in range(args.steps):
            picks = [index[int(j)] for j in rng.integers(0, len(index), args.batch)]
            samples = [training_sample(train[i], k, cfg, rng, augment=not args.no_augment) for i, k in picks]
            x = torch.from_numpy(np.stack([s[0] for s in samples])).to(dev)
            y = torch.from_numpy(np.stack([s[1] for s in samples]).astype(np.int64)).to(dev)
            logits = model(x)
            ce = F.cross_entropy(logits, y, weight=class_weight)
            sd = soft_dice_loss(logits, y) if args.dice_weight > 0 else torch.zeros((), device=dev)
            loss = ce + args.dice_weight * sd
            opt.zero_grad()
            loss.backward()
            opt.step()
            totals += [ce.item(), sd.item()]
            report(progress, f"epoch {epoch + 1}/{args.epochs}", step + 1, args.steps,
                   f"ce {totals[0] / (step + 1):.4f}")
        metrics = validate(model, val, method, dev) if val else {"val_myo_dice": 0.0, "val_scar_dice": None}
        if not session.end_epoch(epoch, model, opt, {"train_ce": round(totals[0] / args.steps, 5),
                                                  "train_soft_dice": round(totals[1] / args.steps, 5), "lr": lr,
                                                  **metrics}):
            break
    train_command, minutes = session.finish(model, dev)
    entry = model_entry(cfg, name, session.history, train_command, minutes, trained_on, args, phantom=not args.data,
                        n_params=n_parameters(model))
    if val:
        entry.calibration = calibrate_postprocess(model, val, method, dev, offsets=scar_offsets(args))
        print(f"post-processing dilation {entry.calibration['postprocess_dilate_px']} px (validation volume ratio "
              f"by dilation: {entry.calibration['validation_volume_ratio_by_dilate_px']}); scar-logit offset "
              f"{entry.calibration['scar_logit_offset']:g} (validation %scar slope by offset: "
              f"{entry.calibration['validation_scar_slope_by_offset']}); intensity gate {_gate(entry.calibration)} "
              f"(validation %scar mean abs error by gate: {entry.calibration['validation_scar_abs_error_by_gate_sd']})")
    entry = save_model(model, entry, Path(args.out))
    print(f"saved {entry.path} (sha256 {entry.sha256[:12]}…); {entry.notice}")
    return 0


def model_entry(cfg: ScarUNetConfig, name: str, history: list[dict], train_command: str, minutes: float,
                trained_on: str, args, phantom: bool = True, n_params: int = 0):
    from ..models import ModelEntry
    best = min(history, key=_score) if history else {}
    channels = ["LGE, 0–1"] + (["matched cine frame, LV-centre aligned, 0–1"] if cfg.inputs == "fusion" else [])
    return ModelEntry(
        name=name, task=MODEL_TASK, architecture="scar_unet", file=f"{name}.safetensors", sha256="",
        version="1.0", arch_args=config_args(cfg),
        input={"grid": [cfg.size, cfg.size], "pixel_mm": cfg.pixel_mm, "channels": channels,
               "centre": "each image's LV centre (user / landmarks / mask / blood-pool detector)",
               "normalisation": "1st–99.5th percentile of each image scaled to 0–1",
               "outputs": f"logits of {', '.join(CLASSES)}"},
        label_table={str(i): c for i, c in enumerate(CLASSES)}, trained_on=trained_on, phantom_trained=phantom,
        train_command=train_command,
        metrics={"validation": best, "selected_epoch": best.get("epoch"), "epochs": len(history),
                 "minutes": round(minutes, 1), "batch": args.batch, "steps": args.steps, "parameters": n_params,
                 "published_parameters_m": PUBLISHED_PARAMETERS_M[cfg.inputs],
                 "augmentation": "none" if args.no_augment else "domain randomisation (cmrlib.augment), centre error, "
                                                                 "neighbouring cine phases"},
        card=f"{name}.md")


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--subjects", type=int, default=30, help="held-out phantom subjects (shifted: half)")
    parser.add_argument("--json", help="also write the results to this JSON file")


def evaluate(args: argparse.Namespace) -> int:
    """Held-out tables of every installed method (:mod:`.evaluate`)."""
    from ..models.zoo import model_installed
    from ..progress import make_progress
    from .evaluate import evaluate as run_evaluation
    from .evaluate import format_table
    from .pipeline import METHODS, MODEL_NAMES
    methods = [m for m in METHODS if m not in MODEL_NAMES or model_installed(MODEL_NAMES[m])]
    result = run_evaluation(args.subjects, methods=methods, device=getattr(args, "device", None),
                            progress=make_progress(args))
    print(format_table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=float))
    return 0

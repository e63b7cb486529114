"""`cmr quality certainty | slice-level | watch | la`: LGE certainty and LV slice level of short-axis LGE;
``la`` is the left-atrial 3-D LGE quality of :mod:`cmrlib.laquality` (`cmr la-quality`).

Arguments and wiring only: the computation is :func:`cmrlib.quality.pipeline.classify_stack`, the
files :mod:`cmrlib.quality.outputs`, the folder watcher :mod:`cmrlib.quality.watch`.
"""
from __future__ import annotations

import argparse
from pathlib import Path


def _threshold(text: str) -> float:
    v = float(text)
    if not 0.0 < v < 1.0:
        raise argparse.ArgumentTypeError(f"a probability between 0 and 1; got {text}")
    return v


def _common(p: argparse.ArgumentParser, certainty: bool) -> None:
    p.add_argument("input", help="short-axis LGE stack: a DICOM folder holding one LGE series (PSIR or magnitude) "
                                 "or an image file (NRRD / NIfTI / MHA; read only)")
    p.add_argument("--out", required=True, help="output folder (outside the input)")
    p.add_argument("--hide-non-lv", action="store_true", help="leave slices outside the LV out of the montage")
    p.add_argument("--force", action="store_true", help="classify a series that is not LGE (cine, T1 map, …) anyway")
    p.add_argument("--slice-level-model", default=None, help="installed slice-level model (default "
                                                             "slice-level-compact)")
    if certainty:
        p.add_argument("--threshold", type=_threshold, default=None,
                       help="probability of low certainty that flags a slice (default: the model's operating point, "
                            "chosen on validation data to favour precision)")
        p.add_argument("--all-slices", action="store_true",
                       help="assess every slice for certainty, including those the slice-level network puts outside "
                            "the LV")
        p.add_argument("--model", default=None, help="installed certainty model (default lge-certainty-compact)")


def _la_cli():
    from ..capabilities import capabilities
    found = [c for c in capabilities() if c.command == "la-quality"]
    return found[0].load_cli() if found else None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..contract import task_parsers
    task = task_parsers(parser, "quality_command")
    _common(task("certainty", "probability of low LGE certainty per LV slice and the flag (slice level first)"), True)
    _common(task("slice-level", "too basal / LV / too apical per slice"), False)
    w = task("watch", "classify each new LGE series arriving in a folder (scanner side)")
    w.add_argument("folder", help="folder that receives DICOM files (e.g. a storescp destination)")
    w.add_argument("--out", help="also write each series' result folder here")
    w.add_argument("--log", help="append each verdict as a JSON line to this file")
    w.add_argument("--settle", type=float, default=2.0, help="seconds a file must be unchanged before it is read")
    w.add_argument("--interval", type=float, default=0.5, help="seconds between polls")
    w.add_argument("--threshold", type=_threshold, default=None, help="as `cmr quality certainty --threshold`")
    w.add_argument("--max-seconds", type=float, default=None, help="stop after this long (default: until Ctrl-C)")
    w.add_argument("--max-verdicts", type=int, default=None, help="stop after this many verdicts")
    # `cmr quality la` is `cmr la-quality`, reached through the registry (capabilities do not import each other)
    la_cli = _la_cli()
    if la_cli is not None:
        la_cli.add_arguments(task("la", "diagnostic quality of a left-atrial 3-D LGE volume (same as `cmr la-quality`)"))


def run(args: argparse.Namespace) -> int:
    from ..atomic import check_output_folder, staged_folder
    from ..progress import make_progress
    if args.quality_command == "la":
        return _la_cli().run(args)
    if args.quality_command == "watch":
        from ..errors import InputError
        from .watch import watch
        if args.settle < 0 or args.interval <= 0:
            raise InputError("--settle must be ≥ 0 and --interval > 0 seconds")
        watch(args.folder, settle_s=args.settle, interval_s=args.interval, out=args.out, log=args.log,
              threshold=args.threshold, max_seconds=args.max_seconds, max_verdicts=args.max_verdicts,
              device=args.device)
        return 0
    from .outputs import write_result
    from .pipeline import CERTAINTY_MODEL, SLICE_LEVEL_MODEL, classify_stack, load_stack
    out = Path(args.out)
    check_output_folder(Path(args.input), out)
    image, desc, kind, notes = load_stack(args.input, force=args.force)
    certainty = args.quality_command == "certainty"
    tasks = ("slice-level", "certainty") if certainty else ("slice-level",)
    if certainty and args.all_slices:
        tasks = ("certainty",)
    with staged_folder(out) as stage:
        result = classify_stack(image, tasks=tasks, threshold=getattr(args, "threshold", None),
                                all_slices=getattr(args, "all_slices", False), series=desc, kind=kind, notes=notes,
                                certainty_model=getattr(args, "model", None) or CERTAINTY_MODEL,
                                slice_level_model=args.slice_level_model or SLICE_LEVEL_MODEL,
                                device=args.device, progress=make_progress(args), hide_non_lv=args.hide_non_lv)
        write_result(result, stage)
    print(f"{desc}: {result.sentence} ({result.seconds:.2f} s, {result.ms_per_slice:.0f} ms per slice) -> {out}")
    for s in result.slices:
        if args.hide_non_lv and s.slice_class not in (None, "LV"):
            continue
        parts = [f"  slice {s.index + 1}:"]
        if s.slice_class:
            parts.append(f"{s.slice_class} ({max(s.probabilities.values()):.2f})")
        if s.p_low_certainty is not None:
            parts.append(f"p(low certainty) {s.p_low_certainty:.2f}" + (" EQUIVOCAL" if s.flag else ""))
        elif s.reason and certainty:
            parts.append("not assessed")
        print(" ".join(parts))
    for note in result.notes:
        print(f"  note: {note}")
    for m in result.models:
        print(f"  {m['name']} {m['version']}: {m['notice']}")
    return 0

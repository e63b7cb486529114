"""`cmr landmarks`: RV insertion / LV centre points per slice; with a mask, AHA segments and statistics.

Arguments and wiring only: the computation is :func:`cmrlib.landmarks.pipeline.process_input`,
the files :mod:`cmrlib.landmarks.outputs`.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..aha import LEVELS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", help="a DICOM / study folder (its short-axis T1 maps and LGE series) or one image "
                                       "file (NRRD / NIfTI / MHA: a slice or a short-axis stack) (read only)")
    parser.add_argument("--out", required=True, help="output folder (outside the input)")
    parser.add_argument("--mask", help="label map (NRRD / NIfTI) on or overlapping the image grid: 1 myocardium, "
                                       "2 blood pool, 3 scar (a binary mask counts as myocardium): AHA segments, "
                                       "segments.csv and, for T1 maps, the bull's-eye")
    parser.add_argument("--level", choices=LEVELS, help="AHA level of every slice (for a single slice; default: "
                                                        "thirds of the stack, or the level the description names)")
    parser.add_argument("--model", default=None, help="installed landmark model (default landmarks-compact)")
    parser.add_argument("--presence-threshold", type=float, default=None,
                        help="LV-presence gate: slices under this p get no landmarks (default: the gate's fitted "
                             "threshold, which keeps 98 %% of validation LV images)")
    parser.add_argument("--no-presence-gate", action="store_true",
                        help="do not run the LV-presence gate (only the stages' agreement refuses slices)")


def run(args: argparse.Namespace) -> int:
    from ..atomic import check_output_folder, staged_folder
    from ..progress import make_progress
    from ..errors import InputError
    from .pipeline import MODEL_NAME, PRESENCE_MODEL, process_input
    source, out = Path(args.folder), Path(args.out)
    if args.presence_threshold is not None and not 0.0 <= args.presence_threshold <= 1.0:
        raise InputError(f"--presence-threshold must lie in 0–1; got {args.presence_threshold}")
    check_output_folder(source, out)  # inside the input, or not writable: refused before any work
    with staged_folder(out) as stage:
        results = process_input(source, stage, mask_path=args.mask, level=args.level, device=args.device,
                                progress=make_progress(args), model_name=args.model or MODEL_NAME,
                                presence_model=None if args.no_presence_gate else PRESENCE_MODEL,
                                presence_threshold=args.presence_threshold)
    for r in results:
        r["out"] = str(out / Path(r["out"]).relative_to(stage))
        segs = (f", {sum(1 for s in r['segment_stats'] if s['n_pixels'])} AHA segments" if r["segments"] else "")
        print(f"{r['series']}: landmarks on {r['n_with_landmarks']}/{r['n_slices']} slice(s){segs}, "
              f"{r['seconds']:.2f} s -> {r['out']}")
        for note in r["notes"]:
            print(f"  note: {note}")
    return 0

"""`cmr segment`: QCD myocardium / blood-pool segmentation with a predicted Dice and QC per slice.

Arguments and wiring only: the computation is :func:`cmrlib.qcd.pipeline.process_input`, the
files :mod:`cmrlib.qcd.outputs`.
"""
from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", help="a DICOM / study folder (its short-axis LGE, VNE and T1-map series) or one "
                                       "image file (NRRD / NIfTI / MHA: a slice or a short-axis stack) (read only)")
    parser.add_argument("--out", required=True, help="output folder (outside the input)")
    parser.add_argument("--threshold", type=float, default=None,
                        help="QC threshold on the predicted Dice (default: the model's, 0.7)")
    parser.add_argument("--frame", type=int, default=None, help="frame of a sequence image (cine phase) to segment")
    parser.add_argument("--model", default=None, help="installed QCD model (default qcd-compact)")


def run(args: argparse.Namespace) -> int:
    from ..atomic import check_output_folder, staged_folder
    from ..errors import InputError
    from ..progress import make_progress
    from .pipeline import MODEL_NAME, process_input
    source, out = Path(args.folder), Path(args.out)
    if args.threshold is not None and not 0.0 < args.threshold < 1.0:
        raise InputError(f"--threshold must lie between 0 and 1; got {args.threshold}")
    check_output_folder(source, out)  # inside the input, or not writable: refused before any work
    with staged_folder(out) as stage:
        results = process_input(source, stage, threshold=args.threshold, frame=args.frame, device=args.device,
                                progress=make_progress(args), model_name=args.model or MODEL_NAME)
    for r in results:
        r["out"] = str(out / Path(r["out"]).relative_to(stage))
        failed = r["failed_slices"]
        print(f"{r['series']}: {r['n_slices']} slice(s), mean predicted Dice {r['mean_predicted_dice']:.2f}, "
              + (f"QC failed on slice(s) {', '.join(str(k + 1) for k in failed)}" if failed else "every slice passed QC")
              + f", {r['seconds']:.2f} s -> {r['out']}")
        for note in r["notes"]:
            print(f"  note: {note}")
    return 0

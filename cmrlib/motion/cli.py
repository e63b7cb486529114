"""`cmr motion`: T1 / R² maps of an IRW series with MOCOnet, classical or no motion correction.

Arguments and wiring only: the computation is :func:`cmrlib.motion.pipeline.process_input`,
the files :mod:`cmrlib.motion.outputs`.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import METHODS

MYOCARDIUM_LABEL = 1  # SlicerCMR label table: 1 myocardium


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", help="folder holding one IRW series, a study folder, or an IRW sequence "
                                       "file (.nrrd/.mha with InversionTime per frame, as `cmr run` writes) (read only)")
    parser.add_argument("--out", required=True, help="output folder (outside the input)")
    parser.add_argument("--method", choices=METHODS, default=None,
                        help="motion correction before fitting: moconet (phantom-trained weights), classical or none "
                             "(default: moconet when its weights are installed, else classical)")
    parser.add_argument("--mask", help="myocardium mask (NRRD/NIfTI) for the myocardial T1 / R² summary; "
                                       "label --mask-label, or any non-zero voxel of a binary mask")
    parser.add_argument("--mask-label", type=int, default=MYOCARDIUM_LABEL, help="myocardium label in --mask (default 1)")
    parser.add_argument("--series", type=int, help="SeriesNumber of the IRW series when the folder has several")


def run(args: argparse.Namespace) -> int:
    from ..atomic import check_output_folder, staged_folder
    from ..progress import make_progress
    from .pipeline import default_method, process_input
    source, out = Path(args.folder), Path(args.out)
    check_output_folder(source, out)  # inside the input, or not writable: refused before any work
    method = args.method or default_method()
    if args.method is None and method != "moconet":
        print("note: MOCOnet weights are not installed (cmr models list); correcting motion with the "
              "classical registration instead (tens of seconds per series)", file=sys.stderr)
    with staged_folder(out) as stage:  # a failure half-way leaves nothing that looks complete
        results = process_input(source, stage, method, mask_path=args.mask,
                                mask_label=args.mask_label, series_number=args.series, device=args.device,
                                progress=make_progress(args))
    for r in results:
        r["out"] = str(out / Path(r["out"]).relative_to(stage))
        myo = (f"myocardial T1 {r['t1_myocardium_ms']:.0f} ms, mean R² {r['r2_myocardium_mean']:.3f}"
               if r["t1_myocardium_ms"] is not None else "no myocardium mask: no myocardial summary")
        print(f"{r['series']}: {r['method']}, {r['n_frames']} frames, {myo}, {r['seconds']:.2f} s -> {r['out']}")
        for note in r["notes"]:
            print(f"  note: {note}")
    return 0

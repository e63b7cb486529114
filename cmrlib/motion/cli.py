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
    parser.add_argument("--all-samples", action="store_true",
                        help="ShMOLLI: fit all 7 samples instead of the conditional reconstruction (5, 6 or 7 "
                             "samples per pixel by T1 / R-R; long T1 then reads low)")


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
                                progress=make_progress(args), all_samples=args.all_samples)
    for r in results:
        r["out"] = str(out / Path(r["out"]).relative_to(stage))
        myo = (f"myocardial T1 {r['t1_myocardium_ms']:.0f} ms, mean R² {r['r2_myocardium_mean']:.3f}"
               if r["t1_myocardium_ms"] is not None else "no myocardium mask: no myocardial summary")
        hr = f", {r['heart_rate_bpm']:.0f} bpm" if r.get("heart_rate_bpm") else ""
        print(f"{r['series']}: {r['method']}, {r['n_frames']} frames{hr}, {myo}, {r['seconds']:.2f} s -> {r['out']}")
        for m in r.get("scanner_t1_maps", []):
            if m.get("median_difference_ms") is not None:
                print(f"  scanner map {m['series']!r}: median difference {m['median_difference_ms']:+.0f} ms "
                      f"({m['median_difference_percent']:+.1f} %, {m['region']})")
        for warning in r.get("warnings", []):
            print(f"  warning: {warning}", file=sys.stderr)
        for note in r["notes"]:
            print(f"  note: {note}")
    return 0

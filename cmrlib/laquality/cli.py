"""`cmr la-quality INPUT --out OUT` (also `cmr quality la`): diagnostic quality of one left-atrial
3-D LGE volume.

Arguments and wiring only: the computation is :func:`cmrlib.laquality.pipeline.assess_volume`, the
files :mod:`cmrlib.laquality.outputs`.
"""
from __future__ import annotations

import argparse
from pathlib import Path


def _probability(text: str) -> float:
    v = float(text)
    if not 0.0 < v < 1.0:
        raise argparse.ArgumentTypeError(f"a probability between 0 and 1; got {text}")
    return v


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="axial 3-D LA LGE: an image file (NRRD / NIfTI / MHA) or a DICOM folder holding "
                                      "the series (read only)")
    parser.add_argument("--out", required=True, help="output folder (outside the input)")
    parser.add_argument("--threshold", type=_probability, default=None,
                        help="t: a slice contains LA when any pixel's probability exceeds it (default: the detector's "
                             "value fitted on validation scans)")
    parser.add_argument("--saliency-slice", type=int, default=None,
                        help="slice (from 1) shown in saliency.png (default: the used slice with the largest atrium)")
    parser.add_argument("--model", default=None, help="installed LA quality model (default la-quality-compact)")
    parser.add_argument("--detector", default=None, help="installed LA detector (default la-detector-compact)")
    parser.add_argument("--force", action="store_true", help="assess a DICOM series not classified as LA 3-D LGE")


def run(args: argparse.Namespace) -> int:
    from ..atomic import check_output_folder, staged_folder
    from ..progress import make_progress
    from .outputs import write_result
    from .pipeline import DETECTOR_MODEL, QUALITY_MODEL, assess_volume, load_volume
    out = Path(args.out)
    check_output_folder(Path(args.input), out)
    image, desc, notes = load_volume(args.input, force=args.force)
    with staged_folder(out) as stage:
        result = assess_volume(image, threshold=args.threshold, series=desc, notes=notes,
                               quality_model=args.model or QUALITY_MODEL, detector_model=args.detector or DETECTOR_MODEL,
                               saliency_slice=None if args.saliency_slice is None else args.saliency_slice - 1,
                               device=args.device, progress=make_progress(args))
        write_result(result, stage)
    print(f"{desc}: {result.sentence} ({result.seconds:.2f} s) -> {out}")
    for k, a in result.attributes.items():
        print(f"  {k.replace('_', ' ')}: p(diagnostic) {a['probability']:.2f} -> "
              f"{'diagnostic' if a['diagnostic'] else 'non-diagnostic'} ({a['votes']} of {len(result.slices_used)} slices)")
    if result.slices_used:
        print(f"  slices used: {', '.join(str(k + 1) for k in result.slices_used)}")
    for note in result.notes:
        print(f"  note: {note}")
    for m in result.models:
        print(f"  {m['name']} {m['version']}: {m['notice']}")
    return 0

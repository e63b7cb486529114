"""`cmr stress`: stress-to-rest T1 map registration and dT1 reactivity maps.

Arguments and wiring only: the computation is :func:`cmrlib.stress.pipeline.stress_t1`, the
files :mod:`cmrlib.stress.outputs`.
"""
from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rest", required=True, help="rest T1 map: an image file (NRRD / NIfTI / MHA, ms) or a "
                                                     "DICOM folder holding one T1-map series, or one MOLLI / ShMOLLI "
                                                     "IRW series (fitted here, without motion correction) (read only)")
    parser.add_argument("--stress", required=True, help="stress T1 map of the same slice position(s), as --rest")
    parser.add_argument("--out", required=True, help="output folder (outside the inputs)")
    parser.add_argument("--mask", help="myocardium of the rest map: label map (1 myocardium, 2 blood pool) or "
                                       "Slicer .seg.nrrd, e.g. `cmr segment` labels.nrrd; required")
    parser.add_argument("--stress-mask", help="myocardium of the stress map (for Dice before / after, and --reverse)")
    parser.add_argument("--segments", help="AHA segment labels 1–17 on the rest grid (e.g. `cmr landmarks` "
                                           "aha_segments.nrrd): per-segment dT1 and the bull's-eye")
    parser.add_argument("--method", choices=("swin", "unet", "classical", "none"), default=None,
                        help="registration (default: swin when its weights are installed, else classical)")
    parser.add_argument("--model", default=None, help="installed registration model (default dt1-swin-compact / "
                                                      "dt1-unet-compact)")
    parser.add_argument("--reverse", action="store_true", help="reversed pair: register rest to stress (needs "
                                                               "--stress-mask); a simulated negative response")
    parser.add_argument("--force", action="store_true", help="register maps whose slice positions differ by more "
                                                             "than half a slice thickness")


def _load_map(path: Path, what: str):
    from ..errors import InputError
    from ..image import Image
    from ..io import image_or_scan, load_series
    found = image_or_scan(path, f"--{what}")
    if isinstance(found, Image):
        return found
    scan = found
    maps = [s for s in scan.series if s.kind == "t1map"]
    irws = [s for s in scan.series if s.kind == "irw"]
    if len(maps) == 1:
        return load_series(maps[0])
    if not maps and len(irws) == 1:  # our own map: the shared MOLLI / ShMOLLI fit of the IRW frames
        from .pipeline import t1_map_from_irw
        return t1_map_from_irw(load_series(irws[0]))
    found = ", ".join(f"{s.description!r} ({s.kind})" for s in scan.series) or "nothing"
    raise InputError(f"--{what} {path}: needs exactly one T1-map series (or one IRW series to fit), found {found}")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ..atomic import check_output_folder, staged_folder
    from ..errors import InputError
    from ..image import Image
    from ..io import label_map_image, read_image
    from ..progress import make_progress
    from .outputs import write_result
    from .pipeline import stress_t1
    rest_path, stress_path, out = Path(args.rest), Path(args.stress), Path(args.out)
    for p in (rest_path, stress_path):
        check_output_folder(p, out)  # a DICOM folder is never written into; beside a file is fine
    rest, stress = _load_map(rest_path, "rest"), _load_map(stress_path, "stress")
    if args.mask is None:
        raise InputError("dT1 is averaged inside the rest map's myocardium: give --mask (a label map or .seg.nrrd, "
                         "e.g. from `cmr segment`)")
    rest_mask = label_map_image(args.mask, rest)
    stress_mask = label_map_image(args.stress_mask, stress) if args.stress_mask else None
    segments = None
    if args.segments:
        seg_img = read_image(args.segments)
        if seg_img.spatial_shape != rest.spatial_shape:
            raise InputError(f"--segments {args.segments}: {seg_img.spatial_shape} is not the rest map's grid "
                             f"{rest.spatial_shape}")
        segments = Image(np.asarray(seg_img.array).astype(np.int16), rest.spacing, rest.origin, rest.direction)
    with staged_folder(out) as stage:
        result = stress_t1(rest, stress, rest_mask=rest_mask, stress_mask=stress_mask, segments=segments,
                           method=args.method, model_name=args.model, reverse=args.reverse, force=args.force,
                           device=args.device, progress=make_progress(args))
        summary = write_result(result, stage)
    vals = ", ".join("–" if v is None else f"{v:+.2f}" for v in summary["dt1_slice_percent"])
    dice = (f", myocardial Dice {summary['dice_before']:.2f} → {summary['dice_after']:.2f}"
            if summary["dice_before"] is not None else "")
    print(f"dT1 per slice: {vals} % ({result.method}{dice}), {result.seconds:.2f} s -> {out}")
    for note in result.notes:
        print(f"  note: {note}")
    if result.model_notice:
        print(f"  {result.model_notice}")
    return 0


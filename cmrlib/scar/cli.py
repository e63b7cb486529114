"""`cmr scar`: %scar, myocardial and scar volume of a short-axis LGE stack.

Arguments and wiring only: the computation is :func:`cmrlib.scar.pipeline.quantify_scar`, the
files :mod:`cmrlib.scar.outputs`.
"""
from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .methods import METHODS  # not .pipeline: building the parser imports no torch
    parser.add_argument("--lge", required=True, help="short-axis LGE stack: a DICOM folder holding one LGE series "
                                                    "(PSIR preferred over magnitude) or an image file (read only)")
    parser.add_argument("--cine", help="the cine stack of the same study: a DICOM folder holding one cine series, or "
                                       "an image file with frame TriggerTimes (needed by --method fusion)")
    parser.add_argument("--out", required=True, help="output folder (outside the inputs)")
    parser.add_argument("--method", choices=METHODS, default=None,
                        help="fusion (LGE + cine U-Net), lge-only (U-Net), nsd2 / nsd3 / nsd5 (n SD above remote "
                             "myocardium) or fwhm (default: fusion with a cine, else lge-only, when installed)")
    parser.add_argument("--model", help="an installed scar model to use for the network method (e.g. one trained "
                                        "with `cmr train scar --data`); default scar-fusion-compact / "
                                        "scar-lge-compact")
    parser.add_argument("--mask", help="myocardium on the LGE grid for the classical methods: label map (1 myocardium, "
                                       "3 scar) or Slicer .seg.nrrd, e.g. `cmr segment` labels.nrrd")
    parser.add_argument("--remote", help="remote (normal) myocardium region for n-SD: a label map, nonzero = remote "
                                         "(default: the darkest myocardial sector of each slice)")
    parser.add_argument("--segments", help="AHA segment labels 1–17 on the LGE grid (e.g. `cmr landmarks` "
                                           "aha_segments.nrrd): %scar per segment and the bull's-eye")
    parser.add_argument("--centres", help="JSON of LV centres overriding the detector: {\"lge\": {\"SLICE\": [x, y, z]}, "
                                          "\"cine\": {\"SLICE\": [x, y, z]}}, LPS mm, slices counted from 1 (LGE "
                                          "slice numbers for both)")
    parser.add_argument("--dilate-px", type=int, choices=(0, 1, 2), default=None,
                        help="final myocardial dilation of the U-Nets' post-processing, pixels (default: the model's "
                             "calibrated value; the card: 1)")
    parser.add_argument("--force", action="store_true", help="match a cine of another study / frame of reference, "
                                                             "slices further apart than half a slice thickness, or "
                                                             "quantify a one-slice stack")


def _load(path: Path, what: str, kinds: tuple[str, ...]):
    from ..errors import InputError
    from ..image import Image
    from ..io import image_or_scan, load_series
    scan = image_or_scan(path, f"--{what}")
    if isinstance(scan, Image):
        return scan
    for kind in kinds:  # in order of preference
        found = [s for s in scan.series if s.kind == kind]
        if len(found) == 1:
            return load_series(found[0])
        if len(found) > 1:
            names = ", ".join(repr(s.description) for s in found)
            raise InputError(f"--{what} {path}: {len(found)} {kind} series ({names}); give the folder of one")
    seen = ", ".join(f"{s.description!r} ({s.kind})" for s in scan.series) or "nothing"
    raise InputError(f"--{what} {path}: no {' or '.join(kinds)} series; found {seen}")


def _centres(path: str, lge, cine):
    """--centres JSON (LPS mm, LGE slice numbers from 1) → pixels of each image."""
    import json

    import numpy as np

    from ..errors import InputError
    from .matching import lps_to_px
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"--centres {path}: not a readable JSON file ({exc})") from exc
    out = {}
    for key, img in (("lge", lge), ("cine", cine)):
        pts = data.get(key) or {}
        if pts and img is None:
            raise InputError(f"--centres {path}: cine centres given without --cine")
        out[key] = {}
        for slice_no, p in pts.items():
            k = int(slice_no) - 1
            if not 0 <= k < lge.spatial_shape[0] or len(p) != 3:
                raise InputError(f"--centres {path}: {key} slice {slice_no} must be an LGE slice 1–"
                                 f"{lge.spatial_shape[0]} with an [x, y, z] LPS point")
            out[key][k] = lps_to_px(img, np.asarray(p, float), k)
    return out


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ..atomic import check_output_folder, staged_folder
    from ..errors import InputError
    from ..io import label_map_image, read_image
    from ..io.masks import load_label_map
    from ..progress import make_progress
    from .outputs import write_result
    from .pipeline import METHOD_TITLES, quantify_scar
    out = Path(args.out)
    lge_path = Path(args.lge)
    check_output_folder(lge_path, out)
    if args.cine:
        check_output_folder(Path(args.cine), out)
    lge = _load(lge_path, "lge", ("lge_psir", "lge_magnitude"))
    cine = _load(Path(args.cine), "cine", ("cine",)) if args.cine else None
    mask = label_map_image(args.mask, lge) if args.mask else None
    remote = load_label_map(args.remote, lge) > 0 if args.remote else None
    segments = None
    if args.segments:
        seg = read_image(args.segments)
        if seg.spatial_shape != lge.spatial_shape:
            raise InputError(f"--segments {args.segments}: {seg.spatial_shape} is not the LGE grid {lge.spatial_shape}")
        segments = np.asarray(seg.array).astype(np.int16)
    centres = _centres(args.centres, lge, cine) if args.centres else None
    with staged_folder(out) as stage:
        result = quantify_scar(lge, cine, method=args.method, mask=mask, mask_source="--mask", segments=segments,
                               centres=centres, remote=remote, force=args.force, device=args.device,
                               progress=make_progress(args), model_name=args.model, dilate_px=args.dilate_px)
        summary = write_result(result, stage)
    pct = summary["percent_scar"]
    print(f"%scar {'–' if pct is None else f'{pct:.1f}'} % ({METHOD_TITLES[result.method]}): myocardium "
          f"{summary['myocardial_volume_ml'] or 0:.1f} mL, scar {summary['scar_volume_ml'] or 0:.1f} mL, scar "
          f"{'present' if summary['scar_present'] else 'absent'}; {summary['slices_segmented']}/"
          f"{summary['slices_total']} slices, {result.seconds:.2f} s -> {out}")
    for m in summary["methods"]:
        if m["method"] != result.method:
            p = m["percent_scar"]
            print(f"  {m['title']}: %scar {'–' if p is None else f'{p:.1f}'} % (myocardium: {m['myocardium']})")
    for note in result.notes:
        print(f"  note: {note}")
    if result.model_notice:
        print(f"  {result.model_notice}")
    return 0

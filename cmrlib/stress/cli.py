"""`cmr stress`: stress-to-rest T1 map registration and dT1 reactivity maps.

Arguments and wiring only: the computation is :func:`cmrlib.stress.pipeline.stress_t1`, the
files :mod:`cmrlib.stress.outputs`. ``--pairs TABLE`` runs a cohort's pairs in one process, so
Python, torch and the model load once (about 5 s on 2 CPU cores) instead of once per pair.
"""
from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rest", help="rest T1 map: an image file (NRRD / NIfTI / MHA, ms) or a "
                                                     "DICOM folder holding one T1-map series, or one MOLLI / ShMOLLI "
                                                     "IRW series (fitted here, without motion correction) (read only)")
    parser.add_argument("--stress", help="stress T1 map of the same slice position(s), as --rest")
    parser.add_argument("--pairs", help="a CSV table of pairs to run in one process instead of --rest / --stress / "
                                        "--mask: columns name, rest, stress, mask and optional stress_mask, segments "
                                        "(paths relative to the table); each pair's outputs go to OUT/NAME, a summary "
                                        "to OUT/pairs.csv; a pair that fails is reported there and the others go on")
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


PAIR_COLUMNS = ("name", "rest", "stress", "mask")
OPTIONAL_PAIR_COLUMNS = ("stress_mask", "segments")
PAIRS_SUMMARY = "pairs.csv"
SUMMARY_FIELDS = ("name", "status", "method", "dt1_slice_percent", "dice_before", "dice_after", "seconds", "message")


def _one_pair(rest_path: Path, stress_path: Path, mask_path, stress_mask_path, segments_path, out: Path, args,
              progress=None):
    """One rest / stress pair from files to every output in ``out`` (staged: all or nothing)."""
    import numpy as np

    from ..atomic import check_output_folder, staged_folder
    from ..errors import InputError
    from ..image import Image
    from ..io import label_map_image, read_image
    from .outputs import write_result
    from .pipeline import stress_t1
    for p in (rest_path, stress_path):
        check_output_folder(p, out)  # a DICOM folder is never written into; beside a file is fine
    rest, stress = _load_map(rest_path, "rest"), _load_map(stress_path, "stress")
    if mask_path is None:
        raise InputError("dT1 is averaged inside the rest map's myocardium: give --mask (a label map or .seg.nrrd, "
                         "e.g. from `cmr segment`)")
    rest_mask = label_map_image(mask_path, rest)
    stress_mask = label_map_image(stress_mask_path, stress) if stress_mask_path else None
    segments = None
    if segments_path:
        seg_img = read_image(segments_path)
        if seg_img.spatial_shape != rest.spatial_shape:
            raise InputError(f"--segments {segments_path}: {seg_img.spatial_shape} is not the rest map's grid "
                             f"{rest.spatial_shape}")
        segments = Image(np.asarray(seg_img.array).astype(np.int16), rest.spacing, rest.origin, rest.direction)
    with staged_folder(out) as stage:
        result = stress_t1(rest, stress, rest_mask=rest_mask, stress_mask=stress_mask, segments=segments,
                           method=args.method, model_name=args.model, reverse=args.reverse, force=args.force,
                           device=args.device, progress=progress)
        summary = write_result(result, stage)
    return result, summary


def read_pairs(table: Path) -> list[dict[str, object]]:
    """The rows of a ``--pairs`` table, every path resolved against the table's folder and checked
    to exist, before anything is computed (a typo in row 40 must not cost 39 pairs' work)."""
    import csv
    import re

    from ..errors import InputError
    if not table.is_file():
        raise InputError(f"--pairs {table}: no such file")
    try:
        with open(table, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in reader.fieldnames or []]
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"--pairs {table}: not a readable CSV table ({exc})") from None
    missing = [c for c in PAIR_COLUMNS if c not in header]
    if missing:
        raise InputError(f"--pairs {table}: missing column(s) {', '.join(missing)} (needs {', '.join(PAIR_COLUMNS)}; "
                         f"optional {', '.join(OPTIONAL_PAIR_COLUMNS)})")
    if not rows:
        raise InputError(f"--pairs {table}: no pairs in the table")
    out, seen = [], set()
    for line, row in enumerate(rows, start=2):
        row = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
        name = row["name"]
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
            raise InputError(f"--pairs {table} line {line}: name {name!r} must be letters, digits, '.', '_' or '-' "
                             "(it becomes the pair's output folder)")
        if name in seen:
            raise InputError(f"--pairs {table} line {line}: name {name!r} appears twice")
        seen.add(name)
        pair: dict[str, object] = {"name": name}
        for col in (*PAIR_COLUMNS[1:], *OPTIONAL_PAIR_COLUMNS):
            value = row.get(col, "")
            if not value:
                if col in PAIR_COLUMNS:
                    raise InputError(f"--pairs {table} line {line}: {name}: empty {col}")
                pair[col] = None
                continue
            path = Path(value) if Path(value).is_absolute() else table.parent / value
            if not path.exists():
                raise InputError(f"--pairs {table} line {line}: {name}: {col} {value} does not exist")
            pair[col] = path
        out.append(pair)
    return out


def _run_pairs(args: argparse.Namespace) -> int:
    """Every pair of the table into OUT/NAME; OUT/pairs.csv says which ran and which failed."""
    import csv
    import io
    import time

    from ..atomic import check_output_folder, write_text_atomic
    from ..errors import CMRError, InputError
    from ..progress import make_progress, report
    if args.rest or args.stress or args.mask or args.stress_mask or args.segments:
        raise InputError("--pairs takes the maps and masks from its table: leave out --rest, --stress, --mask, "
                         "--stress-mask and --segments")
    table, out = Path(args.pairs), Path(args.out)
    pairs = read_pairs(table)
    for pair in pairs:
        for col in ("rest", "stress"):
            check_output_folder(pair[col], out)
    check_output_folder(None, out)
    progress = make_progress(args)
    rows, notices, t0 = [], set(), time.perf_counter()
    for i, pair in enumerate(pairs):
        report(progress, "pairs", i, len(pairs), f"pair {pair['name']} ({i + 1}/{len(pairs)})")
        t = time.perf_counter()
        try:
            result, summary = _one_pair(pair["rest"], pair["stress"], pair["mask"], pair["stress_mask"],
                                        pair["segments"], out / str(pair["name"]), args)
        except CMRError as exc:  # the user's data: say which pair and go on with the others
            rows.append({"name": pair["name"], "status": "failed", "seconds": round(time.perf_counter() - t, 3),
                         "message": str(exc)})
            continue
        if result.model_notice:
            notices.add(result.model_notice)
        rows.append({"name": pair["name"], "status": "done", "method": result.method,
                     "dt1_slice_percent": " ".join("" if v is None else f"{v:.3f}"
                                                   for v in summary["dt1_slice_percent"]),
                     "dice_before": summary["dice_before"], "dice_after": summary["dice_after"],
                     "seconds": round(time.perf_counter() - t, 3), "message": "; ".join(result.notes)})
    report(progress, "pairs", len(pairs), len(pairs), "done")
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=SUMMARY_FIELDS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    write_text_atomic(out / PAIRS_SUMMARY, buf.getvalue())
    failed = [r for r in rows if r["status"] == "failed"]
    print(f"{len(rows) - len(failed)} of {len(rows)} pairs done in {time.perf_counter() - t0:.1f} s "
          f"-> {out / PAIRS_SUMMARY}")
    for r in failed:
        print(f"  failed: {r['name']}: {r['message']}")
    for notice in sorted(notices):
        print(f"  {notice}")
    return 1 if failed else 0


def run(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..progress import make_progress
    if args.pairs:
        return _run_pairs(args)
    if not args.rest or not args.stress:
        raise InputError("give --rest and --stress (or a --pairs table)")
    out = Path(args.out)
    result, summary = _one_pair(Path(args.rest), Path(args.stress), args.mask, args.stress_mask, args.segments,
                                out, args, progress=make_progress(args))
    vals = ", ".join("–" if v is None else f"{v:+.2f}" for v in summary["dt1_slice_percent"])
    dice = (f", myocardial Dice {summary['dice_before']:.2f} → {summary['dice_after']:.2f}"
            if summary["dice_before"] is not None else "")
    print(f"dT1 per slice: {vals} % ({result.method}{dice}), {result.seconds:.2f} s -> {out}")
    for note in result.notes:
        print(f"  note: {note}")
    if result.model_notice:
        print(f"  {result.model_notice}")
    return 0

"""`cmr label create | raters | status | next | answer | cut | export | backup | serve`: labelling pools.

Arguments and wiring only: the pool is :mod:`cmrlib.labelling.pool`, the inputs
:mod:`.sources`, the rater's loop :mod:`.tasks` (scoring :mod:`.vas`, ranking :mod:`.ranking`),
the export :mod:`.outputs`, the web page :mod:`.web`.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def _add_pool(p: argparse.ArgumentParser) -> None:
    p.add_argument("pool", help="the labelling pool (one SQLite file, POOL.sqlite)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..contract import task_parsers
    task = task_parsers(parser, "label_command")
    p = task("create", "make a pool from DICOM folders or image files: every slice of each short-axis stack, "
                       "shuffled across subjects, anonymised")
    p.add_argument("pool", help="new SQLite file (an existing file is never overwritten)")
    p.add_argument("inputs", nargs="+", metavar="DIR", help="DICOM folders (short-axis LGE series are taken) or "
                                                            "NRRD / NIfTI / MHA stacks (read only)")
    p.add_argument("--mode", choices=("vas", "rank"), default="vas",
                   help="vas: visual-analogue LGE-likelihood scoring; rank: multiple-image ranking for the slice "
                        "level (default vas)")
    p.add_argument("--raters", default="", help="comma-separated rater names to register (more with `raters --add`)")
    p.add_argument("--seed", type=int, default=None, help="seed of the shuffle (default random)")
    p.add_argument("--any-series", action="store_true",
                   help="also take single-frame series the DICOM classification calls other than short-axis LGE "
                        "(each with a warning)")
    p.add_argument("--key-file", default=None,
                   help="write the link from each source to its opaque keys here (CSV; keep it private: it is "
                        "the only way back from the pool to the patients)")
    p = task("raters", "list the raters of a pool, or register new ones")
    _add_pool(p)
    p.add_argument("--add", nargs="+", default=[], metavar="NAME", help="register these raters")
    p.add_argument("--tokens", action="store_true", help="also print the raters' access tokens")
    p = task("status", "images, raters, answers, coverage and agreement so far")
    _add_pool(p)
    p.add_argument("--json", action="store_true", help="print the status as JSON")
    p = task("next", "a rater's next task: an image to score, a batch to rank, an image to classify, or done")
    _add_pool(p)
    p.add_argument("--rater", required=True)
    p.add_argument("--png", default=None, metavar="DIR", help="also write the task's images as PNG files here")
    p.add_argument("--json", action="store_true", help="print the task as JSON")
    p = task("answer", "record a rater's answer (committed at once)")
    _add_pool(p)
    p.add_argument("--rater", required=True)
    p.add_argument("--image", default=None, help="the image key scored or classified")
    p.add_argument("--score", default=None, help="LGE likelihood 0 (none) … 100 (certain)")
    p.add_argument("--batch", type=int, default=None, help="the batch number ranked")
    p.add_argument("--order", default=None, help="the batch's image keys, comma-separated, most basal first")
    p.add_argument("--class", dest="slice_class", default=None, help="too basal | LV | too apical")
    p = task("cut", "set the ranking's cut points by hand on the current ordering (or --clear them)")
    _add_pool(p)
    p.add_argument("--basal", type=int, default=None, help="number of too-basal images at the basal end")
    p.add_argument("--apical", type=int, default=None, help="number of too-apical images at the apical end")
    p.add_argument("--clear", action="store_true", help="forget hand-set cut points (fit them to class answers)")
    p = task("export", "write a training folder (images + lge_scores.csv or slice_levels.csv) for "
                       "`cmr train lge-certainty | slice-level --data`")
    _add_pool(p)
    p.add_argument("--out", required=True, help="the training folder to write: images/, the CSV(s), summary.json")
    p = task("backup", "copy the pool to POOL.bak now (after an integrity check)")
    _add_pool(p)
    p = task("serve", "serve the labelling page (slider, 8-tile ranking) to raters' browsers")
    _add_pool(p)
    p.add_argument("--port", type=int, default=8765, help="TCP port (default 8765; 0 picks a free one)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only); any other address serves other "
                        "machines and needs each rater's access token")
    p.add_argument("--tokens", action="store_true", help="need the raters' tokens on 127.0.0.1 too")
    p.add_argument("--max-seconds", type=float, default=None, help="stop after this long (default: until Ctrl-C)")


# ---- printing -----------------------------------------------------------------------------------
def _print_task(task, pool, png: str | None) -> None:
    print(f"{task.rater}: {task.kind}" + (f" batch {task.batch}" + (" (resumed)" if task.resumed else "")
                                          if task.batch is not None else "") + f" — {task.message}")
    for key in task.images:
        print(f"  {key}")
    if png and task.images:
        from .outputs import write_png
        folder = Path(png)
        folder.mkdir(parents=True, exist_ok=True)
        for key in task.images:
            write_png(pool, key, folder / f"{key}.png")
        print(f"  images as PNG in {folder}")
    if task.kind == "score":
        print(f"  answer: cmr label answer {pool.path} --rater {task.rater!r} --image {task.images[0]} --score S")
    elif task.kind == "rank":
        print(f"  answer: cmr label answer {pool.path} --rater {task.rater!r} --batch {task.batch} --order "
              "K1,K2,… (most basal first)")
    elif task.kind == "classify":
        print(f"  answer: cmr label answer {pool.path} --rater {task.rater!r} --image {task.images[0]} "
              "--class 'too basal|LV|too apical'")


# ---- run ----------------------------------------------------------------------------------------
def _create(args) -> int:
    from ..atomic import write_text_atomic
    from ..errors import InputError
    from ..progress import make_progress
    from .pool import MODE_NAMES, Pool
    from .sources import read_sources
    pool_path = Path(args.pool)
    if pool_path.exists():
        raise InputError(f"{pool_path} exists: a pool is never overwritten; choose another file name")
    if args.key_file and Path(args.key_file).exists():
        raise InputError(f"--key-file {args.key_file} exists; it is never overwritten")
    raters = [r for r in (x.strip() for x in args.raters.split(",")) if r]
    found, notes = read_sources(args.inputs, any_kind=args.any_series, progress=make_progress(args))
    pool, keys = Pool.create(pool_path, [f.stack for f in found], args.mode, raters=raters, seed=args.seed)
    with pool:
        if args.key_file:
            from .outputs import csv_text
            rows = [{"source": f.source, "description": f.description, "kind": f.kind, "subject": subject,
                     "stack": stack, "slices": f.stack.array.shape[0]} for f, (subject, stack) in zip(found, keys)]
            write_text_atomic(args.key_file, csv_text(list(rows[0]), rows))
        n = len(pool.images())
        print(f"{pool_path}: {n} images from {len(found)} stack(s) ({len({k[0] for k in keys})} subject(s)), "
              f"{MODE_NAMES[args.mode]} (mode {args.mode}); raters: {', '.join(raters) or 'none yet'}")
    for note in notes:
        print(f"  {note}")
    return 0


def run(args: argparse.Namespace) -> int:
    from .pool import Pool
    if args.label_command == "create":
        return _create(args)
    from ..errors import InputError
    pool = Pool(args.pool)
    with pool:
        if args.label_command == "raters":
            new = pool.add_raters(args.add) if args.add else {}
            for name, token in pool.raters().items():
                print(f"{name}" + (f"  token {token}" if args.tokens else "") + ("  (new)" if name in new else ""))
            return 0
        if args.label_command == "status":
            from .status import pool_status, status_lines
            s = pool_status(pool)
            print(json.dumps(s, indent=2) if args.json else "\n".join(status_lines(s)))
            return 0
        if args.label_command == "next":
            from .tasks import next_task
            task = next_task(pool, args.rater)
            if args.json:
                print(json.dumps(task.to_dict()))
            else:
                _print_task(task, pool, args.png)
            return 0
        if args.label_command == "answer":
            from .tasks import answer
            order = [k for k in (args.order or "").split(",") if k.strip()] or None
            result = answer(pool, args.rater, image=args.image, score=args.score, batch=args.batch, order=order,
                            slice_class=args.slice_class)
            print(json.dumps(result))
            return 0
        if args.label_command == "cut":
            from . import ranking
            if args.clear:
                ranking.clear_cut_points(pool)
                print(f"{pool.path}: cut points cleared")
                return 0
            if args.basal is None or args.apical is None:
                raise InputError("give --basal N and --apical M (or --clear)")
            cut = ranking.set_cut_points(pool, args.basal, args.apical)
            print(f"{pool.path}: {cut['n_basal']} too basal (rating > {cut['basal_rating']:.1f}), "
                  f"{cut['n_apical']} too apical (rating < {cut['apical_rating']:.1f})")
            return 0
        if args.label_command == "serve":
            from .web import serve
            if not 0 <= args.port <= 65535:
                raise InputError(f"--port must be 0–65535; got {args.port}")
            try:
                serve(pool, args.host, args.port, require_tokens=args.tokens, max_seconds=args.max_seconds)
            except OSError as exc:
                raise InputError(f"cannot serve on {args.host}:{args.port} ({exc.strerror or exc})") from None
            return 0
        if args.label_command == "backup":
            print(f"{pool.path} -> {pool.backup()}")
            return 0
        if args.label_command == "export":
            from ..atomic import check_output_folder, staged_folder
            from .outputs import export
            out = Path(args.out)
            check_output_folder(None, out)
            with staged_folder(out) as stage:
                summary = export(pool, stage)
            print(f"{pool.path}: {summary['exported_images']} images exported -> {out} ({', '.join(summary['files'])})")
            for note in summary["notes"]:
                print(f"  note: {note}")
            return 0
    raise InputError(f"unknown task {args.label_command!r}")

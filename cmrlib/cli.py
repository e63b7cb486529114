"""The `cmr` command: headless access to everything the Slicer modules do.

Exit codes: 0 success; 1 the work failed on bad input (message on stderr, nothing partial
written); 2 usage error or a capability that is not present in this version.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Callable, Sequence

from . import __version__
from .capabilities import capabilities, trainers
from .errors import CMRError, NotAvailableError
from .progress import make_progress

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


# ---- info -----------------------------------------------------------------------------
def _cmd_info(args: argparse.Namespace) -> int:
    from .io import KIND_LABELS, scan_folder
    scan = scan_folder(args.folder, make_progress(args))
    if args.json:
        print(json.dumps(scan.to_dict(), indent=2))
        return EXIT_OK
    print(f"{len(scan.series)} series in {scan.root}")
    for s in scan.series:
        print(f"  {s.summary()}")
        print(f"      kind: {KIND_LABELS[s.kind]} — {s.kind_reason}")
        for p in s.problems:
            print(f"      problem: {p}")
    if scan.skipped:
        print(f"{len(scan.skipped)} file(s) skipped:")
        for k in scan.skipped:
            print(f"  {k.path}: {k.reason}")
    return EXIT_OK


# ---- models ---------------------------------------------------------------------------
def _cmd_models(args: argparse.Namespace) -> int:
    from .models import list_models, model_dirs, verify
    models = list_models()
    if args.action == "list":
        if args.json:
            print(json.dumps([dict(m.to_manifest(), folder=str(m.folder)) for m in models], indent=2))
            return EXIT_OK
        print("model folders searched: " + ", ".join(str(d) for d in model_dirs()))
        if not models:
            print("no models installed")
        for m in models:
            print(f"  {m.name:28s} {m.task:12s} {m.architecture:16s} v{m.version}  {m.folder}")
            print(f"      {m.notice}")
        return EXIT_OK
    failed = 0
    for m in models:
        try:
            verify(m)
            print(f"ok       {m.name}  {m.path}")
        except CMRError as exc:
            failed += 1
            print(f"FAILED   {m.name}: {exc}", file=sys.stderr)
    print(f"{len(models) - failed} of {len(models)} model(s) verified")
    return EXIT_FAILED if failed else EXIT_OK


# ---- run / batch / demo -----------------------------------------------------------------
def _print_run_summary(summary: dict) -> None:
    print(f"study {summary['study']} -> {summary['out']} ({summary['seconds']} s)")
    for line in summary["series"]:
        print(f"  series {line}")
    for row in summary["converted"]:
        print(f"  {'wrote ' + row['file'] if 'file' in row else 'not converted: ' + row['error']}")
    for name, result in summary["steps"].items():
        print(f"  step {name}: {'error: ' + result['error'] if isinstance(result, dict) and 'error' in result else 'done'}")
        for line in (result.get("lines", []) if isinstance(result, dict) else []):
            print(f"    {line}")
    for name in summary["not_yet_present"]:
        print(f"  not yet present: {name}")


def _cmd_run(args: argparse.Namespace) -> int:
    from .study import run_study
    summary = run_study(args.study, args.out, make_progress(args))
    _print_run_summary(summary)
    return EXIT_FAILED if any(isinstance(r, dict) and "error" in r for r in summary["steps"].values()) else EXIT_OK


def _cmd_batch(args: argparse.Namespace) -> int:
    import csv

    from tqdm import tqdm

    from .study import check_output_folder, find_studies, run_study
    studies = find_studies(args.root)
    check_output_folder(args.root, args.out)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for study in tqdm(studies, desc="studies", disable=args.quiet or not sys.stderr.isatty()):
        try:
            s = run_study(study, out / study.name)
            rows.append({"study": study.name, "status": "ok", "series": len(s["series"]), "seconds": s["seconds"],
                         "steps": " ".join(s["steps"]), "message": ""})
        except CMRError as exc:
            rows.append({"study": study.name, "status": "failed", "series": 0, "seconds": 0, "steps": "", "message": str(exc)})
    with open(out / "batch.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    failed = [r for r in rows if r["status"] != "ok"]
    print(f"{len(rows) - len(failed)} of {len(rows)} studies done; summary {out / 'batch.csv'}")
    for r in failed:
        print(f"  failed {r['study']}: {r['message']}", file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    import shutil

    from .study import run_study
    out = Path(args.out)
    from .phantom import extract_bundled_study
    study = out / "study"
    if study.exists():  # a previous demo's extracted copy; outputs beside it are rewritten
        shutil.rmtree(study)
    dicom = extract_bundled_study(study)
    print(f"bundled phantom study extracted to {study} (synthetic data; results of bundled models are "
          f"phantom-trained demonstrations, not for clinical use)")
    summary = run_study(dicom, out / "results", make_progress(args))
    _print_run_summary(summary)
    return EXIT_OK


# ---- train / evaluate ---------------------------------------------------------------------
def _cmd_train_or_eval(args: argparse.Namespace, extra: list[str]) -> int:
    import importlib
    verb = args.command
    if args.model not in trainers():
        raise NotAvailableError(f"cmr {verb}: unknown model {args.model!r}; known: {', '.join(trainers())}")
    module = importlib.import_module(trainers()[args.model])
    adder, runner = ("add_arguments", "run") if verb == "train" else ("add_eval_arguments", "evaluate")
    sub = argparse.ArgumentParser(prog=f"cmr {verb} {args.model}")
    getattr(module, adder)(sub)
    sub_args = sub.parse_args(extra)
    sub_args.quiet, sub_args.progress_lines = args.quiet, args.progress_lines
    return int(getattr(module, runner)(sub_args))


# ---- parser -------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--quiet", action="store_true", help="no progress bars")
    common.add_argument("--progress-lines", action="store_true",
                        help="report progress as 'CMR-PROGRESS {json}' lines on stderr (used by Slicer)")
    common.add_argument("--device", default=None,
                        help="auto | cpu | cuda | mps (default: $CMR_DEVICE or auto)")
    parser = argparse.ArgumentParser(
        prog="cmr", parents=[common],
        description="SlicerCMR: cardiac MRI quality assurance and tissue characterisation from the command line. "
                    "Bundled models are phantom-trained demonstration weights, not for clinical use.")
    parser.add_argument("--version", action="version", version=f"cmr {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("info", parents=[common], help="list the DICOM series in a folder with their CMR classification")
    p.add_argument("folder", help="folder (searched recursively) or single DICOM file")
    p.add_argument("--json", action="store_true", help="print the scan as JSON")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("models", parents=[common], help="list or verify installed models")
    p.add_argument("action", choices=("list", "verify"))
    p.add_argument("--json", action="store_true", help="(list) print the manifest entries as JSON")
    p.set_defaults(func=_cmd_models)

    p = sub.add_parser("run", parents=[common], help="run every installed capability on one study folder")
    p.add_argument("study", help="DICOM folder of one study (read only)")
    p.add_argument("--out", required=True, help="output folder (outside the study folder)")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("batch", parents=[common], help="`cmr run` on each sub-folder of a cohort folder")
    p.add_argument("root", help="folder with one sub-folder per study (read only)")
    p.add_argument("--out", required=True, help="output folder; one sub-folder per study and batch.csv")
    p.set_defaults(func=_cmd_batch)

    p = sub.add_parser("demo", parents=[common], help="run every installed capability on the bundled phantom study")
    p.add_argument("--out", default="demo_out", help="output folder (default demo_out)")
    p.set_defaults(func=_cmd_demo)

    for verb, text in (("train", "train a network (phantom data by default)"),
                       ("evaluate", "evaluate a network on held-out data")):
        p = sub.add_parser(verb, parents=[common], help=f"{text}; `cmr {verb} NAME --help` for its options",
                           description=f"{text}. Models: {', '.join(trainers())}.")
        p.add_argument("model", help="model name: " + ", ".join(trainers()))
        p.set_defaults(func=None, passthrough=True)

    for cap in capabilities():
        module, problem = None, ""
        try:
            module = cap.load_cli()
        except ImportError as exc:  # a broken install must not take every other command down
            problem = f"installed but failed to import ({exc})"
        if module is not None:
            p = sub.add_parser(cap.command, parents=[common], help=cap.title, description=cap.title)
            module.add_arguments(p)
            p.set_defaults(func=module.run)
        else:
            p = sub.add_parser(cap.command, parents=[common], help=f"({problem}) {cap.title}",
                               description=f"{cap.title}: {problem}.")
            p.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
            p.set_defaults(func=_not_present(cap.command, cap.title, problem))
    return parser


def _not_present(command: str, title: str, problem: str) -> Callable[[argparse.Namespace], int]:
    def run(_: argparse.Namespace) -> int:
        raise NotAvailableError(f"cmr {command} ({title}): {problem}")
    return run


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    if extra and not getattr(args, "passthrough", False):
        parser.error(f"unrecognised arguments: {' '.join(extra)}")
    if args.device:
        os.environ["CMR_DEVICE"] = args.device
    warnings.simplefilter("default")
    try:
        if getattr(args, "passthrough", False):
            return _cmd_train_or_eval(args, extra)
        return int(args.func(args) or 0)
    except NotAvailableError as exc:
        print(f"cmr: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except CMRError as exc:
        print(f"cmr: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("cmr: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

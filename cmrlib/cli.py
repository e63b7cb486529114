"""The `cmr` command: headless access to everything the Slicer modules do.

Exit codes: 0 success; 1 the work failed on bad input (message on stderr, nothing partial
written); 2 usage error or a capability that is not present in this version.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
import warnings
from pathlib import Path
from typing import Callable, Sequence

from . import __version__
from .capabilities import PLANNED, capabilities, trainers
from .errors import CMRError, InputError, NotAvailableError
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
        for w in s.warnings:
            print(f"      warning: {w}")
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
    if not models:
        print("cmr: error: no model found in " + ", ".join(str(d) for d in model_dirs())
              + " (an install without its bundled models? reinstall, or set CMR_MODELS_DIR)", file=sys.stderr)
        return EXIT_FAILED
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
    if summary["skipped_files"]:
        print(f"  {len(summary['skipped_files'])} file(s) not used:")
        for k in summary["skipped_files"][:20]:
            print(f"    {k['path']}: {k['reason']}")
        if len(summary["skipped_files"]) > 20:
            print(f"    … {len(summary['skipped_files']) - 20} more in series.json")
    for desc, problems in summary.get("series_problems", {}).items():
        for p in problems:
            print(f"  problem in {desc}: {p}")
    for row in summary["converted"]:
        print(f"  {'wrote ' + row['file'] if 'file' in row else 'not converted: ' + row['error']}"
              + (f" (warning: {row['warning']})" if row.get("warning") else ""))
    for name, step in summary["steps"].items():
        detail = {"done": "", "skipped": f" ({step.get('reason')})", "failed": f": {step.get('error')}"}[step["status"]]
        print(f"  step {name}: {step['status']}{detail}")
        for line in step.get("lines", []):
            print(f"    {line}")
        for note in step.get("notes", []):
            print(f"    note: {note}")
    for name in summary["not_in_this_version"]:
        print(f"  not in this version: {name}")
    if summary.get("report"):
        print(f"report: {summary['report']}")


def _run_staged(study: Path, out: Path, args: argparse.Namespace) -> dict:
    """`cmr run` into a temporary folder renamed over ``out`` when complete."""
    from .atomic import check_output_folder, staged_folder
    from .study import run_study
    check_output_folder(study, out)
    with staged_folder(out) as stage:
        summary = run_study(study, stage, make_progress(args), device=args.device, final_out=out)
    return summary


def _cmd_run(args: argparse.Namespace) -> int:
    from .study import failed_steps
    summary = _run_staged(Path(args.study), Path(args.out), args)
    _print_run_summary(summary)
    return EXIT_FAILED if failed_steps(summary) else EXIT_OK


def _cmd_batch(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .batch import run_batch
    if args.jobs < 1:
        raise InputError(f"--jobs must be at least 1; got {args.jobs}")
    disable = args.quiet or not sys.stderr.isatty()
    result = run_batch(args.root, args.out, jobs=args.jobs, device=args.device,
                       progress_bar=lambda total: tqdm(total=total, desc="studies", unit="study", disable=disable))
    reused = f", {len(result['reused'])} already complete" if result["reused"] else ""
    print(f"{result['done']} of {result['total']} studies done{reused}; summary {result['table']}")
    for name, error in result["errors"].items():
        print(f"  failed {name}: {error}", file=sys.stderr)
    if result["interrupted"]:
        print("cmr: batch interrupted; rerun the same command to finish the remaining studies", file=sys.stderr)
        return 130
    return EXIT_FAILED if result["failed"] else EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    import shutil
    import tempfile

    from .atomic import check_output_folder
    from .phantom import extract_bundled_study
    out = Path(args.out)
    check_output_folder(None, out)
    out.mkdir(parents=True, exist_ok=True)
    study = out / "study"
    fresh = Path(tempfile.mkdtemp(prefix=".study.partial-", dir=out))
    try:
        dicom_rel = extract_bundled_study(fresh).relative_to(fresh)
    except BaseException:
        shutil.rmtree(fresh, ignore_errors=True)
        raise
    if study.exists():  # a previous demo's extracted copy: replaced only once the new one is complete
        shutil.rmtree(study)
    fresh.rename(study)
    print(f"bundled phantom study extracted to {study} (synthetic data; results of bundled models are "
          f"phantom-trained demonstrations, not for clinical use)")
    summary = _run_staged(study / dicom_rel, out / "results", args)
    _print_run_summary(summary)
    return EXIT_OK


# ---- train / evaluate ---------------------------------------------------------------------
def _train_or_eval(verb: str, argv: list[str], common: argparse.ArgumentParser) -> int:
    """`cmr train NAME …` / `cmr evaluate NAME …` with that model's own options and --help."""
    import importlib
    known = trainers()
    lead = []  # common options given before the model name (`cmr train --quiet moconet …`)
    while argv and argv[0] in ("--quiet", "--progress-lines", "--debug", "--device") or (
            argv and argv[0].startswith("--device=")):
        lead += argv[:2] if argv[0] == "--device" else argv[:1]
        argv = argv[2:] if argv[0] == "--device" else argv[1:]
    if not argv or argv[0].startswith("-"):  # no model named: the verb's own usage (exits)
        top = argparse.ArgumentParser(prog=f"cmr {verb}", parents=[common],
                                      description=f"Models: {', '.join(known)}. `cmr {verb} NAME --help` "
                                                  f"lists that model's options.")
        top.add_argument("model", choices=sorted(known), help="model name")
        top.parse_args(lead + argv)
    name = argv[0]
    if name not in known:
        raise NotAvailableError(f"cmr {verb}: unknown model {name!r}; known: {', '.join(known)}")
    module = importlib.import_module(known[name])
    adder, runner = ("add_arguments", "run") if verb == "train" else ("add_eval_arguments", "evaluate")
    sub = argparse.ArgumentParser(prog=f"cmr {verb} {name}", parents=[common],
                                  description=(module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else None)
    getattr(module, adder)(sub)
    sub_args = sub.parse_args(lead + argv[1:])
    if sub_args.device:
        os.environ["CMR_DEVICE"] = sub_args.device
    return int(getattr(module, runner)(sub_args) or 0)


# ---- parser -------------------------------------------------------------------------------
def _common_options(common: argparse.ArgumentParser) -> None:
    common.add_argument("--quiet", action="store_true", help="no progress bars")
    common.add_argument("--progress-lines", action="store_true",
                        help="report progress as 'CMR-PROGRESS {json}' lines on stderr (used by Slicer)")
    common.add_argument("--device", default=None,
                        help="auto | cpu | cuda | mps (default: $CMR_DEVICE or auto)")
    common.add_argument("--debug", action="store_true", help="show the Python traceback of an error")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    _common_options(common)
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
    p.add_argument("--out", required=True, help="output folder: one sub-folder per study, batch.json "
                                                 "(resumable manifest) and batch.csv; rerun to resume")
    p.add_argument("--jobs", type=int, default=1, help="studies run in parallel processes (default 1)")
    p.set_defaults(func=_cmd_batch)

    p = sub.add_parser("demo", parents=[common], help="run every installed capability on the bundled phantom study")
    p.add_argument("--out", default="demo_out", help="output folder (default demo_out)")
    p.set_defaults(func=_cmd_demo)

    for verb, text in (("train", "train a network (phantom data by default, --data DIR for your own)"),
                       ("evaluate", "evaluate a network on held-out data")):
        p = sub.add_parser(verb, parents=[common], add_help=False, help=f"{text}; `cmr {verb} NAME --help` for its options",
                           description=f"{text}. Models: {', '.join(trainers())}.")
        p.add_argument("model", nargs="?", help="model name: " + ", ".join(trainers()))
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
    registered = {c.command for c in capabilities()}
    for command, (title, _) in PLANNED.items():
        if command not in registered:
            p = sub.add_parser(command, parents=[common], help=f"(planned, not in this version) {title}",
                               description=f"{title}: planned, not in this version.")
            p.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
            p.set_defaults(func=_not_present(command, title, "not in this version"))
    return parser


def _not_present(command: str, title: str, problem: str) -> Callable[[argparse.Namespace], int]:
    def run(_: argparse.Namespace) -> int:
        raise NotAvailableError(f"cmr {command} ({title}): {problem}")
    return run


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        return _main(argv)
    except BrokenPipeError:  # `cmr info … | head`: the reader left; exit quietly
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return EXIT_FAILED
    except NotAvailableError as exc:
        print(f"cmr: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except CMRError as exc:
        if debug:
            traceback.print_exc()
        print(f"cmr: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("cmr: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # e.g. the disk filled up while writing: a message, not a traceback
        if debug:
            traceback.print_exc()
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"cmr: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:  # a bug: say so in one line; --debug shows where
        if debug:
            traceback.print_exc()
        print(f"cmr: internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", file=sys.stderr)
        return EXIT_FAILED


def _main(argv: list[str]) -> int:
    parser = build_parser()
    if argv and argv[0] in ("train", "evaluate"):
        common = argparse.ArgumentParser(add_help=False)
        _common_options(common)
        return _train_or_eval(argv[0], argv[1:], common)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    if args.device:
        os.environ["CMR_DEVICE"] = args.device
    warnings.simplefilter("default")
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())

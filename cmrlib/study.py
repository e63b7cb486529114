"""`cmr run`: one study (a DICOM folder) through every registered capability, in dependency order.

First, always: discover and classify the series, write ``series.json`` / ``series.csv`` and
each loadable series as NRRD (``series/``). Then each capability's :class:`~cmrlib.contract.Step`
in the order its declarations give (what it ``needs`` / ``uses`` from others' ``provides``),
handing each a :class:`~cmrlib.contract.StudyContext` with the scan and earlier results. Each
step ends *done*, *skipped* (with the reason) or *failed* (with the error); ``run.json`` and
``report.html`` say which. Outputs go to ``out_dir`` only — never into the input folder.
"""
from __future__ import annotations

import csv
import json
import re
import time
import traceback
from pathlib import Path
from typing import Any

from . import __version__
from .atomic import check_output_folder, write_text_atomic
from .capabilities import PLANNED, capabilities
from .contract import Capability, StepResult, StudyContext, resolve
from .errors import CMRError, InputError, NotApplicableError
from .io import KIND_LABELS, DicomScan, load_series, scan_folder, unreadable_notes, write_image
from .progress import ProgressCallback, report

__all__ = ["run_study", "step_order", "check_output_folder", "find_studies", "DONE", "SKIPPED", "FAILED"]

DONE, SKIPPED, FAILED = "done", "skipped", "failed"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")[:40] or "series"


def write_series_table(scan: DicomScan, out_dir: Path) -> None:
    """``series.json`` (full scan incl. skipped files) and ``series.csv`` (one row per series)."""
    (out_dir / "series.json").write_text(json.dumps(scan.to_dict(), indent=2))
    fields = ["series_number", "description", "kind", "subtype", "n_slices", "n_frames", "rows", "cols",
              "inversion_times_ms", "field_strength_t", "kind_reason", "problems", "series_uid"]
    with open(out_dir / "series.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for s in scan.series:
            row = s.to_dict()
            row["inversion_times_ms"] = " ".join(f"{t:g}" for t in s.inversion_times_ms)
            row["problems"] = "; ".join(s.problems)
            writer.writerow(row)


def convert_series(scan: DicomScan, out_dir: Path, progress: ProgressCallback | None = None) -> list[dict[str, Any]]:
    """Each loadable series as ``series/<number>_<kind>_<description>.nrrd``; problems recorded."""
    folder = out_dir / "series"
    rows = []
    for k, s in enumerate(scan.series):
        report(progress, "convert", k, len(scan.series), s.description)
        name = f"{s.series_number if s.series_number is not None else k:03d}_{s.kind}_{_slug(s.description)}.nrrd"
        try:
            image = load_series(s)
            path = write_image(image, folder / name)
            row = {"series": s.description, "kind": s.kind, "file": str(path.relative_to(out_dir))}
            lost = unreadable_notes(image, "this NRRD")
            if lost:
                row["warning"] = lost[0]
            rows.append(row)
        except CMRError as exc:
            rows.append({"series": s.description, "kind": s.kind, "error": str(exc)})
    report(progress, "convert", len(scan.series), len(scan.series), "done")
    return rows


def step_order(caps: tuple[Capability, ...] | list[Capability]) -> list[Capability]:
    """Capabilities with a step, each after every step providing what it needs or uses
    (ties in command order). ValueError on a cycle or on a need nobody provides."""
    with_step = [c for c in caps if c.step is not None]
    providers: dict[str, list[str]] = {}
    for c in with_step:
        for name in c.step.provides:
            providers.setdefault(name, []).append(c.command)
    after: dict[str, set[str]] = {}
    for c in with_step:
        missing = [n for n in c.step.needs if n not in providers]
        if missing:
            raise ValueError(f"step {c.command!r} needs {', '.join(missing)}, which no registered step provides")
        after[c.command] = {p for n in (*c.step.needs, *c.step.uses) for p in providers.get(n, []) if p != c.command}
    order: list[Capability] = []
    placed: set[str] = set()
    remaining = sorted(with_step, key=lambda c: c.command)
    while remaining:
        ready = [c for c in remaining if after[c.command] <= placed]
        if not ready:
            raise ValueError("the steps' needs form a cycle: " + ", ".join(c.command for c in remaining))
        order.append(ready[0])
        placed.add(ready[0].command)
        remaining.remove(ready[0])
    return order


def _skip_reason(cap: Capability, context: StudyContext, status: dict[str, dict[str, Any]],
                 providers: dict[str, list[str]]) -> str | None:
    step = cap.step
    if step.series_kinds and not context.series(*step.series_kinds):
        wanted = " or ".join(KIND_LABELS.get(k, k) for k in step.series_kinds)
        found = sorted({KIND_LABELS.get(s.kind, s.kind) for s in context.scan.series})
        return f"no {wanted} series in this study (found: {', '.join(found) or 'no series'})"
    for name in step.needs:
        if name not in context.results:
            why = "; ".join(f"{p} {status[p]['status']}" + (f": {status[p].get('reason') or status[p].get('error')}"
                                                              if status[p]["status"] != DONE else "")
                            for p in providers.get(name, []) if p in status)
            return f"needs {name}, which no earlier step produced ({why or 'no provider ran'})"
    return None


def _run_steps(context: StudyContext, caps: list[Capability]) -> dict[str, dict[str, Any]]:
    providers: dict[str, list[str]] = {}
    for c in caps:
        for name in c.step.provides:
            providers.setdefault(name, []).append(c.command)
    status: dict[str, dict[str, Any]] = {}
    for cap in caps:
        reason = _skip_reason(cap, context, status, providers)
        if reason:
            status[cap.command] = {"status": SKIPPED, "reason": reason}
            continue
        t0 = time.perf_counter()
        try:
            result = resolve(cap.step.run)(context)
            if not isinstance(result, StepResult):
                raise TypeError(f"step {cap.command} returned {type(result).__name__}, not StepResult")
        except NotApplicableError as exc:  # the step looked at the series and found nothing for it
            status[cap.command] = {"status": SKIPPED, "reason": str(exc)}
            continue
        except CMRError as exc:
            status[cap.command] = {"status": FAILED, "error": str(exc), "seconds": round(time.perf_counter() - t0, 3)}
            continue
        except Exception as exc:  # a bug in one step must not lose the others' results
            status[cap.command] = {"status": FAILED, "error": f"internal error: {type(exc).__name__}: {exc}",
                                   "traceback": traceback.format_exc(), "seconds": round(time.perf_counter() - t0, 3)}
            continue
        context.results.update(result.provides)
        status[cap.command] = {"status": DONE, "lines": result.lines, "notes": result.notes,
                               "result": result.summary, "seconds": round(time.perf_counter() - t0, 3)}
    return status


def _models_used() -> list[dict[str, Any]]:
    from .models import list_models, loaded_models
    names = loaded_models()
    return [{"name": m.name, "version": m.version, "architecture": m.architecture, "notice": m.notice,
             "phantom_trained": m.phantom_trained, "sha256": m.sha256}
            for m in list_models() if m.name in names]


def run_study(study_dir: str | Path, out_dir: str | Path, progress: ProgressCallback | None = None,
              device: str | None = None, caps: tuple[Capability, ...] | None = None,
              write_report: bool = True, final_out: str | Path | None = None) -> dict[str, Any]:
    """Run every registered step on one study; write ``run.json`` and ``report.html``; return
    the summary. ``caps`` replaces the registered capabilities (tests). ``final_out``: the
    folder ``out_dir`` will be renamed to when complete (callers that stage their output);
    the summary names it. Paths inside ``run.json`` are relative to the output folder."""
    from .device import describe_device, pick_device
    study_dir, out_dir = Path(study_dir), Path(out_dir)
    check_output_folder(study_dir, out_dir)
    t0 = time.perf_counter()
    caps = capabilities() if caps is None else caps
    order = step_order(caps)  # a registration error shows before any work
    scan = scan_folder(study_dir, progress)  # raises before anything is written
    out_dir.mkdir(parents=True, exist_ok=True)
    write_series_table(scan, out_dir)
    dev = pick_device(device)
    context = StudyContext(scan, out_dir, progress, dev)
    summary: dict[str, Any] = {
        "study": str(study_dir), "out": str(final_out or out_dir), "software": f"SlicerCMR {__version__}", "device": describe_device(dev),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "series": [s.summary() for s in scan.series],
        "series_problems": {s.description: [*s.problems, *s.warnings] for s in scan.series if s.problems or s.warnings},
        "skipped_files": [{"path": str(k.path), "reason": k.reason} for k in scan.skipped],
        "converted": convert_series(scan, out_dir, progress),
        "order": [c.command for c in order],
    }
    summary["steps"] = _run_steps(context, order)
    registered = {c.command for c in caps}
    summary["not_in_this_version"] = [f"{cmd}: {title}" for cmd, (title, _) in PLANNED.items() if cmd not in registered]
    summary["models"] = _models_used()
    summary["seconds"] = round(time.perf_counter() - t0, 3)
    write_text_atomic(out_dir / "run.json", json.dumps(summary, indent=2, default=str))
    if write_report:
        from .report import write_report as write_html
        summary["report"] = str(Path(final_out or out_dir) / write_html(summary, out_dir, caps).name)
    return summary


def failed_steps(summary: dict[str, Any]) -> list[str]:
    """Commands whose step applied and failed."""
    return [name for name, s in summary["steps"].items() if s["status"] == FAILED]


def find_studies(root: str | Path) -> list[Path]:
    """Study folders for ``cmr batch``: each immediate sub-folder of ``root`` (sorted)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"cohort folder not found: {root}")
    studies = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not studies:
        raise InputError(f"{root} has no sub-folders; `cmr batch` expects one folder per study")
    return studies

"""`cmr batch`: `cmr run` over a cohort, resumable and interruption-safe.

``OUT/batch.json`` (the manifest, rewritten atomically after every change) holds each study's
state — ``running``, ``done`` or ``failed`` — with a fingerprint of its input files and the
software version. A rerun skips the studies done with the same inputs and version, and redoes
interrupted or failed ones. Each study is computed in a temporary folder beside its final one
and renamed only when complete, so an interruption never leaves a half study that looks done.
``OUT/batch.csv`` is written on every exit, SIGINT and SIGTERM included. ``jobs > 1`` runs
studies in parallel worker processes under one progress bar.
"""
from __future__ import annotations

import csv
import hashlib
import json
import shutil
import signal
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any, Callable

from . import __version__
from .atomic import check_output_folder, write_text_atomic
from .errors import CMRError, InputError
from .study import failed_steps, find_studies

MANIFEST, TABLE = "batch.json", "batch.csv"
RUNNING, DONE, FAILED = "running", "done", "failed"
CSV_FIELDS = ["study", "status", "series", "steps_done", "steps_skipped", "steps_failed", "seconds", "message"]


class Interrupted(BaseException):
    """SIGINT / SIGTERM during a batch (a BaseException, like KeyboardInterrupt, so that no
    step's error handling swallows it)."""


def fingerprint(folder: Path) -> str:
    """sha256 over the relative path, size and modification time of every file in ``folder``."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        st = path.stat()
        h.update(f"{path.relative_to(folder)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def read_manifest(out: Path) -> dict[str, Any]:
    path = out / MANIFEST
    if not path.is_file():
        return {"schema": 1, "studies": {}}
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{path} is not a readable batch manifest ({exc}); move it away to start afresh") from None
    data.setdefault("studies", {})
    return data


def _run_one(study: str, dest: str, device: str | None) -> dict[str, Any]:
    """One study into a temporary folder beside ``dest``, renamed over it when complete."""
    from .atomic import staged_folder
    from .study import run_study
    t0 = time.perf_counter()
    with staged_folder(dest) as stage:
        summary = run_study(study, stage, device=device)
    steps = summary["steps"].values()
    return {"series": len(summary["series"]), "seconds": round(time.perf_counter() - t0, 3),
            "steps_done": sum(s["status"] == "done" for s in steps),
            "steps_skipped": sum(s["status"] == "skipped" for s in steps),
            "failed_steps": failed_steps(summary),
            "errors": [f"{n}: {summary['steps'][n]['error']}" for n in failed_steps(summary)]}


def _worker_init() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; it stops the workers itself
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def write_table(out: Path, manifest: dict[str, Any], studies: list[Path]) -> Path:
    rows = []
    for study in studies:
        entry = manifest["studies"].get(study.name, {})
        rows.append({"study": study.name, "status": entry.get("state", "not run"),
                     "series": entry.get("series", ""), "steps_done": entry.get("steps_done", ""),
                     "steps_skipped": entry.get("steps_skipped", ""),
                     "steps_failed": " ".join(entry.get("failed_steps", [])),
                     "seconds": entry.get("seconds", ""), "message": entry.get("error", "")})
    import io
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    return write_text_atomic(out / TABLE, buf.getvalue())


def run_batch(root: str | Path, out: str | Path, jobs: int = 1, device: str | None = None,
              progress_bar: Callable[[int], Any] | None = None) -> dict[str, Any]:
    """Run (or resume) the batch; return ``{"done", "failed", "skipped", "interrupted", "table"}``.

    ``progress_bar(total)`` returns an object with ``update(n)`` / ``close()`` (tqdm), or None.
    """
    root, out = Path(root), Path(out)
    studies = find_studies(root)
    check_output_folder(root, out)
    out.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(out)
    manifest["software"] = __version__
    entries: dict[str, dict[str, Any]] = manifest["studies"]

    def save() -> None:
        write_text_atomic(out / MANIFEST, json.dumps(manifest, indent=2))

    for stale in out.glob(".*.partial-*"):  # a folder an interrupted run was computing in
        shutil.rmtree(stale, ignore_errors=True)
    todo, reused = [], []
    for study in studies:
        fp = fingerprint(study)
        entry = entries.get(study.name)
        if entry and entry.get("state") == DONE and entry.get("inputs") == fp and entry.get("version") == __version__ \
                and (out / study.name).is_dir():
            reused.append(study.name)
        else:
            todo.append((study, fp))
    bar = progress_bar(len(studies)) if progress_bar else None
    if bar is not None and reused:
        bar.update(len(reused))
    interrupted = False
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def on_signal(signum, frame):
        raise Interrupted(signal.Signals(signum).name)

    def finish(study: Path, fp: str, outcome: dict[str, Any] | None, error: str | None) -> None:
        entry = entries[study.name]
        entry.update(finished=time.strftime("%Y-%m-%d %H:%M:%S"), inputs=fp, version=__version__)
        if error is None:
            entry.update(outcome, state=DONE if not outcome["failed_steps"] else FAILED,
                         error="; ".join(outcome["errors"]), completed_runs=entry.get("completed_runs", 0) + 1)
        else:
            entry.update(state=FAILED, error=error)
        save()
        if bar is not None:
            bar.update(1)

    def start(study: Path) -> None:
        entries[study.name] = {**entries.get(study.name, {}), "state": RUNNING,
                               "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        save()

    pool = None
    try:
        for s in previous:
            signal.signal(s, on_signal)
        if jobs <= 1:
            for study, fp in todo:
                start(study)
                try:
                    outcome, error = _run_one(str(study), str(out / study.name), device), None
                except CMRError as exc:
                    outcome, error = None, str(exc)
                finish(study, fp, outcome, error)
        else:
            pool = ProcessPoolExecutor(max_workers=jobs, initializer=_worker_init)
            pending = {}
            queue = list(todo)
            while queue or pending:
                while queue and len(pending) < jobs:
                    study, fp = queue.pop(0)
                    start(study)
                    pending[pool.submit(_run_one, str(study), str(out / study.name), device)] = (study, fp)
                finished, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                for fut in finished:
                    study, fp = pending.pop(fut)
                    try:
                        outcome, error = fut.result(), None
                    except CMRError as exc:
                        outcome, error = None, str(exc)
                    except Exception as exc:  # a crashed worker fails its study, not the batch
                        outcome, error = None, f"{type(exc).__name__}: {exc}"
                    finish(study, fp, outcome, error)
    except (Interrupted, KeyboardInterrupt):
        interrupted = True
    finally:
        if pool is not None:
            if interrupted:
                for proc in list(getattr(pool, "_processes", {}).values()):
                    proc.terminate()
            pool.shutdown(wait=True, cancel_futures=True)
        for s, handler in previous.items():
            signal.signal(s, handler)
        for name, entry in entries.items():  # studies cut short: redone on the next run
            if entry.get("state") == RUNNING:
                entry["error"] = "interrupted"
        save()
        table = write_table(out, manifest, studies)
        for stale in out.glob(".*.partial-*"):
            shutil.rmtree(stale, ignore_errors=True)
        if bar is not None:
            bar.close()
    states = [entries.get(s.name, {}).get("state") for s in studies]
    return {"done": states.count(DONE), "failed": [s.name for s in studies if entries.get(s.name, {}).get("state") == FAILED],
            "reused": reused, "interrupted": interrupted, "table": table, "total": len(studies),
            "errors": {s.name: entries[s.name].get("error", "") for s in studies
                       if entries.get(s.name, {}).get("state") == FAILED}}


__all__ = ["run_batch", "fingerprint", "read_manifest", "write_table", "MANIFEST", "TABLE"]

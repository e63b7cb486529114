"""Run a whole study (a DICOM folder) through every installed capability: `cmr run`, `batch`, `demo`.

The first step of every run is always available: discover and classify the series, write
``series.json`` / ``series.csv`` and each loadable series as NRRD (``series/``). Then each
available capability with a ``run_on_study`` step runs; the others are named as not yet
present. Outputs go to ``out_dir`` only — never into the input folder.
"""
from __future__ import annotations

import csv
import json
import re
import time
from pathlib import Path
from typing import Any

from .capabilities import capabilities
from .errors import CMRError, InputError
from .io import DicomScan, load_series, scan_folder, write_image
from .progress import ProgressCallback, report


def check_output_folder(input_dir: Path, out_dir: Path) -> None:
    """Refuse an output folder inside (or equal to) the input folder: inputs are never written."""
    inp, out = Path(input_dir).resolve(), Path(out_dir).resolve()
    if out == inp or inp in out.parents:
        raise InputError(f"output folder {out_dir} is inside the input folder {input_dir}; "
                         f"choose a folder outside it (nothing is ever written into the input)")


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
            path = write_image(load_series(s), folder / name)
            rows.append({"series": s.description, "kind": s.kind, "file": str(path.relative_to(out_dir))})
        except CMRError as exc:
            rows.append({"series": s.description, "kind": s.kind, "error": str(exc)})
    report(progress, "convert", len(scan.series), len(scan.series), "done")
    return rows


def run_study(study_dir: str | Path, out_dir: str | Path, progress: ProgressCallback | None = None) -> dict[str, Any]:
    """Run every installed capability on one study; write ``run.json``; return the summary."""
    study_dir, out_dir = Path(study_dir), Path(out_dir)
    check_output_folder(study_dir, out_dir)
    t0 = time.perf_counter()
    scan = scan_folder(study_dir, progress)  # raises before anything is written
    out_dir.mkdir(parents=True, exist_ok=True)
    write_series_table(scan, out_dir)
    summary: dict[str, Any] = {
        "study": str(study_dir), "out": str(out_dir),
        "series": [s.summary() for s in scan.series],
        "skipped_files": len(scan.skipped),
        "converted": convert_series(scan, out_dir, progress),
        "steps": {}, "not_yet_present": [],
    }
    for cap in capabilities():
        module = cap.load_cli()
        step = getattr(module, "run_on_study", None)
        if step is None:
            continue
        try:
            summary["steps"][cap.command] = step(scan, out_dir / cap.command, progress)
        except CMRError as exc:
            summary["steps"][cap.command] = {"error": str(exc)}
    summary["seconds"] = round(time.perf_counter() - t0, 3)
    (out_dir / "run.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


def find_studies(root: str | Path) -> list[Path]:
    """Study folders for ``cmr batch``: each immediate sub-folder of ``root`` (sorted)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"cohort folder not found: {root}")
    studies = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not studies:
        raise InputError(f"{root} has no sub-folders; `cmr batch` expects one folder per study")
    return studies

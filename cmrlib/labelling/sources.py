"""The stacks of a new pool from DICOM folders and image files, with the DICOM classification's check.

A pool holds single-frame short-axis stacks. A DICOM folder may hold a whole study: its short-axis
LGE series are taken (per study PSIR, else magnitude — the same acquisition twice would put every
slice in the pool twice); series of other kinds are left out with a warning naming them and their
kind (``SeriesInfo.kind``) — or, with ``any_kind``, taken with that warning — and multi-frame
series (cine, IRW) are always left out. An image file (NRRD / NIfTI / MHA) is one stack; its
header's kind is checked the same way, and a file without one is taken with a note; label maps
(a label table in the header, ``.seg.nrrd``) are left out. A folder with DICOM gives its DICOM
series only (image files beside them — masks, maps, exports — are named in a note); a folder
without DICOM gives its image files.

Only pixels, geometry, the kind and a grouping of stacks by patient reach the pool; the patient
ID used for that grouping, descriptions and paths stay in :class:`SourceStack` for the caller's
messages and the private key file.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import DicomError, InputError
from ..progress import ProgressCallback, report
from .pool import StackInput

SHORT_AXIS_KINDS = ("lge_psir", "lge_magnitude")


@dataclass
class SourceStack:
    """One stack found in the inputs: where it came from (never stored in the pool) and its pixels."""

    source: str  # file or folder, for the key file and messages
    description: str
    kind: str | None
    stack: StackInput


def _kind_text(kind: str | None) -> str:
    from ..io import KIND_LABELS
    return KIND_LABELS.get(kind or "unknown", kind or "unknown")


def _from_image(path: Path, any_kind: bool, notes: list[str]) -> SourceStack | None:
    from ..io import read_image
    img = read_image(path)
    if "labels" in img.meta or path.name.lower().endswith(".seg.nrrd"):
        notes.append(f"left out {path}: a label map, not an image")
        return None
    if img.is_sequence:
        notes.append(f"left out {path}: a multi-frame image (a pool holds single-frame short-axis stacks)")
        return None
    kind = img.meta.get("kind") if isinstance(img.meta.get("kind"), str) else None
    if kind is not None and kind not in SHORT_AXIS_KINDS:
        if not any_kind:
            notes.append(f"left out {path}: its header says {_kind_text(kind)}, not short-axis LGE "
                         "(--any-series takes it)")
            return None
        notes.append(f"warning: {path} is {_kind_text(kind)}, not short-axis LGE; taken as asked")
    subject = str(img.meta.get("PatientID") or path)
    return SourceStack(str(path), str(img.meta.get("SeriesDescription") or path.name), kind,
                       StackInput(np.asarray(img.array, np.float32), img.spacing, img.origin, img.direction, kind,
                                  subject))


def _from_dicom(folder: Path, any_kind: bool, notes: list[str], progress: ProgressCallback | None) -> list[SourceStack]:
    from ..io import load_series, scan_folder
    scan = scan_folder(folder, progress=progress)
    taken = []
    by_study: dict[str, list] = {}
    for s in scan.series:
        by_study.setdefault(s.study_uid, []).append(s)
    for study in by_study.values():
        psir = [s for s in study if s.kind == "lge_psir"]
        for s in study:
            where = f"{folder}: series {s.description!r}"
            if not s.loadable:
                notes.append(f"left out {where}: {'; '.join(s.problems)}")
            elif s.n_frames > 1:
                notes.append(f"left out {where}: {_kind_text(s.kind)}, multi-frame (a pool holds single-frame "
                             "short-axis stacks)")
            elif s.kind == "lge_magnitude" and psir:
                notes.append(f"left out {where}: the magnitude image of a study that has PSIR (each slice once)")
            elif s.kind not in SHORT_AXIS_KINDS and not any_kind:
                notes.append(f"left out {where}: {_kind_text(s.kind)} ({s.kind_reason or 'DICOM classification'}), "
                             "not short-axis LGE (--any-series takes it)")
            else:
                if s.kind not in SHORT_AXIS_KINDS:
                    notes.append(f"warning: {where} is {_kind_text(s.kind)}, not short-axis LGE; taken as asked")
                img = load_series(s)
                if s.unreadable_files:
                    notes.append(f"{where}: {len(s.unreadable_files)} file(s) could not be read; their slices "
                                 "are missing from the pool")
                taken.append(SourceStack(str(folder), s.description, s.kind,
                                         StackInput(np.asarray(img.array, np.float32), img.spacing, img.origin,
                                                    img.direction, s.kind, s.patient_id or s.study_uid)))
    return taken


def read_sources(paths: Sequence[str | Path], *, any_kind: bool = False,
                 progress: ProgressCallback | None = None) -> tuple[list[SourceStack], list[str]]:
    """(stacks, notes) from DICOM folders and image files (module docstring). InputError for a
    missing path, or when nothing usable is found (naming what was found instead)."""
    from ..io.files import SUFFIXES
    if not paths:
        raise InputError("give at least one DICOM folder or image file")
    found: list[SourceStack] = []
    notes: list[str] = []
    for i, p in enumerate(paths):
        path = Path(p)
        report(progress, "reading inputs", i, len(paths), path.name)
        if not path.exists():
            raise InputError(f"{path}: no such file or folder")
        if path.is_file():
            if not path.name.lower().endswith(SUFFIXES):
                raise InputError(f"{path}: not an image file (NRRD / NIfTI / MHA) nor a DICOM folder")
            stack = _from_image(path, any_kind, notes)
            found += [stack] if stack else []
            continue
        files = sorted(q for q in path.rglob("*") if q.is_file() and q.name.lower().endswith(SUFFIXES))
        try:
            found += _from_dicom(path, any_kind, notes, progress)
        except DicomError:
            if not files:
                raise
            for f in files:  # a folder of image files
                stack = _from_image(f, any_kind, notes)
                found += [stack] if stack else []
        else:
            if files:  # beside DICOM, image files are derived ones (masks, maps, exports) more often than not
                notes.append(f"{path}: {len(files)} image file(s) beside its DICOM series not read (name them to "
                             "include them)")
    report(progress, "reading inputs", len(paths), len(paths), "done")
    if not found:
        left = [n for n in notes if n.startswith("left out")]
        raise InputError("no short-axis stack to label in " + ", ".join(map(str, paths))
                         + (f" ({'; '.join(left[:3])}{'; …' if len(left) > 3 else ''})" if left else
                            " (no DICOM series and no image file found)"))
    unclassified = [s for s in found if s.kind is None]
    if unclassified:
        notes.append(f"{len(unclassified)} image file(s) carry no DICOM classification: taken as short-axis stacks "
                     "unchecked")
    return found, notes

"""DICOM discovery, series grouping, CMR series classification and loading.

``scan_folder`` walks a folder (recursively, symlink loops detected), reads headers only,
skips and lists what is not usable (never fatal), groups instances into series by
SeriesInstanceUID, and classifies each series as cine, IRW (MOLLI/ShMOLLI), T1 map,
LGE-PSIR, LGE-magnitude or unknown, with the reason. ``load_series`` reads the pixels of
one series into an :class:`~cmrlib.image.Image` with LPS geometry and per-frame metadata.
Enhanced (multi-frame) MR files are expanded into one entry per frame.

Damaged files: whatever a file does to pydicom, numpy or our parsing (truncation, flipped
bytes, unknown VRs, absurd sizes, unknown or undecodable transfer syntaxes, ...), the scan
lists that one file in ``DicomScan.skipped`` with a one-line reason and goes on. A skipped
file whose SeriesInstanceUID can still be read (or found verbatim in its bytes) is also
listed in ``SeriesInfo.unreadable_files`` of its series, which keeps the frames that
survived and says so in ``SeriesInfo.warnings``; a loss no header shows (InstanceNumber
gaps, an IRW scheme short of frames) is a warning too. Warnings never block loading.
``load_series`` loads the frames it can decode: a file whose pixels fail only at load
time is dropped like a file skipped at scan time when the other frames still form a
complete series (same number of frames at every slice), else the series is refused with a
:class:`DicomError` naming the file. Either way ``Image.meta["unreadable_files"]`` lists
the lost files as ``{"path", "reason"}`` dicts (empty when none).
"""
from __future__ import annotations

import math
import os
import re
import struct
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterator

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError
from pydicom.pixels import get_decoder
from pydicom.uid import DeflatedExplicitVRLittleEndian

from ..errors import CMRError, DicomError, InputError
from ..image import Image
from ..progress import ProgressCallback, report

KINDS = ("cine", "irw", "t1map", "fit_map", "map_display", "lge_psir", "lge_magnitude", "la_lge", "vne", "unknown")
KIND_LABELS = {
    "cine": "cine",
    "irw": "IRW (T1 inversion-recovery frames)",
    "t1map": "T1 map",
    "fit_map": "derived fit-parameter map (T1*, A/B, R², SD, ...; not a T1 map)",
    "map_display": "colour-coded map display (secondary capture; not quantitative)",
    "lge_psir": "LGE PSIR",
    "lge_magnitude": "LGE magnitude",
    "la_lge": "left-atrial 3D LGE",
    "vne": "VNE (virtual native enhancement)",
    "unknown": "unknown",
}
#: SOP classes that never hold an image we can use (reports, presentation states, ...).
_NON_IMAGE_HINT = "no Rows/Columns: not an image (report, presentation state, raw data?)"
#: Known MOLLI-family sampling schemes, by images per inversion in acquisition order.
_SCHEMES = {
    (5, 3): "MOLLI 5(3)3",
    (3, 3, 5): "MOLLI 3(3)3(3)5",
    (4, 3, 2): "MOLLI 4(1)3(1)2",
    (5, 1, 1): "ShMOLLI",
}


@dataclass
class SkippedFile:
    """A file that was not used, and why."""

    path: Path
    reason: str


@dataclass
class InstanceInfo:
    """Header facts of one 2-D image (a classic file, or one frame of an enhanced file)."""

    path: Path
    frame_index: int | None  # frame within an enhanced multi-frame file, else None
    sop_uid: str
    instance_number: int
    rows: int
    cols: int
    position: np.ndarray | None  # ImagePositionPatient, LPS mm
    orientation: np.ndarray | None  # ImageOrientationPatient (6 direction cosines)
    pixel_spacing: tuple[float, float] | None  # (row, col) mm
    slice_thickness: float | None
    slice_location: float | None
    inversion_time: float | None  # ms
    trigger_time: float | None  # ms
    echo_time: float | None  # ms
    acquisition_time: str
    image_type: tuple[str, ...]
    rescale_slope: float
    rescale_intercept: float
    expected_pixel_bytes: int
    nominal_interval_ms: float | None = None  # NominalInterval (0018,1062): R-R (ms)
    heart_rate_bpm: float | None = None  # HeartRate (0018,1088)
    rescale_present: bool = True  # RescaleSlope/Intercept (or a per-frame transform) present

    @property
    def normal(self) -> np.ndarray | None:
        if self.orientation is None:
            return None
        return np.cross(self.orientation[:3], self.orientation[3:])


@dataclass
class SeriesInfo:
    """One series found by :func:`scan_folder`, with its classification."""

    series_uid: str
    study_uid: str
    description: str
    series_number: int | None
    modality: str
    instances: list[InstanceInfo] = field(default_factory=list, repr=False)
    kind: str = "unknown"
    kind_reason: str = ""
    subtype: str = ""
    n_slices: int = 0
    n_frames: int = 0
    rows: int = 0
    cols: int = 0
    inversion_times_ms: list[float] = field(default_factory=list)
    trigger_times_ms: list[float] = field(default_factory=list)
    field_strength_t: float | None = None
    patient_id: str = ""
    #: R-R interval (ms) from the heart-rate tags, and which tag it came from ("" if none)
    rr_ms: float | None = None
    rr_source: str = ""
    #: IRW frames already motion-corrected by the scanner (ImageType / description MOCO)
    vendor_moco: bool = False
    problems: list[str] = field(default_factory=list)
    header: dict[str, Any] = field(default_factory=dict, repr=False)
    #: files of this series that could not be used (also in ``DicomScan.skipped``)
    unreadable_files: list[SkippedFile] = field(default_factory=list)
    #: facts that do not block loading: lost files, suspected lost frames
    warnings: list[str] = field(default_factory=list)

    @property
    def n_files(self) -> int:
        return len({i.path for i in self.instances})

    @property
    def loadable(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        """One line: number, description, kind, size, timing."""
        parts = [f"#{self.series_number if self.series_number is not None else '-'}",
                 repr(self.description), KIND_LABELS.get(self.kind, self.kind)]
        if self.subtype:
            parts.append(self.subtype)
        parts.append(f"{self.n_slices} slice(s) x {self.n_frames} frame(s), {self.rows}x{self.cols}")
        if self.kind == "irw" and self.inversion_times_ms:
            parts.append("TI " + ", ".join(f"{t:g}" for t in self.inversion_times_ms) + " ms")
        if self.field_strength_t:
            parts.append(f"{self.field_strength_t:g} T")
        if self.rr_ms:
            parts.append(f"{60000.0 / self.rr_ms:.0f} bpm ({self.rr_source})")
        if self.warnings:
            parts.append("WARNING: " + "; ".join(self.warnings))
        return "  ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "series_uid": self.series_uid, "study_uid": self.study_uid,
            "series_number": self.series_number, "description": self.description,
            "modality": self.modality, "kind": self.kind, "kind_reason": self.kind_reason,
            "subtype": self.subtype, "n_files": self.n_files, "n_slices": self.n_slices,
            "n_frames": self.n_frames, "rows": self.rows, "cols": self.cols,
            "warnings": self.warnings, "unreadable_files": _skipped_dicts(self.unreadable_files),
            "inversion_times_ms": self.inversion_times_ms,
            "trigger_times_ms": self.trigger_times_ms,
            "field_strength_t": self.field_strength_t, "rr_ms": self.rr_ms, "rr_source": self.rr_source,
            "heart_rate_bpm": round(60000.0 / self.rr_ms, 1) if self.rr_ms else None,
            "vendor_moco": self.vendor_moco, "problems": self.problems,
        }


@dataclass
class DicomScan:
    """Result of :func:`scan_folder`: series found and files skipped."""

    root: Path
    series: list[SeriesInfo]
    skipped: list[SkippedFile]

    def of_kind(self, kind: str) -> list[SeriesInfo]:
        return [s for s in self.series if s.kind == kind]

    def to_dict(self) -> dict[str, Any]:
        return {"root": str(self.root), "series": [s.to_dict() for s in self.series],
                "skipped": _skipped_dicts(self.skipped)}


def _skipped_dicts(items: list[SkippedFile]) -> list[dict[str, str]]:
    return [{"path": str(k.path), "reason": k.reason} for k in items]


# ---------------------------------------------------------------------------------------
# discovery
# ---------------------------------------------------------------------------------------
def _walk_files(root: Path, skipped: list[SkippedFile]) -> Iterator[Path]:
    """Files below ``root``, following symlinked folders once (loops are reported)."""
    seen_dirs: set[str] = set()
    stack = [root]
    while stack:
        folder = stack.pop()
        real = os.path.realpath(folder)
        if real in seen_dirs:
            skipped.append(SkippedFile(folder, f"symlink loop: folder already visited as {real}"))
            continue
        seen_dirs.add(real)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            skipped.append(SkippedFile(folder, f"cannot list folder: {exc.strerror or exc}"))
            continue
        subdirs = []
        for entry in entries:
            path = Path(entry.path)
            try:
                if entry.is_dir(follow_symlinks=True):
                    subdirs.append(path)
                elif entry.is_file(follow_symlinks=True):
                    yield path
                elif entry.is_symlink():
                    skipped.append(SkippedFile(path, "broken or looping symbolic link"))
                else:  # never opened: a FIFO would block the scan
                    skipped.append(SkippedFile(path, "not a regular file (FIFO, socket or device)"))
            except OSError as exc:  # ELOOP on a self-referencing link
                skipped.append(SkippedFile(path, f"symlink loop or unreadable entry: {exc.strerror or exc}"))
        stack.extend(reversed(subdirs))


def _float(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _first(value: Any) -> Any:
    """First value of a possibly multi-valued element (pydicom gives a scalar for VM 1)."""
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        return value[0] if len(value) else None
    return value


def _seq_item(ds: Any, keyword: str) -> Any:
    seq = getattr(ds, keyword, None)
    return seq[0] if seq else None


def _floats(value: Any, n: int) -> np.ndarray | None:
    """``n`` finite numbers from a multi-valued element, else None (missing or corrupt)."""
    if not isinstance(value, (list, tuple, pydicom.multival.MultiValue)) or len(value) != n:
        return None
    out = [_float(v) for v in value]
    return None if any(v is None for v in out) else np.array(out)


class _Unusable(Exception):
    """A file the scan cannot use. ``reason`` is the one-line text for ``SkippedFile``;
    ``series_uid`` (when the header showed it) ties the lost file to its series, with the
    file's ``image_type`` and ``instance_number`` when known; ``salvage`` asks the scan to
    look for the SeriesInstanceUID in the raw bytes of a header pydicom could not parse."""

    def __init__(self, reason: str, series_uid: str = "", *, salvage: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.series_uid, self.salvage = reason, series_uid, salvage
        self.image_type: tuple[str, ...] | None = None
        self.instance_number = 0

    @classmethod
    def of_image(cls, reason: str, ds: pydicom.Dataset) -> "_Unusable":
        """A lost image of a known series: SeriesInstanceUID, ImageType, InstanceNumber from ``ds``."""
        err = cls(reason, str(ds.get("SeriesInstanceUID", "") or ""))
        err.image_type = tuple(str(t).upper() for t in (ds.get("ImageType", None) or ()))
        err.instance_number = int(_float(ds.get("InstanceNumber", 0)) or 0)
        return err


def _short(text: str, limit: int = 200) -> str:
    """``text`` on one printable line of at most ``limit`` characters."""
    text = "".join(c if c.isprintable() else " " for c in " ".join(str(text).split()))
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _describe(exc: BaseException) -> str:
    """One line naming an exception: its type and (shortened) message."""
    text = _short(str(exc).split("Traceback (most recent call last)")[0])  # pydicom embeds tracebacks
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _image_size(ds: pydicom.Dataset) -> tuple[int, int, int, int, int]:
    """(rows, cols, samples per pixel, bits allocated, frames), checked to be sane."""
    rows, cols = int(ds.Rows), int(ds.Columns)
    if not (0 < rows <= 65535 and 0 < cols <= 65535):
        raise _Unusable(f"Rows x Columns {rows}x{cols} is not an image size")

    def value(keyword: str, default: int) -> int:  # absent or empty: the default; 0 stays 0
        v = getattr(ds, keyword, None)
        return default if v is None or v == "" else int(v)

    bits = value("BitsAllocated", 16)
    if bits not in (1, 8, 16, 32, 64):
        raise _Unusable(f"BitsAllocated {bits} is not 1, 8, 16, 32 or 64")
    samples = value("SamplesPerPixel", 1)
    if not 1 <= samples <= 4:
        raise _Unusable(f"SamplesPerPixel {samples} is not 1..4")
    n_frames = value("NumberOfFrames", 1)
    if n_frames < 1:
        raise _Unusable(f"NumberOfFrames {n_frames} is not a frame count")
    return rows, cols, samples, bits, n_frames


def _check_pixel_data(ds: pydicom.Dataset, pixel: tuple[int | None, int] | None, file_size: int,
                      size: tuple[int, int, int, int, int]) -> None:
    """Raise :class:`_Unusable` when the pixel data cannot be decoded: unknown transfer
    syntax, a compressed one without an installed decoder, or (uncompressed) a pixel data
    element shorter than Rows x Columns x ... needs or cut short by the end of the file.
    ``pixel`` is (declared length or None when undefined, file offset of the value);
    ``size`` is :func:`_image_size`."""
    rows, cols, samples, bits, n_frames = size
    needed = -(-rows * cols * samples * bits * n_frames // 8)
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if not syntax:
        raise _Unusable("no TransferSyntaxUID in the file meta information: pixel data cannot be decoded")
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError:
        known = syntax.name != str(syntax)
        raise _Unusable(f"pixel data in transfer syntax {syntax.name} cannot be decoded (no decoder exists for it)"
                        if known else f"unknown transfer syntax {str(syntax)[:64]!r}: pixel data cannot be decoded"
                        ) from None
    if not decoder.is_available:
        needs = " or ".join(decoder.missing_dependencies) or "a decoder plugin"
        raise _Unusable(f"pixel data compressed as {syntax.name} and no decoder is installed ({needs})")
    if pixel is None:  # deflated: the element's position is in the inflated stream; decoding will tell
        return
    length, offset = pixel
    if syntax.is_compressed:
        if offset >= file_size:
            raise _Unusable(f"truncated: file is {file_size} bytes and ends at its pixel data")
        return
    if length is None:
        raise _Unusable(f"uncompressed ({syntax.name}) pixel data of undefined length")
    if offset + length > file_size:
        raise _Unusable(f"truncated: file is {file_size} bytes, its pixel data element declares {length} "
                        f"from byte {offset} (ends at {offset + length})")
    if length not in (needed, needed + needed % 2):  # DICOM pads odd lengths to even, no more
        raise _Unusable(f"pixel data is {length} bytes; {rows}x{cols} pixels x {n_frames} frame(s) x {samples} "
                        f"sample(s) x {bits} bits need {needed}")


def _instances_of(path: Path, ds: pydicom.Dataset, pixel: tuple[int | None, int] | None = None,
                  file_size: int | None = None) -> list[InstanceInfo]:
    """One InstanceInfo per 2-D image in ``ds`` (classic or enhanced multi-frame).

    With ``file_size``, the pixel data element ``pixel`` (see :func:`_pixel_element`) is
    checked first (:func:`_check_pixel_data`), so absurd sizes never reach allocation."""
    rows, cols, samples, bits, n_frames = _image_size(ds)
    image_type = tuple(str(t).upper() for t in (getattr(ds, "ImageType", None) or ()))
    frame_bytes = rows * cols * samples * bits // 8
    if file_size is not None:
        _check_pixel_data(ds, pixel, file_size, (rows, cols, samples, bits, n_frames))
    base = dict(
        path=path, sop_uid=str(getattr(ds, "SOPInstanceUID", path.name)),
        instance_number=int(getattr(ds, "InstanceNumber", 0) or 0), rows=rows, cols=cols,
        acquisition_time=str(getattr(ds, "AcquisitionTime", "") or ""),
    )

    def geometry(src: Any) -> dict[str, Any]:  # corrupt values (NaN, zero vectors) count as missing
        pos = _floats(getattr(src, "ImagePositionPatient", None), 3)
        ori = _floats(getattr(src, "ImageOrientationPatient", None), 6)
        ps = _floats(getattr(src, "PixelSpacing", None), 2)
        if ori is not None and not all(abs(np.linalg.norm(v) - 1.0) < 0.01 for v in (ori[:3], ori[3:])):
            ori = None
        return dict(position=pos, orientation=ori,
                    pixel_spacing=(float(ps[0]), float(ps[1])) if ps is not None and min(ps) > 0 else None)

    if n_frames == 1 or "PerFrameFunctionalGroupsSequence" not in ds:
        if n_frames > 1:  # multi-frame without functional groups: frames share geometry
            pass
        geo = geometry(ds)
        out = []
        for k in range(n_frames):
            out.append(InstanceInfo(
                frame_index=k if n_frames > 1 else None, **base, **geo,
                slice_thickness=_float(getattr(ds, "SliceThickness", None)),
                slice_location=_float(getattr(ds, "SliceLocation", None)),
                inversion_time=_float(getattr(ds, "InversionTime", None)),
                trigger_time=_float(getattr(ds, "TriggerTime", None)),
                echo_time=_float(getattr(ds, "EchoTime", None)),
                image_type=image_type,
                rescale_slope=_float(getattr(ds, "RescaleSlope", 1)) or 1.0,
                rescale_intercept=_float(getattr(ds, "RescaleIntercept", 0)) or 0.0,
                expected_pixel_bytes=frame_bytes * n_frames, **_heart_tags(ds),
            ))
        return out

    # Enhanced MR: geometry and timing per frame in functional groups (shared, then per-frame).
    if len(ds.PerFrameFunctionalGroupsSequence) != n_frames:
        raise _Unusable(f"PerFrameFunctionalGroupsSequence has {len(ds.PerFrameFunctionalGroupsSequence)} "
                        f"items for NumberOfFrames {n_frames}")
    shared = _seq_item(ds, "SharedFunctionalGroupsSequence")
    out = []
    for k, frame in enumerate(ds.PerFrameFunctionalGroupsSequence):
        def group(keyword: str) -> Any:
            item = _seq_item(frame, keyword)
            return item if item is not None else (_seq_item(shared, keyword) if shared else None)
        plane_pos, plane_ori, measures = group("PlanePositionSequence"), group("PlaneOrientationSequence"), group("PixelMeasuresSequence")
        geo = geometry(type("G", (), {
            "ImagePositionPatient": getattr(plane_pos, "ImagePositionPatient", None),
            "ImageOrientationPatient": getattr(plane_ori, "ImageOrientationPatient", None),
            "PixelSpacing": getattr(measures, "PixelSpacing", None)})())
        modifier, cardiac = group("MRModifierSequence"), group("CardiacSynchronizationSequence")
        echo, transform = group("MREchoSequence"), group("PixelValueTransformationSequence")
        ftype = group("MRImageFrameTypeSequence")
        out.append(InstanceInfo(
            frame_index=k, **base, **geo,
            slice_thickness=_float(getattr(measures, "SliceThickness", None)),
            slice_location=None,
            inversion_time=_float(_first(getattr(modifier, "InversionTimes", None))) if modifier else None,
            trigger_time=_float(getattr(cardiac, "NominalCardiacTriggerDelayTime", None)) if cardiac else None,
            echo_time=_float(getattr(echo, "EffectiveEchoTime", None)) if echo else None,
            image_type=tuple(str(t).upper() for t in getattr(ftype, "FrameType", image_type)) if ftype else image_type,
            rescale_slope=_float(getattr(transform, "RescaleSlope", getattr(ds, "RescaleSlope", 1))) or 1.0,
            rescale_intercept=_float(getattr(transform, "RescaleIntercept", getattr(ds, "RescaleIntercept", 0))) or 0.0,
            expected_pixel_bytes=frame_bytes * n_frames,
            **_heart_tags(ds, cardiac, transform),
        ))
    return out


#: IS elements we parse with int(): a corrupt value (e.g. "x") is dropped, not the file.
_DROPPABLE_INTEGERS = ("SeriesNumber", "InstanceNumber")
_LONG_LENGTH_VRS = {str(vr).encode() for vr in pydicom.valuerep.EXPLICIT_VR_LENGTH_32}


def _pixel_element(fp: Any, ds: pydicom.Dataset) -> tuple[int | None, int] | None:
    """(declared value length, None when undefined; file offset of the value) of the pixel
    data element that ``fp`` stands at after ``dcmread(fp, stop_before_pixels=True)``;
    None when the file ends before (or inside the header of) that element."""
    start = fp.tell()
    head = fp.read(12)
    implicit, little = ds.original_encoding
    if len(head) < 8 or implicit is None:
        return None
    order = "<" if little else ">"
    if struct.unpack(order + "H", head[:2])[0] != 0x7FE0:
        return None
    if implicit:
        length, offset = struct.unpack(order + "L", head[4:8])[0], start + 8
    elif head[4:6] in _LONG_LENGTH_VRS:
        if len(head) < 12:
            return None
        length, offset = struct.unpack(order + "L", head[8:12])[0], start + 12
    else:
        length, offset = struct.unpack(order + "H", head[6:8])[0], start + 8
    return (None if length == 0xFFFFFFFF else length), offset


def _decode_header(ds: pydicom.Dataset) -> None:
    """Convert every standard element of ``ds`` (sequences included) now, so that a corrupt
    one (an unknown VR, a value that cannot be parsed) costs this file at scan time rather
    than failing later on access. Private elements are left raw: nothing here reads them."""
    for tag in list(ds.keys()):
        if tag.is_private:
            continue
        elem = ds[tag]
        if elem.VR == "SQ":
            for item in elem.value:
                _decode_header(item)


def _read_header(path: Path) -> tuple[pydicom.Dataset, tuple[int | None, int] | None, int]:
    """Header of ``path`` with every element decoded (so later access cannot fail), where
    its pixel data element is (:func:`_pixel_element`) and the file size. Raises
    :class:`_Unusable` with the reason for a file that is not a usable image header."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise _Unusable(f"cannot read: {exc.strerror or exc}") from None
    if size == 0:
        raise _Unusable("empty file (0 bytes)")
    try:
        with open(path, "rb") as fp:
            ds = pydicom.dcmread(fp, stop_before_pixels=True)
            syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
            pixel = None if syntax == DeflatedExplicitVRLittleEndian else _pixel_element(fp, ds)
            for part in (getattr(ds, "file_meta", None), ds):  # pydicom decodes lazily: do it here
                if part is not None:
                    _decode_header(part)
    except InvalidDicomError:
        raise _Unusable("not a DICOM file (no DICM preamble)", salvage=True) from None
    except OSError as exc:
        if exc.errno is not None:  # the file system's refusal, not pydicom's parse error
            raise _Unusable(f"cannot read: {exc.strerror or exc}") from None
        raise _Unusable(f"unreadable DICOM header (truncated or corrupt): {_describe(exc)}", salvage=True) from None
    except Exception as exc:  # pydicom raises many types on damaged files
        raise _Unusable(f"unreadable DICOM header (truncated or corrupt): {_describe(exc)}", salvage=True) from None
    uid = str(ds.SeriesInstanceUID) if "SeriesInstanceUID" in ds else ""
    if "Rows" not in ds or "Columns" not in ds:
        if not len(ds):
            raise _Unusable("truncated or empty: no data elements after the file meta information")
        sops = (getattr(ds, "SOPClassUID", None), getattr(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID", None))
        names = [_short(getattr(u, "name", str(u)), 80) for u in sops if u]
        image = next((n for n in names if "Image Storage" in n), "")
        if image:  # an image class (in the dataset or the file meta) without image attributes: cut short
            raise _Unusable.of_image(f"truncated or incomplete header: {image} without Rows/Columns", ds)
        name = names[0] if names else "unknown SOP class"
        raise _Unusable(f"{_NON_IMAGE_HINT} [{name}]")
    if pixel is None and syntax != DeflatedExplicitVRLittleEndian:
        raise _Unusable.of_image("truncated: the file ends before its pixel data", ds)
    if not uid:
        raise _Unusable("no SeriesInstanceUID")
    for keyword in _DROPPABLE_INTEGERS:
        if keyword in ds and _float(ds.get(keyword)) is None:
            del ds[keyword]
    return ds, pixel, size


def _scan_file(path: Path) -> tuple[pydicom.Dataset, list[InstanceInfo]]:
    """Header and images of one file; raises :class:`_Unusable` (with its series when known)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns on each odd value; the reason says what matters
        ds, pixel, size = _read_header(path)
        try:
            return ds, _instances_of(path, ds, pixel, size)
        except Exception as exc:
            reason = exc.reason if isinstance(exc, _Unusable) else f"unusable image header: {_describe(exc)}"
            raise _Unusable.of_image(reason, ds) from None


def _salvage_series_uid(path: Path, known: set[str]) -> str:
    """The SeriesInstanceUID (0020,000E) of a file pydicom cannot parse, found verbatim in
    its first MiB (explicit or implicit VR little endian), when it is one of ``known``."""
    try:
        with open(path, "rb") as fp:
            data = fp.read(1 << 20)
    except OSError:
        return ""
    for match in re.finditer(re.escape(b"\x20\x00\x0e\x00"), data):
        at = match.end()
        for length_fmt, length_at in (("<H", at + 2), ("<L", at)):  # explicit (after "UI"), implicit
            if length_at + struct.calcsize(length_fmt) > len(data):
                continue
            n = struct.unpack_from(length_fmt, data, length_at)[0]
            uid = data[at + 4:at + 4 + n].rstrip(b"\0 ").decode("ascii", "replace") if n <= 64 else ""
            if uid in known:
                return uid
    return ""


def _suspected_losses(s: SeriesInfo, instances: list[InstanceInfo], lost: list[_Unusable]) -> list[str]:
    """Losses no readable header shows: InstanceNumber gaps (in dense numbering, over all
    ``instances`` of the SeriesInstanceUID) and an IRW series whose inversion groups fit
    exactly one scheme of the family its description names, with fewer frames. Reported only
    when more frames are missing than the files known to be lost (``lost``) explain."""
    notes = []
    lost_numbers = {e.instance_number for e in lost if e.instance_number}
    unnumbered = sum(1 for e in lost if not e.instance_number)
    numbers = {i.instance_number for i in instances if i.instance_number > 0}
    if len(numbers) >= 2 and max(numbers) - min(numbers) + 1 <= 2 * len(numbers):
        lo, hi = min(numbers), max(numbers)
        missing = sorted(set(range(lo, hi + 1)) - numbers - lost_numbers)
        if len(missing) > unnumbered:
            shown = ", ".join(map(str, missing[:5])) + (", ..." if len(missing) > 5 else "")
            notes.append(f"InstanceNumber {shown} missing between {lo} and {hi}: "
                         f"{len(missing)} file(s) of this series may be lost")
    desc = s.description.lower()
    family = set()  # the schemes the description allows: none named, no guess
    if "shmolli" in desc:
        family = {"ShMOLLI"}
    elif "molli" in desc:
        family = set(_SCHEMES.values()) - {"ShMOLLI"}
    if s.kind == "irw" and family:
        short, example = 0, ""
        for group in _group_slices(s.instances).values():
            found = _inversion_groups(group)
            fits = [(scheme, name) for scheme, name in _SCHEMES.items() if name in family and found != scheme
                    and len(scheme) == len(found) and all(a <= b for a, b in zip(found, scheme))]
            if len(fits) == 1:
                short += sum(fits[0][0]) - len(group)
                example = example or (f"{fits[0][1]} expects {sum(fits[0][0])} frames, found {len(group)} "
                                      f"(inversion groups {found})")
        if short > len(s.unreadable_files):
            notes.append(f"{example}: {short} frame(s) may be lost")
    return notes


def _record_losses(s: SeriesInfo, instances: list[InstanceInfo], lost: list[tuple[SkippedFile, _Unusable]],
                   split: bool) -> None:
    """Tie the skipped files of this SeriesInstanceUID to ``s`` (for a series split by image
    flavour, to the part of the same flavour when the file's ImageType is known)."""
    code = _flavour(s.instances[0])
    mine = [(item, e) for item, e in lost if not split or e.image_type is None
            or _flavour(SimpleNamespace(image_type=e.image_type)) == code]
    s.unreadable_files = [item for item, _ in mine]
    if mine:
        n, first = len(mine), mine[0][0]
        s.warnings.append(f"{n} file{'s' if n > 1 else ''} of this series unreadable: {first.path.name} "
                          f"({first.reason})" + (f" and {n - 1} more" if n > 1 else ""))
    s.warnings.extend(_suspected_losses(s, instances, [e for _, e in mine]))


def scan_folder(folder: str | Path, progress: ProgressCallback | None = None) -> DicomScan:
    """Find, group and classify the DICOM series below ``folder`` (headers only).

    Unusable files are listed in ``DicomScan.skipped`` with the reason, and in
    ``SeriesInfo.unreadable_files`` of their series when it is known; a folder without
    any DICOM image raises :class:`DicomError`. Nothing is written anywhere.
    """
    root = Path(folder)
    if not root.exists():
        raise InputError(f"folder not found: {root}")
    skipped: list[SkippedFile] = []
    files = [root] if root.is_file() else list(_walk_files(root, skipped))
    return scan_files(files, root, progress, skipped)


def scan_files(files: list[Path], root: str | Path, progress: ProgressCallback | None = None,
               skipped: list[SkippedFile] | None = None) -> DicomScan:
    """:func:`scan_folder` of the given files only (``root`` names the scan): e.g. the files of a
    folder that are complete while others are still arriving (`cmr quality watch`)."""
    root = Path(root)
    files = [Path(f) for f in files]
    skipped = list(skipped or [])
    by_series: dict[str, list[InstanceInfo]] = defaultdict(list)
    headers: dict[str, pydicom.Dataset] = {}
    unusable: list[tuple[SkippedFile, _Unusable]] = []
    for k, path in enumerate(files):
        report(progress, "scan", k, len(files), path.name)
        try:
            ds, instances = _scan_file(path)
        except _Unusable as exc:
            skipped.append(SkippedFile(path, exc.reason))
            unusable.append((skipped[-1], exc))
            continue
        except Exception as exc:  # not foreseen: still costs only this file
            skipped.append(SkippedFile(path, f"unreadable: {_describe(exc)}"))
            continue
        uid = str(ds.SeriesInstanceUID)
        by_series[uid].extend(instances)
        headers.setdefault(uid, ds)
    report(progress, "scan", len(files), len(files), "grouping series")
    lost: dict[str, list[tuple[SkippedFile, _Unusable]]] = defaultdict(list)
    for item, exc in unusable:
        if not exc.series_uid and exc.salvage:
            exc.series_uid = _salvage_series_uid(item.path, set(by_series))
        if exc.series_uid in by_series:
            lost[exc.series_uid].append((item, exc))
    series = []
    for uid, inst in by_series.items():
        try:
            parts = _split_by_flavour(inst)
            made = []
            for flavour, part in parts.items():
                s = _make_series(uid, part, headers[uid])
                if flavour:  # one vendor series holding e.g. magnitude and PSIR/phase images
                    s.description = f"{s.description} [{flavour}]"
                    s.kind, s.subtype, s.kind_reason = _classify(s, _group_slices(part), set(part[0].image_type))
                made.append(s)
            for s in made:
                _record_losses(s, inst, lost.get(uid, []), len(made) > 1)
        except Exception as exc:  # never fatal: the files of this series are listed instead
            reason = f"series {uid} could not be assembled: {_describe(exc)}"
            skipped.extend(SkippedFile(p, reason) for p in sorted({i.path for i in inst}))
            continue
        series.extend(made)
    if not series:
        detail = "; ".join(f"{s.path.name}: {s.reason}" for s in skipped[:5])
        raise DicomError(f"no DICOM image found in {root} ({len(files)} file(s) looked at"
                         + (f"; e.g. {detail}" if detail else "") + ")")
    series.sort(key=lambda s: (s.series_number if s.series_number is not None else 1 << 30, s.description))
    return DicomScan(root=root, series=series, skipped=skipped)


# ---------------------------------------------------------------------------------------
# grouping and classification
# ---------------------------------------------------------------------------------------
def _flavour(inst: InstanceInfo) -> str:
    """Pixel flavour from ImageType: PSIR, or the value-type field M/P/R/I (magnitude, phase, ...)."""
    if any("PSIR" in t for t in inst.image_type):
        return "PSIR"
    return inst.image_type[2] if len(inst.image_type) > 2 and inst.image_type[2] in ("M", "P", "R", "I") else ""


def _heart_tags(ds: Any, cardiac: Any = None, transform: Any = None) -> dict[str, Any]:
    """NominalInterval (ms), HeartRate (bpm) and whether rescale tags exist, for an InstanceInfo."""
    nominal = _float(getattr(ds, "NominalInterval", None))
    if nominal is None and cardiac is not None:  # enhanced MR: RRIntervalTimeNominal in the cardiac group
        nominal = _float(getattr(cardiac, "RRIntervalTimeNominal", None))
    rate = _float(getattr(ds, "HeartRate", None))
    present = any(getattr(x, k, None) is not None for x in (ds, transform) if x is not None
                  for k in ("RescaleSlope", "RescaleIntercept")) \
        or getattr(ds, "RealWorldValueMappingSequence", None) is not None
    return {"nominal_interval_ms": nominal if nominal and nominal > 0 else None,
            "heart_rate_bpm": rate if rate and rate > 0 else None, "rescale_present": bool(present)}


def _split_by_flavour(instances: list[InstanceInfo]) -> dict[str, list[InstanceInfo]]:
    """{"": all} normally; one part per flavour when a series mixes e.g. magnitude and phase."""
    parts: dict[str, list[InstanceInfo]] = defaultdict(list)
    for inst in instances:
        parts[_flavour(inst)].append(inst)
    if len(parts) <= 1:
        return {"": instances}
    names = {"M": "magnitude", "P": "phase", "R": "real", "I": "imaginary", "PSIR": "PSIR", "": "other"}
    return {names[k]: v for k, v in parts.items()}


def _slice_key(inst: InstanceInfo, normal: np.ndarray | None) -> float:
    if inst.position is not None and normal is not None:
        return round(float(np.dot(inst.position, normal)), 2)
    if inst.slice_location is not None:
        return round(inst.slice_location, 2)
    return 0.0


def _acquisition_order(inst: InstanceInfo) -> tuple:
    return (inst.acquisition_time, inst.instance_number, inst.frame_index or 0)


def _group_slices(instances: list[InstanceInfo]) -> dict[float, list[InstanceInfo]]:
    normal = next((i.normal for i in instances if i.normal is not None), None)
    groups: dict[float, list[InstanceInfo]] = defaultdict(list)
    for inst in instances:
        groups[_slice_key(inst, normal)].append(inst)
    return dict(sorted(groups.items()))


def _distinct(values: list[float | None], tol: float = 0.5) -> list[float]:
    out: list[float] = []
    for v in sorted(v for v in values if v is not None):
        if not out or abs(v - out[-1]) > tol:
            out.append(v)
    return out


def _inversion_groups(instances: list[InstanceInfo]) -> tuple[int, ...]:
    """Images per inversion, from TI drops in acquisition order (e.g. (5, 3) for MOLLI 5(3)3)."""
    tis = [i.inversion_time for i in sorted(instances, key=_acquisition_order)]
    if any(t is None for t in tis):
        return ()
    groups, count = [], 1
    for prev, cur in zip(tis, tis[1:]):
        if cur < prev:
            groups.append(count)
            count = 1
        else:
            count += 1
    groups.append(count)
    return tuple(groups)


def _irw_subtype(description: str, n: int, groups: tuple[int, ...]) -> tuple[str, str]:
    desc = description.lower()
    if "shmolli" in desc:
        return "ShMOLLI", f"description says ShMOLLI; {n} frames"
    scheme = _SCHEMES.get(groups)
    if "molli" in desc:
        if scheme and scheme != "ShMOLLI":
            return scheme, f"description says MOLLI; inversions of {groups} images"
        named = {8: "MOLLI 5(3)3", 11: "MOLLI 3(3)3(3)5", 9: "MOLLI 4(1)3(1)2"}.get(n)
        return (named or f"MOLLI ({n} frames)"), f"description says MOLLI; {n} frames"
    if scheme:
        return scheme, f"inversions of {groups} images in acquisition order"
    if n == 7:
        return "ShMOLLI", "7 frames: ShMOLLI sampling assumed (description names no scheme)"
    return f"IR ({n} frames)", f"{n} inversion times; scheme not named in description"


_CINE_WORDS = re.compile(r"cine|ssfp|trufi|true\s*fisp|fiesta|balanced|sax|lax|[234]ch")
_LGE_WORDS = re.compile(r"lge|late|delayed|\bde\b|de_|psir|mag|scar|viab|ir[_ ]?(fl|gre|tfl)|phase\s*sensitive")
_MAP_WORDS = re.compile(r"t1\s*_?map|t1map|t1\s*mapping\s*result|moco_t1|\bt1 map\b|native\s*t1|post\s*t1")
#: derived fit-parameter series beside a scanner T1 map (vendor / ShMOLLI prototype conventions)
_FIT_WORDS = re.compile(r"fit\s*_?par|fitparam|fit\s*_?(err|res)|goodness|\br\s*\^?2\b|r2\s*_?map|_r2\b|rsq|chi\s*2"
                        r"|t1\s*\*|t1\s*star|t1s_?map|\bsd\s*_?map|_sd\b|\bsd$|std\s*_?map|error\s*_?map|amplitude"
                        r"|\bn\s*_?samples\b")
_FIT_TYPES = {"FIT", "FITPARAMS", "R2", "RSQ", "T1STAR", "T1*", "SD", "STDDEV", "ERR", "ERROR", "CHI2"}
_COLOUR_WORDS = re.compile(r"colou?r|_col\b|\brgb\b")
_MOCO_WORDS = re.compile(r"moco|motion\s*_?corr")


def _is_vendor_moco(series: SeriesInfo, itype: set[str]) -> bool:
    """Scanner motion-corrected IRW frames: ImageType token or description MOCO."""
    return any("MOCO" in t for t in itype) or _MOCO_WORDS.search(series.description.lower()) is not None


def _classify(series: SeriesInfo, slices: dict[float, list[InstanceInfo]], itype: set[str]) -> tuple[str, str, str]:
    desc = series.description.lower()
    n_ti = max(len(_distinct([i.inversion_time for i in g])) for g in slices.values())
    n_tt = max(len(_distinct([i.trigger_time for i in g], tol=0.1)) for g in slices.values())
    frames = max(len(g) for g in slices.values())
    irw_like = n_ti >= 3 and frames >= 5
    type_text = "\\".join(sorted(itype))
    map_type = any("MAP" in t for t in itype)
    colour = (str(series.header.get("PhotometricInterpretation", "")).upper().startswith(("RGB", "PALETTE", "YBR"))
              or any(t in ("COLOR", "COLOUR", "RGB") for t in itype))
    # vendor map conventions first: a map's ImageType value 3 may be P (not phase), and
    # fit-parameter series are never IRW frames or phase images
    if (_FIT_WORDS.search(desc) or itype & _FIT_TYPES) and (map_type or "map" in desc or "fit" in desc
                                                             or not irw_like):
        return "fit_map", "", ("description or ImageType names fit parameters "
                               f"({series.description!r}, ImageType {type_text}): a derived map, not IRW frames")
    if (colour or _COLOUR_WORDS.search(desc)) and (map_type or _MAP_WORDS.search(desc)):
        why = "RGB / palette pixels" if colour else "description says colour"
        return "map_display", "colour display", f"{why} of a T1 map: a display image, not quantitative values"
    if map_type or (_MAP_WORDS.search(desc) and not irw_like):
        why = (f"ImageType {type_text} contains MAP" if map_type else
               f"description {series.description!r} names a T1 map")
        if series.instances and all(_flavour(i) == "P" for i in series.instances):
            why += " (ImageType value 3 P is the vendor's map convention here, not phase)"
        return "t1map", "", why + (f"; {n_ti} InversionTime value(s)" if n_ti else "")
    if series.instances and all(_flavour(i) == "P" for i in series.instances):
        return "unknown", "", "phase images (ImageType value type P): not a CMR magnitude series"
    if n_ti >= 3:
        first = next(iter(slices.values()))
        subtype, why = _irw_subtype(series.description, len(first), _inversion_groups(first))
        if _is_vendor_moco(series, itype):
            subtype += " (vendor MOCO)"
            why += "; motion-corrected by the scanner (MOCO): use --method none"
        return "irw", subtype, f"{n_ti} distinct InversionTime values at one slice position ({why})"
    if re.search(r"\bvne\b|virtual native", desc):
        return "vne", "", "description names VNE (virtual native enhancement, LGE-like native contrast)"
    three_d = series.header.get("MRAcquisitionType", "").upper() == "3D"
    if three_d and (_LGE_WORDS.search(desc) or n_ti == 1) and re.search(r"\bla\b|atri|af\b|fibrosis|3d", desc):
        return "la_lge", "", "3-D inversion-recovery acquisition described as left-atrial / 3D LGE"
    psir = any("PSIR" in t for t in itype) or "psir" in desc
    magnitude_word = re.search(r"\bmag\b|magn|_mag", desc) is not None
    if psir and not magnitude_word:
        return "lge_psir", "", "ImageType or description says PSIR (signed real inversion-recovery image)"
    if (psir and magnitude_word) or (n_ti <= 1 and frames <= 2 and _LGE_WORDS.search(desc)) \
            or (n_ti == 1 and n_tt <= 1 and frames == 1 and not _CINE_WORDS.search(desc)):
        ti = _distinct([i.inversion_time for g in slices.values() for i in g])
        ti_text = f"single TI {ti[0]:g} ms" if ti else "no InversionTime"
        return "lge_magnitude", "", f"inversion-recovery image, {ti_text}, one image per slice"
    if n_tt >= 5:
        return "cine", "", f"{n_tt} cardiac phases (TriggerTime) per slice position"
    seen = f"{frames} image(s) per slice, {n_ti} InversionTime and {n_tt} TriggerTime value(s)"
    return "unknown", "", f"no CMR pattern matched: {seen}, description {series.description!r}"


def _make_series(uid: str, instances: list[InstanceInfo], ds: pydicom.Dataset) -> SeriesInfo:
    s = SeriesInfo(
        series_uid=uid,
        study_uid=str(getattr(ds, "StudyInstanceUID", "")),
        description=str(getattr(ds, "SeriesDescription", "") or ""),
        series_number=int(ds.SeriesNumber) if getattr(ds, "SeriesNumber", None) not in (None, "") else None,
        modality=str(getattr(ds, "Modality", "") or ""),
        instances=instances,
        field_strength_t=_float(getattr(ds, "MagneticFieldStrength", None)),
        patient_id=str(getattr(ds, "PatientID", "") or ""),
    )
    s.header = {k: str(getattr(ds, k)) for k in ("PatientName", "StudyDate", "StudyDescription",
                                                   "Manufacturer", "FrameOfReferenceUID", "MRAcquisitionType",
                                                   "PhotometricInterpretation")
                if getattr(ds, k, None) not in (None, "")}
    sizes = Counter((i.rows, i.cols) for i in instances)
    s.rows, s.cols = sizes.most_common(1)[0][0]
    if len(sizes) > 1:
        odd = [i for i in instances if (i.rows, i.cols) != (s.rows, s.cols)]
        s.problems.append(f"mixed matrix sizes {dict(sizes)}: e.g. {odd[0].path} is {odd[0].rows}x{odd[0].cols}, "
                          f"most are {s.rows}x{s.cols}")
    no_spacing = [i for i in instances if i.pixel_spacing is None]
    if no_spacing:
        s.problems.append(f"missing PixelSpacing in {len(no_spacing)} image(s), e.g. {no_spacing[0].path}")
    no_geometry = [i for i in instances if i.position is None or i.orientation is None]
    if no_geometry:
        s.problems.append(f"missing ImagePositionPatient/ImageOrientationPatient in {len(no_geometry)} "
                          f"image(s), e.g. {no_geometry[0].path}")
    orientations = {tuple(np.round(i.orientation, 3)) for i in instances if i.orientation is not None}
    if len(orientations) > 1:
        s.problems.append(f"{len(orientations)} different slice orientations in one series (localizer?)")
    slices = _group_slices(instances)
    counts = Counter(len(g) for g in slices.values())
    s.n_slices, s.n_frames = len(slices), counts.most_common(1)[0][0]
    if len(counts) > 1:
        s.problems.append(f"slices have different numbers of frames {dict(sorted(counts.items()))}")
    itype = {t for i in instances for t in i.image_type}
    s.kind, s.subtype, s.kind_reason = _classify(s, slices, itype)
    first = next(iter(slices.values()))
    if s.kind == "irw":
        s.inversion_times_ms = sorted(i.inversion_time for i in first if i.inversion_time is not None)
        tis = s.inversion_times_ms
        if len(_distinct(tis, tol=1e-3)) != len(tis):
            s.problems.append(f"duplicate InversionTime values {tis} at one slice position")
    else:
        s.inversion_times_ms = _distinct([i.inversion_time for i in first])
    s.trigger_times_ms = _distinct([i.trigger_time for i in first], tol=0.1)
    s.vendor_moco = s.kind == "irw" and _is_vendor_moco(s, itype)
    _heart_rate(s, first)
    if s.kind in ("t1map", "fit_map") and not any(i.rescale_present for i in instances):
        s.header["rescale"] = "no RescaleSlope/RescaleIntercept: stored values taken as the map's units (ms)"
    return s


def _heart_rate(s: SeriesInfo, first: list[InstanceInfo]) -> None:
    """R-R (ms) of ``s`` from NominalInterval, else HeartRate, else cumulative TriggerTime steps;
    a series mixing heart rates (two acquisitions in one series) is a problem."""
    nominal = [i.nominal_interval_ms for i in s.instances if i.nominal_interval_ms]
    rates = [i.heart_rate_bpm for i in s.instances if i.heart_rate_bpm]
    rr = nominal or [60000.0 / r for r in rates]
    if rr:
        lo, hi = min(rr), max(rr)
        if s.kind == "irw" and hi > 1.25 * lo:
            groups = _distinct(rr, tol=0.1 * float(np.median(rr)))
            s.problems.append("IRW frames were acquired at different heart rates ("
                              + ", ".join(f"{60000.0 / g:.0f}" for g in groups)
                              + " bpm): two acquisitions in one series? Fit each breath-hold separately")
        s.rr_ms = float(np.median(rr))
        s.rr_source = "NominalInterval" if nominal else "HeartRate"
        s.header["rr_ms"], s.header["rr_source"] = s.rr_ms, s.rr_source
        return
    if s.kind != "irw":
        return
    times = [i.trigger_time for i in sorted(first, key=_acquisition_order) if i.trigger_time is not None]
    steps = np.diff(times) if len(times) >= 3 else np.array([])
    steps = steps[steps > 250.0]  # cumulative trigger times (some vendors): one R-R per image of an inversion
    if steps.size >= 2:
        s.rr_ms = float(np.median(steps))
        s.rr_source = "TriggerTime steps"
        s.header["rr_ms"], s.header["rr_source"] = s.rr_ms, s.rr_source


# ---------------------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------------------
def _frame_sort_key(kind: str) -> Callable[[InstanceInfo], tuple]:
    if kind == "irw":  # IRW frames by inversion time (ms), as fitting and MOCO expect
        return lambda i: (i.inversion_time if i.inversion_time is not None else math.inf, *_acquisition_order(i))
    return lambda i: (i.trigger_time if i.trigger_time is not None else 0.0, *_acquisition_order(i))


def _pixels(inst: InstanceInfo, cache: dict[Path, np.ndarray]) -> np.ndarray:
    """The rescaled float32 pixels of one image; raises :class:`DicomError` naming the file
    (whatever pydicom or numpy raised on it: the reason is the one-line message)."""
    try:
        if inst.path not in cache:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cache[inst.path] = pydicom.dcmread(inst.path).pixel_array
        data = cache[inst.path]
        if inst.frame_index is not None and data.ndim == 3:
            data = data[inst.frame_index]
    except OSError as exc:
        if exc.errno is None:  # pydicom's parse errors are OSErrors too
            raise DicomError(f"{inst.path}: cannot decode pixel data ({_describe(exc)})") from exc
        raise DicomError(f"{inst.path}: cannot read since the scan ({exc.strerror or exc})") from exc
    except Exception as exc:
        raise DicomError(f"{inst.path}: cannot decode pixel data ({_describe(exc)})") from exc
    if data.shape != (inst.rows, inst.cols):
        raise DicomError(f"{inst.path}: pixel data is {data.shape}, header says {inst.rows}x{inst.cols}")
    return data.astype(np.float32) * np.float32(inst.rescale_slope) + np.float32(inst.rescale_intercept)


def _decode_frames(series: SeriesInfo, progress: ProgressCallback | None,
                   ) -> tuple[list[list[InstanceInfo]], dict[int, np.ndarray], list[SkippedFile]]:
    """Pixels of every image of ``series``: (slices of frames in load order, pixels by
    ``id(instance)``, files lost now). A file that fails to decode is dropped, with all its
    images, when the rest still has the same number of frames at every slice; otherwise
    :class:`DicomError` names it."""
    slices = _group_slices(series.instances)
    key = _frame_sort_key(series.kind)
    ordered = [sorted(g, key=key) for g in slices.values()]
    cache: dict[Path, np.ndarray] = {}
    pixels: dict[int, np.ndarray] = {}
    failed: dict[Path, str] = {}
    total = sum(len(g) for g in ordered)
    done = 0
    for group in ordered:
        for inst in group:
            report(progress, "load", done, total, inst.path.name)
            done += 1
            if inst.path in failed:
                continue
            try:
                pixels[id(inst)] = _pixels(inst, cache)
            except DicomError as exc:
                failed[inst.path] = str(exc).removeprefix(f"{inst.path}: ")
            if inst.frame_index is None:  # a classic file holds one image: free it now
                cache.pop(inst.path, None)
    report(progress, "load", total, total, "done")
    if not failed:
        return ordered, pixels, []
    lost = [SkippedFile(p, why) for p, why in failed.items()]
    kept = [[i for i in g if i.path not in failed] for g in ordered]
    counts = sorted({len(g) for g in kept})
    if counts[0] == 0 or len(counts) > 1:
        first = lost[0]
        raise DicomError(f"{first.path}: {first.reason}; "
                         f"without the {len(lost)} undecodable file(s) the series {series.description!r} has "
                         f"{' or '.join(map(str, counts))} frame(s) per slice, not a complete series")
    return kept, pixels, lost


def load_series(series: SeriesInfo, progress: ProgressCallback | None = None) -> Image:
    """Read the pixels of ``series`` into an Image (LPS geometry, per-frame metadata).

    Volume ``[slice,row,col]`` when each slice has one image; otherwise a sequence
    ``[frame,row,col]`` (one slice) or ``[frame,slice,row,col]``. IRW frames are ordered by
    InversionTime, cine frames by TriggerTime. Raises :class:`DicomError` naming the file
    for series that cannot be assembled (mixed sizes, missing geometry, ...).

    Lost files: ``meta["unreadable_files"]`` lists, as ``{"path", "reason"}`` dicts, the
    files of the series the scan skipped (``series.unreadable_files``) and those whose
    pixels fail to decode now; the latter are dropped when the remaining images still have
    the same number of frames at every slice, else the series is refused (DicomError naming
    the file). ``meta["warnings"]`` holds the series warnings and geometry notes.
    """
    if series.problems:
        raise DicomError(f"series {series.description!r} ({series.series_uid}) cannot be loaded: "
                         + "; ".join(series.problems + series.warnings))
    ordered, pixels, lost_now = _decode_frames(series, progress)
    n_frames = len(ordered[0])
    data = np.empty((n_frames, len(ordered), series.rows, series.cols), np.float32)
    for s, group in enumerate(ordered):
        for f, inst in enumerate(group):
            data[f, s] = pixels.pop(id(inst))
    try:
        return _assemble(series, ordered, data, lost_now)
    except CMRError:
        raise
    except Exception as exc:  # corrupt geometry values that slipped through: still one line
        raise DicomError(f"series {series.description!r} ({series.series_uid}): cannot assemble the "
                         f"image geometry ({_describe(exc)}), e.g. {ordered[0][0].path}") from exc


def _assemble(series: SeriesInfo, ordered: list[list[InstanceInfo]], data: np.ndarray,
              lost_now: list[SkippedFile]) -> Image:
    """The Image of decoded ``data`` [frame, slice, row, col] with geometry and metadata."""
    n_frames = len(ordered[0])
    first = ordered[0][0]
    row_dir, col_dir = first.orientation[:3], first.orientation[3:]
    normal = np.cross(row_dir, col_dir)
    positions = np.array([g[0].position for g in ordered])
    notes: list[str] = []  # geometry facts worth reporting; the SeriesInfo is left untouched
    if len(ordered) > 1:
        steps = np.diff(positions @ normal)
        dz = float(np.median(steps))
        if np.ptp(steps) > 0.01 * abs(dz) + 1e-3:
            notes.append(f"irregular slice spacing {np.round(steps, 3).tolist()} mm; median used")
        along = positions[-1] - positions[0]
        if np.linalg.norm(np.cross(along / np.linalg.norm(along), normal)) > 1e-3:
            notes.append("slice positions are not along the slice normal (gantry tilt / shear)")
    else:
        dz = first.slice_thickness or 1.0
    spacing = (first.pixel_spacing[1], first.pixel_spacing[0], abs(dz) if dz else 1.0)
    meta: dict[str, Any] = {
        "SeriesInstanceUID": series.series_uid, "StudyInstanceUID": series.study_uid,
        "SeriesDescription": series.description, "SeriesNumber": series.series_number,
        "Modality": series.modality, "kind": series.kind, "subtype": series.subtype,
        "MagneticFieldStrength": series.field_strength_t, "PatientID": series.patient_id,
        "ImageType": list(first.image_type), "SliceThickness": first.slice_thickness,
        "SliceLocations": [float(p @ normal) for p in positions], **series.header,
    }
    if n_frames == 1:  # a volume: each slice's own trigger time (LGE slices are separate breath-holds)
        triggers = [g[0].trigger_time for g in ordered]
        if any(t is not None for t in triggers):
            meta["TriggerTimes"] = [None if t is None else float(t) for t in triggers]
    lost = [*series.unreadable_files, *lost_now]
    meta["unreadable_files"] = _skipped_dicts(lost)
    notes += series.warnings
    if lost_now:
        n = len(lost_now)
        notes.append(f"{n} file{'s' if n > 1 else ''} of this series could not be decoded when loading: "
                     f"{lost_now[0].path.name} ({lost_now[0].reason})" + (f" and {n - 1} more" if n > 1 else ""))
    if notes:
        meta["warnings"] = notes
    frame_meta = [{
        "InversionTime": ordered[0][f].inversion_time, "TriggerTime": ordered[0][f].trigger_time,
        "EchoTime": ordered[0][f].echo_time, "ImageType": list(ordered[0][f].image_type),
        "InstanceNumber": ordered[0][f].instance_number,
    } for f in range(n_frames)]
    frame_meta = [{k: v for k, v in fm.items() if v is not None} for fm in frame_meta]
    direction = np.column_stack([row_dir, col_dir, normal if dz >= 0 else -normal])
    if n_frames == 1:
        return Image(data[0], spacing, tuple(positions[0]), direction, False, meta, [])
    array = data[:, 0] if len(ordered) == 1 else data
    return Image(array, spacing, tuple(positions[0]), direction, True, meta, frame_meta)


def unreadable_notes(image: Image, missing_from: str = "this result") -> list[str]:
    """The note every result made from a series that lost files must carry (``meta["unreadable_files"]``,
    set by :func:`load_series`): how many, and the first file names with their reasons."""
    lost = image.meta.get("unreadable_files") or []
    if not lost:
        return []
    names = "; ".join(f"{Path(f['path']).name}: {f['reason']}" for f in lost[:3]) + (" …" if len(lost) > 3 else "")
    return [f"{len(lost)} file(s) of this series could not be read and are missing from {missing_from} ({names})"]

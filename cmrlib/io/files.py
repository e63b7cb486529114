"""NRRD / NIfTI / MHA reading and writing of :class:`~cmrlib.image.Image` via SimpleITK.

A sequence is written as a 4-D image (frames last in ITK order, i.e. first in the array);
``meta`` and ``frame_meta`` travel in the header as JSON (NRRD and MHA keep them, NIfTI
does not). SimpleITK works in LPS, like :class:`Image`, so no axis flips happen here.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from ..image import Image
from ..atomic import replace_file

SUFFIXES = (".nrrd", ".nhdr", ".nii", ".nii.gz", ".mha", ".mhd")
_META_KEY = "cmr_meta"
_FRAME_META_KEY = "cmr_frame_meta"


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def to_sitk(image: Image) -> sitk.Image:
    """The Image as a SimpleITK image (4-D for a sequence)."""
    if image.is_sequence:
        frames = [sitk.GetImageFromArray(np.ascontiguousarray(f)) for f in image.frames()]
        for f in frames:
            f.SetSpacing(image.spacing)
            f.SetOrigin(image.origin)
            f.SetDirection(image.direction.flatten().tolist())
        out = sitk.JoinSeries(frames)
    else:
        out = sitk.GetImageFromArray(np.ascontiguousarray(image.array))
        out.SetSpacing(image.spacing)
        out.SetOrigin(image.origin)
        out.SetDirection(image.direction.flatten().tolist())
    return out


def from_sitk(img: sitk.Image, meta: dict[str, Any] | None = None,
              frame_meta: list[dict[str, Any]] | None = None) -> Image:
    """An Image from a 2-D, 3-D (volume) or 4-D (sequence of 3-D frames) SimpleITK image."""
    dim = img.GetDimension()
    array = sitk.GetArrayFromImage(img)
    if dim == 2:
        sp, org = img.GetSpacing(), img.GetOrigin()
        d = np.asarray(img.GetDirection()).reshape(2, 2)
        direction = np.eye(3)
        direction[:2, :2] = d
        return Image(array[None], (sp[0], sp[1], 1.0), (org[0], org[1], 0.0), direction, False, meta or {}, [])
    if dim == 3:
        return Image(array, img.GetSpacing(), img.GetOrigin(),
                     np.asarray(img.GetDirection()).reshape(3, 3), False, meta or {}, [])
    if dim == 4:
        d4 = np.asarray(img.GetDirection()).reshape(4, 4)
        fm = frame_meta if frame_meta and len(frame_meta) == array.shape[0] else [{} for _ in range(array.shape[0])]
        arr = array[:, 0] if array.shape[1] == 1 else array
        return Image(arr, img.GetSpacing()[:3], img.GetOrigin()[:3], d4[:3, :3], True, meta or {}, fm)
    raise InputError(f"unsupported image dimension {dim}")


def read_image(path: str | Path) -> Image:
    """Read NRRD / NIfTI / MHA into an Image (metadata restored when the header has it)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"image file not found: {path}")
    if _suffix(path) not in SUFFIXES:
        raise InputError(f"{path}: unsupported image format; expected one of {', '.join(SUFFIXES)}")
    try:
        img = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise InputError(f"{path}: cannot read image ({str(exc).strip().splitlines()[-1]})") from exc
    meta = json.loads(img.GetMetaData(_META_KEY)) if img.HasMetaDataKey(_META_KEY) else {}
    frame_meta = json.loads(img.GetMetaData(_FRAME_META_KEY)) if img.HasMetaDataKey(_FRAME_META_KEY) else None
    return from_sitk(img, meta, frame_meta)


def write_image(image: Image, path: str | Path, compress: bool = True) -> Path:
    """Write an Image as NRRD / NIfTI / MHA (chosen by suffix), atomically (no partial files)."""
    path = Path(path)
    suffix = _suffix(path)
    if suffix not in SUFFIXES:
        raise InputError(f"{path}: unsupported image format; expected one of {', '.join(SUFFIXES)}")
    img = to_sitk(image)
    if image.meta:
        img.SetMetaData(_META_KEY, json.dumps(image.meta, default=_json_default))
    if image.is_sequence and image.frame_meta:
        img.SetMetaData(_FRAME_META_KEY, json.dumps(image.frame_meta, default=_json_default))
    return _write_atomic(img, path, compress)


def _write_atomic(img: sitk.Image, path: Path, compress: bool = True) -> Path:
    """Write next to the target then rename: an interrupted write leaves no partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=_suffix(path), prefix=".tmp-", dir=path.parent)
    os.close(fd)
    try:
        sitk.WriteImage(img, tmp, compress)
        replace_file(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def write_displacement_sequence(vectors_lps_mm: np.ndarray, grid: Image, path: str | Path,
                                frame_meta: list[dict[str, Any]] | None = None) -> Path:
    """Per-frame displacement fields ``[frame, slice, row, col, 3]`` (LPS mm) on ``grid``'s
    spatial grid as one 4-D vector NRRD/MHA (a grid-transform sequence for Slicer)."""
    path = Path(path)
    frames = []
    for f in range(vectors_lps_mm.shape[0]):
        img = sitk.GetImageFromArray(np.ascontiguousarray(vectors_lps_mm[f], dtype=np.float64), isVector=True)
        img.SetSpacing(grid.spacing)
        img.SetOrigin(grid.origin)
        img.SetDirection(grid.direction.flatten().tolist())
        frames.append(img)
    out = sitk.JoinSeries(frames)
    out.SetMetaData(_META_KEY, json.dumps({"kind": "displacement", "units": "mm", "space": "LPS",
                                           "convention": "sampling: corrected(x) = frame(x + d(x))"}))
    if frame_meta:
        out.SetMetaData(_FRAME_META_KEY, json.dumps(frame_meta, default=_json_default))
    return _write_atomic(out, path)

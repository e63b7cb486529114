"""The one image type of cmrlib: a numpy array with LPS geometry and acquisition metadata.

Conventions (docs/architecture.md "Data contract"):

* ``array`` is indexed ``[slice, row, col]`` for a volume and ``[frame, row, col]`` (one
  slice) or ``[frame, slice, row, col]`` (several slices) for a sequence of frames.
* Geometry describes the spatial grid of one frame, in DICOM/ITK **LPS** patient
  coordinates, ITK axis order: ``spacing = (col, row, slice)`` in mm, ``origin`` is the
  centre of voxel ``[0, 0, 0]`` in mm, and ``direction[:, a]`` is the unit vector of axis
  ``a`` (a = 0 col, 1 row, 2 slice). This is the DICOM ImageOrientationPatient (row
  cosines = column-index direction) and SimpleITK convention.
* ``meta`` holds series facts (SeriesDescription, field strength, kind, ...);
  ``frame_meta`` holds one dict per frame (InversionTime ms, TriggerTime ms, ...).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from .errors import InputError


@dataclass
class Image:
    """A volume or a sequence of frames with geometry in LPS mm."""

    array: np.ndarray
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))
    is_sequence: bool = False
    meta: dict[str, Any] = field(default_factory=dict)
    frame_meta: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.array = np.asarray(self.array)
        if self.array.ndim == 2:
            self.array = self.array[None]
        expected = (3, 4) if self.is_sequence else (3,)
        if self.array.ndim not in expected:
            kind = "sequence [frame,(slice,)row,col]" if self.is_sequence else "volume [slice,row,col]"
            raise InputError(f"an Image {kind} needs a 2-D..{max(expected)}-D array; got shape {self.array.shape}")
        self.spacing = tuple(float(s) for s in self.spacing)  # type: ignore[assignment]
        self.origin = tuple(float(o) for o in self.origin)  # type: ignore[assignment]
        self.direction = np.asarray(self.direction, dtype=float).reshape(3, 3)
        if len(self.spacing) != 3 or len(self.origin) != 3:
            raise InputError(f"spacing and origin need 3 values (mm); got {self.spacing}, {self.origin}")
        if min(self.spacing) <= 0:
            raise InputError(f"spacing must be positive (mm); got {self.spacing}")
        if self.is_sequence and self.frame_meta and len(self.frame_meta) != self.n_frames:
            raise InputError(f"frame_meta has {len(self.frame_meta)} entries for {self.n_frames} frames")

    # ---- shape -----------------------------------------------------------------------
    @property
    def n_frames(self) -> int:
        """Number of frames (1 for a volume)."""
        return int(self.array.shape[0]) if self.is_sequence else 1

    @property
    def spatial_shape(self) -> tuple[int, int, int]:
        """(slices, rows, cols) of one frame."""
        if self.is_sequence:
            s = self.array.shape[1:]
            return (1, *s) if len(s) == 2 else tuple(s)  # type: ignore[return-value]
        return tuple(self.array.shape)  # type: ignore[return-value]

    def frame(self, k: int) -> "Image":
        """Frame ``k`` of a sequence as a volume (shares no memory with ``self``)."""
        if not self.is_sequence:
            raise InputError("frame() needs a sequence Image")
        data = np.array(self.array[k]).reshape(self.spatial_shape)
        meta = dict(self.meta)
        if self.frame_meta:
            meta.update(self.frame_meta[k])
        return Image(data, self.spacing, self.origin, self.direction.copy(), False, meta, [])

    def frames(self) -> np.ndarray:
        """The sequence as ``[frame, slice, row, col]`` (a view where possible)."""
        if not self.is_sequence:
            return self.array[None]
        return self.array.reshape((self.n_frames, *self.spatial_shape))

    def frame_values(self, key: str) -> list[Any]:
        """One metadata value per frame, e.g. ``frame_values('InversionTime')`` in ms."""
        return [fm.get(key) for fm in self.frame_meta]

    # ---- geometry --------------------------------------------------------------------
    @property
    def affine(self) -> np.ndarray:
        """4x4 matrix from (col, row, slice) index to LPS mm."""
        a = np.eye(4)
        a[:3, :3] = self.direction @ np.diag(self.spacing)
        a[:3, 3] = self.origin
        return a

    def index_to_lps(self, ijk: Sequence[float] | np.ndarray) -> np.ndarray:
        """Continuous index(es) in ITK order (col, row, slice) to LPS mm; shape (..., 3)."""
        p = np.asarray(ijk, dtype=float)
        return p @ (self.direction @ np.diag(self.spacing)).T + np.asarray(self.origin)

    def lps_to_index(self, lps: Sequence[float] | np.ndarray) -> np.ndarray:
        """LPS mm point(s) to continuous index (col, row, slice); shape (..., 3)."""
        m = self.direction @ np.diag(self.spacing)
        p = np.asarray(lps, dtype=float) - np.asarray(self.origin)
        return p @ np.linalg.inv(m).T

    def same_geometry(self, other: "Image", tol_mm: float = 1e-4) -> bool:
        """True when both images have the same spatial grid (shape, spacing, origin, direction)."""
        return (
            self.spatial_shape == other.spatial_shape
            and np.allclose(self.spacing, other.spacing, atol=tol_mm)
            and np.allclose(self.origin, other.origin, atol=tol_mm)
            and np.allclose(self.direction, other.direction, atol=1e-6)
        )

    def with_array(self, array: np.ndarray, *, is_sequence: bool | None = None,
                   frame_meta: list[dict[str, Any]] | None = None) -> "Image":
        """A new Image on the same grid holding ``array`` (e.g. a map computed from frames)."""
        seq = self.is_sequence if is_sequence is None else is_sequence
        fm = frame_meta if frame_meta is not None else (copy.deepcopy(self.frame_meta) if seq else [])
        return Image(array, self.spacing, self.origin, self.direction.copy(), seq, copy.deepcopy(self.meta), fm)

    def copy(self) -> "Image":
        return copy.deepcopy(self)

    def __repr__(self) -> str:  # short: arrays are big
        kind = f"sequence of {self.n_frames} frames" if self.is_sequence else "volume"
        return (f"Image({kind}, shape={self.array.shape}, dtype={self.array.dtype}, "
                f"spacing={tuple(round(s, 4) for s in self.spacing)}, origin={tuple(round(o, 3) for o in self.origin)})")

"""In-plane grids of the two stages and their exact inverses (docs/methods/landmarks.md).

A :class:`PlaneMap` is an affine map from a network input pixel ``(u, v)`` (column, row) to
the source image's in-plane position ``q`` in mm (``q = (col · Δcol, row · Δrow)``), so any
point predicted on a network grid maps back to the source pixel grid by the same matrices,
and a source point maps forward by their inverse — exactly, in float64.

* Stage 1 (:func:`stage1_map`): the image resampled to ``size × size`` pixels of
  ``pixel_mm`` (paper 384 × 1 mm), centred on the image centre (zero-padded / cropped).
* Stage 2 (:func:`stage2_map`): rotated so that the RV entry line (RV insertion → LV centre)
  is horizontal with the RV point on the left, cropped ``size × size`` (paper 128 × 1 mm)
  around the midpoint of the two points.

Handedness: an acquisition whose in-plane axes are mirrored relative to the standard
short-axis view (viewed from the apex, anterior up, RV on the left) is detected from the
DICOM geometry (:func:`is_mirrored`), and both maps then include a reflection, so the
networks always see the standard handedness — the points still map back to the mirrored
source exactly.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

def is_mirrored(direction: np.ndarray) -> bool:
    """True when the image's (column, row) axes show the heart mirrored relative to the
    standard short-axis view — decided from the LPS geometry by :func:`cmrlib.aha.display_sign`
    (the one home of that rule; it raises InputError for a plane that holds the long axis)."""
    from ..aha import display_sign
    return display_sign(direction) < 0


@dataclass(frozen=True)
class PlaneMap:
    """``q_mm = matrix @ (u, v) + offset``; ``spacing`` = (Δcol, Δrow) mm of the source."""

    matrix: np.ndarray  # 2×2, mm per network pixel (columns: u and v axes)
    offset: np.ndarray  # 2, mm
    size: int  # network grid is size × size
    spacing: tuple[float, float]

    def to_source_px(self, uv: np.ndarray) -> np.ndarray:
        """Network ``(u, v)`` (…, 2) → source ``(col, row)`` pixels (…, 2)."""
        q = np.asarray(uv, float) @ self.matrix.T + self.offset
        return q / np.asarray(self.spacing)

    def from_source_px(self, colrow: np.ndarray) -> np.ndarray:
        """Source ``(col, row)`` pixels (…, 2) → network ``(u, v)`` (…, 2): the exact inverse."""
        q = np.asarray(colrow, float) * np.asarray(self.spacing) - self.offset
        return q @ np.linalg.inv(self.matrix).T

    def sample(self, image2d: np.ndarray, order: int = 1) -> np.ndarray:
        """The source ``[row, col]`` image resampled onto the network grid (zero outside)."""
        u, v = np.meshgrid(np.arange(self.size, dtype=float), np.arange(self.size, dtype=float))
        src = self.to_source_px(np.stack([u, v], -1))  # [v, u, (col, row)]
        return ndimage.map_coordinates(np.asarray(image2d, np.float32), [src[..., 1], src[..., 0]], order=order,
                                       mode="constant", cval=0.0, prefilter=False).astype(np.float32)


def _reflect(mirrored: bool) -> np.ndarray:
    return np.diag([-1.0, 1.0]) if mirrored else np.eye(2)


def stage1_map(shape: tuple[int, int], spacing: tuple[float, float], size: int, pixel_mm: float,
               mirrored: bool = False) -> PlaneMap:
    """Stage-1 grid: ``size``² pixels of ``pixel_mm`` centred on the image (``shape`` = rows, cols)."""
    rows, cols = shape
    centre_q = np.array([(cols - 1) / 2 * spacing[0], (rows - 1) / 2 * spacing[1]])
    m = pixel_mm * _reflect(mirrored)
    h = (size - 1) / 2
    return PlaneMap(m, centre_q - m @ np.array([h, h]), size, (float(spacing[0]), float(spacing[1])))


def stage2_map(rv_px: np.ndarray, lv_px: np.ndarray, spacing: tuple[float, float], size: int, pixel_mm: float,
               mirrored: bool = False) -> PlaneMap:
    """Stage-2 grid: the RV entry line horizontal (RV left, LV right), ``size``² pixels of
    ``pixel_mm`` centred on the midpoint of the two points (source ``(col, row)`` pixels)."""
    sp = np.array([float(spacing[0]), float(spacing[1])])
    rv_q, lv_q = np.asarray(rv_px, float) * sp, np.asarray(lv_px, float) * sp
    e = lv_q - rv_q
    length = float(np.hypot(*e))
    e = e / length if length > 1e-9 else np.array([1.0, 0.0])
    # the v axis is e turned +90° in the standard handedness (a reflection for mirrored images)
    f = np.array([e[1], -e[0]]) if mirrored else np.array([-e[1], e[0]])
    m = pixel_mm * np.stack([e, f], axis=1)
    h = (size - 1) / 2
    return PlaneMap(m, 0.5 * (rv_q + lv_q) - m @ np.array([h, h]), size, (float(sp[0]), float(sp[1])))


def standardise(image2d: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Zero-mean, unit-sd intensities over the non-zero (or ``valid``) pixels (card: "mean and
    sd of non-zero pixels"); zero pixels stay zero."""
    img = np.asarray(image2d, np.float32)
    sel = (img != 0) if valid is None else valid
    if not sel.any():
        return np.zeros_like(img)
    vals = img[sel]
    sd = float(vals.std())
    out = (img - float(vals.mean())) / (sd if sd > 1e-6 else 1.0)
    return np.where(sel, out, 0.0).astype(np.float32)


def angle_of_line_deg(rv_px: np.ndarray, lv_px: np.ndarray, spacing: tuple[float, float]) -> float:
    """Direction (°) of the RV entry line RV → LV in the image plane (mm), for the angular error."""
    d = (np.asarray(lv_px, float) - np.asarray(rv_px, float)) * np.asarray(spacing[:2], float)
    return float(np.degrees(np.arctan2(d[1], d[0])))

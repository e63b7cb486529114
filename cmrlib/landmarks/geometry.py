"""In-plane grids of the two stages and their exact inverses (docs/methods/landmarks.md).

A :class:`~cmrlib.planes.PlaneMap` (the shared home) is an affine map from a network input pixel ``(u, v)`` (column, row) to
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

import numpy as np

from ..planes import PlaneMap, centred_map, reflection, standardise  # noqa: F401  (re-exported)

def is_mirrored(direction: np.ndarray) -> bool:
    """True when the image's (column, row) axes show the heart mirrored relative to the
    standard short-axis view — decided from the LPS geometry by :func:`cmrlib.aha.display_sign`
    (the one home of that rule; it raises InputError for a plane that holds the long axis)."""
    from ..aha import display_sign
    return display_sign(direction) < 0


def stage1_map(shape: tuple[int, int], spacing: tuple[float, float], size: int, pixel_mm: float,
               mirrored: bool = False) -> PlaneMap:
    """Stage-1 grid: ``size``² pixels of ``pixel_mm`` centred on the image (``shape`` = rows, cols)."""
    return centred_map(shape, spacing, size, pixel_mm, mirrored)


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


def angle_of_line_deg(rv_px: np.ndarray, lv_px: np.ndarray, spacing: tuple[float, float]) -> float:
    """Direction (°) of the RV entry line RV → LV in the image plane (mm), for the angular error."""
    d = (np.asarray(lv_px, float) - np.asarray(rv_px, float)) * np.asarray(spacing[:2], float)
    return float(np.degrees(np.arctan2(d[1], d[0])))

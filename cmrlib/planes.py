"""In-plane resampling onto a network's input grid, with its exact inverse.

A :class:`PlaneMap` is an affine map from a network input pixel ``(u, v)`` (column, row) to
the source image's in-plane position ``q`` in mm (``q = (col · Δcol, row · Δrow)``), so a
point or a label map predicted on the network grid maps back to the source pixel grid by the
same matrices (:meth:`PlaneMap.to_source_px`, :meth:`PlaneMap.sample_back`), and a source
point maps forward by their inverse — exactly, in float64. :func:`centred_map` is the usual
grid: ``size × size`` pixels of ``pixel_mm`` centred on the image (zero-padded or cropped),
optionally mirrored so the network always sees one handedness. Used by the landmark and QCD
networks (their own grids in :mod:`cmrlib.landmarks.geometry`, :mod:`cmrlib.qcd.infer`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage


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

    def sample_back(self, network2d: np.ndarray, shape: tuple[int, int], order: int = 1) -> np.ndarray:
        """A network-grid ``[v, u]`` image resampled onto the source grid of ``shape`` (rows, cols);
        zero where the source pixel lies outside the network grid."""
        rows, cols = shape
        c, r = np.meshgrid(np.arange(cols, dtype=float), np.arange(rows, dtype=float))
        uv = self.from_source_px(np.stack([c, r], -1))  # [row, col, (u, v)]
        return ndimage.map_coordinates(np.asarray(network2d, np.float32), [uv[..., 1], uv[..., 0]], order=order,
                                       mode="constant", cval=0.0, prefilter=False).astype(np.float32)


#: slice planes closer than this (degrees) count as the same orientation (cos 0.985 ≈ 10°)
PLANE_TOLERANCE_DEG = 10.0


def slice_normal(image) -> np.ndarray:
    """Unit normal (LPS) of an :class:`cmrlib.image.Image`'s slices (its third axis)."""
    n = np.asarray(image.direction, float)[:, 2]
    return n / max(float(np.linalg.norm(n)), 1e-9)


def slice_centres_lps(image) -> np.ndarray:
    """LPS mm of each slice's centre pixel, ``[slice, 3]``."""
    s, r, c = image.spatial_shape
    return np.array([image.index_to_lps([(c - 1) / 2, (r - 1) / 2, k]) for k in range(s)])


def nearest_slices(reference, other) -> tuple[np.ndarray, np.ndarray]:
    """For each slice of ``reference``: the index of ``other``'s slice nearest through-plane
    (along ``reference``'s normal) and that distance (mm). Both are Images."""
    n = slice_normal(reference)
    d = (slice_centres_lps(other)[None, :] - slice_centres_lps(reference)[:, None]) @ n  # [ref, other]
    idx = np.argmin(np.abs(d), axis=1)
    return idx, np.abs(d[np.arange(len(idx)), idx])


def plane_angle_deg(a, b) -> float:
    """Angle (degrees, 0–90) between the slice planes of two Images."""
    return float(np.degrees(np.arccos(min(1.0, abs(float(np.dot(slice_normal(a), slice_normal(b))))))))


def labels_back(pm: PlaneMap, label_net: np.ndarray, shape: tuple[int, int], n_classes: int) -> np.ndarray:
    """A network-grid label map ``[v, u]`` (0..n_classes−1) on the source grid of ``shape``: each
    class's indicator resampled linearly, arg-max; 0 outside the network grid."""
    probs = np.stack([pm.sample_back((label_net == c).astype(np.float32), shape) for c in range(n_classes)])
    lab = probs.argmax(0).astype(np.uint8)
    lab[probs.sum(0) < 0.5] = 0
    return lab


def reflection(mirrored: bool) -> np.ndarray:
    """2×2 (u, v) reflection of a mirrored acquisition (identity otherwise)."""
    return np.diag([-1.0, 1.0]) if mirrored else np.eye(2)


def centred_map(shape: tuple[int, int], spacing: tuple[float, float], size: int, pixel_mm: float,
               mirrored: bool = False, centre_px: tuple[float, float] | None = None) -> PlaneMap:
    """``size``² pixels of ``pixel_mm`` centred on the image (``shape`` = rows, cols), or on the
    source pixel ``centre_px`` = (col, row) when given (e.g. the myocardium's centroid)."""
    rows, cols = shape
    c_col, c_row = ((cols - 1) / 2, (rows - 1) / 2) if centre_px is None else centre_px
    centre_q = np.array([c_col * spacing[0], c_row * spacing[1]])
    m = pixel_mm * reflection(mirrored)
    h = (size - 1) / 2
    return PlaneMap(m, centre_q - m @ np.array([h, h]), size, (float(spacing[0]), float(spacing[1])))


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

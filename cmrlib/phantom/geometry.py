"""Imaging planes and grids of a phantom study (scanner geometry, LPS mm).

A short-axis (SAX) stack is planned perpendicular to the LV long axis, i.e. double-oblique
in patient coordinates, displayed in the standard orientation (viewed from the apex:
anterior up, RV on the image left). Its column direction runs along the intersection with
a coronal plane towards the patient's left (rotated by the planned FOV rotation), so the
anterior chest wall runs across the top; its row direction points posterior. Slice index 0 is the most basal slice and the slice axis points
base -> apex; since the column x row normal of that display points towards the base, the
direction matrix of a SAX :class:`~cmrlib.image.Image` is left-handed (det = -1), which
DICOM and ITK both allow. Readers that sort slices along the ImageOrientationPatient
normal list them apex -> base; positions are the same.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .anatomy import Anatomy
from .params import SubjectParams

F32 = np.float32


@dataclass
class Grid:
    """A stack of parallel planes: ``n_slices`` x ``rows`` x ``cols`` voxels.

    ``origin`` = LPS centre of voxel [0, 0, 0]; ``col_dir``/``row_dir``/``slice_dir`` unit
    vectors of the index axes; spacing (col, row, slice) mm.
    """

    origin: np.ndarray
    col_dir: np.ndarray
    row_dir: np.ndarray
    slice_dir: np.ndarray
    rows: int
    cols: int
    n_slices: int
    spacing: tuple[float, float, float]

    @property
    def direction(self) -> np.ndarray:
        """3x3 direction (columns: col, row, slice axes) as in :class:`cmrlib.Image`."""
        return np.column_stack([self.col_dir, self.row_dir, self.slice_dir])

    def slice_origin(self, k: int) -> np.ndarray:
        return self.origin + k * self.spacing[2] * self.slice_dir

    def points(self, k: int = 0) -> np.ndarray:
        """LPS centres (rows*cols, 3) of slice k's pixels, row-major."""
        r = np.arange(self.rows, dtype=F32) * F32(self.spacing[1])
        c = np.arange(self.cols, dtype=F32) * F32(self.spacing[0])
        o = self.slice_origin(k).astype(F32)
        p = (o[None, None, :] + r[:, None, None] * self.row_dir.astype(F32)[None, None, :]
             + c[None, :, None] * self.col_dir.astype(F32)[None, None, :])
        return p.reshape(-1, 3)

    def to_pixel(self, lps: np.ndarray, k: int = 0) -> np.ndarray:
        """LPS point(s) -> (col, row) continuous pixel coordinates in slice k's plane."""
        d = np.asarray(lps, float) - self.slice_origin(k)
        return np.stack([d @ self.col_dir / self.spacing[0], d @ self.row_dir / self.spacing[1]], axis=-1)

    def slice_location(self, k: int) -> float:
        """DICOM SliceLocation convention: projection of the slice position on the IOP normal (mm)."""
        normal = np.cross(self.col_dir, self.row_dir)
        return float(np.dot(self.slice_origin(k), normal))

    def subset(self, ks: list[int]) -> list["Grid"]:
        """One single-slice grid per slice index in ``ks``."""
        return [Grid(self.slice_origin(k), self.col_dir, self.row_dir, self.slice_dir, self.rows, self.cols, 1,
                     self.spacing) for k in ks]


def _rotate(v: np.ndarray, axis: np.ndarray, deg: float) -> np.ndarray:
    """Rodrigues rotation of v about unit axis by deg (right-handed)."""
    a = np.deg2rad(deg)
    return v * np.cos(a) + np.cross(axis, v) * np.sin(a) + axis * np.dot(axis, v) * (1 - np.cos(a))


def sax_grid(s: SubjectParams, anat: Anatomy, z_mm: np.ndarray | list[float], thickness_mm: float | None = None) -> Grid:
    """SAX planes at long-axis distances ``z_mm`` from the mitral plane (equally spaced)."""
    z = np.atleast_1d(np.asarray(z_mm, float))
    n = anat.R[:, 2]
    col = _rotate(anat.R[:, 0], n, s.fov_rotation_deg)
    row = -_rotate(anat.R[:, 1], n, s.fov_rotation_deg)  # screen down = posterior-inferior
    m = s.matrix
    px = s.pixel_mm
    centre0 = anat.O + z[0] * n + s.fov_offset_mm[0] * col + s.fov_offset_mm[1] * row
    origin = centre0 - (m - 1) / 2.0 * px * (col + row)
    dz = float(z[1] - z[0]) if z.size > 1 else float(thickness_mm or s.slice_thickness_mm)
    return Grid(origin, col, row, n, m, m, int(z.size), (px, px, dz))


def la_grid(s: SubjectParams, anat: Anatomy, matrix: int = 160, pixel_mm: float = 1.25,
            slice_mm: float = 2.5, n_slices: int = 44) -> Grid:
    """Axial 3-D LA LGE grid centred on the left atrium (1.25 x 1.25 x 2.5 mm by default)."""
    centre = anat.to_lps(anat.la_centre[None])[0] + np.array([0.0, -10.0, -8.0])
    col = np.array([1.0, 0.0, 0.0])  # image right = patient left (radiological display)
    row = np.array([0.0, 1.0, 0.0])  # image down = posterior
    sl = np.array([0.0, 0.0, -1.0])  # slices head -> feet
    origin = centre - (matrix - 1) / 2.0 * pixel_mm * (col + row) - (n_slices - 1) / 2.0 * slice_mm * sl
    return Grid(origin, col, row, sl, matrix, matrix, n_slices, (pixel_mm, pixel_mm, slice_mm))


@dataclass
class RigidMotion:
    """Rigid patient motion between acquisitions (misregistration), about a pivot (LPS mm).

    Shifts along the plane's column/row directions (mm), rotation about the plane normal
    (deg) and a through-plane shift (mm). Apply :meth:`sample_points` to pixel centres to
    get where in the reference anatomy each pixel looks.
    """

    d_col_mm: float = 0.0
    d_row_mm: float = 0.0
    rot_deg: float = 0.0
    through_mm: float = 0.0

    @property
    def is_identity(self) -> bool:
        return not any((self.d_col_mm, self.d_row_mm, self.rot_deg, self.through_mm))

    def sample_points(self, p: np.ndarray, grid: Grid, pivot: np.ndarray) -> np.ndarray:
        """Reference-anatomy points seen by pixels at p when the patient moved by this motion."""
        if self.is_identity:
            return p
        n = grid.slice_dir
        shift = self.d_col_mm * grid.col_dir + self.d_row_mm * grid.row_dir + self.through_mm * n
        # the anatomy moved by (R, shift): pixel p sees the reference point R^-1 (p - pivot - shift) + pivot
        rot = np.array([_rotate(e, n, -self.rot_deg) for e in np.eye(3)]).T
        return ((p - pivot - shift) @ rot.T + pivot).astype(F32)

    def to_dict(self) -> dict[str, float]:
        return {"in_plane_col_mm": self.d_col_mm, "in_plane_row_mm": self.d_row_mm,
                "rotation_deg": self.rot_deg, "through_plane_mm": self.through_mm}

"""The one place where LPS (DICOM/ITK, :class:`cmrlib.Image`) meets RAS (Slicer/MRML).

Slicer's world coordinates are RAS (+x Right, +y Anterior, +z Superior); DICOM, ITK and
:class:`~cmrlib.image.Image` use LPS (+x Left, +y Posterior, +z Superior). The two differ by
negating x and y, so the same diagonal matrix converts in both directions. Every other
module of :mod:`cmrlib.mrml` calls the helpers here instead of flipping signs itself.
"""
from __future__ import annotations

import numpy as np
import vtk

from ..errors import InputError

#: Converts LPS to RAS and RAS to LPS (it is its own inverse).
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


def lps_to_ras(points: np.ndarray) -> np.ndarray:
    """Point(s) in LPS mm, shape (..., 3), to RAS mm (a new array)."""
    return np.asarray(points, dtype=float) @ LPS_TO_RAS


def ras_to_lps(points: np.ndarray) -> np.ndarray:
    """Point(s) in RAS mm, shape (..., 3), to LPS mm (a new array)."""
    return np.asarray(points, dtype=float) @ LPS_TO_RAS


def ras_geometry_from_lps(spacing: tuple[float, float, float], origin_lps: tuple[float, float, float],
                          direction_lps: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...], np.ndarray]:
    """Image geometry (spacing mm, LPS origin mm, LPS direction columns) to the MRML volume form.

    Returns ``(spacing, origin_ras, directions_ras)`` where ``directions_ras[:, a]`` is the
    RAS unit vector of index axis ``a`` (I = column, J = row, K = slice), which is what
    ``vtkMRMLVolumeNode.SetIJKToRASDirections`` expects.
    """
    direction = np.asarray(direction_lps, dtype=float).reshape(3, 3)
    return (tuple(float(s) for s in spacing), tuple(lps_to_ras(np.asarray(origin_lps, float)).tolist()),
            LPS_TO_RAS @ direction)


def lps_geometry_from_ras(spacing: tuple[float, ...], origin_ras: tuple[float, ...],
                          directions_ras: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...], np.ndarray]:
    """Inverse of :func:`ras_geometry_from_lps`: MRML (spacing, RAS origin, RAS directions) to LPS."""
    directions = np.asarray(directions_ras, dtype=float).reshape(3, 3)
    return (tuple(float(s) for s in spacing), tuple(ras_to_lps(np.asarray(origin_ras, float)).tolist()),
            LPS_TO_RAS @ directions)


def ijk_to_ras_from_lps(spacing: tuple[float, ...], origin_lps: tuple[float, ...],
                        direction_lps: np.ndarray) -> np.ndarray:
    """4x4 matrix from voxel index (I=col, J=row, K=slice) to RAS mm for an LPS image geometry."""
    sp, org, dirs = ras_geometry_from_lps(spacing, origin_lps, direction_lps)  # type: ignore[arg-type]
    m = np.eye(4)
    m[:3, :3] = dirs @ np.diag(sp)
    m[:3, 3] = org
    return m


def lps_geometry_from_ijk_to_ras(matrix: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...], np.ndarray]:
    """Split a 4x4 IJK-to-RAS matrix into (spacing mm, LPS origin mm, LPS direction columns).

    Spacing is the length of each column; a zero-length column (degenerate matrix) is a
    user error, because no image geometry can be derived from it.
    """
    m = np.asarray(matrix, dtype=float).reshape(4, 4)
    spacing = np.linalg.norm(m[:3, :3], axis=0)
    if np.any(spacing <= 0):
        raise InputError(f"the IJK-to-RAS matrix has a zero-length axis (spacing {spacing.tolist()} mm)")
    return lps_geometry_from_ras(tuple(spacing.tolist()), tuple(m[:3, 3].tolist()), m[:3, :3] / spacing)


def vtk_matrix(array: np.ndarray) -> vtk.vtkMatrix4x4:
    """A numpy 4x4 as a new vtkMatrix4x4."""
    m = vtk.vtkMatrix4x4()
    a = np.asarray(array, dtype=float).reshape(4, 4)
    for r in range(4):
        for c in range(4):
            m.SetElement(r, c, float(a[r, c]))
    return m


def numpy_matrix(matrix: vtk.vtkMatrix4x4) -> np.ndarray:
    """A vtkMatrix4x4 as a numpy 4x4 (a copy)."""
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)], dtype=float)


def node_to_world(node) -> np.ndarray | None:  # noqa: ANN001 - any vtkMRMLTransformableNode
    """4x4 from the node's local coordinates to world RAS, or None when it has no parent transform.

    A volume or segmentation placed under a linear transform in Slicer (e.g. after manual
    registration) is where the user sees it, so its geometry must include that transform.
    A non-linear (warping) transform cannot be expressed as an image grid: the user has to
    harden it first, which is what the error says.
    """
    parent = node.GetParentTransformNode()
    if parent is None:
        return None
    if not parent.IsTransformToWorldLinear():
        raise InputError(f"node '{node.GetName()}' is under the non-linear transform '{parent.GetName()}'; "
                         "harden the transform (Data module) before using it")
    m = vtk.vtkMatrix4x4()
    parent.GetMatrixTransformToWorld(m)
    return numpy_matrix(m)

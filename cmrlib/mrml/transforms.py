"""Per-frame displacement fields (LPS mm) <-> a sequence of vtkMRMLGridTransformNode.

Used by CMRMotion to show MOCOnet / classical DVFs: one grid transform per IRW frame,
browsable with the frames. Our fields are *sampling* displacements, corrected(x) =
frame(x + d(x)), which is Slicer's "transform from parent" (the direction used for
resampling): a frame placed under its transform is displayed motion-corrected.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import slicer
import vtk
from vtk.util import numpy_support

from ..errors import InputError
from ..image import Image
from ._geometry import LPS_TO_RAS, ras_geometry_from_lps, vtk_matrix
from .scene import check_scene
from .sequences import _add_browser


def grid_transform_from_displacement(vectors_lps_mm: np.ndarray, grid: Image, name: str) -> Any:
    """A (scene-less) vtkMRMLGridTransformNode for one field ``[slice, row, col, 3]`` (LPS mm)."""
    field = np.asarray(vectors_lps_mm, dtype=np.float64)
    if field.shape != (*grid.spatial_shape, 3):
        raise InputError(f"displacement field shape {field.shape} does not match the grid {grid.spatial_shape} x 3")
    spacing, origin_ras, directions_ras = ras_geometry_from_lps(grid.spacing, grid.origin, grid.direction)
    ras_vectors = field @ LPS_TO_RAS.T  # LPS → RAS components (x, y negated)
    image = vtk.vtkImageData()
    image.SetDimensions(field.shape[2], field.shape[1], field.shape[0])
    image.SetSpacing(*spacing)
    image.SetOrigin(*origin_ras)
    flat = np.ascontiguousarray(ras_vectors.reshape(-1, 3))
    array = numpy_support.numpy_to_vtk(flat, deep=True, array_type=vtk.VTK_DOUBLE)
    array.SetNumberOfComponents(3)
    image.GetPointData().SetScalars(array)
    transform = slicer.vtkOrientedGridTransform()
    transform.SetDisplacementGridData(image)
    direction = np.eye(4)
    direction[:3, :3] = directions_ras
    transform.SetGridDirectionMatrix(vtk_matrix(direction))
    transform.SetInterpolationModeToLinear()
    node = slicer.vtkMRMLGridTransformNode()
    node.SetName(name)
    node.SetAndObserveTransformFromParent(transform)
    return node


def displacement_from_grid_transform(node: Any, grid: Image) -> np.ndarray:
    """The field ``[slice, row, col, 3]`` (LPS mm) of a grid transform made by this module."""
    transform = node.GetTransformFromParent()
    grid_transform = transform if transform.IsA("vtkOrientedGridTransform") else None
    if grid_transform is None:
        raise InputError(f"'{node.GetName()}' holds no grid transform")
    data = grid_transform.GetDisplacementGrid()
    arr = numpy_support.vtk_to_numpy(data.GetPointData().GetScalars()).reshape(*grid.spatial_shape, 3)
    return arr @ LPS_TO_RAS.T  # RAS → LPS (the same flip)


def grid_transform_sequence_from_displacements(scene: Any, vectors_lps_mm: np.ndarray, grid: Image, name: str,
                                               index_values: list[float] | None = None,
                                               index_name: str = "InversionTime", index_unit: str = "ms") -> Any:
    """A sequence node of grid transforms, one per frame ``[frame, slice, row, col, 3]``, plus a browser."""
    check_scene(scene)
    fields = np.asarray(vectors_lps_mm)
    values = index_values if index_values is not None else list(range(len(fields)))
    if len(values) != len(fields):
        raise InputError(f"{len(values)} index values for {len(fields)} displacement fields")
    nodes = [grid_transform_from_displacement(f, grid, f"{name} {index_name} {v:g}") for f, v in zip(fields, values)]
    seq = slicer.vtkMRMLSequenceNode()
    seq.SetName(name)
    seq.SetIndexName(index_name)
    seq.SetIndexUnit(index_unit)
    seq.SetIndexType(slicer.vtkMRMLSequenceNode.NumericIndex)
    for node, value in zip(nodes, values):
        seq.SetDataNodeAtValue(node, f"{value:g}")
    scene.AddNode(seq)
    _add_browser(scene, seq)
    return seq

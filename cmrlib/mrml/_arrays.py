"""numpy arrays <-> vtkImageData, copying both ways.

The numpy index order ``[slice, row, col]`` is VTK's memory order (x = column fastest), so
no transposition is needed: VTK dimensions are ``(cols, rows, slices)``. Copies are made on
purpose: the caller's array is never aliased by (and so never modified through) a node, and
an array returned to the caller stays valid after the node is deleted.
"""
from __future__ import annotations

import numpy as np
import vtk
from vtkmodules.util import numpy_support

from ..errors import InputError


def vtk_ready(array: np.ndarray, what: str) -> np.ndarray:
    """``array`` in a dtype VTK can hold, C-contiguous (a copy where a conversion is needed).

    bool becomes uint8 (VTK images have no bool scalars) and float16 becomes float32 (no
    half floats); complex data has no meaning for a scalar volume and is refused.
    """
    a = np.asarray(array)
    if a.dtype == np.bool_:
        a = a.astype(np.uint8)
    elif a.dtype == np.float16:
        a = a.astype(np.float32)
    elif not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise InputError(f"{what} needs a real-valued (integer or floating) array; got dtype {a.dtype}")
    return np.ascontiguousarray(a)


def image_data_from_array(array: np.ndarray, what: str = "a volume") -> vtk.vtkImageData:
    """A new vtkImageData (spacing 1, origin 0, as Slicer keeps them) holding a copy of a 3-D array."""
    a = vtk_ready(array, what)
    if a.ndim != 3:
        raise InputError(f"{what} needs a 3-D array [slice,row,col]; got shape {a.shape}")
    image = vtk.vtkImageData()
    fill_image_data(image, a)
    return image


def fill_image_data(image: vtk.vtkImageData, array: np.ndarray) -> None:
    """Make ``image`` (any vtkImageData subclass) hold a deep copy of the 3-D ``array``."""
    slices, rows, cols = array.shape
    image.SetDimensions(cols, rows, slices)
    scalars = numpy_support.numpy_to_vtk(array.ravel(), deep=True,
                                         array_type=numpy_support.get_vtk_array_type(array.dtype))
    scalars.SetName("ImageScalars")
    image.GetPointData().SetScalars(scalars)


def array_from_image_data(image: vtk.vtkImageData | None, what: str) -> np.ndarray:
    """A copy of a single-component vtkImageData as a numpy array [slice, row, col]."""
    if image is None or image.GetPointData() is None or image.GetPointData().GetScalars() is None:
        raise InputError(f"{what} has no image data")
    scalars = image.GetPointData().GetScalars()
    if scalars.GetNumberOfComponents() != 1:
        raise InputError(f"{what} has {scalars.GetNumberOfComponents()} components per voxel; "
                         "a scalar volume (1 component) was expected")
    cols, rows, slices = image.GetDimensions()
    return numpy_support.vtk_to_numpy(scalars).reshape(slices, rows, cols).copy()

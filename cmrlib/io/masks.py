"""Mask files on an image's grid (myocardium masks given with `--mask`, ground-truth label maps)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from ..image import Image
from .files import read_image, to_sitk


def load_mask(path: str | Path, grid: Image, label: int = 1) -> np.ndarray:
    """Boolean myocardium mask on ``grid``'s spatial grid (resampled nearest-neighbour if needed)."""
    import SimpleITK as sitk
    mask_img = read_image(path)
    values = np.unique(mask_img.array)
    binary = set(values.tolist()) <= {0, 1} or len(values) <= 2
    sel = (mask_img.array != 0) if binary else (mask_img.array == label)
    if not sel.any():
        raise InputError(f"mask {path} has no voxel labelled {label} (labels present: {values[:10].tolist()})")
    mask_img = mask_img.with_array(sel.astype(np.uint8), is_sequence=False)
    target = Image(np.zeros(grid.spatial_shape, np.uint8), grid.spacing, grid.origin, grid.direction)
    if mask_img.same_geometry(target):
        return sel.reshape(grid.spatial_shape)
    res = sitk.Resample(to_sitk(mask_img), to_sitk(target), sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    out = sitk.GetArrayFromImage(res).astype(bool)
    if not out.any():
        raise InputError(f"mask {path} does not overlap the IRW slice(s)")
    return out

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


#: segment names (lower case, substrings) of a Slicer segmentation → the data contract's labels
SEGMENT_NAME_LABELS = (("scar", 1), ("infarct", 1), ("fibrosis", 1), ("myocard", 1), ("blood", 2), ("cavity", 2),
                       ("lv pool", 2))


def _segmentation_labels(path: Path) -> tuple[Image, np.ndarray]:
    """(geometry image, contract labels) of a Slicer ``.seg.nrrd``: segments mapped by name
    (:data:`SEGMENT_NAME_LABELS`), one layer (3-D labels) or several (4-D, one layer a component)."""
    import SimpleITK as sitk

    from .files import from_sitk
    img = sitk.ReadImage(str(path))
    keys = set(img.GetMetaDataKeys())
    arr = sitk.GetArrayFromImage(img)  # [z, y, x] or [z, y, x, layers]
    if arr.ndim == 3:
        arr = arr[..., None]
    out = np.zeros(arr.shape[:3], np.uint8)
    i = 0
    found = []
    while f"Segment{i}_Name" in keys:
        name = img.GetMetaData(f"Segment{i}_Name").lower()
        value = int(img.GetMetaData(f"Segment{i}_LabelValue")) if f"Segment{i}_LabelValue" in keys else 1
        layer = int(img.GetMetaData(f"Segment{i}_Layer")) if f"Segment{i}_Layer" in keys else 0
        label = next((lab for key, lab in SEGMENT_NAME_LABELS if key in name), 0)
        if label:
            found.append(name)
            sel = arr[..., min(layer, arr.shape[-1] - 1)] == value
            out[sel & ((out == 0) | (label == 1))] = label  # myocardium wins an overlap
        i += 1
    if not found:
        raise InputError(f"{path}: no segment named like myocardium or blood pool "
                         f"(segments: {', '.join(img.GetMetaData(f'Segment{j}_Name') for j in range(i)) or 'none'})")
    ref = sitk.GetImageFromArray(out)
    ref.SetSpacing(img.GetSpacing()[:3])
    ref.SetOrigin(img.GetOrigin()[:3])
    d = np.asarray(img.GetDirection(), float)
    ref.SetDirection(tuple(d.reshape(int(round(np.sqrt(d.size))), -1)[:3, :3].ravel()))
    return from_sitk(ref), out


def load_label_map(path: str | Path, grid: Image) -> np.ndarray:
    """Label map ``uint8 [slice, row, col]`` on ``grid``'s spatial grid in the data contract's
    table (0 background, 1 myocardium, 2 blood pool; a label 3, scar, counts as myocardium;
    other labels are background). Reads label images (NRRD / NIfTI / MHA) and Slicer
    ``.seg.nrrd`` segmentations (segments by name); resampled nearest-neighbour when the
    geometry differs. InputError when it holds no myocardium or does not overlap ``grid``."""
    import SimpleITK as sitk
    path = Path(path)
    if path.name.lower().endswith(".seg.nrrd"):
        lab_img, lab = _segmentation_labels(path)
    else:
        lab_img = read_image(path)
        raw = np.asarray(lab_img.array)
        if lab_img.is_sequence:
            raise InputError(f"{path}: a label map must be one volume, not a sequence of {raw.shape[0]} frames")
        lab = np.zeros(raw.shape, np.uint8)
        lab[(raw == 1) | (raw == 3)] = 1
        lab[raw == 2] = 2
    if not (lab == 1).any():
        raise InputError(f"label map {path} has no myocardium (label 1 or 3, or a segment named myocardium)")
    lab_img = lab_img.with_array(lab, is_sequence=False)
    target = Image(np.zeros(grid.spatial_shape, np.uint8), grid.spacing, grid.origin, grid.direction)
    if lab_img.same_geometry(target):
        return lab.reshape(grid.spatial_shape)
    res = sitk.Resample(to_sitk(lab_img), to_sitk(target), sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    out = sitk.GetArrayFromImage(res).astype(np.uint8)
    if not out.any():
        raise InputError(f"label map {path} does not overlap the image {grid.spatial_shape}")
    return out


def label_map_image(path: str | Path, grid: Image) -> Image:
    """:func:`load_label_map` as an Image on ``grid``, keeping the slices a QC step failed (QCD's
    ``labels.nrrd`` header ``qc_failed_slices``) in its ``meta`` so a result can flag them."""
    mask = grid.with_array(load_label_map(path, grid), is_sequence=False)
    mask.meta = {}
    if not str(path).lower().endswith(".seg.nrrd"):
        failed = read_image(path).meta.get("qc_failed_slices")
        if failed:
            mask.meta["qc_failed_slices"] = [int(k) for k in failed]
    return mask

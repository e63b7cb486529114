"""Integer label arrays on an :class:`cmrlib.Image` grid <-> vtkMRMLSegmentationNode.

A label table ``{value: (segment name, (r, g, b))}`` (colour components 0..1, 0 =
background and never a segment) maps label values to named, coloured segments. All
segments share one binary-labelmap layer whose voxel values are the label values, which is
how Slicer stores a non-overlapping segmentation and how ``.seg.nrrd`` writes it.

``slicer.util.updateSegmentBinaryLabelmapFromArray`` needs the application, so the
labelmaps are built here directly as vtkOrientedImageData (voxel grid + IJK-to-RAS matrix).
"""
from __future__ import annotations

import math

import numpy as np
import slicer
import vtk

from ..errors import InputError
from ..image import Image
from . import _geometry
from ._arrays import array_from_image_data, fill_image_data
from .scene import add_new_node, check_scene

LabelTable = dict[int, tuple[str, tuple[float, float, float]]]

_BINARY_LABELMAP = "Binary labelmap"


def _binary_labelmap_name() -> str:
    return slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName() or _BINARY_LABELMAP


def _check_table(label_table: LabelTable) -> dict[int, tuple[str, tuple[float, float, float]]]:
    """The label table with int keys and float colours, or an InputError saying what is wrong."""
    if not isinstance(label_table, dict) or not label_table:
        raise InputError(f"a label table {{value: (name, (r, g, b))}} is needed; got {label_table!r}")
    out: dict[int, tuple[str, tuple[float, float, float]]] = {}
    for value, entry in label_table.items():
        try:
            name, color = entry
            rgb = tuple(float(c) for c in color)
        except (TypeError, ValueError) as exc:
            raise InputError(f"label table entry {value}: expected (name, (r, g, b)); got {entry!r}") from exc
        if int(value) != value or int(value) < 0 or int(value) > 65535:
            raise InputError(f"label values must be integers 0..65535; got {value!r}")
        if len(rgb) != 3 or not all(0.0 <= c <= 1.0 and math.isfinite(c) for c in rgb):
            raise InputError(f"label {value} ('{name}'): colour components must be 3 values in 0..1; got {color!r}")
        if int(value) != 0:  # 0 is background, never a segment
            out[int(value)] = (str(name), rgb)  # type: ignore[assignment]
    if not out:
        raise InputError("the label table has no foreground label (only 0 = background)")
    return out


def _grid_shape(labels: np.ndarray, reference: Image) -> tuple[int, int, int]:
    shape = reference.spatial_shape
    if labels.shape != shape and not (labels.ndim == 2 and shape == (1, *labels.shape)):
        raise InputError(f"labels of shape {labels.shape} are not on the reference grid "
                         f"[slice,row,col] {shape}")
    return shape


def _reference_geometry_image(reference: Image) -> slicer.vtkOrientedImageData:
    """An empty vtkOrientedImageData with the reference grid: extent and IJK-to-RAS matrix."""
    image = slicer.vtkOrientedImageData()
    slices, rows, cols = reference.spatial_shape
    image.SetExtent(0, cols - 1, 0, rows - 1, 0, slices - 1)
    image.SetImageToWorldMatrix(_geometry.vtk_matrix(
        _geometry.ijk_to_ras_from_lps(reference.spacing, reference.origin, reference.direction)))
    return image


def segmentation_node_from_labels(scene: slicer.vtkMRMLScene, labels: np.ndarray, reference: Image,
                                  label_table: LabelTable, name: str) -> slicer.vtkMRMLSegmentationNode:
    """A segmentation node with one named, coloured segment per non-zero entry of ``label_table``.

    ``labels`` is an integer array on ``reference``'s spatial grid ([slice,row,col], or
    [row,col] for a single-slice reference). Every label table entry gets a segment (empty
    if no voxel has its value), with segment ID ``label_<value>`` and label value ``value``.
    A value present in ``labels`` but missing from the table is an error: it would be lost.
    The segmentation's reference geometry is set to the reference grid, so Slicer's Segment
    Editor edits on that grid.
    """
    check_scene(scene)
    table = _check_table(label_table)
    labels = np.asarray(labels)
    if not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == np.bool_):
        raise InputError(f"labels must be an integer array; got dtype {labels.dtype}")
    shape = _grid_shape(labels, reference)
    present = set(np.unique(labels).tolist()) - {0}
    unknown = sorted(present - set(table))
    if unknown:
        raise InputError(f"labels contain values {unknown} that are not in the label table {sorted(table)}")
    # uint8 is what Slicer itself uses for up to 255 segments per layer; larger tables need 16 bits.
    dtype = np.uint8 if max(table) <= 255 else np.uint16
    layer = _reference_geometry_image(reference)
    fill_image_data(layer, np.ascontiguousarray(labels.reshape(shape), dtype=dtype))

    node = add_new_node(scene, "vtkMRMLSegmentationNode", name or "Segmentation")
    was_modifying = node.StartModify()
    try:
        segmentation = node.GetSegmentation()
        representation = _binary_labelmap_name()
        if hasattr(segmentation, "SetSourceRepresentationName"):  # "master" before Slicer 5.4
            segmentation.SetSourceRepresentationName(representation)
        else:
            segmentation.SetMasterRepresentationName(representation)
        segmentation.SetConversionParameter(
            slicer.vtkSegmentationConverter.GetReferenceImageGeometryParameterName(),
            slicer.vtkSegmentationConverter.SerializeImageGeometry(layer))
        for value, (segment_name, color) in table.items():
            segment_id = segmentation.AddEmptySegment(f"label_{value}", segment_name, color)
            segment = segmentation.GetSegment(segment_id)
            # The same image object in every segment is what makes it one shared layer.
            segment.AddRepresentation(representation, layer)
            segment.SetLabelValue(value)
    finally:
        node.EndModify(was_modifying)
    node.CreateDefaultDisplayNodes()
    return node


def _find_segment_id(segmentation, name: str) -> str | None:  # noqa: ANN001 - vtkSegmentation
    """Segment of a label table entry, by name: what a Slicer user sees, and the only thing that
    ties a segment made or edited in Slicer (own IDs, own label values) to the table. IDs are
    not used: ``label_1`` of a segmentation made with another table means something else."""
    return segmentation.GetSegmentIdBySegmentName(name) or None


def labels_from_segmentation_node(node: slicer.vtkMRMLSegmentationNode, reference: Image,
                                  label_table: LabelTable) -> np.ndarray:
    """The segmentation as an integer label array on ``reference``'s grid [slice,row,col].

    Each label table entry's segment (found by name, whatever its ID and label value) is
    resampled (nearest neighbour) onto the reference grid and written with its table value;
    on the grid the segmentation was made on this is exact. Table entries without a segment
    stay 0 and segments not in the table are ignored; if no table entry matches any segment
    the segmentation is the wrong one and an InputError says so. Where segments overlap
    (possible after editing in Slicer), the later table entry wins. dtype: uint8, or uint16
    for label values above 255. A parent linear transform of the node is applied.
    """
    if node is None or not node.IsA("vtkMRMLSegmentationNode"):
        raise InputError(f"a segmentation node is needed; got {node.GetClassName() if node is not None else None}")
    table = _check_table(label_table)
    segmentation = node.GetSegmentation()
    representation = _binary_labelmap_name()
    found = {value: _find_segment_id(segmentation, seg_name) for value, (seg_name, _) in table.items()}
    if not any(found.values()):
        names = [segmentation.GetNthSegment(i).GetName() for i in range(segmentation.GetNumberOfSegments())]
        raise InputError(f"segmentation '{node.GetName()}' has none of the segments "
                         f"{[n for n, _ in table.values()]}; it has {names}")
    if not segmentation.ContainsRepresentation(representation):
        # e.g. a segmentation imported from a closed-surface model: make voxels first.
        if not segmentation.CreateRepresentation(representation):
            raise InputError(f"segmentation '{node.GetName()}' cannot be converted to a binary labelmap")
    to_world = _geometry.node_to_world(node)
    target = _reference_geometry_image(reference)
    out = np.zeros(reference.spatial_shape, dtype=np.uint8 if max(table) <= 255 else np.uint16)
    for value, segment_id in found.items():
        if not segment_id:
            continue
        binary = slicer.vtkOrientedImageData()
        # Extracts this segment's voxels (label value -> 1) even from a shared layer.
        node.GetBinaryLabelmapRepresentation(segment_id, binary)
        if binary.IsEmpty():
            continue
        if to_world is not None:
            local = vtk.vtkMatrix4x4()
            binary.GetImageToWorldMatrix(local)
            binary.SetImageToWorldMatrix(_geometry.vtk_matrix(to_world @ _geometry.numpy_matrix(local)))
        resampled = slicer.vtkOrientedImageData()
        if not slicer.vtkOrientedImageDataResample.ResampleOrientedImageToReferenceOrientedImage(
                binary, target, resampled, False, True):
            raise InputError(f"segment '{segment_id}' of '{node.GetName()}' could not be resampled "
                             "onto the reference grid")
        _paste(out, array_from_image_data(resampled, f"segment '{segment_id}'") > 0, resampled.GetExtent(), value)
    return out


def _paste(out: np.ndarray, mask: np.ndarray, extent: tuple[int, ...], value: int) -> None:
    """Write ``value`` into ``out`` [slice,row,col] where ``mask`` is set.

    ``mask`` covers the VTK ``extent`` (i0, i1, j0, j1, k0, k1) of the reference grid's index
    space, which need not start at 0 nor stay inside the grid (the resampler returns the
    segment's own extent, padded): only the part inside ``out`` is used.
    """
    lo = (extent[4], extent[2], extent[0])  # (k, j, i) start of the mask in out's index space
    src, dst = [], []
    for axis in range(3):
        start = max(lo[axis], 0)
        stop = min(lo[axis] + mask.shape[axis], out.shape[axis])
        if stop <= start:
            return  # no overlap with the reference grid
        src.append(slice(start - lo[axis], stop - lo[axis]))
        dst.append(slice(start, stop))
    region = out[tuple(dst)]
    region[mask[tuple(src)]] = value

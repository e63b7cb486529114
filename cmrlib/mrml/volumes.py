""":class:`cmrlib.Image` volumes <-> vtkMRMLScalarVolumeNode."""
from __future__ import annotations

import numpy as np
import slicer
import vtk

from ..errors import InputError
from ..image import Image
from . import _attributes, _geometry
from ._arrays import array_from_image_data, image_data_from_array, vtk_ready
from .scene import add_new_node, check_scene


def set_volume_content(node: slicer.vtkMRMLVolumeNode, array: np.ndarray, spacing: tuple[float, ...],
                       origin_lps: tuple[float, ...], direction_lps: np.ndarray, what: str) -> None:
    """Put a 3-D array [slice,row,col] and its LPS geometry into ``node`` (in or out of a scene).

    Geometry goes in as spacing / origin / directions rather than as one 4x4 matrix, so
    nothing is recomputed from a matrix decomposition and the round trip is exact. When the
    node sits under a linear transform, the node-local geometry is the image's world
    geometry mapped back through that transform, so the user sees the image where it is.
    """
    image_data = image_data_from_array(array, what)
    sp, org, dirs = _geometry.ras_geometry_from_lps(spacing, origin_lps, direction_lps)  # type: ignore[arg-type]
    to_world = _geometry.node_to_world(node) if node.GetScene() is not None else None
    was_modifying = node.StartModify()
    try:
        if to_world is None:
            node.SetSpacing(*sp)
            node.SetOrigin(*org)
            node.SetIJKToRASDirections(dirs.tolist())
        else:
            world = _geometry.ijk_to_ras_from_lps(spacing, origin_lps, direction_lps)
            node.SetIJKToRASMatrix(_geometry.vtk_matrix(np.linalg.inv(to_world) @ world))
        node.SetAndObserveImageData(image_data)
    finally:
        node.EndModify(was_modifying)


def volume_geometry_lps(node: slicer.vtkMRMLVolumeNode) -> tuple[tuple[float, ...], tuple[float, ...], np.ndarray]:
    """(spacing mm, LPS origin mm, LPS direction columns) of a volume node in world coordinates."""
    to_world = _geometry.node_to_world(node) if node.GetScene() is not None else None
    if to_world is None:
        dirs = [[0.0] * 3 for _ in range(3)]
        node.GetIJKToRASDirections(dirs)
        return _geometry.lps_geometry_from_ras(node.GetSpacing(), node.GetOrigin(), np.array(dirs))
    m = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(m)
    return _geometry.lps_geometry_from_ijk_to_ras(to_world @ _geometry.numpy_matrix(m))


def volume_node_from_image(scene: slicer.vtkMRMLScene, image: Image, name: str,
                           node: slicer.vtkMRMLScalarVolumeNode | None = None) -> slicer.vtkMRMLScalarVolumeNode:
    """A scalar volume node showing ``image`` (a volume, not a sequence) in ``scene``.

    Geometry is converted from LPS to RAS; voxels are copied in their dtype (bool is stored
    as uint8, float16 as float32). ``image.meta`` is stored as node attributes
    ``CMR.<key>`` = JSON. With ``node`` given, that node (e.g. an output node the user picked,
    also a label-map volume node) is updated in place and its ``CMR.`` attributes replaced;
    it is renamed to ``name`` unless ``name`` is empty. Display nodes are created when missing.
    """
    check_scene(scene)
    if not isinstance(image, Image):
        raise InputError(f"volume_node_from_image needs a cmrlib Image; got {type(image).__name__}")
    if image.is_sequence:
        raise InputError(f"'{name}' is a sequence of {image.n_frames} frames; use sequence_node_from_image "
                         "for sequences (or pass one frame: image.frame(k))")
    # Everything that can refuse the input runs before the scene is touched.
    meta = _attributes.encode_meta(image.meta)
    vtk_ready(image.array, f"volume '{name}'")
    if node is None:
        node = add_new_node(scene, "vtkMRMLScalarVolumeNode", name or "Volume")
    else:
        if not node.IsA("vtkMRMLScalarVolumeNode"):
            raise InputError(f"node '{node.GetName()}' is a {node.GetClassName()}; a scalar volume node was expected")
        if node.GetScene() is None:
            scene.AddNode(node)
        elif node.GetScene() is not scene:
            raise InputError(f"node '{node.GetName()}' belongs to another scene")
        if name:
            node.SetName(name)
    was_modifying = node.StartModify()
    try:
        set_volume_content(node, image.array, image.spacing, image.origin, image.direction, f"volume '{name}'")
        _attributes.set_meta(node, meta, encoded=True)
    finally:
        node.EndModify(was_modifying)
    if node.GetDisplayNode() is None:
        node.CreateDefaultDisplayNodes()
    return node


def image_from_volume_node(node: slicer.vtkMRMLVolumeNode) -> Image:
    """The :class:`cmrlib.Image` volume of a scalar (or label-map) volume node, geometry in LPS.

    The voxels are copied (dtype kept); ``meta`` comes back from the ``CMR.`` attributes.
    A parent linear transform is applied to the geometry (a non-linear one must be hardened
    first). Vector (multi-component) volumes are refused.
    """
    if node is None or not node.IsA("vtkMRMLVolumeNode"):
        raise InputError(f"a volume node is needed; got {node.GetClassName() if node is not None else None}")
    array = array_from_image_data(node.GetImageData(), f"volume node '{node.GetName()}'")
    spacing, origin, direction = volume_geometry_lps(node)
    return Image(array, spacing, origin, direction, False, _attributes.get_meta(node), [])  # type: ignore[arg-type]

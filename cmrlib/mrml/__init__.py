"""MRML adapters shared by the SlicerCMR modules: cmrlib types <-> Slicer nodes, and a headless scene.

The only part of :mod:`cmrlib` that imports ``slicer`` / ``vtk`` (nothing else in cmrlib
imports this package, and ``import cmrlib`` does not load it). No Qt is imported, so the same
code runs inside the Slicer application (pass ``slicer.mrmlScene``) and headless on the
``slicer-core`` wheel (pass :func:`new_scene`). LPS <-> RAS conversion happens in
:mod:`cmrlib.mrml._geometry` only.

==============================  ==========================================================
cmrlib side                     MRML side
==============================  ==========================================================
``Image`` volume                vtkMRMLScalarVolumeNode (meta -> ``CMR.<key>`` attributes)
``Image`` sequence              vtkMRMLSequenceNode + vtkMRMLSequenceBrowserNode + proxy
label array + label table       vtkMRMLSegmentationNode (named, coloured segments)
points (N, 3) LPS mm + labels   vtkMRMLMarkupsFiducialNode
rows (list of dicts)            vtkMRMLTableNode
==============================  ==========================================================
"""
from __future__ import annotations

from ._attributes import get_meta as node_meta
from ._geometry import LPS_TO_RAS, lps_to_ras, ras_to_lps
from .markups import markups_node_from_points, points_from_markups_node
from .scene import add_new_node, module_logic, new_scene
from .segmentations import labels_from_segmentation_node, segmentation_node_from_labels
from .sequences import browser_node_for, image_from_sequence_node, proxy_node_for, sequence_node_from_image
from .storage import (load_markups, load_node, load_scene, load_segmentation, load_sequence, load_table,
                      load_volume, save_node, save_scene)
from .tables import rows_from_table_node, table_node_from_rows
from .transforms import (displacement_from_grid_transform, grid_transform_from_displacement,
                         grid_transform_sequence_from_displacements)
from .volumes import image_from_volume_node, volume_node_from_image

__all__ = [
    "new_scene", "module_logic", "add_new_node",
    "volume_node_from_image", "image_from_volume_node",
    "sequence_node_from_image", "image_from_sequence_node", "browser_node_for", "proxy_node_for",
    "segmentation_node_from_labels", "labels_from_segmentation_node",
    "markups_node_from_points", "points_from_markups_node",
    "table_node_from_rows", "rows_from_table_node",
    "save_node", "load_node", "load_volume", "load_segmentation", "load_markups", "load_table", "load_sequence",
    "save_scene", "load_scene",
    "LPS_TO_RAS", "lps_to_ras", "ras_to_lps", "node_meta",
    "grid_transform_from_displacement", "displacement_from_grid_transform", "grid_transform_sequence_from_displacements",
]

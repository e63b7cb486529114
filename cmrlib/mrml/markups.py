"""Landmarks in LPS mm <-> vtkMRMLMarkupsFiducialNode control points (RAS inside Slicer)."""
from __future__ import annotations

import numpy as np
import slicer

from ..errors import InputError
from . import _geometry
from .scene import add_new_node, check_scene


def markups_node_from_points(scene: slicer.vtkMRMLScene, points_lps: np.ndarray, labels: list[str],
                             name: str) -> slicer.vtkMRMLMarkupsFiducialNode:
    """A point-list (fiducial) markups node with one labelled control point per row of ``points_lps``.

    ``points_lps``: shape (N, 3), LPS mm (e.g. anterior RV insertion point, LV centre);
    ``labels``: N control-point labels. N = 0 gives an empty point list.
    """
    check_scene(scene)
    points = np.asarray(points_lps, dtype=float)
    if points.size == 0:
        points = points.reshape(0, 3)
    if points.ndim != 2 or points.shape[1] != 3:
        raise InputError(f"points must be an (N, 3) array of LPS mm; got shape {points.shape}")
    if not np.all(np.isfinite(points)):
        raise InputError("points must be finite (no NaN / inf); a missing landmark should be left out")
    labels = list(labels)
    if len(labels) != len(points):
        raise InputError(f"{len(points)} points need {len(points)} labels; got {len(labels)}")
    node = add_new_node(scene, "vtkMRMLMarkupsFiducialNode", name or "Landmarks")
    was_modifying = node.StartModify()
    try:
        for ras, label in zip(_geometry.lps_to_ras(points), labels, strict=True):
            node.AddControlPoint(float(ras[0]), float(ras[1]), float(ras[2]), str(label))
    finally:
        node.EndModify(was_modifying)
    node.CreateDefaultDisplayNodes()
    return node


def points_from_markups_node(node: slicer.vtkMRMLMarkupsNode) -> tuple[np.ndarray, list[str]]:
    """(points (N, 3) in LPS mm, labels) of the control points of any markups node.

    World positions are used, so a markups node under a transform gives the points where the
    user sees them.
    """
    if node is None or not node.IsA("vtkMRMLMarkupsNode"):
        raise InputError(f"a markups node is needed; got {node.GetClassName() if node is not None else None}")
    n = node.GetNumberOfControlPoints()
    ras = np.zeros((n, 3))
    position = [0.0, 0.0, 0.0]
    for i in range(n):
        node.GetNthControlPointPositionWorld(i, position)
        ras[i] = position
    return _geometry.ras_to_lps(ras), [node.GetNthControlPointLabel(i) for i in range(n)]

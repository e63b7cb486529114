"""LPS landmarks <-> vtkMRMLMarkupsFiducialNode on the real slicer-core libraries."""
from __future__ import annotations

import json

import numpy as np
import pytest
import slicer  # plain import: a missing slicer-core wheel must fail, not skip
import vtk

from cmrlib import InputError
from cmrlib.mrml import load_markups, markups_node_from_points, new_scene, points_from_markups_node, save_node

pytestmark = pytest.mark.mrml

LABELS = ["anterior RV insertion", "LV centre", "inferior RV insertion"]


def _points(rng: np.random.Generator) -> np.ndarray:
    return rng.normal(size=(3, 3)) * 60 + [10.123456789, -20.987654321, 35.5]


def test_round_trip_in_lps_with_labels(rng):
    scene = new_scene()
    points = _points(rng)
    node = markups_node_from_points(scene, points, LABELS, "landmarks")
    assert node.IsA("vtkMRMLMarkupsFiducialNode") and node.GetScene() is scene and node.GetDisplayNode() is not None
    # inside Slicer the control points are RAS: x and y negated
    ras = np.array([node.GetNthControlPointPosition(i) for i in range(3)])
    np.testing.assert_allclose(ras, points * [-1, -1, 1], atol=1e-9)
    back, labels = points_from_markups_node(node)
    np.testing.assert_allclose(back, points, atol=1e-6, rtol=0)
    assert labels == LABELS


def test_mrk_json_file_is_lps_and_round_trips(rng, tmp_path):
    scene = new_scene()
    points = _points(rng)
    path = save_node(markups_node_from_points(scene, points, LABELS, "landmarks"), tmp_path / "lm.mrk.json")
    content = json.loads(path.read_text())
    markup = content["markups"][0]
    assert markup["coordinateSystem"] == "LPS"
    np.testing.assert_allclose([p["position"] for p in markup["controlPoints"]], points, atol=1e-6)
    loaded = load_markups(new_scene(), path)
    assert loaded.IsA("vtkMRMLMarkupsFiducialNode")
    back, labels = points_from_markups_node(loaded)
    np.testing.assert_allclose(back, points, atol=1e-6, rtol=0)
    assert labels == LABELS


def test_world_positions_follow_a_parent_transform(rng):
    scene = new_scene()
    points = _points(rng)
    node = markups_node_from_points(scene, points, LABELS, "landmarks")
    transform = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "up")
    m = vtk.vtkMatrix4x4()
    m.SetElement(2, 3, 5.0)  # 5 mm superior (same in RAS and LPS)
    transform.SetMatrixTransformToParent(m)
    node.SetAndObserveTransformNodeID(transform.GetID())
    np.testing.assert_allclose(points_from_markups_node(node)[0], points + [0, 0, 5.0], atol=1e-9)


def test_empty_and_bad_inputs(rng):
    scene = new_scene()
    back, labels = points_from_markups_node(markups_node_from_points(scene, np.zeros((0, 3)), [], "none"))
    assert back.shape == (0, 3) and labels == []
    with pytest.raises(InputError, match=r"\(N, 3\)"):
        markups_node_from_points(scene, np.zeros((3, 2)), ["a", "b", "c"], "bad")
    with pytest.raises(InputError, match="labels"):
        markups_node_from_points(scene, _points(rng), ["a"], "bad")
    with pytest.raises(InputError, match="finite"):
        markups_node_from_points(scene, [[0.0, np.nan, 0.0]], ["a"], "bad")


def test_works_on_a_bare_scene_without_logics(rng):
    points = _points(rng)
    back, labels = points_from_markups_node(markups_node_from_points(slicer.vtkMRMLScene(), points, LABELS, "lm"))
    np.testing.assert_allclose(back, points, atol=1e-9)
    assert labels == LABELS

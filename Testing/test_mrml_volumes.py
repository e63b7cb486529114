"""Image volume <-> vtkMRMLScalarVolumeNode on the real slicer-core MRML libraries."""
from __future__ import annotations

import numpy as np
import pytest
import slicer  # plain import: a missing slicer-core wheel must fail, not skip
import vtk

from cmrlib import Image, InputError
from cmrlib.mrml import image_from_volume_node, new_scene, volume_node_from_image
from conftest import oblique_direction

pytestmark = pytest.mark.mrml

SPACING = (1.4, 1.6, 8.0)  # (col, row, slice) mm: non-isotropic on purpose
ORIGIN = (12.345678901, -30.25, 41.0)  # LPS mm


def _volume(rng: np.random.Generator, dtype=np.float32, meta=None) -> Image:
    array = (rng.normal(size=(5, 12, 16)) * 300).astype(dtype)
    return Image(array, SPACING, ORIGIN, oblique_direction(), meta=meta or {})


def _ijk_to_ras(node) -> np.ndarray:
    m = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(m)
    return np.array([[m.GetElement(r, c) for c in range(4)] for r in range(4)])


def test_round_trip_keeps_voxels_geometry_and_meta(rng):
    scene = new_scene()
    meta = {"SeriesDescription": "LGE PSIR SAX", "SeriesNumber": 5, "MagneticFieldStrength": 1.5,
            "ImageType": ["ORIGINAL", "PRIMARY"], "psir": True, "window": {"center": 40.0, "width": 400.0}}
    image = _volume(rng, meta=meta)
    node = volume_node_from_image(scene, image, "LGE")
    assert node.IsA("vtkMRMLScalarVolumeNode") and node.GetScene() is scene and node.GetName() == "LGE"
    assert node.GetDisplayNode() is not None
    assert node.GetAttribute("CMR.SeriesNumber") == "5"  # JSON text, readable by other tools too

    back = image_from_volume_node(node)
    assert back.array.dtype == image.array.dtype
    np.testing.assert_array_equal(back.array, image.array)
    np.testing.assert_allclose(back.spacing, SPACING, atol=1e-6, rtol=0)
    np.testing.assert_allclose(back.origin, ORIGIN, atol=1e-6, rtol=0)
    np.testing.assert_allclose(back.direction, image.direction, atol=1e-9, rtol=0)
    assert not back.is_sequence
    assert back.meta == meta
    # the node's copy is independent of the caller's array
    image.array[0, 0, 0] += 1000
    assert image_from_volume_node(node).array[0, 0, 0] == back.array[0, 0, 0]


def test_ras_of_voxel_zero_is_lps_origin_with_x_y_negated(rng):
    image = _volume(rng)
    node = volume_node_from_image(new_scene(), image, "v")
    m = _ijk_to_ras(node)
    np.testing.assert_allclose(m[:3, 3], [-ORIGIN[0], -ORIGIN[1], ORIGIN[2]], atol=1e-9)
    # every voxel: RAS from the node == flipped LPS from the Image
    ijk = np.array([[15, 11, 4], [3, 7, 2], [0, 11, 0]], dtype=float)
    ras = (m @ np.c_[ijk, np.ones(3)].T).T[:, :3]
    lps = image.index_to_lps(ijk)
    np.testing.assert_allclose(ras, lps * [-1, -1, 1], atol=1e-9)


@pytest.mark.parametrize("dtype", [np.int16, np.uint8, np.float64, np.int32])
def test_dtypes_are_kept(rng, dtype):
    image = _volume(rng, dtype)
    back = image_from_volume_node(volume_node_from_image(new_scene(), image, "v"))
    assert back.array.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(back.array, image.array)


def test_bool_is_stored_as_uint8(rng):
    image = Image(rng.uniform(size=(2, 4, 5)) > 0.5, SPACING, ORIGIN)
    back = image_from_volume_node(volume_node_from_image(new_scene(), image, "mask"))
    assert back.array.dtype == np.uint8
    np.testing.assert_array_equal(back.array, image.array.astype(np.uint8))


def test_sequence_image_is_refused(rng):
    sequence = Image(rng.normal(size=(3, 12, 16)), SPACING, ORIGIN, oblique_direction(), True)
    scene = new_scene()
    n_before = scene.GetNumberOfNodes()
    with pytest.raises(InputError, match="sequence"):
        volume_node_from_image(scene, sequence, "irw")
    assert scene.GetNumberOfNodes() == n_before


def test_update_in_place_replaces_data_and_stale_meta(rng):
    scene = new_scene()
    node = volume_node_from_image(scene, _volume(rng, meta={"old": 1, "kept": "a"}), "output")
    display = node.GetDisplayNode()
    new = Image(np.arange(2 * 3 * 4, dtype=np.int16).reshape(2, 3, 4), (0.7, 0.7, 6.0), (1.0, 2.0, 3.0),
                meta={"kept": "b"})
    assert volume_node_from_image(scene, new, "", node=node) is node
    assert node.GetName() == "output"  # empty name keeps the user's node name
    assert node.GetDisplayNode() is display
    back = image_from_volume_node(node)
    np.testing.assert_array_equal(back.array, new.array)
    np.testing.assert_allclose(back.spacing, new.spacing)
    np.testing.assert_allclose(back.direction, np.eye(3))
    assert back.meta == {"kept": "b"}


def test_label_map_node_can_be_filled(rng):
    scene = new_scene()
    labels = Image(rng.integers(0, 4, size=(5, 12, 16)).astype(np.int16), SPACING, ORIGIN, oblique_direction())
    node = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "labels")
    volume_node_from_image(scene, labels, "labels", node=node)
    assert node.GetDisplayNode().GetColorNodeID()  # the Colors logic's label colour table
    np.testing.assert_array_equal(image_from_volume_node(node).array, labels.array)


def test_parent_linear_transform_is_applied_both_ways(rng):
    scene = new_scene()
    image = _volume(rng)
    node = volume_node_from_image(scene, image, "v")
    transform = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "shift")
    m = vtk.vtkMatrix4x4()
    m.SetElement(0, 3, 10.0)  # 10 mm towards patient Right (RAS +x) = LPS -x
    transform.SetMatrixTransformToParent(m)
    node.SetAndObserveTransformNodeID(transform.GetID())
    moved = image_from_volume_node(node)
    np.testing.assert_allclose(np.subtract(moved.origin, ORIGIN), [-10.0, 0.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(moved.direction, image.direction, atol=1e-9)
    # writing an Image into a transformed node puts it where the Image says, in world space
    volume_node_from_image(scene, image, "", node=node)
    np.testing.assert_allclose(image_from_volume_node(node).origin, ORIGIN, atol=1e-9)


def test_works_on_a_bare_scene_without_logics(rng):
    image = _volume(rng)
    back = image_from_volume_node(volume_node_from_image(slicer.vtkMRMLScene(), image, "v"))
    np.testing.assert_array_equal(back.array, image.array)


def test_vector_volume_is_refused():
    scene = new_scene()
    node = scene.AddNewNodeByClass("vtkMRMLVectorVolumeNode", "rgb")
    data = vtk.vtkImageData()
    data.SetDimensions(4, 3, 2)
    data.AllocateScalars(vtk.VTK_UNSIGNED_CHAR, 3)
    node.SetAndObserveImageData(data)
    with pytest.raises(InputError, match="3 components"):
        image_from_volume_node(node)


def test_unstorable_input_is_refused_before_the_scene_changes(rng):
    scene = new_scene()
    n_before = scene.GetNumberOfNodes()
    with pytest.raises(InputError, match="':' or ';'"):
        volume_node_from_image(scene, _volume(rng, meta={"Series:Description": "x"}), "v")
    with pytest.raises(InputError, match="cannot be stored"):
        volume_node_from_image(scene, _volume(rng, meta={"fit": object()}), "v")
    with pytest.raises(InputError, match="real-valued"):
        volume_node_from_image(scene, Image(np.zeros((2, 3, 4), np.complex64)), "v")
    assert scene.GetNumberOfNodes() == n_before


def test_meta_survives_mrml_attribute_escaping(rng, tmp_path):
    from cmrlib.mrml import load_scene, save_scene

    meta = {"SeriesDescription": 'T1 map; "rest": 5% <b>&</b> é', "list": [1, None, "a;b:c"], "nan": float("nan")}
    scene = new_scene()
    volume_node_from_image(scene, _volume(rng, meta=meta), "v")
    loaded = load_scene(save_scene(scene, tmp_path))
    back = image_from_volume_node(loaded.GetNodesByClassByName("vtkMRMLScalarVolumeNode", "v").GetItemAsObject(0))
    assert np.isnan(back.meta.pop("nan"))
    assert back.meta == {k: v for k, v in meta.items() if k != "nan"}

"""Files and scenes through MRML storage nodes, checked against SimpleITK and cmrlib.io."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import slicer  # noqa: F401 - plain import: a missing slicer-core wheel must fail, not skip

from cmrlib import Image, InputError
from cmrlib.io import read_image, write_image
from cmrlib.mrml import (browser_node_for, image_from_sequence_node, image_from_volume_node,
                         labels_from_segmentation_node, load_node, load_scene, load_volume, markups_node_from_points,
                         new_scene, points_from_markups_node, proxy_node_for, rows_from_table_node, save_node,
                         save_scene, segmentation_node_from_labels, sequence_node_from_image, table_node_from_rows,
                         volume_node_from_image)
from conftest import MOLLI_533_ACQ, oblique_direction

pytestmark = pytest.mark.mrml

SPACING = (1.4, 1.6, 8.0)
ORIGIN = (12.345678901, -30.25, 41.0)
TABLE = {1: ("myocardium", (0.8, 0.2, 0.2)), 2: ("blood pool", (0.2, 0.3, 0.9)), 3: ("scar", (1.0, 1.0, 0.0))}
LANDMARK_LABELS = ["anterior RV insertion", "LV centre"]


def _lge(rng: np.random.Generator) -> Image:
    return Image((rng.normal(size=(5, 12, 16)) * 300).astype(np.float32), SPACING, ORIGIN, oblique_direction(),
                 meta={"SeriesDescription": "LGE PSIR SAX", "SeriesNumber": 6})


def _molli(rng: np.random.Generator) -> Image:
    return Image(rng.integers(0, 900, size=(len(MOLLI_533_ACQ), 12, 16)).astype(np.int16), SPACING, ORIGIN,
                 oblique_direction(), True, {"SeriesDescription": "MOLLI"},
                 [{"InversionTime": ti, "TriggerTime": 300.0} for ti in MOLLI_533_ACQ])


def _only(scene, class_name: str, name: str):
    nodes = scene.GetNodesByClassByName(class_name, name)
    assert nodes.GetNumberOfItems() == 1, f"expected one {class_name} named {name!r}"
    return nodes.GetItemAsObject(0)


def _assert_same_image(back: Image, image: Image) -> None:
    assert back.array.dtype == image.array.dtype
    np.testing.assert_array_equal(back.array, image.array)
    np.testing.assert_allclose(back.spacing, image.spacing, atol=1e-6, rtol=0)
    np.testing.assert_allclose(back.origin, image.origin, atol=1e-6, rtol=0)
    np.testing.assert_allclose(back.direction, image.direction, atol=1e-9, rtol=0)
    assert back.meta == image.meta and back.frame_meta == image.frame_meta


def test_saved_nrrd_has_the_image_lps_geometry_for_simpleitk_and_cmrlib(rng, tmp_path):
    scene = new_scene()
    image = _lge(rng)
    path = save_node(volume_node_from_image(scene, image, "LGE"), tmp_path / "lge.nrrd")
    itk = sitk.ReadImage(str(path))
    np.testing.assert_allclose(itk.GetOrigin(), ORIGIN, atol=1e-6, rtol=0)
    np.testing.assert_allclose(itk.GetSpacing(), SPACING, atol=1e-6, rtol=0)
    np.testing.assert_allclose(np.reshape(itk.GetDirection(), (3, 3)), image.direction, atol=1e-9)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(itk), image.array)
    via_cmrlib = read_image(path)
    assert via_cmrlib.same_geometry(image, tol_mm=1e-6)
    np.testing.assert_array_equal(via_cmrlib.array, image.array)


@pytest.mark.parametrize("suffix", [".nrrd", ".nii.gz", ".mha"])
def test_files_written_by_cmrlib_load_with_their_geometry(rng, tmp_path, suffix):
    image = _lge(rng)
    path = write_image(image, tmp_path / f"lge{suffix}")
    scene = new_scene()
    back = image_from_volume_node(load_volume(scene, path))
    np.testing.assert_array_equal(back.array, image.array)
    np.testing.assert_allclose(back.origin, ORIGIN, atol=1e-5, rtol=0)  # NIfTI stores float32
    np.testing.assert_allclose(back.spacing, SPACING, atol=1e-5, rtol=0)
    np.testing.assert_allclose(back.direction, image.direction, atol=1e-5)


def test_save_node_and_load_node_per_file_type(rng, tmp_path):
    scene = new_scene()
    lge = _lge(rng)
    labels = rng.integers(0, 4, size=lge.spatial_shape)
    points = rng.normal(size=(2, 3)) * 40
    written = {
        "volume": save_node(volume_node_from_image(scene, lge, "LGE"), tmp_path / "lge.nrrd"),
        "label map": save_node(volume_node_from_image(scene, lge.with_array(labels.astype(np.uint8)), "labels"),
                               tmp_path / "labels.nii.gz"),
        "segmentation": save_node(segmentation_node_from_labels(scene, labels, lge, TABLE, "seg"),
                                  tmp_path / "seg.seg.nrrd"),
        "markups": save_node(markups_node_from_points(scene, points, LANDMARK_LABELS, "lm"), tmp_path / "lm.mrk.json"),
        "table": save_node(table_node_from_rows(scene, [{"a": 1.5, "b": "x"}], "t"), tmp_path / "t.tsv"),
        "sequence": save_node(sequence_node_from_image(scene, _molli(rng), "MOLLI"), tmp_path / "molli.seq.nrrd"),
    }
    other = new_scene()
    loaded = {kind: load_node(other, path) for kind, path in written.items()}
    assert loaded["volume"].IsA("vtkMRMLScalarVolumeNode") and loaded["volume"].GetName() == "lge"
    np.testing.assert_array_equal(image_from_volume_node(loaded["label map"]).array, labels)
    np.testing.assert_array_equal(labels_from_segmentation_node(loaded["segmentation"], lge, TABLE), labels)
    np.testing.assert_allclose(points_from_markups_node(loaded["markups"])[0], points, atol=1e-6)
    assert rows_from_table_node(loaded["table"]) == [{"a": 1.5, "b": "x"}]
    assert loaded["sequence"].IsA("vtkMRMLSequenceNode") and browser_node_for(loaded["sequence"]) is not None


def test_save_and_load_errors(rng, tmp_path):
    scene = new_scene()
    node = volume_node_from_image(scene, _lge(rng), "LGE")
    with pytest.raises(InputError, match="cannot be written"):
        save_node(node, tmp_path / "lge.mrk.json")
    with pytest.raises(InputError, match="no file"):
        load_volume(scene, tmp_path / "missing.nrrd")
    (tmp_path / "junk.nrrd").write_text("not an image")
    n_before = scene.GetNumberOfNodes()
    with pytest.raises(InputError, match="could not be read"):
        load_volume(scene, tmp_path / "junk.nrrd")
    assert scene.GetNumberOfNodes() == n_before  # nothing partial stays in the scene
    backup = tmp_path / "junk.nrrd.bak"
    backup.write_text("x")
    with pytest.raises(InputError, match="unknown file type"):
        load_node(scene, backup)


def test_save_scene_and_load_scene_round_trip_everything(rng, tmp_path):
    scene = new_scene()
    lge, molli = _lge(rng), _molli(rng)
    labels = rng.integers(0, 4, size=lge.spatial_shape)
    points = rng.normal(size=(2, 3)) * 40 + 0.123456789
    rows = [{"slice": 1.0, "T1 (ms)": 1012.5, "level": "basal", "low certainty": False}]
    volume_node_from_image(scene, lge, "LGE")
    sequence_node_from_image(scene, molli, "MOLLI")
    segmentation_node_from_labels(scene, labels, lge, TABLE, "scar segmentation")
    markups_node_from_points(scene, points, LANDMARK_LABELS, "landmarks")
    table_node_from_rows(scene, rows, "T1 per slice")

    mrml = save_scene(scene, tmp_path / "saved")
    assert mrml == tmp_path / "saved" / "scene.mrml" and mrml.is_file()
    # relative paths: the folder can be moved as a whole
    moved = Path(shutil.move(str(tmp_path / "saved"), str(tmp_path / "moved")))
    loaded = load_scene(moved / "scene.mrml")
    assert loaded is not scene

    _assert_same_image(image_from_volume_node(_only(loaded, "vtkMRMLScalarVolumeNode", "LGE")), lge)
    sequence = _only(loaded, "vtkMRMLSequenceNode", "MOLLI")
    _assert_same_image(image_from_sequence_node(sequence), molli)
    assert browser_node_for(sequence) is not None and proxy_node_for(sequence) is not None
    segmentation = _only(loaded, "vtkMRMLSegmentationNode", "scar segmentation")
    np.testing.assert_array_equal(labels_from_segmentation_node(segmentation, lge, TABLE), labels)
    segments = segmentation.GetSegmentation()
    assert [(segments.GetNthSegment(i).GetName(), segments.GetNthSegment(i).GetColor())
            for i in range(segments.GetNumberOfSegments())] == [(n, pytest.approx(c)) for n, c in TABLE.values()]
    back_points, back_labels = points_from_markups_node(_only(loaded, "vtkMRMLMarkupsFiducialNode", "landmarks"))
    np.testing.assert_allclose(back_points, points, atol=1e-6, rtol=0)
    assert back_labels == LANDMARK_LABELS
    assert rows_from_table_node(_only(loaded, "vtkMRMLTableNode", "T1 per slice")) == rows


def test_save_scene_names_files_uniquely_and_safely(rng, tmp_path):
    scene = new_scene()
    lge = _lge(rng)
    volume_node_from_image(scene, lge, "T1 map / rest")
    volume_node_from_image(scene, lge, "T1 map / rest")
    mrml = save_scene(scene, tmp_path)
    assert sorted(p.name for p in tmp_path.glob("*.nrrd")) == ["T1_map_rest.nrrd", "T1_map_rest_1.nrrd"]
    loaded = load_scene(mrml)
    assert loaded.GetNodesByClassByName("vtkMRMLScalarVolumeNode", "T1 map / rest").GetNumberOfItems() == 2


def test_load_scene_of_a_missing_or_broken_file(tmp_path):
    with pytest.raises(InputError, match="no file"):
        load_scene(tmp_path / "nothing.mrml")
    broken = tmp_path / "broken.mrml"
    broken.write_text("<MRML><Volume id=")
    with pytest.raises(InputError, match="could not be imported"):
        load_scene(broken)


def test_load_scene_with_a_missing_data_file(rng, tmp_path):
    scene = new_scene()
    volume_node_from_image(scene, _lge(rng), "LGE")
    mrml = save_scene(scene, tmp_path)
    (tmp_path / "LGE.nrrd").unlink()
    with pytest.raises(InputError, match="Failed to read node LGE"):
        load_scene(mrml)

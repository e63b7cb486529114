"""Sequence Image <-> vtkMRMLSequenceNode + browser + proxy volume on the real slicer-core libraries."""
from __future__ import annotations

import numpy as np
import pytest
import slicer  # plain import: a missing slicer-core wheel must fail, not skip

from cmrlib import Image, InputError
from cmrlib.mrml import (browser_node_for, image_from_sequence_node, image_from_volume_node, load_sequence,
                         new_scene, proxy_node_for, save_node, sequence_node_from_image)
from conftest import MOLLI_533_ACQ, oblique_direction

pytestmark = pytest.mark.mrml

SPACING = (1.4, 1.6, 8.0)
ORIGIN = (12.5, -30.25, 41.0)


def _molli(rng: np.random.Generator, slices: int | None = None) -> Image:
    """MOLLI 5(3)3 IRW frames in acquisition order (TIs not sorted), [frame,row,col] or [frame,slice,row,col]."""
    shape = (len(MOLLI_533_ACQ), 12, 16) if slices is None else (len(MOLLI_533_ACQ), slices, 12, 16)
    frame_meta = [{"InversionTime": ti, "TriggerTime": 310.0 + k, "ImagePositionPatient": list(ORIGIN)}
                  for k, ti in enumerate(MOLLI_533_ACQ)]
    return Image(rng.integers(0, 900, size=shape).astype(np.int16), SPACING, ORIGIN, oblique_direction(), True,
                 {"SeriesDescription": "MOLLI native SAX", "kind": "irw"}, frame_meta)


def _check_same(back: Image, image: Image) -> None:
    assert back.is_sequence
    assert back.array.shape == image.array.shape and back.array.dtype == image.array.dtype
    np.testing.assert_array_equal(back.array, image.array)
    np.testing.assert_allclose(back.spacing, image.spacing, atol=1e-6, rtol=0)
    np.testing.assert_allclose(back.origin, image.origin, atol=1e-6, rtol=0)
    np.testing.assert_allclose(back.direction, image.direction, atol=1e-9, rtol=0)
    assert back.frame_meta == image.frame_meta
    assert back.meta == image.meta


def test_round_trip_keeps_acquisition_order_and_inversion_times(rng):
    scene = new_scene()
    image = _molli(rng)
    seq = sequence_node_from_image(scene, image, "MOLLI")
    assert seq.IsA("vtkMRMLSequenceNode") and seq.GetScene() is scene
    assert (seq.GetIndexName(), seq.GetIndexUnit()) == ("InversionTime", "ms")
    assert seq.GetNumberOfDataNodes() == len(MOLLI_533_ACQ)
    # the index is numeric and sorted by TI; the data node of each TI carries that TI
    values = [float(seq.GetNthIndexValue(i)) for i in range(seq.GetNumberOfDataNodes())]
    assert values == sorted(MOLLI_533_ACQ)
    for i, ti in enumerate(values):
        assert float(seq.GetNthDataNode(i).GetAttribute("CMR.InversionTime")) == ti
    _check_same(image_from_sequence_node(seq), image)


def test_multi_slice_frames_round_trip(rng):
    image = _molli(rng, slices=3)
    _check_same(image_from_sequence_node(sequence_node_from_image(new_scene(), image, "MOLLI")), image)


def test_browser_and_proxy_show_frames(rng):
    scene = new_scene()
    image = _molli(rng)
    seq = sequence_node_from_image(scene, image, "MOLLI")
    browser = browser_node_for(seq)
    assert browser is not None and browser.IsA("vtkMRMLSequenceBrowserNode")
    proxy = proxy_node_for(seq)
    assert proxy is not None and proxy.IsA("vtkMRMLScalarVolumeNode") and proxy.GetScene() is scene
    assert proxy.GetDisplayNode() is not None
    # browsing to an item updates the proxy to that frame (the Sequences logic at work)
    k = MOLLI_533_ACQ.index(1100.0)
    browser.SetSelectedItemNumber(seq.GetItemNumberFromIndexValue("1100"))
    frame = image_from_volume_node(proxy_node_for(seq))
    np.testing.assert_array_equal(frame.array[0], image.array[k])
    assert frame.meta["InversionTime"] == 1100.0
    np.testing.assert_allclose(frame.origin, ORIGIN, atol=1e-6)


def test_cine_uses_trigger_time_index(rng):
    image = Image(rng.normal(size=(6, 12, 16)).astype(np.float32), SPACING, ORIGIN, oblique_direction(), True,
                  {}, [{"TriggerTime": 40.0 * k} for k in range(6)])
    seq = sequence_node_from_image(new_scene(), image, "cine")
    assert (seq.GetIndexName(), seq.GetIndexUnit()) == ("TriggerTime", "ms")
    _check_same(image_from_sequence_node(seq), image)


def test_frame_index_when_inversion_times_repeat_or_miss(rng):
    # two frames with the same TI would overwrite each other under a TI index
    repeated = Image(rng.normal(size=(3, 4, 5)), SPACING, ORIGIN, np.eye(3), True, {},
                     [{"InversionTime": 100.0}, {"InversionTime": 100.0}, {"InversionTime": 900.0}])
    seq = sequence_node_from_image(new_scene(), repeated, "dup")
    assert seq.GetIndexName() == "frame" and seq.GetNumberOfDataNodes() == 3
    _check_same(image_from_sequence_node(seq), repeated)
    missing = Image(rng.normal(size=(2, 4, 5)), SPACING, ORIGIN, np.eye(3), True, {},
                    [{"InversionTime": 100.0}, {}])
    assert sequence_node_from_image(new_scene(), missing, "gap").GetIndexName() == "frame"
    no_meta = Image(rng.normal(size=(2, 4, 5)), SPACING, ORIGIN, np.eye(3), True)
    back = image_from_sequence_node(sequence_node_from_image(new_scene(), no_meta, "plain"))
    np.testing.assert_array_equal(back.array, no_meta.array)
    assert back.frame_meta == [{}, {}]


def test_volume_image_is_refused(rng):
    with pytest.raises(InputError, match="single volume"):
        sequence_node_from_image(new_scene(), Image(rng.normal(size=(2, 4, 5))), "v")


def test_frames_on_different_grids_are_refused(rng):
    scene = new_scene()
    seq = sequence_node_from_image(scene, _molli(rng), "MOLLI")
    odd = slicer.vtkMRMLScalarVolumeNode()
    odd.SetAndObserveImageData(seq.GetNthDataNode(0).GetImageData())
    odd.SetSpacing(2.0, 2.0, 8.0)
    seq.SetDataNodeAtValue(odd, "5000")
    with pytest.raises(InputError, match="different grid"):
        image_from_sequence_node(seq)


def test_seq_nrrd_file_keeps_frames_and_metadata(rng, tmp_path):
    image = _molli(rng)
    source = new_scene()  # kept referenced: a dropped scene takes its nodes out with it
    path = save_node(sequence_node_from_image(source, image, "MOLLI"), tmp_path / "molli.seq.nrrd")
    assert path.is_file()
    scene = new_scene()
    seq = load_sequence(scene, path)
    assert seq.GetIndexName() == "InversionTime"
    assert proxy_node_for(seq) is not None
    _check_same(image_from_sequence_node(seq), image)


def test_works_on_a_bare_scene_without_logics(rng):
    scene = slicer.vtkMRMLScene()
    image = _molli(rng)
    seq = sequence_node_from_image(scene, image, "MOLLI")
    assert proxy_node_for(seq) is not None
    _check_same(image_from_sequence_node(seq), image)

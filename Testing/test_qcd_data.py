"""QCD training data: phantom images with contract labels, images without an answer, network
inputs whose labels follow the image exactly, corruptions, and the user's --data folder."""
import json

import numpy as np
import pytest
import SimpleITK as sitk

from cmrlib.augment import CORRUPTIONS, corrupt
from cmrlib.errors import InputError
from cmrlib.image import Image
from cmrlib.io import write_image
from cmrlib.qcd.data import (CONTRASTS, CROP_SHIFT_MM, Slice2D, contract_labels, heart_centre_px, network_input,
                             normalise01, phantom_slices, training_sample, user_slices)


def test_contract_labels_merge_scar_into_myocardium():
    lab = np.array([[0, 1, 2, 3, 4, 5, 6]])
    assert contract_labels(lab).tolist() == [[0, 1, 2, 1, 0, 0, 0]]


@pytest.fixture(scope="module")
def slices():
    return phantom_slices([910_001, 910_002], per_contrast=2)


def test_phantom_slices_cover_every_contrast_with_aligned_labels(slices):
    assert {s.contrast for s in slices} >= set(CONTRASTS)
    sax = [s for s in slices if s.kind == "sax"]
    assert sax and all(s.image.shape == s.labels.shape for s in slices)
    for s in sax:
        assert s.has_myocardium and set(np.unique(s.labels)) <= {0, 1, 2}
        if s.contrast in ("t1_native", "t1_post"):
            # T1 maps: myocardium T1 clearly different from blood (native: lower; post: higher)
            myo, bp = np.median(s.image[s.labels == 1]), np.median(s.image[s.labels == 2])
            assert (myo < bp) if s.contrast == "t1_native" else (myo > bp)
    negatives = [s for s in slices if s.kind in ("long_axis", "non_cardiac", "beyond_lv") and not s.has_myocardium]
    assert negatives, "every subject adds one image without a short-axis answer"


def test_training_sample_labels_follow_the_image_through_every_augmentation():
    # an image whose intensity *is* its label: after rotation / flip / shift / scaling both must agree
    lab = np.zeros((90, 110), np.uint8)
    lab[30:60, 40:80] = 2
    lab[25:30, 35:85] = 1
    sl = Slice2D(lab.astype(np.float32) * 100 + 1, lab, (1.7, 1.7), "lge_psir")
    rng = np.random.default_rng(3)
    for _ in range(10):
        x, y = training_sample(sl, 64, 2.0, rng, random_contrast=0.0, corrupt_p=0.0)
        assert x.shape == y.shape == (64, 64) and 0.0 <= x.min() and x.max() <= 1.0
        x0, y0 = training_sample(sl, 64, 2.0, rng, augment=False)
    # unaugmented: the brightest pixels are the blood pool label exactly (up to interpolation at edges)
    inside = y0 == 2
    assert inside.any() and np.median(x0[inside]) > np.median(x0[y0 == 0])


def test_heart_centred_crops_hold_the_heart_near_their_centre_wherever_it_lies_in_the_image():
    # a heart in a corner of a 300 mm image: the crop pass's training samples are centred on it
    # (within the shift the overview pass may miss it by); the image-centred grid is not
    lab = np.zeros((150, 150), np.uint8)
    rr, cc = np.mgrid[0:150, 0:150]
    d = np.hypot(rr - 30, cc - 115)
    lab[d < 16] = 1
    lab[d < 11] = 2
    sl = Slice2D(lab.astype(np.float32) + 0.5, lab, (2.0, 2.0), "lge_psir")
    assert heart_centre_px(lab) == pytest.approx((115.0, 30.0), abs=0.5)
    assert heart_centre_px(np.zeros((4, 4))) is None
    rng = np.random.default_rng(0)
    size, px = 48, 1.5
    worst = 0.0
    for _ in range(20):
        _, y = training_sample(sl, size, px, rng, random_contrast=0.0, corrupt_p=0.0, heart_centred=True)
        v, u = np.nonzero(y > 0)
        assert len(v), "the heart is inside every crop"
        worst = max(worst, float(np.hypot(u.mean() - (size - 1) / 2, v.mean() - (size - 1) / 2)) * px)
    assert worst <= np.sqrt(2) * CROP_SHIFT_MM * 1.25 + 2.0  # the shift, scaled by up to e^0.2
    _, y_plain = training_sample(sl, size, px, None, augment=False)
    assert not (y_plain > 0).any(), "centred on the image, the 72 mm grid misses the corner heart"
    _, y_exact = training_sample(sl, size, px, None, augment=False, heart_centred=True)
    v, u = np.nonzero(y_exact > 0)
    assert np.hypot(u.mean() - 23.5, v.mean() - 23.5) < 1.0
    # no heart: a random centre, still a valid all-background sample
    empty = Slice2D(np.random.default_rng(1).random((80, 80)).astype(np.float32), np.zeros((80, 80), np.uint8),
                    (2.0, 2.0), "non_cardiac")
    x, y = training_sample(empty, size, px, rng, heart_centred=True)
    assert x.shape == (size, size) and not y.any()


def test_normalise01_and_constant_images():
    x = np.linspace(-5, 5, 100).reshape(10, 10)
    n = normalise01(x)
    assert n.min() == 0.0 and n.max() == 1.0
    assert not normalise01(np.full((8, 8), 3.0)).any()


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_each_corruption_changes_the_image_more_with_severity(kind):
    rng = np.random.default_rng(0)
    img = np.zeros((64, 64), np.float32)
    img[20:44, 20:44] = 1.0
    img += 0.1 * np.random.default_rng(1).random(img.shape).astype(np.float32)
    weak = np.abs(corrupt(img, np.random.default_rng(0), kind, 0.2) - img).mean()
    strong = np.abs(corrupt(img, np.random.default_rng(0), kind, 1.0) - img).mean()
    assert strong > 0 and strong >= weak
    with pytest.raises(ValueError):
        corrupt(img, rng, "nonsense", 0.5)


def _image(shape=(3, 40, 50), spacing=(1.5, 1.5, 8.0)):
    arr = np.random.default_rng(0).random(shape).astype(np.float32)
    return Image(arr, spacing, (0.0, 0.0, 0.0), np.eye(3))


def test_user_folder_with_label_maps_and_a_slicer_segmentation(tmp_path):
    img = _image()
    lab = np.zeros(img.array.shape, np.uint8)
    lab[0, 10:20, 10:20] = 1
    lab[0, 13:17, 13:17] = 2
    lab[2, 5:10, 5:30] = 3  # scar counts as myocardium; slice 1 unlabelled (skipped)
    write_image(img, tmp_path / "case1.nrrd")
    write_image(img.with_array(lab), tmp_path / "case1.labels.nrrd")
    # a Slicer segmentation: one layer, segments by name
    write_image(img, tmp_path / "case2.nrrd")
    seg = np.zeros(img.array.shape, np.uint8)
    seg[1, 5:15, 5:15] = 7  # "Myocardium" with label value 7
    seg[1, 8:12, 8:12] = 9  # "LV blood pool"
    s = sitk.GetImageFromArray(seg)
    s.SetSpacing((1.5, 1.5, 8.0))
    for i, (name, value) in enumerate((("Myocardium", 7), ("LV blood pool", 9))):
        s.SetMetaData(f"Segment{i}_Name", name)
        s.SetMetaData(f"Segment{i}_LabelValue", str(value))
        s.SetMetaData(f"Segment{i}_Layer", "0")
    sitk.WriteImage(s, str(tmp_path / "case2.seg.nrrd"))
    (tmp_path / "notes.txt").write_text("not an image")
    items = user_slices(tmp_path)
    got = {(it.meta["image"], it.meta["slice"]): it for it in items}
    assert set(got) == {("case1.nrrd", 0), ("case1.nrrd", 2), ("case2.nrrd", 1)}
    assert (got[("case1.nrrd", 2)].labels == 1).sum() == 5 * 25
    c2 = got[("case2.nrrd", 1)].labels
    assert (c2 == 2).sum() == 16 and (c2 == 1).sum() == 100 - 16
    assert got[("case1.nrrd", 0)].spacing == (1.5, 1.5)


def test_user_folder_refusals(tmp_path):
    with pytest.raises(InputError, match="not a folder"):
        user_slices(tmp_path / "missing")
    write_image(_image(), tmp_path / "a.nrrd")
    with pytest.raises(InputError, match="no image with a label map"):
        user_slices(tmp_path)
    write_image(_image().with_array(np.full((3, 40, 50), 2, np.uint8)), tmp_path / "a_labels.nrrd")
    with pytest.raises(InputError, match="no myocardium"):
        user_slices(tmp_path)

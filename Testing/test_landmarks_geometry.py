"""Landmarks: the stage grids and their exact inverses, handedness, the networks, the metrics."""
import numpy as np
import pytest

from cmrlib.landmarks.geometry import is_mirrored, stage1_map, stage2_map, standardise
from cmrlib.metrics import landmark_error_mm, line_angle_error_deg


def _disc_image(shape=(90, 110), centre=(60.0, 40.0), radius=12.0):
    rows, cols = np.mgrid[:shape[0], :shape[1]]
    return ((cols - centre[0]) ** 2 + (rows - centre[1]) ** 2 < radius ** 2).astype(np.float32) * 100 + 1


@pytest.mark.parametrize("mirrored", [False, True])
def test_stage2_rotates_the_entry_line_horizontal_rv_left_and_maps_back_exactly(mirrored):
    spacing = (1.3, 0.9)  # anisotropic pixels (mm): the line is horizontal in mm, not in pixels
    rv, lv = np.array([37.2, 61.9]), np.array([58.4, 40.1])
    pm = stage2_map(rv, lv, spacing, 128, 1.0, mirrored)
    uv_rv, uv_lv = pm.from_source_px(rv), pm.from_source_px(lv)
    assert uv_rv[1] == pytest.approx(uv_lv[1], abs=1e-9)  # horizontal
    assert uv_rv[0] < uv_lv[0]  # RV on the left
    assert np.mean([uv_rv, uv_lv], 0) == pytest.approx([63.5, 63.5], abs=1e-9)  # centred on the midpoint
    length_mm = np.hypot(*((lv - rv) * spacing))
    assert uv_lv[0] - uv_rv[0] == pytest.approx(length_mm, rel=1e-12)  # 1 mm pixels
    pts = np.random.default_rng(0).uniform(0, 100, (20, 2))
    np.testing.assert_allclose(pm.to_source_px(pm.from_source_px(pts)), pts, atol=1e-10)
    np.testing.assert_allclose(pm.from_source_px(pm.to_source_px(pts)), pts, atol=1e-10)


def test_a_mirrored_acquisition_gives_the_same_standardised_crop_and_its_points_back():
    img = _disc_image()
    img[30:36, 20:60] = 50  # something asymmetric
    rv, lv = np.array([30.0, 44.0]), np.array([60.0, 40.0])
    mirror = img[:, ::-1].copy()  # columns reversed: the same anatomy acquired mirrored
    w = img.shape[1]
    rv_m, lv_m = np.array([w - 1 - rv[0], rv[1]]), np.array([w - 1 - lv[0], lv[1]])
    a = stage2_map(rv, lv, (1.0, 1.0), 48, 1.0, False)
    b = stage2_map(rv_m, lv_m, (1.0, 1.0), 48, 1.0, True)
    np.testing.assert_allclose(a.sample(img, order=1), b.sample(mirror, order=1), atol=1e-4)
    # a point predicted on the standard crop maps back to the mirrored source exactly
    uv = np.array([[10.3, 20.7], [31.0, 17.25]])
    src_a, src_b = a.to_source_px(uv), b.to_source_px(uv)
    np.testing.assert_allclose(src_b[:, 0], w - 1 - src_a[:, 0], atol=1e-10)
    np.testing.assert_allclose(src_b[:, 1], src_a[:, 1], atol=1e-10)
    s1a = stage1_map(img.shape, (1.0, 1.0), 64, 2.0, False)
    s1b = stage1_map(img.shape, (1.0, 1.0), 64, 2.0, True)
    np.testing.assert_allclose(s1a.sample(img), s1b.sample(mirror), atol=1e-4)
    np.testing.assert_allclose(s1b.from_source_px(s1b.to_source_px(uv)), uv, atol=1e-10)


def test_handedness_comes_from_the_dicom_geometry():
    from cmrlib.phantom import Phantom, PhantomOptions, sample_subject
    s = sample_subject(4, PhantomOptions(matrix=48, la=False))
    d = Phantom(s).lge([s.n_slices // 2])[0].image.direction
    assert not is_mirrored(d)
    flipped = d.copy()
    flipped[:, 0] *= -1  # column direction reversed: a mirrored acquisition
    assert is_mirrored(flipped)
    from cmrlib.errors import InputError
    long_axis_plane = np.stack([s.long_axis, d[:, 1] - (d[:, 1] @ s.long_axis) * s.long_axis, d[:, 2]], axis=1)
    long_axis_plane[:, 1] /= np.linalg.norm(long_axis_plane[:, 1])
    with pytest.raises(InputError, match="not a short-axis plane"):
        is_mirrored(long_axis_plane)


def test_stage1_grid_centres_the_image_and_resamples_to_the_pixel_size():
    img = _disc_image((80, 80), centre=(39.5, 39.5), radius=10)
    pm = stage1_map(img.shape, (2.0, 2.0), 64, 1.0)
    out = pm.sample(img)
    assert out.shape == (64, 64)
    # a 10-pixel (20 mm) radius disc centred in the image: 20 px radius on the 1 mm grid
    assert np.sum(out > 50) == pytest.approx(np.pi * 20 ** 2, rel=0.05)
    np.testing.assert_allclose(pm.to_source_px(np.array([31.5, 31.5])), [39.5, 39.5], atol=1e-10)
    z = standardise(out)
    nz = out != 0
    assert abs(z[nz].mean()) < 1e-5 and z[nz].std() == pytest.approx(1.0, abs=1e-4) and np.all(z[~nz] == 0)


def test_presets_have_the_published_topology():
    import torch
    from cmrlib.landmarks.resnetv2 import LandmarkNet, LandmarkNetConfig, PreActBottleneck
    from cmrlib.models import build_architecture
    paper = LandmarkNet(LandmarkNetConfig.preset("paper"))
    blocks = [m for m in paper.modules() if isinstance(m, PreActBottleneck)]
    assert len(blocks) == 16 and paper.grey_to_rgb.conv.out_channels == 3
    assert paper.head[1].out_features == 1000 and paper.head[3].p == 0.35 and paper.head[4].out_features == 4
    assert 25.0e6 < sum(p.numel() for p in paper.parameters()) < 26.0e6  # ResNet50V2 (23.6 M) + head
    strides = [b.conv2.conv.stride[0] for b in blocks]
    assert strides == [1, 1, 2, 1, 1, 1, 2, 1, 1, 1, 1, 1, 2, 1, 1, 1]  # Keras V2: stride in a stack's last block
    compact = LandmarkNetConfig.preset("compact")
    net = build_architecture("landmark-two-stage", **compact.to_args()).eval()
    assert sum(p.numel() for p in net.parameters()) < 1.0e6
    with torch.no_grad():
        y = net(torch.randn(2, 1, compact.stage1_size, compact.stage1_size), 1)
        y2 = net(torch.randn(2, 1, compact.stage2_size, compact.stage2_size), 2)
    assert y.shape == y2.shape == (2, 4) and float(y.min()) > 0 and float(y.max()) < 1


def test_landmark_metrics():
    err = landmark_error_mm(np.array([[3.0, 4.0], [0.0, 0.0]]), np.zeros((2, 2)), (2.0, 1.0))
    np.testing.assert_allclose(err, [np.hypot(6, 4), 0.0])
    # lines at +179° and -179°: 2° apart, not 358°
    a = line_angle_error_deg(np.array([0, 0.0]), np.array([-1, 0.01745]), np.array([0, 0.0]), np.array([-1, -0.01745]))
    assert float(a) == pytest.approx(2.0, abs=0.01)
    assert float(line_angle_error_deg(np.zeros(2), np.array([1.0, 0]), np.zeros(2), np.array([0.0, 1]))) == pytest.approx(90)

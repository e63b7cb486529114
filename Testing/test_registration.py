"""The shared classical registration (cmrlib.registration): a known shift and rotation are
recovered, the exhaustive shift search brings large motion within reach, DVFs follow the
project convention."""
import numpy as np
import pytest
from scipy import ndimage

from cmrlib.registration import coarse_shift, register_pair, register_rigid
from cmrlib.warp import warp_image


def scene(n=96):
    r, c = np.mgrid[0:n, 0:n].astype(np.float32)
    img = np.exp(-((r - 48) ** 2 + (c - 46) ** 2) / 150.0) + 0.6 * np.exp(-((r - 30) ** 2 + (c - 60) ** 2) / 40.0)
    img += 0.4 * ((np.hypot(r - 55, c - 40) > 8) & (np.hypot(r - 55, c - 40) < 12))
    return img.astype(np.float32)


def test_coarse_shift_finds_a_large_shift():
    img = scene()
    moved = ndimage.shift(img, (14, -11), order=1)  # moved(x) = img(x - s)
    dr, dc = coarse_shift(img, moved, np.ones(img.shape, bool), 20)
    assert abs(dr - 14) <= 1 and abs(dc + 11) <= 1  # img(x) = moved(x + s)


def test_rigid_with_search_recovers_what_plain_gradient_descent_misses():
    img = scene()
    moved = ndimage.shift(img, (14, -11), order=1)
    d = register_rigid(img, moved, search_px=20)
    np.testing.assert_allclose(d[:, 48, 46], [14, -11], atol=0.5)
    back = warp_image(moved, d)
    assert np.abs(back - img)[20:-20, 20:-20].max() < 0.05


def test_rigid_then_bspline_recovers_a_rotation():
    img = scene()
    rotated = ndimage.rotate(img, 6.0, reshape=False, order=1)
    d = register_pair(img, rotated, mesh_size=3, iterations=30, metric="mean_squares", rigid_first=True, search_px=8)
    err_before = np.abs(rotated - img)[20:-20, 20:-20].mean()
    err_after = np.abs(warp_image(rotated, d) - img)[20:-20, 20:-20].mean()
    assert err_after < 0.4 * err_before  # what is left: bilinear resampling of the rotated image


def test_unknown_metric_is_refused():
    with pytest.raises(ValueError, match="metric must be one of"):
        register_pair(scene(), scene(), metric="cosine")

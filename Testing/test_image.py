import numpy as np
import pytest

from cmrlib import Image, InputError
from conftest import oblique_direction


def test_index_lps_round_trip_oblique():
    img = Image(np.zeros((4, 10, 12)), (1.5, 1.4, 8.0), (1.0, 2.0, 3.0), oblique_direction())
    ijk = np.array([[0, 0, 0], [11, 9, 3], [2.5, 3.25, 1.0]])
    lps = img.index_to_lps(ijk)
    assert np.allclose(lps[0], img.origin)
    # one step along the slice axis moves 8 mm along the normal
    step = img.index_to_lps([0, 0, 1]) - img.index_to_lps([0, 0, 0])
    assert np.isclose(np.linalg.norm(step), 8.0)
    assert np.allclose(img.lps_to_index(lps), ijk, atol=1e-9)
    assert np.allclose(img.affine[:3, 3], img.origin)


def test_sequence_shapes_and_frames():
    seq = Image(np.arange(7 * 5 * 6).reshape(7, 5, 6), is_sequence=True,
                frame_meta=[{"InversionTime": float(t)} for t in range(7)])
    assert seq.n_frames == 7 and seq.spatial_shape == (1, 5, 6)
    assert seq.frames().shape == (7, 1, 5, 6)
    f3 = seq.frame(3)
    assert not f3.is_sequence and f3.array.shape == (1, 5, 6) and f3.meta["InversionTime"] == 3.0
    assert seq.frame_values("InversionTime") == [float(t) for t in range(7)]
    multi = Image(np.zeros((20, 3, 5, 6)), is_sequence=True)
    assert multi.spatial_shape == (3, 5, 6) and multi.n_frames == 20


@pytest.mark.parametrize("kwargs, text", [
    (dict(array=np.zeros((2, 2, 2, 2))), "volume"),
    (dict(array=np.zeros((3, 4, 4)), spacing=(1, 0, 1)), "positive"),
    (dict(array=np.zeros((3, 4, 4)), is_sequence=True, frame_meta=[{}]), "frame_meta"),
])
def test_invalid_images_are_refused(kwargs, text):
    with pytest.raises(InputError, match=text):
        Image(**kwargs)


def test_with_array_keeps_geometry():
    img = Image(np.zeros((7, 5, 6)), (1.2, 1.3, 6.0), (4, 5, 6), oblique_direction(), True,
                {"SeriesDescription": "x"}, [{"InversionTime": 1.0}] * 7)
    t1 = img.with_array(np.ones((1, 5, 6)), is_sequence=False)
    assert t1.same_geometry(img) and not t1.is_sequence and t1.meta == img.meta

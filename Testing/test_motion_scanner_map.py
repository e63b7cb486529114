"""Our T1 map beside the scanner's T1 map of the same slice: plane matching, resampling, median difference."""
from __future__ import annotations

import numpy as np
import pytest

from cmrlib import Image
from cmrlib.motion.scanner_map import compare_with_scanner_map, resample_to, same_plane


def _map(values, spacing=(1.5, 1.5, 8.0), origin=(0.0, 0.0, 0.0)):
    return Image(np.asarray(values, np.float32)[None], spacing, origin, np.eye(3), False, {"SliceThickness": 8.0}, [])


def test_same_grid_median_difference_in_mask_and_region():
    ours = _map(np.full((16, 16), 1000.0))
    theirs = np.full((16, 16), 1100.0)
    theirs[:, :4] = 0.0  # background of the scanner map
    scanner = _map(theirs)
    valid = np.ones((1, 16, 16), bool)
    info = compare_with_scanner_map(ours, valid, scanner)
    assert not info["resampled"] and info["pixels"] == 16 * 12
    assert info["median_difference_ms"] == pytest.approx(-100.0)
    assert info["median_difference_percent"] == pytest.approx(-100 / 11, rel=1e-4)
    assert "no myocardium mask" in info["region"]
    mask = np.zeros((1, 16, 16), bool)
    mask[0, 5:8, 5:8] = True
    info = compare_with_scanner_map(ours, valid, scanner, mask=mask)
    assert info["pixels"] == 9 and info["region"] == "myocardium"
    none = compare_with_scanner_map(ours, np.zeros_like(valid), scanner)
    assert none["median_difference_ms"] is None and "no pixel" in none["notes"][0]


def test_different_grid_is_resampled_and_said():
    yy, xx = np.mgrid[0:32, 0:32]
    fine = _map(500.0 + 10.0 * xx, spacing=(0.75, 0.75, 8.0))  # scanner map interpolated x2
    grid = _map(np.zeros((16, 16)), spacing=(1.5, 1.5, 8.0), origin=(0.375, 0.375, 0.0))
    values, resampled = resample_to(fine, grid)
    assert resampled and values.shape == (1, 16, 16)
    # our pixel j centre at 0.375 + 1.5 j mm = fine index 0.5 + 2 j: value 505 + 20 j
    assert np.allclose(values[0, 4, :15], 505.0 + 20.0 * np.arange(15), atol=1e-3)
    info = compare_with_scanner_map(grid.with_array(np.full((1, 16, 16), 800.0, np.float32)),
                                    np.ones((1, 16, 16), bool), fine)
    assert info["resampled"] and "different grid" in info["notes"][0]


def test_plane_matching():
    a = _map(np.zeros((4, 4)))
    assert same_plane(a, _map(np.zeros((4, 4)), origin=(3.0, -2.0, 3.0)))  # in-plane shift, 3 mm < 4 mm
    assert not same_plane(a, _map(np.zeros((4, 4)), origin=(0.0, 0.0, 10.0)))  # next slice
    tilted = Image(np.zeros((1, 4, 4), np.float32), (1.5, 1.5, 8.0), (0, 0, 0),
                   np.array([[1, 0, 0], [0, 0, 1], [0, 1, 0.0]]), False, {}, [])
    assert not same_plane(a, tilted)


def test_a_stress_map_of_the_same_slice_is_not_paired_with_the_rest_series():
    from types import SimpleNamespace

    from cmrlib.motion.scanner_map import paired_maps
    rest = SimpleNamespace(description="MOLLI 5(3)3 native MID", series_number=12)
    maps = [(SimpleNamespace(description="MOLLI 5(3)3 native MID T1 map", series_number=13), "rest map"),
            (SimpleNamespace(description="MOLLI 5(3)3 stress MID T1 map", series_number=23), "stress map")]
    assert [m for _, m in paired_maps(rest, maps)] == ["rest map"]
    unnamed = [(SimpleNamespace(description="T1 Map", series_number=13), "next"),
               (SimpleNamespace(description="T1 Map", series_number=23), "later")]
    assert [m for _, m in paired_maps(rest, unnamed)] == ["next"]
    assert paired_maps(None, maps) == maps

import numpy as np
import pytest
import SimpleITK as sitk

from cmrlib import Image, InputError
from cmrlib.io import read_image, write_image
from conftest import oblique_direction


@pytest.mark.parametrize("suffix", [".nrrd", ".nii.gz", ".mha"])
def test_volume_round_trip(tmp_path, rng, suffix):
    img = Image(rng.normal(size=(4, 9, 11)).astype(np.float32), (1.5, 1.4, 8.0), (3.0, -4.0, 5.5),
                oblique_direction(), meta={"SeriesDescription": "T1 map"})
    out = read_image(write_image(img, tmp_path / f"v{suffix}"))
    assert np.array_equal(out.array, img.array)
    assert out.same_geometry(img, tol_mm=1e-5)
    if suffix != ".nii.gz":  # NIfTI has no free-text header
        assert out.meta == img.meta


def test_sequence_round_trip_keeps_frame_meta(tmp_path, rng):
    tis = [100.0, 180.0, 260.0, 1100.0, 1180.0, 2100.0, 3100.0]
    img = Image(rng.normal(size=(7, 9, 11)).astype(np.float32), (1.5, 1.4, 8.0), (3, -4, 5),
                oblique_direction(), True, {}, [{"InversionTime": t} for t in tis])
    path = write_image(img, tmp_path / "irw.nrrd")
    assert sitk.ReadImage(str(path)).GetDimension() == 4
    out = read_image(path)
    assert out.is_sequence and out.array.shape == (7, 9, 11)
    assert out.frame_values("InversionTime") == tis and out.same_geometry(img, tol_mm=1e-6)


def test_bad_paths(tmp_path):
    img = Image(np.zeros((1, 4, 4)))
    with pytest.raises(InputError, match="unsupported image format"):
        write_image(img, tmp_path / "x.png")
    assert not list(tmp_path.iterdir())  # nothing partial written
    with pytest.raises(InputError, match="not found"):
        read_image(tmp_path / "missing.nrrd")
    (tmp_path / "broken.nrrd").write_text("NRRD0004\nnonsense\n")
    with pytest.raises(InputError, match="cannot read image"):
        read_image(tmp_path / "broken.nrrd")


def test_written_files_have_normal_permissions(tmp_path):
    import os
    import stat
    path = write_image(Image(np.zeros((1, 4, 4))), tmp_path / "x.nrrd")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask  # not mkstemp's 0600

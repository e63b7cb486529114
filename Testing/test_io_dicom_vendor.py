"""Vendor DICOM conventions of T1 mapping: map series with ImageType value 3 ``P``, fit-parameter
series, colour-map displays, scanner motion-corrected (MOCO) IRW frames and heart-rate tags."""
from __future__ import annotations

import numpy as np
import pytest

from cmrlib import DicomError, Image
from cmrlib.io import load_series, scan_folder, write_dicom_series
from conftest import SHMOLLI_TI


def _write(tmp_path, name, n_frames=1, tis=None, **kw):
    rng = np.random.default_rng(len(name))
    meta = [{"InversionTime": t} for t in tis] if tis else [{} for _ in range(n_frames)]
    img = Image(rng.uniform(0, 900, (len(meta), 8, 8)).round(), is_sequence=len(meta) > 1, frame_meta=meta) \
        if len(meta) > 1 else Image(rng.uniform(0, 900, (1, 8, 8)).round())
    write_dicom_series(img, tmp_path / name, **kw)
    return scan_folder(tmp_path / name).series[0]


@pytest.mark.parametrize("description,image_type", [
    ("ShMOLLI_192i_T1MAP", ("ORIGINAL", "PRIMARY", "P", "NONE")),
    ("T1 Map SAX", ("ORIGINAL", "PRIMARY", "P", "ND")),
    ("MOLLI_MOCO_T1", ("DERIVED", "PRIMARY", "M", "NONE")),
    ("native", ("DERIVED", "PRIMARY", "T1 MAP", "NONE")),
])
def test_vendor_t1_map_series_recognised(tmp_path, description, image_type):
    s = _write(tmp_path, "m", description=description, image_type=image_type)
    assert s.kind == "t1map", s.kind_reason


def test_p_map_is_not_called_phase(tmp_path):
    s = _write(tmp_path, "m", description="ShMOLLI_192i_T1MAP", image_type=("ORIGINAL", "PRIMARY", "P", "NONE"))
    assert "not phase" in s.kind_reason
    phase = _write(tmp_path, "p", description="flow SAX", image_type=("ORIGINAL", "PRIMARY", "P", "NONE"))
    assert phase.kind == "unknown" and "phase" in phase.kind_reason


@pytest.mark.parametrize("description", ["ShMOLLI_192i_FITPARAMS", "T1MAP_R2", "MOLLI T1* map", "T1 map SD"])
def test_fit_parameter_series_are_derived_maps(tmp_path, description):
    # even with several images and inversion times copied from the source frames
    s = _write(tmp_path, "f", tis=SHMOLLI_TI, description=description, image_type=("ORIGINAL", "PRIMARY", "P", "NONE"))
    assert s.kind == "fit_map", s.kind_reason


def test_colour_map_secondary_marked(tmp_path):
    s = _write(tmp_path, "c", description="T1 map colour", image_type=("DERIVED", "SECONDARY", "T1 MAP"))
    assert s.kind == "map_display" and "not quantitative" in s.kind_reason


def test_vendor_moco_irw_recognised(tmp_path):
    s = _write(tmp_path, "i", tis=SHMOLLI_TI, description="ShMOLLI_192i_MOCO",
               image_type=("DERIVED", "PRIMARY", "M", "MOCO"))
    assert s.kind == "irw" and s.vendor_moco and "--method none" in s.kind_reason
    plain = _write(tmp_path, "j", tis=SHMOLLI_TI, description="ShMOLLI_192i")
    assert plain.kind == "irw" and not plain.vendor_moco


def test_heart_rate_tags(tmp_path):
    s = _write(tmp_path, "a", tis=SHMOLLI_TI, description="ShMOLLI", extra={"NominalInterval": 857.0})
    assert s.rr_ms == pytest.approx(857.0) and s.rr_source == "NominalInterval"
    assert s.to_dict()["heart_rate_bpm"] == pytest.approx(70.0, abs=0.1)
    assert load_series(s).meta["rr_ms"] == pytest.approx(857.0)
    h = _write(tmp_path, "b", tis=SHMOLLI_TI, description="ShMOLLI", extra={"HeartRate": 75})
    assert h.rr_ms == pytest.approx(800.0) and h.rr_source == "HeartRate"
    none = _write(tmp_path, "c", tis=SHMOLLI_TI, description="ShMOLLI")
    assert none.rr_ms is None and none.rr_source == ""


def test_irw_series_mixing_heart_rates_refused(tmp_path):
    rng = np.random.default_rng(0)
    uid = "1.2.826.0.1.3680043.8.498.77"
    img = Image(rng.uniform(0, 500, (4, 8, 8)).round(), is_sequence=True,
                frame_meta=[{"InversionTime": t} for t in SHMOLLI_TI[:4]])
    write_dicom_series(img, tmp_path / "a", description="ShMOLLI", series_uid=uid, extra={"NominalInterval": 1000.0})
    img2 = Image(rng.uniform(0, 500, (3, 8, 8)).round(), is_sequence=True,
                 frame_meta=[{"InversionTime": t, "InstanceNumber": 10 + k} for k, t in enumerate(SHMOLLI_TI[4:])])
    write_dicom_series(img2, tmp_path / "b", description="ShMOLLI", series_uid=uid, extra={"NominalInterval": 600.0})
    s = scan_folder(tmp_path).series[0]
    assert any("different heart rates" in p and "100" in p and "60" in p for p in s.problems)
    with pytest.raises(DicomError, match="different heart rates"):
        load_series(s)


def test_map_without_rescale_said(tmp_path):
    import pydicom
    s = _write(tmp_path, "m", description="T1MAP", image_type=("DERIVED", "PRIMARY", "T1 MAP", "NONE"))
    assert "rescale" not in s.header
    for path in (tmp_path / "m").rglob("*.dcm"):
        ds = pydicom.dcmread(path)
        for tag in ("RescaleSlope", "RescaleIntercept", "RescaleType"):
            if tag in ds:
                delattr(ds, tag)
        ds.save_as(path)
    s = scan_folder(tmp_path / "m").series[0]
    assert s.kind == "t1map" and "stored values taken as" in s.header["rescale"]
    assert "stored values taken as" in load_series(s).meta["rescale"]

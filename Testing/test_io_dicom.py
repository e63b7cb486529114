"""DICOM discovery, classification, geometry and bad-input handling (pydicom-written data)."""
from __future__ import annotations

import os

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from cmrlib import DicomError, Image, InputError
from cmrlib.io import load_series, scan_folder, write_dicom_series
from conftest import MOLLI_533_ACQ, SHMOLLI_TI, oblique_direction, tree_snapshot


def _by_desc(scan):
    return {s.description: s for s in scan.series}


def test_classification_of_every_kind(study_dir):
    scan = scan_folder(study_dir)
    s = _by_desc(scan)
    assert len(scan.series) == 6 and not scan.skipped
    assert s["cine SAX"].kind == "cine" and s["cine SAX"].n_frames == 12 and s["cine SAX"].n_slices == 3
    assert s["ShMOLLI_192i"].kind == "irw" and s["ShMOLLI_192i"].subtype == "ShMOLLI"
    assert s["ShMOLLI_192i"].inversion_times_ms == SHMOLLI_TI
    assert s["MOLLI native SAX"].kind == "irw" and s["MOLLI native SAX"].subtype == "MOLLI 5(3)3"
    assert s["ShMOLLI_192i_T1MAP"].kind == "t1map"
    assert s["LGE PSIR SAX"].kind == "lge_psir"
    assert s["LGE SAX MAG"].kind == "lge_magnitude"
    assert all(x.field_strength_t == 1.5 for x in scan.series)
    assert all(x.kind_reason for x in scan.series)
    assert len({x.study_uid for x in scan.series}) == 1


def test_irw_scheme_from_acquisition_order_without_description(tmp_path, rng):
    tis = [110.0, 1010.0, 1910.0, 190.0, 1090.0, 1990.0, 270.0, 1170.0, 2070.0, 2970.0, 3870.0]  # 3(3)3(3)5
    img = Image(rng.uniform(0, 500, (11, 8, 8)).round(), is_sequence=True, frame_meta=[{"InversionTime": t} for t in tis])
    write_dicom_series(img, tmp_path / "x", description="T1 SAX mid")
    s = scan_folder(tmp_path).series[0]
    assert s.kind == "irw" and s.subtype == "MOLLI 3(3)3(3)5" and s.n_frames == 11


def test_geometry_and_values_round_trip(study_dir, rng):
    scan = _by_desc(scan_folder(study_dir))
    cine = load_series(scan["cine SAX"])
    assert cine.is_sequence and cine.array.shape == (12, 3, 24, 20)
    assert np.allclose(cine.origin, (12.5, -30.25, 41.0), atol=1e-6)
    assert np.allclose(cine.spacing, (1.5, 1.4, 8.0), atol=1e-6)
    assert np.allclose(cine.direction, oblique_direction(), atol=1e-9)
    assert cine.frame_values("TriggerTime") == [40.0 * k for k in range(12)]
    irw = load_series(scan["MOLLI native SAX"])
    assert irw.array.shape == (8, 24, 20)
    assert irw.frame_values("InversionTime") == sorted(MOLLI_533_ACQ)  # ordered by TI
    psir = load_series(scan["LGE PSIR SAX"])
    assert not psir.is_sequence and psir.array.shape == (3, 24, 20)
    assert psir.array.min() < 0  # signed values restored through RescaleIntercept


def test_pixel_values_exact(tmp_path, rng):
    data = rng.integers(-1000, 3000, (2, 6, 7)).astype(float)
    img = Image(data, (0.7, 0.9, 6.0), (0, 0, 0), oblique_direction())
    write_dicom_series(img, tmp_path / "s", description="LGE PSIR", rescale_intercept=-4096)
    out = load_series(scan_folder(tmp_path).series[0])
    assert np.array_equal(out.array, data)


def write_enhanced_mr(path, tis) -> None:
    """An enhanced MR file: one frame per inversion time in ``tis`` (frame k filled with
    10*(k+1)), geometry and timing in shared / per-frame functional groups."""
    frames = np.stack([np.full((6, 5), 10 * (k + 1), np.uint16) for k in range(len(tis))])
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.SeriesDescription, ds.SeriesNumber = "MR", "ShMOLLI enhanced", 9
    ds.Rows, ds.Columns, ds.NumberOfFrames = 6, 5, len(tis)
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    shared = Dataset()
    ori, meas = Dataset(), Dataset()
    ori.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    meas.PixelSpacing, meas.SliceThickness = [1.25, 1.5], 8.0
    shared.PlaneOrientationSequence, shared.PixelMeasuresSequence = DicomSequence([ori]), DicomSequence([meas])
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])
    per = []
    for t in tis:
        item, pos, mod = Dataset(), Dataset(), Dataset()
        pos.ImagePositionPatient = [-10.0, 20.0, 30.0]
        mod.InversionTimes = [t]
        item.PlanePositionSequence, item.MRModifierSequence = DicomSequence([pos]), DicomSequence([mod])
        per.append(item)
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(per)
    ds.PixelData = frames.tobytes()
    ds.save_as(path, enforce_file_format=True)


def test_enhanced_multiframe(tmp_path):
    """An enhanced MR file (one file, per-frame functional groups) is expanded per frame."""
    tis = [100.0, 180.0, 260.0, 1100.0, 1180.0, 2100.0, 3100.0]
    write_enhanced_mr(tmp_path / "enhanced.dcm", tis)
    s = scan_folder(tmp_path).series[0]
    assert s.kind == "irw" and s.n_frames == 7 and s.n_files == 1
    img = load_series(s)
    assert img.array.shape == (7, 6, 5) and img.frame_values("InversionTime") == tis
    assert np.allclose(img.spacing[:2], (1.5, 1.25)) and np.allclose(img.origin, (-10, 20, 30))
    assert [float(img.array[k, 0, 0]) for k in range(7)] == [10.0 * (k + 1) for k in range(7)]


# ---- bad input --------------------------------------------------------------------------
def test_folder_without_dicom(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DicomError, match="no DICOM image found.*notes.txt: not a DICOM file"):
        scan_folder(tmp_path)
    with pytest.raises(InputError, match="not found"):
        scan_folder(tmp_path / "missing")


def test_bad_files_are_skipped_and_named(study_dir):
    good = next((study_dir / "shmolli").iterdir())
    (study_dir / "empty.dcm").write_bytes(b"")
    (study_dir / "readme.txt").write_text("not dicom")
    raw = good.read_bytes()
    (study_dir / "truncated.dcm").write_bytes(raw[: len(raw) // 2])
    report = Dataset()
    report.file_meta = FileMetaDataset()
    report.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"  # Basic Text SR
    report.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    report.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    report.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"
    report.SOPInstanceUID = report.file_meta.MediaStorageSOPInstanceUID
    report.SeriesInstanceUID, report.Modality = generate_uid(), "SR"
    report.save_as(study_dir / "report.dcm", enforce_file_format=True)
    loop = study_dir / "loop"
    loop.mkdir()
    os.symlink(study_dir, loop / "back")  # folder loop
    os.symlink(study_dir / "self", study_dir / "self")  # self-referencing link
    scan = scan_folder(study_dir)
    reasons = {k.path.name: k.reason for k in scan.skipped}
    assert reasons["empty.dcm"] == "empty file (0 bytes)"
    assert "not a DICOM file" in reasons["readme.txt"]
    assert "truncated" in reasons["truncated.dcm"]
    assert "not an image" in reasons["report.dcm"]
    assert "loop" in reasons["back"] and "loop" in reasons["self"]
    assert len(scan.series) == 6  # the good series are all still found


def _two_series(tmp_path, rng, **mods):
    img = Image(rng.uniform(0, 100, (3, 8, 8)).round(), (1.5, 1.5, 8.0))
    paths = write_dicom_series(img, tmp_path / "s", description="LGE SAX")
    ds = pydicom.dcmread(paths[1])
    for key, value in mods.items():
        if value is None:
            delattr(ds, key)
        else:
            setattr(ds, key, value)
    if "Rows" in mods:
        ds.PixelData = np.zeros((mods["Rows"], ds.Columns), np.uint16).tobytes()
    ds.save_as(paths[1])
    return paths


def test_mixed_matrix_sizes_named(tmp_path, rng):
    paths = _two_series(tmp_path, rng, Rows=10)
    s = scan_folder(tmp_path).series[0]
    assert s.problems and "mixed matrix sizes" in s.problems[0] and paths[1].name in s.problems[0]
    with pytest.raises(DicomError, match=f"mixed matrix sizes.*{paths[1].name}"):
        load_series(s)


def test_missing_pixel_spacing_named(tmp_path, rng):
    paths = _two_series(tmp_path, rng, PixelSpacing=None)
    s = scan_folder(tmp_path).series[0]
    with pytest.raises(DicomError, match=f"missing PixelSpacing.*{paths[1].name}"):
        load_series(s)


def test_duplicate_inversion_times_flagged(tmp_path, rng):
    tis = [100.0, 180.0, 180.0, 1100.0, 1180.0, 2100.0, 3100.0]
    img = Image(rng.uniform(0, 500, (7, 8, 8)).round(), is_sequence=True, frame_meta=[{"InversionTime": t} for t in tis])
    write_dicom_series(img, tmp_path / "x", description="ShMOLLI")
    s = scan_folder(tmp_path).series[0]
    assert s.kind == "irw" and any("duplicate InversionTime" in p for p in s.problems)


def test_scan_and_load_never_write(study_dir):
    before = tree_snapshot(study_dir)
    for s in scan_folder(study_dir).series:
        load_series(s)
    assert tree_snapshot(study_dir) == before


def test_series_mixing_magnitude_and_psir_is_split(tmp_path, rng):
    """Some vendors store the magnitude and PSIR images of one LGE acquisition in one series."""
    img = Image(rng.uniform(0, 500, (3, 8, 8)).round(), (1.5, 1.5, 8.0))
    uid = "1.2.826.0.1.3680043.8.498.1"
    write_dicom_series(img, tmp_path / "a", description="LGE SAX", series_uid=uid,
                       image_type=("ORIGINAL", "PRIMARY", "M", "NONE"), extra={"InversionTime": 300.0})
    write_dicom_series(img, tmp_path / "b", description="LGE SAX", series_uid=uid, series_number=1,
                       image_type=("ORIGINAL", "PRIMARY", "R", "PSIR"), rescale_intercept=-4096,
                       extra={"InversionTime": 300.0})
    write_dicom_series(img, tmp_path / "c", description="LGE SAX", series_uid=uid, series_number=1,
                       image_type=("ORIGINAL", "PRIMARY", "P", "NONE"), extra={"InversionTime": 300.0})
    kinds = {s.description: s.kind for s in scan_folder(tmp_path).series}
    assert kinds == {"LGE SAX [magnitude]": "lge_magnitude", "LGE SAX [PSIR]": "lge_psir", "LGE SAX [phase]": "unknown"}

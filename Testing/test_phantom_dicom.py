"""Phantom studies written as DICOM are re-read by cmrlib.io with the right kind and geometry."""
from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest

from cmrlib.io import load_series, read_image, scan_folder
from cmrlib.phantom import Phantom, PhantomOptions, sample_subject
from cmrlib.phantom.writer import series_folder_name, write_study

EXPECTED_KIND = {"cine": "cine", "irw": "irw", "t1map": "t1map", "lge_psir": "lge_psir",
                 "lge_magnitude": "lge_magnitude", "la_lge": "la_lge", "vne": "vne"}


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    opt = PhantomOptions(matrix=64, n_phases=20, stress=True, scheme="MOLLI 5(3)3", motion=0.6, snr=30.0)
    ph = Phantom(sample_subject(5, opt))
    study = ph.study(opt)
    folder = write_study(study, tmp_path_factory.mktemp("phantom") / "subject_000")
    return study, folder


def test_every_series_reread_with_kind_and_geometry(written):
    study, folder = written
    scan = scan_folder(folder / "dicom")
    by_desc = {s.description: s for s in scan.series}
    assert len(by_desc) == len(study.series)
    study_uids = {s.study_uid for s in scan.series}
    assert len(study_uids) == 1
    for name, ser in study.series.items():
        info = by_desc[ser.description]
        assert info.kind == EXPECTED_KIND[ser.kind], (name, info.kind, info.kind_reason)
        assert not info.problems, info.problems
        if ser.kind == "irw":
            assert info.subtype == ser.truth["scheme"]
            assert np.allclose(sorted(info.inversion_times_ms), sorted(ser.image.frame_values("InversionTime")), atol=0.01)
        loaded = load_series(info)
        img = ser.image
        assert loaded.spatial_shape == img.spatial_shape and loaded.n_frames == img.n_frames
        assert np.allclose(loaded.spacing, img.spacing, atol=1e-4)
        assert np.allclose(loaded.direction[:, :2], img.direction[:, :2], atol=1e-6)
        # slice positions: the same set of planes (the reader orders them along the IOP normal)
        mine = np.array([np.asarray(img.origin) + k * img.spacing[2] * img.direction[:, 2]
                         for k in range(img.spatial_shape[0])])
        theirs = np.array([np.asarray(loaded.origin) + k * loaded.spacing[2] * loaded.direction[:, 2]
                           for k in range(loaded.spatial_shape[0])])
        order = np.argsort(mine @ np.cross(img.direction[:, 0], img.direction[:, 1]))
        assert np.allclose(mine[order], theirs, atol=1e-3), name
        # pixel values survive the 16-bit storage (rounded to integers, PSIR via its intercept)
        data = img.frames()[:, order] if img.spatial_shape[0] > 1 else img.frames()
        if ser.kind == "irw":  # the reader orders IRW frames by TI, the phantom too
            assert loaded.frame_values("InversionTime") == pytest.approx(img.frame_values("InversionTime"), abs=0.01)
        assert np.max(np.abs(loaded.frames() - data)) <= 0.5 + 1e-3, name
        if ser.kind == "lge_psir":
            assert loaded.array.min() < 0, "PSIR keeps its sign"


def test_dicom_tags_as_a_scanner_writes_them(written):
    study, folder = written
    for ser in study.series.values():
        files = sorted((folder / "dicom" / series_folder_name(ser)).glob("*.dcm"))
        ds = pydicom.dcmread(files[0])
        assert ds.SeriesDescription == ser.description
        assert ds.Modality == "MR" and float(ds.MagneticFieldStrength) == study.subject.field_t
        for uid in (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, ds.FrameOfReferenceUID):
            assert pydicom.uid.UID(uid).is_valid
        assert "SliceLocation" in ds and "ImagePositionPatient" in ds and "TriggerTime" in ds
        if ser.kind == "lge_psir":
            assert float(ds.RescaleIntercept) == -4096.0 and "PSIR" in ds.ImageType
        if ser.kind in ("irw",):
            assert "InversionTime" in ds and ds.AcquisitionTime
        if ser.kind == "t1map":
            assert "T1 MAP" in ds.ImageType
        if ser.kind == "la_lge":
            assert ds.MRAcquisitionType == "3D"
            assert np.allclose([float(v) for v in ds.ImageOrientationPatient], [1, 0, 0, 0, 1, 0])
    frames_of_reference = {pydicom.dcmread(next((folder / "dicom" / series_folder_name(s)).glob("*.dcm"))).FrameOfReferenceUID
                           for s in study.series.values()}
    assert len(frames_of_reference) == 1
    # SAX planes are double-oblique
    cine = pydicom.dcmread(next((folder / "dicom" / series_folder_name(study.series["cine"])).glob("*.dcm")))
    iop = np.array([float(v) for v in cine.ImageOrientationPatient])
    normal = np.cross(iop[:3], iop[3:])
    assert np.sum(np.abs(normal) > 0.2) >= 2


def test_truth_files_and_json(written):
    study, folder = written
    truth = json.loads((folder / "truth.json").read_text())
    assert truth["seed"] == study.subject.seed and truth["synthetic"] is True
    assert set(truth["series"]) == set(study.series)
    for name, entry in truth["series"].items():
        ser = study.series[name]
        labels = read_image(folder / entry["truth_files"]["labels"])
        assert labels.same_geometry(ser.labels) and labels.array.shape == ser.labels.array.shape
        assert np.array_equal(labels.array, ser.labels.array)
        assert (folder / entry["sheet"]).is_file()
        if ser.kind == "irw":
            disp = read_image(folder / entry["truth_files"]["disp_row_px"])
            assert disp.is_sequence and np.allclose(disp.array, ser.displacement[:, 0], atol=1.0 / 256)
            assert entry["artefacts"]["motion"] == pytest.approx(0.6)
    lge = truth["series"]["lge_psir"]
    for sl in lge["slices"]:
        assert sl["class"] in ("too basal", "LV", "too apical")
        assert 0.0 <= sl["lge_likelihood"] <= 100.0 and sl["certainty"] in ("high", "low")
    q = truth["series"]["la_lge"]["quality"]
    assert all(1 <= q[k] <= 5 for k in ("myocardial_nulling", "sharpness", "aorta_valve_enhancement", "overall_quality"))


def test_cli_writes_subjects(tmp_path):
    from cmrlib.cli import main
    rc = main(["phantom", "--out", str(tmp_path / "out"), "--seed", "3", "--subjects", "2", "--matrix", "48",
               "--phases", "20", "--no-la", "--no-sheets", "--quiet", "--field", "3", "--scar", "none"])
    assert rc == 0
    subjects = sorted((tmp_path / "out").iterdir())
    assert [p.name for p in subjects] == ["subject_000", "subject_001"]
    t0 = json.loads((subjects[0] / "truth.json").read_text())
    t1 = json.loads((subjects[1] / "truth.json").read_text())
    assert t0["seed"] != t1["seed"] and t0["subject"]["field_t"] == 3.0 and t0["scar"]["type"] == "none"
    # refuses to overwrite, exit code 1 with a message
    assert main(["phantom", "--out", str(tmp_path / "out"), "--seed", "3", "--subjects", "2", "--matrix", "48",
                 "--no-la", "--quiet"]) == 1
    with pytest.raises(SystemExit) as exc:  # argparse rejects an unknown artefact name
        main(["phantom", "--out", str(tmp_path / "x"), "--matrix", "48", "--artefact", "bogus=1", "--quiet"])
    assert exc.value.code == 2
    assert not (tmp_path / "x").exists()

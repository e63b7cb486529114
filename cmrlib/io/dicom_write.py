"""Write an :class:`~cmrlib.image.Image` as a classic MR DICOM series, as a scanner would.

One file per (frame, slice) with consistent UIDs and geometry. Used by the phantom, by
tests, and by users exporting maps back to PACS. The reader (:mod:`cmrlib.io.dicom`)
re-reads these files with the same geometry.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from ..errors import InputError
from ..image import Image

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
#: UID root used for generated UIDs (pydicom's; documented in the DICOM standard as usable).
_UID_PREFIX = pydicom.uid.PYDICOM_ROOT_UID


def _uid(*entropy: Any) -> str:
    """A valid UID; deterministic when entropy is given (reproducible phantom studies)."""
    if not entropy:
        return generate_uid(prefix=_UID_PREFIX)
    return generate_uid(prefix=_UID_PREFIX, entropy_srcs=[str(e) for e in entropy])


@dataclass
class StudyInfo:
    """Patient / study level facts shared by all series of one study."""

    patient_name: str = "CMR^Phantom"
    patient_id: str = "CMRPH0001"
    study_uid: str = field(default_factory=_uid)
    frame_of_reference_uid: str = field(default_factory=_uid)
    study_date: str = field(default_factory=lambda: _dt.date.today().strftime("%Y%m%d"))
    study_time: str = "120000"
    study_description: str = "Cardiac MRI"
    study_id: str = "1"
    accession_number: str = ""
    patient_sex: str = "O"
    patient_age: str = ""
    institution: str = "SlicerCMR synthetic phantom"

    @classmethod
    def new(cls, seed: int | str, **overrides: Any) -> "StudyInfo":
        """A study with UIDs derived from ``seed`` (same seed → same UIDs)."""
        digest = hashlib.sha1(str(seed).encode()).hexdigest()[:8].upper()
        base = dict(
            patient_id=f"CMRPH{digest}",
            study_uid=_uid("study", seed),
            frame_of_reference_uid=_uid("for", seed),
            study_date="20260101",
        )
        base.update(overrides)
        return cls(**base)


def _ds(value: float) -> str:
    """DICOM DS: at most 16 characters."""
    for digits in range(12, 4, -1):  # as many significant digits as fit (mm precision)
        s = f"{value:.{digits}g}"
        if len(s) <= 16:
            return s
    return f"{value:.4e}"


def _pixel_values(data: np.ndarray, slope: float, intercept: float) -> tuple[np.ndarray, bool]:
    """Stored integer values for real-world ``data`` = stored*slope + intercept."""
    stored = np.rint((np.asarray(data, dtype=np.float64) - intercept) / slope)
    signed = bool(stored.min(initial=0) < 0)
    lo, hi = (-32768, 32767) if signed else (0, 65535)
    if stored.size and (stored.min() < lo or stored.max() > hi):
        raise InputError(
            f"values {data.min():.4g}..{data.max():.4g} do not fit 16-bit stored pixels with "
            f"slope {slope} and intercept {intercept}; choose a larger slope or an intercept")
    return stored.astype(np.int16 if signed else np.uint16), signed


def write_dicom_series(
    image: Image,
    folder: str | Path,
    *,
    description: str,
    series_number: int = 1,
    study: StudyInfo | None = None,
    image_type: Iterable[str] | None = None,
    rescale_slope: float = 1.0,
    rescale_intercept: float = 0.0,
    extra: dict[str, Any] | None = None,
    series_uid: str | None = None,
) -> list[Path]:
    """Write ``image`` as one MR DICOM file per frame and slice; return the paths.

    Geometry: ImagePositionPatient of slice k = origin + k·spacing[2]·direction[:,2] (mm);
    ImageOrientationPatient = direction columns 0 and 1; PixelSpacing = (row, col) spacing.
    Per-frame facts come from ``image.frame_meta`` keyed by DICOM keyword (InversionTime,
    TriggerTime, ImageType, ...); series-level ones from ``extra`` (MagneticFieldStrength,
    RepetitionTime, ...). Values are stored as 16-bit integers via RescaleSlope/Intercept.
    """
    folder = Path(folder)
    study = study or StudyInfo()
    series_uid = series_uid or _uid()
    frames = image.frames()  # [frame, slice, row, col]
    n_frames, n_slices, rows, cols = frames.shape
    if rows < 1 or cols < 1:
        raise InputError(f"cannot write an empty image {frames.shape}")
    stored, signed = _pixel_values(frames, rescale_slope, rescale_intercept)
    folder.mkdir(parents=True, exist_ok=True)
    col_dir, row_dir, normal = image.direction[:, 0], image.direction[:, 1], image.direction[:, 2]
    thickness = float(image.meta.get("SliceThickness", image.spacing[2]))
    series_type = list(image_type or ("ORIGINAL", "PRIMARY", "M", "NONE"))
    window = _window(frames)
    paths: list[Path] = []
    instance = 0
    for f in range(n_frames):
        fmeta = image.frame_meta[f] if image.is_sequence and image.frame_meta else {}
        for s in range(n_slices):
            instance += 1
            position = np.asarray(image.origin) + s * image.spacing[2] * normal
            ds = _base_dataset(study, series_uid, description, series_number, instance, extra,
                               sop_uid=_uid(series_uid, instance))
            ds.ImageType = list(fmeta.get("ImageType", series_type))
            ds.ImagePositionPatient = [_ds(v) for v in position]
            ds.ImageOrientationPatient = [_ds(v) for v in (*col_dir, *row_dir)]
            ds.PixelSpacing = [_ds(image.spacing[1]), _ds(image.spacing[0])]
            ds.SliceThickness = _ds(thickness)
            if n_slices > 1:
                ds.SpacingBetweenSlices = _ds(image.spacing[2])
            ds.SliceLocation = _ds(float(np.dot(position, normal)))
            ds.Rows, ds.Columns = rows, cols
            ds.SamplesPerPixel = 1
            ds.PhotometricInterpretation = "MONOCHROME2"
            ds.BitsAllocated = 16
            ds.BitsStored = 16
            ds.HighBit = 15
            ds.PixelRepresentation = 1 if signed else 0
            ds.RescaleSlope = _ds(rescale_slope)
            ds.RescaleIntercept = _ds(rescale_intercept)
            ds.RescaleType = "US"
            if "WindowCenter" not in (extra or {}):  # a caller-set window (e.g. PSIR) wins
                ds.WindowCenter, ds.WindowWidth = _ds(window[0]), _ds(window[1])
            ds.TemporalPositionIdentifier = f + 1
            ds.NumberOfTemporalPositions = n_frames
            for key, value in fmeta.items():
                if key != "ImageType" and key in pydicom.datadict.keyword_dict:
                    setattr(ds, key, value)
            ds.PixelData = np.ascontiguousarray(stored[f, s]).tobytes()
            path = folder / f"IM_{series_number:04d}_{instance:05d}.dcm"
            ds.save_as(path, enforce_file_format=True)
            paths.append(path)
    return paths


def _window(frames: np.ndarray) -> tuple[float, float]:
    """Display window (centre, width) from the 1st–99th percentile."""
    lo, hi = np.percentile(frames, [1, 99]) if frames.size else (0.0, 1.0)
    return float((lo + hi) / 2), float(max(hi - lo, 1.0))


def _base_dataset(study: StudyInfo, series_uid: str, description: str, series_number: int,
                  instance: int, extra: dict[str, Any] | None, sop_uid: str) -> Dataset:
    """Patient/study/series/instance modules; SOP UID derived from the series UID and the
    instance number, so the same series writes byte-identical files (reproducible zips)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MR_IMAGE_STORAGE
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = MR_IMAGE_STORAGE
    ds.SOPInstanceUID = sop_uid
    ds.Modality = "MR"
    ds.Manufacturer = "SlicerCMR"
    ds.InstitutionName = study.institution
    ds.PatientName = study.patient_name
    ds.PatientID = study.patient_id
    ds.PatientSex = study.patient_sex
    if study.patient_age:
        ds.PatientAge = study.patient_age
    ds.StudyInstanceUID = study.study_uid
    ds.StudyDate = study.study_date
    ds.StudyTime = study.study_time
    ds.StudyID = study.study_id
    ds.AccessionNumber = study.accession_number
    ds.StudyDescription = study.study_description
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = series_number
    ds.SeriesDescription = description
    ds.SeriesDate = study.study_date
    ds.FrameOfReferenceUID = study.frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    ds.InstanceNumber = instance
    ds.ScanningSequence = "GR"
    ds.SequenceVariant = "NONE"
    ds.ScanOptions = ""
    ds.MRAcquisitionType = "2D"
    ds.BodyPartExamined = "HEART"
    for key, value in (extra or {}).items():
        if key not in pydicom.datadict.keyword_dict:
            raise InputError(f"'{key}' is not a DICOM keyword")
        setattr(ds, key, value)
    return ds

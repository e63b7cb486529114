"""Reading and writing CMR data: DICOM discovery/classification/loading, DICOM export,
and NRRD / NIfTI / MHA files."""
from .dicom import (KIND_LABELS, KINDS, DicomScan, InstanceInfo, SeriesInfo, SkippedFile,
                    load_series, scan_folder, unreadable_notes)
from .dicom_write import StudyInfo, write_dicom_series
from .files import from_sitk, read_image, to_sitk, write_displacement_sequence, write_image
from .masks import load_label_map, load_mask

__all__ = [
    "KINDS", "KIND_LABELS", "DicomScan", "InstanceInfo", "SeriesInfo", "SkippedFile",
    "scan_folder", "load_series", "unreadable_notes", "StudyInfo", "write_dicom_series",
    "read_image", "write_image", "load_mask", "load_label_map", "to_sitk", "from_sitk", "write_displacement_sequence",
]

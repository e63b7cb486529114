"""Reading and writing CMR data: DICOM discovery/classification/loading, DICOM export,
and NRRD / NIfTI / MHA files."""
from .dicom import (KIND_LABELS, KINDS, DicomScan, InstanceInfo, SeriesInfo, SkippedFile,
                    load_series, scan_files, scan_folder, unreadable_notes)
from .dicom_write import StudyInfo, write_dicom_series
from .files import from_sitk, read_image, to_sitk, write_displacement_sequence, write_image
from .masks import label_map_image, load_label_map, load_mask

__all__ = [
    "KINDS", "KIND_LABELS", "DicomScan", "InstanceInfo", "SeriesInfo", "SkippedFile",
    "scan_folder", "scan_files", "load_series", "unreadable_notes", "StudyInfo", "write_dicom_series",
    "read_image", "write_image", "load_mask", "load_label_map", "label_map_image", "to_sitk", "from_sitk",
    "write_displacement_sequence", "image_or_scan",
]


def image_or_scan(path, option: str):
    """A command's image input: an image file (NRRD / NIfTI / MHA) as an Image, or a DICOM folder
    as its :class:`DicomScan` for the command to pick its series from. InputError, naming the
    option (``--rest``, ``--lge`` …), for a missing path or a file that is neither."""
    from pathlib import Path

    from ..errors import InputError
    from .files import SUFFIXES
    path = Path(path)
    if path.is_file() and path.name.lower().endswith(SUFFIXES):
        img = read_image(path)
        img.meta.setdefault("SeriesDescription", path.name)
        return img
    if not path.exists():
        raise InputError(f"{option} {path}: no such file or folder")
    if path.is_file():
        raise InputError(f"{option} {path}: not an image file (NRRD / NIfTI / MHA) nor a DICOM folder")
    return scan_folder(path)

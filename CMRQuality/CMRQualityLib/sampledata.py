"""Register the bundled synthetic CMR phantom study with Slicer's Sample Data module.

The study is ``cmrlib/resources/sampledata/CMRPhantomStudy.zip`` (made by ``cmr phantom``, see
the README beside it); its SHA256 is in ``sampledata.json`` beside it. The
zip is offered under "Cardiac MRI" in the Sample Data module; clicking it copies the zip
into Slicer's cache (checksum verified), unzips it and loads every DICOM series through
the DICOM database.

Nothing Slicer-specific is imported at module level, so this file imports anywhere
(tests, headless tools); Slicer modules are imported inside the functions.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

CATEGORY = "Cardiac MRI"
SAMPLE_NAME = "CMRPhantomStudy"


def sample_data_folder() -> Path:
    """The bundled sample-data folder, found by cmrlib the same way in a checkout, a wheel
    and the installed extension (``cmrlib/resources/sampledata``)."""
    from cmrlib.errors import NotAvailableError
    from cmrlib.phantom import sample_data_dir
    try:
        return sample_data_dir()
    except NotAvailableError as exc:
        raise FileNotFoundError(str(exc)) from None


def sample_record() -> dict[str, Any]:
    """The sampledata.json entry: file name, sha256, size, the command that made it."""
    folder = sample_data_folder()
    record = json.loads((folder / "sampledata.json").read_text())
    record["path"] = str(folder / record["file"])
    return record


def load_phantom_study(source: Any) -> list[str]:
    """Custom downloader of the Sample Data button: fetch (checksum), unzip, import and load the DICOM.

    Returns the IDs of the loaded nodes. Runs inside Slicer only.
    """
    import SampleData
    from DICOMLib import DICOMUtils

    logic = SampleData.SampleDataLogic()
    record = sample_record()
    # copy into the cache and verify the SHA256; for a .zip this also extracts it
    zip_source = SampleData.SampleDataSource(
        sampleName=SAMPLE_NAME, uris=source.uris[0], fileNames=source.fileNames[0],
        checksums=source.checksums[0], loadFileType="ZipFile", loadFiles=True)
    result = logic.downloadFromSource(zip_source)
    folder = Path(result[0])
    dicom = folder / "dicom" if (folder / "dicom").is_dir() else folder
    loaded: list[str] = []
    with DICOMUtils.TemporaryDICOMDatabase() as db:
        DICOMUtils.importDicom(str(dicom), db)
        for patient in db.patients():
            loaded.extend(DICOMUtils.loadPatientByUID(patient))
    logging.info(f"CMRQuality: loaded {len(loaded)} series of the synthetic phantom study "
                 f"({record['file']}); ground truth in {folder / 'truth.json'}")
    return loaded


def register_sample_data() -> None:
    """Add the phantom study to the Sample Data module (category "Cardiac MRI")."""
    import SampleData

    record = sample_record()
    path = Path(record["path"])
    if not path.is_file():
        raise FileNotFoundError(f"bundled phantom study {path} is missing")
    thumb = path.parent / "CMRPhantomStudy.png"
    SampleData.SampleDataLogic.registerCustomSampleDataSource(
        category=CATEGORY,
        sampleName=SAMPLE_NAME,
        uris=path.as_uri(),
        fileNames=record["file"],
        nodeNames=None,
        checksums=f"SHA256:{record['sha256']}",
        loadFiles=False,
        loadFileType="ZipFile",
        customDownloader=load_phantom_study,
        thumbnailFileName=str(thumb) if thumb.is_file() else None,
    )

"""Synthetic CMR phantom: short-axis studies in every modality with exact ground truth.

Layers (one module each): :mod:`.params` (subject parameters from a seed),
:mod:`.anatomy` / :mod:`.geometry` / :mod:`.tissue` (anatomy, planes, tissue properties),
:mod:`.sequences` (signal models), :mod:`.artefacts` (artefacts with known severity),
:mod:`.labels` (truth: classes, landmarks, volumes, LGE likelihood, LA quality),
:mod:`.generate` (series), :mod:`.writer` (DICOM / NRRD / JSON / PNG) and :mod:`.cli`
(``cmr phantom``).

In memory::

    from cmrlib.phantom import PhantomOptions, make_study, random_irw, random_lge_slice
    study = make_study(seed=3, options=PhantomOptions(stress=True))   # every series + truth
    irw = random_irw(seed=7)              # one MOLLI/ShMOLLI set (128 matrix) with true T1 and DVFs
    lge = random_lge_slice(seed=7)        # one PSIR slice with class, landmarks, LGE likelihood

Every image is a :class:`cmrlib.Image` in LPS geometry; masks use
:data:`cmrlib.phantom.tissue.LABELS`. All data are synthetic.
"""
from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np

from ..errors import InputError, NotAvailableError
from ..models.zoo import sha256_of  # the one file-checksum helper
from .generate import CONDITIONS, POSITIONS, Phantom, Series, Study, make_study
from .params import (ARTEFACTS, IRW_SCHEMES, SCAR_TYPES, TERRITORIES, PhantomOptions, ScarParams, SubjectParams,
                     sample_subject, subject_seeds)
from .tissue import LABELS, T

__all__ = [
    "ARTEFACTS", "IRW_SCHEMES", "SCAR_TYPES", "TERRITORIES", "CONDITIONS", "POSITIONS", "LABELS", "T",
    "PhantomOptions", "SubjectParams", "ScarParams", "Phantom", "Series", "Study",
    "sample_subject", "subject_seeds", "make_study", "random_irw", "random_lge_slice",
    "write_study", "bundled_study_path", "extract_bundled_study", "sample_data_dir",
]

SAMPLE_NAME = "CMRPhantomStudy"


def _fast_options(options: PhantomOptions | None) -> PhantomOptions:
    return options if options is not None else PhantomOptions(matrix=128, la=False)


def random_irw(seed: int, *, position: str | None = None, condition: str = "native", scheme: str | None = None,
               options: PhantomOptions | None = None) -> Series:
    """One IRW set (frames sorted by TI) of a random subject, for training loops.

    Default matrix 128 (2.3 mm pixels). ``position`` basal/mid/apical (random if None).
    The Series carries ``maps['t1_ms']`` (true T1 per pixel), labels, AHA map and the
    per-frame displacement fields (``displacement``, ``inverse_displacement``).
    """
    opt = _fast_options(options)
    ph = Phantom(sample_subject(seed, opt))
    if position is None:
        position = POSITIONS[int(np.random.default_rng(seed).integers(0, 3))]
    return ph.irw(position, condition, scheme)


def random_lge_slice(seed: int, *, slice_index: int | None = None, options: PhantomOptions | None = None) -> Series:
    """One PSIR LGE slice of a random subject (any level, random if None), for training loops.

    ``truth['slices'][0]`` holds the slice class, ring completeness, landmarks, LGE
    likelihood and certainty; ``labels`` / ``aha`` the masks.
    """
    opt = _fast_options(options)
    ph = Phantom(sample_subject(seed, opt))
    k = int(np.random.default_rng(seed + 1).integers(0, ph.s.n_slices)) if slice_index is None else int(slice_index)
    if not 0 <= k < ph.s.n_slices:
        raise InputError(f"slice index must be 0..{ph.s.n_slices - 1} for this subject; got {k}")
    return ph.lge_slice(k)


def write_study(study: Study, out_dir: str | Path, **kwargs) -> Path:
    """Write one subject folder (see :func:`cmrlib.phantom.writer.write_study`)."""
    from .writer import write_study as _write
    return _write(study, out_dir, **kwargs)


# ---- bundled demo study ----------------------------------------------------------------------
def sample_data_dir() -> Path:
    """Folder holding the bundled demo study (``cmrlib/resources/sampledata``).

    ``$CMR_SAMPLE_DATA_DIR`` first when set; then the package's own folder, the same in a
    checkout, a wheel install and inside Slicer.
    """
    from ..resources import SAMPLE_DATA_DIR
    env = os.environ.get("CMR_SAMPLE_DATA_DIR")
    candidates = [Path(env)] if env else []
    candidates.append(SAMPLE_DATA_DIR)
    for c in candidates:
        if (c / "sampledata.json").is_file():
            return c
    raise NotAvailableError("the bundled phantom study (cmrlib/resources/sampledata/sampledata.json) is not installed; "
                            "looked in " + ", ".join(str(c) for c in candidates))


def _sample_record() -> tuple[Path, dict]:
    folder = sample_data_dir()
    record = json.loads((folder / "sampledata.json").read_text())
    return folder, record


def bundled_study_path() -> Path:
    """Path of the bundled demo study zip (made by ``cmr phantom``, see its README)."""
    folder, record = _sample_record()
    path = folder / record["file"]
    if not path.is_file():
        raise NotAvailableError(f"bundled study {path} is missing (sampledata.json names it)")
    return path


def extract_bundled_study(dest: str | Path) -> Path:
    """Verify (SHA256) and unzip the bundled study into ``dest``; return its DICOM folder.

    ``dest`` receives ``dicom/`` (the series as a scanner exports them), ``truth/``,
    ``truth.json`` and ``sheets/``. ``dest`` must not exist or be empty.
    """
    zip_path = bundled_study_path()
    _, record = _sample_record()
    digest = sha256_of(zip_path)
    if digest != record["sha256"]:
        raise InputError(f"bundled study {zip_path} is corrupt: SHA256 {digest} != {record['sha256']} "
                         f"(sampledata.json); regenerate it with the command in cmrlib/resources/sampledata/README.md")
    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()):
        raise InputError(f"{dest} exists and is not empty; extract the bundled study into a new folder")
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    with zipfile.ZipFile(zip_path) as zf:
        for name in zf.namelist():  # refuse entries that would land outside dest
            target = (root / name).resolve()
            if root not in target.parents and target != root:
                raise InputError(f"bundled study has an unsafe entry {name!r}")
        zf.extractall(dest)
    return dest / "dicom"

"""Shared fixtures: small synthetic DICOM studies written with pydicom through cmrlib.io."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("CMR_DEVICE", "cpu")  # tests are CPU-only and deterministic
for p in (ROOT, *(ROOT / m for m in ("CMRQuality", "CMRMotion", "CMRStressT1", "CMRSegmentation"))):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))


def oblique_direction() -> np.ndarray:
    """A double-oblique short-axis-like orientation (columns: col, row, slice axes)."""
    from scipy.spatial.transform import Rotation
    return Rotation.from_euler("zyx", [35.0, -25.0, 50.0], degrees=True).as_matrix()


SHMOLLI_TI = [100.0, 180.0, 260.0, 1100.0, 1180.0, 2100.0, 3100.0]
# MOLLI 5(3)3 in acquisition order: 5 images after inversion 1, 3 after inversion 2
MOLLI_533_ACQ = [120.0, 1020.0, 1920.0, 2820.0, 3720.0, 200.0, 1100.0, 2000.0]


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def study_dir(tmp_path: Path, rng: np.random.Generator) -> Path:
    """A small study: cine (3 slices x 12 phases), ShMOLLI, MOLLI 5(3)3, T1 map, LGE PSIR + magnitude."""
    from cmrlib import Image
    from cmrlib.io import StudyInfo, write_dicom_series

    root = tmp_path / "study"
    study = StudyInfo.new("fixture")
    d = oblique_direction()
    origin = (12.5, -30.25, 41.0)
    spacing = (1.5, 1.4, 8.0)
    extra = {"MagneticFieldStrength": 1.5}
    cine = Image(rng.uniform(0, 400, (12, 3, 24, 20)).round(), spacing, origin, d, True, {},
                 [{"TriggerTime": 40.0 * k} for k in range(12)])
    write_dicom_series(cine, root / "cine", description="cine SAX", series_number=2, study=study, extra=extra)
    irw = Image(rng.uniform(0, 900, (7, 24, 20)).round(), spacing, origin, d, True, {},
                [{"InversionTime": t} for t in SHMOLLI_TI])
    write_dicom_series(irw, root / "shmolli", description="ShMOLLI_192i", series_number=3, study=study, extra=extra)
    molli = Image(rng.uniform(0, 900, (8, 24, 20)).round(), spacing, origin, d, True, {},
                  [{"InversionTime": t} for t in MOLLI_533_ACQ])
    write_dicom_series(molli, root / "molli", description="MOLLI native SAX", series_number=4, study=study, extra=extra)
    t1 = Image(rng.uniform(0, 2000, (1, 24, 20)).round(), spacing, origin, d)
    write_dicom_series(t1, root / "t1map", description="ShMOLLI_192i_T1MAP", series_number=5, study=study,
                       image_type=("DERIVED", "PRIMARY", "T1 MAP", "NONE"), extra=extra)
    psir = Image(rng.uniform(-300, 900, (3, 24, 20)).round(), spacing, origin, d)
    write_dicom_series(psir, root / "lge", description="LGE PSIR SAX", series_number=6, study=study,
                       image_type=("ORIGINAL", "PRIMARY", "M", "PSIR"), rescale_intercept=-4096.0,
                       extra={**extra, "InversionTime": 300.0})
    mag = Image(rng.uniform(0, 900, (3, 24, 20)).round(), spacing, origin, d)
    write_dicom_series(mag, root / "lge_mag", description="LGE SAX MAG", series_number=7, study=study,
                       extra={**extra, "InversionTime": 300.0})
    return root


def tree_snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """{relative path: (size, mtime_ns)} of every file below ``folder``: detects any write."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()}


def irw_image(matrix: int = 48, seed: int = 3):
    """(IRW image, myocardium mask) of a small noise-free still phantom ShMOLLI set."""
    from cmrlib.phantom import Phantom, PhantomOptions, sample_subject
    ph = Phantom(sample_subject(seed, PhantomOptions(matrix=matrix, la=False, clean=True)))
    series = ph.irw("mid", "native", "ShMOLLI", motion_severity=0.0)
    return series.image, series.labels.array[0] == 1


@pytest.fixture(scope="module")
def bundled_models_only():
    """The bundled weights only (CMR_MODELS_DIR unset) for the tests of a module, restored after."""
    import os
    from cmrlib.models import clear_model_cache
    old = os.environ.pop("CMR_MODELS_DIR", None)
    clear_model_cache()
    yield
    if old is not None:
        os.environ["CMR_MODELS_DIR"] = old
    clear_model_cache()


@pytest.fixture
def fresh_model_cache():
    """An empty model cache before and after the test (models trained or installed by it)."""
    from cmrlib.models import clear_model_cache
    clear_model_cache()
    yield
    clear_model_cache()

"""Data shipped with cmrlib: ``models/`` (bundled phantom-trained weights, manifest, model
cards) and ``sampledata/`` (the bundled phantom study). One copy in the repository, found
through this package's folder in an editable checkout, a wheel install and inside Slicer
(the extension installs ``cmrlib/`` with the same layout)."""
from pathlib import Path

RESOURCES_DIR = Path(__file__).resolve().parent
MODELS_DIR = RESOURCES_DIR / "models"
SAMPLE_DATA_DIR = RESOURCES_DIR / "sampledata"

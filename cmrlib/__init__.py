"""cmrlib — the algorithms, networks, model zoo, phantom and CLI behind SlicerCMR.

Never imports slicer, vtk or Qt (only :mod:`cmrlib.mrml` does, and nothing here imports it).
"""
from .errors import CMRError, DicomError, InputError, ModelError, NotAvailableError
from .image import Image

__version__ = "0.1.0"
__all__ = ["Image", "CMRError", "InputError", "DicomError", "ModelError", "NotAvailableError", "__version__"]

"""Slicer-side pieces shared by the four SlicerCMR modules.

Layering (DESIGN.md): the module widgets (``CMR<Name>/CMR<Name>.py``) use these helpers;
everything here except :mod:`CMRCommonLib.widgets` is Qt-free, imports and runs headless
(plain Python or the ``slicer-core`` wheel) and is unit-tested with pytest.

* :mod:`~CMRCommonLib.dependencies` -- read a module's requirements file, find missing packages.
* :mod:`~CMRCommonLib.device_choice` -- the panel's device choice (auto / CPU / GPU) as
  ``CMR_DEVICE`` for the worker process, and the GPU-memory warning text.
* :mod:`~CMRCommonLib.runner` -- cancellable subprocess runner of ``python -m cmrlib.cli``
  that parses ``CMR-PROGRESS`` lines.
* :mod:`~CMRCommonLib.study_loader` -- scan a DICOM folder, list its CMR series, load one
  into an MRML scene as a volume or a sequence.
* :mod:`~CMRCommonLib.testing` -- a tiny synthetic DICOM study and checks shared by the
  pytest suite and the modules' in-Slicer self-tests.
* :mod:`~CMRCommonLib.widgets` -- Qt: the "CMR study" panel section, device row, status
  area and the dependency-install confirmation, reused by every module widget.

Nothing is imported eagerly here so that ``import CMRCommonLib`` never fails in Slicer,
even before the modules' Python dependencies are installed.
"""

"""Slicer-side pieces shared by the four SlicerCMR modules.

Layering: the module files (``CMR<Name>/CMR<Name>.py``) build on :mod:`~CMRCommonLib.module_base`;
everything here except :mod:`~CMRCommonLib.widgets` (Qt) and :mod:`~CMRCommonLib.module_base`
(Slicer's scripted-module classes) is Qt-free, imports and runs headless (plain Python or the
``slicer-core`` wheel) and is unit-tested with pytest.

* :mod:`~CMRCommonLib.module_base` -- bases of each module's module / widget / logic / test
  classes and of its typed parameter node: the Slicer template's life cycle, the shared panel
  and self-tests, so that a module file holds only its own sections.
* :mod:`~CMRCommonLib.widgets` -- Qt: the shared panel (``Resources/UI/CMRPanel.ui``: "CMR
  study" section, device row, status area with progress and Cancel), the dependency and
  PyTorch checks with their confirmation dialogs.
* :mod:`~CMRCommonLib.help_text` -- the module help and the panel's capabilities line, from the
  capability registry (:mod:`cmrlib.capabilities`).
* :mod:`~CMRCommonLib.dependencies` -- the extension's requirements file
  (``Resources/SlicerCMR-requirements.txt``), missing packages, torch through the PyTorch extension.
* :mod:`~CMRCommonLib.device_choice` -- the panel's device choice (auto / CPU / GPU) for the
  worker process, and the GPU-memory warning text.
* :mod:`~CMRCommonLib.runner` -- cancellable subprocess runner of ``python -m cmrlib.cli``
  that parses ``CMR-PROGRESS`` lines; :func:`~CMRCommonLib.runner.worker_command` adds the device.
* :mod:`~CMRCommonLib.study_loader` -- scan a DICOM folder, list its CMR series, load one
  into an MRML scene as a volume or a sequence.
* :mod:`~CMRCommonLib.module_logic` -- base of the modules' Qt-free logic classes.
* :mod:`~CMRCommonLib.testing` -- a tiny synthetic DICOM study and checks shared by the
  pytest suite and the modules' in-Slicer self-tests.

Nothing is imported eagerly here so that ``import CMRCommonLib`` never fails in Slicer,
even before the modules' Python dependencies are installed.
"""

"""Errors a user can cause. Each message says what was expected and what was found."""
from __future__ import annotations


class CMRError(Exception):
    """Base class of every error SlicerCMR raises on bad input or configuration."""


class InputError(CMRError):
    """An input (file, folder, array, option) is not what the operation needs."""


class DicomError(InputError):
    """A DICOM file or series cannot be used; the message names the file."""


class ModelError(CMRError):
    """A model is missing, unknown, corrupt (checksum mismatch) or incompatible."""


class NotAvailableError(CMRError):
    """A capability has not been installed / has not landed in this version."""


class NotApplicableError(CMRError):
    """A `cmr run` step does not apply to this study although series of its kinds are there
    (e.g. T1 maps, but no rest / stress pair): the step is *skipped* with this reason."""

"""Base of the four modules' Qt-free logic classes (``CMR<Name>Lib.logic``).

A module logic is a plain class given an MRML scene: it owns the module's
:class:`~CMRCommonLib.study_loader.StudyLoader` (configured with the series kinds the module
works with), finds the module's inputs among the loaded nodes, and says which of the
module's capabilities are installed and which are planned (from the capability registry,
:mod:`cmrlib.capabilities`, through :mod:`CMRCommonLib.help_text`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Sequence

from cmrlib.io import DicomScan, SeriesInfo
from cmrlib.progress import ProgressCallback

from . import help_text
from .study_loader import LoadedSeries, SeriesRow, StudyLoader, nodes_of_kind


class CMRModuleLogicBase:
    """Scene-level logic shared by the modules; subclasses set the class attributes."""

    #: Slicer module name, e.g. "CMRMotion" (matches ``Capability.panel``).
    MODULE_NAME: ClassVar[str] = ""
    #: Series kinds (cmrlib.io.KINDS) the module works with, most important first.
    USED_KINDS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, scene: Any) -> None:
        if not self.MODULE_NAME:
            raise TypeError(f"{type(self).__name__} must set MODULE_NAME")
        self.scene = scene
        self.loader = StudyLoader(scene, self.USED_KINDS)

    # ---- study loader ----------------------------------------------------------------
    def scan(self, folder: str | Path, progress: ProgressCallback | None = None) -> DicomScan:
        """Scan a DICOM folder (see :meth:`StudyLoader.scan`); ``progress(phase, done, total,
        message)`` is called per file."""
        return self.loader.scan(folder, progress)

    def series_rows(self) -> list[SeriesRow]:
        """Rows of the series table, the module's kinds first."""
        return self.loader.rows()

    def load(self, series: SeriesInfo | int, progress: ProgressCallback | None = None) -> LoadedSeries:
        """Load a scanned series into the scene (see :meth:`StudyLoader.load`)."""
        return self.loader.load(series, progress)

    def loaded_nodes(self, kinds: Sequence[str] | None = None) -> list[Any]:
        """Volume and sequence nodes loaded by the study loader whose kind is in ``kinds``
        (default: the module's :attr:`USED_KINDS`), grouped in the order of ``kinds``."""
        kinds = tuple(self.USED_KINDS if kinds is None else kinds)
        return [node for kind in kinds for node in
                nodes_of_kind(self.scene, [kind], "vtkMRMLScalarVolumeNode")
                + nodes_of_kind(self.scene, [kind], "vtkMRMLSequenceNode")]

    def loaded_volumes(self, kinds: Sequence[str]) -> list[Any]:
        """Scalar volume nodes (single-frame series) of ``kinds``, grouped in that order."""
        return [n for n in self.loaded_nodes(kinds) if n.IsA("vtkMRMLScalarVolumeNode")]

    def loaded_sequences(self, kinds: Sequence[str]) -> list[Any]:
        """Sequence nodes (multi-frame series) of ``kinds``, grouped in that order."""
        return [n for n in self.loaded_nodes(kinds) if n.IsA("vtkMRMLSequenceNode")]

    # ---- capabilities ----------------------------------------------------------------
    def capabilities(self) -> help_text.PanelContents:
        """This module's capabilities: with a panel section, command line only, planned
        (from the registry; see :func:`CMRCommonLib.help_text.panel_contents`)."""
        return help_text.panel_contents(self.MODULE_NAME)

    def capabilities_text(self) -> str:
        """Plain text for the panel: what the module does now and what is coming."""
        return help_text.summary_text(self.MODULE_NAME)

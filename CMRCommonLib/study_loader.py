"""The "CMR study" loader shared by the four modules (Qt-free logic).

Pick a DICOM folder, list its series as classified by :func:`cmrlib.io.scan_folder` (cine,
MOLLI/ShMOLLI IRW with inversion times, T1 map, LGE PSIR / magnitude, unknown with the
reason), and load one into an MRML scene: a single-frame series as a scalar volume, a
multi-frame series (IRW inversion times, cine phases) as a sequence with a browser, the
per-frame metadata (InversionTime / TriggerTime in ms, ...) kept on the sequence by
:mod:`cmrlib.mrml`.

Runs headless on the slicer-core wheel (``cmrlib.mrml.new_scene()``) and inside Slicer
(``slicer.mrmlScene``); the panel section built on it is in :mod:`CMRCommonLib.widgets`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from cmrlib.errors import InputError
from cmrlib.io import DicomScan, SeriesInfo, load_series, scan_folder
from cmrlib.progress import ProgressCallback

#: Short kind names for the narrow "Kind" column (the long ones are cmrlib.io.KIND_LABELS).
SHORT_KIND_LABELS: dict[str, str] = {
    "cine": "Cine",
    "irw": "IRW",
    "t1map": "T1 map",
    "fit_map": "Fit map",
    "map_display": "Map display",
    "lge_psir": "LGE PSIR",
    "lge_magnitude": "LGE magnitude",
    "unknown": "Unknown",
}
#: Columns of the series table, in order.
SERIES_COLUMNS: tuple[str, ...] = ("Kind", "Description", "Series", "Slices x frames", "TI (ms)")
#: Attribute prefix of the series metadata that cmrlib.mrml stores on volume and sequence
#: nodes (``CMR.<key>`` = JSON), e.g. ``CMR.kind``, ``CMR.SeriesInstanceUID``.
META_PREFIX = "CMR."


@dataclass(frozen=True)
class SeriesRow:
    """One row of the series table: text per column plus what the panel needs around it."""

    series_index: int  #: index into ``DicomScan.series``
    kind: str  #: cmrlib kind: cine, irw, t1map, lge_psir, lge_magnitude, unknown
    kind_text: str  #: e.g. "IRW (ShMOLLI)"
    description: str
    series_number: str
    size_text: str  #: e.g. "1 x 7"
    inversion_times_text: str  #: e.g. "100, 180, 260, 1100, 1180, 2100, 3100" ('' when not IRW)
    tooltip: str  #: summary, classification reason, problems
    loadable: bool
    used_by_module: bool  #: the module using the loader works with this kind

    def cells(self) -> tuple[str, ...]:
        """Texts of the row in :data:`SERIES_COLUMNS` order."""
        return (self.kind_text, self.description, self.series_number, self.size_text,
                self.inversion_times_text)


@dataclass
class LoadedSeries:
    """What :meth:`StudyLoader.load` put into the scene."""

    series: SeriesInfo
    node: Any  #: vtkMRMLScalarVolumeNode (volume) or vtkMRMLSequenceNode (multi-frame)
    display_node: Any  #: the volume to show: the volume itself or the sequence's proxy volume
    browser_node: Any | None  #: vtkMRMLSequenceBrowserNode of a sequence, else None
    n_frames: int
    warnings: list[str]  #: problems found while reading pixels (irregular spacing, ...)

    @property
    def is_sequence(self) -> bool:
        return self.browser_node is not None


def _format_times(values: Sequence[float]) -> str:
    return ", ".join(f"{v:g}" for v in values)


def series_row(index: int, series: SeriesInfo, used_kinds: Sequence[str] = ()) -> SeriesRow:
    """The table row of ``series`` (``index`` is its position in the scan)."""
    kind_text = SHORT_KIND_LABELS.get(series.kind, series.kind)
    if series.subtype:
        kind_text = f"{kind_text} ({series.subtype})"
    tips = [series.summary(), f"Classified as {series.kind}: {series.kind_reason}"]
    if series.problems:
        tips.append("Cannot be loaded: " + "; ".join(series.problems))
    return SeriesRow(
        series_index=index,
        kind=series.kind,
        kind_text=kind_text,
        description=series.description or "(no description)",
        series_number="" if series.series_number is None else str(series.series_number),
        size_text=f"{series.n_slices} x {series.n_frames}",
        inversion_times_text=_format_times(series.inversion_times_ms) if series.kind == "irw" else "",
        tooltip="\n".join(tips),
        loadable=not series.problems,
        used_by_module=series.kind in used_kinds,
    )


def node_base_name(series: SeriesInfo) -> str:
    """Node name for a loaded series, e.g. ``"7: ShMOLLI"`` (series number: description)."""
    description = series.description.strip() or SHORT_KIND_LABELS.get(series.kind, "series")
    return f"{series.series_number}: {description}" if series.series_number is not None else description


class StudyLoader:
    """Scan one DICOM folder and load its series into ``scene``.

    ``used_kinds`` are the series kinds the owning module works with: their rows are listed
    first and flagged :attr:`SeriesRow.used_by_module`.
    """

    def __init__(self, scene: Any, used_kinds: Sequence[str] = ()) -> None:
        if scene is None:
            raise InputError("StudyLoader needs an MRML scene; got None")
        self.scene = scene
        self.used_kinds: tuple[str, ...] = tuple(used_kinds)
        self._scan: DicomScan | None = None

    # ---- scanning --------------------------------------------------------------------
    @property
    def scan_result(self) -> DicomScan | None:
        """The last scan, or None before :meth:`scan`."""
        return self._scan

    @property
    def series(self) -> list[SeriesInfo]:
        return list(self._scan.series) if self._scan is not None else []

    def scan(self, folder: str | Path, progress: ProgressCallback | None = None) -> DicomScan:
        """Scan ``folder`` (recursively, headers only). Raises :class:`cmrlib.errors.InputError`
        (or its subclass ``DicomError``) when the folder is missing or holds no DICOM image;
        the previous scan is kept in that case."""
        if isinstance(folder, str) and not folder.strip():
            raise InputError("expected an existing DICOM folder; got an empty path")
        folder = Path(folder)
        if not folder.is_dir():
            raise InputError(f"expected an existing DICOM folder; got {str(folder)!r}")
        self._scan = scan_folder(folder, progress)
        return self._scan

    def clear(self) -> None:
        """Forget the last scan."""
        self._scan = None

    def rows(self) -> list[SeriesRow]:
        """Table rows: series of the module's kinds first (in ``used_kinds`` order), then the
        others; within a group by series number."""
        if self._scan is None:
            return []
        rows = [series_row(i, s, self.used_kinds) for i, s in enumerate(self._scan.series)]

        def order(row: SeriesRow) -> tuple:
            group = self.used_kinds.index(row.kind) if row.kind in self.used_kinds else len(self.used_kinds)
            number = int(row.series_number) if row.series_number else 1 << 30
            return (group, number, row.series_index)

        return sorted(rows, key=order)

    def skipped_summary(self, max_reasons: int = 3) -> str:
        """One sentence about the files the scan skipped, '' when none were."""
        if self._scan is None or not self._scan.skipped:
            return ""
        skipped = self._scan.skipped
        reasons: dict[str, int] = {}
        for item in skipped:
            reasons[item.reason.split(":")[0]] = reasons.get(item.reason.split(":")[0], 0) + 1
        top = sorted(reasons.items(), key=lambda kv: -kv[1])[:max_reasons]
        detail = "; ".join(f"{n} x {reason}" for reason, n in top)
        return f"{len(skipped)} file(s) skipped ({detail})"

    def skipped_details(self) -> str:
        """Every skipped file with its reason, one per line."""
        if self._scan is None:
            return ""
        return "\n".join(f"{item.path}: {item.reason}" for item in self._scan.skipped)

    def series_at(self, series_index: int) -> SeriesInfo:
        """The scanned series with index ``series_index`` (see :attr:`SeriesRow.series_index`)."""
        if self._scan is None:
            raise InputError("no DICOM folder has been scanned yet")
        if not 0 <= series_index < len(self._scan.series):
            raise InputError(f"series index {series_index} out of range: the scan has {len(self._scan.series)} series")
        return self._scan.series[series_index]

    # ---- loading ---------------------------------------------------------------------
    def load(self, series: SeriesInfo | int, progress: ProgressCallback | None = None,
             name: str | None = None) -> LoadedSeries:
        """Read ``series`` (or the scanned series with that index) and add it to the scene.

        A volume for single-frame series; a sequence (with a browser and a proxy volume) for
        multi-frame series. :mod:`cmrlib.mrml` stores the series metadata (SeriesInstanceUID,
        kind, subtype, description, series number, ...) as ``CMR.<key>`` attributes of the
        volume or sequence node and the per-frame metadata (InversionTime, TriggerTime in ms)
        with the frames, so module logic can find and check its inputs. Nothing is added to
        the scene when reading fails.
        """
        from cmrlib import mrml

        info = self.series_at(series) if isinstance(series, int) else series
        if info.problems:
            raise InputError(f"series {node_base_name(info)!r} cannot be loaded: " + "; ".join(info.problems))
        image = load_series(info, progress)
        base = name or node_base_name(info)
        unique = self.scene.GenerateUniqueName(base)
        if image.is_sequence:
            node = mrml.sequence_node_from_image(self.scene, image, unique)
            browser = mrml.browser_node_for(node)
            display = mrml.proxy_node_for(node)
        else:
            node = mrml.volume_node_from_image(self.scene, image, unique)
            browser = None
            display = node
        return LoadedSeries(series=info, node=node, display_node=display, browser_node=browser,
                            n_frames=image.n_frames, warnings=list(image.meta.get("warnings", [])))


def series_kind_of(node: Any) -> str:
    """The cmrlib kind (``irw``, ``lge_psir``, ...) of a node loaded by the study loader, read
    from the series metadata :mod:`cmrlib.mrml` stores as JSON ``CMR.<key>`` attributes;
    '' for other nodes."""
    if node is None:
        return ""
    from cmrlib.mrml import node_meta  # lazy: cmrlib's dependencies may be installed on first use
    value = node_meta(node).get("kind", "")
    return value if isinstance(value, str) else ""


def nodes_of_kind(scene: Any, kinds: Sequence[str], class_name: str = "vtkMRMLNode") -> list[Any]:
    """Nodes of ``class_name`` in ``scene`` loaded by the study loader with one of ``kinds``."""
    found = []
    collection = scene.GetNodesByClass(class_name)
    for i in range(collection.GetNumberOfItems()):
        node = collection.GetItemAsObject(i)
        if series_kind_of(node) in kinds:
            found.append(node)
    return found


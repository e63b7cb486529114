"""The shape every capability takes: its registration record, its `cmr run` step, its results
and its section of ``report.html``.

A capability package ``cmrlib/<name>/`` holds ``capability.py`` with one module-level
``CAPABILITY = Capability(...)``; :mod:`cmrlib.capabilities` finds it, and the CLI
sub-command, ``cmr train/evaluate NAME``, the architecture registry, ``cmr run``'s step
order, the report and the Slicer panels' lists are all derived from that one record
(docs/architecture.md). Callables are named as ``"module:function"`` strings so that reading
the records imports no torch and no capability code.

Core layer: this module imports only the standard library (and ``cmrlib.io`` types for
annotations), so capability packages import it without reaching up a layer.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

if TYPE_CHECKING:  # pragma: no cover
    import argparse

    from .io import DicomScan, SeriesInfo
    from .progress import ProgressCallback


def task_parsers(parser: "argparse.ArgumentParser", dest: str) -> Callable[[str, str], "argparse.ArgumentParser"]:
    """For a capability CLI with tasks (`cmr label create | status …`): a function ``task(name,
    help)`` adding the task's parser to ``parser``. Every `cmr` option of the command (--quiet,
    --device, …) is accepted after the task too: the tasks share the command parser's option
    actions, as argparse's ``parents=`` does."""
    sub = parser.add_subparsers(dest=dest, metavar="TASK", required=True)
    shared = [a for a in parser._actions if a.option_strings and a.dest != "help"]

    def task(name: str, help_text: str) -> "argparse.ArgumentParser":
        p = sub.add_parser(name, help=help_text, description=help_text)
        for action in shared:
            p._add_action(action)
        return p
    return task


def resolve(reference: str) -> Callable[..., Any]:
    """The object named by ``"package.module:attribute"`` (imported on first use)."""
    module, _, attr = reference.partition(":")
    if not attr:
        raise ValueError(f"expected 'module:attribute', got {reference!r}")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class Output:
    """One file a capability writes into its output folder (the output contract)."""

    name: str  # file name inside the capability's folder, e.g. "t1_map.nrrd"
    kind: str  # image | sequence | displacement | json | csv | png
    description: str
    optional: bool = False  # written only in some cases (e.g. R² before correction)


@dataclass(frozen=True)
class Step:
    """A capability's step of ``cmr run``.

    ``series_kinds``: the step applies when the study holds a series of one of these kinds
    (empty: always). ``needs``: results that earlier steps must have provided, else the step
    is skipped with the reason. ``uses``: results taken when present (they only order the
    steps). ``provides``: names of what this step hands to later steps through
    :attr:`StudyContext.results` (e.g. ``myocardium_mask``, ``aha_segments``).
    ``run``: ``"module:function"``, called as ``function(context) -> StepResult``.
    """

    run: str
    series_kinds: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()
    uses: tuple[str, ...] = ()
    provides: tuple[str, ...] = ()


@dataclass(frozen=True)
class Capability:
    """The one registration of a capability; everything else is derived from it.

    ``cli``: module with ``add_arguments(parser)`` and ``run(args) -> int`` (`cmr <command>`).
    ``trainers``: model name → module with ``add_arguments``/``run`` (`cmr train NAME`) and
    ``add_eval_arguments``/``evaluate`` (`cmr evaluate NAME`). ``architectures``: modules whose
    import registers network architectures. ``outputs``: the files of its output folder.
    ``reader``: ``"module:function"`` reading that folder back, ``folder -> dict``.
    ``report``: ``"module:function"``, ``(step_summary: dict, folder: Path) -> ReportSection``.
    ``adapter``: ``"module:function"`` in the Slicer module's ``…Lib`` package that turns the
    reader's dict into MRML nodes, ``(scene, outputs: dict, name: str) -> <Capability>Outputs``
    (an object holding the nodes and the summary, e.g. ``CMRMotionLib.logic.MotionOutputs``).
    ``example``: ``"module:function"``, ``(folder: Path) -> None``, writing a small real result
    (computed, not canned) with the capability's writer, so the contract test can check
    writer → declared files → reader → adapter for every capability.
    ``panel``: the Slicer module showing it; ``panel_help``: what that panel section does
    in this version (shown in the module's help).
    """

    command: str
    title: str
    panel: str
    cli: str
    panel_help: str = ""
    step: Step | None = None
    trainers: Mapping[str, str] = field(default_factory=dict)
    architectures: tuple[str, ...] = ()
    outputs: tuple[Output, ...] = ()
    reader: str | None = None
    report: str | None = None
    adapter: str | None = None
    example: str | None = None

    def load_cli(self):
        return importlib.import_module(self.cli)


@dataclass
class StudyContext:
    """What a step of ``cmr run`` receives: the scan, where to write, and earlier results.

    ``results`` maps a provided name (see :attr:`Step.provides`) to its value, e.g.
    ``results["myocardium_mask"]`` → ``{series_uid: Image}``. ``file_notes`` says, per series
    UID, which files of it could not be read (every result made from it must repeat them).
    """

    scan: "DicomScan"
    out_dir: Path  # the study's output root; a step writes into folder(command)
    progress: "ProgressCallback | None" = None
    device: str | None = None
    results: dict[str, Any] = field(default_factory=dict)

    def folder(self, command: str) -> Path:
        return self.out_dir / command

    def series(self, *kinds: str) -> list["SeriesInfo"]:
        return [s for s in self.scan.series if s.kind in kinds]


@dataclass
class StepResult:
    """A step's outcome: ``summary`` (JSON-able, into ``run.json`` and the report), one-line
    ``lines`` for the terminal, ``provides`` (handed to later steps, not written) and
    ``notes`` (warnings a reader must see: lost frames, fallbacks)."""

    summary: dict[str, Any]
    lines: list[str] = field(default_factory=list)
    provides: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class Finding:
    """One number (or short text) a clinician reads first."""

    label: str
    value: float | str | None
    unit: str = ""
    note: str = ""
    fmt: str = ""  # format spec for a number, e.g. ".0f" (ms) or ".3f" (R²); default 4 significant digits

    def text(self) -> str:
        """The value as the report shows it (the report test reads it back)."""
        if self.value is None:
            return "—"
        if isinstance(self.value, (int, float)):
            return format(self.value, self.fmt or ".4g")
        return str(self.value)


@dataclass
class Figure:
    path: str  # relative to the study's output root
    caption: str


@dataclass
class Table:
    """A per-item table under a section's findings (e.g. one row per slice with its QC);
    ``row_status`` marks rows "pass" (green) or "fail" (red), "" for none."""

    caption: str
    header: list[str]
    rows: list[list[str]]
    row_status: list[str] = field(default_factory=list)


@dataclass
class ReportSection:
    """A capability's part of ``report.html``: findings first, then figures, then notes."""

    title: str
    findings: list[Finding] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    models: list[dict[str, Any]] = field(default_factory=list)  # provenance: name, version, notice
    tables: list[Table] = field(default_factory=list)

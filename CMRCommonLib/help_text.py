"""What each SlicerCMR panel does in this version, from the capability registry (Qt-free).

The module help (``parent.helpText``) and the line at the top of every panel
(``capabilitiesLabel``) are built here from the capability records, so that neither claims a
feature this version does not have:

* :func:`cmrlib.capabilities.for_panel` -- the installed capabilities of a panel. One with a
  ``panel_help`` has its own section in the panel (the text says what that section does); one
  without is installed but runs from the ``cmr`` command line only for now.
* :data:`cmrlib.capabilities.PLANNED` -- capabilities announced for later versions, named as
  planned.

The "CMR study" section is the part every panel has. A panel none of whose capabilities has a
``cmr run`` step (``Capability.step``) says that none of its processing is in this version.
cmrlib is imported only when a text is asked for, so that importing this module never fails in
Slicer.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: The "CMR study" section, shared by every panel (module help).
STUDY_LOADER_HELP = (
    "<b>CMR study</b>: scans a DICOM folder, lists its series as classified by SlicerCMR (cine, "
    "MOLLI/ShMOLLI inversion-recovery-weighted images with their inversion times, T1 map, LGE PSIR / "
    "magnitude, or unknown with the reason) and loads the selected one: a volume, or a sequence for "
    "multi-frame series. The compute-device choice and the status line with progress and Cancel are "
    "shared by all SlicerCMR modules.")
#: The same, as the first line of the panel's capabilities label.
STUDY_LOADER_SUMMARY = ("Now: load a CMR study (DICOM folder) and view its series; "
                        "multi-frame series (IRW, cine) load as sequences.")
PHANTOM_NOTE = ("Bundled models are trained on a synthetic CMR phantom: their results are "
                "phantom-trained demonstrations, not for clinical use.")


@dataclass(frozen=True)
class PanelContents:
    """What one Slicer module shows in this version."""

    in_panel: list[Any]  #: :class:`cmrlib.contract.Capability` records with a panel section
    cli_only: list[Any]  #: installed capabilities of this module that run from `cmr` only for now
    planned: list[str]  #: titles of the capabilities announced for this module


def panel_contents(module: str) -> PanelContents:
    """The capabilities the Slicer module ``module`` (e.g. "CMRMotion") shows, from the registry."""
    from cmrlib.capabilities import PLANNED, for_panel

    installed = for_panel(module)
    return PanelContents(in_panel=[c for c in installed if c.panel_help],
                         cli_only=[c for c in installed if not c.panel_help],
                         planned=[title for title, panel in PLANNED.values() if panel == module])


def help_html(module: str) -> str:
    """The module help: what the panel does in this version (the study loader, each
    capability's ``panel_help``), what is installed for the command line only, and what is
    planned."""
    contents = panel_contents(module)
    items = [STUDY_LOADER_HELP, *(c.panel_help for c in contents.in_panel)]
    parts = ["<p>In this version the panel does the following:</p><ul>"
             + "".join(f"<li>{item}</li>" for item in items) + "</ul>"]
    if not any(c.step for c in contents.in_panel + contents.cli_only):
        parts.append("<p>None of this module's processing steps is in this version yet: only "
                     + ("the study loader" if not contents.in_panel else "what is listed above") + " works.</p>")
    if contents.cli_only:
        parts.append("<p>Installed, run from the <code>cmr</code> command line for now: "
                     + "; ".join(f"{c.title} (<code>cmr {c.command}</code>)" for c in contents.cli_only) + ".</p>")
    if contents.planned:
        parts.append("<p>Planned for a later version (not in this one): " + "; ".join(contents.planned) + ".</p>")
    if any(c.trainers for c in contents.in_panel + contents.cli_only):
        parts.append(f"<p>{PHANTOM_NOTE}</p>")
    return "\n".join(parts)


def summary_text(module: str) -> str:
    """Plain text for the top of the panel: what the module does now and what is coming."""
    contents = panel_contents(module)
    lines = [STUDY_LOADER_SUMMARY]
    if contents.in_panel:
        lines.append("In this panel: " + "; ".join(c.title for c in contents.in_panel) + ".")
    if contents.cli_only:
        lines.append("Installed, run from the command line for now: "
                     + "; ".join(f"{c.title} (cmr {c.command})" for c in contents.cli_only) + ".")
    if contents.planned:
        lines.append("Coming in a later version: " + "; ".join(contents.planned) + ".")
    return "\n".join(lines)


def unavailable_help(module: str, error: BaseException) -> str:
    """Module help when cmrlib cannot be imported (e.g. a package is missing in Slicer's Python)."""
    return (f"<p>{STUDY_LOADER_HELP}</p><p>The list of {module}'s capabilities could not be read "
            f"({type(error).__name__}: {error}); open the module to check the Python packages.</p>")

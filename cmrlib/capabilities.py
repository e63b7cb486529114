"""The installed capabilities, collected from their own registration records.

Each capability package ``cmrlib/<name>/`` has ``capability.py`` defining
``CAPABILITY = Capability(...)`` (see :mod:`cmrlib.contract`). Nothing else lists
capabilities: the CLI sub-commands, ``cmr train/evaluate NAME``, the architecture registry,
``cmr run``'s step order and the Slicer panels' lists come from :func:`capabilities`.
Adding a capability means adding its package; no central list changes.
"""
from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache
from pathlib import Path

from .contract import Capability, Step

__all__ = ["Capability", "Step", "capabilities", "capability", "trainers", "architecture_modules",
           "for_panel", "PLANNED"]

#: Capabilities announced for coming versions, command → (title, Slicer module), for "not in
#: this version" lines only. A planned capability is registered by landing its package; its
#: entry here is then dropped (a test checks that no command is in both).
PLANNED: dict[str, tuple[str, str]] = {}


@lru_cache(maxsize=1)
def capabilities() -> tuple[Capability, ...]:
    """Every registered capability, sorted by command name."""
    import cmrlib
    found = []
    for info in pkgutil.iter_modules(cmrlib.__path__):
        # a package is a capability when it has capability.py; looked up as a file so that
        # packages that are none (io, models, t1, and mrml, which needs Slicer's vtk) are not imported
        if not info.ispkg or not any((Path(p) / info.name / "capability.py").is_file() for p in cmrlib.__path__):
            continue
        module = importlib.import_module(f"cmrlib.{info.name}.capability")
        record = getattr(module, "CAPABILITY", None)
        if not isinstance(record, Capability):
            raise TypeError(f"cmrlib.{info.name}.capability.CAPABILITY must be a cmrlib.contract.Capability")
        found.append(record)
    commands = [c.command for c in found]
    if len(set(commands)) != len(commands):
        raise ValueError(f"two capabilities register the same command: {sorted(commands)}")
    return tuple(sorted(found, key=lambda c: c.command))


def capability(command: str) -> Capability:
    """The capability registered as ``cmr <command>``; KeyError if none."""
    for cap in capabilities():
        if cap.command == command:
            return cap
    raise KeyError(command)


def for_panel(panel: str) -> list[Capability]:
    """The capabilities the Slicer module ``panel`` shows."""
    return [c for c in capabilities() if c.panel == panel]


def trainers() -> dict[str, str]:
    """Model name → module implementing ``cmr train NAME`` / ``cmr evaluate NAME``."""
    out: dict[str, str] = {}
    for cap in capabilities():
        for model, module in cap.trainers.items():
            if model in out:
                raise ValueError(f"model {model!r} has two trainers: {out[model]} and {module}")
            out[model] = module
    return out


def architecture_modules() -> list[str]:
    """Modules whose import registers network architectures (for the model registry)."""
    return [m for cap in capabilities() for m in cap.architectures]

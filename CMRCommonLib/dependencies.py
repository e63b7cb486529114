"""Python package dependencies of the SlicerCMR extension (Qt-free).

The extension has one requirements file, :data:`REQUIREMENTS_FILE`
(``CMRCommonLib/Resources/SlicerCMR-requirements.txt``, one requirement per line, PEP 508
syntax, ``#`` comments): the third-party packages that ``cmrlib`` imports at run time
(a test walks cmrlib's imports and checks the list), except those below. All four modules
check it before their first scan or load and offer to install what is missing.

What the requirements file must not list:

* ``torch`` -- it comes from the PyTorch extension (SlicerPyTorch, module ``PyTorchUtils``),
  which installs the build matching the user's GPU driver; a plain pip request would pull a
  different build. :func:`torch_status` says whether torch and the extension are there, and
  the panel asks ``PyTorchUtils`` to install torch (:data:`TORCH_REQUIREMENT`) before the
  first worker run, as SlicerTotalSegmentator and SlicerMONAIAuto3DSeg do.
* ``slicer-core``, ``vtk`` and any Qt binding -- the Slicer application ships its own VTK
  and Qt; installing another copy into Slicer's Python breaks the application.

This module only reads and checks; the confirmation dialogs and the installs
(``slicer.packaging.pip_ensure`` on Slicer >= 5.12, else ``slicer.util.pip_install``;
``PyTorchUtils.PyTorchUtilsLogic().installTorch``) live in :mod:`CMRCommonLib.widgets`.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

#: Distributions a module requirements file must never list, with the reason shown to the user.
FORBIDDEN: dict[str, str] = {
    "torch": ("PyTorch is provided by the PyTorch extension (SlicerPyTorch), "
              "which installs the build that matches the GPU driver"),
    "torchvision": ("the PyPI torchvision wheel is a CUDA build that does not load with a CPU torch; "
                    "cmrlib does not use it"),
    "slicer-core": "the Slicer application provides the MRML libraries",
    "vtk": "the Slicer application ships its own VTK",
    "pyside6": "the Slicer application ships its own Qt",
    "pyside6-essentials": "the Slicer application ships its own Qt",
    "pyside6-addons": "the Slicer application ships its own Qt",
    "shiboken6": "the Slicer application ships its own Qt",
    "pyqt5": "the Slicer application ships its own Qt",
    "pyqt6": "the Slicer application ships its own Qt",
    "pyside2": "the Slicer application ships its own Qt",
}


class RequirementsFileError(ValueError):
    """A requirements file cannot be parsed; the message names the file and line."""


@dataclass(frozen=True)
class MissingRequirement:
    """A requirement that the running Python does not satisfy."""

    requirement: Requirement
    installed_version: str | None  #: None when the distribution is not installed at all

    def __str__(self) -> str:
        found = "not installed" if self.installed_version is None else f"found {self.installed_version}"
        return f"{self.requirement} ({found})"


#: The extension's requirements file (installed with CMRCommonLib, see the top CMakeLists.txt).
REQUIREMENTS_FILE = Path(__file__).resolve().parent / "Resources" / "SlicerCMR-requirements.txt"
#: torch as cmrlib needs it (pyproject.toml), installed through the PyTorch extension.
TORCH_REQUIREMENT = "torch>=2.2"
#: The PyTorch extension's Python module.
PYTORCH_UTILS_MODULE = "PyTorchUtils"
PYTORCH_EXTENSION_MISSING = (
    "SlicerCMR runs its networks and the T1 fit with PyTorch, which comes from the PyTorch extension: "
    "install 'PyTorch' from the Extensions Manager (View > Extensions Manager) and restart Slicer. "
    "Loading and viewing studies works without it.")


def parse_requirements(lines: Iterable[str], source: str = "<requirements>") -> list[Requirement]:
    """Parse requirement lines: blank lines, ``#`` comments and pip options (``-r``, ``-c``,
    ``--index-url`` ...) are skipped; an inline `` # comment`` is removed.

    Raises :class:`RequirementsFileError` naming ``source`` and the line number.
    """
    requirements: list[Requirement] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.split(" #", 1)[0].split("\t#", 1)[0].strip()
        if not line or line.startswith("#") or line.startswith("-"):
            continue
        try:
            requirements.append(Requirement(line))
        except InvalidRequirement as exc:
            raise RequirementsFileError(
                f"{source}, line {number}: expected a PEP 508 requirement such as 'monai>=1.3'; "
                f"found {line!r} ({exc})") from exc
    return requirements


def read_requirements(path: str | Path) -> list[Requirement]:
    """Read a module requirements file (see :func:`parse_requirements`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RequirementsFileError(f"cannot read requirements file {path}: {exc.strerror or exc}") from exc
    return parse_requirements(text.splitlines(), source=str(path))


def forbidden_requirements(requirements: Iterable[Requirement]) -> list[tuple[Requirement, str]]:
    """The requirements that must not be installed into Slicer's Python, with the reason."""
    return [(r, FORBIDDEN[canonicalize_name(r.name)]) for r in requirements
            if canonicalize_name(r.name) in FORBIDDEN]


def _installed_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def missing_requirements(
    requirements: Iterable[Requirement],
    *,
    environment: Mapping[str, str] | None = None,
    version_of: Callable[[str], str | None] = _installed_version,
) -> list[MissingRequirement]:
    """The requirements not satisfied by the installed distributions.

    A requirement whose environment marker does not apply (e.g. ``; sys_platform == 'win32'``
    on Linux) is satisfied. Pre-release installs satisfy a specifier (Slicer nightly builds
    ship some). Extras are not followed: ``pkg[extra]`` is satisfied by ``pkg`` itself.
    ``version_of(name)`` returns the installed version or None (injectable for tests).
    """
    importlib.invalidate_caches()  # see distributions pip has just installed into this process's paths
    env = dict(default_environment())
    if environment:
        env.update(environment)
    missing: list[MissingRequirement] = []
    for req in requirements:
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        installed = version_of(req.name)
        if installed is None:
            missing.append(MissingRequirement(req, None))
            continue
        if not req.specifier:
            continue
        try:
            ok = req.specifier.contains(Version(installed), prereleases=True)
        except InvalidVersion:
            ok = False
        if not ok:
            missing.append(MissingRequirement(req, installed))
    return missing


@dataclass(frozen=True)
class TorchStatus:
    """Whether torch can run SlicerCMR's work in this Slicer."""

    extension: bool  #: the PyTorch extension (``PyTorchUtils``) is installed
    version: str | None  #: installed torch version, None when torch is not installed

    @property
    def satisfied(self) -> bool:
        """torch is installed in a version :data:`TORCH_REQUIREMENT` accepts."""
        if self.version is None:
            return False
        try:
            return Requirement(TORCH_REQUIREMENT).specifier.contains(Version(self.version), prereleases=True)
        except InvalidVersion:
            return False

    def problem(self) -> str:
        """'' when torch is usable, else what the user must do."""
        if self.satisfied:
            return ""
        if not self.extension:
            if self.version is None:
                return PYTORCH_EXTENSION_MISSING
            return (f"torch {self.version} is installed but SlicerCMR needs {TORCH_REQUIREMENT}; "
                    + PYTORCH_EXTENSION_MISSING)
        if self.version is None:
            return ("PyTorch is not installed yet: the PyTorch extension installs it (open the 'PyTorch Utils' "
                    "module, or confirm the installation SlicerCMR offers before its first computation).")
        return (f"torch {self.version} is installed but SlicerCMR needs {TORCH_REQUIREMENT}: reinstall it from "
                f"the 'PyTorch Utils' module with the version requirement '{TORCH_REQUIREMENT[len('torch'):]}'.")


def torch_status(*, find_module: Callable[[str], object | None] = importlib.util.find_spec,
                 version_of: Callable[[str], str | None] = _installed_version) -> TorchStatus:
    """Whether the PyTorch extension and torch are installed (imports neither).
    ``find_module`` and ``version_of`` are injectable for tests."""
    importlib.invalidate_caches()
    return TorchStatus(extension=find_module(PYTORCH_UTILS_MODULE) is not None, version=version_of("torch"))


def pip_arguments(missing: Iterable[MissingRequirement]) -> list[str]:
    """Requirement strings to hand to ``pip install`` (one list item per requirement)."""
    return [str(m.requirement) for m in missing]


def describe_missing(missing: Iterable[MissingRequirement]) -> str:
    """One line per missing requirement, for the confirmation dialog's details."""
    return "\n".join(f"- {m}" for m in missing)

"""Who may import whom (docs/architecture.md): no import runs back up a layer.

Layers of ``cmrlib``, bottom to top:
0 core        errors, atomic, progress, device, image, metrics
1 foundations io, t1, models, resources, aha, contract (the capability record), capabilities (the registry)
2 phantom
3 capabilities  every package with a ``capability.py`` other than phantom (motion, …)
4 orchestration study, report, batch
5 cli
``cmrlib.mrml`` (the MRML adapters) may import layers 0–1 and is imported by nothing in cmrlib;
only it imports slicer / vtk; nothing in cmrlib imports Qt or the Slicer modules.
Capability packages never import each other: results travel through `cmr run`'s context.
Imports are read statically (every ``import`` statement, also inside functions).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "cmrlib"
LAYERS = {
    "errors": 0, "atomic": 0, "progress": 0, "device": 0, "image": 0, "metrics": 0, "__init__": 0,
    "io": 1, "t1": 1, "models": 1, "resources": 1, "contract": 1, "capabilities": 1, "aha": 1,
    "planes": 0, "augment": 1, "warp": 0, "registration": 1,
    "phantom": 2,
    "study": 4, "report": 4, "batch": 4,
    "cli": 5,
}
CAPABILITY_PACKAGES = sorted(p.parent.name for p in PKG.glob("*/capability.py") if p.parent.name != "phantom")
FORBIDDEN_OUTSIDE_MRML = ("slicer", "vtk", "qt", "ctk", "PySide6", "PyQt5", "CMRCommonLib")


def unit_of(module: str) -> str:
    """First component below cmrlib: 'cmrlib.motion.cli' → 'motion'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def layer_of(unit: str) -> int:
    if unit in CAPABILITY_PACKAGES:
        return 3
    if unit == "mrml":
        return 1
    if unit not in LAYERS:
        raise AssertionError(f"cmrlib.{unit} has no layer: add it to docs/architecture.md and this test")
    return LAYERS[unit]


def imports_of(path: Path, root: Path = ROOT) -> list[tuple[str, int]]:
    """(absolute module, line) of every import in ``path`` (a file below ``root``/cmrlib)."""
    package = list(path.relative_to(root).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
                if node.module is None:  # from . import x, y: submodules, or names of the package
                    folder = root.joinpath(*mod.split("."))
                    found += [(f"{mod}.{a.name}" if (folder / a.name).is_dir() or (folder / f"{a.name}.py").is_file()
                               else mod, node.lineno) for a in node.names]
                    continue
            else:
                mod = node.module or ""
            found.append((mod, node.lineno))
    return found


def violations(path: Path, root: Path = ROOT) -> list[str]:
    """Every import of ``path`` that breaks a layer rule, as 'file:line imports X: why'."""
    me = unit_of(".".join(path.relative_to(root).with_suffix("").parts))
    mine = layer_of(me)
    bad = []
    for module, line in imports_of(path, root):
        where = f"{path.relative_to(root)}:{line} imports {module}"
        top = module.split(".")[0]
        if me != "mrml" and top in FORBIDDEN_OUTSIDE_MRML:
            bad.append(f"{where}: only cmrlib.mrml may import {top}")
        if top != "cmrlib":
            continue
        other = unit_of(module)
        if other == me:
            continue
        if other == "mrml":
            bad.append(f"{where}: nothing in cmrlib imports the MRML adapters")
        elif layer_of(other) > mine:
            bad.append(f"{where}: layer {mine} ({me}) must not import layer {layer_of(other)} ({other})")
        elif mine == 3 and layer_of(other) == 3:
            bad.append(f"{where}: capability packages never import each other")
        elif me == "mrml" and layer_of(other) > 1:
            bad.append(f"{where}: the adapters use core and foundation layers only")
    return bad


SOURCES = sorted(p for p in PKG.rglob("*.py") if "__pycache__" not in p.parts)


@pytest.mark.parametrize("path", SOURCES, ids=[str(p.relative_to(PKG)) for p in SOURCES])
def test_no_import_runs_up_a_layer(path: Path):
    assert violations(path) == []


def test_the_rules_catch_violations(tmp_path):
    """The checker itself finds an upward import, a capability-to-capability import, a Qt
    import and an import of the adapters, relative or absolute, also inside a function."""
    probe = tmp_path / "cmrlib" / "phantom" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text("def f():\n    from ..motion import pipeline\n    import qt\n")
    assert len(violations(probe, tmp_path)) == 2
    probe = tmp_path / "cmrlib" / "motion" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text("from cmrlib.phantom import truth\nfrom cmrlib.study import run_study\n"
                     "from cmrlib.mrml import new_scene\nfrom cmrlib.t1 import fit\n")
    found = violations(probe, tmp_path)
    assert len(found) == 2 and "study" in found[0] and "MRML" in found[1]

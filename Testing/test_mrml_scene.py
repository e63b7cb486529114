"""The headless scene factory and the layering rules of cmrlib.mrml (docs/architecture.md "Layers")."""
from __future__ import annotations

import gc
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import slicer  # plain import: a missing slicer-core wheel must fail, not skip
import vtk

from cmrlib import Image
from cmrlib.mrml import LPS_TO_RAS, lps_to_ras, module_logic, new_scene, ras_to_lps, volume_node_from_image

pytestmark = pytest.mark.mrml

ROOT = Path(__file__).resolve().parents[1]
CMRLIB = ROOT / "cmrlib"


def test_new_scene_has_the_module_logics_and_default_colours():
    scene = new_scene()
    assert scene.IsA("vtkMRMLScene")
    expected = {"Colors": "vtkMRMLColorLogic", "Volumes": "vtkSlicerVolumesLogic",
                "Segmentations": "vtkSlicerSegmentationsModuleLogic", "Markups": "vtkSlicerMarkupsLogic",
                "Sequences": "vtkSlicerSequencesLogic"}
    for name, class_name in expected.items():
        logic = module_logic(scene, name)
        assert logic is not None and logic.IsA(class_name), name
        assert logic.GetMRMLScene() is scene
    # default colour tables that volume display nodes refer to
    assert scene.GetNodeByID("vtkMRMLColorTableNodeGrey") is not None
    assert scene.GetNodeByID("vtkMRMLColorTableNodeLabels") is not None
    # node classes registered by the module logics can be created by class name
    for class_name in ("vtkMRMLMarkupsFiducialNode", "vtkMRMLSequenceNode", "vtkMRMLSequenceBrowserNode",
                       "vtkMRMLSegmentationNode"):
        assert scene.AddNewNodeByClass(class_name) is not None, class_name


def test_each_scene_has_its_own_logics_and_a_bare_scene_none():
    a, b = new_scene(), new_scene()
    assert module_logic(a, "Markups") is not module_logic(b, "Markups")
    assert module_logic(slicer.vtkMRMLScene(), "Markups") is None


def test_scene_and_logics_are_freed_when_the_scene_is_dropped():
    scene = new_scene()
    volume_node_from_image(scene, Image(np.zeros((2, 3, 4), np.float32)), "v")
    deleted: list[bool] = []
    scene.AddObserver(vtk.vtkCommand.DeleteEvent, lambda *_: deleted.append(True))
    logic = module_logic(scene, "Markups")
    del scene
    gc.collect()
    assert deleted == [True]  # no reference cycle keeps scenes (and their image data) alive
    assert logic.GetMRMLScene() is None


def test_lps_ras_conversion_is_a_flip_of_x_and_y():
    points = np.array([[1.0, 2.0, 3.0], [-4.5, 0.25, -7.0]])
    np.testing.assert_array_equal(lps_to_ras(points), points * [-1, -1, 1])
    np.testing.assert_array_equal(ras_to_lps(lps_to_ras(points)), points)
    np.testing.assert_array_equal(LPS_TO_RAS @ LPS_TO_RAS, np.eye(3))


def test_import_cmrlib_does_not_load_slicer_or_vtk():
    code = ("import sys, cmrlib; "
            "bad = [m for m in ('slicer', 'vtk', 'vtkmodules', 'cmrlib.mrml') if m in sys.modules]; "
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == ""


_IMPORT = re.compile(r"^\s*(?:import|from)\s+([\w.]+)", re.MULTILINE)


def _imports(path: Path) -> set[str]:
    return set(_IMPORT.findall(path.read_text(encoding="utf-8")))


def test_only_cmrlib_mrml_imports_slicer_or_vtk_and_nothing_imports_it():
    offenders = []
    for path in CMRLIB.rglob("*.py"):
        if "mrml" in path.relative_to(CMRLIB).parts[:1]:
            continue
        for module in _imports(path):
            top = module.split(".")[0]
            if top in ("slicer", "vtk", "vtkmodules", "qt", "ctk") or "mrml" in module.split("."):
                offenders.append(f"{path.relative_to(ROOT)}: {module}")
    assert offenders == []


def test_cmrlib_mrml_imports_no_qt():
    qt_like = ("qt", "ctk", "PySide2", "PySide6", "PyQt5", "PyQt6", "slicer.util", "slicer.app")
    found = [f"{p.name}: {m}" for p in (CMRLIB / "mrml").rglob("*.py") for m in _imports(p)
             if m.split(".")[0] in qt_like or m in qt_like]
    assert found == []

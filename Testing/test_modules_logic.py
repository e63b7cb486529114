"""The modules' Qt-free logic, headless on the slicer-core wheel: the CMR study loader
(scan, table rows, load as volume / sequence with geometry and per-frame times) and each
``CMR<Name>Lib.logic`` class. The same checks (CMRCommonLib.testing) run inside Slicer as
the modules' self-tests.
"""
from __future__ import annotations

import importlib
import sys
import unittest
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES = ("CMRQuality", "CMRMotion", "CMRStressT1", "CMRSegmentation")
for _p in (ROOT, *(ROOT / m for m in MODULES)):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

pytest.importorskip("slicer", reason="needs the slicer-core wheel (test extra)")
pytestmark = pytest.mark.mrml

from cmrlib.errors import DicomError, InputError  # noqa: E402
from cmrlib.mrml import new_scene  # noqa: E402

from CMRCommonLib import testing  # noqa: E402
from CMRCommonLib.module_logic import CMRModuleLogicBase  # noqa: E402
from CMRCommonLib.study_loader import SERIES_COLUMNS, StudyLoader, nodes_of_kind, series_kind_of  # noqa: E402

LOGIC_CLASSES = {
    "CMRQuality": ("CMRQualityLib.logic", "QualityLogic"),
    "CMRMotion": ("CMRMotionLib.logic", "MotionLogic"),
    "CMRStressT1": ("CMRStressT1Lib.logic", "StressT1Logic"),
    "CMRSegmentation": ("CMRSegmentationLib.logic", "SegmentationLogic"),
}


def logic_class(module: str) -> type:
    path, name = LOGIC_CLASSES[module]
    return getattr(importlib.import_module(path), name)


@pytest.fixture(scope="module")
def synthetic_study(tmp_path_factory) -> testing.SyntheticStudy:
    return testing.write_synthetic_study(tmp_path_factory.mktemp("synthetic") / "study")


@pytest.fixture
def tc() -> unittest.TestCase:
    return unittest.TestCase()


@pytest.mark.parametrize("module", MODULES)
def test_module_logic_scans_and_loads_the_synthetic_study(module, synthetic_study, tc):
    """The checks the module's self-test runs in Slicer, here on a headless scene."""
    scene = new_scene()
    logic = logic_class(module)(scene)
    assert isinstance(logic, CMRModuleLogicBase) and logic.MODULE_NAME == module
    testing.check_scan(tc, logic, synthetic_study)
    rows = logic.series_rows()
    assert rows[0].kind in logic.USED_KINDS  # every module uses at least one kind of the study
    loaded = testing.check_load(tc, logic, synthetic_study)
    assert {k: v.is_sequence for k, v in loaded.items()} == {"lge_psir": False, "irw": True, "cine": True}
    # the sequence browser shows the first frame through its proxy volume
    irw = loaded["irw"]
    assert irw.browser_node is not None and irw.display_node.IsA("vtkMRMLScalarVolumeNode")
    testing.check_volume_node(tc, irw.display_node, 1, frame=0)


def test_motion_logic_reads_inversion_times_and_refuses_other_inputs(synthetic_study):
    scene = new_scene()
    logic = logic_class("CMRMotion")(scene)
    logic.scan(synthetic_study.folder)
    by_kind = {s.kind: i for i, s in enumerate(logic.loader.series)}
    irw = logic.load(by_kind["irw"])
    assert logic.irw_sequences() == [irw.node]
    assert logic.inversion_times_ms(irw.node) == sorted(testing.SHMOLLI_TIS_MS)
    cine = logic.load(by_kind["cine"])
    with pytest.raises(InputError, match="expected an IRW .* is cine"):
        logic.inversion_times_ms(cine.node)
    lge = logic.load(by_kind["lge_psir"])
    with pytest.raises(InputError, match="expected an IRW sequence node; got vtkMRMLScalarVolumeNode"):
        logic.inversion_times_ms(lge.node)
    with pytest.raises(InputError, match="got nothing"):
        logic.inversion_times_ms(None)


def test_module_input_finders_on_a_study_with_every_kind(study_dir):
    """Conftest study: cine, ShMOLLI, MOLLI 5(3)3, T1 map, LGE PSIR + magnitude."""
    scene = new_scene()
    seg = logic_class("CMRSegmentation")(scene)
    scan = seg.scan(study_dir)
    kinds = [s.kind for s in scan.series]
    for index in range(len(kinds)):
        seg.load(index)
    quality = logic_class("CMRQuality")(scene)
    stress = logic_class("CMRStressT1")(scene)
    motion = logic_class("CMRMotion")(scene)
    assert [series_kind_of(n) for n in quality.lge_volumes()] == ["lge_psir", "lge_magnitude"]
    assert [series_kind_of(n) for n in seg.lge_volumes()] == ["lge_psir", "lge_magnitude"]
    assert [series_kind_of(n) for n in seg.cine_sequences()] == ["cine"]
    assert [series_kind_of(n) for n in stress.t1_map_volumes()] == ["t1map"]
    assert len(motion.irw_sequences()) == kinds.count("irw") == 2
    molli = next(n for n in motion.irw_sequences() if "MOLLI native" in n.GetName())
    assert motion.inversion_times_ms(molli) == sorted([120.0, 1020.0, 1920.0, 2820.0, 3720.0, 200.0, 1100.0, 2000.0])
    # module-specific ordering of the table (each logic instance keeps its own scan)
    assert motion.series_rows() == [] and stress.series_rows() == []
    motion.scan(study_dir)
    assert [r.kind for r in motion.series_rows()][:3] == ["irw", "irw", "t1map"]
    stress.scan(study_dir)
    assert [r.kind for r in stress.series_rows()][:3] == ["t1map", "irw", "irw"]


def test_series_rows_texts(synthetic_study):
    loader = StudyLoader(new_scene(), used_kinds=("cine",))
    assert loader.rows() == [] and loader.series == [] and loader.skipped_summary() == ""
    loader.scan(synthetic_study.folder)
    rows = loader.rows()
    assert [r.kind for r in rows] == ["cine", "irw", "lge_psir"]
    assert [r.used_by_module for r in rows] == [True, False, False]
    by_kind = {r.kind: r for r in rows}
    assert by_kind["irw"].cells() == ("IRW (ShMOLLI)", "ShMOLLI", "3", "1 x 7", "100, 180, 260, 1100, 2100, 3100, 4100")
    assert by_kind["cine"].cells() == ("Cine", "cine SAX", "7", "2 x 5", "")
    assert by_kind["lge_psir"].cells()[0] == "LGE PSIR"
    assert len(by_kind["irw"].cells()) == len(SERIES_COLUMNS)
    assert "Classified as irw: 7 distinct InversionTime values" in by_kind["irw"].tooltip


def test_loader_errors_leave_the_scene_untouched(tmp_path, synthetic_study):
    scene = new_scene()
    with pytest.raises(InputError, match="needs an MRML scene"):
        StudyLoader(None)
    loader = StudyLoader(scene)
    with pytest.raises(InputError, match="no DICOM folder has been scanned yet"):
        loader.series_at(0)
    with pytest.raises(InputError, match="expected an existing DICOM folder"):
        loader.scan(tmp_path / "nope")
    with pytest.raises(InputError, match="expected an existing DICOM folder"):
        loader.scan("")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not DICOM")
    with pytest.raises(DicomError, match="no DICOM image found"):
        loader.scan(tmp_path / "empty")
    loader.scan(synthetic_study.folder)
    with pytest.raises(InputError, match="series index 7 out of range: the scan has 3 series"):
        loader.series_at(7)
    n_nodes = scene.GetNumberOfNodes()
    # a series with a problem is listed, greyed, and refused on load
    broken = loader.series_at(0)
    broken.problems.append("mixed matrix sizes {(12, 10): 6, (8, 8): 1}")
    try:
        row = next(r for r in loader.rows() if r.series_index == 0)
        assert not row.loadable and "Cannot be loaded: mixed matrix sizes" in row.tooltip
        with pytest.raises(InputError, match="cannot be loaded: mixed matrix sizes"):
            loader.load(0)
    finally:
        broken.problems.clear()
    assert scene.GetNumberOfNodes() == n_nodes


def test_skipped_files_are_summarised(tmp_path):
    study = testing.write_synthetic_study(tmp_path / "study")
    (study.folder / "README.txt").write_text("scanner export notes")
    (study.folder / "DICOMDIR.bak").write_bytes(b"\x00" * 10)
    loader = StudyLoader(new_scene())
    loader.scan(study.folder)
    summary = loader.skipped_summary()
    assert summary.startswith("2 file(s) skipped (")
    details = loader.skipped_details().splitlines()
    assert len(details) == 2 and any("README.txt" in d for d in details)


def test_loading_twice_gives_unique_names_and_progress(synthetic_study):
    scene = new_scene()
    loader = StudyLoader(scene)
    phases: list[str] = []
    loader.scan(synthetic_study.folder, progress=lambda p, d, t, m="": phases.append(p))
    assert "scan" in phases
    index = next(i for i, s in enumerate(loader.series) if s.kind == "lge_psir")
    first = loader.load(index, progress=lambda p, d, t, m="": phases.append(p))
    second = loader.load(index)
    assert "load" in phases
    assert first.node.GetName() != second.node.GetName()
    assert first.node.GetName().startswith("5: LGE PSIR") and second.node.GetName().startswith("5: LGE PSIR")
    assert len(nodes_of_kind(scene, ["lge_psir"], "vtkMRMLScalarVolumeNode")) == 2
    custom = loader.load(index, name="LGE for review")
    assert custom.node.GetName() == "LGE for review"


def test_series_kind_of_other_nodes():
    scene = new_scene()
    plain = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "not from the loader")
    assert series_kind_of(plain) == "" and series_kind_of(None) == ""
    plain.SetAttribute("CMR.kind", "irw")  # typed by a user: plain text, not JSON
    assert series_kind_of(plain) == "irw"
    plain.SetAttribute("CMR.kind", "42")  # JSON, but not a kind
    assert series_kind_of(plain) == ""


def test_capabilities_come_from_the_registry():
    """The logic's capability lists are the registry's (CMRCommonLib.help_text), not a list of its own."""
    from cmrlib.capabilities import PLANNED, for_panel

    from CMRCommonLib import help_text

    for module in MODULES:
        logic = logic_class(module)(new_scene())
        assert not hasattr(logic, "PANEL_COMMANDS")
        contents = logic.capabilities()
        assert contents.in_panel + contents.cli_only == for_panel(module)
        assert contents.planned == [t for t, panel in PLANNED.values() if panel == module]
        assert logic.capabilities_text() == help_text.summary_text(module)
    seg = logic_class("CMRSegmentation")(new_scene())
    assert [c.command for c in seg.capabilities().in_panel] == ["landmarks", "scar", "segment"]
    assert seg.capabilities().planned == []  # scar has landed
    assert seg.capabilities_text().startswith("Now: load a CMR study")
    assert "In this panel: MOLLI/ShMOLLI T1" in logic_class("CMRMotion")(new_scene()).capabilities_text()


def test_module_logic_needs_a_module_name():
    class Nameless(CMRModuleLogicBase):
        pass

    with pytest.raises(TypeError, match="must set MODULE_NAME"):
        Nameless(new_scene())


SELF_TEST_RUNNER = '''
import sys, types, typing, unittest, importlib
modules = sys.argv[1:]
import slicer, slicer.util
from cmrlib.mrml import new_scene

# Stand-ins for the GUI-side Slicer API the module scripts and CMRCommonLib.module_base import
# (only what they touch).
slm = types.ModuleType("slicer.ScriptedLoadableModule")
class ScriptedLoadableModule:
    def __init__(self, parent):
        self.parent = parent
        self.moduleName = type(self).__name__
class ScriptedLoadableModuleWidget:
    pass
class ScriptedLoadableModuleLogic:
    def __init__(self):
        pass
class ScriptedLoadableModuleTest(unittest.TestCase):
    def delayDisplay(self, message):
        pass
for cls in (ScriptedLoadableModule, ScriptedLoadableModuleWidget, ScriptedLoadableModuleLogic,
            ScriptedLoadableModuleTest):
    setattr(slm, cls.__name__, cls)
sys.modules["slicer.ScriptedLoadableModule"] = slm
i18n = types.ModuleType("slicer.i18n")
i18n.tr = lambda text: text
i18n.translate = lambda context, text: text
sys.modules["slicer.i18n"] = i18n
wrapper = types.ModuleType("slicer.parameterNodeWrapper")
wrapper.parameterNodeWrapper = lambda cls: cls
sys.modules["slicer.parameterNodeWrapper"] = wrapper
slicer.util.VTKObservationMixin = type("VTKObservationMixin", (), {})
hooks = []
app = types.SimpleNamespace(connect=lambda signal, slot: hooks.append(signal))

from CMRCommonLib import help_text, module_base
from CMRCommonLib.module_logic import CMRModuleLogicBase

#: the logic-side self-tests (the others need the application's widgets)
LOGIC_TESTS = {"CMRMotion": ["test_CMRMotionInputs", "test_CMRMotionCorrectAndMap"],
               "CMRSegmentation": ["test_CMRSegmentationQCDAdapter", "test_CMRSegmentationLandmarksLive",
                                   "test_CMRSegmentationScarAdapter", "test_CMRSegmentationScarWorker"],
               "CMRStressT1": ["test_CMRStressT1Adapter", "test_CMRStressT1Worker"],
               "CMRQuality": ["test_CMRQualityAdapter", "test_CMRQualityWorker", "test_CMRQualityLabelling",
                              "test_CMRQualityLAWorker"]}
OWN_PARAMETERS = {"CMRMotion": {"irwSequence", "method"},
                  "CMRStressT1": {"restMap", "stressMap", "restMask", "stressMask", "ahaSegments", "method", "reverse",
                                  "force"},
                  "CMRSegmentation": {"qcdInput", "qcdThreshold", "landmarksInput", "landmarksMask", "landmarksLevel",
                                      "landmarksLiveUpdate", "scarLge", "scarCine", "scarMethod", "scarMask",
                                      "scarSegments", "scarLgeCentres", "scarCineCentres", "scarForce"},
                  "CMRQuality": {"qualityInput", "qualityThreshold", "qualityAllSlices", "qualityHideNonLV",
                                 "qualityWatch", "laInput", "laCustomThreshold", "laThreshold", "labellingPool",
                                 "labellingRater"}}

for name in modules:
    module = importlib.import_module(name)
    parent = types.SimpleNamespace()
    slicer.app = app  # only while the module is constructed (the worker runner looks for the application)
    getattr(module, name)(parent)
    del slicer.app
    assert parent.categories == ["Cardiac"], parent.categories
    assert parent.title.startswith("CMR "), parent.title
    assert parent.helpText == help_text.help_html(name), parent.helpText
    assert parent.acknowledgementText.endswith(module_base.ACKNOWLEDGEMENT)
    # the typed parameter node: the shared parameters from CMRPanelParameters, then the module's
    hints = typing.get_type_hints(getattr(module, name + "ParameterNode"))
    assert set(hints) == {"studyFolder", "device"} | OWN_PARAMETERS.get(name, set()), hints
    # the Slicer logic finds the module's Qt-free logic by name
    slicer.mrmlScene = new_scene()
    logic = getattr(module, name + "Logic")()
    assert isinstance(logic.impl, CMRModuleLogicBase) and logic.impl.MODULE_NAME == name
    # unittest (slicer_add_python_unittest) collects only the module's own TestCase
    cases = [t for t in unittest.TestLoader().loadTestsFromModule(module)]
    assert {type(c).__name__ for suite in cases for c in suite} <= {name + "Test"}, cases
    test = getattr(module, name + "Test")()
    for method in ["test_LoadStudy", *LOGIC_TESTS.get(name, [])]:
        test.setUp()
        try:
            getattr(test, method)()
        except unittest.SkipTest:  # e.g. the QCD weights are not installed
            pass
    print("passed", name)
assert hooks == ["startupCompleted()"], hooks  # CMRQuality registers its sample data at startup
'''


def test_module_self_tests_run_headless(tmp_path):
    """The module classes on their CMRCommonLib bases and the logic part of each module's
    in-Slicer self-tests (the shared test_LoadStudy, CMRMotion's, CMRStressT1's and the scar worker runs),
    on a headless scene with the GUI-side Slicer classes stood in for (in a child interpreter,
    so the stand-ins never leak into other tests)."""
    import os
    import subprocess

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), *(str(ROOT / m) for m in MODULES)]))
    proc = subprocess.run([sys.executable, "-c", SELF_TEST_RUNNER, *MODULES], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert proc.stdout.split() == [w for m in MODULES for w in ("passed", m)]

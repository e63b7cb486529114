"""Packaging checks of the Slicer extension (no Slicer needed).

* each module's CMakeLists.txt lists every script and resource of its folder, and only
  files that exist; resources installed into the shared ``qt-scripted-modules/Resources``
  folder do not collide between modules;
* the top-level CMakeLists.txt has the extension metadata, one add_subdirectory per
  module, and installs cmrlib/ (with its resources/) and CMRCommonLib/ (its globs cover every
  file of those folders);
* every ``.ui`` is well-formed XML using only Qt / CTK / qMRML / qSlicer classes, declares
  its ctk/qMRML classes as custom widgets, and holds every widget name the Python code looks
  up and every parameter of the module's parameter node; with PySide6 it loads in QUiLoader;
* the module scripts compile, set the ScriptedLoadableModule metadata, and keep Qt out of the
  Lib packages;
* the extension's one requirements file lists exactly the third-party packages cmrlib imports
  at run time (torch excepted: it comes from the PyTorch extension), never torch / slicer-core /
  vtk / Qt, with pyproject.toml's version ranges.
"""
from __future__ import annotations

import ast
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
MODULES = ("CMRQuality", "CMRMotion", "CMRStressT1", "CMRSegmentation")
for _p in (ROOT, *(ROOT / m for m in MODULES)):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from CMRCommonLib.dependencies import (REQUIREMENTS_FILE, TORCH_REQUIREMENT, forbidden_requirements,  # noqa: E402
                                       missing_requirements, read_requirements)

#: Files in a module folder that are not installed resources.
NOT_RESOURCES = {"CMakeLists.txt"}
QT_MODULES = {"qt", "ctk", "PythonQt", "PySide2", "PySide6", "PyQt5", "PyQt6", "shiboken6",
              "slicer.ScriptedLoadableModule", "slicer.parameterNodeWrapper"}


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------
def _strip_cmake_comments(text: str) -> str:
    return "\n".join(line.split("#", 1)[0] if not line.lstrip().startswith("#") else "" for line in text.splitlines())


def module_files(module: str) -> list[str]:
    """Files of the module folder, relative, without caches."""
    folder = ROOT / module
    return sorted(str(p.relative_to(folder)).replace(os.sep, "/") for p in folder.rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")


#: Stand-ins for Slicer's CMake API: record what a module's CMakeLists.txt asks for.
CMAKE_STUBS = """
macro(slicerMacroBuildScriptedModule)
  cmake_parse_arguments(_ARG "WITH_GENERIC_TESTS" "NAME" "SCRIPTS;RESOURCES" ${ARGN})
  message("BUILD|${_ARG_NAME}|${_ARG_SCRIPTS}|${_ARG_RESOURCES}|${_ARG_WITH_GENERIC_TESTS}")
endmacro()
function(slicer_add_python_unittest)
  message("UNITTEST|${ARGN}")
endfunction()
set(BUILD_TESTING ON)
"""


def top_level_module_macro() -> str:
    """The ``slicercmr_add_scripted_module`` macro of the top-level CMakeLists.txt."""
    text = (ROOT / "CMakeLists.txt").read_text()
    match = re.search(r"^macro\(slicercmr_add_scripted_module .*?^endmacro\(\)", text, flags=re.S | re.M)
    assert match, "the top-level CMakeLists.txt defines slicercmr_add_scripted_module"
    return match.group(0)


_CMAKE_RUNS: dict[str, dict[str, list[str]]] = {}


def module_cmake(module: str) -> dict[str, list[str]]:
    """Run the module's CMakeLists.txt (cmake -P, Slicer's macros stood in for) in its folder:
    {"name", "scripts", "resources", "generic_tests", "unittest"}."""
    if module not in _CMAKE_RUNS:
        cmake = shutil.which("cmake")
        if cmake is None:
            pytest.skip("cmake is not installed")
        macro = top_level_module_macro().replace(" CONFIGURE_DEPENDS", "")  # not allowed in script mode
        with tempfile.TemporaryDirectory() as folder:
            script = Path(folder) / "check.cmake"
            script.write_text(CMAKE_STUBS + macro + f"\ninclude({(ROOT / module / 'CMakeLists.txt').as_posix()})\n")
            # script mode: CMAKE_CURRENT_SOURCE_DIR is the working folder, here the module's
            proc = subprocess.run([cmake, "-P", str(script)], cwd=ROOT / module, capture_output=True, text=True,
                                  timeout=60)
        assert proc.returncode == 0, proc.stderr
        lines = [line.split("|") for line in proc.stderr.splitlines() if "|" in line]
        build = next(line for line in lines if line[0] == "BUILD")
        unittest_ = next(line for line in lines if line[0] == "UNITTEST")
        _CMAKE_RUNS[module] = {"name": [build[1]], "scripts": build[2].split(";"), "resources": build[3].split(";"),
                               "generic_tests": [build[4]], "unittest": unittest_[1].split(";")}
    return _CMAKE_RUNS[module]


def module_lists(module: str) -> tuple[list[str], list[str]]:
    run = module_cmake(module)
    return run["scripts"], run["resources"]


#: The part of every panel (study section, device, status), loaded by CMRCommonLib.widgets.loadPanelUI.
PANEL = "CMRPanel"
PANEL_UI = ROOT / "CMRCommonLib" / "Resources" / "UI" / "CMRPanel.ui"
#: The Slicer-side shared code: the widgets of the shared panel and the module bases.
SHARED_CODE = (ROOT / "CMRCommonLib" / "widgets.py", ROOT / "CMRCommonLib" / "module_base.py")


def ui_path(module: str) -> Path:
    return PANEL_UI if module == PANEL else ROOT / module / "Resources" / "UI" / f"{module}.ui"


def ui_objects(module: str) -> dict[str, str]:
    """{objectName: class} of every widget in the module's .ui."""
    tree = ET.parse(ui_path(module))
    return {w.get("name"): w.get("class") for w in tree.iter("widget")}


def ui_attribute_names(path: Path) -> set[str]:
    """Names X the code looks up as ``ui.X`` or ``self.ui.X`` (e.g. ``self.ui.seriesTable``)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Attribute):
            owner = node.value
            if (isinstance(owner, ast.Name) and owner.id == "ui") or \
                    (isinstance(owner, ast.Attribute) and owner.attr == "ui"):
                names.add(node.attr)
    return names


def string_args_of_getattr_ui(path: Path) -> set[str]:
    """Widget names used through ``getattr(self.ui, name)`` loops over literal tuples."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.For) and isinstance(node.iter, (ast.Tuple, ast.List)):
            calls = [n for n in ast.walk(node) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                     and n.func.id == "getattr" and isinstance(n.args[0], ast.Attribute) and n.args[0].attr == "ui"]
            if calls:
                names |= {e.value for e in node.iter.elts if isinstance(e, ast.Constant)}
    return names


def module_ast(module: str) -> ast.Module:
    path = ROOT / module / f"{module}.py"
    return ast.parse(path.read_text(), str(path))


def classes(tree: ast.Module) -> dict[str, ast.ClassDef]:
    return {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}


def annotated_fields(cls: ast.ClassDef) -> set[str]:
    return {n.target.id for n in cls.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}


def parameter_node_fields(module: str) -> set[str]:
    """The module's own parameters (those of its parameter node class, not of its base)."""
    return annotated_fields(classes(module_ast(module))[f"{module}ParameterNode"])


def module_base_ast() -> ast.Module:
    path = ROOT / "CMRCommonLib" / "module_base.py"
    return ast.parse(path.read_text(), str(path))


def shared_ui_names() -> set[str]:
    """Widget names the shared code looks up (``ui.X``, ``self.ui.X``, getattr loops)."""
    return set().union(*(ui_attribute_names(p) | string_args_of_getattr_ui(p) for p in SHARED_CODE))


def imported_modules(path: Path, top_level_only: bool = False) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def pyproject_dependencies() -> dict[str, Requirement]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    reqs = [Requirement(r) for r in data["project"]["dependencies"]]
    return {canonicalize_name(r.name): r for r in reqs}


# ---------------------------------------------------------------------------------------
# module CMakeLists
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("module", MODULES)
def test_module_cmakelists_installs_exactly_the_module_files(module):
    """The module's CMakeLists.txt is one slicercmr_add_scripted_module call; run with Slicer's
    macros stood in for, it builds every .py of the folder and installs every other file."""
    text = _strip_cmake_comments((ROOT / module / "CMakeLists.txt").read_text())
    assert text.split() == [f"slicercmr_add_scripted_module({module})"]
    run = module_cmake(module)
    assert run["name"] == [module] and run["generic_tests"] == ["TRUE"]
    assert run["unittest"] == ["SCRIPT", f"{module}.py"], "the module's self-tests as a ctest"
    scripts, resources = run["scripts"], run["resources"]
    assert scripts[0] == f"{module}.py"
    files = module_files(module)
    py = [f for f in files if f.endswith(".py")]
    assert sorted(scripts) == py, "every .py of the module folder is a module script"
    other = [f for f in files if not f.endswith(".py") and f not in NOT_RESOURCES]
    assert resources == other, "every other file of the module folder is a resource"
    assert f"{module}Lib/__init__.py" in scripts and f"{module}Lib/logic.py" in scripts
    for needed in ("UI/{}.ui", "Icons/{}.png"):
        assert "Resources/" + needed.format(module) in resources


def test_cmrquality_lists_the_sample_data_script():
    scripts, _ = module_lists("CMRQuality")
    assert "CMRQualityLib/sampledata.py" in scripts


def test_installed_resources_do_not_collide():
    """All modules install their Resources into the same qt-scripted-modules/Resources folder."""
    owner: dict[str, str] = {}
    for module in MODULES:
        _, resources = module_lists(module)
        for res in resources:
            assert res not in owner, f"{res} is installed by both {owner[res]} and {module}"
            owner[res] = module
    for model_file in (ROOT / "cmrlib" / "resources" / "models").rglob("*"):
        rel = str(model_file.relative_to(ROOT)).replace(os.sep, "/")
        assert rel not in owner, f"{rel} collides with a resource of {owner.get(rel)}"


# ---------------------------------------------------------------------------------------
# top-level CMakeLists
# ---------------------------------------------------------------------------------------
def test_top_level_cmakelists_declares_the_extension():
    text = (ROOT / "CMakeLists.txt").read_text()
    assert re.search(r"^project\(SlicerCMR\)", text, flags=re.M)
    meta = dict(re.findall(r'^set\((EXTENSION_\w+)\s+"([^"]*)"\)', text, flags=re.M))
    for key in ("EXTENSION_HOMEPAGE", "EXTENSION_CATEGORY", "EXTENSION_CONTRIBUTORS", "EXTENSION_DESCRIPTION",
                "EXTENSION_ICONURL", "EXTENSION_SCREENSHOTURLS", "EXTENSION_DEPENDS"):
        assert key in meta, f"{key} missing"
    assert meta["EXTENSION_CATEGORY"] == "Cardiac"
    assert meta["EXTENSION_DEPENDS"] == "PyTorch"
    assert meta["EXTENSION_HOMEPAGE"].startswith("https://")
    assert meta["EXTENSION_CONTRIBUTORS"] and len(meta["EXTENSION_DESCRIPTION"]) > 80
    assert meta["EXTENSION_ICONURL"].endswith("/Resources/Icons/SlicerCMR.png")
    assert "find_package(Slicer REQUIRED)" in text and "include(${Slicer_USE_FILE})" in text
    assert "include(${Slicer_EXTENSION_GENERATE_CONFIG})" in text and "include(${Slicer_EXTENSION_CPACK})" in text
    subdirs = re.findall(r"^add_subdirectory\((\w+)\)", text, flags=re.M)
    assert subdirs == list(MODULES)
    on_disk = sorted(p.parent.name for p in ROOT.glob("*/CMakeLists.txt")
                     if (p.parent / f"{p.parent.name}.py").is_file())
    assert sorted(subdirs) == on_disk


def _top_level_globs() -> tuple[list[str], list[str]]:
    text = _strip_cmake_comments((ROOT / "CMakeLists.txt").read_text())
    blocks = dict(re.findall(r"file\(GLOB_RECURSE\s+(\w+)(.*?)\)", text, flags=re.S))
    pattern = re.compile(r"\$\{CMAKE_CURRENT_SOURCE_DIR\}/(\S+)")
    return (pattern.findall(blocks["SlicerCMR_PYTHON_SCRIPTS"]), pattern.findall(blocks["SlicerCMR_PYTHON_RESOURCES"]))


def test_top_level_cmakelists_installs_the_python_packages_and_models():
    text = (ROOT / "CMakeLists.txt").read_text()
    call = re.search(r"ctkMacroCompilePythonScript\((.*?)\)", text, flags=re.S).group(1)
    assert 'SCRIPTS "${SlicerCMR_PYTHON_SCRIPTS}"' in call and 'RESOURCES "${SlicerCMR_PYTHON_RESOURCES}"' in call
    assert "DESTINATION_DIR ${CMAKE_BINARY_DIR}/${Slicer_QTSCRIPTEDMODULES_LIB_DIR}" in call
    assert "INSTALL_DIR ${Slicer_INSTALL_QTSCRIPTEDMODULES_LIB_DIR}" in call and "NO_INSTALL_SUBDIR" in call
    scripts, resources = _top_level_globs()
    assert scripts == ["cmrlib/*.py", "CMRCommonLib/*.py"]
    assert "cmrlib/resources/models/*" in resources and "cmrlib/resources/sampledata/*" in resources
    assert "CMRCommonLib/Resources/*" in resources  # the shared panel .ui and the requirements file
    assert (ROOT / "cmrlib" / "resources" / "models" / "manifest.json").is_file()


def test_top_level_globs_cover_every_package_file():
    """A data file added to cmrlib/ or CMRCommonLib/ must be matched by a glob to be installed."""
    scripts, resources = _top_level_globs()
    patterns = scripts + resources
    for folder in ("cmrlib", "CMRCommonLib", "CMRCommonLib/Resources", "cmrlib/resources/models",
                   "cmrlib/resources/sampledata"):
        for path in (ROOT / folder).rglob("*"):
            if not path.is_file() or "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            rel = str(path.relative_to(ROOT)).replace(os.sep, "/")
            # GLOB_RECURSE: '*' in the last component matches in every sub-folder
            assert any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(rel, p.replace("/*", "/**/*")) for p in patterns), \
                f"{rel} is not installed by the top-level CMakeLists.txt globs {patterns}"


def test_extension_icon():
    from PIL import Image

    with Image.open(ROOT / "Resources" / "Icons" / "SlicerCMR.png") as icon:
        assert icon.format == "PNG" and icon.size == (128, 128)
    for module in MODULES:
        with Image.open(ROOT / module / "Resources" / "Icons" / f"{module}.png") as icon:
            assert icon.format == "PNG" and icon.size[0] == icon.size[1] >= 64


# ---------------------------------------------------------------------------------------
# .ui files
# ---------------------------------------------------------------------------------------
WIDGET_CLASS = re.compile(r"^(Q[A-Z]\w*|ctk[A-Z]\w*|qMRML[A-Z]\w*|qSlicer[A-Z]\w*)$")


@pytest.mark.parametrize("module", (*MODULES, PANEL))
def test_ui_is_wellformed_with_known_classes(module):
    tree = ET.parse(ui_path(module))  # raises on malformed XML
    root = tree.getroot()
    assert root.tag == "ui" and root.findtext("class") == module
    top = root.find("widget")
    assert top.get("class") == "qMRMLWidget" and top.get("name") == module
    widgets = list(root.iter("widget"))
    bad = [(w.get("name"), w.get("class")) for w in widgets if not WIDGET_CLASS.match(w.get("class", ""))]
    assert not bad, f"classes that are not Qt / CTK / qMRML / qSlicer: {bad}"
    layouts = [lay.get("class") for lay in root.iter("layout")]
    assert all(c.startswith("Q") for c in layouts)
    names = [w.get("name") for w in widgets] + [lay.get("name") for lay in root.iter("layout")]
    assert len(names) == len(set(names)), "object names must be unique"
    custom = {c.findtext("class"): c.findtext("extends") for c in root.iter("customwidget")}
    used_custom = {w.get("class") for w in widgets if not w.get("class").startswith("Q")}
    assert used_custom <= set(custom), f"declare in <customwidgets>: {used_custom - set(custom)}"
    assert all(custom[c] for c in used_custom), "each custom widget needs <extends> (QUiLoader falls back to it)"


def test_the_shared_panel_ui_holds_the_shared_widgets():
    objects = ui_objects(PANEL)
    wanted = shared_ui_names()
    assert {"studyDirectoryButton", "seriesTable", "loadSeriesButton", "deviceComboBox", "statusLabel",
            "progressBar", "cancelButton", "capabilitiesLabel", "studyCollapsibleButton"} <= wanted  # the AST scan works
    missing = sorted(wanted - set(objects))
    assert not missing, f"CMRPanel.ui lacks widgets the shared code uses: {missing}"
    assert objects["seriesTable"] == "QTableWidget"
    assert objects["studyDirectoryButton"] == "ctkDirectoryButton"
    assert objects["deviceComboBox"] == "QComboBox"
    assert objects["studyCollapsibleButton"] == "ctkCollapsibleButton"


@pytest.mark.parametrize("module", MODULES)
def test_module_ui_holds_only_the_module_sections(module):
    """The module's .ui holds the widgets its own code looks up and none of the shared part
    (the two are merged into one namespace: a name in both would shadow the other)."""
    objects = ui_objects(module)
    shared = set(ui_objects(PANEL))
    used = ui_attribute_names(ROOT / module / f"{module}.py")
    missing = sorted(used - shared - set(objects))
    assert not missing, f"{module}.ui lacks widgets the module code uses: {missing}"
    assert not (set(objects) & shared), f"{module}.ui repeats shared widgets: {sorted(set(objects) & shared)}"


@pytest.mark.parametrize("module", (*MODULES, PANEL))
def test_ui_parameter_names_match_the_parameter_node(module):
    tree = ET.parse(ui_path(module))
    bound = {}
    for widget in tree.iter("widget"):
        for prop in widget.findall("property"):
            if prop.get("name") == "SlicerParameterName":
                bound[prop.findtext("string")] = widget.get("class")
    if module == PANEL:  # the shared parameters (CMRPanelParameters)
        fields = annotated_fields(classes(module_base_ast())["CMRPanelParameters"])
        assert bound == {"studyFolder": "ctkDirectoryButton", "device": "QComboBox"}
        assert set(bound) == fields
        return
    own = {"CMRMotion": {"irwSequence": "qMRMLNodeComboBox", "method": "QComboBox"},
           "CMRStressT1": {"restMap": "qMRMLNodeComboBox", "stressMap": "qMRMLNodeComboBox",
                           "restMask": "qMRMLNodeComboBox", "stressMask": "qMRMLNodeComboBox",
                           "ahaSegments": "qMRMLNodeComboBox", "method": "QComboBox", "reverse": "QCheckBox",
                           "force": "QCheckBox"},
           "CMRSegmentation": {"qcdInput": "qMRMLNodeComboBox", "qcdThreshold": "QDoubleSpinBox",
                               "landmarksInput": "qMRMLNodeComboBox", "landmarksMask": "qMRMLNodeComboBox",
                               "landmarksLevel": "QComboBox", "landmarksLiveUpdate": "QCheckBox",
                               "scarLge": "qMRMLNodeComboBox", "scarCine": "qMRMLNodeComboBox",
                               "scarMethod": "QComboBox", "scarMask": "qMRMLNodeComboBox",
                               "scarSegments": "qMRMLNodeComboBox", "scarLgeCentres": "qMRMLNodeComboBox",
                               "scarCineCentres": "qMRMLNodeComboBox", "scarForce": "QCheckBox"},
           "CMRQuality": {"qualityInput": "qMRMLNodeComboBox", "qualityThreshold": "QDoubleSpinBox",
                          "qualityAllSlices": "QCheckBox", "qualityHideNonLV": "QCheckBox",
                          "qualityWatch": "QCheckBox", "laInput": "qMRMLNodeComboBox", "laCustomThreshold": "QCheckBox",
                          "laThreshold": "ctkSliderWidget", "labellingPool": "ctkPathLineEdit",
                          "labellingRater": "QLineEdit"}}.get(module, {})
    assert bound == own
    assert set(bound) == parameter_node_fields(module), "each own parameter is bound to a widget of the module's .ui"


UI_LOADER = textwrap.dedent("""
    import json, os, sys
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from PySide6.QtCore import QFile, QIODevice, qInstallMessageHandler
    from PySide6.QtUiTools import QUiLoader
    from PySide6.QtWidgets import QApplication, QWidget
    app = QApplication([])
    qInstallMessageHandler(lambda *args: None)  # unknown ctk properties only warn

    def load(path):
        f = QFile(path)
        f.open(QIODevice.ReadOnly)
        widget = QUiLoader().load(f)
        f.close()
        return widget

    def names(widget):
        return {w.objectName(): w.metaObject().className() for w in widget.findChildren(QWidget) if w.objectName()}

    panel_path, module_paths = sys.argv[1], sys.argv[2:]
    out = {}
    for path in module_paths:
        panel, module = load(panel_path), load(path)
        if panel is None or module is None:
            out[path] = None
            continue
        # as CMRCommonLib.widgets.loadPanelUI: the module's widget after the study section
        layout = panel.layout()
        study = panel.findChild(QWidget, "studyCollapsibleButton")
        layout.insertWidget(layout.indexOf(study) + 1, module)
        order = [layout.itemAt(k).widget().objectName() for k in range(layout.count()) if layout.itemAt(k).widget()]
        out[path] = {"names": names(panel), "order": order}
    print(json.dumps(out))
""")


def test_ui_files_load_in_quiloader_and_combine(tmp_path):
    pytest.importorskip("PySide6.QtUiTools", reason="PySide6 not installed")
    paths = [str(ui_path(m)) for m in MODULES]
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run([sys.executable, "-c", UI_LOADER, str(PANEL_UI), *paths], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    for module, path in zip(MODULES, paths, strict=True):
        found = loaded[path]
        assert found is not None, f"QUiLoader could not load {path} or {PANEL_UI}"
        wanted = ui_attribute_names(ROOT / module / f"{module}.py") | shared_ui_names()
        assert wanted <= set(found["names"]), f"{module}: not created by QUiLoader: {sorted(wanted - set(found['names']))}"
        assert found["names"]["seriesTable"] == "QTableWidget" and found["names"]["deviceComboBox"] == "QComboBox"
        assert found["order"][:3] == ["capabilitiesLabel", "studyCollapsibleButton", module]


# ---------------------------------------------------------------------------------------
# module scripts
# ---------------------------------------------------------------------------------------
def test_module_files_compile(tmp_path):
    targets = [str(ROOT / m) for m in MODULES] + [str(ROOT / "CMRCommonLib")]
    env = dict(os.environ, PYTHONPYCACHEPREFIX=str(tmp_path / "pycache"))  # keep the tree clean
    proc = subprocess.run([sys.executable, "-m", "compileall", "-q", *targets], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _assigned_parent_attrs(init: ast.FunctionDef) -> dict[str, ast.expr]:
    out = {}
    for node in ast.walk(init):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Attribute) \
                        and target.value.attr == "parent":
                    out[target.attr] = node.value
    return out


def _methods(cls: ast.ClassDef) -> set[str]:
    return {f.name for f in cls.body if isinstance(f, ast.FunctionDef)}


#: What Slicer calls on a module widget (the template's skeleton), provided by CMRScriptedWidget.
WIDGET_LIFE_CYCLE = {"setup", "cleanup", "enter", "exit", "onSceneStartClose", "onSceneEndClose",
                     "initializeParameterNode", "setParameterNode"}


def test_module_bases_keep_the_slicer_template():
    cls = classes(module_base_ast())
    bases = {name: [ast.unparse(b) for b in c.bases] for name, c in cls.items()}
    assert bases["CMRScriptedModule"] == ["ScriptedLoadableModule"]
    assert bases["CMRScriptedWidget"] == ["ScriptedLoadableModuleWidget", "VTKObservationMixin"]
    assert bases["CMRScriptedLogic"] == ["ScriptedLoadableModuleLogic"]
    assert bases["CMRPanelParameters"] == [] and bases["CMRTestMixin"] == []  # plain: see their docstrings
    init = next(f for f in cls["CMRScriptedModule"].body if isinstance(f, ast.FunctionDef) and f.name == "__init__")
    attrs = _assigned_parent_attrs(init)
    for key in ("title", "categories", "contributors", "helpText", "acknowledgementText"):
        assert key in attrs, f"CMRScriptedModule: self.parent.{key} not set"
    assert "Cardiac" in ast.unparse(attrs["categories"])
    assert WIDGET_LIFE_CYCLE | {"setupSections", "updateSections", "cleanupSections", "runCmr"} <= \
        _methods(cls["CMRScriptedWidget"])
    assert {"impl", "createImpl", "getParameterNode", "scan", "load"} <= _methods(cls["CMRScriptedLogic"])
    assert {"setUp", "runTest", "test_LoadStudy", "test_ParameterNode", "test_Panel", "test_WorkerProgress"} \
        <= _methods(cls["CMRTestMixin"])
    source = (ROOT / "CMRCommonLib" / "module_base.py").read_text()
    assert 'self.resourcePath(f"UI/{self.moduleName}.ui")' in source
    assert ".connectGui(self.ui)" in source and ".disconnectGui(" in source


@pytest.mark.parametrize("module", MODULES)
def test_module_script_structure(module):
    """Each module file keeps Slicer's skeleton (module, typed parameter node, widget, logic,
    test) on the CMRCommonLib bases and holds only its own parts."""
    tree = module_ast(module)
    cls = classes(tree)
    bases = {name: [ast.unparse(b) for b in c.bases] for name, c in cls.items()}
    assert bases[module] == ["CMRScriptedModule"]
    assert bases[f"{module}ParameterNode"] == ["CMRPanelParameters"]
    assert bases[f"{module}Widget"] == ["CMRScriptedWidget"]
    assert bases[f"{module}Logic"] == ["CMRScriptedLogic"]
    assert bases[f"{module}Test"] == ["CMRTestMixin", "ScriptedLoadableModuleTest"]
    assert [ast.unparse(d) for d in cls[f"{module}ParameterNode"].decorator_list] == ["parameterNodeWrapper"]

    init = next(f for f in cls[module].body if isinstance(f, ast.FunctionDef) and f.name == "__init__")
    call = next(n for n in ast.walk(init) if isinstance(n, ast.Call) and ast.unparse(n.func) == "CMRScriptedModule.__init__")
    title = call.args[2]
    assert ast.unparse(title).startswith("_(") and "CMR" in ast.unparse(title), "a translatable title"
    assert ast.unparse(call.args[3]).startswith("_("), "a translatable methods sentence"

    assert not (_methods(cls[f"{module}Widget"]) & WIDGET_LIFE_CYCLE), \
        "the Slicer life cycle comes from CMRScriptedWidget; the module widget holds only its own sections"
    assert not {"impl", "getParameterNode", "scan", "load", "createImpl"} & _methods(cls[f"{module}Logic"])
    assert not {"setUp", "runTest"} & _methods(cls[f"{module}Test"])
    assert (ROOT / module / "Resources" / "UI" / f"{module}.ui").is_file()


@pytest.mark.parametrize("module", MODULES)
def test_each_module_finds_its_lib_logic(module):
    """CMRScriptedLogic.createImpl takes the one CMRModuleLogicBase subclass of <Module>Lib.logic
    whose MODULE_NAME is the module."""
    import importlib

    from CMRCommonLib.module_logic import CMRModuleLogicBase

    lib = importlib.import_module(f"{module}Lib.logic")
    found = [c for c in vars(lib).values() if isinstance(c, type) and issubclass(c, CMRModuleLogicBase)
             and c.MODULE_NAME == module]
    assert len(found) == 1, found


@pytest.mark.parametrize("module", MODULES)
def test_module_script_imports_no_cmrlib_at_load_time(module):
    """Slicer imports every module at startup: a missing package must not stop it loading."""
    top = imported_modules(ROOT / module / f"{module}.py", top_level_only=True)
    allowed_roots = {"logging", "pathlib", "tempfile", "typing", "vtk", "slicer", "CMRCommonLib"}
    assert {m.split(".")[0] for m in top} <= allowed_roots, top
    assert {m for m in top if m.startswith("CMRCommonLib")} <= {"CMRCommonLib.module_base"}


def test_module_base_imports_no_cmrlib_and_no_qt_at_load_time():
    tree = module_base_ast()
    top = imported_modules(ROOT / "CMRCommonLib" / "module_base.py", top_level_only=True)
    assert {m.split(".")[0] for m in top} <= {"__future__", "contextlib", "importlib", "pathlib", "sys", "tempfile",
                                              "typing", "vtk", "slicer"}, top
    relative = {n.module for n in tree.body if isinstance(n, ast.ImportFrom) and n.level == 1}
    assert relative == {"device_choice"}
    assert imported_modules(ROOT / "CMRCommonLib" / "device_choice.py", top_level_only=True) <= {
        "__future__", "enum", "importlib.util", "json", "dataclasses"}


def test_lib_packages_are_qt_free():
    """Qt only in CMRCommonLib/widgets.py; module_base.py builds on slicer.ScriptedLoadableModule
    (itself Qt-based) but imports no Qt module."""
    files = [p for m in MODULES for p in (ROOT / m / f"{m}Lib").glob("*.py")]
    files += [p for p in (ROOT / "CMRCommonLib").glob("*.py") if p.name != "widgets.py"]
    assert len(files) >= 13
    slicer_gui = {"slicer.ScriptedLoadableModule", "slicer.parameterNodeWrapper"}
    for path in files:
        forbidden = QT_MODULES - slicer_gui if path.name == "module_base.py" else QT_MODULES
        qt = {m for m in imported_modules(path) if m in forbidden or m.split(".")[0] in forbidden}
        assert not qt, f"{path.relative_to(ROOT)} imports Qt ({qt}); only CMRCommonLib/widgets.py may"


def test_lib_packages_import_headless():
    """Importing the Lib logic must not need the Slicer application (checked in a fresh interpreter)."""
    code = ("import sys\n"
            f"sys.path[:0] = {[str(ROOT)] + [str(ROOT / m) for m in MODULES]!r}\n"
            "import CMRCommonLib.dependencies, CMRCommonLib.device_choice, CMRCommonLib.runner\n"
            "import CMRCommonLib.study_loader, CMRCommonLib.module_logic, CMRCommonLib.testing, CMRCommonLib.help_text\n"
            "import CMRQualityLib.logic, CMRMotionLib.logic, CMRStressT1Lib.logic, CMRSegmentationLib.logic\n"
            "bad = [m for m in ('qt', 'ctk', 'PySide6', 'PythonQt') if m in sys.modules]\n"
            "assert not bad, bad\n"
            "print('ok')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT.parent)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


# ---------------------------------------------------------------------------------------
# the extension's requirements file
# ---------------------------------------------------------------------------------------
#: Imported by cmrlib but provided by the Slicer application (slicer-core, VTK): never listed.
PROVIDED_BY_SLICER = {"slicer", "vtk", "vtkmodules"}
#: Imported by cmrlib, installed through the PyTorch extension (PyTorchUtils): never listed.
PROVIDED_BY_PYTORCH_EXTENSION = {"torch"}


def _type_checking_only(tree: ast.Module) -> set[int]:
    """ids of the import nodes under ``if TYPE_CHECKING:`` (never run)."""
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            skipped |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return skipped


def cmrlib_third_party_imports() -> dict[str, set[str]]:
    """Top-level names of every third-party module cmrlib imports (module level or inside a
    function: both run), with the files that import them."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "cmrlib").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        skipped = _type_checking_only(tree)
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "cmrlib":
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def test_one_requirements_file_for_the_extension():
    assert REQUIREMENTS_FILE == ROOT / "CMRCommonLib" / "Resources" / "SlicerCMR-requirements.txt"
    assert REQUIREMENTS_FILE.is_file()
    per_module = sorted(str(p.relative_to(ROOT)) for m in MODULES for p in (ROOT / m).rglob("*requirements*"))
    assert per_module == [], "the modules share CMRCommonLib/Resources/SlicerCMR-requirements.txt"


def test_requirements_list_exactly_what_cmrlib_imports():
    import importlib.metadata

    imports = cmrlib_third_party_imports()
    assert {"numpy", "torch"} <= set(imports)  # the walk sees cmrlib's imports
    distributions = importlib.metadata.packages_distributions()
    unknown = {name: sorted(files) for name, files in imports.items() if name not in distributions}
    assert not unknown, f"imported by cmrlib but no installed distribution provides them: {unknown}"
    needed = {canonicalize_name(distributions[name][0]) for name in imports
              if name not in PROVIDED_BY_SLICER | PROVIDED_BY_PYTORCH_EXTENSION}
    listed = {canonicalize_name(r.name) for r in read_requirements(REQUIREMENTS_FILE)}
    where = {canonicalize_name(distributions[n][0]): sorted(f) for n, f in imports.items()}
    assert not needed - listed, f"imported by cmrlib, missing from the requirements file: " \
                                f"{ {n: where[n] for n in needed - listed} }"
    assert not listed - needed, f"listed but not imported by cmrlib: {sorted(listed - needed)}"


def test_requirements_file_is_safe_for_slicer_and_matches_pyproject():
    reqs = read_requirements(REQUIREMENTS_FILE)
    assert forbidden_requirements(reqs) == []
    names = {canonicalize_name(r.name) for r in reqs}
    assert not names & {"torch", "slicer-core", "vtk", "pyside6", "pyside6-essentials", "pyqt5"}
    project = pyproject_dependencies()
    for req in reqs:
        name = canonicalize_name(req.name)
        assert name in project, f"{req} is not a dependency of cmrlib (pyproject.toml)"
        assert str(req.specifier) == str(project[name].specifier), f"{req} differs from pyproject {project[name]}"
    assert Requirement(TORCH_REQUIREMENT).specifier == project["torch"].specifier, \
        "the torch version the panel asks PyTorchUtils for is pyproject's"
    assert missing_requirements(reqs) == [], "the test environment must satisfy the requirements"

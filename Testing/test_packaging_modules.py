"""Packaging checks of the Slicer extension (no Slicer needed).

* each module's CMakeLists.txt lists every script and resource of its folder, and only
  files that exist; resources installed into the shared ``qt-scripted-modules/Resources``
  folder do not collide between modules;
* the top-level CMakeLists.txt has the extension metadata, one add_subdirectory per
  module, and installs cmrlib/, CMRCommonLib/ and Resources/Models/ (its globs cover every
  file of those folders);
* every ``.ui`` is well-formed XML using only Qt / CTK / qMRML / qSlicer classes, declares
  its ctk/qMRML classes as custom widgets, and holds every widget name the Python code looks
  up and every parameter of the module's parameter node; with PySide6 it loads in QUiLoader;
* the module scripts compile, set the ScriptedLoadableModule metadata, and keep Qt out of the
  Lib packages; requirements files never list torch / slicer-core / vtk / Qt.
"""
from __future__ import annotations

import ast
import fnmatch
import json
import os
import re
import subprocess
import sys
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

from CMRCommonLib.dependencies import forbidden_requirements, missing_requirements, read_requirements  # noqa: E402

#: Files in a module folder that are not installed resources.
NOT_RESOURCES = {"CMakeLists.txt"}
QT_MODULES = {"qt", "ctk", "PythonQt", "PySide2", "PySide6", "PyQt5", "PyQt6", "shiboken6",
              "slicer.ScriptedLoadableModule", "slicer.parameterNodeWrapper"}


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------
def _strip_cmake_comments(text: str) -> str:
    return "\n".join(line.split("#", 1)[0] if not line.lstrip().startswith("#") else "" for line in text.splitlines())


def cmake_set_lists(text: str) -> dict[str, list[str]]:
    """``set(NAME v1 v2 ...)`` blocks of a CMakeLists.txt, ``${MODULE_NAME}`` expanded."""
    text = _strip_cmake_comments(text)
    values: dict[str, list[str]] = {}
    for name, body in re.findall(r"\bset\(\s*(\w+)\s+(.*?)\)", text, flags=re.S):
        values[name] = [v.strip('"') for v in body.split()]
    module_name = values.get("MODULE_NAME", [""])[0]
    return {k: [v.replace("${MODULE_NAME}", module_name) for v in vs] for k, vs in values.items()}


def module_files(module: str) -> list[str]:
    """Files of the module folder, relative, without caches."""
    folder = ROOT / module
    return sorted(str(p.relative_to(folder)).replace(os.sep, "/") for p in folder.rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")


def module_lists(module: str) -> tuple[list[str], list[str]]:
    sets = cmake_set_lists((ROOT / module / "CMakeLists.txt").read_text())
    return sets["MODULE_PYTHON_SCRIPTS"], sets["MODULE_PYTHON_RESOURCES"]


def ui_path(module: str) -> Path:
    return ROOT / module / "Resources" / "UI" / f"{module}.ui"


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


def parameter_node_fields(module: str) -> set[str]:
    cls = classes(module_ast(module))[f"{module}ParameterNode"]
    return {n.target.id for n in cls.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}


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
def test_module_cmakelists_lists_exactly_the_module_files(module):
    text = (ROOT / module / "CMakeLists.txt").read_text()
    sets = cmake_set_lists(text)
    assert sets["MODULE_NAME"] == [module]
    assert re.search(r"slicerMacroBuildScriptedModule\(\s*NAME \$\{MODULE_NAME\}\s+SCRIPTS \$\{MODULE_PYTHON_SCRIPTS\}"
                     r"\s+RESOURCES \$\{MODULE_PYTHON_RESOURCES\}", text), "slicerMacroBuildScriptedModule call"
    assert "slicer_add_python_unittest(SCRIPT ${MODULE_NAME}.py)" in text
    scripts, resources = module_lists(module)
    files = module_files(module)
    missing = [f for f in scripts + resources if not (ROOT / module / f).is_file()]
    assert not missing, f"listed in {module}/CMakeLists.txt but not in the tree: {missing}"
    py = [f for f in files if f.endswith(".py")]
    assert sorted(scripts) == py, "every .py of the module folder must be in MODULE_PYTHON_SCRIPTS"
    other = [f for f in files if not f.endswith(".py") and f not in NOT_RESOURCES]
    assert sorted(resources) == other, "every resource of the module folder must be in MODULE_PYTHON_RESOURCES"
    assert f"{module}.py" in scripts and f"{module}Lib/__init__.py" in scripts and f"{module}Lib/logic.py" in scripts
    for needed in ("UI/{}.ui", "Icons/{}.png", "{}-requirements.txt"):
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
    assert (ROOT / "cmrlib" / "resources" / "models" / "manifest.json").is_file()


def test_top_level_globs_cover_every_package_file():
    """A data file added to cmrlib/ or CMRCommonLib/ must be matched by a glob to be installed."""
    scripts, resources = _top_level_globs()
    patterns = scripts + resources
    for folder in ("cmrlib", "CMRCommonLib", "cmrlib/resources/models", "cmrlib/resources/sampledata"):
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


@pytest.mark.parametrize("module", MODULES)
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


@pytest.mark.parametrize("module", MODULES)
def test_widget_names_looked_up_by_the_code_exist_in_the_ui(module):
    objects = ui_objects(module)
    shared = ROOT / "CMRCommonLib" / "widgets.py"
    wanted = (ui_attribute_names(ROOT / module / f"{module}.py") | ui_attribute_names(shared)
              | string_args_of_getattr_ui(shared))
    assert {"studyDirectoryButton", "seriesTable", "loadSeriesButton", "deviceComboBox", "statusLabel",
            "progressBar", "cancelButton", "capabilitiesLabel"} <= wanted  # the AST scan sees the shared code
    missing = sorted(wanted - set(objects))
    assert not missing, f"{module}.ui lacks widgets the code uses: {missing}"
    assert objects["seriesTable"] == "QTableWidget"
    assert objects["studyDirectoryButton"] == "ctkDirectoryButton"
    assert objects["deviceComboBox"] == "QComboBox"
    assert objects["studyCollapsibleButton"] == "ctkCollapsibleButton"


@pytest.mark.parametrize("module", MODULES)
def test_ui_parameter_names_match_the_parameter_node(module):
    tree = ET.parse(ui_path(module))
    bound = {}
    for widget in tree.iter("widget"):
        for prop in widget.findall("property"):
            if prop.get("name") == "SlicerParameterName":
                bound[prop.findtext("string")] = widget.get("class")
    fields = parameter_node_fields(module)
    assert set(bound) <= fields, f"SlicerParameterName without a parameter: {set(bound) - fields}"
    shared = {"studyFolder": "ctkDirectoryButton", "device": "QComboBox"}
    assert {k: v for k, v in bound.items() if k in shared} == shared
    own = {"CMRMotion": {"irwSequence": "qMRMLNodeComboBox", "method": "QComboBox"}}.get(module, {})
    assert {k: v for k, v in bound.items() if k not in shared} == own


UI_LOADER = textwrap.dedent("""
    import json, os, sys
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from PySide6.QtCore import QFile, QIODevice, qInstallMessageHandler
    from PySide6.QtUiTools import QUiLoader
    from PySide6.QtWidgets import QApplication, QWidget
    app = QApplication([])
    qInstallMessageHandler(lambda *args: None)  # unknown ctk properties only warn
    out = {}
    for path in sys.argv[1:]:
        f = QFile(path)
        f.open(QIODevice.ReadOnly)
        widget = QUiLoader().load(f)
        f.close()
        out[path] = None if widget is None else {w.objectName(): w.metaObject().className()
                                                 for w in widget.findChildren(QWidget) if w.objectName()}
    print(json.dumps(out))
""")


def test_ui_files_load_in_quiloader(tmp_path):
    pytest.importorskip("PySide6.QtUiTools", reason="PySide6 not installed")
    paths = [str(ui_path(m)) for m in MODULES]
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run([sys.executable, "-c", UI_LOADER, *paths], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    shared = ROOT / "CMRCommonLib" / "widgets.py"
    for module, path in zip(MODULES, paths, strict=True):
        found = loaded[path]
        assert found is not None, f"QUiLoader could not load {path}"
        wanted = (ui_attribute_names(ROOT / module / f"{module}.py") | ui_attribute_names(shared)
                  | string_args_of_getattr_ui(shared))
        assert wanted <= set(found), f"{module}: not created by QUiLoader: {sorted(wanted - set(found))}"
        assert found["seriesTable"] == "QTableWidget" and found["deviceComboBox"] == "QComboBox"


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


@pytest.mark.parametrize("module", MODULES)
def test_module_script_structure(module):
    tree = module_ast(module)
    cls = classes(tree)
    bases = {name: [ast.unparse(b) for b in c.bases] for name, c in cls.items()}
    assert bases[module] == ["ScriptedLoadableModule"]
    assert bases[f"{module}Widget"] == ["ScriptedLoadableModuleWidget", "VTKObservationMixin"]
    assert bases[f"{module}Logic"] == ["ScriptedLoadableModuleLogic"]
    assert bases[f"{module}Test"] == ["ScriptedLoadableModuleTest"]
    assert [ast.unparse(d) for d in cls[f"{module}ParameterNode"].decorator_list] == ["parameterNodeWrapper"]

    init = next(f for f in cls[module].body if isinstance(f, ast.FunctionDef) and f.name == "__init__")
    attrs = _assigned_parent_attrs(init)
    for key in ("title", "categories", "contributors", "helpText", "acknowledgementText"):
        assert key in attrs, f"{module}: self.parent.{key} not set"
    assert "Cardiac" in ast.unparse(attrs["categories"])
    assert "CMR" in ast.unparse(attrs["title"])

    widget_methods = {f.name for f in cls[f"{module}Widget"].body if isinstance(f, ast.FunctionDef)}
    assert {"setup", "cleanup", "enter", "exit", "setParameterNode", "initializeParameterNode"} <= widget_methods
    source = (ROOT / module / f"{module}.py").read_text()
    assert f'self.resourcePath("UI/{module}.ui")' in source
    assert f'self.resourcePath("{module}-requirements.txt")' in source
    assert ".connectGui(self.ui)" in source and ".disconnectGui(" in source

    logic_methods = {f.name for f in cls[f"{module}Logic"].body if isinstance(f, ast.FunctionDef)}
    assert {"impl", "getParameterNode", "scan", "load"} <= logic_methods
    lib_import = f"from {module}Lib.logic import"
    assert lib_import in source, "the Slicer logic delegates to the Qt-free Lib logic"

    test_methods = [f.name for f in cls[f"{module}Test"].body if isinstance(f, ast.FunctionDef)]
    assert "runTest" in test_methods and "setUp" in test_methods
    tests = [m for m in test_methods if m.startswith("test_")]
    assert len(tests) >= 4
    run_test = next(f for f in cls[f"{module}Test"].body if isinstance(f, ast.FunctionDef) and f.name == "runTest")
    assert set(tests) <= {n.attr for n in ast.walk(run_test) if isinstance(n, ast.Attribute)}, \
        "runTest must run every test_ method"


@pytest.mark.parametrize("module", MODULES)
def test_module_script_imports_no_cmrlib_at_load_time(module):
    """Slicer imports every module at startup: a missing package must not stop it loading."""
    top = imported_modules(ROOT / module / f"{module}.py", top_level_only=True)
    allowed_roots = {"logging", "pathlib", "tempfile", "vtk", "slicer", "CMRCommonLib"}
    assert {m.split(".")[0] for m in top} <= allowed_roots, top
    assert {m for m in top if m.startswith("CMRCommonLib")} <= {"CMRCommonLib.device_choice"}


def test_lib_packages_are_qt_free():
    files = [p for m in MODULES for p in (ROOT / m / f"{m}Lib").glob("*.py")]
    files += [p for p in (ROOT / "CMRCommonLib").glob("*.py") if p.name != "widgets.py"]
    assert len(files) >= 12
    for path in files:
        qt = {m for m in imported_modules(path) if m in QT_MODULES or m.split(".")[0] in QT_MODULES}
        assert not qt, f"{path.relative_to(ROOT)} imports Qt ({qt}); only CMRCommonLib/widgets.py may"


def test_lib_packages_import_headless():
    """Importing the Lib logic must not need the Slicer application (checked in a fresh interpreter)."""
    code = ("import sys\n"
            f"sys.path[:0] = {[str(ROOT)] + [str(ROOT / m) for m in MODULES]!r}\n"
            "import CMRCommonLib.dependencies, CMRCommonLib.device_choice, CMRCommonLib.runner\n"
            "import CMRCommonLib.study_loader, CMRCommonLib.module_logic, CMRCommonLib.testing\n"
            "import CMRQualityLib.logic, CMRMotionLib.logic, CMRStressT1Lib.logic, CMRSegmentationLib.logic\n"
            "bad = [m for m in ('qt', 'ctk', 'PySide6', 'PythonQt') if m in sys.modules]\n"
            "assert not bad, bad\n"
            "print('ok')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT.parent)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


# ---------------------------------------------------------------------------------------
# requirements files
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("module", MODULES)
def test_requirements_file(module):
    reqs = read_requirements(ROOT / module / "Resources" / f"{module}-requirements.txt")
    assert reqs, "the module needs cmrlib's dependencies"
    assert forbidden_requirements(reqs) == []
    project = pyproject_dependencies()
    for req in reqs:
        name = canonicalize_name(req.name)
        assert name in project, f"{req} is not a dependency of cmrlib (pyproject.toml)"
        assert str(req.specifier) == str(project[name].specifier), f"{req} differs from pyproject {project[name]}"
    names = {canonicalize_name(r.name) for r in reqs}
    assert names == set(project) - {"torch"}, "every cmrlib dependency except torch (PyTorch extension)"
    assert missing_requirements(reqs) == [], "the test environment must satisfy the module requirements"

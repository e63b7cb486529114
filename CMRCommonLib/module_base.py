"""What every SlicerCMR module file shares: bases of the classes a Slicer scripted module
defines (module, widget, logic, test) and of its typed parameter node.

A module file ``CMR<Name>/CMR<Name>.py`` keeps Slicer's scripted-module skeleton and holds
only its own panel sections, their handlers and its own checks::

    class CMRMotion(CMRScriptedModule)                 # title and methods (acknowledgement)
    @parameterNodeWrapper
    class CMRMotionParameterNode(CMRPanelParameters)   # the module's own parameters
    class CMRMotionWidget(CMRScriptedWidget)           # setupSections(), updateSections(), [cleanupSections()], handlers
    class CMRMotionLogic(CMRScriptedLogic)             # its input finders (camelCase, for scripts)
    class CMRMotionTest(CMRTestMixin, ScriptedLoadableModuleTest)  # the module's own tests

The bases give the rest: the module metadata and a help text built from the capability
registry (:mod:`CMRCommonLib.help_text`); the widget's ``setup / cleanup / enter / exit /
onSceneStartClose / onSceneEndClose / initializeParameterNode / setParameterNode`` as the
Slicer template has them; the shared panel (``CMRCommonLib/Resources/UI/CMRPanel.ui``: study
section, device choice, status, progress and Cancel, the dependency check, see
:mod:`CMRCommonLib.widgets`) with the module's ``.ui`` inserted; the parameter node's
``studyFolder`` and ``device``; the shared self-tests. The bases find the module's own classes
by Slicer's naming rule (``<ModuleName>Logic``, ``<ModuleName>ParameterNode`` in the module
file), as Slicer finds ``<ModuleName>Widget`` and ``<ModuleName>Test``, and the module's Qt-free
logic in ``<ModuleName>Lib/logic.py`` by its ``MODULE_NAME``.

Slicer-application side: imports ``slicer.ScriptedLoadableModule`` (itself Qt-based) but no
Qt module directly -- Qt stays in :mod:`CMRCommonLib.widgets`, imported when a panel is set
up -- and no cmrlib at import time: Slicer imports every module at startup, and a missing
Python package must not stop a module from loading.
"""
from __future__ import annotations

import contextlib
import importlib
import pathlib
import sys
import tempfile
from typing import Any, Callable, Iterator

import vtk

import slicer
from slicer.i18n import translate
from slicer.ScriptedLoadableModule import ScriptedLoadableModule, ScriptedLoadableModuleLogic, ScriptedLoadableModuleWidget
from slicer.util import VTKObservationMixin

from .device_choice import DeviceChoice

#: Appended to each module's acknowledgement.
ACKNOWLEDGEMENT = ("Part of the SlicerCMR extension. Networks and the T1 fit run with PyTorch, provided by the "
                   "PyTorch extension (SlicerPyTorch).")


def moduleNameOf(obj: Any, ownSuffix: str) -> str:
    """``<ModuleName>`` of an object whose class is ``<ModuleName><ownSuffix>`` (Slicer's naming rule)."""
    return type(obj).__name__.removesuffix(ownSuffix)


def moduleClass(obj: Any, ownSuffix: str, wantedSuffix: str) -> Any:
    """The class ``<ModuleName><wantedSuffix>`` of the module file that defines ``type(obj)``,
    whose name is ``<ModuleName><ownSuffix>``."""
    return getattr(sys.modules[type(obj).__module__], moduleNameOf(obj, ownSuffix) + wantedSuffix)


def moduleHelp(moduleName: str) -> str:
    """The module help: what the panel does in this version, from the capability registry."""
    from . import help_text

    try:
        return help_text.help_html(moduleName)
    except Exception as exc:  # cmrlib or a package it needs is missing: the module still loads
        return help_text.unavailable_help(moduleName, exc)


#
# module
#


class CMRScriptedModule(ScriptedLoadableModule):
    """Module metadata shared by the SlicerCMR modules: the subclass passes its (translated)
    ``title`` and ``methods`` sentence; the help text comes from the capability registry
    (:func:`moduleHelp`), the acknowledgement is ``methods`` then :data:`ACKNOWLEDGEMENT`."""

    def __init__(self, parent, title: str, methods: str) -> None:
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = title
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Cardiac")]
        self.parent.dependencies = []
        self.parent.contributors = ["SlicerCMR developers"]
        self.parent.helpText = moduleHelp(type(self).__name__)
        self.parent.acknowledgementText = f"{methods.strip()}<br>{ACKNOWLEDGEMENT}"


#
# parameter node
#


class CMRPanelParameters:
    """The parameters of the shared panel part; a module's ``@parameterNodeWrapper`` class
    derives from this plain class and adds its own (``typing.get_type_hints`` sees both).

    studyFolder - DICOM folder of the CMR study shown in the "CMR study" section.
    device - where the networks and the T1 fit run: passed to worker processes as ``--device``
    and ``CMR_DEVICE`` (auto, cpu, cuda).
    """

    studyFolder: pathlib.Path
    device: DeviceChoice = DeviceChoice.AUTO


#
# widget
#


class CMRScriptedWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """The Slicer template's widget with the shared panel; a module overrides
    :meth:`setupSections` (connect its own widgets, ``self.ui.<name>``) and
    :meth:`updateSections` (refresh them), and starts work with :meth:`runCmr`.

    Uses ScriptedLoadableModuleWidget base class, available at:
    https://github.com/Slicer/Slicer/blob/main/Base/Python/slicer/ScriptedLoadableModule.py
    """

    def __init__(self, parent=None) -> None:
        """Called when the user opens the module the first time and the widget is initialized."""
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)  # needed for parameter node observation
        self.logic = None
        self.panel = None
        self.ui = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None

    # ---- the module's part -------------------------------------------------------------
    def setupSections(self) -> None:
        """Connect the module's own widgets (called once by :meth:`setup`)."""

    def updateSections(self) -> None:
        """Refresh the module's own widgets: after a parameter change and when a worker
        started or finished (``self.panel.status.busy``)."""

    def cleanupSections(self) -> None:
        """Release what the module's sections hold on to (e.g. observers on result nodes):
        called before the scene closes and when the widget is destroyed."""

    def runCmr(self, cliArgs: list[str], text: str, onFinished: Callable[[Any], None]) -> bool:
        """Run ``cmr <cliArgs>`` in a worker process with the panel's device, status, progress
        and Cancel (:meth:`CMRCommonLib.widgets.CMRPanel.runCmr`); ``onFinished(result)`` runs
        on the main thread, then :meth:`updateSections`."""

        def finished(result: Any) -> None:
            try:
                onFinished(result)
            finally:
                self.updateSections()

        started = self.panel.runCmr(cliArgs, text, finished)
        self.updateSections()
        return started

    # ---- Slicer's widget life cycle ----------------------------------------------------
    def setup(self) -> None:
        """Called when the user opens the module the first time and the widget is initialized."""
        ScriptedLoadableModuleWidget.setup(self)
        from .widgets import CMRPanel, loadPanelUI

        # The shared panel (.ui of CMRCommonLib) with the module's own .ui (Qt Designer) inserted.
        panelWidget, self.ui = loadPanelUI(self.resourcePath(f"UI/{self.moduleName}.ui"), slicer.mrmlScene)
        self.layout.addWidget(panelWidget)
        self.logic = moduleClass(self, "Widget", "Logic")()
        self.panel = CMRPanel(self.ui, self.logic, self.moduleName)
        self.setupSections()

        # These connections ensure that we update parameter node when scene is closed
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)

        # Make sure parameter node is initialized (needed for module reload)
        self.initializeParameterNode()

    def cleanup(self) -> None:
        """Called when the application closes and the module widget is destroyed."""
        self.cleanupSections()
        self.removeObservers()
        if self.panel is not None:
            self.panel.cleanup()

    def enter(self) -> None:
        """Called each time the user opens this module."""
        self.initializeParameterNode()
        self.panel.enter()

    def exit(self) -> None:
        """Called each time the user opens a different module."""
        # Do not react to parameter node changes (GUI will be updated when the user enters into the module)
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified)

    def onSceneStartClose(self, caller, event) -> None:
        """Called just before the scene is closed."""
        self.cleanupSections()
        # Parameter node will be reset, do not use it anymore
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        """Called just after the scene is closed."""
        # If this module is shown while the scene is closed then recreate a new parameter node immediately
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        """Ensure parameter node exists and observed."""
        self.setParameterNode(self.logic.getParameterNode())

    def setParameterNode(self, inputParameterNode) -> None:
        """
        Set and observe parameter node (the module's ``<ModuleName>ParameterNode``).
        Observation is needed because when the parameter node is changed then the GUI must be updated immediately.
        """
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            # Note: in the .ui files, a Qt dynamic property called "SlicerParameterName" is set on each
            # ui element that needs connection. Writing the saved folder into the directory button
            # must not start a scan: only a folder the user picks does.
            self.panel.study.autoScan = False
            try:
                self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            finally:
                self.panel.study.autoScan = True
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified)
            self._onParameterNodeModified()

    def _onParameterNodeModified(self, caller=None, event=None) -> None:
        if self._parameterNode:
            self.panel.setDeviceChoice(self._parameterNode.device)
        self.updateSections()


#
# logic
#


class CMRScriptedLogic(ScriptedLoadableModuleLogic):
    """Module logic for the Slicer application: delegates to the module's Qt-free logic
    (:meth:`createImpl`: the ``CMRModuleLogicBase`` subclass of ``<ModuleName>Lib.logic``)
    working on ``scene`` (default ``slicer.mrmlScene``).

    Uses ScriptedLoadableModuleLogic base class, available at:
    https://github.com/Slicer/Slicer/blob/main/Base/Python/slicer/ScriptedLoadableModule.py
    """

    def __init__(self, scene=None) -> None:
        """Called when the logic class is instantiated. ``scene`` defaults to ``slicer.mrmlScene``."""
        ScriptedLoadableModuleLogic.__init__(self)
        self._scene = scene
        self._impl = None

    def createImpl(self, scene) -> Any:
        """The module's Qt-free logic on ``scene``: the :class:`~CMRCommonLib.module_logic.CMRModuleLogicBase`
        subclass of ``<ModuleName>Lib.logic`` whose ``MODULE_NAME`` is this module (imported on
        first use, so that importing the module file imports no cmrlib)."""
        from .module_logic import CMRModuleLogicBase

        moduleName = moduleNameOf(self, "Logic")
        lib = importlib.import_module(f"{moduleName}Lib.logic")
        found = [c for c in vars(lib).values() if isinstance(c, type) and issubclass(c, CMRModuleLogicBase)
                 and c.MODULE_NAME == moduleName]
        if len(found) != 1:
            raise TypeError(f"{lib.__name__} must define one CMRModuleLogicBase subclass with MODULE_NAME "
                            f"{moduleName!r}; found {[c.__name__ for c in found]}")
        return found[0](scene)

    @property
    def impl(self) -> Any:
        """The Qt-free logic (created on first use)."""
        if self._impl is None:
            self._impl = self.createImpl(self._scene if self._scene is not None else slicer.mrmlScene)
        return self._impl

    def getParameterNode(self):
        """The module's typed parameter node (``<ModuleName>ParameterNode``)."""
        return moduleClass(self, "Logic", "ParameterNode")(super().getParameterNode())

    def scan(self, folder: str | pathlib.Path, progress=None):
        """Scan a DICOM folder for CMR series (see ``CMRCommonLib.study_loader.StudyLoader.scan``).
        ``progress(phase, done, total, message)`` is called per file."""
        return self.impl.scan(folder, progress)

    def load(self, series, progress=None):
        """Load a scanned series (``SeriesInfo`` or its index in the scan) into the scene as a
        volume or a sequence; returns ``CMRCommonLib.study_loader.LoadedSeries``."""
        return self.impl.load(series, progress)


#
# tests
#


class CMRTestMixin:
    """Self-tests every SlicerCMR module runs inside Slicer (Developer mode: "Reload and Test"),
    mixed into the module's ``ScriptedLoadableModuleTest`` subclass (a mixin, not a TestCase,
    so that unittest never collects it on its own). ``runTest`` runs every ``test_`` method."""

    @property
    def moduleName(self) -> str:
        return moduleNameOf(self, "Test")

    def setUp(self) -> None:
        """Reset the scene before each test."""
        slicer.mrmlScene.Clear()

    def runTest(self) -> None:
        """Run all tests of the module."""
        for name in sorted(n for n in dir(self) if n.startswith("test_")):
            self.setUp()
            getattr(self, name)()

    def newLogic(self) -> Any:
        """A new ``<ModuleName>Logic`` on ``slicer.mrmlScene``."""
        return moduleClass(self, "Test", "Logic")()

    def moduleWidget(self) -> Any:
        """The module's widget in the running application."""
        return getattr(slicer.modules, self.moduleName.lower()).widgetRepresentation().self()

    @contextlib.contextmanager
    def loadedSyntheticStudy(self) -> Iterator[tuple[Any, Any, dict[str, Any]]]:
        """Write the synthetic study, scan it and load every series with a new logic, checking
        geometry and frames; yields (logic, study, {kind: LoadedSeries})."""
        from . import testing

        self.delayDisplay("Writing a synthetic CMR study")
        with tempfile.TemporaryDirectory() as folder:
            study = testing.write_synthetic_study(folder)
            logic = self.newLogic()
            testing.check_scan(self, logic.impl, study)
            yield logic, study, testing.check_load(self, logic.impl, study)

    def test_LoadStudy(self) -> None:
        """Logic: scan the synthetic study and load each series (geometry and frames checked);
        of the module's kinds (``USED_KINDS``), each loaded series is found, the others are absent."""
        with self.loadedSyntheticStudy() as (logic, _study, loaded):
            for kind in logic.impl.USED_KINDS:
                expected = [loaded[kind].node] if kind in loaded else []
                self.assertEqual(logic.impl.loaded_nodes([kind]), expected, kind)
        self.delayDisplay("Test passed")

    def test_ParameterNode(self) -> None:
        """Parameter node: typed defaults and round trip through the scene."""
        logic = self.newLogic()
        parameterNode = logic.getParameterNode()
        self.assertEqual(parameterNode.device, DeviceChoice.AUTO)
        parameterNode.device = DeviceChoice.CPU
        parameterNode.studyFolder = pathlib.Path(tempfile.gettempdir())
        again = logic.getParameterNode()
        self.assertEqual(again.device, DeviceChoice.CPU)
        self.assertEqual(again.studyFolder, pathlib.Path(tempfile.gettempdir()))
        self.delayDisplay("Test passed")

    def test_Panel(self) -> None:
        """Widget: scan a folder from the panel, fill the table, load the selected series; the
        help and the capabilities line come from the capability registry."""
        from . import help_text, testing
        from .widgets import checkPanelScanAndLoad

        widget = self.moduleWidget()
        self.assertEqual(widget.ui.capabilitiesLabel.text, help_text.summary_text(self.moduleName))
        self.assertIn(help_text.STUDY_LOADER_HELP, getattr(slicer.modules, self.moduleName.lower()).helpText)
        with tempfile.TemporaryDirectory() as folder:
            study = testing.write_synthetic_study(folder)
            checkPanelScanAndLoad(self, widget, study)
        self.delayDisplay("Test passed")

    def test_WorkerProgress(self) -> None:
        """Status area: a worker process reports CMR-PROGRESS lines and finishes."""
        from .widgets import checkWorkerProgress

        checkWorkerProgress(self, self.moduleWidget().panel)
        self.delayDisplay("Test passed")

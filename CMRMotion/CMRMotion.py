"""CMR Motion -- 3D Slicer scripted module of the SlicerCMR extension.

MOLLI/ShMOLLI T1 fitting and MOCOnet motion correction.

The widget only wires ``Resources/UI/CMRMotion.ui`` to the parameter node and the logic; the
logic (:class:`MotionLogic` in ``CMRMotionLib/logic.py``) is Qt-free and also runs headless.
"""
import pathlib
import tempfile

import vtk

import slicer
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import parameterNodeWrapper
from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleLogic,
                                           ScriptedLoadableModuleTest, ScriptedLoadableModuleWidget)
from slicer.util import VTKObservationMixin

from CMRCommonLib.device_choice import DeviceChoice

#
# CMRMotion
#


class CMRMotion(ScriptedLoadableModule):
    """Uses ScriptedLoadableModule base class, available at:
    https://github.com/Slicer/Slicer/blob/main/Base/Python/slicer/ScriptedLoadableModule.py
    """

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("CMR Motion")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Cardiac")]
        self.parent.dependencies = []
        self.parent.contributors = ["SlicerCMR developers"]
        self.parent.helpText = _("""
T1 mapping from MOLLI/ShMOLLI inversion-recovery-weighted (IRW) images: pixel-wise T1 and R² maps,
groupwise motion correction of the IRW frames with MOCOnet, and a classical registration
baseline.<br>Panel now: the <b>CMR study</b> section scans a DICOM folder, lists its series as
classified by SlicerCMR (cine, MOLLI/ShMOLLI inversion-recovery-weighted images with their inversion
times, T1 map, LGE PSIR / magnitude, or unknown with the reason) and loads the selected one: a
volume, or a sequence for multi-frame series. The processing steps listed in the panel are added as
they land; each is already available from the <code>cmr</code> command line once
installed.<br>Bundled models are trained on a synthetic CMR phantom; results from them are
phantom-trained results.
""")
        self.parent.acknowledgementText = _("""
Methods: MOCOnet groupwise motion correction of T1-mapping IRW images and three-parameter T1 fitting
with polarity restoration and Look-Locker correction.<br>Part of the SlicerCMR extension. Networks
run with PyTorch, provided by the PyTorch extension (SlicerPyTorch).
""")


#
# CMRMotionParameterNode
#


@parameterNodeWrapper
class CMRMotionParameterNode:
    """
    The parameters of the module panel, saved with the scene.

    studyFolder - DICOM folder of the CMR study shown in the "CMR study" section.
    device - where the networks run: passed as CMR_DEVICE (auto, cpu, cuda) to worker processes.
    irwSequence - the IRW (MOLLI/ShMOLLI) sequence to correct and map.
    method - motion correction: moconet, classical or none.
    """

    studyFolder: pathlib.Path
    device: DeviceChoice = DeviceChoice.AUTO
    irwSequence: slicer.vtkMRMLSequenceNode
    method: str = "moconet"


#
# CMRMotionWidget
#


class CMRMotionWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Uses ScriptedLoadableModuleWidget base class, available at:
    https://github.com/Slicer/Slicer/blob/main/Base/Python/slicer/ScriptedLoadableModule.py
    """

    def __init__(self, parent=None) -> None:
        """Called when the user opens the module the first time and the widget is initialized."""
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)  # needed for parameter node observation
        self.logic = None
        self.panel = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None

    def setup(self) -> None:
        """Called when the user opens the module the first time and the widget is initialized."""
        ScriptedLoadableModuleWidget.setup(self)

        # Load widget from .ui file (created by Qt Designer).
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/CMRMotion.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)

        self.logic = CMRMotionLogic()

        # The "CMR study" section, device row and status area are shared by all SlicerCMR modules.
        from CMRCommonLib.widgets import CMRPanel

        self.panel = CMRPanel(self.ui, self.logic, "CMRMotion",
                              requirementsPath=self.resourcePath("CMRMotion-requirements.txt"))
        self._outputs = None
        self._workFolder = None
        self.ui.applyButton.connect("clicked(bool)", self.onApply)
        self.ui.compareR2Button.connect("clicked(bool)", self.onCompareR2)
        self.ui.irwSequenceSelector.connect("currentNodeChanged(vtkMRMLNode*)", self._updateButtons)

        # These connections ensure that we update parameter node when scene is closed
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)

        # Make sure parameter node is initialized (needed for module reload)
        self.initializeParameterNode()

    def cleanup(self) -> None:
        """Called when the application closes and the module widget is destroyed."""
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

    def setParameterNode(self, inputParameterNode: "CMRMotionParameterNode | None") -> None:
        """
        Set and observe parameter node.
        Observation is needed because when the parameter node is changed then the GUI must be updated immediately.
        """
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            # Note: in the .ui file, a Qt dynamic property called "SlicerParameterName" is set on each
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
        self._updateButtons()

    def _updateButtons(self, *_) -> None:
        busy = self.panel.status.busy
        self.ui.applyButton.enabled = self.ui.irwSequenceSelector.currentNode() is not None and not busy
        self.ui.compareR2Button.enabled = self._outputs is not None and self._outputs.r2_before is not None

    def onApply(self) -> None:
        """Export the selected IRW sequence and run `cmr motion` in a worker process."""
        from cmrlib.errors import CMRError
        from CMRCommonLib.runner import cmrlib_cli_command

        node = self.ui.irwSequenceSelector.currentNode()
        method = self.ui.methodComboBox.currentText
        message = self.panel._ensureDependencies()
        if message:
            self.panel.status.showMessage(message, "warning")
        self._workFolder = pathlib.Path(tempfile.mkdtemp(prefix="CMRMotion-"))
        try:
            irwPath = self.logic.impl.export_irw(node, self._workFolder)
            args = self.logic.impl.motion_arguments(irwPath, self._workFolder / "out", method)
        except CMRError as exc:
            self.panel.status.showMessage(str(exc), "error")
            return
        name = node.GetName()
        self.panel.status.runWorker(cmrlib_cli_command(args), f"Motion correction ({method}) and T1 fit",
                                    lambda result: self._onFinished(result, name),
                                    self.panel.workerEnvironment())
        self._updateButtons()

    def _onFinished(self, result, name: str) -> None:
        if result.returncode == 0 and not result.cancelled:
            self._outputs = self.logic.impl.load_results(self._workFolder / "out", name)
            slicer.util.setSliceViewerLayers(background=self._outputs.t1, fit=True)
            self.ui.motionResultLabel.text = self._outputs.summary_text()
        self._updateButtons()

    def onCompareR2(self) -> None:
        """R² before (red view) and after (yellow view) correction, side by side."""
        if self._outputs is None or self._outputs.r2_before is None:
            return
        slicer.app.layoutManager().setLayout(slicer.vtkMRMLLayoutNode.SlicerLayoutSideBySideView)
        for viewName, node in (("Red", self._outputs.r2_before), ("Yellow", self._outputs.r2)):
            composite = slicer.app.layoutManager().sliceWidget(viewName).mrmlSliceCompositeNode()
            composite.SetBackgroundVolumeID(node.GetID())
            slicer.app.layoutManager().sliceWidget(viewName).sliceLogic().FitSliceToAll()


#
# CMRMotionLogic
#


class CMRMotionLogic(ScriptedLoadableModuleLogic):
    """Module logic for the Slicer application: delegates to the Qt-free
    :class:`CMRMotionLib.logic.MotionLogic` working on ``slicer.mrmlScene``.

    Uses ScriptedLoadableModuleLogic base class, available at:
    https://github.com/Slicer/Slicer/blob/main/Base/Python/slicer/ScriptedLoadableModule.py
    """

    def __init__(self, scene=None) -> None:
        """Called when the logic class is instantiated. ``scene`` defaults to ``slicer.mrmlScene``."""
        ScriptedLoadableModuleLogic.__init__(self)
        self._scene = scene
        self._impl = None

    @property
    def impl(self):
        """The Qt-free logic (created on first use, so that importing this module imports no cmrlib)."""
        if self._impl is None:
            from CMRMotionLib.logic import MotionLogic

            self._impl = MotionLogic(self._scene if self._scene is not None else slicer.mrmlScene)
        return self._impl

    def getParameterNode(self):
        return CMRMotionParameterNode(super().getParameterNode())

    def scan(self, folder: "str | pathlib.Path", progress=None):
        """Scan a DICOM folder for CMR series (see ``CMRCommonLib.study_loader.StudyLoader.scan``).
        ``progress(phase, done, total, message)`` is called per file."""
        return self.impl.scan(folder, progress)

    def load(self, series, progress=None):
        """Load a scanned series (``SeriesInfo`` or its index in the scan) into the scene as a
        volume or a sequence; returns ``CMRCommonLib.study_loader.LoadedSeries``."""
        return self.impl.load(series, progress)

    def irwSequences(self):
        """IRW sequence nodes loaded by the study loader."""
        return self.impl.irw_sequences()

    def inversionTimes(self, sequenceNode):
        """InversionTime (ms) of each frame of a loaded IRW sequence."""
        return self.impl.inversion_times_ms(sequenceNode)


#
# CMRMotionTest
#


class CMRMotionTest(ScriptedLoadableModuleTest):
    """
    Self-tests of the module, run inside Slicer (Developer mode: "Reload and Test").
    Uses ScriptedLoadableModuleTest base class, available at:
    https://github.com/Slicer/Slicer/blob/main/Base/Python/slicer/ScriptedLoadableModule.py
    """

    def setUp(self):
        """Reset the scene before each test."""
        slicer.mrmlScene.Clear()

    def runTest(self):
        """Run all tests of the module."""
        for test in (self.test_CMRMotionLoadStudy, self.test_CMRMotionCorrectAndMap, self.test_CMRMotionParameterNode,
                     self.test_CMRMotionPanel, self.test_CMRMotionWorkerProgress):
            self.setUp()
            test()

    def test_CMRMotionLoadStudy(self):
        """Logic: scan a synthetic DICOM study, load each series, check geometry and frames."""
        from CMRCommonLib import testing

        self.delayDisplay("Writing a synthetic CMR study")
        with tempfile.TemporaryDirectory() as folder:
            study = testing.write_synthetic_study(folder)
            logic = CMRMotionLogic()
            testing.check_scan(self, logic.impl, study)
            loaded = testing.check_load(self, logic.impl, study)
            irwNode = loaded["irw"].node
            self.assertEqual([n.GetID() for n in logic.irwSequences()], [irwNode.GetID()])
            self.assertEqual(logic.inversionTimes(irwNode), sorted(testing.SHMOLLI_TIS_MS))
        self.delayDisplay("Test passed")

    def test_CMRMotionCorrectAndMap(self):
        """Logic: T1 / R² maps of a loaded IRW sequence through the `cmr motion` worker command."""
        from CMRCommonLib import testing
        from CMRCommonLib.runner import SubprocessRunner, cmrlib_cli_command

        with tempfile.TemporaryDirectory() as folder:
            study = testing.write_synthetic_study(folder)
            logic = CMRMotionLogic()
            loaded = testing.check_load(self, logic.impl, study)
            work = pathlib.Path(folder) / "work"
            irwPath = logic.impl.export_irw(loaded["irw"].node, work)
            args = logic.impl.motion_arguments(irwPath, work / "out", "none")
            result = SubprocessRunner(cmrlib_cli_command(args)).run()
            self.assertEqual(result.returncode, 0, result.error_text(10))
            outputs = logic.impl.load_results(work / "out", "irw")
            self.assertEqual(outputs.corrected.GetNumberOfDataNodes(), len(testing.SHMOLLI_TIS_MS))
            self.assertIsNotNone(outputs.t1.GetImageData())
        self.delayDisplay("Test passed")

    def test_CMRMotionParameterNode(self):
        """Parameter node: typed defaults and round trip through the scene."""
        logic = CMRMotionLogic()
        parameterNode = logic.getParameterNode()
        self.assertEqual(parameterNode.device, DeviceChoice.AUTO)
        parameterNode.device = DeviceChoice.CPU
        parameterNode.studyFolder = pathlib.Path(tempfile.gettempdir())
        again = logic.getParameterNode()
        self.assertEqual(again.device, DeviceChoice.CPU)
        self.assertEqual(again.studyFolder, pathlib.Path(tempfile.gettempdir()))
        self.delayDisplay("Test passed")

    def test_CMRMotionPanel(self):
        """Widget: scan a folder from the panel, fill the table, load the selected series."""
        from CMRCommonLib import testing
        from CMRCommonLib.widgets import checkPanelScanAndLoad

        widget = slicer.modules.cmrmotion.widgetRepresentation().self()
        with tempfile.TemporaryDirectory() as folder:
            study = testing.write_synthetic_study(folder)
            checkPanelScanAndLoad(self, widget, study)
        self.delayDisplay("Test passed")

    def test_CMRMotionWorkerProgress(self):
        """Status area: a worker process reports CMR-PROGRESS lines and finishes."""
        from CMRCommonLib.widgets import checkWorkerProgress

        widget = slicer.modules.cmrmotion.widgetRepresentation().self()
        checkWorkerProgress(self, widget.panel)
        self.delayDisplay("Test passed")

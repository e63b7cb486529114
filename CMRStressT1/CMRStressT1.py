"""CMR Stress T1 -- 3D Slicer scripted module of the SlicerCMR extension.

Stress-to-rest T1 registration and dT1 reactivity.

The widget only wires ``Resources/UI/CMRStressT1.ui`` to the parameter node and the logic; the
logic (:class:`StressT1Logic` in ``CMRStressT1Lib/logic.py``) is Qt-free and also runs headless.
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
# CMRStressT1
#


class CMRStressT1(ScriptedLoadableModule):
    """Uses ScriptedLoadableModule base class, available at:
    https://github.com/Slicer/Slicer/blob/main/Base/Python/slicer/ScriptedLoadableModule.py
    """

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("CMR Stress T1")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Cardiac")]
        self.parent.dependencies = []
        self.parent.contributors = ["SlicerCMR developers"]
        self.parent.helpText = _("""
Stress T1 reactivity: registers the stress T1 map to the rest T1 map (Swin-U-Net VoxelMorph),
computes the pixel-wise dT1 map and slice and AHA-segment stress T1 reactivity, and draws the
bull's-eye plot.<br>Panel now: the <b>CMR study</b> section scans a DICOM folder, lists its series
as classified by SlicerCMR (cine, MOLLI/ShMOLLI inversion-recovery-weighted images with their
inversion times, T1 map, LGE PSIR / magnitude, or unknown with the reason) and loads the selected
one: a volume, or a sequence for multi-frame series. The processing steps listed in the panel are
added as they land; each is already available from the <code>cmr</code> command line once
installed.<br>Bundled models are trained on a synthetic CMR phantom; results from them are
phantom-trained results.
""")
        self.parent.acknowledgementText = _("""
Methods: unsupervised deep registration of stress to rest T1 maps (VoxelMorph with a Swin-U-Net
backbone) and pixel-wise stress T1 reactivity (dT1) maps.<br>Part of the SlicerCMR extension.
Networks run with PyTorch, provided by the PyTorch extension (SlicerPyTorch).
""")


#
# CMRStressT1ParameterNode
#


@parameterNodeWrapper
class CMRStressT1ParameterNode:
    """
    The parameters of the module panel, saved with the scene.

    studyFolder - DICOM folder of the CMR study shown in the "CMR study" section.
    device - where the networks run: passed as CMR_DEVICE (auto, cpu, cuda) to worker processes.
    """

    studyFolder: pathlib.Path
    device: DeviceChoice = DeviceChoice.AUTO


#
# CMRStressT1Widget
#


class CMRStressT1Widget(ScriptedLoadableModuleWidget, VTKObservationMixin):
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
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/CMRStressT1.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)

        self.logic = CMRStressT1Logic()

        # The "CMR study" section, device row and status area are shared by all SlicerCMR modules.
        from CMRCommonLib.widgets import CMRPanel

        self.panel = CMRPanel(self.ui, self.logic, "CMRStressT1",
                              requirementsPath=self.resourcePath("CMRStressT1-requirements.txt"))

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

    def setParameterNode(self, inputParameterNode: "CMRStressT1ParameterNode | None") -> None:
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


#
# CMRStressT1Logic
#


class CMRStressT1Logic(ScriptedLoadableModuleLogic):
    """Module logic for the Slicer application: delegates to the Qt-free
    :class:`CMRStressT1Lib.logic.StressT1Logic` working on ``slicer.mrmlScene``.

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
            from CMRStressT1Lib.logic import StressT1Logic

            self._impl = StressT1Logic(self._scene if self._scene is not None else slicer.mrmlScene)
        return self._impl

    def getParameterNode(self):
        return CMRStressT1ParameterNode(super().getParameterNode())

    def scan(self, folder: "str | pathlib.Path", progress=None):
        """Scan a DICOM folder for CMR series (see ``CMRCommonLib.study_loader.StudyLoader.scan``).
        ``progress(phase, done, total, message)`` is called per file."""
        return self.impl.scan(folder, progress)

    def load(self, series, progress=None):
        """Load a scanned series (``SeriesInfo`` or its index in the scan) into the scene as a
        volume or a sequence; returns ``CMRCommonLib.study_loader.LoadedSeries``."""
        return self.impl.load(series, progress)

    def t1MapVolumes(self):
        """T1 map volume nodes loaded by the study loader."""
        return self.impl.t1_map_volumes()


#
# CMRStressT1Test
#


class CMRStressT1Test(ScriptedLoadableModuleTest):
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
        for test in (self.test_CMRStressT1LoadStudy, self.test_CMRStressT1ParameterNode,
                     self.test_CMRStressT1Panel, self.test_CMRStressT1WorkerProgress):
            self.setUp()
            test()

    def test_CMRStressT1LoadStudy(self):
        """Logic: scan a synthetic DICOM study, load each series, check geometry and frames."""
        from CMRCommonLib import testing

        self.delayDisplay("Writing a synthetic CMR study")
        with tempfile.TemporaryDirectory() as folder:
            study = testing.write_synthetic_study(folder)
            logic = CMRStressT1Logic()
            testing.check_scan(self, logic.impl, study)
            loaded = testing.check_load(self, logic.impl, study)
            # the synthetic study has no T1 map: only series of other kinds are in the scene
            self.assertEqual(logic.t1MapVolumes(), [])
            # of the module's kinds only the IRW sequence is loaded (T1 maps are fitted from it)
            self.assertEqual([n.GetID() for n in logic.impl.loaded_nodes()], [loaded["irw"].node.GetID()])
        self.delayDisplay("Test passed")

    def test_CMRStressT1ParameterNode(self):
        """Parameter node: typed defaults and round trip through the scene."""
        logic = CMRStressT1Logic()
        parameterNode = logic.getParameterNode()
        self.assertEqual(parameterNode.device, DeviceChoice.AUTO)
        parameterNode.device = DeviceChoice.CPU
        parameterNode.studyFolder = pathlib.Path(tempfile.gettempdir())
        again = logic.getParameterNode()
        self.assertEqual(again.device, DeviceChoice.CPU)
        self.assertEqual(again.studyFolder, pathlib.Path(tempfile.gettempdir()))
        self.delayDisplay("Test passed")

    def test_CMRStressT1Panel(self):
        """Widget: scan a folder from the panel, fill the table, load the selected series."""
        from CMRCommonLib import testing
        from CMRCommonLib.widgets import checkPanelScanAndLoad

        widget = slicer.modules.cmrstresst1.widgetRepresentation().self()
        with tempfile.TemporaryDirectory() as folder:
            study = testing.write_synthetic_study(folder)
            checkPanelScanAndLoad(self, widget, study)
        self.delayDisplay("Test passed")

    def test_CMRStressT1WorkerProgress(self):
        """Status area: a worker process reports CMR-PROGRESS lines and finishes."""
        from CMRCommonLib.widgets import checkWorkerProgress

        widget = slicer.modules.cmrstresst1.widgetRepresentation().self()
        checkWorkerProgress(self, widget.panel)
        self.delayDisplay("Test passed")

"""CMR Motion -- 3D Slicer scripted module of the SlicerCMR extension.

MOLLI/ShMOLLI T1 and R² maps with MOCOnet, classical or no motion correction.

This file holds the module's own panel section ("Motion correction and T1 mapping",
``Resources/UI/CMRMotion.ui``) and its handlers; the study section, device choice, status,
progress and Cancel, the dependency check and the Slicer life cycle come from
:mod:`CMRCommonLib.module_base`. The logic (:class:`MotionLogic` in ``CMRMotionLib/logic.py``)
is Qt-free and also runs headless.
"""
import pathlib
import tempfile

import slicer
from slicer.i18n import tr as _
from slicer.parameterNodeWrapper import parameterNodeWrapper
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleTest

from CMRCommonLib.module_base import (CMRPanelParameters, CMRScriptedLogic, CMRScriptedModule, CMRScriptedWidget,
                                      CMRTestMixin)

#
# CMRMotion
#


class CMRMotion(CMRScriptedModule):
    """Title and methods; the help comes from the capability registry (CMRScriptedModule)."""

    def __init__(self, parent):
        CMRScriptedModule.__init__(self, parent, _("CMR Motion"), _("""
Methods: MOCOnet groupwise motion correction of T1-mapping IRW images and three-parameter T1 fitting
with polarity restoration and Look-Locker correction; a model-driven B-spline registration baseline.
"""))


#
# CMRMotionParameterNode
#


@parameterNodeWrapper
class CMRMotionParameterNode(CMRPanelParameters):
    """
    The parameters of the panel, saved with the scene: the shared ``studyFolder`` and ``device``
    (CMRPanelParameters) and

    irwSequence - the IRW (MOLLI/ShMOLLI) sequence to correct and map.
    method - motion correction: moconet, classical or none.
    """

    irwSequence: slicer.vtkMRMLSequenceNode
    method: str = "moconet"


#
# CMRMotionWidget
#


class CMRMotionWidget(CMRScriptedWidget):
    """The "Motion correction and T1 mapping" section and its handlers; the rest of the panel is
    CMRScriptedWidget's."""

    def setupSections(self) -> None:
        self._outputs = None
        self._workFolder = None
        self.ui.applyButton.connect("clicked(bool)", self.onApply)
        self.ui.compareR2Button.connect("clicked(bool)", self.onCompareR2)
        self.ui.irwSequenceSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.updateSections)

    def updateSections(self, *_) -> None:
        busy = self.panel.status.busy
        self.ui.applyButton.enabled = self.ui.irwSequenceSelector.currentNode() is not None and not busy
        self.ui.compareR2Button.enabled = self._outputs is not None and self._outputs.r2_before is not None

    def onApply(self) -> bool:
        """Export the selected IRW sequence and run `cmr motion` in a worker process."""
        from cmrlib.errors import CMRError

        node = self.ui.irwSequenceSelector.currentNode()
        method = self.ui.methodComboBox.currentText
        self._workFolder = pathlib.Path(tempfile.mkdtemp(prefix="CMRMotion-"))
        try:
            irwPath = self.logic.impl.export_irw(node, self._workFolder)
            args = self.logic.impl.motion_arguments(irwPath, self._workFolder / "out", method)
        except CMRError as exc:
            self.panel.status.showMessage(str(exc), "error")
            return False
        name = node.GetName()
        return self.runCmr(args, f"Motion correction ({method}) and T1 fit", lambda result: self._onFinished(result, name))

    def _onFinished(self, result, name: str) -> None:
        if result.returncode != 0 or result.cancelled:
            return  # the status line says why
        try:
            self._outputs = self.logic.impl.load_results(self._workFolder / "out", name)
        except Exception as exc:
            self.panel.status.showMessage(f"Loading the results of {self._workFolder / 'out'} failed: {exc}", "error")
            return
        slicer.util.setSliceViewerLayers(background=self._outputs.t1, fit=True)
        self.ui.motionResultLabel.text = self._outputs.summary_text()

    def onCompareR2(self) -> None:
        """R² before (red view) and after (yellow view) correction, side by side."""
        if self._outputs is None or self._outputs.r2_before is None:
            return
        layoutManager = slicer.app.layoutManager()
        layoutManager.setLayout(slicer.vtkMRMLLayoutNode.SlicerLayoutSideBySideView)
        for viewName, node in (("Red", self._outputs.r2_before), ("Yellow", self._outputs.r2)):
            layoutManager.sliceWidget(viewName).mrmlSliceCompositeNode().SetBackgroundVolumeID(node.GetID())
            layoutManager.sliceWidget(viewName).sliceLogic().FitSliceToAll()


#
# CMRMotionLogic
#


class CMRMotionLogic(CMRScriptedLogic):
    """Slicer-side logic, delegating to the Qt-free ``MotionLogic`` (IRW inputs, `cmr motion`
    arguments, results as nodes)."""

    def irwSequences(self):
        """IRW sequence nodes loaded by the study loader."""
        return self.impl.irw_sequences()

    def inversionTimes(self, sequenceNode):
        """InversionTime (ms) of each frame of a loaded IRW sequence."""
        return self.impl.inversion_times_ms(sequenceNode)


#
# CMRMotionTest
#


class CMRMotionTest(CMRTestMixin, ScriptedLoadableModuleTest):
    """Self-tests run inside Slicer ("Reload and Test"); the shared ones come from CMRTestMixin."""

    def test_CMRMotionInputs(self):
        """Logic: the loaded IRW sequence of the synthetic study and its inversion times."""
        from CMRCommonLib import testing

        with self.loadedSyntheticStudy() as (logic, _study, loaded):
            irwNode = loaded["irw"].node
            self.assertEqual([n.GetID() for n in logic.irwSequences()], [irwNode.GetID()])
            self.assertEqual(logic.inversionTimes(irwNode), sorted(testing.SHMOLLI_TIS_MS))
        self.delayDisplay("Test passed")

    def test_CMRMotionCorrectAndMap(self):
        """Logic: T1 / R² maps of a loaded IRW sequence through the `cmr motion` worker command."""
        from CMRCommonLib import testing
        from CMRCommonLib.runner import SubprocessRunner, worker_command

        with self.loadedSyntheticStudy() as (logic, study, loaded):
            work = pathlib.Path(study.folder) / "work"
            irwPath = logic.impl.export_irw(loaded["irw"].node, work)
            args, env = worker_command(logic.impl.motion_arguments(irwPath, work / "out", "none"), "cpu")
            result = SubprocessRunner(args, extra_env=env).run()
            self.assertEqual(result.returncode, 0, result.error_text(10))
            outputs = logic.impl.load_results(work / "out", "irw")
            self.assertEqual(outputs.corrected.GetNumberOfDataNodes(), len(testing.SHMOLLI_TIS_MS))
            self.assertIsNotNone(outputs.t1.GetImageData())
        self.delayDisplay("Test passed")

    def test_CMRMotionApply(self):
        """Widget: load the study's IRW series in the panel, press "Correct and map T1" (no
        correction, CPU) and wait for the worker; the T1 map is shown and summarised."""
        from CMRCommonLib.device_choice import DeviceChoice
        from CMRCommonLib.widgets import applyAndWait

        widget = self.moduleWidget()
        with self.loadedSyntheticStudy() as (_logic, _study, loaded):
            widget.initializeParameterNode()
            widget._parameterNode.device = DeviceChoice.CPU
            widget._parameterNode.method = "none"
            widget._parameterNode.irwSequence = loaded["irw"].node
            self.assertTrue(widget.ui.applyButton.enabled)
            applyAndWait(self, widget, widget.onApply)
            self.assertIsNotNone(widget._outputs)
            self.assertIn("none", widget.ui.motionResultLabel.text)
            self.assertFalse(widget.ui.compareR2Button.enabled)  # no correction: no R² before / after
        self.delayDisplay("Test passed")

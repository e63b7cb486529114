"""CMR Stress T1 -- 3D Slicer scripted module of the SlicerCMR extension.

Stress-to-rest T1 map registration (Swin-U-Net or U-Net VoxelMorph, classical SimpleITK, or
none) and dT1 stress T1 reactivity maps with per-slice and per-AHA-segment values and a
bull's-eye.

This file holds the module's own panel section ("Stress T1 reactivity",
``Resources/UI/CMRStressT1.ui``) and its handlers; the study section, device choice, status,
progress and Cancel, the dependency check and the Slicer life cycle come from
:mod:`CMRCommonLib.module_base`. The logic (:class:`StressT1Logic` in
``CMRStressT1Lib/logic.py``, the adapter and worker arguments in ``CMRStressT1Lib/stress.py``)
is Qt-free and also runs headless.
"""
import pathlib
import tempfile
import typing

import slicer
from slicer.i18n import tr as _
from slicer.parameterNodeWrapper import parameterNodeWrapper
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleTest

from CMRCommonLib.module_base import (CMRPanelParameters, CMRScriptedLogic, CMRScriptedModule, CMRScriptedWidget,
                                      CMRTestMixin)

#
# CMRStressT1
#


class CMRStressT1(CMRScriptedModule):
    """Title and methods; the help comes from the capability registry (CMRScriptedModule)."""

    def __init__(self, parent):
        CMRScriptedModule.__init__(self, parent, _("CMR Stress T1"), _("""
Methods: unsupervised deep registration (VoxelMorph with a Swin-U-Net backbone; a U-Net baseline and classical
SimpleITK registration selectable) of stress to rest T1 maps, and pixel-wise stress T1 reactivity (dT1) maps with
slice and AHA-segment summaries and a bull's-eye.
"""))


#
# CMRStressT1ParameterNode
#


@parameterNodeWrapper
class CMRStressT1ParameterNode(CMRPanelParameters):
    """
    The parameters of the panel, saved with the scene: the shared ``studyFolder`` and ``device``
    (CMRPanelParameters) and

    restMap - the rest T1 map (ms): the fixed image, its grid is the result's.
    stressMap - the stress T1 map (ms) of the same slice position(s): registered to the rest map.
    restMask - the rest map's myocardium: a label map (1 myocardium, 2 blood pool, 3 scar) or a segmentation
        with a "Myocardium" segment (the QCD result); dT1 is averaged inside it.
    stressMask - optional, the stress map's myocardium: Dice before / after, and needed by reverse.
    ahaSegments - optional AHA segment label map (1-17) of the rest map (the Landmarks result): per-segment
        dT1 and the bull's-eye.
    method - registration: swin, unet, classical or none (default swin when its weights are installed, else
        classical).
    reverse - register the rest map to the stress map (a simulated negative response).
    force - register maps whose slice positions differ by more than half a slice thickness.
    """

    restMap: slicer.vtkMRMLScalarVolumeNode
    stressMap: slicer.vtkMRMLScalarVolumeNode
    restMask: typing.Union[slicer.vtkMRMLLabelMapVolumeNode, slicer.vtkMRMLSegmentationNode, None]
    stressMask: typing.Union[slicer.vtkMRMLLabelMapVolumeNode, slicer.vtkMRMLSegmentationNode, None]
    ahaSegments: typing.Union[slicer.vtkMRMLLabelMapVolumeNode, None]
    method: str = "swin"
    reverse: bool = False
    force: bool = False


#
# CMRStressT1Widget
#


class CMRStressT1Widget(CMRScriptedWidget):
    """The "Stress T1 reactivity" section and its handlers; the rest of the panel is
    CMRScriptedWidget's."""

    def setupSections(self) -> None:
        self._outputs = None
        self._workFolder = None
        self._methodCheckedFor = None  # the parameter node whose method was checked against the installed models
        self.ui.stressApplyButton.connect("clicked(bool)", self.onApply)
        for selector in (self.ui.restMapSelector, self.ui.stressMapSelector, self.ui.restMaskSelector):
            selector.connect("currentNodeChanged(vtkMRMLNode*)", self.updateSections)

    def updateSections(self, *_) -> None:
        self.checkMethod()
        busy = self.panel.status.busy
        chosen = all(s.currentNode() is not None
                     for s in (self.ui.restMapSelector, self.ui.stressMapSelector, self.ui.restMaskSelector))
        self.ui.stressApplyButton.enabled = chosen and not busy

    def cleanupSections(self) -> None:
        """Forget the shown result (scene closing, widget destroyed)."""
        self._outputs = None

    def checkMethod(self) -> None:
        """Once per parameter node: a network method whose weights are not installed becomes the
        default (swin when installed, else classical), so the combo box starts on what can run."""
        node = self._parameterNode
        if node is None or node is self._methodCheckedFor:
            return
        self._methodCheckedFor = node
        try:
            from CMRStressT1Lib.stress import default_method, method_available

            if not method_available(node.method):
                node.method = default_method()
        except Exception as exc:  # cmrlib missing: the dependency check says so on Apply
            self.panel.status.showMessage(f"Registration methods could not be checked: {exc}", "warning")

    def onApply(self) -> bool:
        """Write the selected maps and masks and run `cmr stress` in a worker process."""
        from cmrlib.errors import CMRError

        rest = self.ui.restMapSelector.currentNode()
        method = self.ui.methodComboBox.currentText
        self._workFolder = pathlib.Path(tempfile.mkdtemp(prefix="CMRStressT1-"))
        try:
            args = self.logic.impl.stress_arguments(
                rest, self.ui.stressMapSelector.currentNode(), self.ui.restMaskSelector.currentNode(),
                self._workFolder / "inputs", self._workFolder / "out",
                stress_mask=self.ui.stressMaskSelector.currentNode(), segments=self.ui.segmentsSelector.currentNode(),
                method=method, reverse=bool(self.ui.reverseCheckBox.checked), force=bool(self.ui.forceCheckBox.checked))
        except CMRError as exc:
            self.panel.status.showMessage(str(exc), "error")
            return False
        name = rest.GetName()
        return self.runCmr(args, f"Stress T1 reactivity ({method})",
                           lambda result: self._onFinished(result, rest, name))

    def _onFinished(self, result, rest, name: str) -> None:
        if result.returncode != 0 or result.cancelled:
            return  # the status line says why
        from CMRStressT1Lib.stress import legend_text

        try:
            self._outputs = self.logic.impl.load_stress_results(self._workFolder / "out", name, rest)
        except Exception as exc:
            self.panel.status.showMessage(f"Loading the results of {self._workFolder / 'out'} failed: {exc}", "error")
            return
        slicer.util.resetSliceViews()  # the adapter put the dT1 map over the grey rest map in every view
        self.ui.stressResultLabel.text = self._outputs.summary_text()
        self.ui.stressLegendLabel.text = legend_text()
        self.showTables()
        self.showBullseye()
        warning = self._outputs.qc_warning()
        if warning:
            self.panel.status.showMessage(f"Finished; check the flagged slices: {warning}", "warning")

    def showTables(self) -> None:
        """The per-slice and per-segment rows of the shown result."""
        import qt

        from CMRStressT1Lib.stress import SEGMENT_COLUMNS, SLICE_COLUMNS, table_cells

        outputs = self._outputs
        for table, rows, columns in ((self.ui.stressSliceTable, outputs.slice_rows if outputs else [], SLICE_COLUMNS),
                                     (self.ui.stressSegmentTable, outputs.segment_rows if outputs else [],
                                      SEGMENT_COLUMNS)):
            table.clearContents()
            table.setColumnCount(len(columns))
            table.setHorizontalHeaderLabels(list(columns))
            cells = table_cells(rows, columns)
            table.setRowCount(len(cells))
            for r, row in enumerate(cells):
                for c, text in enumerate(row):
                    table.setItem(r, c, qt.QTableWidgetItem(text))
            table.resizeColumnsToContents()

    def showBullseye(self) -> None:
        """The bull's-eye of segmental dT1 (none without AHA segments)."""
        import qt

        path = self._outputs.bullseye if self._outputs is not None else None
        if path is None or not pathlib.Path(path).is_file():
            self.ui.stressBullseyeLabel.clear()
            self.ui.stressBullseyeLabel.text = "No AHA segments chosen: no bull's-eye." if self._outputs else ""
            return
        # through QImage: a QPixmap loaded by file name may come from Qt's cache, not the new file
        self.ui.stressBullseyeLabel.setPixmap(qt.QPixmap.fromImage(qt.QImage(str(path))).scaledToWidth(
            360, qt.Qt.SmoothTransformation))


#
# CMRStressT1Logic
#


class CMRStressT1Logic(CMRScriptedLogic):
    """Slicer-side logic, delegating to the Qt-free ``StressT1Logic`` (finds the T1 maps; `cmr stress`
    worker arguments, results as nodes)."""

    def t1MapVolumes(self):
        """T1 map volumes loaded by the study loader."""
        return self.impl.t1_map_volumes()


#
# CMRStressT1Test
#


class CMRStressT1Test(CMRTestMixin, ScriptedLoadableModuleTest):
    """Self-tests run inside Slicer ("Reload and Test"); the shared ones come from CMRTestMixin."""

    def test_CMRStressT1Adapter(self):
        """Adapter: a real `cmr stress` result (the capability's example, classical registration)
        becomes the registered map, the dT1 map in the diverging colours (window -12..12 %,
        myocardium only) and the per-slice and per-segment tables equal to result.json."""
        import numpy as np

        from cmrlib.mrml import image_from_volume_node, rows_from_table_node
        from cmrlib.stress.outputs import read_result, write_example
        from CMRStressT1Lib.stress import COLOUR_TABLE_NAME, OUTSIDE, outputs_to_nodes

        with tempfile.TemporaryDirectory() as folder:
            out = pathlib.Path(folder) / "stress"
            write_example(out)
            result = read_result(out)
        outputs = outputs_to_nodes(slicer.mrmlScene, result, "example")
        summary = result["summary"]
        shown = image_from_volume_node(outputs.dt1).array
        inside = result["myocardium"].array > 0
        np.testing.assert_allclose(shown[inside], result["dt1"].array[inside], rtol=1e-6)
        self.assertTrue(np.all(shown[~inside] == OUTSIDE))
        display = outputs.dt1.GetDisplayNode()
        self.assertEqual(display.GetColorNode().GetName(), COLOUR_TABLE_NAME)
        self.assertEqual((display.GetWindowLevelMin(), display.GetWindowLevelMax()), (-12.0, 12.0))
        self.assertTrue(display.GetApplyThreshold())
        rows = rows_from_table_node(outputs.slice_table)
        self.assertEqual([r["dT1 mean (%)"] for r in rows], [s["dt1_percent"] for s in summary["slices"]])
        segments = rows_from_table_node(outputs.segment_table)
        self.assertEqual([(int(r["segment"]), r["dT1 mean (%)"]) for r in segments],
                         [(s["segment"], s["mean"]) for s in summary["segment_stats"]])
        self.delayDisplay("Test passed")

    def test_CMRStressT1Worker(self):
        """Logic: a phantom rest / stress pair with its masks and AHA segments as nodes, through the
        `cmr stress` worker command (classical, CPU), loaded back: one table row per slice with
        result.json's values, a segment table and the bull's-eye."""
        import json

        from cmrlib.mrml import rows_from_table_node
        from CMRCommonLib.runner import SubprocessRunner, worker_command
        from CMRStressT1Lib.stress import phantom_pair_nodes

        logic = self.newLogic()
        nodes = phantom_pair_nodes(slicer.mrmlScene)
        with tempfile.TemporaryDirectory() as folder:
            work = pathlib.Path(folder)
            args = logic.impl.stress_arguments(nodes["rest"], nodes["stress"], nodes["rest_mask"], work / "inputs",
                                               work / "out", stress_mask=nodes["stress_mask"],
                                               segments=nodes["segments"], method="classical")
            command, env = worker_command(args, "cpu")
            result = SubprocessRunner(command, extra_env=env).run()
            self.assertEqual(result.returncode, 0, result.error_text(10))
            outputs = logic.impl.load_stress_results(work / "out", "phantom", nodes["rest"])
            summary = json.loads((work / "out" / "result.json").read_text())
            self.assertIsNotNone(outputs.bullseye)
        rows = rows_from_table_node(outputs.slice_table)
        self.assertEqual([r["dT1 mean (%)"] for r in rows], [s["dt1_percent"] for s in summary["slices"]])
        self.assertEqual(summary["method"], "classical")
        self.assertGreater(len(outputs.segment_rows), 0)
        self.delayDisplay("Test passed")

    def test_CMRStressT1Apply(self):
        """Widget: the phantom pair chosen in the panel, "Compute dT1" (classical, CPU), waiting for
        the worker: the tables, the legend line and the bull's-eye are shown."""
        from CMRCommonLib.device_choice import DeviceChoice
        from CMRCommonLib.widgets import applyAndWait
        from CMRStressT1Lib.stress import phantom_pair_nodes

        nodes = phantom_pair_nodes(slicer.mrmlScene)
        widget = self.moduleWidget()
        widget.initializeParameterNode()
        parameters = widget._parameterNode
        parameters.device = DeviceChoice.CPU
        parameters.method = "classical"
        parameters.restMap, parameters.stressMap = nodes["rest"], nodes["stress"]
        parameters.restMask, parameters.stressMask = nodes["rest_mask"], nodes["stress_mask"]
        parameters.ahaSegments = nodes["segments"]
        self.assertTrue(widget.ui.stressApplyButton.enabled)
        applyAndWait(self, widget, widget.onApply)
        outputs = widget._outputs
        self.assertIsNotNone(outputs)
        self.assertEqual(widget.ui.stressSliceTable.rowCount, len(outputs.slice_rows))
        self.assertEqual(widget.ui.stressSegmentTable.rowCount, len(outputs.segment_rows))
        self.assertIn("-12", widget.ui.stressLegendLabel.text)
        self.assertFalse(widget.ui.stressBullseyeLabel.pixmap.isNull())
        self.delayDisplay("Test passed")

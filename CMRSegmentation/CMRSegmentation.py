"""CMR Segmentation -- 3D Slicer scripted module of the SlicerCMR extension.

QCD myocardium / blood-pool segmentation with a predicted Dice and QC per slice; RV insertion /
LV centre landmarks with AHA segments as `cmr landmarks` results; LGE-cine fusion scar is planned
(not in this version).

This file holds the module's own panel section ("QCD segmentation",
``Resources/UI/CMRSegmentation.ui``) and its handlers; the study section, device choice, status,
progress and Cancel, the dependency check and the Slicer life cycle come from
:mod:`CMRCommonLib.module_base`. The logic (:class:`SegmentationLogic` in
``CMRSegmentationLib/logic.py``, the QCD adapter in ``CMRSegmentationLib/qcd.py``) is Qt-free and
also runs headless.
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
# CMRSegmentation
#


class CMRSegmentation(CMRScriptedModule):
    """Title and methods; the help comes from the capability registry (CMRScriptedModule)."""

    def __init__(self, parent):
        CMRScriptedModule.__init__(self, parent, _("CMR Segmentation"), _("""
Methods: quality-control-driven (QCD) U-Net ensemble segmentation of the myocardium and blood pool with a
predicted Dice per slice, and two-stage RV insertion point / LV centre landmark regression with AHA segments.
LGE-cine image-fusion scar quantification is planned (not in this version).
"""))


#
# CMRSegmentationParameterNode
#


@parameterNodeWrapper
class CMRSegmentationParameterNode(CMRPanelParameters):
    """
    The parameters of the panel, saved with the scene: the shared ``studyFolder`` and ``device``
    (CMRPanelParameters) and

    qcdInput - the volume (or sequence: its shown frame) QCD segments.
    qcdThreshold - QC threshold on the predicted Dice (0.05-0.95): slices below it fail QC.
    """

    qcdInput: typing.Union[slicer.vtkMRMLScalarVolumeNode, slicer.vtkMRMLSequenceNode, None]
    qcdThreshold: float = 0.7


#
# CMRSegmentationWidget
#


class CMRSegmentationWidget(CMRScriptedWidget):
    """The "QCD segmentation" section and its handlers; the rest of the panel is CMRScriptedWidget's."""

    def setupSections(self) -> None:
        self._qcdOutputs = None
        self._qcdWorkFolder = None
        self._qcdVolume = None  # the node the shown result was made from, and its frame (sequences)
        self._qcdFrame = None
        self.ui.qcdApplyButton.connect("clicked(bool)", self.onQCDApply)
        self.ui.qcdExportButton.connect("clicked(bool)", self.onQCDExport)
        self.ui.qcdInputSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.updateSections)
        self.ui.qcdSliceTable.connect("cellClicked(int,int)", self.onQCDSliceClicked)

    def updateSections(self, *_) -> None:
        busy = self.panel.status.busy
        self.ui.qcdApplyButton.enabled = self.ui.qcdInputSelector.currentNode() is not None and not busy
        self.ui.qcdExportButton.enabled = self._qcdOutputs is not None and self._qcdVolume is not None and not busy

    def onQCDApply(self) -> bool:
        """Export the selected volume (or the sequence's shown frame) and run `cmr segment` in a worker process."""
        from cmrlib.errors import CMRError
        from CMRSegmentationLib.qcd import selected_frame

        node = self.ui.qcdInputSelector.currentNode()
        threshold = float(self.ui.qcdThresholdSpinBox.value)
        self._qcdWorkFolder = pathlib.Path(tempfile.mkdtemp(prefix="CMRSegmentation-QCD-"))
        frame = selected_frame(node) if node is not None and node.IsA("vtkMRMLSequenceNode") else None
        try:
            inputPath = self.logic.impl.export_qcd_input(node, self._qcdWorkFolder, frame)
            args = self.logic.impl.segment_arguments(inputPath, self._qcdWorkFolder / "out", threshold)
        except CMRError as exc:
            self.panel.status.showMessage(str(exc), "error")
            return False
        name = node.GetName() if frame is None else f"{node.GetName()} frame {frame + 1}"
        return self.runCmr(args, "QCD segmentation", lambda result: self._onQCDFinished(result, node, frame, name))

    def _onQCDFinished(self, result, node, frame, name: str) -> None:
        if result.returncode != 0 or result.cancelled:
            return  # the status line says why
        from cmrlib.mrml import proxy_node_for

        volume = proxy_node_for(node) if frame is not None else node
        try:
            self._qcdOutputs = self.logic.impl.load_qcd_results(self._qcdWorkFolder / "out", name, volume)
        except Exception as exc:
            self.panel.status.showMessage(f"Loading the results of {self._qcdWorkFolder / 'out'} failed: {exc}", "error")
            return
        self._qcdVolume, self._qcdFrame = node, frame
        if volume is not None:
            slicer.util.setSliceViewerLayers(background=volume, fit=True)
        self.ui.qcdResultLabel.text = self._qcdOutputs.summary_text()
        self.fillQCDTable()
        failed = self._qcdOutputs.failed_slices
        if failed:  # show the first slice to review
            self.showQCDSlice(failed[0])

    def fillQCDTable(self) -> None:
        """The per-slice rows of the shown result, the QC cell red (FAIL) or green (pass)."""
        import qt

        from CMRSegmentationLib.qcd import TABLE_COLUMNS, table_cells

        table = self.ui.qcdSliceTable
        table.clearContents()
        rows = table_cells(self._qcdOutputs.rows if self._qcdOutputs is not None else [])
        table.setColumnCount(len(TABLE_COLUMNS))
        table.setHorizontalHeaderLabels(list(TABLE_COLUMNS))
        table.setRowCount(len(rows))
        for r, cells in enumerate(rows):
            for c, (text, colour) in enumerate(cells):
                item = qt.QTableWidgetItem(text)
                item.setToolTip(cells[-1][0] or text)  # the reason, where there is one
                if colour is not None:
                    item.setBackground(qt.QBrush(qt.QColor(*colour)))
                table.setItem(r, c, item)
        table.resizeColumnsToContents()

    def onQCDSliceClicked(self, row: int, _column: int = 0) -> None:
        if self._qcdOutputs is not None and 0 <= row < len(self._qcdOutputs.rows):
            self.showQCDSlice(int(self._qcdOutputs.rows[row]["slice"]) - 1)

    def showQCDSlice(self, index: int) -> None:
        """Centre the slice views on slice ``index`` (0-based) of the shown result, in the input's planes."""
        from cmrlib.mrml import proxy_node_for

        node = self._qcdVolume
        volume = proxy_node_for(node) if node is not None and node.IsA("vtkMRMLSequenceNode") else node
        self.logic.impl.jump_to_slice(self._qcdOutputs, index, volume)

    def onQCDExport(self) -> bool:
        """Write the input image and the (edited) QCD segmentation as a training pair into a chosen folder."""
        import qt

        from cmrlib.errors import CMRError

        if self._qcdOutputs is None or self._qcdVolume is None:
            return False
        folder = qt.QFileDialog.getExistingDirectory(slicer.util.mainWindow(), _("Folder for the training pair"))
        if not folder:
            return False
        try:
            imagePath, labelsPath = self.logic.impl.export_training_pair(
                self._qcdVolume, self._qcdOutputs.segmentation, folder, frame=self._qcdFrame)
        except CMRError as exc:
            self.panel.status.showMessage(str(exc), "error")
            return False
        self.panel.status.showMessage(f"Training pair written: {imagePath.name} and {labelsPath.name} in {folder} "
                                      f"(for `cmr train qcd --data {folder}`)", "info")
        return True


#
# CMRSegmentationLogic
#


class CMRSegmentationLogic(CMRScriptedLogic):
    """Slicer-side logic, delegating to the Qt-free ``SegmentationLogic`` (finds cine, LGE, T1 maps;
    QCD worker input and arguments, results as nodes, training-pair export)."""

    def qcdInputs(self):
        """Volumes QCD segments (LGE, T1 maps) loaded by the study loader."""
        return self.impl.qcd_inputs()


#
# CMRSegmentationTest
#


class CMRSegmentationTest(CMRTestMixin, ScriptedLoadableModuleTest):
    """Self-tests run inside Slicer ("Reload and Test"); the shared ones come from CMRTestMixin."""

    def test_CMRSegmentationQCDAdapter(self):
        """Adapter: a real `cmr segment` result (the capability's example) becomes a segmentation
        (Myocardium, Blood pool; labels round trip) and a per-slice QC table equal to result.json;
        an edited segmentation exports as a training pair that `cmr train qcd --data` reads back."""
        import numpy as np

        from cmrlib.mrml import (labels_from_segmentation_node, rows_from_table_node, segmentation_node_from_labels,
                                 volume_node_from_image)
        from cmrlib.qcd.data import user_slices
        from cmrlib.qcd.outputs import read_result, write_example
        from cmrlib.qcd.pipeline import model_installed
        from CMRSegmentationLib.qcd import BLOOD_POOL, MYOCARDIUM, QCD_LABEL_TABLE, outputs_to_nodes

        if not model_installed():
            self.skipTest("the QCD weights are not installed")
        with tempfile.TemporaryDirectory() as folder:
            out = pathlib.Path(folder) / "segment"
            write_example(out)
            result = read_result(out)
            outputs = outputs_to_nodes(slicer.mrmlScene, result, "example")
            segmentation = outputs.segmentation.GetSegmentation()
            self.assertEqual([segmentation.GetNthSegment(i).GetName() for i in range(segmentation.GetNumberOfSegments())],
                             [MYOCARDIUM, BLOOD_POOL])
            labels = labels_from_segmentation_node(outputs.segmentation, result["labels"], QCD_LABEL_TABLE)
            np.testing.assert_array_equal(labels, result["labels"].array)
            rows = rows_from_table_node(outputs.table)
            slices = result["summary"]["slices"]
            self.assertEqual([r["QC"] for r in rows], ["pass" if s["qc_pass"] else "FAIL" for s in slices])
            self.assertEqual(outputs.failed_slices, result["summary"]["failed_slices"])
            # export an edited segmentation (a myocardium ring on slice 0) with an image on the same grid
            grid = result["labels"]
            edited = np.zeros(grid.spatial_shape, np.uint8)
            n, rws, cls = grid.spatial_shape
            yy, xx = np.mgrid[:rws, :cls]
            radius = np.hypot(yy - rws / 2, xx - cls / 2)
            edited[0][radius < 10] = 2
            edited[0][(radius >= 10) & (radius < 14)] = 1
            image = grid.with_array(np.random.default_rng(0).uniform(0, 100, grid.spatial_shape).astype(np.float32))
            volume = volume_node_from_image(slicer.mrmlScene, image, "example image")
            seg = segmentation_node_from_labels(slicer.mrmlScene, edited, grid, QCD_LABEL_TABLE, "edited")
            pairs = pathlib.Path(folder) / "pairs"
            logic = self.newLogic()
            logic.impl.export_training_pair(volume, seg, pairs, "case1")
            (back,) = user_slices(pairs)
            np.testing.assert_array_equal(back.labels, edited[0])
        self.delayDisplay("Test passed")

    def test_CMRSegmentationQCDApply(self):
        """Widget: segment a phantom LGE stack from the panel (CPU) and wait for the worker; the
        table has one row per slice with the QC column of result.json, a row click moves the views."""
        from cmrlib.mrml import volume_node_from_image
        from cmrlib.phantom import Phantom, PhantomOptions, sample_subject
        from cmrlib.qcd.pipeline import model_installed
        from CMRCommonLib.device_choice import DeviceChoice
        from CMRCommonLib.widgets import waitForWorker

        if not model_installed():
            self.skipTest("the QCD weights are not installed")
        subject = sample_subject(11, PhantomOptions(matrix=96, la=False))
        k = subject.n_slices // 2
        psir, _ = Phantom(subject).lge([k - 2, k, k + 2])
        volume = volume_node_from_image(slicer.mrmlScene, psir.image, "phantom LGE")
        widget = self.moduleWidget()
        widget.initializeParameterNode()
        widget._parameterNode.device = DeviceChoice.CPU
        widget._parameterNode.qcdInput = volume
        self.assertTrue(widget.ui.qcdApplyButton.enabled)
        widget.panel.checkDependencies = False
        try:
            self.assertTrue(widget.onQCDApply(), widget.ui.statusLabel.text)
            result = waitForWorker(self, widget.panel)
        finally:
            widget.panel.checkDependencies = True
        self.assertEqual(result.returncode, 0, result.error_text(10))
        outputs = widget._qcdOutputs
        self.assertIsNotNone(outputs)
        table = widget.ui.qcdSliceTable
        self.assertEqual(table.rowCount, 3)
        self.assertEqual([table.item(r, 2).text() for r in range(3)],
                         ["pass" if s["qc_pass"] else "FAIL" for s in outputs.summary["slices"]])
        self.assertTrue(widget.ui.qcdExportButton.enabled)
        widget.onQCDSliceClicked(1, 0)
        self.delayDisplay("Test passed")

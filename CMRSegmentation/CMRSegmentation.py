"""CMR Segmentation -- 3D Slicer scripted module of the SlicerCMR extension.

QCD myocardium / blood-pool segmentation with a predicted Dice and QC per slice; RV insertion /
LV centre landmarks as editable point lists with AHA segments, their statistics and a bull's-eye
that follow the points live; LGE scar quantification (%scar, myocardial and scar volume) by the
LGE-cine fusion U-Net, the LGE-only U-Net, n-SD or FWHM, with the methods side by side.

This file holds the module's own panel sections ("QCD segmentation", "Landmarks", "Scar",
``Resources/UI/CMRSegmentation.ui``) and their handlers; the study section, device choice, status,
progress and Cancel, the dependency check and the Slicer life cycle come from
:mod:`CMRCommonLib.module_base`. The logic (:class:`SegmentationLogic` in
``CMRSegmentationLib/logic.py``, the QCD adapter in ``CMRSegmentationLib/qcd.py``, the landmarks
adapter in ``CMRSegmentationLib/landmarks.py``, the live AHA segments with their point observer
in ``CMRSegmentationLib/landmarks_live.py`` and the scar adapter and worker arguments in
``CMRSegmentationLib/scar.py``) is Qt-free and also runs headless.
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
predicted Dice per slice, two-stage RV insertion point / LV centre landmark regression with AHA segments
(editable points: the segments, their statistics and the bull's-eye are recomputed when a point moves), and LGE
scar quantification by an LGE-cine image-fusion U-Net (each LGE slice with its cine frame matched by trigger time
and slice position, aligned by LV centres), an LGE-only U-Net, n standard deviations above remote myocardium and
full width at half maximum.
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
    landmarksInput - the volume (or sequence: its shown frame) the landmarks are found on.
    landmarksMask - optional myocardium mask: a label map (1 myocardium, 2 blood pool, 3 scar) or a
        segmentation with a "Myocardium" segment (the QCD result); AHA segments need it.
    landmarksLevel - "thirds" (basal / mid / apical by thirds of the stack) or one AHA level for every slice.
    landmarksLiveUpdate - recompute the AHA segments when a point moves.
    scarLge - the short-axis LGE stack whose %scar is quantified (its grid is the result's).
    scarCine - the cine of the same study (a sequence, TriggerTime per frame): needed by the fusion U-Net.
    scarMethod - fusion, lge-only, nsd2, nsd3, nsd5 or fwhm (a U-Net without installed weights falls back to
        the first that can run, see CMRSegmentationLib.scar.default_method).
    scarMask - optional LGE myocardium for the classical methods: a label map or a segmentation (the QCD result).
    scarSegments - optional AHA segment label map of the LGE (the Landmarks result): %scar per segment, bull's-eye.
    scarLgeCentres / scarCineCentres - optional LV-centre point lists (control point label = LGE slice number,
        e.g. the previous result's, moved) overriding the detected centres that align the pair.
    scarForce - match a cine of another study or slices further apart than half a slice thickness, or
        quantify a one-slice stack.
    """

    qcdInput: typing.Union[slicer.vtkMRMLScalarVolumeNode, slicer.vtkMRMLSequenceNode, None]
    qcdThreshold: float = 0.7
    landmarksInput: typing.Union[slicer.vtkMRMLScalarVolumeNode, slicer.vtkMRMLSequenceNode, None]
    landmarksMask: typing.Union[slicer.vtkMRMLLabelMapVolumeNode, slicer.vtkMRMLSegmentationNode, None]
    landmarksLevel: str = "thirds"
    landmarksLiveUpdate: bool = True
    scarLge: typing.Union[slicer.vtkMRMLScalarVolumeNode, None]
    scarCine: typing.Union[slicer.vtkMRMLSequenceNode, None]
    scarMethod: str = "fusion"
    scarMask: typing.Union[slicer.vtkMRMLLabelMapVolumeNode, slicer.vtkMRMLSegmentationNode, None]
    scarSegments: typing.Union[slicer.vtkMRMLLabelMapVolumeNode, None]
    scarLgeCentres: typing.Union[slicer.vtkMRMLMarkupsFiducialNode, None]
    scarCineCentres: typing.Union[slicer.vtkMRMLMarkupsFiducialNode, None]
    scarForce: bool = False


#
# CMRSegmentationWidget
#


class CMRSegmentationWidget(CMRScriptedWidget):
    """The "QCD segmentation", "Landmarks" and "Scar" sections and their handlers; the rest of the
    panel is CMRScriptedWidget's."""

    def setupSections(self) -> None:
        self._qcdOutputs = None
        self._qcdWorkFolder = None
        self._qcdVolume = None  # the node the shown result was made from, and its frame (sequences)
        self._qcdFrame = None
        self.ui.qcdApplyButton.connect("clicked(bool)", self.onQCDApply)
        self.ui.qcdExportButton.connect("clicked(bool)", self.onQCDExport)
        self.ui.qcdInputSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.updateSections)
        self.ui.qcdSliceTable.connect("cellClicked(int,int)", self.onQCDSliceClicked)
        # Landmarks: the worker's point lists, the live AHA segments on them and their observer
        self._lmOutputs = None
        self._lmLive = None
        self._lmObserver = None
        self._lmWorkFolder = None
        self.ui.landmarksApplyButton.connect("clicked(bool)", self.onLandmarksApply)
        self.ui.landmarksInputSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.updateSections)
        self.ui.landmarksLiveCheckBox.connect("toggled(bool)", self.onLandmarksLiveToggled)
        # Scar: the shown result and the parameter node whose method was checked against the installed weights
        self._scarOutputs = None
        self._scarLge = None  # the LGE node the shown result was made from
        self._scarWorkFolder = None
        self._scarMethodCheckedFor = None
        self.ui.scarApplyButton.connect("clicked(bool)", self.onScarApply)
        self.ui.scarLgeSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.onScarLgeChanged)
        self.ui.scarSliceTable.connect("cellClicked(int,int)", self.onScarSliceClicked)

    def updateSections(self, *_) -> None:
        busy = self.panel.status.busy
        self.ui.qcdApplyButton.enabled = self.ui.qcdInputSelector.currentNode() is not None and not busy
        self.ui.qcdExportButton.enabled = self._qcdOutputs is not None and self._qcdVolume is not None and not busy
        self.ui.landmarksApplyButton.enabled = self.ui.landmarksInputSelector.currentNode() is not None and not busy
        self.checkScarMethod()
        self.ui.scarApplyButton.enabled = self.ui.scarLgeSelector.currentNode() is not None and not busy

    def onScarLgeChanged(self, lge) -> None:
        """An LGE chosen with no cine yet: offer the cine of its study (the user can change it)."""
        if lge is not None and self.ui.scarCineSelector.currentNode() is None:
            from CMRSegmentationLib.scar import matching_cine
            cine = matching_cine(slicer.mrmlScene, lge)
            if cine is not None:
                self.ui.scarCineSelector.setCurrentNode(cine)
        self.updateSections()

    def cleanupSections(self) -> None:
        """Remove the point observers and forget the landmarks and scar results (scene closing, widget destroyed)."""
        self.removeLandmarksObservers()
        self._lmOutputs = self._lmLive = None
        self._scarOutputs = self._scarLge = None

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
        if self._parameterNode is not None:  # the QCD result is the landmarks section's natural input
            if self._parameterNode.landmarksMask is None:
                self._parameterNode.landmarksMask = self._qcdOutputs.segmentation
            if self._parameterNode.landmarksInput is None:
                self._parameterNode.landmarksInput = node
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


    # ---- Landmarks ----------------------------------------------------------------------
    def _landmarksLevel(self):
        text = self.ui.landmarksLevelComboBox.currentText
        return None if text in ("", "thirds") else text

    def onLandmarksApply(self) -> bool:
        """Export the selected volume (or the sequence's shown frame) and the optional mask and run
        `cmr landmarks` in a worker process."""
        from cmrlib.errors import CMRError
        from CMRSegmentationLib.qcd import selected_frame

        node = self.ui.landmarksInputSelector.currentNode()
        mask = self.ui.landmarksMaskSelector.currentNode()
        level = self._landmarksLevel()
        self._lmWorkFolder = pathlib.Path(tempfile.mkdtemp(prefix="CMRSegmentation-Landmarks-"))
        frame = selected_frame(node) if node is not None and node.IsA("vtkMRMLSequenceNode") else None
        try:
            imagePath, maskPath = self.logic.impl.export_landmarks_input(node, mask, self._lmWorkFolder, frame)
            args = self.logic.impl.landmarks_arguments(imagePath, self._lmWorkFolder / "out", maskPath, level)
        except CMRError as exc:
            self.panel.status.showMessage(str(exc), "error")
            return False
        name = node.GetName() if frame is None else f"{node.GetName()} frame {frame + 1}"
        return self.runCmr(args, "Landmarks and AHA segments",
                           lambda result: self._onLandmarksFinished(result, node, mask, frame, level, name))

    def _onLandmarksFinished(self, result, node, mask, frame, level, name: str) -> None:
        if result.returncode != 0 or result.cancelled:
            return  # the status line says why
        from cmrlib.errors import CMRError
        from cmrlib.mrml import proxy_node_for
        from CMRSegmentationLib.landmarks_live import PointObserver

        self.removeLandmarksObservers()
        try:
            self._lmOutputs = self.logic.impl.load_landmarks_results(self._lmWorkFolder / "out", name)
        except Exception as exc:
            self.panel.status.showMessage(f"Loading the results of {self._lmWorkFolder / 'out'} failed: {exc}", "error")
            return
        self._lmLive = None
        text = self._lmOutputs.summary_text()
        if mask is None:
            text += "\nChoose a myocardium mask (e.g. the QCD segmentation) for AHA segments that follow the points."
        else:
            try:
                self._lmLive = self.logic.impl.live_segments(node, mask, self._lmOutputs, level=level, frame=frame,
                                                             bullseye_path=self._lmWorkFolder / "bullseye_live.png")
            except CMRError as exc:
                text += f"\nNo live AHA segments: {exc}"
        self.ui.landmarksResultLabel.text = text
        self._lmObserver = PointObserver(self.recomputeLandmarks, self._onLandmarksError)
        self._lmObserver.enabled = bool(self.ui.landmarksLiveCheckBox.checked)
        self._lmObserver.observe(self._lmOutputs.points)
        try:
            self.recomputeLandmarks(True)
        except CMRError as exc:
            self._lmLive = None
            self.ui.landmarksResultLabel.text = f"{text}\nNo live AHA segments: {exc}"
        volume = proxy_node_for(node) if frame is not None else node
        segments = self._lmLive.segments_node if self._lmLive is not None else self._lmOutputs.segments
        if volume is not None:
            slicer.util.setSliceViewerLayers(background=volume, label=segments, labelOpacity=0.5, fit=True)

    def recomputeLandmarks(self, final: bool = True):
        """Recompute the live AHA segments from the points as they are (``final``: also the
        bull's-eye) and show the result; None without live segments."""
        if self._lmLive is None:
            return None
        result = self._lmLive.recompute(bullseye=final)
        self.showLandmarksResult(result, final)
        return result

    def _onLandmarksError(self, exc) -> None:
        self.panel.status.showMessage(f"AHA segments not updated: {exc}", "error")

    def showLandmarksResult(self, result, final: bool = True) -> None:
        """The per-segment table, the summary and (``final``) the refreshed bull's-eye."""
        import qt

        from CMRSegmentationLib.landmarks_live import TABLE_COLUMNS

        head = self._lmOutputs.summary_text() if self._lmOutputs is not None else ""
        self.ui.landmarksResultLabel.text = f"{head}\n{result.summary_text()}" if head else result.summary_text()
        table = self.ui.landmarksSegmentTable
        cells = result.table_cells()
        unit = f" ({result.unit})" if result.unit else ""
        table.setColumnCount(len(TABLE_COLUMNS))
        table.setHorizontalHeaderLabels([c + unit if c in ("mean", "median") else c for c in TABLE_COLUMNS])
        table.setRowCount(len(cells))
        for r, row in enumerate(cells):
            for c, text in enumerate(row):
                table.setItem(r, c, qt.QTableWidgetItem(text))
        if final and result.bullseye is not None and pathlib.Path(result.bullseye).is_file():
            # through QImage: a QPixmap loaded by file name may come from Qt's cache, not the new file
            self.ui.landmarksBullseyeLabel.setPixmap(qt.QPixmap.fromImage(qt.QImage(str(result.bullseye))).scaledToWidth(
                360, qt.Qt.SmoothTransformation))

    def onLandmarksLiveToggled(self, checked: bool) -> None:
        if self._lmObserver is not None:
            self._lmObserver.enabled = bool(checked)
        if checked:
            self.recomputeLandmarks(True)

    def removeLandmarksObservers(self) -> None:
        if self._lmObserver is not None:
            self._lmObserver.remove()
            self._lmObserver = None


    # ---- Scar ---------------------------------------------------------------------------
    def checkScarMethod(self) -> None:
        """Once per parameter node: a U-Net method whose weights are not installed becomes the first
        method that can run (``CMRSegmentationLib.scar.default_method``), so the combo box starts on it."""
        node = self._parameterNode
        if node is None or node is self._scarMethodCheckedFor:
            return
        self._scarMethodCheckedFor = node
        try:
            from CMRSegmentationLib.scar import default_method, method_available

            if not method_available(node.scarMethod):
                node.scarMethod = default_method()
        except Exception as exc:  # cmrlib missing: the dependency check says so on Apply
            self.panel.status.showMessage(f"Scar methods could not be checked: {exc}", "warning")

    def onScarApply(self) -> bool:
        """Write the selected LGE, cine, mask, AHA segments and LV centres and run `cmr scar` in a worker process."""
        from cmrlib.errors import CMRError

        lge = self.ui.scarLgeSelector.currentNode()
        cine = self.ui.scarCineSelector.currentNode()
        method = self.ui.scarMethodComboBox.currentText
        self._scarWorkFolder = pathlib.Path(tempfile.mkdtemp(prefix="CMRSegmentation-Scar-"))
        try:
            args = self.logic.impl.scar_arguments(
                lge, self._scarWorkFolder / "inputs", self._scarWorkFolder / "out", cine=cine, method=method,
                mask=self.ui.scarMaskSelector.currentNode(), segments=self.ui.scarSegmentsSelector.currentNode(),
                lge_centres=self.ui.scarLgeCentresSelector.currentNode(),
                cine_centres=self.ui.scarCineCentresSelector.currentNode(),
                force=bool(self.ui.scarForceCheckBox.checked))
        except CMRError as exc:
            self.panel.status.showMessage(str(exc), "error")
            return False
        name = lge.GetName()
        return self.runCmr(args, f"Scar quantification ({method})",
                           lambda result: self._onScarFinished(result, lge, cine, name))

    def _onScarFinished(self, result, lge, cine, name: str) -> None:
        if result.returncode != 0 or result.cancelled:
            return  # the status line says why
        try:
            self._scarOutputs = self.logic.impl.load_scar_results(self._scarWorkFolder / "out", name, lge, cine)
        except Exception as exc:
            self.panel.status.showMessage(f"Loading the results of {self._scarWorkFolder / 'out'} failed: {exc}",
                                          "error")
            return
        if self._scarOutputs.cine is not None:  # the LGE in the red view, the matched cine in the yellow one
            slicer.app.layoutManager().setLayout(slicer.vtkMRMLLayoutNode.SlicerLayoutSideBySideView)
        slicer.util.resetSliceViews()  # the adapter put the LGE (and the cine) with the scar segmentation in the views
        text = self._scarOutputs.summary_text()
        hint = self._scarOutputs.centres_hint()
        self._scarLge = lge
        self.ui.scarResultLabel.text = f"{text}\n{hint}" if hint else text
        self.showScarTables()
        self.showScarBullseye()
        if not self._scarOutputs.summary.get("complete", True):
            self.panel.status.showMessage("Finished; some slices were not quantified: see the per-slice table",
                                          "warning")

    def showScarTables(self) -> None:
        """The per-slice and per-method rows of the shown result (the CSV files' text)."""
        import qt

        from CMRSegmentationLib.scar import table_cells

        outputs = self._scarOutputs
        for table, rows in ((self.ui.scarSliceTable, outputs.slice_rows if outputs else []),
                            (self.ui.scarMethodTable, outputs.method_rows if outputs else [])):
            columns, cells = table_cells(rows)
            table.clearContents()
            if columns:  # other methods add their %scar columns to the per-slice table
                table.setColumnCount(len(columns))
                table.setHorizontalHeaderLabels(columns)
            table.setRowCount(len(cells))
            for r, row in enumerate(cells):
                for c, text in enumerate(row):
                    table.setItem(r, c, qt.QTableWidgetItem(text))
            table.resizeColumnsToContents()

    def showScarBullseye(self) -> None:
        """The bull's-eye of %scar per AHA segment (none without AHA segments)."""
        import qt

        path = self._scarOutputs.bullseye if self._scarOutputs is not None else None
        if path is None or not pathlib.Path(path).is_file():
            self.ui.scarBullseyeLabel.clear()
            self.ui.scarBullseyeLabel.text = "No AHA segments chosen: no bull's-eye." if self._scarOutputs else ""
            return
        # through QImage: a QPixmap loaded by file name may come from Qt's cache, not the new file
        self.ui.scarBullseyeLabel.setPixmap(qt.QPixmap.fromImage(qt.QImage(str(path))).scaledToWidth(
            360, qt.Qt.SmoothTransformation))

    def onScarSliceClicked(self, row: int, _column: int = 0) -> None:
        """Centre the slice views on the clicked LGE slice, in the LGE's planes."""
        outputs = self._scarOutputs
        if outputs is None or not 0 <= row < len(outputs.slice_rows):
            return
        self.logic.impl.jump_to_slice(outputs, int(outputs.slice_rows[row]["slice"]) - 1, self._scarLge)


#
# CMRSegmentationLogic
#


class CMRSegmentationLogic(CMRScriptedLogic):
    """Slicer-side logic, delegating to the Qt-free ``SegmentationLogic`` (finds cine, LGE, T1 maps;
    QCD worker input and arguments, results as nodes, training-pair export)."""

    def qcdInputs(self):
        """Volumes QCD segments (LGE, T1 maps) loaded by the study loader."""
        return self.impl.qcd_inputs()

    def liveSegments(self, volume, mask, outputs, level=None, bullseyePath=None):
        """Live AHA segments on the point lists of a loaded landmarks result (see ``SegmentationLogic.live_segments``)."""
        return self.impl.live_segments(volume, mask, outputs, level=level, bullseye_path=bullseyePath)


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
        from CMRCommonLib.widgets import applyAndWait

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
        applyAndWait(self, widget, widget.onQCDApply)
        outputs = widget._qcdOutputs
        self.assertIsNotNone(outputs)
        table = widget.ui.qcdSliceTable
        self.assertEqual(table.rowCount, 3)
        self.assertEqual([table.item(r, 2).text() for r in range(3)],
                         ["pass" if s["qc_pass"] else "FAIL" for s in outputs.summary["slices"]])
        self.assertTrue(widget.ui.qcdExportButton.enabled)
        widget.onQCDSliceClicked(1, 0)
        self.delayDisplay("Test passed")

    def test_CMRSegmentationLandmarksLive(self):
        """Live AHA segments: point lists per slice on a ring stack give the segments of
        cmrlib.aha.aha_volume; moving an RV insertion point by 60° (observer attached) turns that
        slice's segments by one sector and refreshes the bull's-eye; a removed point leaves its
        slice without segments and with a reason; no observer is left after cleanup."""
        import math

        import numpy as np

        from cmrlib import Image
        from cmrlib.aha import aha_volume, long_axis_positions, slice_levels
        from cmrlib.mrml import lps_to_ras, markups_node_from_points, volume_node_from_image
        from CMRSegmentationLib.landmarks import LV_LABEL, RV_LABEL, SLICE_ATTRIBUTE
        from CMRSegmentationLib.landmarks_live import LiveSegments, PointObserver

        scene = slicer.mrmlScene
        n, size, centre = 6, 64, (31.37, 32.71)
        rows, cols = np.mgrid[:size, :size]
        radius = np.hypot(cols - centre[0], rows - centre[1])
        labels = np.zeros((n, size, size), np.uint8)
        labels[:, radius < 8] = 2
        labels[:, (radius >= 8) & (radius < 13)] = 1
        values = np.broadcast_to(900.0 + 3.0 * cols + rows, (n, size, size)).astype(np.float32).copy()
        image = Image(values, (1.5, 1.5, 8.0), (-40.0, -40.0, 20.0), np.eye(3), meta={"kind": "t1map"})
        volume = volume_node_from_image(scene, image, "live test T1 map")
        mask = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "live test mask")
        volume_node_from_image(scene, image.with_array(labels), "live test mask", node=mask)

        def rv(angle):
            return [centre[0] + 13.0 * math.cos(math.radians(angle)), centre[1] - 13.0 * math.sin(math.radians(angle))]

        nodes = []
        for k in range(n):
            lps = np.array([image.index_to_lps([*centre, k]), image.index_to_lps([*rv(118.3), k])])
            node = markups_node_from_points(scene, lps, [LV_LABEL, RV_LABEL], f"live test slice {k + 1}")
            node.SetAttribute(SLICE_ATTRIBUTE, str(k))
            nodes.append(node)
        with tempfile.TemporaryDirectory() as folder:
            png = pathlib.Path(folder) / "bullseye.png"
            live = LiveSegments(scene, volume, mask, nodes, bullseye_path=png)
            first = live.recompute()
            levels = slice_levels(long_axis_positions(image))
            expected = aha_volume(labels == 1, [list(centre)] * n, [rv(118.3)] * n, levels,
                                  direction=image.direction, spacing=image.spacing[:2])
            np.testing.assert_array_equal(first.segments, expected)
            picture = png.read_bytes()
            observer = PointObserver(lambda final: live.recompute(bullseye=final))
            observer.observe(nodes)
            try:
                k = n - 1  # basal (the slice axis runs superior, to the base)
                self.assertEqual(first.levels[k], "basal")
                nodes[k].SetNthControlPointPosition(1, *lps_to_ras(image.index_to_lps([*rv(178.3), k])).tolist())
                old, new = first.segments[k], live.last.segments[k]
                np.testing.assert_array_equal(new[old > 0], np.where(old[old > 0] == 1, 6, old[old > 0] - 1))
                self.assertNotEqual(png.read_bytes(), picture)
                nodes[0].RemoveNthControlPoint(0)
                self.assertFalse(live.last.segments[0].any())
                self.assertIn("LV centre", live.last.reasons[0])
            finally:
                observer.remove()
            calls = observer.calls
            nodes[k].SetNthControlPointPosition(1, *lps_to_ras(image.index_to_lps([*rv(118.3), k])).tolist())
            self.assertEqual(observer.calls, calls)
            self.assertEqual(observer.nodes, [])
        self.delayDisplay("Test passed")

    def test_CMRSegmentationLandmarksApply(self):
        """Widget: landmarks on a phantom LGE stack with its truth labels as the mask, from the panel
        (CPU); the segment table and the bull's-eye are shown, and moving a point updates them."""
        import numpy as np

        from cmrlib.image import Image
        from cmrlib.mrml import lps_to_ras, volume_node_from_image
        from cmrlib.phantom import Phantom, PhantomOptions, sample_subject
        from CMRCommonLib.device_choice import DeviceChoice
        from CMRCommonLib.widgets import applyAndWait

        subject = sample_subject(11, PhantomOptions(matrix=96, la=False))
        k = subject.n_slices // 2
        psir, _ = Phantom(subject).lge([k - 3, k - 1, k + 1, k + 3])
        volume = volume_node_from_image(slicer.mrmlScene, psir.image, "phantom LGE")
        truth = psir.labels
        labels = np.where(np.isin(truth.array, (1, 2, 3)), truth.array, 0).astype(np.uint8)
        mask = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "phantom LGE labels")
        volume_node_from_image(slicer.mrmlScene, Image(labels, truth.spacing, truth.origin, truth.direction), "",
                               node=mask)
        widget = self.moduleWidget()
        widget.initializeParameterNode()
        widget._parameterNode.device = DeviceChoice.CPU
        widget._parameterNode.landmarksInput = volume
        widget._parameterNode.landmarksMask = mask
        widget._parameterNode.landmarksLiveUpdate = True
        self.assertTrue(widget.ui.landmarksApplyButton.enabled)
        applyAndWait(self, widget, widget.onLandmarksApply)
        self.assertIsNotNone(widget._lmLive, widget.ui.landmarksResultLabel.text)
        last = widget._lmLive.last
        self.assertGreater(widget.ui.landmarksSegmentTable.rowCount, 0)
        self.assertEqual(widget.ui.landmarksSegmentTable.rowCount, len(last.stats))
        self.assertFalse(widget.ui.landmarksBullseyeLabel.pixmap.isNull())
        node = next(p for p in widget._lmOutputs.points if p is not None)
        slice_index = int(node.GetAttribute("CMR.slice"))
        before = last.segments[slice_index].copy()
        lv, rv = [0.0] * 3, [0.0] * 3
        node.GetNthControlPointPosition(0, lv)
        node.GetNthControlPointPosition(1, rv)
        turned = np.array(lv) + 0.5 * (np.array(rv) - np.array(lv)) + np.cross(np.array(rv) - np.array(lv),
                                                                               lps_to_ras(psir.image.direction[:, 2]))
        node.SetNthControlPointPosition(1, *turned.tolist())
        self.assertFalse(np.array_equal(widget._lmLive.last.segments[slice_index], before))
        widget.removeLandmarksObservers()
        self.delayDisplay("Test passed")

    def test_CMRSegmentationScarAdapter(self):
        """Adapter: a real `cmr scar` result (the capability's example, 5 SD above remote) becomes a
        segmentation "Myocardium" / "Scar" with labels.nrrd's voxels, the per-slice and per-method
        tables of slices.csv / methods.csv, the AHA segments, the bull's-eye and the LV centres."""
        import numpy as np

        from cmrlib.mrml import labels_from_segmentation_node, rows_from_table_node
        from cmrlib.scar.outputs import read_result, write_example
        from CMRSegmentationLib.scar import MYOCARDIUM, SCAR, SCAR_LABEL_TABLE

        with tempfile.TemporaryDirectory() as folder:
            out = pathlib.Path(folder) / "scar"
            write_example(out)
            result = read_result(out)
            outputs = self.newLogic().impl.load_scar_results(out, "example")
            self.assertEqual(outputs.bullseye, out / "bullseye.png")
        segmentation = outputs.segmentation.GetSegmentation()
        self.assertEqual([segmentation.GetNthSegment(i).GetName() for i in range(segmentation.GetNumberOfSegments())],
                         [MYOCARDIUM, SCAR])
        labels = labels_from_segmentation_node(outputs.segmentation, result["labels"], SCAR_LABEL_TABLE)
        np.testing.assert_array_equal(labels, result["labels"].array)
        self.assertGreater(outputs.voxel_counts()[SCAR], 0)
        self.assertEqual(len(rows_from_table_node(outputs.slice_table)), len(result["slices"]))
        self.assertEqual([r["method"] for r in rows_from_table_node(outputs.method_table)],
                         [m["method"] for m in result["methods"]])
        self.assertIsNotNone(outputs.segments)
        self.assertEqual(outputs.lge_centres.GetNumberOfControlPoints(), len(result["slices"]))
        self.delayDisplay("Test passed")

    def test_CMRSegmentationScarWorker(self):
        """Logic: a phantom LGE stack with its cine, true myocardium and AHA segments as nodes, through
        the `cmr scar` worker command (5 SD above remote, CPU), loaded back: the cine matched per
        slice, one table row per slice, the bull's-eye, the LV centres as point lists."""
        import json

        from CMRCommonLib.runner import SubprocessRunner, worker_command
        from CMRSegmentationLib.scar import phantom_scar_nodes

        logic = self.newLogic()
        nodes = phantom_scar_nodes(slicer.mrmlScene)
        with tempfile.TemporaryDirectory() as folder:
            work = pathlib.Path(folder)
            args = logic.impl.scar_arguments(nodes["lge"], work / "inputs", work / "out", cine=nodes["cine"],
                                             method="nsd5", mask=nodes["mask"], segments=nodes["segments"])
            command, env = worker_command(args, "cpu")
            result = SubprocessRunner(command, extra_env=env).run()
            self.assertEqual(result.returncode, 0, result.error_text(10))
            outputs = logic.impl.load_scar_results(work / "out", "phantom", nodes["lge"], nodes["cine"])
            summary = json.loads((work / "out" / "result.json").read_text())
            self.assertIsNotNone(outputs.bullseye)
        self.assertEqual(summary["method"], "nsd5")
        self.assertTrue(all(s["cine"]["cine_slice"] is not None for s in summary["slices"]))
        self.assertEqual(len(outputs.slice_rows), len(summary["slices"]))
        self.assertIsNotNone(outputs.cine_centres)
        self.delayDisplay("Test passed")

    def test_CMRSegmentationScarApply(self):
        """Widget: the phantom LGE, cine, mask and AHA segments chosen in the panel, "Quantify scar"
        (5 SD above remote, CPU), waiting for the worker: the result line, both tables and the
        bull's-eye are shown."""
        from CMRCommonLib.device_choice import DeviceChoice
        from CMRCommonLib.widgets import applyAndWait
        from CMRSegmentationLib.scar import phantom_scar_nodes

        nodes = phantom_scar_nodes(slicer.mrmlScene)
        widget = self.moduleWidget()
        widget.initializeParameterNode()
        parameters = widget._parameterNode
        parameters.device = DeviceChoice.CPU
        parameters.scarMethod = "nsd5"
        parameters.scarLge, parameters.scarCine = nodes["lge"], nodes["cine"]
        parameters.scarMask, parameters.scarSegments = nodes["mask"], nodes["segments"]
        self.assertTrue(widget.ui.scarApplyButton.enabled)
        applyAndWait(self, widget, widget.onScarApply)
        outputs = widget._scarOutputs
        self.assertIsNotNone(outputs)
        self.assertIn("%scar", widget.ui.scarResultLabel.text)
        self.assertEqual(widget.ui.scarSliceTable.rowCount, len(outputs.slice_rows))
        self.assertEqual(widget.ui.scarMethodTable.rowCount, len(outputs.method_rows))
        self.assertFalse(widget.ui.scarBullseyeLabel.pixmap.isNull())
        widget.onScarSliceClicked(0, 0)
        self.delayDisplay("Test passed")

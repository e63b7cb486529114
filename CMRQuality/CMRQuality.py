"""CMR Quality -- 3D Slicer scripted module of the SlicerCMR extension.

LGE certainty and LV slice level of short-axis LGE stacks: each slice classified as too basal /
LV / too apical, and each LV slice's probability that the presence or absence of LGE is equivocal,
flagged at an operating threshold, with the stack's one-line verdict; optionally every LGE volume
loaded into the scene is classified as it arrives. Also registers the SlicerCMR phantom study with
the Sample Data module. The "Labelling" section answers a labelling pool (`cmr label create`) as
one rater: visual-analogue LGE-likelihood scoring with the image in the slice views, multiple-image
ranking as 8 draggable thumbnails, and the cut-point questions; every answer is saved at once, so
a rater resumes where they stopped. The "Left-atrial 3D LGE quality" section assesses an axial
3-D LGE volume of the left atrium (`cmr la-quality`): the slices with atrium, their myocardial
nulling, sharpness, enhancement of aorta and valves and quality for fibrosis assessment, the
scan's verdict, and the LA mask and saliency over the volume.

This file holds the module's own panel sections ("LGE certainty and slice level", "Left-atrial 3D
LGE quality" and "Labelling", ``Resources/UI/CMRQuality.ui``) and their handlers; the study
section, device choice, status, progress and Cancel, the dependency check and the Slicer life
cycle come from :mod:`CMRCommonLib.module_base`. The logic (:class:`QualityLogic` in
``CMRQualityLib/logic.py``, the adapter, worker arguments, kind check and scene watcher in
``CMRQualityLib/quality.py``, the LA quality adapter, input check and worker arguments in
``CMRQualityLib/laquality.py``, the labelling session in ``CMRQualityLib/labelling.py``) is Qt-free
and also runs headless.
"""
import logging
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
# CMRQuality
#


class CMRQuality(CMRScriptedModule):
    """Title and acknowledgement; the help comes from the capability registry (CMRScriptedModule).
    Also registers the SlicerCMR sample data once the application has started."""

    def __init__(self, parent):
        CMRScriptedModule.__init__(self, parent, _("CMR Quality"), _("""
Methods: deep classification of the certainty of presence/absence of LGE per short-axis slice (EfficientNetV2) and
LV slice-level classification (too basal / LV / too apical, ResNet), both with phantom-trained demonstration
weights. Labelling tools (visual-analogue LGE-likelihood scoring and multiple-image ranking, several raters,
one pool shared with `cmr label` and its browser page): the Labelling section.
Two-stage left-atrial 3D LGE quality assessment: LA detector (U-Net, slices with atrium above a threshold t), then
ResNet-34 heads for myocardial nulling, sharpness, enhancement of aorta and valves and the quality for fibrosis
assessment, the scan's verdict the mode of its slices, HiResCAM saliency; phantom-trained demonstration weights.
"""))

        # Register the synthetic CMR phantom studies in the Sample Data module once the
        # application has started (all modules, Sample Data included, are loaded by then).
        slicer.app.connect("startupCompleted()", registerSampleData)


#
# Register sample data sets in Sample Data module
#


def registerSampleData():
    """Add the SlicerCMR phantom studies to the Sample Data module.

    Guarded: a Slicer without the Sample Data module, or a failure while registering, is
    logged and never stops this module from loading.
    """
    try:
        import SampleData  # noqa: F401
    except ImportError:
        logging.info("CMRQuality: the Sample Data module is not loaded; SlicerCMR sample data not registered")
        return
    try:
        from CMRQualityLib.sampledata import register_sample_data

        register_sample_data()
    except Exception as exc:  # never break module loading because of sample data
        logging.warning(f"CMRQuality: registering the SlicerCMR sample data failed: {exc}")


#
# CMRQualityParameterNode
#


@parameterNodeWrapper
class CMRQualityParameterNode(CMRPanelParameters):
    """
    The parameters of the panel, saved with the scene: the shared ``studyFolder`` and ``device``
    (CMRPanelParameters) and

    qualityInput - the short-axis LGE stack (PSIR or magnitude) whose slices are classified.
    qualityThreshold - probability of low certainty (0.05-0.95) at which a slice is flagged equivocal;
        0 (shown as "model default") uses the certainty model's calibrated operating threshold.
    qualityAllSlices - assess LGE certainty on every slice, also those the slice-level network puts
        outside the LV.
    qualityHideNonLV - leave the slices outside the LV out of the table and the montage.
    qualityWatch - classify every LGE volume loaded into the scene as it arrives (one worker at a time).
    laInput - the axial left-atrial 3-D LGE volume whose diagnostic quality is assessed.
    laCustomThreshold - use laThreshold as the LA detector's threshold t; off: the detector's calibrated value.
    laThreshold - t (0.01-0.99): a slice contains left atrium when any pixel's probability exceeds it.
    labellingPool - the labelling pool (`cmr label create` SQLite file) the Labelling section answers.
    labellingRater - the rater who answers (a name registered in the pool).
    """

    qualityInput: typing.Union[slicer.vtkMRMLScalarVolumeNode, None]
    qualityThreshold: float = 0.0
    qualityAllSlices: bool = False
    qualityHideNonLV: bool = False
    qualityWatch: bool = False
    laInput: typing.Union[slicer.vtkMRMLScalarVolumeNode, None]
    laCustomThreshold: bool = False
    laThreshold: float = 0.5
    labellingPool: pathlib.Path
    labellingRater: str = ""


#
# CMRQualityWidget
#


class CMRQualityWidget(CMRScriptedWidget):
    """The "LGE certainty and slice level", "Left-atrial 3D LGE quality" and "Labelling" sections
    and their handlers; the rest of the panel is CMRScriptedWidget's."""

    def setupSections(self) -> None:
        self._qualityOutputs = None
        self._qualityVolume = None  # the LGE node the shown result was made from
        self._qualityWorkFolder = None  # the shown result's folder (its montage), removed when replaced
        self._lgeWatcher = None
        self._watchQueue = []  # IDs of arrived LGE volumes waiting for the worker, oldest first
        self.ui.qualityApplyButton.connect("clicked(bool)", self.onQualityApply)
        self.ui.qualityInputSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.updateSections)
        self.ui.qualityHideNonLVCheckBox.connect("toggled(bool)", self.onQualityHideToggled)
        self.ui.qualityWatchCheckBox.connect("toggled(bool)", self.onQualityWatchToggled)
        self.ui.qualitySliceTable.connect("cellClicked(int,int)", self.onQualitySliceClicked)
        self.setupLA()
        self.setupLabelling()
        try:  # show which threshold "model default" stands for
            from CMRQualityLib.quality import default_threshold

            value, source = default_threshold()
            self.ui.qualityThresholdSpinBox.specialValueText = f"model default ({value:.2f})"
            self.ui.qualityThresholdSpinBox.toolTip = (
                f"{self.ui.qualityThresholdSpinBox.toolTip}\nModel default: {value:.2f} ({source}).")
        except Exception as exc:  # cmrlib missing: the dependency check says so on Apply
            logging.info(f"CMRQuality: the model's threshold could not be read: {exc}")

    def updateSections(self, *_) -> None:
        busy = self.panel.status.busy
        self.ui.qualityApplyButton.enabled = self.ui.qualityInputSelector.currentNode() is not None and not busy
        self.syncLGEWatcher()
        self.ui.laAssessButton.enabled = self.ui.laInputSelector.currentNode() is not None and not busy
        self.ui.laThresholdSlider.enabled = bool(self.ui.laCustomThresholdCheckBox.checked)
        ready = bool(str(self.ui.labellingPoolPathLineEdit.currentPath).strip()) and bool(
            self.ui.labellingRaterLineEdit.text.strip())
        self.ui.labellingStartButton.enabled = self.ui.labellingAddRaterButton.enabled = ready

    def cleanupSections(self) -> None:
        """Stop watching the scene and forget the queue and the shown result (scene closing, widget destroyed)."""
        self.stopLGEWatcher()
        self._qualityOutputs = self._qualityVolume = None
        self._removeWorkFolder(self._qualityWorkFolder)
        self._qualityWorkFolder = None
        self._laOutputs = self._laVolume = None
        self._removeWorkFolder(getattr(self, "_laWorkFolder", None))
        self._laWorkFolder = None
        self.closeLabelling()

    # ---- Apply ----------------------------------------------------------------------------
    def qualityThreshold(self):
        """The spin box's threshold; None at its minimum ("model default")."""
        spin = self.ui.qualityThresholdSpinBox
        return None if spin.value <= spin.minimum else float(spin.value)

    def onQualityApply(self) -> bool:
        """Classify the chosen LGE stack with `cmr quality certainty` in a worker process."""
        return self.assessQuality(self.ui.qualityInputSelector.currentNode())

    def assessQuality(self, node) -> bool:
        """Check ``node`` (a non-LGE kind is refused with the reason), write it and start the
        worker; False (and the reason in the status line) when it did not start."""
        from cmrlib.errors import CMRError
        from CMRQualityLib.quality import certainty_arguments, check_lge_node, check_threshold

        threshold = self.qualityThreshold()
        try:  # before the work folder: a refused input leaves nothing behind
            check_lge_node(node)
            check_threshold(threshold)
        except CMRError as exc:
            self.panel.status.showMessage(str(exc), "error")
            return False
        work = pathlib.Path(tempfile.mkdtemp(prefix="CMRQuality-"))
        try:
            args = certainty_arguments(node, work / "inputs", work / "out", threshold=threshold,
                                       all_slices=bool(self.ui.qualityAllSlicesCheckBox.checked),
                                       hide_non_lv=bool(self.ui.qualityHideNonLVCheckBox.checked))
        except CMRError as exc:
            self._removeWorkFolder(work)
            self.panel.status.showMessage(str(exc), "error")
            return False
        name = node.GetName()
        started = self.runCmr(args, f"LGE certainty and slice level of '{name}'",
                              lambda result: self._onQualityFinished(result, node, work, name))
        if not started:
            self._removeWorkFolder(work)
        return started

    def _onQualityFinished(self, result, node, work, name: str) -> None:
        try:
            if result.returncode != 0 or result.cancelled:
                self._removeWorkFolder(work)
                return  # the status line says why
            from CMRQualityLib.quality import load_quality_results

            try:
                outputs = load_quality_results(slicer.mrmlScene, work / "out", name,
                                               hide_non_lv=bool(self.ui.qualityHideNonLVCheckBox.checked))
            except Exception as exc:
                self.panel.status.showMessage(f"Loading the results of {work / 'out'} failed: {exc}", "error")
                return
            if self._qualityWorkFolder != work:
                self._removeWorkFolder(self._qualityWorkFolder)
            self._qualityOutputs, self._qualityVolume, self._qualityWorkFolder = outputs, node, work
            if node.GetScene() is slicer.mrmlScene:
                slicer.util.setSliceViewerLayers(background=node, fit=True)
            self.showQualityResult()
            if outputs.summary.get("flagged"):
                self.panel.status.showMessage(f"'{name}': {outputs.sentence}", "warning")
        finally:
            if self._watchQueue:  # the next arrived LGE, once this worker's turn is over
                import qt

                qt.QTimer.singleShot(0, self.runNextQueued)

    @staticmethod
    def _removeWorkFolder(folder) -> None:
        import shutil

        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)

    # ---- the result -----------------------------------------------------------------------
    def showQualityResult(self) -> None:
        """The stack's verdict, the per-slice table (rows coloured as the montage labels them),
        the details line and the montage."""
        outputs = self._qualityOutputs
        self.ui.qualityVerdictLabel.text = outputs.sentence if outputs is not None else ""
        self.ui.qualityResultLabel.text = outputs.summary_text() if outputs is not None else ""
        self._fillTable(self.ui.qualitySliceTable, outputs.table_cells() if outputs is not None else [])
        self._showPicture(self.ui.qualityMontageLabel, outputs.montage if outputs is not None else None)

    @staticmethod
    def _fillTable(table, cells) -> None:
        """Rows of (texts, colour or None[, tooltip]) into a QTableWidget; coloured rows in white text."""
        import qt

        table.clearContents()
        table.setRowCount(len(cells))
        for r, (texts, colour, *tip) in enumerate(cells):
            for c, text in enumerate(texts):
                item = qt.QTableWidgetItem(text)
                if tip:
                    item.setToolTip(tip[0])
                if colour is not None:
                    item.setBackground(qt.QBrush(qt.QColor(colour)))
                    item.setForeground(qt.QBrush(qt.QColor("white")))
                table.setItem(r, c, item)
        table.resizeColumnsToContents()

    @staticmethod
    def _showPicture(label, png) -> None:
        """A PNG into a QLabel, 360 px wide (cleared when there is none)."""
        import qt

        if png is None or not pathlib.Path(png).is_file():
            label.clear()
            return
        # through QImage: a QPixmap loaded by file name may come from Qt's cache, not the new file
        label.setPixmap(qt.QPixmap.fromImage(qt.QImage(str(png))).scaledToWidth(360, qt.Qt.SmoothTransformation))

    def onQualityHideToggled(self, checked: bool) -> None:
        """Show or leave out the slices outside the LV in the shown result's table (and its table node)."""
        if self._qualityOutputs is not None:
            self._qualityOutputs.set_hide_non_lv(bool(checked))
            self.showQualityResult()

    def onQualitySliceClicked(self, row: int, _column: int = 0) -> None:
        """Centre the slice views on the clicked slice, in the LGE's planes."""
        from CMRQualityLib.quality import show_slice

        outputs, volume = self._qualityOutputs, self._qualityVolume
        if outputs is None or volume is None or volume.GetScene() is None:
            return
        shown = outputs.shown_slices
        if 0 <= row < len(shown):
            show_slice(slicer.mrmlScene, volume, int(shown[row]["index"]))

    # ---- watching for new LGE -----------------------------------------------------------------
    def onQualityWatchToggled(self, _checked: bool) -> None:
        self.syncLGEWatcher()

    def syncLGEWatcher(self) -> None:
        """Watch the scene while "Watch for new LGE" is checked, and only then."""
        watch = bool(self.ui.qualityWatchCheckBox.checked)
        if watch and self._lgeWatcher is None:
            from CMRQualityLib.quality import LGEArrivalWatcher

            self._lgeWatcher = LGEArrivalWatcher(slicer.mrmlScene, self.onLGEArrived, on_error=self._onWatchError)
            self.panel.status.showMessage("Watching for new LGE volumes: each is classified as it arrives.")
        elif not watch and self._lgeWatcher is not None:
            self.stopLGEWatcher()
            self.panel.status.showMessage("Stopped watching for new LGE volumes.")

    def stopLGEWatcher(self) -> None:
        if self._lgeWatcher is not None:
            self._lgeWatcher.stop()
            self._lgeWatcher = None
        self._watchQueue = []

    def onLGEArrived(self, node) -> None:
        """An LGE volume arrived (the watcher's callback, inside the scene's event): queue it; the
        worker starts from the event loop, one at a time."""
        import qt

        if node.GetID() not in self._watchQueue:
            self._watchQueue.append(node.GetID())
        waiting = len(self._watchQueue)
        self.panel.status.showMessage(f"New LGE '{node.GetName()}': queued for classification"
                                      + (f" ({waiting} waiting)" if waiting > 1 else ""))
        qt.QTimer.singleShot(0, self.runNextQueued)

    def runNextQueued(self) -> None:
        """Start the worker on the oldest queued LGE volume still in the scene (none while a worker runs)."""
        import qt

        while self._watchQueue and not self.panel.status.busy:
            node = slicer.mrmlScene.GetNodeByID(self._watchQueue.pop(0))
            if node is None:
                continue  # removed while it waited
            if self._parameterNode is not None:
                self._parameterNode.qualityInput = node  # the selector shows what is classified
            if self.assessQuality(node):
                return
            if self._watchQueue:  # refused: the status line says why; go on with the next
                qt.QTimer.singleShot(0, self.runNextQueued)
                return

    def _onWatchError(self, exc) -> None:
        self.panel.status.showMessage(f"Watching for new LGE: {exc}", "error")

    # ---- left-atrial 3-D LGE quality ----------------------------------------------------------
    def setupLA(self) -> None:
        self._laOutputs = None
        self._laVolume = None  # the LA volume node the shown result was made from
        self._laWorkFolder = None  # the shown result's folder (its saliency.png), removed when replaced
        self.ui.laAssessButton.connect("clicked(bool)", self.onLAAssess)
        self.ui.laInputSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.updateSections)
        self.ui.laCustomThresholdCheckBox.connect("toggled(bool)", self.updateSections)
        try:  # show which t the detector's default is
            from CMRQualityLib.laquality import default_la_threshold

            value, source = default_la_threshold()
            self.ui.laCustomThresholdCheckBox.text = f"Custom threshold t (default: {value:.2f}, {source})"
        except Exception as exc:  # cmrlib missing: the dependency check says so on Assess
            logging.info(f"CMRQuality: the LA detector's threshold could not be read: {exc}")

    def laThreshold(self):
        """The slider's t when "Custom threshold" is checked; None: the detector's calibrated value."""
        return float(self.ui.laThresholdSlider.value) if self.ui.laCustomThresholdCheckBox.checked else None

    def onLAAssess(self) -> bool:
        """Assess the chosen LA 3-D LGE volume with `cmr la-quality` in a worker process."""
        return self.assessLA(self.ui.laInputSelector.currentNode())

    def assessLA(self, node) -> bool:
        """Check ``node`` (a short-axis LGE, cine, 2-D image … is refused with the reason), write it
        and start the worker; False (and the reason in the status line) when it did not start."""
        from cmrlib.errors import CMRError
        from CMRQualityLib.laquality import LA_OUT, check_la_node, check_la_threshold, la_arguments

        threshold = self.laThreshold()
        try:  # before the work folder: a refused input leaves nothing behind
            check_la_node(node)
            check_la_threshold(threshold)
        except CMRError as exc:
            self.panel.status.showMessage(str(exc), "error")
            return False
        work = pathlib.Path(tempfile.mkdtemp(prefix="CMRQuality-LA-"))
        try:
            args = la_arguments(node, work, threshold=threshold)
        except CMRError as exc:
            self._removeWorkFolder(work)
            self.panel.status.showMessage(str(exc), "error")
            return False
        name = node.GetName()
        started = self.runCmr(args, f"Left-atrial 3D LGE quality of '{name}'",
                              lambda result: self._onLAFinished(result, node, work / LA_OUT, work, name))
        if not started:
            self._removeWorkFolder(work)
        return started

    def _onLAFinished(self, result, node, out, work, name: str) -> None:
        try:
            if result.returncode != 0 or result.cancelled:
                self._removeWorkFolder(work)
                return  # the status line says why
            from CMRQualityLib.laquality import load_la_results, show_la_result

            try:
                outputs = load_la_results(slicer.mrmlScene, out, name)
            except Exception as exc:
                self.panel.status.showMessage(f"Loading the results of {out} failed: {exc}", "error")
                return
            if self._laOutputs is not None:
                self._laOutputs.set_visible(False)  # one LA mask in the views at a time
            if self._laWorkFolder != work:
                self._removeWorkFolder(self._laWorkFolder)
            self._laOutputs, self._laVolume, self._laWorkFolder = outputs, node, work
            if node.GetScene() is slicer.mrmlScene:
                slicer.util.setSliceViewerLayers(background=node, fit=True)
                show_la_result(slicer.mrmlScene, node, outputs)
            self.showLAResult()
            if outputs.diagnostic is not True:
                self.panel.status.showMessage(f"'{name}': {outputs.sentence}", "warning")
        finally:
            if self._watchQueue:  # an LGE that arrived while this worker ran
                import qt

                qt.QTimer.singleShot(0, self.runNextQueued)

    def showLAResult(self) -> None:
        """The scan's verdict, the attribute table (rows coloured by decision), the details line
        and saliency.png."""
        outputs = self._laOutputs
        self.ui.laVerdictLabel.text = outputs.sentence if outputs is not None else ""
        self.ui.laResultLabel.text = outputs.summary_text() if outputs is not None else ""
        self._fillTable(self.ui.laAttributeTable, outputs.table_cells() if outputs is not None else [])
        self._showPicture(self.ui.laSaliencyImageLabel, outputs.saliency_png if outputs is not None else None)


    # ---- labelling ----------------------------------------------------------------------------
    def setupLabelling(self) -> None:
        import qt

        self._labelling = None  # the open LabellingSession
        self._labellingNode = None  # the "Labelling image" volume node
        batch = self.ui.labellingBatchList
        batch.setViewMode(qt.QListView.IconMode)
        batch.setMovement(qt.QListView.Static)  # drops reorder the items (Free / Snap only move icons)
        batch.setDragDropMode(qt.QAbstractItemView.InternalMove)
        batch.setDefaultDropAction(qt.Qt.MoveAction)
        self.ui.labellingStartButton.connect("clicked(bool)", self.onLabellingStart)
        self.ui.labellingAddRaterButton.connect("clicked(bool)", self.onLabellingAddRater)
        self.ui.labellingSubmitScoreButton.connect("clicked(bool)", self.onLabellingSubmitScore)
        self.ui.labellingSubmitOrderButton.connect("clicked(bool)", self.onLabellingSubmitOrder)
        for button, choice in ((self.ui.labellingTooBasalButton, "too basal"), (self.ui.labellingLVButton, "LV"),
                               (self.ui.labellingTooApicalButton, "too apical")):
            button.connect("clicked(bool)", lambda _checked=False, c=choice: self.onLabellingClass(c))
        self.ui.labellingPoolPathLineEdit.connect("currentPathChanged(QString)", self.onLabellingPoolChanged)
        self.ui.labellingRaterLineEdit.connect("textChanged(QString)", self.updateSections)
        self.showLabellingTask()

    def closeLabelling(self) -> None:
        if getattr(self, "_labelling", None) is not None:
            self._labelling.close()
        self._labelling = self._labellingNode = None

    def onLabellingPoolChanged(self, *_) -> None:
        self.closeLabelling()
        self.showLabellingTask()
        self.updateSections()

    def _labellingError(self, exc) -> None:
        self.panel.status.showMessage(str(exc), "error")

    def onLabellingStart(self) -> bool:
        """Open the pool as the typed rater and show the next task (a stopped rater resumes)."""
        from cmrlib.errors import CMRError
        from CMRQualityLib.labelling import LabellingSession

        self.closeLabelling()
        try:
            session = LabellingSession(self.ui.labellingPoolPathLineEdit.currentPath)
            try:
                session.start(self.ui.labellingRaterLineEdit.text)
            except CMRError:
                session.close()
                raise
        except CMRError as exc:
            self._labellingError(exc)
            self.showLabellingTask()
            return False
        self._labelling = session
        self.panel.status.showMessage(f"Labelling {session.pool.path.name} as {session.rater}.")
        self.showLabellingTask()
        return True

    def onLabellingAddRater(self) -> bool:
        """Register the typed name in the pool, then start as that rater."""
        from cmrlib.errors import CMRError
        from CMRQualityLib.labelling import LabellingSession

        self.closeLabelling()
        try:
            session = LabellingSession(self.ui.labellingPoolPathLineEdit.currentPath)
            try:
                session.add_rater(self.ui.labellingRaterLineEdit.text)
            finally:
                session.close()
        except CMRError as exc:
            self._labellingError(exc)
            return False
        return self.onLabellingStart()

    def showLabellingTask(self) -> None:
        """The current task: its image in the slice views (scoring, cut-point question) or its
        batch as thumbnails; the buttons its kind answers; the pool's status."""
        import qt
        from cmrlib.errors import CMRError

        session = self._labelling
        task = session.task if session is not None else None
        kind = task.kind if task is not None else None
        self.ui.labellingTaskLabel.text = (task.message if task is not None
                                           else "Choose a pool and a rater, then Start / resume.")
        self.ui.labellingScoreSlider.enabled = self.ui.labellingSubmitScoreButton.enabled = kind == "score"
        self.ui.labellingSubmitOrderButton.enabled = kind == "rank"
        for button in (self.ui.labellingTooBasalButton, self.ui.labellingLVButton, self.ui.labellingTooApicalButton):
            button.enabled = kind == "classify"
        batch = self.ui.labellingBatchList
        batch.clear()
        try:
            if kind in ("score", "classify"):
                self._labellingNode = session.show_image(slicer.mrmlScene, self._labellingNode)
                slicer.util.setSliceViewerLayers(background=self._labellingNode, fit=True)
                self.ui.labellingScoreSlider.value = 50
            elif kind == "rank":
                for key, png in session.thumbnails():
                    pixmap = qt.QPixmap()
                    pixmap.loadFromData(qt.QByteArray(png), "PNG")
                    item = qt.QListWidgetItem(qt.QIcon(pixmap), "")
                    item.setData(qt.Qt.UserRole, key)
                    batch.addItem(item)
            self.ui.labellingStatusLabel.text = session.status_text() if session is not None else ""
        except CMRError as exc:
            self._labellingError(exc)

    def labellingOrder(self) -> list:
        """The batch's keys as the list shows them now: most basal first."""
        import qt

        batch = self.ui.labellingBatchList
        return [str(batch.item(i).data(qt.Qt.UserRole)) for i in range(batch.count)]

    def _labellingAnswer(self, submit) -> bool:
        from cmrlib.errors import CMRError

        if self._labelling is None:
            return False
        try:
            submit(self._labelling)
        except CMRError as exc:  # e.g. a pool locked by another program: the task stays open
            self._labellingError(exc)
            return False
        self.showLabellingTask()
        return True

    def onLabellingSubmitScore(self) -> bool:
        value = int(self.ui.labellingScoreSlider.value)
        return self._labellingAnswer(lambda session: session.submit_score(value))

    def onLabellingSubmitOrder(self) -> bool:
        order = self.labellingOrder()
        return self._labellingAnswer(lambda session: session.submit_order(order))

    def onLabellingClass(self, choice: str) -> bool:
        return self._labellingAnswer(lambda session: session.submit_class(choice))


#
# CMRQualityLogic
#


class CMRQualityLogic(CMRScriptedLogic):
    """Slicer-side logic, delegating to the Qt-free ``QualityLogic`` (finds LGE and cine series)."""

    def lgeVolumes(self):
        """LGE volumes (PSIR first, then magnitude) loaded by the study loader."""
        return self.impl.lge_volumes()


#
# CMRQualityTest
#


class CMRQualityTest(CMRTestMixin, ScriptedLoadableModuleTest):
    """Self-tests run inside Slicer ("Reload and Test"); the shared ones come from CMRTestMixin."""

    def test_CMRQualitySampleData(self):
        """The phantom study is registered with the Sample Data module (if that module is loaded)."""
        try:
            import SampleData
        except ImportError:
            self.skipTest("the Sample Data module is not loaded")
        from CMRQualityLib.sampledata import CATEGORY, SAMPLE_NAME

        registerSampleData()
        sources = SampleData.SampleDataLogic.sampleDataSourcesByCategory().get(CATEGORY, [])
        self.assertIn(SAMPLE_NAME, [source.sampleName for source in sources])
        self.delayDisplay("Test passed")

    def skipWithoutWeights(self) -> None:
        from cmrlib.models.zoo import model_installed
        from cmrlib.quality.pipeline import CERTAINTY_MODEL, SLICE_LEVEL_MODEL

        if not (model_installed(CERTAINTY_MODEL) and model_installed(SLICE_LEVEL_MODEL)):
            self.skipTest("the LGE certainty / slice-level weights are not installed")

    def loadSampleSeries(self, logic, kinds):
        """The bundled phantom study's first series of each of ``kinds``, loaded by the study loader
        (in that order); returns their nodes."""
        from cmrlib.phantom import extract_bundled_study

        with tempfile.TemporaryDirectory() as folder:
            dicom = extract_bundled_study(pathlib.Path(folder) / "study")
            logic.impl.scan(dicom)
            series = logic.impl.loader.series
            nodes = []
            for kind in kinds:
                found = next((s for s in series if s.kind == kind), None)
                self.assertIsNotNone(found, f"the bundled study has no {kind} series")
                nodes.append(logic.impl.load(found).node)
        return nodes

    def test_CMRQualityAdapter(self):
        """Adapter: the capability's example result (the installed networks on a phantom stack)
        becomes the table "example quality" with one row per slice and the columns of the panel."""
        from cmrlib.mrml import rows_from_table_node
        from cmrlib.quality.outputs import read_result, write_example
        from CMRQualityLib.quality import TABLE_COLUMNS, outputs_to_nodes

        self.skipWithoutWeights()
        with tempfile.TemporaryDirectory() as folder:
            out = pathlib.Path(folder) / "quality"
            write_example(out)
            result = read_result(out)
            outputs = outputs_to_nodes(slicer.mrmlScene, result, "example")
            self.assertEqual(outputs.montage, out / "quality.png")
        rows = rows_from_table_node(outputs.table)
        self.assertEqual(outputs.table.GetName(), "example quality")
        self.assertEqual(len(rows), len(result["slices"]))
        self.assertEqual(list(rows[0]), list(TABLE_COLUMNS))
        self.assertEqual(outputs.sentence, result["summary"]["sentence"])
        self.delayDisplay("Test passed")

    def test_CMRQualityWorker(self):
        """Logic: the bundled study's LGE PSIR stack, loaded by the study loader, through the `cmr
        quality certainty` worker command (CPU), loaded back: one row per slice; its cine (the
        volume its browser shows) and a T1 map are refused with the kind named."""
        from cmrlib.errors import InputError
        from cmrlib.mrml import proxy_node_for, rows_from_table_node
        from CMRCommonLib.runner import SubprocessRunner, worker_command
        from CMRQualityLib.quality import certainty_arguments, load_quality_results

        self.skipWithoutWeights()
        logic = self.newLogic()
        lge, cine, t1map = self.loadSampleSeries(logic, ["lge_psir", "cine", "t1map"])
        self.assertEqual(logic.lgeVolumes()[0], lge)
        with tempfile.TemporaryDirectory() as folder:
            work = pathlib.Path(folder)
            for node, kind in ((proxy_node_for(cine), "a cine series"), (t1map, "a T1 map")):
                with self.assertRaisesRegex(InputError, kind):
                    certainty_arguments(node, work / "refused", work / "refused out")
            self.assertFalse((work / "refused").exists())
            args = certainty_arguments(lge, work / "inputs", work / "out")
            command, env = worker_command(args, "cpu")
            result = SubprocessRunner(command, extra_env=env).run()
            self.assertEqual(result.returncode, 0, result.error_text(10))
            outputs = load_quality_results(slicer.mrmlScene, work / "out", lge.GetName())
        n_slices = lge.GetImageData().GetDimensions()[2]
        self.assertEqual(len(rows_from_table_node(outputs.table)), n_slices)
        self.assertTrue(outputs.sentence)
        self.delayDisplay("Test passed")

    def test_CMRQualityApply(self):
        """Widget: the bundled LGE chosen in the panel, Apply (CPU), waiting for the worker: the
        verdict line, one coloured table row per slice, the montage; a row click moves the views."""
        from CMRCommonLib.device_choice import DeviceChoice
        from CMRCommonLib.widgets import applyAndWait

        self.skipWithoutWeights()
        widget = self.moduleWidget()
        widget.initializeParameterNode()
        (lge,) = self.loadSampleSeries(widget.logic, ["lge_psir"])
        parameters = widget._parameterNode
        parameters.device = DeviceChoice.CPU
        parameters.qualityHideNonLV = False
        parameters.qualityInput = lge
        self.assertTrue(widget.ui.qualityApplyButton.enabled)
        applyAndWait(self, widget, widget.onQualityApply)
        outputs = widget._qualityOutputs
        self.assertIsNotNone(outputs, widget.ui.statusLabel.text)
        self.assertEqual(widget.ui.qualityVerdictLabel.text, outputs.sentence)
        self.assertEqual(widget.ui.qualitySliceTable.rowCount, lge.GetImageData().GetDimensions()[2])
        self.assertFalse(widget.ui.qualityMontageLabel.pixmap.isNull())
        widget.onQualitySliceClicked(0, 0)
        self.delayDisplay("Test passed")

    def skipWithoutLAWeights(self) -> None:
        from cmrlib.laquality.pipeline import DETECTOR_MODEL, QUALITY_MODEL
        from cmrlib.models.zoo import model_installed

        if not (model_installed(DETECTOR_MODEL) and model_installed(QUALITY_MODEL)):
            self.skipTest("the LA detector / LA quality weights are not installed")

    def test_CMRQualityLAWorker(self):
        """Logic: the bundled study's LA 3-D LGE, loaded by the study loader, through the `cmr
        la-quality` worker command (CPU), loaded back: the LA mask, the saliency on the volume's
        grid, one table row per label; the study's LGE PSIR stack and its cine (the volume its
        browser shows) are refused with the kind named, before any file is written."""
        from cmrlib.errors import InputError
        from cmrlib.mrml import proxy_node_for, rows_from_table_node
        from CMRCommonLib.runner import SubprocessRunner, worker_command
        from CMRQualityLib.laquality import LA_OUT, TABLE_COLUMNS, la_arguments, load_la_results

        self.skipWithoutLAWeights()
        logic = self.newLogic()
        la, lge, cine = self.loadSampleSeries(logic, ["la_lge", "lge_psir", "cine"])
        with tempfile.TemporaryDirectory() as folder:
            work = pathlib.Path(folder)
            for node, kind in ((lge, "short-axis LGE"), (proxy_node_for(cine), "a cine series")):
                with self.assertRaisesRegex(InputError, kind):
                    la_arguments(node, work / "refused")
            self.assertFalse((work / "refused").exists())
            args = la_arguments(la, work)
            command, env = worker_command(args, "cpu")
            result = SubprocessRunner(command, extra_env=env).run()
            self.assertEqual(result.returncode, 0, result.error_text(10))
            outputs = load_la_results(slicer.mrmlScene, work / LA_OUT, la.GetName())
        rows = rows_from_table_node(outputs.table)
        self.assertEqual(len(rows), 4)
        self.assertEqual(list(rows[0]), list(TABLE_COLUMNS))
        self.assertEqual(outputs.mask.GetSegmentation().GetNumberOfSegments(), 1)
        self.assertEqual(outputs.saliency.GetImageData().GetDimensions()[2], len(outputs.summary["slices"]))
        self.assertTrue(outputs.sentence)
        self.delayDisplay("Test passed")

    def test_CMRQualityLAAssess(self):
        """Widget: the bundled LA 3-D LGE chosen in the panel, Assess (CPU) with a custom threshold,
        waiting for the worker: the verdict line, one coloured row per label, saliency.png, the
        saliency as the slice views' foreground over the volume."""
        from CMRCommonLib.device_choice import DeviceChoice
        from CMRCommonLib.widgets import applyAndWait

        self.skipWithoutLAWeights()
        widget = self.moduleWidget()
        widget.initializeParameterNode()
        (la,) = self.loadSampleSeries(widget.logic, ["la_lge"])
        parameters = widget._parameterNode
        parameters.device = DeviceChoice.CPU
        parameters.laInput = la
        parameters.laCustomThreshold = True
        parameters.laThreshold = 0.4
        self.assertTrue(widget.ui.laAssessButton.enabled)
        self.assertTrue(widget.ui.laThresholdSlider.enabled)
        self.assertAlmostEqual(widget.laThreshold(), 0.4)
        applyAndWait(self, widget, widget.onLAAssess)
        outputs = widget._laOutputs
        self.assertIsNotNone(outputs, widget.ui.statusLabel.text)
        self.assertAlmostEqual(outputs.summary["threshold"], 0.4)
        self.assertEqual(widget.ui.laVerdictLabel.text, outputs.sentence)
        self.assertEqual(widget.ui.laAttributeTable.rowCount, 4)
        self.assertFalse(widget.ui.laSaliencyImageLabel.pixmap.isNull())
        composite = slicer.app.layoutManager().sliceWidget("Red").sliceLogic().GetSliceCompositeNode()
        self.assertEqual(composite.GetBackgroundVolumeID(), la.GetID())
        self.assertEqual(composite.GetForegroundVolumeID(), outputs.saliency.GetID())
        parameters.laCustomThreshold = False
        self.assertIsNone(widget.laThreshold())
        self.assertFalse(widget.ui.laThresholdSlider.enabled)
        self.delayDisplay("Test passed")

    def test_CMRQualityLabelling(self):
        """Logic: a small scoring pool answered through the Labelling section's session: two
        scores, a new session resumes at the third image, the image shown as "Labelling image";
        a ranking pool's batch as 8 PNG thumbnails, its order submitted; a missing pool refused."""
        import numpy as np
        from cmrlib.errors import InputError
        from cmrlib.labelling.pool import Pool, StackInput
        from CMRQualityLib.labelling import IMAGE_NODE_NAME, LabellingSession

        rng = np.random.default_rng(0)
        stacks = [StackInput(rng.normal(100.0, 10.0, (5, 24, 20)).astype(np.float32), (1.5, 1.5, 8.0),
                             (0.0, 0.0, 0.0), np.eye(3), "lge_psir", f"subject {i}") for i in range(2)]
        with tempfile.TemporaryDirectory() as folder:
            folder = pathlib.Path(folder)
            with self.assertRaisesRegex(InputError, "no such labelling pool"):
                LabellingSession(folder / "missing.sqlite")
            self.assertEqual(list(folder.iterdir()), [])
            pool, _ = Pool.create(folder / "vas.sqlite", stacks, "vas", raters=["rater"], seed=1)
            order = [im.key for im in pool.images()]
            pool.close()
            session = LabellingSession(folder / "vas.sqlite", "rater")
            node = session.show_image(slicer.mrmlScene)
            self.assertEqual(node.GetName(), IMAGE_NODE_NAME)
            session.submit_score(10)
            session.submit_score(90)
            session.close()
            session = LabellingSession(folder / "vas.sqlite", "rater")
            self.assertEqual(session.task.images, [order[2]])
            session.close()
            Pool.create(folder / "rank.sqlite", stacks, "rank", raters=["rater"], seed=1)[0].close()
            session = LabellingSession(folder / "rank.sqlite", "rater")
            thumbs = session.thumbnails()
            self.assertEqual(len(thumbs), 8)
            self.assertTrue(all(png.startswith(b"\x89PNG") for _, png in thumbs))
            batch = session.task.batch
            session.submit_order([key for key, _ in reversed(thumbs)])
            self.assertNotEqual(session.task.batch, batch)
            session.close()
        self.delayDisplay("Test passed")

    def test_CMRQualityLabellingPanel(self):
        """Widget: the Labelling section driven through its controls. An unknown rater is refused
        with the pool unchanged; *Add rater* registers and starts; a scoring pool's image fills the
        red view and the slider's score is stored; a restarted panel resumes at the next image. A
        ranking pool's batch shows 8 thumbnails; the list reordered (as a drag would) is the order
        stored for the batch, and the next batch replaces it."""
        import numpy as np
        from cmrlib.labelling import vas
        from cmrlib.labelling.pool import Pool, StackInput

        rng = np.random.default_rng(0)
        stacks = [StackInput(rng.normal(100.0, 10.0, (5, 24, 20)).astype(np.float32), (1.5, 1.5, 8.0),
                             (0.0, 0.0, 0.0), np.eye(3), "lge_psir", f"subject {i}") for i in range(2)]
        widget = self.moduleWidget()
        widget.initializeParameterNode()
        ui = widget.ui
        with tempfile.TemporaryDirectory() as folder:
            folder = pathlib.Path(folder)
            try:
                pool, _ = Pool.create(folder / "vas.sqlite", stacks, "vas", raters=["rater 1"], seed=1)
                order = [im.key for im in pool.images()]
                pool.close()
                ui.labellingPoolPathLineEdit.currentPath = str(folder / "vas.sqlite")
                ui.labellingRaterLineEdit.text = "somebody"
                self.assertTrue(ui.labellingStartButton.enabled)
                self.assertFalse(widget.onLabellingStart())  # not a rater of this pool
                self.assertIsNone(widget._labelling)
                self.assertFalse(ui.labellingSubmitScoreButton.enabled)
                with Pool(folder / "vas.sqlite") as pool:
                    self.assertEqual(list(pool.raters()), ["rater 1"])
                self.assertTrue(widget.onLabellingAddRater())
                self.assertEqual(widget._labelling.rater, "somebody")
                self.assertTrue(ui.labellingScoreSlider.enabled and ui.labellingSubmitScoreButton.enabled)
                composite = slicer.app.layoutManager().sliceWidget("Red").sliceLogic().GetSliceCompositeNode()
                self.assertEqual(composite.GetBackgroundVolumeID(), widget._labellingNode.GetID())
                ui.labellingScoreSlider.value = 20
                ui.labellingSubmitScoreButton.click()
                widget.onLabellingPoolChanged()  # the panel closes its session, as a new pool path does
                self.assertIsNone(widget._labelling)
                self.assertTrue(widget.onLabellingStart())
                self.assertEqual(widget._labelling.task.images, [order[1]])  # resumed
                with Pool(folder / "vas.sqlite") as pool:
                    self.assertEqual(vas.latest_scores(pool), {order[0]: {"somebody": 20.0}})

                Pool.create(folder / "rank.sqlite", stacks, "rank", raters=["rater 1"], seed=1)[0].close()
                ui.labellingPoolPathLineEdit.currentPath = str(folder / "rank.sqlite")
                ui.labellingRaterLineEdit.text = "rater 1"
                self.assertTrue(widget.onLabellingStart())
                batch_list = ui.labellingBatchList
                self.assertEqual(batch_list.count, 8)
                self.assertTrue(ui.labellingSubmitOrderButton.enabled)
                self.assertFalse(ui.labellingScoreSlider.enabled)
                self.assertFalse(batch_list.item(0).icon().isNull())
                batch_id = widget._labelling.task.batch
                batch_list.insertItem(0, batch_list.takeItem(batch_list.count - 1))  # the last tile dropped first
                wanted = widget.labellingOrder()
                self.assertEqual(len(set(wanted)), 8)
                ui.labellingSubmitOrderButton.click()
                self.assertNotEqual(widget._labelling.task.batch, batch_id)
                with Pool(folder / "rank.sqlite") as pool, pool.reading() as db:
                    stored = [key for (key,) in db.execute(
                        "SELECT i.key FROM placements p JOIN images i ON i.id = p.image_id WHERE p.batch_id = ? "
                        "ORDER BY p.place", (batch_id,))]
                self.assertEqual(stored, wanted)
                self.assertEqual(batch_list.count, 8)
            finally:
                widget.closeLabelling()
                ui.labellingPoolPathLineEdit.currentPath = ""
                ui.labellingRaterLineEdit.text = ""
        self.delayDisplay("Test passed")

    def test_CMRQualityWatcher(self):
        """Widget: with "Watch for new LGE" on, loading the bundled cine and LGE classifies the LGE
        only (the worker starts by itself); turned off, the scene is no longer watched."""
        import time

        from CMRCommonLib.device_choice import DeviceChoice
        from CMRCommonLib.widgets import waitForWorker

        self.skipWithoutWeights()
        widget = self.moduleWidget()
        widget.initializeParameterNode()
        widget._parameterNode.device = DeviceChoice.CPU
        widget._parameterNode.qualityWatch = True
        widget.panel.checkDependencies = False
        try:
            self.assertIsNotNone(widget._lgeWatcher)
            _cine, lge = self.loadSampleSeries(widget.logic, ["cine", "lge_psir"])
            deadline = time.monotonic() + 5.0
            while not widget.panel.status.busy and time.monotonic() < deadline:
                slicer.app.processEvents()  # the queued worker starts from the event loop
            self.assertTrue(widget.panel.status.busy, widget.ui.statusLabel.text)
            result = waitForWorker(self, widget.panel)
            self.assertEqual(result.returncode, 0, result.error_text(10))
            self.assertEqual(widget._watchQueue, [])  # the cine (and its proxy volume) was not queued
        finally:
            widget.panel.checkDependencies = True
            widget._parameterNode.qualityWatch = False
        self.assertEqual(widget._qualityVolume.GetID(), lge.GetID())
        self.assertEqual(widget._parameterNode.qualityInput.GetID(), lge.GetID())
        self.assertEqual(widget.ui.qualitySliceTable.rowCount, len(widget._qualityOutputs.shown_slices))
        self.assertIsNone(widget._lgeWatcher)
        self.delayDisplay("Test passed")

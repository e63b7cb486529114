"""Qt parts shared by the SlicerCMR module panels (runs only inside the Slicer application).

Every panel is the shared ``CMRCommonLib/Resources/UI/CMRPanel.ui`` with the module's own
``Resources/UI/CMR<Name>.ui`` (its sections) inserted after the "CMR study" section
(:func:`loadPanelUI`). :class:`CMRPanel` wires the shared widgets (object names below) to
the module's logic:

* "CMR study" section -- ``studyCollapsibleButton``, ``studyDirectoryButton``
  (ctkDirectoryButton, parameter ``studyFolder``), ``scanButton``, ``seriesTable``
  (QTableWidget), ``skippedLabel``, ``loadSeriesButton``;
* device row -- ``deviceComboBox`` (parameter ``device``), ``deviceWarningLabel``;
* status area -- ``statusLabel``, ``progressBar``, ``cancelButton`` (shown only while work
  that can be cancelled is running);
* ``capabilitiesLabel`` -- what the module does now and which capabilities are coming.

The logic it drives is Qt-free (:mod:`CMRCommonLib.study_loader`,
:mod:`CMRCommonLib.module_logic`); this file only turns it into widgets and dialogs. The
module classes built on it are in :mod:`CMRCommonLib.module_base`.
"""
from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import qt

import slicer

from .dependencies import (REQUIREMENTS_FILE, TORCH_REQUIREMENT, describe_missing, forbidden_requirements,
                           missing_requirements, pip_arguments, read_requirements, torch_status)
from .device_choice import DeviceChoice, GpuStatus, device_environment, device_warning, gpu_probe_command, \
    parse_gpu_probe
from .runner import ProgressEvent, RunResult, SubprocessRunner, python_executable, worker_command

#: The part of the panel every module shares (see the module docstring).
PANEL_UI = Path(__file__).resolve().parent / "Resources" / "UI" / "CMRPanel.ui"
#: Seconds between two GUI refreshes while in-process work reports progress.
_REFRESH_INTERVAL_S = 0.1
_ERROR_STYLE = "color: #c0392b;"
_WARNING_STYLE = "color: #b9770e;"


class CancelledByUser(Exception):
    """Raised inside a progress callback when the user pressed Cancel."""


# ---------------------------------------------------------------------------------------
# Python dependencies
# ---------------------------------------------------------------------------------------
#: Requirement files already handled in this session (installed, or declined by the user).
_dependenciesHandled: set[str] = set()


def ensureDependencies(requirementsPath: str | Path = REQUIREMENTS_FILE, requester: str = "SlicerCMR") -> tuple[bool, str]:
    """Make sure the packages listed in ``requirementsPath`` (default: the extension's
    requirements file) are installed.

    Missing ones are installed after the user confirms: with ``slicer.packaging.pip_ensure``
    where it exists (Slicer >= 5.12: confirmation, progress dialog, restart prompt), else with
    a confirmation dialog and ``slicer.util.pip_install``. Asked once per session and
    requirements file; in testing mode nothing is installed.

    Returns (all satisfied, message for the status line).
    """
    key = str(Path(requirementsPath).resolve())
    requirements = read_requirements(requirementsPath)
    bad = forbidden_requirements(requirements)
    if bad:
        raise ValueError(f"{requirementsPath} lists packages that must not be installed into Slicer: "
                         + "; ".join(f"{r.name} ({why})" for r, why in bad))
    missing = missing_requirements(requirements)
    if not missing:
        _dependenciesHandled.add(key)
        return True, ""
    names = ", ".join(m.requirement.name for m in missing)
    if key in _dependenciesHandled or slicer.app.testingEnabled():
        return False, f"Python packages not installed: {names}. Loading works; processing will need them."
    _dependenciesHandled.add(key)

    try:
        import slicer.packaging as slicerPackaging  # Slicer >= 5.12
    except ImportError:
        slicerPackaging = None

    if slicerPackaging is not None and hasattr(slicerPackaging, "pip_ensure"):
        try:
            slicerPackaging.pip_ensure([m.requirement for m in missing], requester=requester)
        except RuntimeError as exc:  # the user declined
            logging.info(f"{requester}: Python package installation declined ({exc})")
    else:
        text = (f"{requester} needs {len(missing)} Python package(s) that are not installed in Slicer yet. "
                "Install them now? This modifies Slicer's Python environment and may take a few minutes.")
        if slicer.util.confirmOkCancelDisplay(text, windowTitle=f"{requester} - install Python packages",
                                              detailedText=describe_missing(missing)):
            with slicer.util.tryWithErrorDisplay(f"{requester}: installing Python packages failed.", waitCursor=True):
                slicer.util.pip_install(pip_arguments(missing))
        else:
            logging.info(f"{requester}: Python package installation declined")

    still = missing_requirements(requirements)
    if still:
        return False, ("Python packages not installed: " + ", ".join(m.requirement.name for m in still)
                       + ". Loading works; processing will need them.")
    return True, f"Installed Python packages: {names}."


#: Set once the user declined installing PyTorch in this session (asked once).
_torchDeclined = False


def ensureTorch(requester: str) -> tuple[bool, str]:
    """Make sure torch is installed, through the PyTorch extension (``PyTorchUtils``), as
    SlicerTotalSegmentator and SlicerMONAIAuto3DSeg do; asked once per session; in testing
    mode nothing is installed.

    Returns (usable, message for the status line: what the user must do when not usable).
    """
    global _torchDeclined
    status = torch_status()
    if status.satisfied:
        return True, ""
    if not status.extension or status.version is not None or _torchDeclined or slicer.app.testingEnabled():
        return False, status.problem()
    try:
        import PyTorchUtils  # the PyTorch extension

        torch = PyTorchUtils.PyTorchUtilsLogic().installTorch(askConfirmation=True,
                                                              torchVersionRequirement=TORCH_REQUIREMENT[len("torch"):])
    except Exception as exc:  # no network, pip failure ...
        _torchDeclined = True
        logging.error(f"{requester}: installing PyTorch failed: {exc}")
        return False, f"Installing PyTorch through the PyTorch extension failed: {exc}"
    if torch is None:  # declined
        _torchDeclined = True
        logging.info(f"{requester}: PyTorch installation declined or failed")
        return False, torch_status().problem()
    return True, f"Installed PyTorch {torch.__version__}."


def loadPanelUI(moduleUiPath: str | Path, scene: Any) -> tuple[Any, Any]:
    """The module's panel: :data:`PANEL_UI` with the module's own ``.ui`` (its sections)
    inserted after the "CMR study" section, both given ``scene``.

    Returns (the panel widget, ``slicer.util.childWidgetVariables`` of it: every named widget
    of both files, what ``connectGui`` binds to the parameter node).
    """
    panelWidget = slicer.util.loadUI(str(PANEL_UI))
    moduleWidget = slicer.util.loadUI(str(moduleUiPath))
    layout = panelWidget.layout()
    ui = slicer.util.childWidgetVariables(panelWidget)
    layout.insertWidget(layout.indexOf(ui.studyCollapsibleButton) + 1, moduleWidget)
    panelWidget.setMRMLScene(scene)
    moduleWidget.setMRMLScene(scene)
    return panelWidget, slicer.util.childWidgetVariables(panelWidget)


# ---------------------------------------------------------------------------------------
# status area
# ---------------------------------------------------------------------------------------
class StatusArea:
    """Status text, progress bar and Cancel button for in-process work and worker processes."""

    def __init__(self, statusLabel: Any, progressBar: Any, cancelButton: Any) -> None:
        self.statusLabel = statusLabel
        self.progressBar = progressBar
        self.cancelButton = cancelButton
        self.statusLabel.wordWrap = True
        self.progressBar.setRange(0, 100)
        self.progressBar.visible = False
        self.cancelButton.visible = False
        self.cancelButton.clicked.connect(self.requestCancel)
        self._cancelRequested = False
        self._busy = False
        self._lastRefresh = 0.0
        self._runner: SubprocessRunner | None = None
        #: The result of the last worker process (None before the first one finished).
        self.lastResult: RunResult | None = None
        self._onRunnerFinished: Callable[[RunResult], None] | None = None
        self._timer = qt.QTimer()
        self._timer.setInterval(100)
        self._timer.timeout.connect(self._pollRunner)

    @property
    def busy(self) -> bool:
        return self._busy

    def showMessage(self, text: str, level: str = "info") -> None:
        """Show ``text``; ``level`` is "info", "warning" or "error"."""
        self.statusLabel.text = text
        self.statusLabel.setStyleSheet({"error": _ERROR_STYLE, "warning": _WARNING_STYLE}.get(level, ""))
        if level == "error":
            logging.error(text)

    def showProgress(self, phase: str, fraction: float, message: str) -> None:
        """Progress of the running work: ``fraction`` 0..1 of ``phase``."""
        self.progressBar.value = int(round(100 * max(0.0, min(1.0, fraction))))
        self.statusLabel.text = f"{phase}: {message}" if message else phase
        self.statusLabel.setStyleSheet("")

    def _begin(self, text: str) -> None:
        if self._busy:
            raise RuntimeError("another SlicerCMR task is still running; wait for it or press Cancel")
        self._busy = True
        self._cancelRequested = False
        self.showMessage(text)
        self.progressBar.value = 0
        self.progressBar.visible = True
        self.cancelButton.enabled = True
        self.cancelButton.visible = True

    def _end(self) -> None:
        self._busy = False
        self.progressBar.visible = False
        self.cancelButton.visible = False

    def requestCancel(self) -> None:
        """Cancel button: stop the worker process, or make the next progress report raise."""
        self._cancelRequested = True
        self.cancelButton.enabled = False
        self.statusLabel.text = "Cancelling..."
        if self._runner is not None and self._runner.running:
            self._runner.cancel()

    @contextlib.contextmanager
    def inProcessTask(self, text: str) -> Iterator[Callable[[str, int, int, str], None]]:
        """Context for cmrlib work run in Slicer's process; yields its ``progress`` callback.

        The callback refreshes the GUI at most every 0.1 s (processing events, so Cancel
        works) and raises :class:`CancelledByUser` once Cancel was pressed. Exceptions other
        than the cancellation propagate after the area is reset.
        """
        self._begin(text)

        def progress(phase: str, done: int, total: int, message: str = "") -> None:
            if self._cancelRequested:
                raise CancelledByUser()
            now = time.monotonic()
            if now - self._lastRefresh < _REFRESH_INTERVAL_S and done < total:
                return
            self._lastRefresh = now
            self.showProgress(phase, ProgressEvent(phase, done, total).fraction, message)
            slicer.app.processEvents()
            if self._cancelRequested:
                raise CancelledByUser()

        try:
            yield progress
        except CancelledByUser:
            self._end()
            self.showMessage(f"{text.rstrip(' .')}: cancelled.", "warning")
            return
        except Exception:
            self._end()
            raise
        self._end()

    def runWorker(self, args: list[str], text: str, onFinished: Callable[[RunResult], None],
                  extraEnv: dict[str, str] | None = None) -> SubprocessRunner:
        """Start a worker process (e.g. :func:`CMRCommonLib.runner.cmrlib_cli_command`) and
        follow its ``CMR-PROGRESS`` lines; ``onFinished(result)`` runs on the main thread."""
        self._begin(text)
        runner = SubprocessRunner(args, extra_env=extraEnv, on_progress=self.showProgress)
        try:
            runner.start()
        except Exception:
            self._end()
            raise
        self._runner = runner
        self._onRunnerFinished = onFinished
        self._timer.start()
        return runner

    def _pollRunner(self) -> None:
        if self._runner is None:
            self._timer.stop()
            return
        result = self._runner.poll()
        if result is None:
            return
        self._timer.stop()
        callback, self._runner, self._onRunnerFinished = self._onRunnerFinished, None, None
        self.lastResult = result
        self._end()
        if result.cancelled:
            self.showMessage("Cancelled.", "warning")
        elif result.returncode == 0:
            self.showMessage(f"Finished in {result.elapsed_s:.1f} s.")
        else:
            self.showMessage(f"The worker process failed (exit code {result.returncode}): "
                             f"{result.error_text(5) or 'no error message'}", "error")
        if callback is not None:
            callback(result)

    def cleanup(self) -> None:
        """Stop polling and terminate a running worker (module widget cleanup)."""
        self._timer.stop()
        if self._runner is not None and self._runner.running:
            self._runner.cancel()
        self._runner = None


# ---------------------------------------------------------------------------------------
# device row
# ---------------------------------------------------------------------------------------
#: GPU status of this Slicer's Python (probed once per session, shared by all modules).
_gpuStatus: GpuStatus | None = None


class DeviceSection:
    """Shows the warning under the device combo box (the choice itself is bound to the
    parameter node by ``connectGui``). The GPU is queried once, in a child process, so that
    torch is never imported into Slicer's own process by the panel."""

    def __init__(self, warningLabel: Any) -> None:
        self.warningLabel = warningLabel
        self.warningLabel.wordWrap = True
        self.warningLabel.setStyleSheet(_WARNING_STYLE)
        self._choice = DeviceChoice.AUTO
        self._probe: SubprocessRunner | None = None
        self._probeError = ""
        self._timer = qt.QTimer()
        self._timer.setInterval(200)
        self._timer.timeout.connect(self._pollProbe)

    @property
    def choice(self) -> DeviceChoice:
        return self._choice

    def setChoice(self, choice: DeviceChoice | str | None) -> None:
        self._choice = DeviceChoice.from_value(choice)
        self._refresh()

    def environment(self) -> dict[str, str]:
        """``{"CMR_DEVICE": ...}`` for worker processes."""
        return device_environment(self._choice)

    def probe(self) -> None:
        """Start the GPU query unless it has been done or is running."""
        if _gpuStatus is not None or self._probe is not None or self._probeError:
            self._refresh()
            return
        try:
            self._probe = SubprocessRunner(gpu_probe_command(python_executable()))
            self._probe.start()
        except Exception as exc:
            self._probe = None
            self._probeError = f"Could not check the GPU: {exc}"
        else:
            self._timer.start()
        self._refresh()

    def _pollProbe(self) -> None:
        global _gpuStatus
        if self._probe is None:
            self._timer.stop()
            return
        result = self._probe.poll()
        if result is None:
            return
        self._timer.stop()
        self._probe = None
        try:
            _gpuStatus = parse_gpu_probe(result.stdout)
        except ValueError:
            self._probeError = "Could not check the GPU: " + (result.error_text(3) or f"exit code {result.returncode}")
        self._refresh()

    def _refresh(self) -> None:
        if _gpuStatus is not None:
            text = device_warning(self._choice, _gpuStatus)
        elif self._probeError:
            text = self._probeError
        elif self._choice is DeviceChoice.CPU:
            text = ""
        else:
            text = "Checking the GPU..."
        self.warningLabel.text = text
        self.warningLabel.visible = bool(text)

    def cleanup(self) -> None:
        self._timer.stop()
        if self._probe is not None and self._probe.running:
            self._probe.cancel()
        self._probe = None


# ---------------------------------------------------------------------------------------
# CMR study section
# ---------------------------------------------------------------------------------------
class StudyLoaderSection:
    """The "CMR study" section: folder, series table, Load button.

    ``libLogic`` is a callable returning the module's Qt-free logic
    (:class:`CMRCommonLib.module_logic.CMRModuleLogicBase`); ``beforeWork`` runs before the
    first scan or load (dependency check) and returns a status message ('' for none).
    """

    def __init__(self, ui: Any, libLogic: Callable[[], Any], status: StatusArea,
                 beforeWork: Callable[[], str]) -> None:
        from .study_loader import SERIES_COLUMNS

        self.ui = ui
        self._libLogic = libLogic
        self.status = status
        self._beforeWork = beforeWork
        self.autoScan = True

        table = self.ui.seriesTable
        table.setColumnCount(len(SERIES_COLUMNS))  # read-only, single-row selection: set in the .ui
        table.setHorizontalHeaderLabels(list(SERIES_COLUMNS))
        table.horizontalHeader().setStretchLastSection(True)
        table.verticalHeader().visible = False
        table.itemSelectionChanged.connect(self._updateButtons)
        table.itemDoubleClicked.connect(lambda item: self.loadSelected())

        self.ui.studyDirectoryButton.directoryChanged.connect(self._onDirectoryChanged)
        self.ui.scanButton.clicked.connect(lambda: self.scan(self.ui.studyDirectoryButton.directory))
        self.ui.loadSeriesButton.clicked.connect(lambda: self.loadSelected())
        self.ui.skippedLabel.wordWrap = True
        self.ui.skippedLabel.visible = False
        self._updateButtons()

    # ---- scanning --------------------------------------------------------------------
    def _onDirectoryChanged(self, directory: str) -> None:
        self._updateButtons()
        if self.autoScan and directory not in ("", "."):
            self.scan(directory)

    def scan(self, folder: str | Path) -> bool:
        """Scan ``folder`` and fill the table; False when it failed or was cancelled."""
        if self.status.busy:
            return False
        message = self._beforeWork()
        logic = self._libLogic()
        logic.loader.clear()  # a failed or cancelled scan must not leave the previous folder's rows
        self.fillTable()
        self._setEnabled(False)
        ok = False
        try:
            with self.status.inProcessTask(f"Scanning {folder} ...") as progress:
                scan = logic.scan(folder, progress)
                ok = True
        except Exception as exc:
            self.status.showMessage(f"Scan failed: {exc}", "error")
        finally:
            self._setEnabled(True)
        self.fillTable()
        if ok:
            n_used = sum(1 for r in logic.series_rows() if r.used_by_module)
            text = f"{len(scan.series)} series found, {n_used} of the kinds this module uses (listed first)."
            self.status.showMessage(" ".join(t for t in (text, message) if t), "warning" if message else "info")
        return ok

    def fillTable(self) -> None:
        """Show the rows of the last scan."""
        logic = self._libLogic()
        rows = logic.series_rows()
        table = self.ui.seriesTable
        table.clearContents()
        table.setRowCount(len(rows))
        grey = qt.QBrush(qt.QColor(128, 128, 128))
        for r, row in enumerate(rows):
            for c, text in enumerate(row.cells()):
                item = qt.QTableWidgetItem(text)
                item.setToolTip(row.tooltip)
                item.setData(qt.Qt.UserRole, row.series_index)
                if row.used_by_module:
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                if not row.loadable:
                    item.setForeground(grey)
                table.setItem(r, c, item)
        table.resizeColumnsToContents()
        skipped = logic.loader.skipped_summary()
        self.ui.skippedLabel.text = skipped
        self.ui.skippedLabel.toolTip = logic.loader.skipped_details()
        self.ui.skippedLabel.visible = bool(skipped)
        if rows:
            table.selectRow(0)
        self._updateButtons()

    # ---- loading ---------------------------------------------------------------------
    def selectedSeriesIndex(self) -> int | None:
        items = self.ui.seriesTable.selectedItems()
        if not items:
            return None
        return int(items[0].data(qt.Qt.UserRole))

    def loadSelected(self) -> Any:
        """Load the selected series into the scene and show it; returns the LoadedSeries or None."""
        index = self.selectedSeriesIndex()
        if index is None or self.status.busy:
            return None
        message = self._beforeWork()
        logic = self._libLogic()
        series = logic.loader.series_at(index)
        loaded = None
        self._setEnabled(False)
        try:
            text = f"Loading series {series.series_number}: {series.description} ..."
            with self.status.inProcessTask(text) as progress:
                loaded = logic.load(index, progress)
        except Exception as exc:
            self.status.showMessage(f"Loading failed: {exc}", "error")
        finally:
            self._setEnabled(True)
        if loaded is None:
            return None
        self.show(loaded)
        kind = f"sequence of {loaded.n_frames} frames" if loaded.is_sequence else "volume"
        parts = [f"Loaded '{loaded.node.GetName()}' as a {kind}."]
        if loaded.warnings:
            parts.append("Warnings: " + "; ".join(loaded.warnings))
        if message:
            parts.append(message)
        self.status.showMessage(" ".join(parts), "warning" if (loaded.warnings or message) else "info")
        return loaded

    @staticmethod
    def show(loaded: Any) -> None:
        """Show a loaded series in the slice views (and the sequence toolbar for a sequence)."""
        if loaded.display_node is not None:
            slicer.util.setSliceViewerLayers(background=loaded.display_node, fit=True)
        if loaded.browser_node is not None:
            try:
                slicer.modules.sequences.showSequenceBrowser(loaded.browser_node)
            except AttributeError:  # Sequences module not loaded
                logging.info("Sequences module not available: the sequence toolbar is not shown")

    # ---- state -----------------------------------------------------------------------
    def _setEnabled(self, enabled: bool) -> None:
        for name in ("studyDirectoryButton", "scanButton", "seriesTable", "loadSeriesButton"):
            getattr(self.ui, name).enabled = enabled
        if enabled:
            self._updateButtons()

    def _updateButtons(self) -> None:
        folder = self.ui.studyDirectoryButton.directory
        self.ui.scanButton.enabled = folder not in ("", ".") and Path(folder).is_dir()
        index = self.selectedSeriesIndex()
        loader = self._libLogic().loader if index is not None else None
        loadable = False
        tip = "Select a series in the table."
        if loader is not None and index < len(loader.series):
            series = loader.series_at(index)
            loadable = not series.problems
            tip = "Load the selected series into the scene." if loadable else \
                "This series cannot be loaded: " + "; ".join(series.problems)
        self.ui.loadSeriesButton.enabled = loadable
        self.ui.loadSeriesButton.toolTip = tip


# ---------------------------------------------------------------------------------------
# whole panel
# ---------------------------------------------------------------------------------------
class CMRPanel:
    """Wires the shared part of a module's panel (see the module docstring for the widget names).

    ``logic`` is the module's ScriptedLoadableModuleLogic, whose ``impl`` property returns
    the Qt-free logic; ``requirementsPath`` defaults to the extension's requirements file.
    """

    def __init__(self, ui: Any, logic: Any, moduleName: str, requirementsPath: str | Path = REQUIREMENTS_FILE) -> None:
        self.ui = ui
        self.logic = logic
        self.moduleName = moduleName
        self.requirementsPath = Path(requirementsPath)
        self.status = StatusArea(ui.statusLabel, ui.progressBar, ui.cancelButton)
        self.device = DeviceSection(ui.deviceWarningLabel)
        self.study = StudyLoaderSection(ui, lambda: self.logic.impl, self.status, self.ensureDependencies)
        self.ui.capabilitiesLabel.wordWrap = True
        self.ui.capabilitiesLabel.text = self.logic.impl.capabilities_text()
        #: Check (and offer to install) the requirements before the first scan / load and
        #: PyTorch before the first worker run; the self-tests turn it off so that no dialog
        #: can block them.
        self.checkDependencies = True

    def ensureDependencies(self) -> str:
        """Check (and offer to install) the Python packages, and say whether PyTorch is there
        (installed only before a worker run, see :meth:`runCmr`); a status message ('' for none)."""
        if not self.checkDependencies:
            return ""
        try:
            _, message = ensureDependencies(self.requirementsPath, self.moduleName)
        except Exception as exc:  # a broken requirements file must not block loading
            logging.error(f"{self.moduleName}: checking Python packages failed: {exc}")
            message = f"Checking Python packages failed: {exc}"
        return " ".join(m for m in (message, torch_status().problem()) if m)

    def runCmr(self, cliArgs: list[str], text: str, onFinished: Callable[[RunResult], None]) -> bool:
        """Run ``cmr <cliArgs>`` in a worker process with the chosen device (``--device`` and
        ``CMR_DEVICE``), showing its progress with Cancel; ``onFinished(result)`` runs on the
        main thread. False (and a message) when the Python packages or PyTorch are missing
        or another task is running."""
        if self.status.busy:
            self.status.showMessage("Another SlicerCMR task is still running; wait for it or press Cancel.", "warning")
            return False
        if self.checkDependencies:
            usable, torchMessage = ensureTorch(self.moduleName)
            if not usable:
                self.status.showMessage(torchMessage, "error")
                return False
            message = " ".join(m for m in (self.ensureDependencies(), torchMessage) if m)
            if message:
                logging.info(f"{self.moduleName}: {message}")
        args, env = worker_command(cliArgs, self.device.choice)
        self.status.runWorker(args, text, onFinished, env)
        return True

    def setDeviceChoice(self, choice: DeviceChoice | str | None) -> None:
        self.device.setChoice(choice)

    def workerEnvironment(self) -> dict[str, str]:
        """Environment additions for worker processes (``CMR_DEVICE``)."""
        return self.device.environment()

    def enter(self) -> None:
        """Module shown: query the GPU (once per session)."""
        self.device.probe()

    def cleanup(self) -> None:
        self.status.cleanup()
        self.device.cleanup()


# ---------------------------------------------------------------------------------------
# checks shared by the modules' self-tests (run inside Slicer only)
# ---------------------------------------------------------------------------------------
def checkPanelScanAndLoad(tc: Any, widget: Any, study: Any) -> None:
    """Pick the synthetic study's folder in the panel as a user would, check the table, the
    parameter node and the device combo box, then load the first listed series and check it
    is shown. ``tc`` is the module's ScriptedLoadableModuleTest, ``widget`` its module widget,
    ``study`` a :class:`CMRCommonLib.testing.SyntheticStudy`."""
    from .study_loader import SERIES_COLUMNS

    panel, ui = widget.panel, widget.ui
    if widget._parameterNode is None:  # the scene was cleared while the module was not shown
        widget.initializeParameterNode()
    panel.checkDependencies = False
    try:
        ui.studyDirectoryButton.directory = str(study.folder)  # emits directoryChanged -> scan
        slicer.app.processEvents()
        tc.assertEqual(ui.seriesTable.rowCount, len(study.series), ui.statusLabel.text)
        headers = [ui.seriesTable.horizontalHeaderItem(c).text() for c in range(ui.seriesTable.columnCount)]
        tc.assertEqual(tuple(headers), SERIES_COLUMNS)
        tc.assertEqual(Path(str(widget._parameterNode.studyFolder)).resolve(), Path(study.folder).resolve())
        tc.assertEqual(ui.deviceComboBox.count, len(DeviceChoice))
        tc.assertEqual(ui.deviceComboBox.currentText, widget._parameterNode.device.label())

        ui.seriesTable.selectRow(0)
        index = panel.study.selectedSeriesIndex()
        tc.assertIsNotNone(index)
        tc.assertTrue(ui.loadSeriesButton.enabled)
        series = panel.logic.impl.loader.series_at(index)
        expected = study.series[series.kind]
        tc.assertIn(series.kind, panel.logic.impl.USED_KINDS, "the module's kinds must be listed first")

        loaded = panel.study.loadSelected()
        tc.assertIsNotNone(loaded, ui.statusLabel.text)
        tc.assertEqual(loaded.n_frames, expected.n_frames)
        tc.assertEqual(loaded.is_sequence, expected.n_frames > 1)
        tc.assertFalse(panel.status.busy)
        layoutManager = slicer.app.layoutManager()
        if layoutManager is not None:  # not in --no-main-window runs
            composite = layoutManager.sliceWidget("Red").sliceLogic().GetSliceCompositeNode()
            tc.assertEqual(composite.GetBackgroundVolumeID(), loaded.display_node.GetID())
    finally:
        panel.checkDependencies = True


def waitForWorker(tc: Any, panel: Any, timeoutS: float = 300.0) -> RunResult:
    """Process events until the panel's worker process has finished; its RunResult."""
    deadline = time.monotonic() + timeoutS
    while panel.status.busy and time.monotonic() < deadline:
        slicer.app.processEvents()
        time.sleep(0.02)
    tc.assertFalse(panel.status.busy, "the worker did not finish in time")
    tc.assertIsNotNone(panel.status.lastResult)
    return panel.status.lastResult


def applyAndWait(tc: Any, widget: Any, apply: Callable[[], bool], timeoutS: float = 300.0) -> RunResult:
    """Press a panel section's Apply (``apply``, e.g. ``widget.onApply``) with the dependency
    check off, wait for its worker (:func:`waitForWorker`) and check that it exited 0; its
    RunResult."""
    widget.panel.checkDependencies = False
    try:
        tc.assertTrue(apply(), widget.ui.statusLabel.text)
        result = waitForWorker(tc, widget.panel, timeoutS)
    finally:
        widget.panel.checkDependencies = True
    tc.assertEqual(result.returncode, 0, result.error_text(10))
    return result


def checkWorkerProgress(tc: Any, panel: Any, timeoutS: float = 120.0) -> None:
    """Run a tiny worker through the panel's status area: it imports cmrlib (found through the
    PYTHONPATH the runner sets), reports progress with cmrlib's line protocol and prints the
    CMR_DEVICE it was given."""
    code = ("import os\n"
            "from cmrlib.progress import line_progress\n"
            "report = line_progress()\n"
            "for k in range(4):\n"
            "    report('self-test', k, 3, f'step {k}')\n"
            "print(os.environ.get('CMR_DEVICE', ''))\n")
    results: list[RunResult] = []
    panel.status.runWorker([python_executable(), "-c", code], "Self-test worker", results.append,
                           extraEnv=panel.workerEnvironment())
    tc.assertTrue(panel.status.busy)
    result = waitForWorker(tc, panel, timeoutS)
    tc.assertEqual(results, [result])
    tc.assertEqual(result.returncode, 0, result.stderr)
    tc.assertEqual(result.stdout.strip(), panel.device.choice.value)
    tc.assertIsNotNone(result.last_progress)
    tc.assertEqual(result.last_progress.phase, "self-test")
    tc.assertEqual(result.last_progress.fraction, 1.0)

"""Cancellable runner of long SlicerCMR work in a child process (Qt-free).

Long work (fitting, training, inference on a whole study) runs as
``<python> -m cmrlib.cli ...`` in a child process so that Slicer stays responsive and the
work can be cancelled. Inside Slicer ``<python>`` is the ``PythonSlicer`` executable (same
packages as the application); headless it is ``sys.executable``.

Progress protocol (emitted by :func:`cmrlib.progress.line_progress` in the child): lines
``CMR-PROGRESS {"phase": str, "done": int, "total": int, "message": str}`` on stderr.
Each is turned into ``on_progress(phase, fraction, message)`` with ``fraction`` in 0..1
(0 while ``total`` is unknown). Every other stderr line is kept as log text.

Threading: two reader threads move the child's output into a queue; callbacks are only
called from :meth:`SubprocessRunner.poll` / :meth:`SubprocessRunner.wait`, i.e. on the
caller's thread. In Slicer a ``QTimer`` calls ``poll()`` on the main thread, so callbacks may
touch widgets.
"""
from __future__ import annotations

import importlib.util
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

from cmrlib.progress import parse_progress_line

if TYPE_CHECKING:  # pragma: no cover
    from .device_choice import DeviceChoice

#: ``on_progress(phase, fraction 0..1, message)``
ProgressHandler = Callable[[str, float, str], None]
#: ``on_log(line)`` -- a non-progress stderr line, without its newline
LogHandler = Callable[[str], None]


@dataclass(frozen=True)
class ProgressEvent:
    """One parsed ``CMR-PROGRESS`` line."""

    phase: str
    done: int
    total: int
    message: str = ""

    @property
    def fraction(self) -> float:
        """Completed fraction of the phase, 0..1 (0 while the total is unknown)."""
        if self.total <= 0:
            return 0.0
        return min(1.0, max(0.0, self.done / self.total))

    @classmethod
    def from_line(cls, line: str) -> ProgressEvent | None:
        """The event of a ``CMR-PROGRESS`` line, or None for any other line."""
        data = parse_progress_line(line.rstrip("\r\n"))
        if data is None:
            return None
        try:
            return cls(str(data["phase"]), int(data.get("done", 0)), int(data.get("total", 0)),
                       str(data.get("message", "")))
        except (TypeError, ValueError):
            return None


@dataclass
class RunResult:
    """Outcome of a finished child process."""

    returncode: int
    stdout: str
    stderr: str  #: stderr without the ``CMR-PROGRESS`` lines
    cancelled: bool
    elapsed_s: float  #: wall-clock seconds from start to exit
    last_progress: ProgressEvent | None = None
    args: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.cancelled

    def error_text(self, max_lines: int = 20) -> str:
        """The last ``max_lines`` lines of stderr, for an error message."""
        lines = [ln for ln in self.stderr.splitlines() if ln.strip()]
        return "\n".join(lines[-max_lines:])


def _slicer_app():
    """``slicer.app`` when running inside the Slicer application, else None.

    Only looks at an already imported ``slicer`` (importing the slicer-core wheel is slow and
    it has no ``app``).
    """
    slicer = sys.modules.get("slicer")
    return getattr(slicer, "app", None) if slicer is not None else None


def python_executable() -> str:
    """The Python interpreter for the child process.

    Inside Slicer: ``PythonSlicer`` found on PATH (the Slicer launcher puts it there) or in
    ``<slicerHome>/bin``. Elsewhere: the current interpreter (``sys.executable``).
    """
    app = _slicer_app()
    if app is None:
        return sys.executable
    exe_name = "PythonSlicer.exe" if os.name == "nt" else "PythonSlicer"
    found = shutil.which("PythonSlicer")
    if found:
        return found
    candidate = Path(str(app.slicerHome)) / "bin" / exe_name
    if candidate.is_file():
        return str(candidate)
    raise FileNotFoundError(f"PythonSlicer was not found on PATH nor at {candidate}; "
                            "cannot start the SlicerCMR worker process")


def cmrlib_search_path() -> str | None:
    """Folder holding the ``cmrlib`` package (its parent), or None if cmrlib is not importable."""
    spec = importlib.util.find_spec("cmrlib")
    if spec is None or not spec.submodule_search_locations:
        return None
    return str(Path(list(spec.submodule_search_locations)[0]).resolve().parent)


def child_environment(extra: Mapping[str, str] | None = None,
                      base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for the child: ``base`` (default: this process's), unbuffered output, the
    folder holding ``cmrlib`` first on ``PYTHONPATH`` (in Slicer it lives in the extension's
    ``qt-scripted-modules`` folder, which PythonSlicer does not search), then ``extra``."""
    env = dict(os.environ if base is None else base)
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("PYTHONIOENCODING", "utf-8")
    search = cmrlib_search_path()
    if search:
        parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        if search not in parts:
            env["PYTHONPATH"] = os.pathsep.join([search, *parts])
    if extra:
        env.update({str(k): str(v) for k, v in extra.items()})
    return env


def cmrlib_cli_command(cli_args: Sequence[str], python: str | None = None) -> list[str]:
    """``[<python>, "-m", "cmrlib.cli", *cli_args]``."""
    return [python or python_executable(), "-m", "cmrlib.cli", *[str(a) for a in cli_args]]


def worker_command(cli_args: Sequence[str], device: "DeviceChoice | str | None",
                   python: str | None = None) -> tuple[list[str], dict[str, str]]:
    """The command and environment additions of a `cmr` worker run from a panel: the chosen
    device goes on the command line (``--device``, what the CLI reads first) and into
    ``CMR_DEVICE`` (for whatever the worker starts in turn)."""
    from .device_choice import DeviceChoice, device_environment

    choice = DeviceChoice.from_value(device)
    return cmrlib_cli_command([*cli_args, "--device", choice.value], python), device_environment(choice)


class SubprocessRunner:
    """Run one command in a child process; report progress; cancel it with its children.

    Typical use::

        runner = SubprocessRunner(cmrlib_cli_command(["t1fit", ...]),
                                  extra_env=device_environment("cpu"), on_progress=show)
        result = runner.run()                # blocking, or start() + poll() from a timer

    ``cancel()`` may be called from any thread (e.g. a Cancel button while ``wait()`` runs a
    loop that processes events).
    """

    def __init__(self, args: Sequence[str], *, extra_env: Mapping[str, str] | None = None,
                 env: Mapping[str, str] | None = None, cwd: str | Path | None = None,
                 on_progress: ProgressHandler | None = None, on_log: LogHandler | None = None,
                 terminate_grace_s: float = 3.0) -> None:
        self.args = [str(a) for a in args]
        self.env = child_environment(extra_env, env)
        self.cwd = str(cwd) if cwd is not None else None
        self.on_progress = on_progress
        self.on_log = on_log
        self.terminate_grace_s = float(terminate_grace_s)
        self._process: subprocess.Popen[str] | None = None
        self._queue: queue.Queue[tuple[str, object]] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._stdout: list[str] = []
        self._stderr: list[str] = []
        self._open_streams = 0
        self._cancelled = threading.Event()
        self._start_time = 0.0
        self._last_progress: ProgressEvent | None = None
        self._result: RunResult | None = None

    # ---- lifecycle -------------------------------------------------------------------
    @property
    def started(self) -> bool:
        return self._process is not None

    @property
    def running(self) -> bool:
        """True from :meth:`start` until the result has been collected by poll()/wait()."""
        return self._process is not None and self._result is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def start(self) -> None:
        """Start the child process (once)."""
        if self._process is not None:
            raise RuntimeError("this runner was already started; create a new SubprocessRunner")
        kwargs: dict = {}
        if os.name == "nt":
            kwargs["creationflags"] = (getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)
                                       | getattr(subprocess, "CREATE_NO_WINDOW", 0))
        else:
            kwargs["start_new_session"] = True  # own process group: cancel() kills the whole tree
        self._start_time = time.monotonic()
        self._process = subprocess.Popen(
            self.args, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8",
            errors="replace", bufsize=1, **kwargs)
        self._open_streams = 2
        for name, stream in (("stdout", self._process.stdout), ("stderr", self._process.stderr)):
            thread = threading.Thread(target=self._read, args=(name, stream),
                                      name=f"cmr-runner-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _read(self, name: str, stream) -> None:
        try:
            for line in stream:
                if name == "stderr":
                    event = ProgressEvent.from_line(line)
                    self._queue.put(("progress", event) if event is not None else ("stderr", line))
                else:
                    self._queue.put(("stdout", line))
        except (OSError, ValueError):  # stream closed while reading (process killed)
            pass
        finally:
            self._queue.put(("eof", name))

    def _dispatch(self, kind: str, payload: object) -> None:
        if kind == "progress":
            event = payload  # type: ignore[assignment]
            self._last_progress = event  # type: ignore[assignment]
            if self.on_progress is not None:
                self.on_progress(event.phase, event.fraction, event.message)  # type: ignore[attr-defined]
        elif kind == "stderr":
            text = str(payload)
            self._stderr.append(text)
            if self.on_log is not None:
                self.on_log(text.rstrip("\r\n"))
        elif kind == "stdout":
            self._stdout.append(str(payload))
        elif kind == "eof":
            self._open_streams -= 1

    def _finish_if_done(self) -> RunResult | None:
        assert self._process is not None
        if self._open_streams > 0:
            return None
        returncode = self._process.poll()
        if returncode is None:
            return None
        for thread in self._threads:
            thread.join(timeout=1.0)
        self._result = RunResult(
            returncode=returncode, stdout="".join(self._stdout), stderr="".join(self._stderr),
            cancelled=self.cancelled, elapsed_s=time.monotonic() - self._start_time,
            last_progress=self._last_progress, args=list(self.args))
        return self._result

    def poll(self) -> RunResult | None:
        """Dispatch the output received so far; the result once the child has exited, else None."""
        if self._process is None:
            raise RuntimeError("poll() before start()")
        if self._result is not None:
            return self._result
        while True:
            try:
                kind, payload = self._queue.get_nowait()
            except queue.Empty:
                break
            self._dispatch(kind, payload)
        return self._finish_if_done()

    def wait(self, timeout_s: float | None = None, idle: Callable[[], None] | None = None) -> RunResult:
        """Block until the child exits, dispatching callbacks as output arrives.

        ``idle()`` is called about every 50 ms (e.g. ``slicer.app.processEvents`` so that a
        Cancel button still works). Raises :class:`TimeoutError` after ``timeout_s`` seconds
        (the child keeps running; call :meth:`cancel`).
        """
        if self._process is None:
            raise RuntimeError("wait() before start()")
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            try:
                kind, payload = self._queue.get(timeout=0.05)
                self._dispatch(kind, payload)
            except queue.Empty:
                pass
            result = self.poll()
            if result is not None:
                return result
            if idle is not None:
                idle()
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"the worker process (pid {self.pid}) is still running after {timeout_s:g} s")

    def run(self, timeout_s: float | None = None, idle: Callable[[], None] | None = None) -> RunResult:
        """:meth:`start` then :meth:`wait`."""
        self.start()
        return self.wait(timeout_s, idle)

    # ---- cancellation ----------------------------------------------------------------
    def cancel(self) -> None:
        """Terminate the child and everything it started (its process group / tree).

        Sends SIGTERM to the group, then SIGKILL after ``terminate_grace_s`` seconds if it
        is still alive (Windows: ``taskkill /T /F``). Safe to call more than once and after
        the child has exited.
        """
        self._cancelled.set()
        process = self._process
        if process is None:
            return
        if os.name == "nt":
            if process.poll() is None:
                subprocess.run(["taskkill", "/T", "/F", "/PID", str(process.pid)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
            return
        self._signal_group(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=self.terminate_grace_s)
        except subprocess.TimeoutExpired:
            pass
        # Children of the group may outlive the leader: make sure nothing is left.
        self._signal_group(process.pid, signal.SIGKILL)
        try:
            process.wait(timeout=self.terminate_grace_s)
        except subprocess.TimeoutExpired:
            pass

    @staticmethod
    def _signal_group(pgid: int, sig: int) -> None:
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def run_cmrlib_cli(cli_args: Sequence[str], *, extra_env: Mapping[str, str] | None = None,
                   on_progress: ProgressHandler | None = None, on_log: LogHandler | None = None,
                   timeout_s: float | None = None) -> RunResult:
    """Run ``python -m cmrlib.cli <cli_args>`` to completion (blocking helper)."""
    runner = SubprocessRunner(cmrlib_cli_command(cli_args), extra_env=extra_env,
                              on_progress=on_progress, on_log=on_log)
    return runner.run(timeout_s=timeout_s)

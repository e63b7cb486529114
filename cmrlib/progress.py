"""Progress reporting shared by the CLI (tqdm), the Slicer runner and the modules.

Every long cmrlib function takes ``progress: ProgressCallback | None``; the callback gets
``(phase, done, total, message)``. ``emit_progress_lines`` turns a callback into the line
protocol read by the Slicer subprocess runner: ``CMR-PROGRESS {json}`` on stderr.
"""
from __future__ import annotations

import json
import sys
from typing import Callable, Optional

ProgressCallback = Callable[[str, int, int, str], None]
PROGRESS_PREFIX = "CMR-PROGRESS "


def report(progress: Optional[ProgressCallback], phase: str, done: int, total: int, message: str = "") -> None:
    """Call ``progress`` if given (a no-op otherwise)."""
    if progress is not None:
        progress(phase, done, total, message)


def line_progress(stream=None) -> ProgressCallback:
    """A callback that writes ``CMR-PROGRESS {"phase", "done", "total", "message"}`` lines."""
    out = stream or sys.stderr

    def _emit(phase: str, done: int, total: int, message: str = "") -> None:
        out.write(PROGRESS_PREFIX + json.dumps({"phase": phase, "done": done, "total": total,
                                                "message": message}) + "\n")
        out.flush()
    return _emit


def parse_progress_line(line: str) -> dict | None:
    """The dict of a ``CMR-PROGRESS`` line, or None for any other line."""
    if not line.startswith(PROGRESS_PREFIX):
        return None
    try:
        data = json.loads(line[len(PROGRESS_PREFIX):])
    except json.JSONDecodeError:
        return None
    return data if isinstance(data, dict) and "phase" in data else None


class TqdmProgress:
    """A callback driving one tqdm bar per phase (used by the ``cmr`` CLI)."""

    def __init__(self, disable: bool = False) -> None:
        self.disable = disable
        self._bar = None
        self._phase = None

    def __call__(self, phase: str, done: int, total: int, message: str = "") -> None:
        from tqdm import tqdm
        if phase != self._phase:
            self.close()
            self._phase = phase
            self._bar = tqdm(total=total, desc=phase, unit="it", disable=self.disable, leave=False, file=sys.stderr)
        if self._bar is not None:
            if total and self._bar.total != total:
                self._bar.total = total
            self._bar.n = done
            self._bar.set_postfix_str(message[:40], refresh=False)
            self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def make_progress(args) -> ProgressCallback:
    """The progress callback for one CLI invocation (``args`` has ``quiet`` / ``progress_lines``):
    tqdm bars on a terminal, ``CMR-PROGRESS`` lines for the Slicer runner, or silent."""
    if getattr(args, "progress_lines", False):
        return line_progress()
    return TqdmProgress(disable=getattr(args, "quiet", False) or not sys.stderr.isatty())

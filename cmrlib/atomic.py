"""Atomic file replacement: write to a temporary file beside the target, then rename.

An interrupted write never leaves a partial file. ``tempfile.mkstemp`` creates files with
mode 0600; the result gets the usual mode (0666 minus the umask) so outputs are as readable
as any other file the user writes.
"""
from __future__ import annotations

import os
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def replace_file(tmp: str | Path, target: str | Path) -> Path:
    """Give ``tmp`` (a file, or a folder made with mkdtemp) normal permissions and move it over
    ``target``; return ``target``."""
    os.chmod(tmp, (0o777 if os.path.isdir(tmp) else 0o666) & ~_umask())
    os.replace(tmp, target)
    return Path(target)

"""Safe output: atomic file replacement (a temporary file beside the target, then a rename), a
staged output folder that appears only when complete, and the output-folder check every
command runs before computing anything.

An interrupted write never leaves a partial file. ``tempfile.mkstemp`` creates files with
mode 0600; the result gets the usual mode (0666 minus the umask) so outputs are as readable
as any other file the user writes.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


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


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and a rename (never a partial file)."""
    import tempfile
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return replace_file(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _existing_ancestor(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_output_folder(input_path: str | Path | None, out_dir: str | Path) -> None:
    """Refuse, before any computation, an output folder that is inside (or equal to) the input
    (inputs are never written), or that cannot be written (read-only, full, not a folder).
    Creates nothing."""
    import tempfile

    from .errors import InputError
    out = Path(out_dir)
    if input_path is not None:
        inp, res = Path(input_path).resolve(), out.resolve()
        if res == inp or inp in res.parents:
            raise InputError(f"output folder {out_dir} is inside the input folder {input_path}; "
                             f"choose a folder outside it (nothing is ever written into the input)")
    if out.exists() and not out.is_dir():
        raise InputError(f"output folder {out_dir} exists and is not a folder")
    base = _existing_ancestor(out)
    if not base.is_dir():
        raise InputError(f"cannot write to output folder {out_dir}: {base} is not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".cmr-write-test-", dir=base)
        try:
            os.write(fd, b"x" * 4096)  # a full disk refuses data, not always the empty file
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        raise InputError(f"cannot write to output folder {out_dir}: {exc.strerror or exc}") from None


@contextmanager
def staged_folder(target: str | Path) -> Iterator[Path]:
    """A temporary folder beside ``target`` to write results into; on success its entries replace
    those of ``target`` (each by a rename), on any failure it is removed and ``target`` is left as
    it was — no half-written result ever looks complete. Folders it had to create are removed
    again on failure."""
    import shutil
    import tempfile
    target = Path(target)
    first_new = None
    p = target.absolute()
    while not p.exists():
        first_new, p = p, p.parent
    target.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        yield stage
        target.mkdir(exist_ok=True)
        for item in sorted(stage.iterdir()):
            dest = target / item.name
            if dest.is_dir() and not dest.is_symlink():
                shutil.rmtree(dest)
            replace_file(item, dest) if item.is_dir() else os.replace(item, dest)
        stage.rmdir()
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        if first_new is not None and first_new.exists():
            try:  # only folders this call created, and only while empty
                for d in [target.absolute(), *target.absolute().parents]:
                    if d == first_new.parent:
                        break
                    if d.is_dir() and not any(d.iterdir()):
                        d.rmdir()
            except OSError:
                pass
        raise

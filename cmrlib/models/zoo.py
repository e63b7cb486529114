"""Model zoo: JSON manifests, safetensors weights, sha256 verification, loading by name.

A model folder holds ``manifest.json`` and the weight files it names::

    {"schema": 1, "models": [{
        "name": "moconet-compact", "task": "motion", "version": "1.0",
        "architecture": "moconet", "arch_args": {...},
        "file": "moconet-compact.safetensors", "sha256": "...",
        "input": {"size": [7, 128, 128], "normalisation": "..."},
        "label_table": {...}, "trained_on": "synthetic phantom ...",
        "phantom_trained": true, "train_command": "cmr train moconet ...",
        "metrics": {...}, "card": "moconet-compact.md",
        "calibration": {...}}]}       # optional: post-training parameters (QCD regressors)

Folders searched, first wins for a given name: each folder in ``CMR_MODELS_DIR``
(os.pathsep-separated; the user's own models), then the bundled ``cmrlib/resources/models``.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

from ..errors import ModelError
from ..atomic import replace_file

MANIFEST = "manifest.json"
SCHEMA = 1
PHANTOM_NOTICE = "phantom-trained demonstration weights: not for clinical use"


def bundled_models_dir() -> Path:
    """``cmrlib/resources/models``: the same place in a checkout, a wheel and inside Slicer."""
    from ..resources import MODELS_DIR
    return MODELS_DIR


def model_dirs() -> list[Path]:
    """Folders searched for models: ``CMR_MODELS_DIR`` entries, then the bundled folder."""
    user = [Path(p).expanduser() for p in os.environ.get("CMR_MODELS_DIR", "").split(os.pathsep) if p.strip()]
    return [*user, bundled_models_dir()]


@dataclass
class ModelEntry:
    """One manifest entry, plus the folder it was found in."""

    name: str
    task: str
    architecture: str
    file: str
    sha256: str
    version: str = "1.0"
    arch_args: dict[str, Any] = field(default_factory=dict)
    input: dict[str, Any] = field(default_factory=dict)
    label_table: dict[str, Any] = field(default_factory=dict)
    trained_on: str = ""
    phantom_trained: bool = True
    train_command: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    card: str = ""
    #: parameters fitted after training that the method uses at inference (QCD's Dice regressors)
    calibration: dict[str, Any] = field(default_factory=dict)
    folder: Path = field(default=Path("."), compare=False)

    @property
    def path(self) -> Path:
        return self.folder / self.file

    @property
    def notice(self) -> str:
        """What every place showing this model's results must say about it."""
        return PHANTOM_NOTICE if self.phantom_trained else f"trained on: {self.trained_on}"

    def to_manifest(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("folder")
        return d

    @classmethod
    def from_manifest(cls, data: dict[str, Any], folder: Path) -> "ModelEntry":
        missing = [k for k in ("name", "task", "architecture", "file", "sha256") if not data.get(k)]
        if missing:
            raise ModelError(f"{folder / MANIFEST}: entry {data.get('name', '?')!r} lacks {', '.join(missing)}")
        known = {f for f in cls.__dataclass_fields__ if f != "folder"}
        return cls(**{k: v for k, v in data.items() if k in known}, folder=folder)


def read_manifest(folder: Path) -> list[ModelEntry]:
    """Entries of ``folder/manifest.json`` ([] when the folder has no manifest)."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: not a readable JSON manifest ({exc})") from exc
    if data.get("schema") != SCHEMA or not isinstance(data.get("models"), list):
        raise ModelError(f"{path}: expected {{'schema': {SCHEMA}, 'models': [...]}}")
    return [ModelEntry.from_manifest(m, Path(folder)) for m in data["models"]]


def list_models() -> list[ModelEntry]:
    """All models visible, user folders first; a name shadows the same name later on."""
    seen: dict[str, ModelEntry] = {}
    for folder in model_dirs():
        for entry in read_manifest(folder):
            seen.setdefault(entry.name, entry)
    return list(seen.values())


def find_model(name: str) -> ModelEntry:
    """The manifest entry named ``name``."""
    models = list_models()
    for entry in models:
        if entry.name == name:
            return entry
    raise ModelError(f"no model named {name!r} in {', '.join(str(d) for d in model_dirs())}; "
                     f"available: {', '.join(m.name for m in models) or 'none'}")


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify(entry: ModelEntry) -> None:
    """Raise :class:`ModelError` if the weights file is missing or its sha256 differs."""
    if not entry.path.is_file():
        raise ModelError(f"model {entry.name!r}: weights file missing: {entry.path}")
    actual = sha256_of(entry.path)
    if actual != entry.sha256:
        raise ModelError(f"model {entry.name!r}: checksum mismatch for {entry.path}: "
                         f"manifest says {entry.sha256}, file has {actual} (corrupt or replaced)")


#: models built in this process: (name, device, weights file, size, mtime) → (model, entry)
_LOADED: dict[tuple, tuple[Any, ModelEntry]] = {}


def loaded_models() -> list[str]:
    """Names of the models loaded in this process (for the provenance of reports)."""
    return sorted({key[0] for key in _LOADED})


def clear_model_cache() -> None:
    _LOADED.clear()


def load_model(name: str, device: Any = None) -> tuple[Any, ModelEntry]:
    """Build the registered architecture, load verified safetensors weights, eval mode.

    Loaded once per (name, device) in a process: later calls return the same module without
    re-hashing or rebuilding, unless the weights file changed on disk (size or mtime).
    ``device``: a torch device or preference string (see :func:`cmrlib.device.pick_device`).
    """
    import torch

    from ..device import pick_device

    entry = find_model(name)
    dev = device if isinstance(device, torch.device) else pick_device(device)
    try:
        stat = entry.path.stat()
    except OSError:
        stat = None
    key = (name, str(dev), str(entry.path), stat.st_size if stat else None, stat.st_mtime_ns if stat else None)
    if key in _LOADED:
        return _LOADED[key]
    loaded = _build(entry, dev)
    _LOADED[key] = loaded
    return loaded


def model_installed(name: str) -> bool:
    """Whether a model named ``name`` is visible (bundled or in ``CMR_MODELS_DIR``)."""
    return any(m.name == name for m in list_models())


def load_installed(name: str, device: Any, trainer: str) -> tuple[Any, ModelEntry]:
    """:func:`load_model`, or a :class:`NotAvailableError` saying how to get the weights
    (``trainer``: the `cmr train` model name that makes them)."""
    from ..errors import NotAvailableError
    if not model_installed(name):
        raise NotAvailableError(f"{trainer} weights {name!r} are not installed; train them with `cmr train {trainer}` "
                                "(or point CMR_MODELS_DIR at a folder that has them)")
    return load_model(name, device=device)


def _build(entry: ModelEntry, dev: Any) -> tuple[Any, ModelEntry]:
    from safetensors.torch import load_file

    from .registry import build_architecture
    name = entry.name
    verify(entry)
    model = build_architecture(entry.architecture, **entry.arch_args)
    try:
        state = load_file(str(entry.path), device="cpu")
    except Exception as exc:
        raise ModelError(f"model {name!r}: cannot read safetensors {entry.path}: {exc}") from exc
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:  # missing / unexpected keys or shape mismatches
        first = str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else str(exc)
        raise ModelError(f"model {name!r}: weights do not match architecture {entry.architecture!r} "
                         f"{entry.arch_args}: {first}") from exc
    return model.to(dev).eval(), entry


def _write_json_atomic(path: Path, data: Any) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2, sort_keys=False)
        f.write("\n")
    replace_file(tmp, path)


def save_model(model: Any, entry: ModelEntry, folder: str | Path) -> ModelEntry:
    """Write ``model``'s weights as safetensors into ``folder`` and add/replace its manifest entry.

    The sha256 is computed from the written file. Used by ``cmr train``.
    """
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".safetensors", dir=folder)
    os.close(fd)
    save_file(state, tmp, metadata={"name": entry.name, "architecture": entry.architecture})
    replace_file(tmp, folder / entry.file)
    return register_model(entry, folder)


def register_model(entry: ModelEntry, folder: str | Path) -> ModelEntry:
    """Add/replace ``entry`` in ``folder``'s manifest for the weights file already there
    (``entry.file``); the sha256 is computed from that file."""
    folder = Path(folder)
    entry.folder = folder
    entry.sha256 = sha256_of(entry.path)
    with _manifest_lock(folder):  # two trainings finishing together must not drop each other's entry
        entries = [e for e in read_manifest(folder) if e.name != entry.name] + [entry]
        _write_json_atomic(folder / MANIFEST, {"schema": SCHEMA, "models": [e.to_manifest() for e in entries]})
    return entry


@contextmanager
def _manifest_lock(folder: Path) -> Iterator[None]:
    """An exclusive lock on ``folder``'s manifest for its read-modify-write (POSIX; elsewhere none)."""
    try:
        import fcntl
    except ImportError:  # Windows: Slicer's own installs do not train in parallel
        yield
        return
    # the lock file lives in the temp folder, not among the weights (a model folder may be packaged)
    key = hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:16]
    with open(Path(tempfile.gettempdir()) / f"cmr-manifest-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def reproducing_command(prog: str, add_arguments: Any, args: Any) -> str:
    """``args`` as the full command that reproduces a training run, every option of
    ``add_arguments`` spelled out in its order (for a manifest's ``train_command``): flags only
    when set, options left at None omitted, numbers as written (``0.0003``, not ``3e-04``)."""
    import argparse
    import shlex
    parser = argparse.ArgumentParser(add_help=False)
    add_arguments(parser)
    parts = [prog]
    for action in parser._actions:
        if not action.option_strings or not hasattr(args, action.dest):
            continue
        value = getattr(args, action.dest)
        option = max(action.option_strings, key=len)
        if action.nargs == 0:  # store_true-style flag
            if value:
                parts.append(option)
        elif value is not None and value is not False:
            parts.append(f"{option} {shlex.quote(format(value, 'g') if isinstance(value, float) else str(value))}")
    return " ".join(parts)

"""The one device picker: CUDA → Apple MPS → CPU, overridable, with CUDA-OOM fallback to CPU.

Preference comes from the argument, else ``CMR_DEVICE`` (``auto`` | ``cpu`` | ``cuda`` |
``cuda:N`` | ``mps``). Asking for a GPU that is not there falls back to CPU with a warning,
so a batch script written on a GPU machine still runs on a laptop.
"""
from __future__ import annotations

import os
import warnings
from typing import Any, Callable, TypeVar

import torch

from .errors import InputError

T = TypeVar("T")
CHOICES = ("auto", "cpu", "cuda", "gpu", "mps")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps and mps.is_available())


def pick_device(preference: str | None = None) -> torch.device:
    """The torch device to run on (see module docstring for the rules)."""
    pref = (preference or os.environ.get("CMR_DEVICE") or "auto").strip().lower()
    base = pref.split(":")[0]
    if base not in CHOICES:
        raise InputError(f"unknown device {pref!r}; expected one of {', '.join(CHOICES)} (or cuda:N)")
    if base == "cpu":
        return torch.device("cpu")
    if base in ("cuda", "gpu"):
        if torch.cuda.is_available():
            return torch.device(pref if base == "cuda" else "cuda")
        if base == "gpu" and _mps_available():
            return torch.device("mps")
        warnings.warn(f"device {pref!r} requested but no CUDA GPU is available; using CPU", stacklevel=2)
        return torch.device("cpu")
    if base == "mps":
        if _mps_available():
            return torch.device("mps")
        warnings.warn("device 'mps' requested but Apple MPS is not available; using CPU", stacklevel=2)
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def gpu_memory_gb(device: torch.device | None = None) -> float | None:
    """Total memory of the CUDA GPU in GiB, or None when there is no CUDA GPU."""
    if not torch.cuda.is_available():
        return None
    index = device.index if device is not None and device.type == "cuda" and device.index is not None else 0
    return torch.cuda.get_device_properties(index).total_memory / 2**30


def describe_device(device: torch.device) -> str:
    """Human-readable device name for reports, e.g. 'cuda (NVIDIA H100, 79.6 GiB)'."""
    if device.type == "cuda" and torch.cuda.is_available():
        idx = device.index or 0
        return f"cuda ({torch.cuda.get_device_name(idx)}, {gpu_memory_gb(device):.1f} GiB)"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return device.type


def is_out_of_memory(exc: BaseException) -> bool:
    oom = getattr(torch.cuda, "OutOfMemoryError", None)
    return (oom is not None and isinstance(exc, oom)) or "out of memory" in str(exc).lower()


def run_with_cpu_fallback(fn: Callable[[torch.device], T], device: torch.device) -> tuple[T, torch.device]:
    """Run ``fn(device)``; on CUDA out-of-memory warn, free the cache and rerun on CPU.

    Returns the result and the device it was computed on. ``fn`` must move its own model
    and tensors to the device it is given.
    """
    try:
        return fn(device), device
    except RuntimeError as exc:
        if device.type != "cuda" or not is_out_of_memory(exc):
            raise
        warnings.warn(f"CUDA out of memory on {describe_device(device)}; retrying on CPU (slower)", stacklevel=2)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        cpu = torch.device("cpu")
        return fn(cpu), cpu


def to_device(obj: Any, device: torch.device) -> Any:
    """Move a tensor / module / (nested) list, tuple or dict of them to ``device``."""
    if hasattr(obj, "to"):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_device(v, device) for v in obj)
    return obj

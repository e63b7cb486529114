"""The panel's compute-device choice and the GPU warning (Qt-free).

The device itself is picked in one place, :func:`cmrlib.device.pick_device`, inside the
worker process. The panel only passes the user's choice on through the environment
variable ``CMR_DEVICE`` (``auto`` | ``cpu`` | ``cuda``) and warns when the GPU is missing or
small. :class:`DeviceChoice` is an :class:`enum.Enum` so that Slicer's
``parameterNodeWrapper`` stores it by name and ``connectGui`` fills the combo box with
:meth:`DeviceChoice.label`.
"""
from __future__ import annotations

import enum
import importlib.util
import json
from dataclasses import dataclass

#: Environment variable read by :func:`cmrlib.device.pick_device` in the worker process.
DEVICE_ENV_VAR = "CMR_DEVICE"
#: Below this much GPU memory (GiB) the panel warns that the paper-size models may not fit.
MIN_GPU_MEMORY_GB = 4.0


class DeviceChoice(enum.Enum):
    """Where the networks run. The value is what ``CMR_DEVICE`` is set to."""

    AUTO = "auto"
    CPU = "cpu"
    GPU = "cuda"

    def label(self) -> str:
        """Text shown in the device combo box."""
        return {
            DeviceChoice.AUTO: "Automatic (GPU if available)",
            DeviceChoice.CPU: "CPU",
            DeviceChoice.GPU: "GPU (CUDA)",
        }[self]

    @classmethod
    def from_value(cls, value: str | DeviceChoice | None) -> DeviceChoice:
        """Parse ``auto`` / ``cpu`` / ``cuda`` (also ``gpu`` and enum names); None means AUTO."""
        if isinstance(value, DeviceChoice):
            return value
        text = (value or "auto").strip().lower()
        if text == "gpu":
            return cls.GPU
        for choice in cls:
            if text in (choice.value, choice.name.lower()):
                return choice
        raise ValueError(f"unknown device choice {value!r}; expected one of auto, cpu, cuda (gpu)")


def device_environment(choice: DeviceChoice | str | None) -> dict[str, str]:
    """Environment variables to add for the worker process, e.g. ``{"CMR_DEVICE": "cuda"}``."""
    return {DEVICE_ENV_VAR: DeviceChoice.from_value(choice).value}


@dataclass(frozen=True)
class GpuStatus:
    """What the panel knows about the GPU.

    ``torch_installed`` False means the PyTorch extension has not installed torch yet;
    ``memory_gb`` is the total memory of the CUDA GPU in GiB, None when there is none.
    """

    torch_installed: bool
    memory_gb: float | None


#: Code run by ``<python> -c`` in a child process to query the GPU without importing torch
#: into Slicer's own process (3 s, and an imported torch blocks reinstalling it).
GPU_PROBE_CODE = (
    "import importlib.util, json\n"
    "status = {'torch_installed': importlib.util.find_spec('torch') is not None, 'memory_gb': None}\n"
    "if status['torch_installed']:\n"
    "    from cmrlib.device import gpu_memory_gb\n"
    "    status['memory_gb'] = gpu_memory_gb()\n"
    "print('CMR-GPU ' + json.dumps(status))\n"
)


def gpu_probe_command(python: str) -> list[str]:
    """Command line that prints the GPU status of ``python``'s environment (see :func:`parse_gpu_probe`)."""
    return [python, "-c", GPU_PROBE_CODE]


def parse_gpu_probe(stdout: str) -> GpuStatus:
    """The :class:`GpuStatus` printed by :data:`GPU_PROBE_CODE`; raises ValueError if absent."""
    for line in stdout.splitlines():
        if line.startswith("CMR-GPU "):
            data = json.loads(line[len("CMR-GPU "):])
            memory = data.get("memory_gb")
            return GpuStatus(bool(data.get("torch_installed")), None if memory is None else float(memory))
    raise ValueError(f"the GPU probe printed no 'CMR-GPU' line; output was: {stdout[-500:]!r}")


def probe_gpu() -> GpuStatus:
    """Query the GPU in this process through :func:`cmrlib.device.gpu_memory_gb` (imports torch).

    Headless use; the Slicer panel runs :func:`gpu_probe_command` in a child process instead.
    """
    if importlib.util.find_spec("torch") is None:
        return GpuStatus(torch_installed=False, memory_gb=None)
    from cmrlib.device import gpu_memory_gb

    return GpuStatus(torch_installed=True, memory_gb=gpu_memory_gb())


def device_warning(choice: DeviceChoice | str | None, status: GpuStatus,
                   min_memory_gb: float = MIN_GPU_MEMORY_GB) -> str:
    """The warning to show under the device choice, or "" when there is nothing to say."""
    choice = DeviceChoice.from_value(choice)
    if not status.torch_installed:
        return ("PyTorch is not installed: install the PyTorch extension and click 'Install PyTorch' "
                "in its PyTorch Utils module before running a model.")
    if choice is DeviceChoice.CPU:
        return ""
    if status.memory_gb is None:
        if choice is DeviceChoice.GPU:
            return "No CUDA GPU was found: models will run on the CPU instead (slower)."
        return "No CUDA GPU was found: models run on the CPU (slower)."
    if status.memory_gb < min_memory_gb:
        return (f"The GPU has {status.memory_gb:.1f} GB of memory (at least {min_memory_gb:g} GB recommended): "
                "large models may run out of memory and then fall back to the CPU.")
    return ""

"""The capabilities a study can be run through, and which of them are installed.

Each capability lives in its own module implementing the CLI plugin contract::

    add_arguments(parser: argparse.ArgumentParser) -> None   # its `cmr <command>` options
    run(args: argparse.Namespace) -> int                     # exit code
    run_on_study(scan, out_dir, progress) -> dict            # optional: step of `cmr run`

A capability is *available* when its module is importable. ``cmr run`` / ``cmr demo`` run
every available one that has ``run_on_study`` and name those not yet present.
"""
from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from types import ModuleType


@dataclass(frozen=True)
class Capability:
    command: str  # `cmr <command>`
    module: str  # plugin module path
    title: str  # one line for --help and reports
    panel: str  # Slicer module that shows it

    @property
    def available(self) -> bool:
        try:
            return importlib.util.find_spec(self.module) is not None
        except ModuleNotFoundError:  # parent package missing
            return False

    def load(self) -> ModuleType:
        return importlib.import_module(self.module)


CAPABILITIES: tuple[Capability, ...] = (
    Capability("phantom", "cmrlib.phantom.cli", "synthetic CMR phantom studies with exact ground truth", "CMRQuality"),
    Capability("motion", "cmrlib.motion.cli", "MOLLI/ShMOLLI T1 and R² maps, MOCOnet motion correction", "CMRMotion"),
    Capability("stress", "cmrlib.stress.cli", "stress-to-rest T1 registration and dT1 reactivity maps", "CMRStressT1"),
    Capability("segment", "cmrlib.segmentation.cli", "QCD ensemble myocardium segmentation with predicted Dice", "CMRSegmentation"),
    Capability("landmarks", "cmrlib.landmarks.cli", "RV insertion / LV centre landmarks and AHA segments", "CMRSegmentation"),
    Capability("scar", "cmrlib.scar.cli", "LGE-cine fusion scar quantification", "CMRSegmentation"),
    Capability("quality", "cmrlib.quality.cli", "LGE certainty, slice level and LA LGE quality", "CMRQuality"),
)


def capability(command: str) -> Capability:
    for cap in CAPABILITIES:
        if cap.command == command:
            return cap
    raise KeyError(command)


#: `cmr train NAME` / `cmr evaluate NAME`: model name -> module with add_arguments/run
#: (training) and add_eval_arguments/evaluate (held-out evaluation). Filled per capability.
TRAINERS: dict[str, str] = {
    "moconet": "cmrlib.motion.train",
    "dt1": "cmrlib.stress.train",
    "qcd": "cmrlib.segmentation.train",
    "landmarks": "cmrlib.landmarks.train",
    "scar-fusion": "cmrlib.scar.train",
    "lge-certainty": "cmrlib.quality.train_lge",
    "slice-level": "cmrlib.quality.train_slice_level",
    "la-quality": "cmrlib.quality.train_la",
}


def available_trainers() -> list[str]:
    out = []
    for name, module in TRAINERS.items():
        try:
            if importlib.util.find_spec(module) is not None:
                out.append(name)
        except ModuleNotFoundError:
            pass
    return out

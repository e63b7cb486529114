"""CMRSegmentation logic (Qt-free): the module's inputs in an MRML scene.

RV insertion / LV centre landmarks with AHA segments (method card docs/methods/landmarks.md) have
landed as results: ``CMRSegmentationLib/landmarks.py`` turns a `cmr landmarks` folder into markups
and a segment map (no live recompute yet). QCD myocardium segmentation and LGE-cine fusion scar
are planned, not in this version (``cmrlib.capabilities.PLANNED``; method cards
docs/methods/qcd.md, docs/methods/scar-fusion.md); for them the logic finds the inputs those
steps will take: cine sequences (TriggerTime per frame, ms), LGE volumes and T1 maps loaded by
the study loader.
"""
from __future__ import annotations

from typing import Any

from CMRCommonLib.module_logic import CMRModuleLogicBase


class SegmentationLogic(CMRModuleLogicBase):
    """CMRSegmentation logic on ``scene`` (``slicer.mrmlScene`` or ``cmrlib.mrml.new_scene()``)."""

    MODULE_NAME = "CMRSegmentation"
    USED_KINDS = ("cine", "lge_psir", "lge_magnitude", "t1map")

    def cine_sequences(self) -> list[Any]:
        """Cine sequence nodes loaded by the study loader, in scene order."""
        return self.loaded_sequences(["cine"])

    def lge_volumes(self) -> list[Any]:
        """LGE volume nodes (PSIR first, then magnitude) loaded by the study loader."""
        return self.loaded_volumes(["lge_psir", "lge_magnitude"])

"""CMRQuality logic (Qt-free): the module's inputs in an MRML scene.

CMRQuality's processing (LGE certainty, LV slice level, left-atrial LGE quality, labelling tools)
is planned, not in this version (``cmrlib.capabilities.PLANNED``; method cards
docs/methods/lge-certainty.md, docs/methods/slice-level.md, docs/methods/la-quality.md); for
now the logic finds the inputs those steps will take: LGE volumes (PSIR or magnitude) and cine
series loaded by the study loader.
"""
from __future__ import annotations

from typing import Any

from CMRCommonLib.module_logic import CMRModuleLogicBase


class QualityLogic(CMRModuleLogicBase):
    """CMRQuality logic on ``scene`` (``slicer.mrmlScene`` or ``cmrlib.mrml.new_scene()``)."""

    MODULE_NAME = "CMRQuality"
    USED_KINDS = ("lge_psir", "lge_magnitude", "cine")

    def lge_volumes(self) -> list[Any]:
        """LGE volume nodes (PSIR first, then magnitude) loaded by the study loader."""
        return self.loaded_volumes(["lge_psir", "lge_magnitude"])

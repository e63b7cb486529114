"""CMRQuality logic (Qt-free): the module's inputs in an MRML scene.

CMRQuality flags equivocal short-axis PSIR LGE slices (LGE certainty), classifies slices as
too basal / LV / too apical, and scores left-atrial 3D LGE quality (methods/lge-certainty.md,
slice-level.md, la-quality.md). Its inputs are LGE volumes (PSIR or magnitude) and cine
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

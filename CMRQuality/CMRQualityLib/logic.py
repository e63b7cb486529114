"""CMRQuality logic (Qt-free): the module's inputs in an MRML scene.

The LGE-certainty and LV slice-level processing (``cmr quality``; method cards
docs/methods/lge-certainty.md, docs/methods/slice-level.md) has its adapter, worker arguments
and scene watcher in :mod:`CMRQualityLib.quality`; this logic finds the inputs: LGE volumes (PSIR
or magnitude) and cine series loaded by the study loader. The labelling tools' adapter (a
`cmr label export` folder as a table) is :mod:`CMRQualityLib.labelling`; their panel section and
left-atrial LGE quality are planned (``cmrlib.capabilities.PLANNED``; method card
docs/methods/la-quality.md).
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

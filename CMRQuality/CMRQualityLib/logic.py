"""CMRQuality logic (Qt-free): the module's inputs in an MRML scene.

The LGE-certainty and LV slice-level processing (``cmr quality``; method cards
docs/methods/lge-certainty.md, docs/methods/slice-level.md) has its adapter, worker arguments
and scene watcher in :mod:`CMRQualityLib.quality`; left-atrial 3-D LGE quality (``cmr
la-quality``; docs/methods/la-quality.md) in :mod:`CMRQualityLib.laquality`; the labelling
tools' session and export adapter in :mod:`CMRQualityLib.labelling`. This logic finds the inputs:
LGE volumes (PSIR or magnitude), LA 3-D LGE volumes and cine series loaded by the study loader.
"""
from __future__ import annotations

from typing import Any

from CMRCommonLib.module_logic import CMRModuleLogicBase


class QualityLogic(CMRModuleLogicBase):
    """CMRQuality logic on ``scene`` (``slicer.mrmlScene`` or ``cmrlib.mrml.new_scene()``)."""

    MODULE_NAME = "CMRQuality"
    USED_KINDS = ("lge_psir", "lge_magnitude", "la_lge", "cine")

    def lge_volumes(self) -> list[Any]:
        """LGE volume nodes (PSIR first, then magnitude) loaded by the study loader."""
        return self.loaded_volumes(["lge_psir", "lge_magnitude"])

    def la_volumes(self) -> list[Any]:
        """Left-atrial 3-D LGE volume nodes loaded by the study loader."""
        return self.loaded_volumes(["la_lge"])

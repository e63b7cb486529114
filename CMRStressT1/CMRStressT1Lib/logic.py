"""CMRStressT1 logic (Qt-free): the module's inputs in an MRML scene.

CMRStressT1's processing (stress-to-rest T1 registration, dT1 reactivity maps) is planned, not in
this version (``cmrlib.capabilities.PLANNED``; method card docs/methods/dt1.md); for now the logic finds the inputs it will take:
T1 maps (scanner maps, or maps fitted by CMRMotion from IRW series) loaded by the study loader.
"""
from __future__ import annotations

from typing import Any

from CMRCommonLib.module_logic import CMRModuleLogicBase


class StressT1Logic(CMRModuleLogicBase):
    """CMRStressT1 logic on ``scene`` (``slicer.mrmlScene`` or ``cmrlib.mrml.new_scene()``)."""

    MODULE_NAME = "CMRStressT1"
    USED_KINDS = ("t1map", "irw")

    def t1_map_volumes(self) -> list[Any]:
        """T1 map volume nodes loaded by the study loader, in scene order."""
        return self.loaded_volumes(["t1map"])

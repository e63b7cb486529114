"""CMRStressT1 logic (Qt-free): the module's inputs in an MRML scene and its results as nodes.

Stress T1 reactivity (method card docs/methods/dt1.md) runs from the panel: the rest and the
stress T1 map (scanner maps or maps fitted by CMRMotion, loaded by the study loader, or any
scalar volume in ms), the rest map's myocardium (a label map, or a segmentation such as the QCD
result), optionally the stress map's myocardium and an AHA segment map (the Landmarks result)
are written as NRRD, a `cmr stress` worker registers the stress map to the rest map (Swin-U-Net
or U-Net VoxelMorph, classical SimpleITK, or none) and computes dT1 = (stress − rest) / rest ×
100 %, and ``CMRStressT1Lib/stress.py`` turns its folder into the registered map, the dT1 map
over the grey rest map (diverging colours, myocardium only, with a legend), the per-slice and
per-segment tables and the bull's-eye.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from CMRCommonLib.module_logic import CMRModuleLogicBase


class StressT1Logic(CMRModuleLogicBase):
    """CMRStressT1 logic on ``scene`` (``slicer.mrmlScene`` or ``cmrlib.mrml.new_scene()``)."""

    MODULE_NAME = "CMRStressT1"
    USED_KINDS = ("t1map", "irw")

    def t1_map_volumes(self) -> list[Any]:
        """T1 map volume nodes loaded by the study loader, in scene order."""
        return self.loaded_volumes(["t1map"])

    # ---- stress T1 reactivity -------------------------------------------------------------
    @staticmethod
    def default_method() -> str:
        """swin when its weights are installed, else classical (as `cmr stress` without --method)."""
        from .stress import default_method

        return default_method()

    @staticmethod
    def stress_arguments(rest: Any, stress: Any, rest_mask: Any, folder: str | Path, out_dir: str | Path, *,
                         stress_mask: Any = None, segments: Any = None, method: str | None = None,
                         reverse: bool = False, force: bool = False) -> list[str]:
        """Write the selected nodes into ``folder`` as NRRD and return the `cmr stress`
        arguments for the worker (see :func:`CMRStressT1Lib.stress.stress_arguments`)."""
        from .stress import stress_arguments

        return stress_arguments(rest, stress, rest_mask, folder, out_dir, stress_mask=stress_mask,
                                segments=segments, method=method, reverse=reverse, force=force)

    def load_stress_results(self, out_dir: str | Path, name: str = "", rest: Any = None) -> Any:
        """Load a `cmr stress` output folder into the scene: the capability's reader, then
        :func:`CMRStressT1Lib.stress.outputs_to_nodes` (with ``rest``, the rest map's node: the
        dT1 map over it in the slice views); the bull's-eye PNG when there is one."""
        from cmrlib.capabilities import capability
        from cmrlib.contract import resolve
        from cmrlib.stress.outputs import BULLSEYE

        from .stress import outputs_to_nodes

        out_dir = Path(out_dir)
        read_result = resolve(capability("stress").reader)
        outputs = outputs_to_nodes(self.scene, read_result(out_dir), name, rest=rest)
        if (out_dir / BULLSEYE).is_file():
            outputs.bullseye = out_dir / BULLSEYE
        return outputs

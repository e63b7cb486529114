"""CMRMotion logic (Qt-free): the module's inputs in an MRML scene.

CMRMotion fits MOLLI/ShMOLLI T1 and R² maps and motion-corrects the inversion-recovery-
weighted (IRW) images (methods/moconet.md). Its input is an IRW series loaded by the study
loader as a sequence whose frames are ordered by InversionTime (ms); scanner T1 maps are
loaded for comparison.
"""
from __future__ import annotations

from typing import Any

from cmrlib.errors import InputError

from CMRCommonLib.module_logic import CMRModuleLogicBase
from CMRCommonLib.study_loader import series_kind_of


class MotionLogic(CMRModuleLogicBase):
    """CMRMotion logic on ``scene`` (``slicer.mrmlScene`` or ``cmrlib.mrml.new_scene()``)."""

    MODULE_NAME = "CMRMotion"
    USED_KINDS = ("irw", "t1map")

    def irw_sequences(self) -> list[Any]:
        """IRW sequence nodes loaded by the study loader, in scene order."""
        return self.loaded_sequences(["irw"])

    def inversion_times_ms(self, sequence_node: Any) -> list[float]:
        """InversionTime (ms) of each frame of a loaded IRW sequence, in frame order.

        Raises :class:`cmrlib.errors.InputError` when the node is not an IRW sequence or a
        frame has no InversionTime.
        """
        from cmrlib.mrml import image_from_sequence_node

        if sequence_node is None or not sequence_node.IsA("vtkMRMLSequenceNode"):
            found = "nothing" if sequence_node is None else sequence_node.GetClassName()
            raise InputError(f"expected an IRW sequence node; got {found}")
        kind = series_kind_of(sequence_node)
        if kind != "irw":
            raise InputError(f"expected an IRW (MOLLI/ShMOLLI) sequence; '{sequence_node.GetName()}' "
                             f"is {kind or 'not a series loaded by the CMR study loader'}")
        times = image_from_sequence_node(sequence_node).frame_values("InversionTime")
        missing = [k for k, t in enumerate(times) if t is None]
        if missing:
            raise InputError(f"'{sequence_node.GetName()}' has no InversionTime for frame(s) {missing}")
        return [float(t) for t in times]

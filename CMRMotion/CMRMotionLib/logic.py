"""CMRMotion logic (Qt-free): the module's inputs in an MRML scene.

CMRMotion fits MOLLI/ShMOLLI T1 and R² maps and motion-corrects the inversion-recovery-
weighted (IRW) images (methods/moconet.md). Its input is an IRW series loaded by the study
loader as a sequence whose frames are ordered by InversionTime (ms); scanner T1 maps are
loaded for comparison.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cmrlib.errors import InputError

from CMRCommonLib.module_logic import CMRModuleLogicBase
from CMRCommonLib.study_loader import series_kind_of


class MotionLogic(CMRModuleLogicBase):
    """CMRMotion logic on ``scene`` (``slicer.mrmlScene`` or ``cmrlib.mrml.new_scene()``)."""

    MODULE_NAME = "CMRMotion"
    USED_KINDS = ("irw", "t1map")
    PANEL_COMMANDS = ("motion",)

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

    # ---- motion correction and T1 / R² mapping -------------------------------------------
    def export_irw(self, sequence_node: Any, folder: str | Path) -> Path:
        """Write the IRW sequence (frames + InversionTime per frame) as ``folder/irw.nrrd`` for the worker."""
        from cmrlib.io import write_image
        from cmrlib.mrml import image_from_sequence_node

        self.inversion_times_ms(sequence_node)  # clear error for a wrong node, before any file
        image = image_from_sequence_node(sequence_node)
        image.meta.setdefault("SeriesDescription", sequence_node.GetName())
        return write_image(image, Path(folder) / "irw.nrrd")

    @staticmethod
    def motion_arguments(input_path: str | Path, out_dir: str | Path, method: str) -> list[str]:
        """`cmr motion` arguments for the worker process (progress as CMR-PROGRESS lines)."""
        from cmrlib.motion import METHODS

        if method not in METHODS:
            raise InputError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
        return ["motion", str(input_path), "--out", str(out_dir), "--method", method, "--progress-lines"]

    def load_results(self, out_dir: str | Path, name: str) -> "MotionOutputs":
        """Load a `cmr motion` output folder into the scene: T1 map (ms, rainbow, 0–2000 ms),
        R² map (and R² before correction), corrected frames as a browsable sequence, DVFs as a
        grid-transform sequence; the summary from ``result.json``."""
        import json

        import SimpleITK as sitk

        from cmrlib.io import read_image
        from cmrlib.mrml import (grid_transform_sequence_from_displacements, sequence_node_from_image,
                                 volume_node_from_image)

        out = Path(out_dir)
        summary = json.loads((out / "result.json").read_text())
        t1 = volume_node_from_image(self.scene, read_image(out / "t1_map.nrrd"), f"{name} T1 map")
        _set_display(t1, "vtkMRMLColorTableNodeRainbow", 0.0, 2000.0)
        r2 = volume_node_from_image(self.scene, read_image(out / "r2_map.nrrd"), f"{name} R2 map")
        _set_display(r2, "vtkMRMLColorTableNodeGrey", 0.8, 1.0)
        r2_before = None
        if (out / "r2_map_before.nrrd").is_file():
            r2_before = volume_node_from_image(self.scene, read_image(out / "r2_map_before.nrrd"),
                                               f"{name} R2 map before correction")
            _set_display(r2_before, "vtkMRMLColorTableNodeGrey", 0.8, 1.0)
        corrected_image = read_image(out / "corrected.nrrd")
        corrected = sequence_node_from_image(self.scene, corrected_image, f"{name} corrected ({summary['method']})")
        field = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "dvf.nrrd")))  # [frame, slice, row, col, 3]
        grid = corrected_image.frame(0)
        dvf = grid_transform_sequence_from_displacements(self.scene, field, grid, f"{name} DVF ({summary['method']})",
                                                         list(summary["inversion_times_ms"]))
        return MotionOutputs(t1, r2, r2_before, corrected, dvf, summary)


def _set_display(node: Any, color_node_id: str, low: float, high: float) -> None:
    """Colour map and fixed window (e.g. T1 0–2000 ms) for a map volume."""
    if node.GetDisplayNode() is None:
        node.CreateDefaultDisplayNodes()
    display = node.GetDisplayNode()
    if node.GetScene() is not None and node.GetScene().GetNodeByID(color_node_id) is not None:
        display.SetAndObserveColorNodeID(color_node_id)
    display.AutoWindowLevelOff()
    display.SetWindowLevelMinMax(low, high)


@dataclass
class MotionOutputs:
    """Nodes made from one `cmr motion` result."""

    t1: Any
    r2: Any
    r2_before: Any
    corrected: Any
    dvf: Any
    summary: dict

    def summary_text(self) -> str:
        s = self.summary
        parts = [f"{s['method']}: {s['n_frames']} frames, {s['seconds']:.2f} s"]
        if s.get("t1_myocardium_ms") is not None:
            parts.append(f"myocardial T1 {s['t1_myocardium_ms']:.0f} ms, mean R² {s['r2_myocardium_mean']:.3f}")
        return "; ".join(parts) + "".join(f"\n{n}" for n in s.get("notes", []))

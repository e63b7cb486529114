"""CMRMotion logic (Qt-free): the module's inputs in an MRML scene and its results as nodes.

CMRMotion fits MOLLI/ShMOLLI T1 and R² maps and motion-corrects the inversion-recovery-
weighted (IRW) images (MOCOnet, classical registration, or none; method card
docs/methods/moconet.md; ShMOLLI's conditional reconstruction and the phantom's sequence
simulation: docs/methods/t1-sequence-simulation.md). Its input is an IRW series
loaded by the study loader as a sequence whose frames are ordered by InversionTime (ms);
scanner T1 maps are loaded for comparison. The work runs in a `cmr motion` worker process;
its output folder is read back through the capability contract: the record's ``reader``
(``cmrlib.motion.outputs:read_result``, folder -> dict) and its ``adapter``
(:func:`outputs_to_nodes` here, dict -> MRML nodes).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

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
        """`cmr motion` arguments for the worker process (progress as CMR-PROGRESS lines); the
        panel adds the device (``CMRCommonLib.runner.worker_command``)."""
        from cmrlib.motion import METHODS

        if method not in METHODS:
            raise InputError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
        return ["motion", str(input_path), "--out", str(out_dir), "--method", method, "--progress-lines"]

    def load_results(self, out_dir: str | Path, name: str) -> "MotionOutputs":
        """Load a `cmr motion` output folder into the scene: the capability's reader, then
        :func:`outputs_to_nodes`."""
        from cmrlib.capabilities import capability
        from cmrlib.contract import resolve

        read_result = resolve(capability("motion").reader)
        return outputs_to_nodes(self.scene, read_result(Path(out_dir)), name)


#: Keys of the reader's dict that the adapter needs (``r2_before`` may be None).
RESULT_KEYS = ("t1", "r2", "r2_before", "corrected", "dvf", "dvf_grid", "summary")


def outputs_to_nodes(scene: Any, outputs: Mapping[str, Any], name: str = "") -> "MotionOutputs":
    """The CMRMotion adapter (``Capability.adapter``): MRML nodes from the dict that
    ``cmrlib.motion.outputs.read_result`` returns.

    ``outputs``: ``t1``, ``r2``, ``r2_before`` (:class:`cmrlib.Image`, ``r2_before`` None when
    there was no correction), ``corrected`` (Image sequence, InversionTime per frame), ``dvf``
    (array ``[frame, slice, row, col, 3]``, LPS mm) on the grid of the Image ``dvf_grid``, and
    ``summary`` (result.json). Makes the T1 map (ms, rainbow, in the window of the report's
    figure: 0–2000 ms native, 0–1000 ms post-contrast), the R² maps (grey, 0.8–1), the corrected frames as a browsable sequence and the DVFs as a grid-transform
    sequence; node names start with ``name`` (default: the summary's series, else "IRW").
    """
    from cmrlib.motion.outputs import R2_WINDOW, t1_window_ms
    from cmrlib.mrml import grid_transform_sequence_from_displacements, sequence_node_from_image, volume_node_from_image

    missing = [k for k in RESULT_KEYS if k not in outputs or (outputs[k] is None and k != "r2_before")]
    if missing:
        raise InputError(f"the `cmr motion` result lacks {', '.join(missing)}")
    summary = dict(outputs["summary"])
    name = name or str(summary.get("series") or "IRW")
    method = summary.get("method", "unknown method")
    t1 = volume_node_from_image(scene, outputs["t1"], f"{name} T1 map")
    _set_display(t1, "vtkMRMLColorTableNodeRainbow", *t1_window_ms(outputs["t1"].array,
                                                                   myocardium_ms=summary.get("t1_myocardium_ms")))
    r2 = volume_node_from_image(scene, outputs["r2"], f"{name} R2 map")
    _set_display(r2, "vtkMRMLColorTableNodeGrey", *R2_WINDOW)
    r2_before = None
    if outputs["r2_before"] is not None:
        r2_before = volume_node_from_image(scene, outputs["r2_before"], f"{name} R2 map before correction")
        _set_display(r2_before, "vtkMRMLColorTableNodeGrey", *R2_WINDOW)
    corrected = sequence_node_from_image(scene, outputs["corrected"], f"{name} corrected ({method})")
    times = summary.get("inversion_times_ms") or outputs["corrected"].frame_values("InversionTime")
    dvf = grid_transform_sequence_from_displacements(scene, outputs["dvf"], outputs["dvf_grid"],
                                                     f"{name} DVF ({method})", [float(t) for t in times])
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

    def nodes(self) -> dict[str, Any]:
        """The nodes by output name (``r2_before`` only when there is one)."""
        names = ("t1", "r2", "r2_before", "corrected", "dvf")
        return {k: getattr(self, k) for k in names if getattr(self, k) is not None}

    def summary_text(self) -> str:
        s = self.summary
        parts = [f"{s['method']}: {s['n_frames']} frames, {s['seconds']:.2f} s"]
        if s.get("t1_myocardium_ms") is not None:
            parts.append(f"myocardial T1 {s['t1_myocardium_ms']:.0f} ms, mean R² {s['r2_myocardium_mean']:.3f}")
        if s.get("heart_rate_bpm"):
            parts.append(f"heart rate {s['heart_rate_bpm']:.0f} bpm ({s.get('rr_source', '')})")
        for m in s.get("scanner_t1_maps", []):
            if m.get("median_difference_ms") is not None:
                parts.append(f"vs scanner map {m['series']!r}: median {m['median_difference_ms']:+.0f} ms")
        parts.extend(f"warning: {w}" for w in s.get("warnings", []))
        return "; ".join(parts) + "".join(f"\n{n}" for n in s.get("notes", []))

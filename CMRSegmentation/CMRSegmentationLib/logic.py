"""CMRSegmentation logic (Qt-free): the module's inputs in an MRML scene and its results as nodes.

QCD myocardium / blood-pool segmentation with a predicted Dice and QC per slice (method card
docs/methods/qcd.md) runs from the panel: the input volume (or a sequence's shown frame) is
written as NRRD, a `cmr segment` worker segments it, and ``CMRSegmentationLib/qcd.py`` turns the
output folder into a segmentation node and a per-slice QC table; an edited segmentation goes back
out as a training pair for `cmr train qcd --data`. RV insertion / LV centre landmarks with AHA
segments (method card docs/methods/landmarks.md) have landed as results:
``CMRSegmentationLib/landmarks.py`` turns a `cmr landmarks` folder into markups and a segment map
(no live recompute yet). LGE-cine fusion scar is planned, not in this version
(``cmrlib.capabilities.PLANNED``; method card docs/methods/scar-fusion.md); for it the logic
finds the cine sequences (TriggerTime per frame, ms) loaded by the study loader.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from cmrlib.errors import InputError

from CMRCommonLib.module_logic import CMRModuleLogicBase

#: File name of the QCD worker's input (written by :meth:`SegmentationLogic.export_qcd_input`).
QCD_INPUT = "qcd_input.nrrd"


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

    def qcd_inputs(self) -> list[Any]:
        """Volumes QCD segments, loaded by the study loader: LGE (PSIR, magnitude), then T1 maps."""
        return self.loaded_volumes(["lge_psir", "lge_magnitude", "t1map"])

    # ---- QCD segmentation ----------------------------------------------------------------
    @staticmethod
    def export_qcd_input(node: Any, folder: str | Path, frame: int | None = None) -> Path:
        """Write the QCD input (a scalar volume, or a sequence's frame ``frame``, default the one
        shown) as ``folder/qcd_input.nrrd`` for the worker."""
        from cmrlib.io import write_image

        from .qcd import input_image

        image = input_image(node, frame)  # clear error for a wrong node, before any file
        return write_image(image, Path(folder) / QCD_INPUT)

    @staticmethod
    def segment_arguments(input_path: str | Path, out_dir: str | Path, threshold: float | None = None) -> list[str]:
        """`cmr segment` arguments for the worker process (progress as CMR-PROGRESS lines); the
        panel adds the device (``CMRCommonLib.runner.worker_command``)."""
        args = ["segment", str(input_path), "--out", str(out_dir)]
        if threshold is not None:
            if not 0.0 < float(threshold) < 1.0:
                raise InputError(f"the QC threshold must lie between 0 and 1; got {threshold}")
            args += ["--threshold", f"{float(threshold):g}"]
        return args + ["--progress-lines"]

    def load_qcd_results(self, out_dir: str | Path, name: str = "", volume: Any = None) -> Any:
        """Load a `cmr segment` output folder into the scene: the capability's reader, then
        :func:`CMRSegmentationLib.qcd.outputs_to_nodes` (``volume``: the input's volume node,
        the segmentation's reference geometry)."""
        from cmrlib.capabilities import capability
        from cmrlib.contract import resolve

        from .qcd import outputs_to_nodes

        read_result = resolve(capability("segment").reader)
        return outputs_to_nodes(self.scene, read_result(Path(out_dir)), name, volume=volume)

    @staticmethod
    def export_training_pair(volume_node: Any, segmentation_node: Any, folder: str | Path, name: str = "",
                             frame: int | None = None) -> tuple[Path, Path]:
        """The image and the (edited) segmentation as ``NAME.nrrd`` + ``NAME.labels.nrrd`` for
        `cmr train qcd --data` (see :func:`CMRSegmentationLib.qcd.export_training_pair`)."""
        from .qcd import export_training_pair

        return export_training_pair(volume_node, segmentation_node, folder, name, frame=frame)

    def jump_to_slice(self, outputs: Any, index: int, volume: Any = None) -> Any:
        """Centre the scene's slice views on slice ``index`` (0-based) of a QCD result, in the
        planes of ``volume`` when given; returns the RAS point."""
        from .qcd import jump_slices_to

        ras, _ = outputs.slice_position(index)
        jump_slices_to(self.scene, ras, volume)
        return ras

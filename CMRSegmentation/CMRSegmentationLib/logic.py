"""CMRSegmentation logic (Qt-free): the module's inputs in an MRML scene and its results as nodes.

QCD myocardium / blood-pool segmentation with a predicted Dice and QC per slice (method card
docs/methods/qcd.md) runs from the panel: the input volume (or a sequence's shown frame) is
written as NRRD, a `cmr segment` worker segments it, and ``CMRSegmentationLib/qcd.py`` turns the
output folder into a segmentation node and a per-slice QC table; an edited segmentation goes back
out as a training pair for `cmr train qcd --data`. RV insertion / LV centre landmarks with AHA
segments (method card docs/methods/landmarks.md) run from the panel too: the input volume and
its myocardium mask (a label map, or a segmentation such as the QCD result) are written as NRRD,
a `cmr landmarks` worker places the points, ``CMRSegmentationLib/landmarks.py`` turns its folder
into one editable point list per slice, and ``CMRSegmentationLib/landmarks_live.py`` recomputes
the AHA segment map, the per-segment statistics and the bull's-eye whenever a point moves.
LGE scar quantification (method card docs/methods/scar-fusion.md) runs from the panel too: the
LGE stack, the cine of the same study (a sequence with TriggerTime per frame, found by
:meth:`SegmentationLogic.cine_sequences`), the optional myocardium mask, AHA segments and LV-centre
point lists are written into a work folder, a `cmr scar` worker quantifies %scar and the
myocardial and scar volumes (fusion or LGE-only U-Net, n-SD, FWHM), and
``CMRSegmentationLib/scar.py`` turns its folder into the myocardium / scar segmentation over the
LGE, the matched cine, the per-slice and per-method tables, the AHA segments, the bull's-eye and
the LV centres it used (movable, and passed back on the next run).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from cmrlib.errors import InputError

from CMRCommonLib.module_logic import CMRModuleLogicBase

#: File name of the QCD worker's input (written by :meth:`SegmentationLogic.export_qcd_input`).
QCD_INPUT = "qcd_input.nrrd"
#: File names of the landmarks worker's image and mask (:meth:`SegmentationLogic.export_landmarks_input`).
LANDMARKS_INPUT, LANDMARKS_MASK = "landmarks_input.nrrd", "landmarks_mask.nrrd"


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

    # ---- landmarks and live AHA segments ------------------------------------------------------
    @staticmethod
    def export_landmarks_input(node: Any, mask: Any, folder: str | Path,
                               frame: int | None = None) -> tuple[Path, Path | None]:
        """Write the landmarks input (a scalar volume, or a sequence's frame ``frame``, default
        the one shown) as ``folder/landmarks_input.nrrd`` and, when ``mask`` (label map or
        segmentation) is given, its labels on the image grid as ``folder/landmarks_mask.nrrd``
        (1 myocardium, 2 blood pool, 3 scar); returns (image path, mask path or None)."""
        from cmrlib.image import Image
        from cmrlib.io import write_image

        from .landmarks_live import mask_labels
        from .qcd import input_image

        image = input_image(node, frame)  # clear errors for wrong nodes, before any file
        labels = mask_labels(mask, image) if mask is not None else None
        folder = Path(folder)
        image_path = write_image(image, folder / LANDMARKS_INPUT)
        if labels is None:
            return image_path, None
        label_image = Image(labels, image.spacing, image.origin, image.direction, False,
                            {"labels": {"1": "myocardium", "2": "blood pool", "3": "scar"},
                             "SeriesDescription": f"{image.meta.get('SeriesDescription', 'image')} mask"})
        return image_path, write_image(label_image, folder / LANDMARKS_MASK)

    @staticmethod
    def landmarks_arguments(input_path: str | Path, out_dir: str | Path, mask_path: str | Path | None = None,
                            level: str | None = None) -> list[str]:
        """`cmr landmarks` arguments for the worker process (progress as CMR-PROGRESS lines);
        ``level``: the AHA level of every slice (None: thirds of the stack)."""
        from cmrlib.aha import LEVELS

        args = ["landmarks", str(input_path), "--out", str(out_dir)]
        if mask_path is not None:
            args += ["--mask", str(mask_path)]
        if level is not None:
            if level not in LEVELS:
                raise InputError(f"unknown AHA level {level!r}; expected one of {', '.join(LEVELS)}")
            args += ["--level", level]
        return args + ["--progress-lines"]

    def load_landmarks_results(self, out_dir: str | Path, name: str = "") -> Any:
        """Load a `cmr landmarks` output folder (one series) into the scene: the capability's
        reader, then :func:`CMRSegmentationLib.landmarks.outputs_to_nodes`."""
        from cmrlib.capabilities import capability
        from cmrlib.contract import resolve

        from .landmarks import outputs_to_nodes

        read_result = resolve(capability("landmarks").reader)
        return outputs_to_nodes(self.scene, read_result(Path(out_dir)), name)

    # ---- scar quantification ----------------------------------------------------------------------
    @staticmethod
    def scar_arguments(lge: Any, folder: str | Path, out_dir: str | Path, *, cine: Any = None,
                       method: str | None = None, mask: Any = None, segments: Any = None, lge_centres: Any = None,
                       cine_centres: Any = None, force: bool = False) -> list[str]:
        """Write the selected nodes into ``folder`` (NRRD, the LV centres as JSON) and return the
        `cmr scar` arguments for the worker (see :func:`CMRSegmentationLib.scar.scar_arguments`)."""
        from .scar import scar_arguments

        return scar_arguments(lge, folder, out_dir, cine=cine, method=method, mask=mask, segments=segments,
                              lge_centres=lge_centres, cine_centres=cine_centres, force=force)

    def load_scar_results(self, out_dir: str | Path, name: str = "", lge: Any = None, cine: Any = None) -> Any:
        """Load a `cmr scar` output folder into the scene: the capability's reader, then
        :func:`CMRSegmentationLib.scar.outputs_to_nodes` (with ``lge``, the LGE's volume node: the
        result in the slice views; with ``cine``, its sequence node: the cine LV centres as
        points); the bull's-eye PNG when there is one."""
        from cmrlib.capabilities import capability
        from cmrlib.contract import resolve
        from cmrlib.scar.outputs import BULLSEYE

        from .scar import outputs_to_nodes

        out_dir = Path(out_dir)
        read_result = resolve(capability("scar").reader)
        outputs = outputs_to_nodes(self.scene, read_result(out_dir), name, lge=lge, cine=cine)
        if (out_dir / BULLSEYE).is_file():
            outputs.bullseye = out_dir / BULLSEYE
        return outputs

    def live_segments(self, volume: Any, mask: Any, outputs: Any, *, level: str | None = None,
                      bullseye_path: str | Path | None = None, frame: int | None = None) -> Any:
        """A :class:`CMRSegmentationLib.landmarks_live.LiveSegments` on the point lists of a
        loaded result (``outputs``), updating its AHA segment map node in place."""
        from .landmarks_live import LiveSegments

        name = outputs.segments.GetName().removesuffix(" AHA segments") if outputs.segments is not None else ""
        return LiveSegments(self.scene, volume, mask, outputs.points, level=level, name=name,
                            segments_node=outputs.segments, bullseye_path=bullseye_path, frame=frame)

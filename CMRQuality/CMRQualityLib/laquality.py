"""CMRQuality's left-atrial 3-D LGE quality adapter (Qt-free): an axial LA LGE volume node →
`cmr la-quality` worker arguments → the LA mask, the saliency overlay and the attribute table.

* :func:`check_la_node` / :func:`la_image`: the input checks the CLI makes, before any file is
  written: the series kind the study loader stored on the node (``CMR.kind``) through
  :func:`cmrlib.laquality.pipeline.check_series_kind` — a short-axis LGE, cine, T1 map, IRW, VNE,
  fit map or colour display is refused in one line naming the kind — and the volume's shape and
  spacing through :func:`cmrlib.laquality.preprocess.check_volume` (a 2-D image, fewer than 8
  slices, a multi-slice stack with slices ≥ 5 mm apart or a volume too small for an atrium).
* :func:`la_arguments`: the volume written into the work folder as NRRD (its series metadata
  in the header, so the worker checks the same kind) and the `cmr la-quality` arguments
  (``cmrlib/laquality/cli.py``); the threshold t of the LA detector is the detector's calibrated
  value unless given (:func:`default_la_threshold`).
* :func:`outputs_to_nodes` (the record's ``adapter``): the dict that
  ``cmrlib.laquality.outputs.read_result`` returns becomes the segmentation "<name> LA mask"
  (``la_mask.nrrd``, one segment), the scalar volume "<name> saliency" (``saliency.nrrd``,
  HiResCAM 0–1, a rainbow colour table and a threshold that leaves voxels without saliency
  transparent, for the slice views' foreground) and the table node "<name> LA quality", one row
  per label (attribute, p(diagnostic), decision, slices voting diagnostic: ``attribute_rows``);
  :class:`LAQualityOutputs` keeps the summary (the scan's verdict sentence; ``diagnostic`` None
  when no LA was found) and the saliency figure for the panel.
* :func:`show_la_result`: the input as background, the saliency as foreground, the views
  centred on the slice of ``saliency.png``.

Method card: docs/methods/la-quality.md.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from cmrlib.errors import InputError

#: The worker's input in the work folder, and the worker's output folder in it.
LA_INPUTS, LA_INPUT, LA_OUT = "inputs", "la_lge.nrrd", "out"
#: Columns of the attribute table node (and of the panel's table), in order.
TABLE_COLUMNS = ("attribute", "p(diagnostic)", "decision", "slices voting diagnostic")
DIAGNOSTIC, NON_DIAGNOSTIC, NO_SCORE = "diagnostic", "non-diagnostic", "no score"
#: Row colours of the panel's table (as the montage labels the slices' votes).
COLOURS = {DIAGNOSTIC: "#2f9e44", NON_DIAGNOSTIC: "#e03131"}
#: The LA mask's one segment (green, as the LA contour of saliency.png).
LA_SEGMENT = "LA blood pool"
LA_LABEL_TABLE = {1: (LA_SEGMENT, (0.25, 0.75, 0.34))}
#: Colour tables of the saliency overlay, the first the scene has (Slicer's cold-to-hot rainbow;
#: slicer-core has only the plain rainbow).
SALIENCY_COLOURS = ("vtkMRMLColorTableNodeFileColdToHotRainbow.txt", "vtkMRMLColorTableNodeRainbow")
#: Saliency below this is transparent in the overlay (as in saliency.png).
SALIENCY_FLOOR = 0.05
#: Opacity of the saliency foreground in the slice views.
SALIENCY_OPACITY = 0.5
#: The panel's range of the detector threshold t (the CLI takes 0 < t < 1).
THRESHOLD_RANGE = (0.01, 0.99)
#: Used by `cmr la-quality` when the detector carries no calibrated threshold.
FALLBACK_THRESHOLD = 0.5
#: The CLI's hint in check_series_kind's refusal; the panel has no --force.
_CLI_FORCE_HINT = "; --force assesses it anyway"


# ---- the input ---------------------------------------------------------------------------------
def _checked_image(node: Any, force: bool = False) -> tuple[Any, list[str]]:
    from cmrlib.laquality.pipeline import check_series_kind
    from cmrlib.laquality.preprocess import check_volume
    from cmrlib.mrml import image_from_volume_node

    from .quality import series_description, series_kind

    if node is None:
        raise InputError("choose the left-atrial 3-D LGE volume (an axial 3-D LGE loaded by the study loader)")
    if not node.IsA("vtkMRMLScalarVolumeNode") or node.IsA("vtkMRMLLabelMapVolumeNode"):
        raise InputError(f"'{node.GetName()}' is a {node.GetClassName()}; the LA 3-D LGE must be a scalar volume")
    description = series_description(node)
    try:
        notes = check_series_kind(series_kind(node), "", description, force)
    except InputError as exc:
        raise InputError(str(exc).removesuffix(_CLI_FORCE_HINT)) from None
    if node.GetImageData() is None:
        raise InputError(f"'{node.GetName()}' has no image data")
    image = image_from_volume_node(node)
    check_volume(image, repr(description))
    image.meta.setdefault("SeriesDescription", node.GetName())
    return image, notes


def check_la_node(node: Any, force: bool = False) -> list[str]:
    """Notes on the input ``node`` (e.g. "not recognised as LA 3-D LGE"); InputError, in one line,
    for no node, a node that is no scalar volume, a volume the study loader classified as
    short-axis LGE, cine, T1 map, IRW, VNE, a fit map or a colour display (naming the kind;
    unless ``force``), and for what is no axial 3-D volume (a 2-D image, fewer than 8 slices,
    slices ≥ 5 mm apart, too small to hold an atrium)."""
    return _checked_image(node, force)[1]


def la_image(node: Any, force: bool = False) -> Any:
    """The :class:`cmrlib.Image` of the LA LGE volume node, checked (:func:`check_la_node`); its
    description defaults to the node name."""
    return _checked_image(node, force)[0]


def default_la_threshold() -> tuple[float, str]:
    """(threshold t, where from) that `cmr la-quality` uses without ``--threshold``: the installed
    LA detector's calibrated slice threshold, else 0.5."""
    from cmrlib.laquality.pipeline import DETECTOR_MODEL

    from .quality import calibrated_threshold
    return calibrated_threshold(DETECTOR_MODEL, "slice_threshold")


def check_la_threshold(threshold: float | None) -> float | None:
    """``threshold`` as a float (None: the detector's calibrated one); InputError outside
    :data:`THRESHOLD_RANGE`."""
    if threshold is None:
        return None
    value = float(threshold)
    lo, hi = THRESHOLD_RANGE
    if not lo - 1e-9 <= value <= hi + 1e-9:
        raise InputError(f"the LA detector threshold t is a probability from {lo:g} to {hi:g} (or the detector's "
                         f"calibrated value); got {value:g}")
    return value


def la_arguments(node: Any, work_folder: str | Path, threshold: float | None = None,
                 saliency_slice: int | None = None, *, out_dir: str | Path | None = None,
                 force: bool = False) -> list[str]:
    """Write the LA LGE volume node ``node`` as ``work_folder/inputs/la_lge.nrrd`` and return the
    `cmr la-quality` arguments (progress as CMR-PROGRESS lines; the panel adds the device,
    ``CMRCommonLib.runner.worker_command``). The worker writes into ``out_dir`` (default
    ``work_folder/out``), which must lie outside the inputs folder.

    ``threshold``: t, a slice contains LA when any pixel's probability exceeds it (None: the
    detector's calibrated value); ``saliency_slice``: the slice (from 1) of saliency.png (None:
    the used slice with the largest atrium); ``force``: assess a volume of another kind anyway.
    Raises InputError, writing nothing, for a missing or wrong node, a non-LA kind, what is no
    3-D volume, a threshold outside 0.01–0.99, a slice number below 1 or ``out_dir`` inside the
    inputs folder.
    """
    from cmrlib.atomic import check_output_folder
    from cmrlib.io import write_image

    value = check_la_threshold(threshold)
    if saliency_slice is not None and (isinstance(saliency_slice, bool) or int(saliency_slice) != saliency_slice
                                       or int(saliency_slice) < 1):
        raise InputError(f"the saliency slice is a slice number from 1; got {saliency_slice!r}")
    inputs = Path(work_folder) / LA_INPUTS
    out = Path(out_dir) if out_dir is not None else Path(work_folder) / LA_OUT
    check_output_folder(inputs, out)  # `cmr la-quality` refuses an output inside its input's folder
    image = la_image(node, force)
    args = ["la-quality", str(write_image(image, inputs / LA_INPUT)), "--out", str(out)]
    if value is not None:
        args += ["--threshold", f"{value:g}"]
    if saliency_slice is not None:
        args += ["--saliency-slice", str(int(saliency_slice))]
    if force:
        args.append("--force")
    return args + ["--progress-lines"]


# ---- the result --------------------------------------------------------------------------------
def verdict_text(diagnostic: bool | None) -> str:
    """The scan's verdict in two words (None: no LA found, no score)."""
    return "no score (no LA found)" if diagnostic is None else DIAGNOSTIC if diagnostic else NON_DIAGNOSTIC


def table_rows(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The table node's rows (:data:`TABLE_COLUMNS`): ``attribute_rows``' label, decision and
    slice votes; p(diagnostic) as the number of result.json (None without a score)."""
    from cmrlib.laquality.networks import LABELS
    from cmrlib.laquality.outputs import attribute_rows
    try:
        texts = attribute_rows(dict(summary))
        scores = [summary["overall_quality"] if k == "overall_quality" else (summary.get("attributes") or {}).get(k)
                  for k in LABELS]
        probabilities = [None if not a else float(a["probability"]) for a in scores]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError(f"the `cmr la-quality` result.json has no readable attributes ({exc!r})") from None
    return [{"attribute": label, "p(diagnostic)": p, "decision": decision, "slices voting diagnostic": votes}
            for (label, _p, decision, votes), p in zip(texts, probabilities, strict=True)]


@dataclass
class LAQualityOutputs:
    """Nodes made from one `cmr la-quality` result: the LA ``mask`` segmentation, the ``saliency``
    volume and the attribute ``table``; ``summary`` is result.json, ``rows`` the table's rows,
    ``saliency_png`` / ``montage`` the figures' paths (None when missing)."""

    mask: Any
    saliency: Any
    table: Any
    summary: dict
    rows: list[dict[str, Any]] = field(default_factory=list)
    saliency_png: Path | None = None
    montage: Path | None = None

    def nodes(self) -> dict[str, Any]:
        return {"mask": self.mask, "saliency": self.saliency, "table": self.table}

    @property
    def diagnostic(self) -> bool | None:
        """The scan's verdict on the quality for fibrosis assessment; None: no LA found, no score."""
        value = self.summary.get("diagnostic")
        return None if value is None else bool(value)

    @property
    def sentence(self) -> str:
        """The scan's one-line verdict ("diagnostic for LA fibrosis assessment (…)")."""
        return str(self.summary.get("sentence") or "")

    @property
    def saliency_slice(self) -> int | None:
        """0-based slice (on the assessed grid) of saliency.png; None without one."""
        k = self.summary.get("saliency_slice")
        return None if k is None else int(k)

    def table_cells(self) -> list[tuple[list[str], str | None]]:
        """Per label: the texts of :data:`TABLE_COLUMNS` (p with 2 decimals, "—" without a score)
        and the row colour (green diagnostic, red non-diagnostic, None without a score)."""
        out = []
        for row in self.rows:
            p = row["p(diagnostic)"]
            texts = [row["attribute"], "—" if p is None else f"{p:.2f}", row["decision"],
                     row["slices voting diagnostic"]]
            out.append((texts, COLOURS.get(row["decision"])))
        return out

    def summary_text(self) -> str:
        """Threshold, slices with atrium, LA volume, variant, time, models; the notes on their own
        lines (the verdict is :attr:`sentence`)."""
        s = self.summary
        parts = []
        if s.get("threshold") is not None:
            parts.append(f"threshold t = {float(s['threshold']):.2f}")
        used = s.get("slices_used") or []
        parts.append(f"{len(used)} of {len(s.get('slices') or [])} slices with atrium")
        if used:
            parts.append(f"LA {float(s.get('la_volume_ml') or 0):.0f} ml")
        if s.get("variant"):
            parts.append(f"{s['variant']} variant")
        if s.get("seconds") is not None:
            parts.append(f"{float(s['seconds']):.2f} s")
        for m in s.get("models") or []:
            parts.append(f"{m.get('name')} v{m.get('version', '?')}" + (f" ({m['notice']})" if m.get("notice") else ""))
        return "; ".join(parts) + "".join(f"\n{n}" for n in s.get("notes") or [])

    def set_visible(self, visible: bool) -> None:
        """Show or hide the LA mask in the views (an older result's, when a new one is shown)."""
        display = self.mask.GetDisplayNode() if self.mask is not None else None
        if display is not None:
            display.SetVisibility(bool(visible))


def _read(outputs: Mapping[str, Any], key: str) -> Any:
    from cmrlib.io import read_image
    path = outputs.get(key)
    if not path or not Path(path).is_file():
        raise InputError(f"the `cmr la-quality` result lacks {Path(path).name if path else key}")
    image = read_image(path)
    if image.is_sequence or len(image.spatial_shape) != 3:
        raise InputError(f"{Path(path).name} of the `cmr la-quality` result is no 3-D volume")
    return image


def _show_saliency(node: Any) -> None:
    """Rainbow colour table, window 0–1, transparent below :data:`SALIENCY_FLOOR`."""
    if node.GetDisplayNode() is None:
        node.CreateDefaultDisplayNodes()
    display = node.GetDisplayNode()
    scene = node.GetScene()
    colour = next((c for c in SALIENCY_COLOURS if scene is not None and scene.GetNodeByID(c) is not None), None)
    if colour is not None:
        display.SetAndObserveColorNodeID(colour)
    display.AutoWindowLevelOff()
    display.SetWindowLevelMinMax(0.0, 1.0)
    display.AutoThresholdOff()
    display.SetLowerThreshold(SALIENCY_FLOOR)
    display.SetUpperThreshold(1.0)
    display.SetApplyThreshold(1)


def outputs_to_nodes(scene: Any, outputs: Mapping[str, Any], name: str = "") -> LAQualityOutputs:
    """The LA quality adapter (``Capability.adapter``): nodes from the dict that
    ``cmrlib.laquality.outputs.read_result`` returns (``summary``: result.json, ``la_mask`` /
    ``saliency``: paths of the NRRDs on the assessed grid, ``saliency_png`` / ``montage``: the
    figures). Makes the segmentation "<name> LA mask" (segment :data:`LA_SEGMENT`), the scalar
    volume "<name> saliency" (display: :func:`_show_saliency`) and the table "<name> LA quality"
    (:func:`table_rows`). ``name`` defaults to the series, else "LA 3D LGE". A broken result
    adds nothing."""
    import numpy as np
    from cmrlib.mrml import segmentation_node_from_labels, table_node_from_rows, volume_node_from_image

    summary = outputs.get("summary")
    if not isinstance(summary, Mapping) or "diagnostic" not in summary:
        raise InputError("the `cmr la-quality` result lacks result.json")
    if not isinstance(summary.get("slices"), list):
        raise InputError("the `cmr la-quality` result lacks result.json's slices")
    rows = table_rows(summary)  # everything is read and checked before the first node
    mask, saliency = _read(outputs, "la_mask"), _read(outputs, "saliency")
    if mask.spatial_shape != saliency.spatial_shape:
        raise InputError(f"la_mask.nrrd {mask.spatial_shape} and saliency.nrrd {saliency.spatial_shape} are not "
                         "on one grid")
    if len(summary["slices"]) != mask.spatial_shape[0]:
        raise InputError(f"result.json lists {len(summary['slices'])} slice(s) but la_mask.nrrd has "
                         f"{mask.spatial_shape[0]}")
    name = name or str(summary.get("series") or "LA 3D LGE")
    labels = (np.asarray(mask.array) > 0).astype(np.uint8)
    mask_node = segmentation_node_from_labels(scene, labels, mask, LA_LABEL_TABLE, f"{name} LA mask")
    saliency_node = volume_node_from_image(scene, saliency.with_array(np.asarray(saliency.array, np.float32)),
                                           f"{name} saliency")
    _show_saliency(saliency_node)
    table = table_node_from_rows(scene, rows, f"{name} LA quality")
    figures = [Path(outputs[k]) if outputs.get(k) else None for k in ("saliency_png", "montage")]
    figures = [p if p is not None and p.is_file() else None for p in figures]
    return LAQualityOutputs(mask_node, saliency_node, table, dict(summary), rows, *figures)


def load_la_results(scene: Any, folder: str | Path, name: str = "") -> LAQualityOutputs:
    """A `cmr la-quality` output folder as nodes (:func:`outputs_to_nodes`)."""
    from cmrlib.laquality.outputs import read_result
    folder = Path(folder)
    try:
        outputs = read_result(folder)
    except (OSError, ValueError) as exc:
        raise InputError(f"{folder} holds no readable `cmr la-quality` result: {exc}") from None
    return outputs_to_nodes(scene, outputs, name)


def show_la_result(scene: Any, volume: Any, outputs: LAQualityOutputs, opacity: float = SALIENCY_OPACITY) -> int:
    """Every slice view of ``scene``: ``volume`` (the input; None: the saliency alone) as the
    background, the saliency as the foreground at ``opacity``, turned to the assessed grid's
    planes and centred on the slice of saliency.png; returns how many views were set."""
    from .quality import show_slice

    saliency = outputs.saliency
    n = scene.GetNumberOfNodesByClass("vtkMRMLSliceCompositeNode")
    for i in range(n):
        composite = scene.GetNthNodeByClass(i, "vtkMRMLSliceCompositeNode")
        composite.SetBackgroundVolumeID((volume if volume is not None else saliency).GetID())
        composite.SetForegroundVolumeID(saliency.GetID())
        composite.SetForegroundOpacity(float(opacity))
    k = outputs.saliency_slice
    dims = saliency.GetImageData().GetDimensions()
    show_slice(scene, saliency, k if k is not None and 0 <= k < dims[2] else dims[2] // 2)
    return n

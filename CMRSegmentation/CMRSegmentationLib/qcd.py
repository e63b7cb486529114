"""CMRSegmentation's QCD adapter (Qt-free): a `cmr segment` result folder → MRML nodes, and back
to a training pair.

* :func:`outputs_to_nodes` (the record's ``adapter``): ``labels.nrrd`` becomes a segmentation
  node with the segments "Myocardium" (red) and "Blood pool" (yellow), referenced to the input
  grid so the Segment Editor edits on it; ``result.json``'s slices become a table node (slice
  1-based, predicted Dice, QC pass / FAIL, candidate, reason).
* :func:`slice_position` / :func:`jump_slices_to`: where a (failed) slice lies, to centre the
  slice views on it.
* :func:`mask_qc_failed_slices`: the slices on which a QCD mask node failed its QC, for the
  panels that take it as a myocardium mask (stress, scar).
* :func:`export_training_pair`: the image and the (edited) segmentation as ``NAME.nrrd`` +
  ``NAME.labels.nrrd`` (0 background, 1 myocardium, 2 blood pool), which
  ``cmrlib.qcd.data.user_slices`` reads for `cmr train qcd --data`.

Method card: docs/methods/qcd.md.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from cmrlib.errors import InputError

MYOCARDIUM, BLOOD_POOL = "Myocardium", "Blood pool"
#: The data contract's labels as segments (colours as in contours.png: myocardium red, blood pool yellow).
QCD_LABEL_TABLE = {1: (MYOCARDIUM, (0.85, 0.22, 0.17)), 2: (BLOOD_POOL, (0.98, 0.84, 0.26))}
#: Columns of the per-slice table (node and panel).
TABLE_COLUMNS = ("slice", "predicted Dice", "QC", "candidate", "reason")
QC_PASS, QC_FAIL = "pass", "FAIL"
#: Background (r, g, b 0-255) of the panel's QC cell: green pass, red FAIL.
QC_COLOURS = {QC_PASS: (120, 200, 120), QC_FAIL: (235, 110, 100)}
#: Suffixes of an exported pair (``cmrlib.qcd.data.user_slices`` pairs NAME.nrrd with NAME.labels.nrrd).
IMAGE_SUFFIX, LABELS_SUFFIX = ".nrrd", ".labels.nrrd"

_UNSAFE_TEXT = re.compile(r'[\t\r\n"]')


def _text(value: Any) -> str:
    """A table cell that Slicer's table files can store (no tabs, line breaks, double quotes)."""
    return "" if value is None else _UNSAFE_TEXT.sub(lambda m: "'" if m.group(0) == '"' else " ", str(value))


def slice_rows(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per slice of result.json (:data:`TABLE_COLUMNS`): slice number 1-based, the
    predicted Dice, "pass" / "FAIL", the chosen candidate ("" when none) and the reason."""
    rows = []
    for s in summary.get("slices", []):
        rows.append({"slice": int(s["index"]) + 1, "predicted Dice": float(s["predicted_dice"]),
                     "QC": QC_PASS if s["qc_pass"] else QC_FAIL, "candidate": _text(s.get("candidate")),
                     "reason": _text(s.get("reason"))})
    return rows


def table_cells(rows: list[dict[str, Any]]) -> list[list[tuple[str, tuple[int, int, int] | None]]]:
    """The panel's table: per row, per column of :data:`TABLE_COLUMNS`, (text, background)
    with the QC cell coloured (:data:`QC_COLOURS`), the predicted Dice to two decimals."""
    out = []
    for row in rows:
        cells = []
        for key in TABLE_COLUMNS:
            value = row.get(key)
            if key == "predicted Dice":
                text = f"{float(value):.2f}"
            elif key == "slice":
                text = str(int(value))
            else:
                text = "" if value is None else str(value)
            cells.append((text, QC_COLOURS.get(text) if key == "QC" else None))
        out.append(cells)
    return out


@dataclass
class QCDOutputs:
    """Nodes made from one `cmr segment` result: the segmentation (``Myocardium``, ``Blood
    pool``) and the per-slice QC table; ``labels`` is labels.nrrd (its grid is the input's),
    ``rows`` the table's rows as dicts."""

    segmentation: Any
    table: Any
    labels: Any
    summary: dict
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failed_slices(self) -> list[int]:
        """0-based indices of the slices that failed QC."""
        if "failed_slices" in self.summary:
            return [int(k) for k in self.summary["failed_slices"]]
        return [int(s["index"]) for s in self.summary.get("slices", []) if not s["qc_pass"]]

    def nodes(self) -> dict[str, Any]:
        return {"segmentation": self.segmentation, "table": self.table}

    def summary_text(self) -> str:
        s = self.summary
        n = len(s.get("slices", []))
        failed = self.failed_slices
        model = s.get("model", {})
        parts = [f"{n} slice(s), mean predicted Dice {s['mean_predicted_dice']:.2f}"
                 if s.get("mean_predicted_dice") is not None else f"{n} slice(s)",
                 (f"QC failed on slice(s) {', '.join(str(k + 1) for k in failed)} "
                  f"(predicted Dice < {float(s.get('qc_threshold', 0.7)):.2f}): review them"
                  if failed else "every slice passed QC")]
        if s.get("seconds") is not None:
            parts.append(f"{float(s['seconds']):.2f} s")
        parts.append(f"{model.get('name', '?')} v{model.get('version', '?')}"
                     + (f" ({model['notice']})" if model.get("notice") else ""))
        notes = [x for x in s.get("notes", []) if not x.startswith("QCD: ") and "failed QC" not in x]
        return "; ".join(parts) + "".join(f"\n{x}" for x in notes)

    def slice_position(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(RAS mm, IJK) of the centre of slice ``index`` (0-based) of the result's grid."""
        return slice_position(self.labels, index)


def outputs_to_nodes(scene: Any, outputs: Mapping[str, Any], name: str = "", *, volume: Any = None) -> QCDOutputs:
    """The QCD adapter (``Capability.adapter``): nodes from the dict that
    ``cmrlib.qcd.outputs.read_result`` returns (``labels``: the label Image, ``summary``:
    result.json). Node names start with ``name`` (default: the series, else "QCD"). When
    ``volume`` (the input's volume node) is given, the segmentation's reference geometry is
    taken from it (it is the labels' grid), so the Segment Editor pairs the two."""
    from cmrlib.mrml import segmentation_node_from_labels, table_node_from_rows

    missing = [k for k in ("labels", "summary") if outputs.get(k) is None]
    if missing or "slices" not in outputs["summary"]:
        raise InputError("the `cmr segment` result lacks " + (", ".join(missing) or "result.json's slices"))
    labels, summary = outputs["labels"], dict(outputs["summary"])
    n = labels.spatial_shape[0]
    if len(summary["slices"]) != n:
        raise InputError(f"result.json lists {len(summary['slices'])} slice(s) but labels.nrrd has {n}")
    name = name or str(summary.get("series") or "QCD")
    arr = np.asarray(labels.array).reshape(labels.spatial_shape)
    rows = slice_rows(summary)  # before any node: a broken result.json adds nothing to the scene
    seg = segmentation_node_from_labels(scene, arr.astype(np.uint8), labels, QCD_LABEL_TABLE, f"{name} QCD segmentation")
    if volume is not None:
        seg.SetReferenceImageGeometryParameterFromVolumeNode(volume)
    seg.SetAttribute("CMR.qc_failed_slices", ",".join(str(k) for k in
                                                      [s["index"] for s in summary["slices"] if not s["qc_pass"]]))
    seg.SetAttribute("CMR.qc_threshold", str(summary.get("qc_threshold", "")))
    table = table_node_from_rows(scene, rows, f"{name} QCD QC per slice")
    return QCDOutputs(seg, table, labels, summary, rows)


def mask_qc_failed_slices(node: Any, n_slices: int) -> list[int]:
    """0-based slices on which a mask failed its QC: a QCD segmentation's ``CMR.qc_failed_slices``
    attribute ("0,2", set by :func:`outputs_to_nodes`), or a label map read from QCD's labels.nrrd
    (its ``qc_failed_slices``); indices outside ``n_slices`` are dropped, an unreadable value gives []."""
    from cmrlib.mrml import node_meta

    value = node_meta(node).get("qc_failed_slices")
    if isinstance(value, (int, float)):
        value = [value]
    elif isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    try:
        failed = sorted({int(v) for v in value or []})
    except (TypeError, ValueError):
        return []
    return [k for k in failed if 0 <= k < n_slices]


# ---- where a slice lies -----------------------------------------------------------------
def slice_position(grid: Any, index: int) -> tuple[np.ndarray, np.ndarray]:
    """(RAS mm, IJK) of the in-plane centre of slice ``index`` (0-based) of ``grid`` (a
    :class:`cmrlib.Image`): the point to centre the slice views on. IJK is (col, row, slice)."""
    from cmrlib.mrml import lps_to_ras

    n_slices, rows, cols = grid.spatial_shape
    if not 0 <= int(index) < n_slices:
        raise InputError(f"slice {int(index) + 1} is outside 1..{n_slices}")
    ijk = np.array([(cols - 1) / 2.0, (rows - 1) / 2.0, float(index)])
    return np.asarray(lps_to_ras(grid.index_to_lps(ijk)), float), ijk


def jump_slices_to(scene: Any, ras: Any, volume: Any = None) -> int:
    """Centre every slice view of ``scene`` on ``ras`` (mm), first turned to the planes of
    ``volume`` when given (an oblique short-axis stack is then seen slice by slice); returns
    how many slice nodes moved."""
    ras = [float(x) for x in ras]
    moved = 0
    for i in range(scene.GetNumberOfNodesByClass("vtkMRMLSliceNode")):
        node = scene.GetNthNodeByClass(i, "vtkMRMLSliceNode")
        if volume is not None:
            node.RotateToVolumePlane(volume)
        node.JumpSliceByCentering(*ras)
        moved += 1
    return moved


# ---- the input image --------------------------------------------------------------------
def selected_frame(sequence_node: Any) -> int:
    """The frame (item number) the sequence's browser shows, 0 without a browser."""
    from cmrlib.mrml import browser_node_for

    browser = browser_node_for(sequence_node)
    k = browser.GetSelectedItemNumber() if browser is not None else 0
    return max(int(k), 0)


def input_image(node: Any, frame: int | None = None) -> Any:
    """The :class:`cmrlib.Image` QCD segments from ``node``: a scalar volume as it is; a
    sequence's frame ``frame`` (default: the one its browser shows) as a volume."""
    from cmrlib.mrml import image_from_volume_node

    if node is None:
        raise InputError("choose an input volume (a short-axis LGE, VNE or T1-map volume, or a sequence)")
    if node.IsA("vtkMRMLSequenceNode"):
        n = node.GetNumberOfDataNodes()
        k = selected_frame(node) if frame is None else int(frame)
        if not 0 <= k < n:
            raise InputError(f"frame {k} is outside 0..{n - 1} of sequence '{node.GetName()}'")
        data = node.GetNthDataNode(k)
        if data is None or not data.IsA("vtkMRMLScalarVolumeNode"):
            raise InputError(f"sequence '{node.GetName()}' does not hold scalar volumes")
        image = image_from_volume_node(data)
        image.meta.setdefault("SeriesDescription", f"{node.GetName()} frame {k + 1}")
        return image
    if not node.IsA("vtkMRMLScalarVolumeNode") or node.IsA("vtkMRMLLabelMapVolumeNode"):
        raise InputError(f"'{node.GetName()}' is a {node.GetClassName()}; QCD needs a scalar volume or a sequence")
    image = image_from_volume_node(node)
    image.meta.setdefault("SeriesDescription", node.GetName())
    return image


# ---- training pairs ---------------------------------------------------------------------
def safe_name(text: str) -> str:
    """A file stem ``user_slices`` pairs unambiguously: letters, digits, ``-`` and ``_`` only (no
    dot), and not ending like a label file (``_labels``, ``_label``, ``-label``)."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", str(text)).strip("_-")
    stem = re.sub(r"([_-]labels?)+$", "", stem, flags=re.I).strip("_-")
    return stem or "image"


def labels_for_training(segmentation_node: Any, grid: Any) -> np.ndarray:
    """The segmentation as the data contract's labels on ``grid`` (uint8: 1 myocardium, 2
    blood pool): segments named like myocardium (or scar) become 1, like blood pool 2, as
    ``cmrlib.io.masks`` reads a ``.seg.nrrd`` (myocardium wins an overlap)."""
    from cmrlib.io.masks import SEGMENT_NAME_LABELS
    from cmrlib.mrml import labels_from_segmentation_node

    if segmentation_node is None or not segmentation_node.IsA("vtkMRMLSegmentationNode"):
        found = "nothing" if segmentation_node is None else segmentation_node.GetClassName()
        raise InputError(f"a segmentation node is needed; got {found}")
    segmentation = segmentation_node.GetSegmentation()
    out = np.zeros(grid.spatial_shape, np.uint8)
    names = []
    for i in range(segmentation.GetNumberOfSegments()):
        seg_name = segmentation.GetNthSegment(i).GetName()
        label = next((lab for key, lab in SEGMENT_NAME_LABELS if key in seg_name.lower()), 0)
        names.append(seg_name)
        if not label:
            continue
        mask = labels_from_segmentation_node(segmentation_node, grid, {1: (seg_name, (1.0, 0.0, 0.0))}) == 1
        out[mask & ((out == 0) | (label == 1))] = label
    if not (out == 1).any():
        raise InputError(f"segmentation '{segmentation_node.GetName()}' has no myocardium on the image grid "
                         f"(segments: {', '.join(names) or 'none'}); a training pair needs a segment named "
                         f"'{MYOCARDIUM}' with voxels")
    return out


def _pair_conflicts(folder: Path, stem: str) -> list[str]:
    """Existing files that the pair would overwrite or that ``user_slices`` would pair with it."""
    if not folder.is_dir():
        return []
    taken = {stem.lower(), f"{stem}_labels".lower(), f"{stem}_label".lower(), f"{stem}-label".lower()}
    return sorted(p.name for p in folder.iterdir() if p.name.split(".")[0].lower() in taken)


def export_training_pair(volume_node: Any, segmentation_node: Any, folder: str | Path, name: str = "", *,
                         frame: int | None = None) -> tuple[Path, Path]:
    """Write the image of ``volume_node`` (a scalar volume, or a sequence's frame ``frame``,
    default the one shown) and the (edited) segmentation on its grid into ``folder`` as
    ``NAME.nrrd`` + ``NAME.labels.nrrd`` (0 background, 1 myocardium, 2 blood pool): a training
    pair for `cmr train qcd --data FOLDER` (``cmrlib.qcd.data.user_slices``). ``NAME`` is
    ``name`` or the volume's name, made file-safe (:func:`safe_name`).

    Raises InputError, writing nothing, when the folder already has a pair of that name (or a
    file that would pair with it), when ``folder`` is a file, or when the segmentation has no
    myocardium on the image grid. Returns (image path, labels path)."""
    from cmrlib.image import Image
    from cmrlib.io import write_image

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder} is a file, not a folder")
    image = input_image(volume_node, frame)
    stem = safe_name(name or (volume_node.GetName() if volume_node is not None else ""))
    conflicts = _pair_conflicts(folder, stem)
    if conflicts:
        raise InputError(f"{folder} already holds {', '.join(conflicts)}: the pair '{stem}' would overwrite or "
                         "be confused with it; choose another name or folder")
    labels = labels_for_training(segmentation_node, image)
    label_image = Image(labels, image.spacing, image.origin, image.direction, False,
                        {"labels": {"0": "background", "1": "myocardium", "2": "blood pool"},
                         "SeriesDescription": f"{image.meta.get('SeriesDescription', stem)} labels"})
    image_path, labels_path = folder / f"{stem}{IMAGE_SUFFIX}", folder / f"{stem}{LABELS_SUFFIX}"
    write_image(image, image_path)
    try:
        write_image(label_image, labels_path)
    except BaseException:
        image_path.unlink(missing_ok=True)  # never half a pair
        raise
    return image_path, labels_path

"""CMRSegmentation's scar adapter (Qt-free): MRML nodes in → `cmr scar` worker arguments → result nodes.

* :func:`scar_arguments`: the LGE stack (scalar volume), the cine of the same study (a sequence
  of cardiac phases with TriggerTime per frame, as the study loader makes it), the optional
  myocardium (label map or segmentation), AHA segment map and LV-centre point lists written into
  a work folder — images as NRRD, the LV centres as the ``--centres`` JSON (LPS mm, LGE slice
  numbers from 1, :func:`centres_document`) — and the `cmr scar` arguments
  (``cmrlib/scar/cli.py``) for the worker. Every input is checked before the first file is written.
* :func:`outputs_to_nodes` (the record's ``adapter``): the dict that
  ``cmrlib.scar.outputs.read_result`` returns becomes a segmentation with the segments
  "Myocardium" (normal myocardium, green) and "Scar" (red) on the LGE grid, the matched cine
  frames on the LGE grid (grey volume, when fusion ran), table nodes of slices.csv (per slice)
  and methods.csv (every method side by side), the per-AHA-segment %scar table and the AHA
  segment map (with AHA segments), and the LV centres the result used as point lists — one per
  image, control point label = LGE slice number — which the user can move and pass back as
  LV centres (:func:`scar_arguments`).
* :func:`show_scar`: the LGE (grey, scar segmentation over it) in the slice views, the matched
  cine in the yellow view, turned to the LGE's planes.

Method card: docs/methods/scar-fusion.md.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from cmrlib.errors import InputError

#: File names of the worker's inputs in the work folder.
LGE_INPUT, CINE_INPUT, MASK_INPUT, SEGMENTS_INPUT, CENTRES_INPUT = (
    "lge.nrrd", "cine.nrrd", "lge_mask.nrrd", "aha_segments.nrrd", "lv_centres.json")
MYOCARDIUM, SCAR = "Myocardium", "Scar"
#: labels.nrrd's labels as segments (colours as in scar.png: myocardium green, scar red).
SCAR_LABEL_TABLE = {1: (MYOCARDIUM, (0.20, 0.80, 0.20)), 2: (SCAR, (0.90, 0.10, 0.10))}
#: Names (after the result's name) of the LV-centre point lists, one per image.
LGE_CENTRES, CINE_CENTRES = "LGE LV centre", "cine LV centre"
#: Keys of the reader's dict the adapter needs.
RESULT_KEYS = ("labels", "summary", "slices", "methods")
#: Slice view that shows the matched cine beside the LGE (the other views show the LGE).
CINE_VIEW = "Yellow"


def methods() -> tuple[str, ...]:
    """The `cmr scar` methods in the CLI's order (the panel's combo box)."""
    from cmrlib.scar.methods import METHODS
    return METHODS


def method_available(method: str) -> bool:
    """Whether ``method`` can run here: a U-Net needs its installed weights, the classical methods none."""
    from cmrlib.models.zoo import model_installed
    from cmrlib.scar.methods import MODEL_NAMES
    return method not in MODEL_NAMES or model_installed(MODEL_NAMES[method])


def default_method() -> str:
    """The panel's method when the chosen one cannot run: fusion, else LGE-only when their weights
    are installed, else 5 SD above remote (needs a myocardium mask) — `cmr scar`'s own order."""
    from cmrlib.scar.methods import NETWORK_METHODS
    return next((m for m in NETWORK_METHODS if method_available(m)), "nsd5")


# ---- the inputs --------------------------------------------------------------------------------
def matching_cine(scene: Any, lge: Any) -> Any:
    """The cine sequence node to pair with the LGE volume node ``lge``: among the scene's sequence
    nodes whose series kind is cine, the one of the LGE's study (StudyInstanceUID, then
    FrameOfReferenceUID), else the only cine; None when there is none or the choice is ambiguous."""
    from cmrlib.mrml import node_meta
    if lge is None:
        return None
    lge_meta = node_meta(lge)
    cines = [n for n in scene.GetNodesByClass("vtkMRMLSequenceNode") if node_meta(n).get("kind") == "cine"]
    for key in ("StudyInstanceUID", "FrameOfReferenceUID"):
        uid = lge_meta.get(key)
        same = [n for n in cines if uid and node_meta(n).get(key) == uid]
        if len(same) == 1:
            return same[0]
    return cines[0] if len(cines) == 1 else None


def lge_image(node: Any, force: bool = False) -> Any:
    """The :class:`cmrlib.Image` of the LGE volume node, checked as `cmr scar` checks it."""
    from cmrlib.mrml import image_from_volume_node
    from cmrlib.scar.pipeline import check_lge

    if node is None:
        raise InputError("choose the LGE stack (a short-axis LGE PSIR or magnitude volume loaded by the study loader)")
    if not node.IsA("vtkMRMLScalarVolumeNode") or node.IsA("vtkMRMLLabelMapVolumeNode"):
        raise InputError(f"'{node.GetName()}' is a {node.GetClassName()}; the LGE stack must be a scalar volume")
    image = image_from_volume_node(node)
    image.meta.setdefault("SeriesDescription", node.GetName())
    try:
        check_lge(image, force)
    except InputError as exc:
        raise InputError(f"LGE '{node.GetName()}': {exc}") from exc
    return image


def cine_image(node: Any) -> Any:
    """The sequence :class:`cmrlib.Image` of a cine sequence node, with its frames' TriggerTime
    (ms, ``frame_meta``: the matching needs them)."""
    from cmrlib.mrml import image_from_sequence_node
    from cmrlib.scar.matching import cine_trigger_times

    if not node.IsA("vtkMRMLSequenceNode"):
        raise InputError(f"'{node.GetName()}' is a {node.GetClassName()}; the cine must be a sequence of cardiac "
                         "phases (e.g. the cine series loaded by the study loader)")
    image = image_from_sequence_node(node)
    image.meta.setdefault("SeriesDescription", node.GetName())
    try:
        cine_trigger_times(image)
    except InputError as exc:
        raise InputError(f"cine '{node.GetName()}': {exc}") from exc
    return image


def _slice_number(label: str, node: Any, n_slices: int) -> int:
    text = str(label).strip()
    if not text.isdigit() or not 1 <= int(text) <= n_slices:
        raise InputError(f"point '{label}' of '{node.GetName()}': its label must be the LGE slice number "
                         f"(1–{n_slices}) it is the LV centre of")
    return int(text)


def centre_points(node: Any, n_slices: int) -> dict[str, list[float]]:
    """{LGE slice number (text, from 1): [x, y, z] LPS mm} of an LV-centre point list whose
    control point labels are the LGE slice numbers (world positions: a transformed list counts
    where it is seen). InputError for another node class, a label that is no slice, or two
    points of one slice."""
    from cmrlib.mrml import points_from_markups_node

    if not node.IsA("vtkMRMLMarkupsNode"):
        raise InputError(f"'{node.GetName()}' is a {node.GetClassName()}; LV centres must be a point list "
                         "(control point label = LGE slice number)")
    lps, labels = points_from_markups_node(node)
    out: dict[str, list[float]] = {}
    for point, label in zip(lps, labels, strict=True):
        k = str(_slice_number(label, node, n_slices))
        if k in out:
            raise InputError(f"'{node.GetName()}' has two points for LGE slice {k}; keep one")
        out[k] = [float(v) for v in point]
    return out


def centres_document(n_slices: int, lge_centres: Any = None, cine_centres: Any = None) -> dict[str, Any]:
    """The `cmr scar --centres` JSON of the LV-centre point lists: ``{"lge": {"SLICE": [x, y, z]},
    "cine": {...}}``, LPS mm, LGE slice numbers from 1 for both (a cine centre is the centre on the
    cine slice matched to that LGE slice); only the lists given appear."""
    doc = {}
    for key, node in (("lge", lge_centres), ("cine", cine_centres)):
        if node is not None:
            doc[key] = centre_points(node, n_slices)
    return doc


def scar_arguments(lge: Any, folder: str | Path, out_dir: str | Path, *, cine: Any = None, method: str | None = None,
                   mask: Any = None, segments: Any = None, lge_centres: Any = None, cine_centres: Any = None,
                   force: bool = False) -> list[str]:
    """Write the worker's inputs into ``folder`` and return the `cmr scar` arguments (progress as
    CMR-PROGRESS lines; the panel adds the device, ``CMRCommonLib.runner.worker_command``);
    ``out_dir`` must lie outside ``folder``.

    ``lge``: the LGE volume node; ``cine``: the cine sequence node (its frames and their
    TriggerTime go into one 4-D NRRD, as CMRMotion writes its IRW sequence); ``mask``: a label
    map (1 myocardium, 2 blood pool, 3 scar) or segmentation ("Myocardium" / "Scar" segments,
    e.g. the QCD result) for the classical methods, written on the LGE grid with its failed QC
    slices in the header (`cmr scar` leaves those slices out); ``segments``: an AHA segment label
    map (the Landmarks result), on the LGE grid; ``lge_centres`` / ``cine_centres``: LV-centre
    point lists (control point label = LGE slice number, e.g. :func:`outputs_to_nodes`'s, moved)
    → ``--centres``. ``method`` None: the CLI's default.

    Raises InputError, writing nothing, for a missing or wrong node, an unknown method, a
    method that cannot run (fusion without a cine, a classical one without a mask, a U-Net
    without its weights), an LGE / cine pair that cannot be matched (unless ``force``), a
    point list whose labels are no LGE slices, cine centres without a cine, or ``out_dir``
    inside ``folder``.
    """
    from cmrlib.atomic import check_output_folder, write_text_atomic
    from cmrlib.io import write_image
    from cmrlib.scar.matching import match_series
    from cmrlib.scar.classical import CLASSICAL_METHODS
    from cmrlib.scar.methods import METHODS, MODEL_NAMES

    from .landmarks import aha_segments_on_grid
    from .landmarks_live import mask_image

    if method is not None and method not in METHODS:
        raise InputError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    check_output_folder(folder, out_dir)  # `cmr scar` refuses an output inside its inputs' folder
    lge_img = lge_image(lge, force)
    if method == "fusion" and cine is None:
        raise InputError("the fusion U-Net needs the cine stack of the same study: choose it, or the LGE-only "
                         "U-Net or a classical method")
    if method in CLASSICAL_METHODS and mask is None:
        raise InputError(f"{method} thresholds inside the myocardium: choose a myocardium mask (a label map or a "
                         "segmentation with a 'Myocardium' segment, e.g. the QCD result), or a U-Net method")
    if method in MODEL_NAMES and not method_available(method):
        raise InputError(f"the {method} weights ({MODEL_NAMES[method]}) are not installed: train them with "
                         "`cmr train scar`, or choose a classical method")
    if cine_centres is not None and cine is None:
        raise InputError("cine LV centres are given without a cine: choose the cine stack, or no cine centres")
    cine_img = cine_image(cine) if cine is not None else None
    if cine_img is not None:
        match_series(lge_img, cine_img, force=force)  # different studies / tilted planes: refused now, not later
    mask_img = mask_image(mask, lge_img, "LGE")[0] if mask is not None else None
    aha = aha_segments_on_grid(segments, lge_img, "the LGE") if segments is not None else None
    centres = centres_document(lge_img.spatial_shape[0], lge_centres, cine_centres)
    # everything is checked: now the files
    folder = Path(folder)
    args = ["scar", "--lge", str(write_image(lge_img, folder / LGE_INPUT)), "--out", str(out_dir)]
    if cine_img is not None:
        args += ["--cine", str(write_image(cine_img, folder / CINE_INPUT))]
    if method is not None:
        args += ["--method", method]
    if mask_img is not None:
        args += ["--mask", str(write_image(mask_img, folder / MASK_INPUT))]
    if aha is not None:
        args += ["--segments", str(write_image(aha, folder / SEGMENTS_INPUT))]
    if centres:
        path = folder / CENTRES_INPUT
        write_text_atomic(path, json.dumps(centres, indent=2))
        args += ["--centres", str(path)]
    if force:
        args.append("--force")
    return args + ["--progress-lines"]


# ---- the result --------------------------------------------------------------------------------
def _cell(text: Any) -> Any:
    """A CSV cell as a table value: a number as float, empty as None (NaN / "" in the table), else the text."""
    if text is None or text == "":
        return None
    try:
        value = float(text)
    except (TypeError, ValueError):
        return text
    return value if math.isfinite(value) else text


def typed_rows(csv_rows: list[Mapping[str, str]]) -> list[dict[str, Any]]:
    """CSV rows (``csv.DictReader``'s text) as table rows: a column whose cells are all numbers
    (or empty) becomes numbers, any other column stays text ("" where empty)."""
    if not csv_rows:
        return []
    columns = list(csv_rows[0])
    values = {c: [_cell(r.get(c)) for r in csv_rows] for c in columns}
    numeric = {c for c, vs in values.items() if all(v is None or isinstance(v, float) for v in vs)}
    return [{c: values[c][i] if c in numeric else ("" if csv_rows[i].get(c) is None else str(csv_rows[i][c]))
             for c in columns} for i in range(len(csv_rows))]


def table_cells(csv_rows: list[Mapping[str, str]]) -> tuple[list[str], list[list[str]]]:
    """(column names, text per row and column) of CSV rows for the panel's tables: the files'
    text as written (numbers formatted by the writer), "–" where a cell is empty."""
    columns = list(csv_rows[0]) if csv_rows else []
    return columns, [[(r.get(c) or "–") for c in columns] for r in csv_rows]


@dataclass
class ScarOutputs:
    """Nodes made from one `cmr scar` result: the segmentation ("Myocardium", "Scar"), the matched
    cine volume (None without fusion), the per-slice and per-method tables, the per-AHA-segment
    table and segment map (None without AHA segments), the LV-centre point lists (None when the
    result has none for that image); ``labels`` is labels.nrrd, ``slice_rows`` / ``method_rows``
    the CSV rows as text; ``bullseye``: the bull's-eye PNG (set by the loading function, which
    knows the folder)."""

    segmentation: Any
    cine: Any
    slice_table: Any
    method_table: Any
    segment_table: Any
    segments: Any
    lge_centres: Any
    cine_centres: Any
    labels: Any
    summary: dict
    slice_rows: list[dict[str, str]] = field(default_factory=list)
    method_rows: list[dict[str, str]] = field(default_factory=list)
    bullseye: Path | None = None

    def nodes(self) -> dict[str, Any]:
        names = ("segmentation", "cine", "slice_table", "method_table", "segment_table", "segments", "lge_centres",
                 "cine_centres")
        return {k: getattr(self, k) for k in names if getattr(self, k) is not None}

    def voxel_counts(self) -> dict[str, int]:
        """Voxels of each segment's label in labels.nrrd ("Myocardium": 1, "Scar": 2)."""
        arr = np.asarray(self.labels.array)
        return {name: int((arr == label).sum()) for label, (name, _) in SCAR_LABEL_TABLE.items()}

    def summary_text(self) -> str:
        """%scar, volumes, presence, slices, time and model; the notes on their own lines."""
        s = self.summary
        title = next((m.get("title") for m in self.method_rows if m.get("method") == s.get("method")), s.get("method"))
        pct = s.get("percent_scar")
        if pct is None:
            parts = [f"no LV myocardium found: no %scar ({title})"]
        else:
            parts = [f"%scar {float(pct):.1f} % ({title})",
                     f"myocardium {float(s.get('myocardial_volume_ml') or 0):.1f} mL, scar "
                     f"{float(s.get('scar_volume_ml') or 0):.1f} mL",
                     f"scar {'present' if s.get('scar_present') else 'absent'} "
                     f"(> {float(s.get('scar_present_threshold_percent', 1.0)):g} %)"]
        parts.append(f"{s.get('slices_segmented', 0)}/{s.get('slices_total', 0)} slices quantified"
                     + ("" if s.get("complete", True) else " (partial)"))
        if s.get("seconds") is not None:
            parts.append(f"{float(s['seconds']):.2f} s")
        model = s.get("model") or {}
        if model.get("name"):
            parts.append(f"{model['name']} v{model.get('version', '?')}"
                         + (f" ({model['notice']})" if model.get("notice") else ""))
        return "; ".join(parts) + "".join(f"\n{n}" for n in s.get("notes", []))

    def centres_hint(self) -> str:
        """Which point lists hold the LV centres the result used, and how to correct them ("" when none)."""
        names = [f"'{n.GetName()}'" for n in (self.lge_centres, self.cine_centres) if n is not None]
        if not names:
            return ""
        return (f"LV centres used: {' and '.join(names)} (label = LGE slice); move the points and choose the "
                "lists as LV centres to quantify again with them.")

    def slice_position(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(RAS mm, IJK) of the centre of LGE slice ``index`` (0-based)."""
        from .qcd import slice_position
        return slice_position(self.labels, index)


def _centre_nodes(scene: Any, summary: Mapping[str, Any], labels: Any, cine_grid: Any, name: str) -> tuple[Any, Any]:
    """The LV centres result.json holds (pixels of each image) as two point lists in LPS → RAS:
    the LGE's on its slices, the cine's on the cine slice matched to each LGE slice (only with
    the cine's grid); control point label = LGE slice number."""
    from cmrlib.mrml import markups_node_from_points
    from cmrlib.scar.matching import px_to_lps

    lge_points, lge_labels, cine_points, cine_labels = [], [], [], []
    for s in summary["slices"]:
        k = int(s["index"])
        if s.get("lv_centre_lge_px") is not None:
            lge_points.append(px_to_lps(labels, s["lv_centre_lge_px"], k))
            lge_labels.append(str(k + 1))
        match = s.get("cine") or {}
        if cine_grid is not None and s.get("lv_centre_cine_px") is not None and match.get("cine_slice") is not None:
            cine_points.append(px_to_lps(cine_grid, s["lv_centre_cine_px"], int(match["cine_slice"])))
            cine_labels.append(str(k + 1))
    lge_node = markups_node_from_points(scene, np.array(lge_points), lge_labels, f"{name} {LGE_CENTRES}") \
        if lge_points else None
    cine_node = markups_node_from_points(scene, np.array(cine_points), cine_labels, f"{name} {CINE_CENTRES}") \
        if cine_points else None
    return lge_node, cine_node


def cine_grid(node: Any) -> Any:
    """The spatial grid (:class:`cmrlib.Image` of its first frame) of a cine sequence node."""
    from cmrlib.mrml import image_from_volume_node

    data = node.GetNthDataNode(0) if node is not None and node.IsA("vtkMRMLSequenceNode") else None
    if data is None or not data.IsA("vtkMRMLScalarVolumeNode"):
        raise InputError(f"'{node.GetName() if node is not None else None}' is not a cine sequence of volumes")
    return image_from_volume_node(data)


def outputs_to_nodes(scene: Any, outputs: Mapping[str, Any], name: str = "", *, lge: Any = None,
                     cine: Any = None) -> ScarOutputs:
    """The scar adapter (``Capability.adapter``): nodes from the dict that
    ``cmrlib.scar.outputs.read_result`` returns (``labels``, ``cine_aligned``, ``segments``:
    Images on the LGE grid; ``summary``: result.json; ``slices`` / ``methods``: the CSV rows).
    Node names start with ``name`` (default: the LGE series, else "Scar"). With ``lge`` (the
    LGE's volume node) the segmentation takes its reference geometry and the views show the
    result (:func:`show_scar`); with ``cine`` (the cine sequence node the result was made from)
    the cine LV centres become a point list too. A broken result adds nothing."""
    from cmrlib.mrml import segmentation_node_from_labels, table_node_from_rows, volume_node_from_image

    from .landmarks_live import aha_colour_table

    missing = [k for k in RESULT_KEYS if outputs.get(k) is None]
    if missing or "slices" not in outputs["summary"]:
        raise InputError("the `cmr scar` result lacks " + (", ".join(missing) or "result.json's slices"))
    labels, summary = outputs["labels"], dict(outputs["summary"])
    shape = labels.spatial_shape
    n = shape[0]
    if len(summary["slices"]) != n or len(outputs["slices"]) != n:
        raise InputError(f"result.json lists {len(summary['slices'])} slice(s) and slices.csv "
                         f"{len(outputs['slices'])}, but labels.nrrd has {n}")
    for key, file in (("cine_aligned", "cine_aligned.nrrd"), ("segments", "aha_segments.nrrd")):
        if outputs.get(key) is not None and outputs[key].spatial_shape != shape:
            raise InputError(f"{file} {outputs[key].spatial_shape} is not on labels.nrrd's grid {shape}")
    arr = np.asarray(labels.array).reshape(shape)
    if not set(np.unique(arr).tolist()) <= {0, *SCAR_LABEL_TABLE}:
        raise InputError(f"labels.nrrd holds labels {sorted(set(np.unique(arr).tolist()) - {0, 1, 2})} beyond "
                         "0 background, 1 myocardium, 2 scar")
    # before any node: a broken result adds nothing to the scene
    slice_rows, method_rows = typed_rows(outputs["slices"]), typed_rows(outputs["methods"])
    segment_rows = [{k: r[k] for k in ("segment", "percent_scar", "myocardium_ml", "scar_ml")}
                    for r in summary.get("segments") or []]
    grid = cine_grid(cine) if cine is not None else None
    name = name or str(summary.get("series") or "Scar")
    method = str(summary.get("method", ""))
    seg = segmentation_node_from_labels(scene, arr.astype(np.uint8), labels, SCAR_LABEL_TABLE,
                                        f"{name} scar ({method})")
    if lge is not None:
        seg.SetReferenceImageGeometryParameterFromVolumeNode(lge)
    seg.SetAttribute("CMR.method", method)
    cine_node = None
    if outputs.get("cine_aligned") is not None:
        cine_node = volume_node_from_image(scene, outputs["cine_aligned"], f"{name} matched cine")
        _grey(cine_node)
    slice_table = table_node_from_rows(scene, slice_rows, f"{name} scar per slice")
    method_table = table_node_from_rows(scene, method_rows, f"{name} scar methods")
    segment_table = table_node_from_rows(scene, segment_rows, f"{name} scar per AHA segment") if segment_rows else None
    segments = None
    if outputs.get("segments") is not None:
        segments = volume_node_from_image(scene, outputs["segments"], f"{name} AHA segments",
                                          node=scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode"))
        segments.CreateDefaultDisplayNodes()
        segments.GetDisplayNode().SetAndObserveColorNodeID(aha_colour_table(scene).GetID())
    lge_centres, cine_centres = _centre_nodes(scene, summary, labels, grid, name)
    out = ScarOutputs(seg, cine_node, slice_table, method_table, segment_table, segments, lge_centres, cine_centres,
                      labels, summary, list(outputs["slices"]), list(outputs["methods"]))
    if lge is not None:
        show_scar(scene, lge, out)
    return out


def _grey(node: Any) -> None:
    """Grey colour table on a volume's display (window kept)."""
    if node.GetDisplayNode() is None:
        node.CreateDefaultDisplayNodes()
    grey = "vtkMRMLColorTableNodeGrey"
    if node.GetScene() is not None and node.GetScene().GetNodeByID(grey) is not None:
        node.GetDisplayNode().SetAndObserveColorNodeID(grey)


def show_scar(scene: Any, lge: Any, outputs: ScarOutputs) -> int:
    """Every slice view of ``scene`` turned to the LGE's planes, with the LGE (grey) as the
    background — the :data:`CINE_VIEW` view the matched cine instead, when there is one — and
    nothing in the foreground; the segmentation shows over both. Returns how many views were set."""
    _grey(lge)
    for i in range(scene.GetNumberOfNodesByClass("vtkMRMLSliceNode")):
        scene.GetNthNodeByClass(i, "vtkMRMLSliceNode").RotateToVolumePlane(lge)
    n = scene.GetNumberOfNodesByClass("vtkMRMLSliceCompositeNode")
    for i in range(n):
        composite = scene.GetNthNodeByClass(i, "vtkMRMLSliceCompositeNode")
        shown = outputs.cine if outputs.cine is not None and composite.GetLayoutName() == CINE_VIEW else lge
        composite.SetBackgroundVolumeID(shown.GetID())
        composite.SetForegroundVolumeID(None)
    display = outputs.segmentation.GetDisplayNode()
    if display is not None:
        display.SetVisibility(True)
    return n


# ---- example data (self-tests and tests) -------------------------------------------------------
def phantom_scar_nodes(scene: Any, seed: int = 31, slices: tuple[int, ...] = (3, 4, 5)) -> dict[str, Any]:
    """A phantom LGE stack with an ischaemic scar and its cine as the panel takes them: ``lge``
    (scalar volume, oblique short axis), ``cine`` (sequence, TriggerTime per frame), ``mask``
    (the true myocardium as a label map: 1 myocardium, 2 blood pool, 3 scar), ``segments`` (AHA
    label map on the LGE grid), and the ``stack`` (:class:`cmrlib.scar.data.ScarStack`)."""
    from cmrlib.mrml import sequence_node_from_image, volume_node_from_image
    from cmrlib.scar.data import phantom_stack

    stack = phantom_stack(seed, scar="ischemic", slices=slices)
    nodes = {"stack": stack,
             "lge": volume_node_from_image(scene, stack.lge, f"phantom {seed} LGE"),
             "cine": sequence_node_from_image(scene, stack.cine, f"phantom {seed} cine")}
    for key, image in (("mask", stack.truth_mask()), ("segments", stack.aha)):
        nodes[key] = volume_node_from_image(scene, image, f"phantom {seed} {key}",
                                            node=scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode"))
    return nodes

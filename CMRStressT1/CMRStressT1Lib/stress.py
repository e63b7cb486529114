"""CMRStressT1's stress adapter (Qt-free): MRML nodes in → `cmr stress` worker arguments → result nodes.

* :func:`stress_arguments`: the rest and stress T1 maps (scalar volumes), the rest map's
  myocardium (label map or segmentation), the optional stress mask and AHA segment map written
  as NRRD into a work folder, and the `cmr stress` arguments (``cmrlib/stress/cli.py``) for
  the worker. Every input is checked before the first file is written.
* :func:`outputs_to_nodes` (the record's ``adapter``): the dict that
  ``cmrlib.stress.outputs.read_result`` returns becomes the registered stress map (grey), the
  dT1 map (%) in a diverging colour table (:func:`dt1_colour_table`: blue negative, white 0,
  red positive; window :func:`display_range`, −12…+12 %) with a colour legend, the myocardium it was
  averaged in (label map), and the per-slice and per-AHA-segment table nodes whose values are
  result.json's.
* :func:`show_over_rest`: the dT1 map as the foreground over the grey rest map in every slice
  view, the views turned to the rest map's planes.

Only the myocardium shows: the dT1 map node holds dT1 inside ``myocardium.nrrd`` and
:data:`OUTSIDE` (−1000, below the pipeline's ±100 % clip) elsewhere, and its display node
thresholds at ±100 %, so the volume display pipeline gives the pixels outside the myocardium
zero alpha. A threshold on 0 (the file's value where the rest map has no signal) would also
hide myocardial pixels whose dT1 is exactly 0, and Slicer's slice views have no label-map mask
for a foreground volume; ``dt1_map.nrrd`` keeps the whole field. Method card: docs/methods/dt1.md.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from cmrlib.errors import InputError

#: File names of the worker's inputs in the work folder.
REST_INPUT, STRESS_INPUT, REST_MASK_INPUT, STRESS_MASK_INPUT, SEGMENTS_INPUT = (
    "rest_t1.nrrd", "stress_t1.nrrd", "rest_mask.nrrd", "stress_mask.nrrd", "aha_segments.nrrd")
#: Name of the diverging colour table of the dT1 maps (one per scene, made on first use).
COLOUR_TABLE_NAME = "CMR dT1 diverging"
#: Entries of that table: odd, so that the middle entry (dT1 0) is exactly white.
N_COLOURS = 255
#: dT1 value of the display node outside the myocardium, hidden by the threshold.
OUTSIDE = -1000.0
#: The pipeline clips dT1 to ±100 %: the display threshold keeps exactly that range.
DT1_LIMIT = 100.0
#: Columns of the table nodes (and the panel's tables).
SLICE_COLUMNS = ("slice", "dT1 mean (%)", "dT1 sd (%)", "pixels", "through-plane distance (mm)", "mask QC",
                 "map quality")
SEGMENT_COLUMNS = ("segment", "name", "dT1 mean (%)", "dT1 sd (%)", "pixels")
QC_PASSED, QC_FAILED = "passed", "failed"
#: Keys of the reader's dict the adapter needs.
RESULT_KEYS = ("registered", "dt1", "myocardium", "summary")


def display_range() -> tuple[float, float]:
    """dT1 window of the overlays (%): the report figure's (``cmrlib.stress.outputs.DISPLAY_RANGE``)."""
    from cmrlib.stress.outputs import DISPLAY_RANGE
    return DISPLAY_RANGE


def default_method() -> str:
    """The method `cmr stress` uses when none is given: swin when its weights
    (``dt1-swin-compact``) are installed, else classical."""
    from cmrlib.stress.pipeline import choose_method
    return choose_method(None)[0]


def method_available(method: str) -> bool:
    """Whether ``method`` can run here: a network needs its installed weights."""
    from cmrlib.models.zoo import model_installed
    from cmrlib.stress.pipeline import MODEL_NAMES
    return method not in MODEL_NAMES or model_installed(MODEL_NAMES[method])


# ---- the inputs --------------------------------------------------------------------------------
def map_image(node: Any, what: str) -> Any:
    """The :class:`cmrlib.Image` of a T1 map volume node (``what``: "rest" / "stress")."""
    from cmrlib.mrml import image_from_volume_node

    if node is None:
        raise InputError(f"choose the {what} T1 map (a T1-map volume loaded by the study loader, or any scalar "
                         "volume in ms)")
    if not node.IsA("vtkMRMLScalarVolumeNode") or node.IsA("vtkMRMLLabelMapVolumeNode"):
        raise InputError(f"'{node.GetName()}' is a {node.GetClassName()}; the {what} T1 map must be a scalar volume")
    image = image_from_volume_node(node)
    image.meta.setdefault("SeriesDescription", node.GetName())
    return image


def stress_arguments(rest: Any, stress: Any, rest_mask: Any, folder: str | Path, out_dir: str | Path, *,
                     stress_mask: Any = None, segments: Any = None, method: str | None = None,
                     reverse: bool = False, force: bool = False) -> list[str]:
    """Write the worker's inputs into ``folder`` and return the `cmr stress` arguments (progress
    as CMR-PROGRESS lines; the panel adds the device, ``CMRCommonLib.runner.worker_command``);
    ``out_dir`` must lie outside ``folder``.

    ``rest`` / ``stress``: T1 map volume nodes (ms); ``rest_mask`` / ``stress_mask``: label map
    (1 myocardium, 2 blood pool, 3 scar) or segmentation ("Myocardium", "Blood pool" segments,
    e.g. the QCD result) nodes, each written on its map's grid; ``segments``: an AHA segment
    label map (the Landmarks result), written on the rest grid. ``method`` None: the CLI's
    default (:func:`default_method`). A mask's QC failure (QCD's failed slices) goes into the
    mask file's header and — because `cmr stress` builds the mask image with its map's header —
    into the map file's, so result.json flags those slices.

    Raises InputError, writing nothing, for a missing or wrong node, a mask without
    myocardium, ``reverse`` without a stress mask, an unknown method, a map that does not
    look like a T1 map, or ``out_dir`` inside ``folder``.
    """
    from cmrlib.atomic import check_output_folder
    from cmrlib.io import write_image
    from cmrlib.stress.infer import METHODS
    from cmrlib.stress.pipeline import check_t1_map

    from CMRSegmentationLib.landmarks import aha_segments_on_grid
    from CMRSegmentationLib.landmarks_live import mask_image  # a mask node read as the Landmarks section reads it

    if method is not None and method not in METHODS:
        raise InputError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    check_output_folder(folder, out_dir)  # `cmr stress` refuses an output inside its inputs' folder
    rest_image, stress_image = map_image(rest, "rest"), map_image(stress, "stress")
    if rest_mask is None:
        raise InputError("dT1 is averaged inside the rest map's myocardium: choose its mask (a label map or a "
                         "segmentation with a 'Myocardium' segment, e.g. the QCD result)")
    if reverse and stress_mask is None:
        raise InputError("Reverse registers the rest map to the stress map: choose the stress map's myocardium "
                         "mask too")
    rest_labels, rest_failed = mask_image(rest_mask, rest_image, "rest")
    stress_labels, stress_failed = mask_image(stress_mask, stress_image, "stress") if stress_mask is not None \
        else (None, [])
    check_t1_map(rest_image, np.isin(rest_labels.array, (1, 3)), "rest")
    check_t1_map(stress_image, None if stress_labels is None else np.isin(stress_labels.array, (1, 3)), "stress")
    aha = aha_segments_on_grid(segments, rest_image, "the rest map") if segments is not None else None
    # everything is checked: now the files
    for image, failed in ((rest_image, rest_failed), (stress_image, stress_failed)):
        if failed:
            image.meta["qc_failed_slices"] = failed
    folder = Path(folder)
    args = ["stress", "--rest", str(write_image(rest_image, folder / REST_INPUT)),
            "--stress", str(write_image(stress_image, folder / STRESS_INPUT)), "--out", str(out_dir),
            "--mask", str(write_image(rest_labels, folder / REST_MASK_INPUT))]
    if stress_labels is not None:
        args += ["--stress-mask", str(write_image(stress_labels, folder / STRESS_MASK_INPUT))]
    if aha is not None:
        args += ["--segments", str(write_image(aha, folder / SEGMENTS_INPUT))]
    if method is not None:
        args += ["--method", method]
    if reverse:
        args.append("--reverse")
    if force:
        args.append("--force")
    return args + ["--progress-lines"]


# ---- the result --------------------------------------------------------------------------------
def slice_rows(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per rest slice of result.json (:data:`SLICE_COLUMNS`; slice 1-based, mask QC and
    map quality "passed" / "failed", None where a slice has no value)."""
    return [{"slice": int(s["index"]) + 1, "dT1 mean (%)": s["dt1_percent"], "dT1 sd (%)": s["dt1_sd_percent"],
             "pixels": int(s["n_pixels"]), "through-plane distance (mm)": float(s["distance_mm"]),
             "mask QC": QC_FAILED if s["mask_qc_failed"] else QC_PASSED,
             "map quality": QC_FAILED if s.get("map_qc_failed") else QC_PASSED} for s in summary["slices"]]


def segment_rows(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per AHA segment of result.json's ``segment_stats`` (:data:`SEGMENT_COLUMNS`)."""
    return [{"segment": int(s["segment"]), "name": str(s["name"]), "dT1 mean (%)": s["mean"], "dT1 sd (%)": s["sd"],
             "pixels": int(s["n_pixels"])} for s in summary.get("segment_stats") or []]


def table_cells(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> list[list[str]]:
    """The panel's text per row and column: numbers with two decimals, whole numbers as they
    are, "–" where there is no value."""
    def text(value: Any) -> str:
        if value is None:
            return "–"
        if isinstance(value, float):
            return f"{value:.2f}"
        return str(value)
    return [[text(row.get(c)) for c in columns] for row in rows]


def dt1_colour_table(scene: Any) -> Any:
    """The scene's diverging dT1 colour table (:data:`COLOUR_TABLE_NAME`): :data:`N_COLOURS`
    entries from blue (lowest) through white (the middle, dT1 0 in a window symmetric about 0)
    to red (highest); made once per scene."""
    from cmrlib.mrml import add_new_node

    existing = scene.GetNodesByClassByName("vtkMRMLColorTableNode", COLOUR_TABLE_NAME)
    if existing.GetNumberOfItems():
        return existing.GetItemAsObject(0)
    node = add_new_node(scene, "vtkMRMLColorTableNode", COLOUR_TABLE_NAME)
    node.SetTypeToUser()
    node.SetNumberOfColors(N_COLOURS)
    half = (N_COLOURS - 1) / 2
    for i in range(N_COLOURS):
        t = (i - half) / half  # -1 blue … 0 white … +1 red
        rgb = (1.0 + t, 1.0 + t, 1.0) if t < 0 else (1.0, 1.0 - t, 1.0 - t)
        node.SetColor(i, "", *rgb, 1.0)
    node.SetAttribute("CMR.description", "dT1 (%): blue lower, white 0, red higher T1 under stress")
    return node


def _display(node: Any) -> Any:
    if node.GetDisplayNode() is None:
        node.CreateDefaultDisplayNodes()
    return node.GetDisplayNode()


def _grey(node: Any) -> None:
    """Grey colour table on a volume's display (window kept)."""
    grey = "vtkMRMLColorTableNodeGrey"
    if node.GetScene() is not None and node.GetScene().GetNodeByID(grey) is not None:
        _display(node).SetAndObserveColorNodeID(grey)


def show_dt1(node: Any, colours: Any) -> Any:
    """dT1 display of ``node``: the diverging table, the window :func:`display_range`, the
    threshold ±:data:`DT1_LIMIT` (hides :data:`OUTSIDE`) and a colour legend (a colour legend
    display node, which slicer-core has too); returns the legend display node."""
    from cmrlib.mrml import add_new_node

    low, high = display_range()
    display = _display(node)
    display.SetAndObserveColorNodeID(colours.GetID())
    display.AutoWindowLevelOff()
    display.SetWindowLevelMinMax(low, high)
    display.AutoThresholdOff()
    display.SetLowerThreshold(-DT1_LIMIT)
    display.SetUpperThreshold(DT1_LIMIT)
    display.SetApplyThreshold(1)
    legend = add_new_node(node.GetScene(), "vtkMRMLColorLegendDisplayNode", f"{node.GetName()} legend")
    node.AddAndObserveDisplayNodeID(legend.GetID())
    legend.SetAndObservePrimaryDisplayNode(display)
    legend.SetTitleText("dT1 (%)")
    legend.SetLabelFormat("%+.0f")
    legend.SetNumberOfLabels(5)
    legend.SetScalarRangeFlagFromString("UseManual")
    legend.SetScalarRange(low, high)
    legend.SetVisibility(True)
    return legend


def legend_text() -> str:
    """The colour range in words (the panel's legend line)."""
    low, high = display_range()
    return (f"dT1 colours: blue {low:+.0f} % … white 0 … red {high:+.0f} % (myocardium only; "
            "beyond the range: the end colour)")


@dataclass
class StressOutputs:
    """Nodes made from one `cmr stress` result: the registered stress map, the dT1 map (display
    over the rest map, only the myocardium), the myocardium label map, the per-slice table and
    (with AHA segments) the per-segment table, the colour table and legend; ``bullseye``: the
    bull's-eye PNG (set by the loading function, which knows the folder)."""

    registered: Any
    dt1: Any
    myocardium: Any
    slice_table: Any
    segment_table: Any
    colours: Any
    legend: Any
    summary: dict
    slice_rows: list[dict[str, Any]] = field(default_factory=list)
    segment_rows: list[dict[str, Any]] = field(default_factory=list)
    bullseye: Path | None = None

    def nodes(self) -> dict[str, Any]:
        names = ("registered", "dt1", "myocardium", "slice_table", "segment_table", "colours", "legend")
        return {k: getattr(self, k) for k in names if getattr(self, k) is not None}

    @property
    def mask_qc_failed_slices(self) -> list[int]:
        """0-based rest slices whose mask failed its QC."""
        return [int(k) for k in self.summary.get("mask_qc_failed_slices") or []]

    def qc_warning(self) -> str:
        """The result's notes on the mask's QC and the maps' quality ("" when both passed): for the
        status line."""
        notes = [n for n in self.summary.get("notes", []) if "QC" in n or n.startswith("map quality")]
        if not notes and self.mask_qc_failed_slices:
            notes = ["the myocardium mask failed QC on slice(s) "
                     + ", ".join(str(k + 1) for k in self.mask_qc_failed_slices)]
        return "; ".join(notes)

    def summary_text(self) -> str:
        s = self.summary
        values = ", ".join("–" if v is None else f"{v:+.2f}" for v in s.get("dt1_slice_percent", []))
        parts = [f"dT1 per slice: {values} % ({s.get('method', '?')}"
                 + (", reversed pair" if s.get("reversed") else "") + ")"]
        if s.get("dice_before") is not None and s.get("dice_after") is not None:
            parts.append(f"myocardial Dice {s['dice_before']:.2f} → {s['dice_after']:.2f}")
        if s.get("seconds") is not None:
            parts.append(f"{float(s['seconds']):.2f} s")
        if s.get("model"):
            parts.append(f"{s['model']} v{s.get('model_version', '?')}"
                         + (f" ({s['model_notice']})" if s.get("model_notice") else ""))
        return "; ".join(parts) + "".join(f"\n{n}" for n in s.get("notes", []))


def outputs_to_nodes(scene: Any, outputs: Mapping[str, Any], name: str = "", *, rest: Any = None) -> StressOutputs:
    """The CMRStressT1 adapter (``Capability.adapter``): nodes from the dict that
    ``cmrlib.stress.outputs.read_result`` returns (``registered``, ``dt1``, ``myocardium``:
    Images on the rest grid; ``summary``: result.json). Node names start with ``name``
    (default: the rest series, else "Stress"). With ``rest`` (the rest map's volume node) the
    dT1 map is shown over it (:func:`show_over_rest`). A broken result adds nothing."""
    from cmrlib.mrml import table_node_from_rows, volume_node_from_image

    missing = [k for k in RESULT_KEYS if outputs.get(k) is None]
    if missing or "slices" not in outputs["summary"]:
        raise InputError("the `cmr stress` result lacks " + (", ".join(missing) or "result.json's slices"))
    summary = dict(outputs["summary"])
    dt1, myo = outputs["dt1"], outputs["myocardium"]
    n = dt1.spatial_shape[0]
    if len(summary["slices"]) != n:
        raise InputError(f"result.json lists {len(summary['slices'])} slice(s) but dt1_map.nrrd has {n}")
    if myo.spatial_shape != dt1.spatial_shape:
        raise InputError(f"myocardium.nrrd {myo.spatial_shape} is not on dt1_map.nrrd's grid {dt1.spatial_shape}")
    rows, seg_rows = slice_rows(summary), segment_rows(summary)  # before any node
    name = name or str((summary.get("series") or {}).get("rest") or "Stress")
    inside = np.asarray(myo.array).reshape(dt1.spatial_shape) > 0
    shown = dt1.with_array(np.where(inside, np.asarray(dt1.array, np.float32), np.float32(OUTSIDE)),
                           is_sequence=False)
    shown.meta["outside_myocardium"] = OUTSIDE
    registered = volume_node_from_image(scene, outputs["registered"], f"{name} stress T1 registered")
    _grey(registered)
    dt1_node = volume_node_from_image(scene, shown, f"{name} dT1 (%)")
    colours = dt1_colour_table(scene)
    legend = show_dt1(dt1_node, colours)
    myo_node = volume_node_from_image(scene, myo, f"{name} dT1 myocardium",
                                      node=scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode"))
    slice_table = table_node_from_rows(scene, rows, f"{name} dT1 per slice")
    segment_table = table_node_from_rows(scene, seg_rows, f"{name} dT1 per AHA segment") if seg_rows else None
    out = StressOutputs(registered, dt1_node, myo_node, slice_table, segment_table, colours, legend, summary, rows,
                        seg_rows)
    if rest is not None:
        show_over_rest(scene, rest, dt1_node)
    return out


def show_over_rest(scene: Any, rest: Any, dt1: Any) -> int:
    """Every slice view of ``scene``: ``rest`` (grey) as the background, ``dt1`` as the opaque
    foreground (the threshold leaves the myocardium only), turned to the rest map's planes;
    returns how many views were set."""
    _grey(rest)
    for i in range(scene.GetNumberOfNodesByClass("vtkMRMLSliceNode")):
        scene.GetNthNodeByClass(i, "vtkMRMLSliceNode").RotateToVolumePlane(rest)
    n = scene.GetNumberOfNodesByClass("vtkMRMLSliceCompositeNode")
    for i in range(n):
        composite = scene.GetNthNodeByClass(i, "vtkMRMLSliceCompositeNode")
        composite.SetBackgroundVolumeID(rest.GetID())
        composite.SetForegroundVolumeID(dt1.GetID())
        composite.SetForegroundOpacity(1.0)
    return n


# ---- example data (self-tests and tests) -------------------------------------------------------
#: LPS origin (mm) of the example pair's grid.
EXAMPLE_ORIGIN = (-61.5, -103.25, 38.0)


def example_direction() -> np.ndarray:
    """The example pair's double-oblique short-axis orientation (LPS direction columns)."""
    from scipy.spatial.transform import Rotation
    return Rotation.from_euler("zyx", [-35.0, 20.0, 50.0], degrees=True).as_matrix()


def phantom_pair_nodes(scene: Any, seed: int = 31, position: str = "mid") -> dict[str, Any]:
    """A phantom rest / stress T1 map pair (misregistered, one slice) as the panel takes it:
    ``rest`` / ``stress`` T1 map volumes, ``rest_mask`` (a segmentation "Myocardium" / "Blood
    pool"), ``stress_mask`` (a label map), ``segments`` (AHA label map on the rest grid), and
    the ``pair`` (:class:`cmrlib.stress.data.MapPair`) they were made from."""
    from cmrlib.image import Image
    from cmrlib.mrml import segmentation_node_from_labels, volume_node_from_image
    from cmrlib.stress.data import phantom_pairs
    from cmrlib.stress.evaluate import pair_images

    pair = phantom_pairs([seed], positions=(position,))[0]
    images = pair_images(pair)
    # both maps on one double-oblique short-axis grid (LPS), so that RAS conversions are exercised
    rest, stress = (Image(images[k].array, images[k].spacing, EXAMPLE_ORIGIN, example_direction(), False,
                          dict(images[k].meta)) for k in ("rest", "stress"))

    def contract(labels):  # the phantom adds structures above the data contract's labels
        return np.where(np.isin(labels, (1, 2, 3)), labels, 0).astype(np.uint8)

    nodes = {"pair": pair,
             "rest": volume_node_from_image(scene, rest, f"{pair.name} rest T1"),
             "stress": volume_node_from_image(scene, stress, f"{pair.name} stress T1"),
             "rest_mask": segmentation_node_from_labels(
                 scene, contract(images["rest_mask"]), rest,
                 {1: ("Myocardium", (0.85, 0.22, 0.17)), 2: ("Blood pool", (0.98, 0.84, 0.26)),
                  3: ("Scar", (1.0, 1.0, 1.0))}, f"{pair.name} rest myocardium")}
    for key, labels, grid in (("stress_mask", contract(images["stress_mask"]), stress),
                              ("segments", images["segments"], rest)):
        nodes[key] = volume_node_from_image(scene, grid.with_array(np.asarray(labels).astype(np.int16)),
                                            f"{pair.name} {key.replace('_', ' ')}",
                                            node=scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode"))
    return nodes

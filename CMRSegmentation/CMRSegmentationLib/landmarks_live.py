"""CMRSegmentation's live AHA segments (Qt-free): editable landmark point lists → AHA segment map,
per-segment statistics and bull's-eye, recomputed when a point moves.

* :class:`LiveSegments` reads the image volume and the myocardium mask once (a label-map volume:
  1 myocardium, 2 blood pool, 3 scar, a binary map counts as myocardium; or a segmentation whose
  segments are named like "Myocardium" / "Scar" / "Blood pool", as ``cmrlib.io.masks`` reads a
  ``.seg.nrrd``), then :meth:`~LiveSegments.recompute` reads the point lists (one per slice,
  control points "LV centre" and "RV insertion" in RAS, as ``CMRSegmentationLib/landmarks.py``
  makes them), turns them into the image's ``[column, row]`` pixels (LPS through
  ``cmrlib.mrml``), and calls ``cmrlib.aha`` (``aha_volume``, levels by thirds of the stack as
  `cmr landmarks` does — ``cmrlib.landmarks.pipeline.aha_levels`` — or one given level,
  ``segment_stats``, ``bullseye``). It updates the AHA label-map node in place (colour table
  :func:`aha_colour_table`: "AHA 1 basal anterior" …), a table node (segment, name, mean,
  median, pixels) and a bull's-eye PNG of the per-segment medians (T1 maps, ms) or means.
  A slice whose points are missing, outside the image, or whose mask has no myocardium gets no
  segments and a reason.
* :class:`PointObserver`: plain VTK observers on the point lists that call the recompute when a
  point moves (while a point is dragged the segments follow at once and the bull's-eye waits for
  the release); :meth:`PointObserver.remove` takes every observer off again.

:func:`recompute_segments` is the one-call form. Method card: docs/methods/landmarks.md.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from cmrlib.errors import CMRError, InputError

from .landmarks import LV_LABEL, RV_LABEL, SLICE_ATTRIBUTE

#: Name of the colour table node of the AHA segment map (one per scene, made on first use).
COLOUR_TABLE_NAME = "CMR AHA segments"
#: 17 distinct colours (0..1): basal warm, mid green / blue, apical purple / pink, apex dark grey.
AHA_COLOURS: dict[int, tuple[float, float, float]] = {
    1: (0.90, 0.10, 0.10), 2: (1.00, 0.50, 0.00), 3: (1.00, 0.85, 0.00), 4: (0.60, 0.35, 0.10),
    5: (0.95, 0.55, 0.60), 6: (0.70, 0.00, 0.30),
    7: (0.20, 0.70, 0.20), 8: (0.55, 0.90, 0.30), 9: (0.00, 0.55, 0.55), 10: (0.30, 0.80, 0.90),
    11: (0.10, 0.30, 0.85), 12: (0.50, 0.60, 1.00),
    13: (0.55, 0.20, 0.75), 14: (0.85, 0.50, 0.95), 15: (1.00, 0.30, 0.80), 16: (0.40, 0.10, 0.40),
    17: (0.35, 0.35, 0.35),
}
#: Columns of the per-segment table (the panel's table widget; the table node adds units).
TABLE_COLUMNS = ("segment", "name", "mean", "median", "pixels")
#: Smallest distance (mm) between the two points of a slice that gives an angular reference.
MIN_POINT_DISTANCE_MM = 1.0


def colour_name(segment: int) -> str:
    """Colour-table entry name of an AHA segment, e.g. "AHA 1 basal anterior"."""
    from cmrlib.aha import SEGMENT_NAMES
    return f"AHA {segment} {SEGMENT_NAMES[segment]}"


def aha_colour_table(scene: Any) -> Any:
    """The scene's colour table of AHA segments (:data:`COLOUR_TABLE_NAME`): entry 0 transparent
    background, 1–17 named :func:`colour_name` in :data:`AHA_COLOURS`; made once per scene."""
    from cmrlib.mrml import add_new_node
    existing = scene.GetNodesByClassByName("vtkMRMLColorTableNode", COLOUR_TABLE_NAME)
    if existing.GetNumberOfItems():
        return existing.GetItemAsObject(0)
    node = add_new_node(scene, "vtkMRMLColorTableNode", COLOUR_TABLE_NAME)
    node.SetTypeToUser()
    node.SetNumberOfColors(18)
    node.SetColor(0, "background", 0.0, 0.0, 0.0, 0.0)
    for k, (r, g, b) in AHA_COLOURS.items():
        node.SetColor(k, colour_name(k), r, g, b, 1.0)
    return node


# ---- the mask ----------------------------------------------------------------------------------
def mask_labels(mask: Any, image: Any) -> np.ndarray:
    """The myocardium mask as labels on ``image``'s grid (uint8 ``[slice, row, col]``).

    ``mask``: a label-map (or scalar) volume node — its values as they are (1 myocardium,
    2 blood pool, 3 scar; another grid is resampled, nearest neighbour) — or a segmentation
    node: segments named like myocardium / scar → 1, like blood pool → 2
    (``cmrlib.io.masks.SEGMENT_NAME_LABELS``; myocardium wins an overlap). InputError when the
    node is neither or holds no myocardium on the grid.
    """
    from cmrlib.io.masks import SEGMENT_NAME_LABELS
    from cmrlib.mrml import image_from_volume_node, labels_from_segmentation_node

    if mask is None:
        raise InputError("choose a mask (a label map or a segmentation with a 'Myocardium' segment): "
                         "AHA segments need the myocardium")
    if mask.IsA("vtkMRMLSegmentationNode"):
        segmentation = mask.GetSegmentation()
        out = np.zeros(image.spatial_shape, np.uint8)
        names = []
        for i in range(segmentation.GetNumberOfSegments()):
            name = segmentation.GetNthSegment(i).GetName()
            names.append(name)
            label = next((lab for key, lab in SEGMENT_NAME_LABELS if key in name.lower()), 0)
            if not label:
                continue
            part = labels_from_segmentation_node(mask, image, {1: (name, (1.0, 0.0, 0.0))}) == 1
            out[part & ((out == 0) | (label == 1))] = label
        if not (out == 1).any():
            raise InputError(f"segmentation '{mask.GetName()}' has no myocardium on the image grid (segments: "
                             f"{', '.join(names) or 'none'}); name the myocardium segment 'Myocardium'")
        return out
    if mask.IsA("vtkMRMLScalarVolumeNode"):
        from cmrlib.landmarks.pipeline import labels_on_grid
        lab_image = image_from_volume_node(mask)
        arr = np.asarray(lab_image.array)
        if not np.all(np.isfinite(arr)) or np.any(arr < 0) or np.any(arr != np.round(arr)):
            raise InputError(f"'{mask.GetName()}' is not a label map (labels are whole numbers >= 0)")
        labels, _ = labels_on_grid(lab_image, image)
        labels = np.asarray(labels)
        if not myocardium_and_cavity(labels)[0].any():
            raise InputError(f"label map '{mask.GetName()}' has no myocardium (label 1 or 3) on the image grid")
        return labels.astype(np.uint8) if labels.max() <= 255 else labels.astype(np.uint16)
    raise InputError(f"'{mask.GetName()}' is a {mask.GetClassName()}; the mask must be a label map or a segmentation")


def mask_image(mask: Any, image: Any, what: str) -> tuple[Any, list[int]]:
    """(label :class:`cmrlib.Image` on ``image``'s grid, QC-failed slices) of a mask node, as a
    worker's ``--mask`` file takes it: :func:`mask_labels` (1 myocardium, 2 blood pool, 3 scar)
    with the label table and the 0-based slices on which the mask failed its QC
    (:func:`CMRSegmentationLib.qcd.mask_qc_failed_slices`) in ``meta["qc_failed_slices"]``, which
    the `cmr` commands read from the file's header. ``what`` names the image in the description."""
    from cmrlib.image import Image

    from .qcd import mask_qc_failed_slices

    labels = mask_labels(mask, image)
    failed = mask_qc_failed_slices(mask, image.spatial_shape[0])
    meta = {"labels": {"1": "myocardium", "2": "blood pool", "3": "scar"},
            "SeriesDescription": f"{image.meta.get('SeriesDescription', what)} mask ({mask.GetName()})",
            "qc_failed_slices": failed}
    return Image(labels, image.spacing, image.origin, image.direction, False, meta), failed


def myocardium_and_cavity(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(myocardium, blood pool or None) booleans of a label map, as `cmr landmarks` reads a mask:
    a binary map is all myocardium (no cavity known); else labels 1 and 3 are myocardium, 2 the pool."""
    lab = np.asarray(labels)
    if set(np.unique(lab).tolist()) <= {0, 1}:
        return lab != 0, None
    return np.isin(lab, (1, 3)), lab == 2


# ---- the points ---------------------------------------------------------------------------------
def slice_of(node: Any, image: Any) -> int | None:
    """The 0-based slice of ``image`` a point list belongs to: its :data:`SLICE_ATTRIBUTE` when
    set (the adapter sets it), else the slice nearest to its first control point; None when it
    has no points or lies outside the stack."""
    from cmrlib.mrml import points_from_markups_node

    n = image.spatial_shape[0]
    value = node.GetAttribute(SLICE_ATTRIBUTE)
    if value not in (None, ""):
        try:
            k = int(value)
        except ValueError:
            raise InputError(f"point list '{node.GetName()}' has {SLICE_ATTRIBUTE}={value!r}, not a slice number") from None
        return k if 0 <= k < n else None
    lps, _ = points_from_markups_node(node)
    if not len(lps):
        return None
    k = int(round(float(image.lps_to_index(lps[0])[2])))
    return k if 0 <= k < n else None


def _find(labels: list[str], wanted: str) -> int | None:
    key = wanted.lower()
    hits = [i for i, lab in enumerate(labels) if lab.strip().lower() == key]
    return hits[0] if hits else None


def points_px(node: Any, image: Any) -> tuple[list[float] | None, list[float] | None, str | None]:
    """(LV centre, RV insertion, reason) of one point list as ``[column, row]`` pixels of
    ``image`` (the point projected on its slice plane): points found by label (:data:`LV_LABEL`,
    :data:`RV_LABEL`; an unlabelled pair is taken in that order); a point without a defined
    position counts as missing. ``reason`` says why a point is unusable (else None)."""
    from cmrlib.mrml import points_from_markups_node

    lps, labels = points_from_markups_node(node)
    defined = [node.GetNthControlPointPositionStatus(i) == node.PositionDefined for i in range(len(labels))]
    lv_i, rv_i = _find(labels, LV_LABEL), _find(labels, RV_LABEL)
    if lv_i is None and rv_i is None and len(labels) == 2 and not any(s.strip() for s in labels):
        lv_i, rv_i = 0, 1
    out: dict[str, list[float] | None] = {}
    for key, i in (("lv", lv_i), ("rv", rv_i)):
        out[key] = None if i is None or not defined[i] else [float(v) for v in image.lps_to_index(lps[i])[:2]]
    missing = [name for key, name in (("lv", LV_LABEL), ("rv", RV_LABEL)) if out[key] is None]
    if missing:
        return out["lv"], out["rv"], f"no '{' / '.join(missing)}' point in '{node.GetName()}'"
    rows, cols = image.spatial_shape[1:]
    for key, name in (("lv", LV_LABEL), ("rv", RV_LABEL)):
        c, r = out[key]
        if not (-0.5 <= c <= cols - 0.5 and -0.5 <= r <= rows - 0.5):
            return out["lv"], out["rv"], f"the {name} point lies outside the image"
    sc, sr = image.spacing[0], image.spacing[1]
    apart = math.hypot((out["rv"][0] - out["lv"][0]) * sc, (out["rv"][1] - out["lv"][1]) * sr)
    if apart < MIN_POINT_DISTANCE_MM:
        return out["lv"], out["rv"], f"the two points are {apart:.1f} mm apart: no angular reference"
    return out["lv"], out["rv"], None


# ---- the result ---------------------------------------------------------------------------------
@dataclass
class LiveResult:
    """One recompute: ``segments`` (int32 ``[slice, row, col]``, AHA 1–17, 0 elsewhere),
    ``levels`` and ``reasons`` per slice (None where the slice has segments), ``stats``
    (``cmrlib.aha.segment_stats`` rows), the values' ``unit`` and ``statistic`` of the
    bull's-eye, ``bullseye`` (the PNG, None when not drawn), ``seconds`` (the segments and
    statistics) and ``bullseye_seconds``."""

    segments: np.ndarray
    levels: list[str | None]
    reasons: list[str | None]
    lv_px: list[list[float] | None]
    rv_px: list[list[float] | None]
    stats: list[dict]
    unit: str
    statistic: str
    bullseye: Path | None = None
    seconds: float = 0.0
    bullseye_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def rows(self) -> list[dict[str, Any]]:
        """Per-segment rows (:data:`TABLE_COLUMNS`)."""
        return [{"segment": r["segment"], "name": r["name"], "mean": r["mean"], "median": r["median"],
                 "pixels": r["n_pixels"]} for r in self.stats]

    def table_cells(self) -> list[list[str]]:
        """The panel's table: text per row and column, values to one decimal ("–" when none)."""
        def fmt(v: Any) -> str:
            return "–" if v is None else f"{v:.1f}" if isinstance(v, float) else str(v)
        return [[fmt(row[c]) for c in TABLE_COLUMNS] for row in self.rows()]

    def summary_text(self) -> str:
        done = [k for k, r in enumerate(self.reasons) if r is None]
        lines = [f"AHA segments on {len(done)}/{len(self.reasons)} slice(s), {len(self.stats)} segment(s); "
                 f"{self.seconds * 1000:.0f} ms"]
        lines += [f"slice {k + 1}: {r}" for k, r in enumerate(self.reasons) if r is not None]
        return "\n".join(lines + self.notes)


class LiveSegments:
    """AHA segments of ``volume`` (a scalar volume, or a sequence's shown frame) recomputed from
    editable point lists.

    ``mask``: label-map volume or segmentation node (:func:`mask_labels`), read once (call
    :meth:`read_inputs` after editing it). ``points``: the point lists (any order; each one's
    slice from :func:`slice_of`; None entries are ignored). ``level``: the AHA level of every
    slice ("basal", "mid", "apical"; needed for a single slice), default thirds of the stack.
    ``segments_node``: the label-map node to update (made when None, named ``name`` + " AHA
    segments"); ``table_node`` likewise; ``bullseye_path``: the PNG (None: no bull's-eye).
    """

    def __init__(self, scene: Any, volume: Any, mask: Any, points: Iterable[Any] = (), *, level: str | None = None,
                 name: str = "", segments_node: Any = None, table_node: Any = None,
                 bullseye_path: str | Path | None = None, frame: int | None = None) -> None:
        from cmrlib.aha import LEVELS
        if level is not None and level not in LEVELS:
            raise InputError(f"unknown AHA level {level!r}; expected one of {', '.join(LEVELS)}")
        self.scene, self.volume, self.mask, self.level, self.frame = scene, volume, mask, level, frame
        self.name = name or (volume.GetName() if volume is not None else "Landmarks")
        self.points = [p for p in points if p is not None]
        self.segments_node, self.table_node = segments_node, table_node
        self.bullseye_path = Path(bullseye_path) if bullseye_path is not None else None
        self.last: LiveResult | None = None
        self.read_inputs()

    def read_inputs(self) -> None:
        """Read the image and the mask from their nodes (once; again after they changed)."""
        from .qcd import input_image
        image = input_image(self.volume, self.frame)
        if image.spatial_shape[0] < 1:
            raise InputError("the image has no slice")
        labels = mask_labels(self.mask, image)
        self.image = image
        self.myocardium, self.cavity = myocardium_and_cavity(labels)
        self.values = np.asarray(image.array, np.float32).reshape(image.spatial_shape)
        self.kind = image.meta.get("kind")
        self.valid = self.values > 0 if self.kind == "t1map" else None
        self.unit = "ms" if self.kind == "t1map" else str(image.meta.get("units", "") or "")
        from cmrlib.aha import display_sign
        display_sign(image.direction)  # refuse a long-axis image here, not on every point move

    def set_points(self, points: Iterable[Any]) -> None:
        self.points = [p for p in points if p is not None]

    # ---- the computation --------------------------------------------------------------------
    def _points_by_slice(self) -> tuple[list, list, list[str | None], list[str]]:
        n = self.image.spatial_shape[0]
        lv: list = [None] * n
        rv: list = [None] * n
        reasons: list[str | None] = ["no point list (LV centre / RV insertion) for this slice"] * n
        notes, seen = [], {}
        for node in self.points:
            k = slice_of(node, self.image)
            if k is None:
                notes.append(f"point list '{node.GetName()}' lies on no slice of the image: ignored")
                continue
            if k in seen:
                notes.append(f"slice {k + 1} has two point lists ('{seen[k]}', '{node.GetName()}'): the first is used")
                continue
            seen[k] = node.GetName()
            a, b, reason = points_px(node, self.image)
            reasons[k] = reason
            if reason is None:
                lv[k], rv[k] = a, b
        return lv, rv, reasons, notes

    def recompute(self, bullseye: bool = True) -> LiveResult:
        """Segments, statistics, the label-map and table nodes and (``bullseye``) the PNG from
        the points as they are now."""
        from cmrlib.aha import aha_volume, segment_stats
        from cmrlib.landmarks.pipeline import aha_levels
        t0 = time.perf_counter()
        n = self.image.spatial_shape[0]
        lv, rv, reasons, notes = self._points_by_slice()
        have = [r is None for r in reasons]
        for k in range(n):
            if not self.myocardium[k].any():
                reasons[k] = "the mask holds no myocardium in this slice"
                have[k] = False
        levels = aha_levels(self.image, self.myocardium, self.cavity, have, self.level)
        for k in range(n):
            if reasons[k] is None and levels[k] is None:
                reasons[k] = ("the AHA level of a single slice is unknown: choose a level" if sum(have) < 2 else
                              "no AHA level for this slice")
        skipped: list[dict] = []
        seg = aha_volume(self.myocardium, [p if h else None for p, h in zip(lv, have)],
                         [p if h else None for p, h in zip(rv, have)], levels, direction=self.image.direction,
                         spacing=self.image.spacing[:2], skipped=skipped)
        for d in skipped:
            reasons[d["index"]] = reasons[d["index"]] or d["reason"]
        stats = segment_stats(self.values, seg, self.valid)
        statistic = "median" if self.kind == "t1map" else "mean"
        result = LiveResult(seg, [lv_ if r is None else None for lv_, r in zip(levels, reasons)], reasons, lv, rv,
                            stats, self.unit, statistic, notes=notes)
        self._update_nodes(result)
        result.seconds = time.perf_counter() - t0
        if bullseye and self.bullseye_path is not None:
            t1 = time.perf_counter()
            result.bullseye = self.write_bullseye(result)
            result.bullseye_seconds = time.perf_counter() - t1
        elif self.last is not None:
            result.bullseye = self.last.bullseye  # the PNG of an earlier recompute (not refreshed)
        self.last = result
        return result

    def write_bullseye(self, result: LiveResult) -> Path:
        """The bull's-eye PNG of ``result``'s per-segment medians (T1 maps, ms, colour range as
        `cmr landmarks`) or means (other images, their range)."""
        from cmrlib.aha import bullseye
        from cmrlib.landmarks.outputs import t1_bullseye_range
        values = {r["segment"]: r[result.statistic] for r in result.stats}
        if not any(v is not None for v in values.values()):
            values = {}
        vmin = vmax = None
        if self.kind == "t1map":
            vmin, vmax = t1_bullseye_range(values)
        unit = "T1 (ms)" if self.kind == "t1map" else result.unit
        return bullseye(values, self.bullseye_path, title=f"{self.name}: {result.statistic} per AHA segment",
                        unit=unit, vmin=vmin, vmax=vmax)

    def _update_nodes(self, result: LiveResult) -> None:
        from cmrlib.image import Image
        from cmrlib.mrml import add_new_node, table_node_from_rows, volume_node_from_image
        image = self.image
        seg_image = Image(result.segments.astype(np.uint8), image.spacing, image.origin, image.direction, False,
                          {"labels": "AHA segments 1-17", "SeriesDescription": f"{self.name} AHA segments"})
        if self.segments_node is None or self.segments_node.GetScene() is None:
            self.segments_node = add_new_node(self.scene, "vtkMRMLLabelMapVolumeNode", f"{self.name} AHA segments")
        volume_node_from_image(self.scene, seg_image, "", node=self.segments_node)
        display = self.segments_node.GetDisplayNode()
        colours = aha_colour_table(self.scene)
        if display is not None and display.GetColorNodeID() != colours.GetID():
            display.SetAndObserveColorNodeID(colours.GetID())
        unit = f" ({self.unit})" if self.unit else ""
        rows = [{"segment": r["segment"], "name": r["name"], f"mean{unit}": r["mean"], f"median{unit}": r["median"],
                 "pixels": r["pixels"]} for r in result.rows()]
        if self.table_node is not None and self.table_node.GetScene() is None:
            self.table_node = None
        self.table_node = table_node_from_rows(self.scene, rows, "" if self.table_node is not None else
                                               f"{self.name} AHA segment statistics", node=self.table_node)


def recompute_segments(scene: Any, volume: Any, mask: Any, points: Sequence[Any], *, level: str | None = None,
                       segments_node: Any = None, table_node: Any = None, bullseye_path: str | Path | None = None,
                       name: str = "") -> LiveResult:
    """One recompute (:class:`LiveSegments`): AHA segments of ``volume`` from the point lists
    ``points`` and the myocardium of ``mask``; the label map ``segments_node`` (made when None)
    and the bull's-eye PNG ``bullseye_path`` are updated."""
    live = LiveSegments(scene, volume, mask, points, level=level, name=name, segments_node=segments_node,
                        table_node=table_node, bullseye_path=bullseye_path)
    return live.recompute()


# ---- the observer -------------------------------------------------------------------------------
class PointObserver:
    """VTK observers on point lists that call ``on_change(final)`` when a point moves, is added
    or removed: ``final`` is False while a point is dragged (``PointModifiedEvent`` between
    ``PointStartInteractionEvent`` and ``PointEndInteractionEvent``: refresh the segments only)
    and True otherwise (a programmatic move, the release: refresh everything). ``enabled``
    (the panel's "Live update") switches the calls off without removing the observers. An error
    of ``on_change`` (a CMRError) is kept in ``last_error`` and passed to ``on_error``; observers
    must not raise into VTK."""

    EVENTS = ("PointModifiedEvent", "PointAddedEvent", "PointRemovedEvent", "PointStartInteractionEvent",
              "PointEndInteractionEvent")

    def __init__(self, on_change: Callable[[bool], Any], on_error: Callable[[Exception], Any] | None = None) -> None:
        self.on_change, self.on_error = on_change, on_error
        self.enabled = True
        self.last_error: Exception | None = None
        self.calls = 0
        self._tags: list[tuple[Any, int]] = []
        self._dragging: set[str] = set()

    @property
    def nodes(self) -> list[Any]:
        """The observed nodes (each once)."""
        out: list[Any] = []
        for node, _ in self._tags:
            if not any(node is o for o in out):
                out.append(node)
        return out

    def observe(self, nodes: Iterable[Any]) -> None:
        """Observe ``nodes`` (None entries skipped; a node already observed is not added twice)."""
        for node in nodes:
            if node is None or any(node is o for o in self.nodes):
                continue
            for event in self.EVENTS:
                self._tags.append((node, node.AddObserver(getattr(node, event), self._handler(event))))

    def remove(self) -> None:
        """Remove every observer this object added."""
        for node, tag in self._tags:
            node.RemoveObserver(tag)
        self._tags.clear()
        self._dragging.clear()

    cleanup = remove

    def _handler(self, event: str) -> Callable[[Any, Any], None]:
        def handle(caller: Any, _event: Any) -> None:
            key = caller.GetID() or str(id(caller))
            if event == "PointStartInteractionEvent":
                self._dragging.add(key)
                return
            if event == "PointEndInteractionEvent":
                self._dragging.discard(key)
                self._call(True)
                return
            self._call(key not in self._dragging)
        return handle

    def _call(self, final: bool) -> None:
        if not self.enabled:
            return
        self.calls += 1
        try:
            self.on_change(final)
            self.last_error = None
        except CMRError as exc:
            self.last_error = exc
            if self.on_error is not None:
                self.on_error(exc)

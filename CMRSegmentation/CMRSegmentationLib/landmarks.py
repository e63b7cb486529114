"""CMRSegmentation's landmarks adapter (Qt-free): a `cmr landmarks` result folder → MRML nodes.

One markups point list per slice with two control points labelled "LV centre" and
"RV insertion" (the anterior RV insertion point), LPS → RAS through ``cmrlib.mrml``, each
tagged with its slice (:data:`SLICE_ATTRIBUTE`), and the AHA segment map as a label-map
volume. Moving a point recomputes the segments live with
``CMRSegmentationLib/landmarks_live.py`` (the panel wires it to these nodes).
:func:`aha_segments_on_grid` reads such an AHA segment map back onto another image's grid for the
panels that take it as an input (stress, scar). Method card: docs/methods/landmarks.md.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from cmrlib.errors import InputError

LV_LABEL, RV_LABEL = "LV centre", "RV insertion"
#: Attribute of a point list: the 0-based slice of the image it belongs to (the live recompute reads it).
SLICE_ATTRIBUTE = "CMR.slice"


@dataclass
class LandmarkOutputs:
    """Nodes made from one `cmr landmarks` result: ``points[k]`` is slice k's point list (None
    where the slice has no landmarks, ``reasons[k]`` says why); ``segments`` the AHA label map."""

    points: list[Any]
    reasons: list[str | None]
    segments: Any
    summary: dict
    segment_stats: list[dict] = field(default_factory=list)

    def nodes(self) -> dict[str, Any]:
        out = {f"points_{k}": n for k, n in enumerate(self.points) if n is not None}
        if self.segments is not None:
            out["segments"] = self.segments
        return out

    def summary_text(self) -> str:
        found = sum(p is not None for p in self.points)
        model = self.summary.get("model", {})
        return (f"landmarks on {found}/{len(self.points)} slice(s); {model.get('name', '?')} "
                f"v{model.get('version', '?')} ({model.get('notice', '')})")


def outputs_to_nodes(scene: Any, outputs: Mapping[str, Any], name: str = "") -> LandmarkOutputs:
    """The landmarks adapter (``Capability.adapter``): nodes from the dict that
    ``cmrlib.landmarks.outputs.read_result`` returns (``landmarks``, ``summary``, ``segments``,
    ``segment_stats``). Node names start with ``name`` (default: the series)."""
    from cmrlib.mrml import markups_node_from_points, volume_node_from_image
    if "landmarks" not in outputs or "slices" not in outputs["landmarks"]:
        raise InputError("the `cmr landmarks` result lacks landmarks.json's slices")
    doc = outputs["landmarks"]
    name = name or str(doc.get("series") or "Landmarks")
    points, reasons = [], []
    for s in doc["slices"]:
        if s.get("lv_centre_lps") is None or s.get("rv_insertion_lps") is None:
            points.append(None)
            reasons.append(s.get("reason") or "no landmarks")
            continue
        lps = np.array([s["lv_centre_lps"], s["rv_insertion_lps"]], float)
        node = markups_node_from_points(scene, lps, [LV_LABEL, RV_LABEL], f"{name} landmarks slice {s['index'] + 1}")
        node.SetAttribute("CMR.confidence", str(s.get("confidence")))
        node.SetAttribute("CMR.lvPresence", str(s.get("lv_presence")))  # the LV-presence gate's p (None: not run)
        node.SetAttribute(SLICE_ATTRIBUTE, str(int(s["index"])))
        points.append(node)
        reasons.append(None)
    segments = None
    if outputs.get("segments") is not None:
        segments = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", f"{name} AHA segments")
        volume_node_from_image(scene, outputs["segments"], f"{name} AHA segments", node=segments)
    return LandmarkOutputs(points, reasons, segments, dict(outputs.get("summary", {})),
                           list(outputs.get("segment_stats", [])))


def aha_segments_on_grid(node: Any, grid: Any, grid_name: str) -> Any:
    """The AHA segment labels (1–17) of a label map node (e.g. :func:`outputs_to_nodes`'s AHA
    segments) on ``grid`` (a :class:`cmrlib.Image`, nearest neighbour), as a worker's
    ``--segments`` file takes it; ``grid_name`` ("the rest map") says whose grid in the errors.
    InputError for another node class, values that are no AHA segments, or no segment on the grid."""
    from cmrlib.landmarks.pipeline import labels_on_grid
    from cmrlib.mrml import image_from_volume_node

    if not node.IsA("vtkMRMLScalarVolumeNode"):
        raise InputError(f"'{node.GetName()}' is a {node.GetClassName()}; the AHA segments must be a label map "
                         "(e.g. the Landmarks section's AHA segments)")
    try:
        arr, _ = labels_on_grid(image_from_volume_node(node), grid)
    except InputError as exc:
        raise InputError(f"AHA segments '{node.GetName()}': {exc}") from exc
    arr = np.asarray(arr)
    if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)) or arr.min() < 0 or arr.max() > 17:
        raise InputError(f"'{node.GetName()}' is not an AHA segment map (labels 1–17)")
    if not arr.any():
        raise InputError(f"AHA segments '{node.GetName()}' have no segment on {grid_name}'s grid")
    return grid.with_array(arr.astype(np.int16), is_sequence=False)

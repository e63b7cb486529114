"""CMRSegmentation's landmarks adapter (Qt-free): a `cmr landmarks` result folder → MRML nodes.

One markups point list per slice with two control points labelled "LV centre" and
"RV insertion" (the anterior RV insertion point), LPS → RAS through ``cmrlib.mrml``, each
tagged with its slice (:data:`SLICE_ATTRIBUTE`), and the AHA segment map as a label-map
volume. Moving a point recomputes the segments live with
``CMRSegmentationLib/landmarks_live.py`` (the panel wires it to these nodes). Method card:
docs/methods/landmarks.md.
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
        node.SetAttribute(SLICE_ATTRIBUTE, str(int(s["index"])))
        points.append(node)
        reasons.append(None)
    segments = None
    if outputs.get("segments") is not None:
        segments = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", f"{name} AHA segments")
        volume_node_from_image(scene, outputs["segments"], f"{name} AHA segments", node=segments)
    return LandmarkOutputs(points, reasons, segments, dict(outputs.get("summary", {})),
                           list(outputs.get("segment_stats", [])))

"""CMRQuality's labelling adapter (Qt-free): a `cmr label export` folder → a table node.

:func:`outputs_to_nodes` (the record's ``adapter``) turns the dict that
``cmrlib.labelling.outputs.read_result`` returns into the table node "<name> labels": for a
visual-analogue pool one row per scored image (image file, slice from 1, mean score, raters,
class at the card's 25 / 75 and at the pool's own thresholds), for a ranking pool one row per
image of the final ordering (rank, image file, slice from 1, class, rating, views, volatility).
The labelling section of the panel (scoring and ranking in slice views) is not in this version;
the pools are answered with `cmr label`.

Method cards: docs/methods/lge-certainty.md, docs/methods/slice-level.md.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from cmrlib.errors import InputError


@dataclass
class LabellingOutputs:
    """Nodes made from one export: the ``table`` node; ``summary`` is summary.json, ``figure`` the
    Bland–Altman PNG's path (None for a ranking pool or without two raters)."""

    table: Any
    summary: dict
    figure: str | None

    def nodes(self) -> dict[str, Any]:
        return {"table": self.table}


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def table_rows(outputs: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The table's rows (module docstring) from ``read_result``'s ``classes`` rows."""
    summary = outputs["summary"]
    rows = outputs.get("classes") or []
    if summary.get("mode") == "vas":
        return [{"image": r["image"], "slice": int(r["slice"]) + 1, "mean score (0-100)": _number(r["mean_score"]),
                 "raters": int(r["raters"]), "certainty (25 / 75)": r["class"],
                 "certainty (pool thresholds)": r.get("class_derived") or ""} for r in rows]
    return [{"rank": int(r["rank"]), "image": r["image"], "slice": int(r["slice"]) + 1, "level": r["class"],
             "rating (0-3000)": _number(r["rating"]), "views": int(r["views"]),
             "volatility (0-1)": _number(r["volatility"])} for r in rows]


def outputs_to_nodes(scene: Any, outputs: Mapping[str, Any], name: str = "") -> LabellingOutputs:
    """The labelling adapter (``Capability.adapter``): the table node "<name> labels" from the
    export's dict. A broken export adds nothing to the scene."""
    from cmrlib.mrml import table_node_from_rows

    summary = outputs.get("summary")
    if not isinstance(summary, Mapping) or summary.get("mode") not in ("vas", "rank"):
        raise InputError("the `cmr label export` folder lacks a readable summary.json")
    try:
        rows = table_rows(outputs)
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"the `cmr label export` tables are incomplete ({exc})") from None
    table = table_node_from_rows(scene, rows, f"{name or summary.get('pool') or 'pool'} labels")
    return LabellingOutputs(table, dict(summary), outputs.get("figure"))

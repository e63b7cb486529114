"""CMRQuality's labelling logic (Qt-free): the panel's "Labelling" section, and the export adapter.

* :class:`LabellingSession`: one rater answering one pool (a `cmr label create` SQLite file) through
  the engines' one rater loop, :func:`cmrlib.labelling.tasks.next_task` / :func:`~cmrlib.labelling.tasks.answer`
  — the same two calls the CLI and the browser page make, so every answer is committed before the
  call returns and a rater who closes the panel (or Slicer) resumes at the next task. A missing,
  foreign or corrupt file is refused with the engines' one-line message and nothing written. A
  visual-analogue image goes into the scene as the scalar volume node "Labelling image" (reused for
  every image; opaque key only, no geometry of the source) shown in the slice views; a ranking
  batch comes as 8 PNG thumbnails (the browser page's images) the Qt layer turns into icons; the
  cut-point questions after ranking show their image as the scoring does.

:func:`outputs_to_nodes` (the record's ``adapter``) turns the dict that
``cmrlib.labelling.outputs.read_result`` returns into the table node "<name> labels": for a
visual-analogue pool one row per scored image (image file, slice from 1, mean score, raters,
class at the card's 25 / 75 and at the pool's own thresholds), for a ranking pool one row per
image of the final ordering (rank, image file, slice from 1, class, rating, views, volatility).

Method cards: docs/methods/lge-certainty.md, docs/methods/slice-level.md.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

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


# ---- the panel's labelling section ------------------------------------------------------------------
#: Name of the volume node that shows the image to score (one node, refilled for every image).
IMAGE_NODE_NAME = "Labelling image"
#: The class answers of the cut-point questions, as the engines name them (too basal / LV / too apical).
CLASS_CHOICES = ("too basal", "LV", "too apical")


def open_pool(path: str | Path | None) -> Any:
    """The pool at ``path`` (:class:`cmrlib.labelling.pool.Pool`); an empty path, a missing file, a
    file that is not a pool or a corrupt one is refused with the engines' one line, nothing written."""
    from cmrlib.labelling.pool import Pool

    if path is None or not str(path).strip() or str(path).strip() == ".":
        raise InputError("choose a labelling pool (a `cmr label create` .sqlite file)")
    return Pool(Path(str(path).strip()).expanduser())


def image_from_pool(pool: Any, key: str) -> Any:
    """Image ``key`` of ``pool`` as a one-slice :class:`cmrlib.Image` (pixel spacing kept; origin 0
    and identity directions: the pool stores no source geometry a rater should see)."""
    import numpy as np

    from cmrlib.image import Image

    pixels, (col_mm, row_mm) = pool.pixels(key)
    return Image(np.asarray(pixels, np.float32)[None], (float(col_mm), float(row_mm), 1.0),
                 meta={"labelling_image": key})


def show_in_slice_views(scene: Any, node: Any) -> int:
    """Put ``node`` as the background of every slice view of ``scene`` (axial, where the pool's
    image lies) and centre the views on it; returns how many views show it."""
    composite = [scene.GetNthNodeByClass(i, "vtkMRMLSliceCompositeNode")
                 for i in range(scene.GetNumberOfNodesByClass("vtkMRMLSliceCompositeNode"))]
    for c in composite:
        c.SetBackgroundVolumeID(node.GetID())
    from .quality import show_slice

    show_slice(scene, node, 0)
    return len(composite)


class LabellingSession:
    """One rater (``rater``) answering the pool at ``path`` (module docstring). Every method that
    answers goes through :func:`cmrlib.labelling.tasks.answer` and fetches the next task."""

    def __init__(self, path: str | Path | None, rater: str = "") -> None:
        self.pool = open_pool(path)
        self.rater = ""
        self.task = None
        if rater:
            self.start(rater)

    # ---- raters and tasks -------------------------------------------------------------------------
    @property
    def mode(self) -> str:
        return self.pool.mode

    def raters(self) -> list[str]:
        return list(self.pool.raters())

    def add_rater(self, name: str) -> None:
        """Register ``name`` (the engines refuse a name already there or an unusable one)."""
        self.pool.add_raters([str(name).strip()])

    def start(self, rater: str) -> Any:
        """Answer as ``rater`` (registered in the pool; else refused, naming the raters): the next task."""
        from cmrlib.labelling.tasks import next_task

        rater = str(rater).strip()
        if not rater:
            raise InputError(f"type the rater's name (raters of this pool: {', '.join(self.raters()) or 'none yet'})")
        task = next_task(self.pool, rater)
        self.rater, self.task = rater, task
        return task

    def next_task(self) -> Any:
        from cmrlib.labelling.tasks import next_task

        self._require_rater()
        self.task = next_task(self.pool, self.rater)
        return self.task

    def _require_rater(self) -> None:
        if not self.rater:
            raise InputError("start as a rater first")

    def _require(self, kind: str) -> Any:
        self._require_rater()
        if self.task is None or self.task.kind != kind:
            what = {"score": "image to score", "rank": "batch to order", "classify": "cut-point question"}[kind]
            now = self.task.kind if self.task is not None else "none"
            raise InputError(f"no {what} is open (the current task: {now})")
        return self.task

    # ---- images ------------------------------------------------------------------------------------
    def show_image(self, scene: Any, node: Any = None) -> Any:
        """The current score or class task's image as the volume node "Labelling image" (``node``
        refilled when given, else the scene's node of that name, else a new one), in the slice views."""
        from cmrlib.mrml import volume_node_from_image

        self._require_rater()
        if self.task is None or self.task.kind not in ("score", "classify"):
            raise InputError("the current task has no single image to show")
        if node is None or node.GetScene() is not scene:
            node = scene.GetFirstNodeByName(IMAGE_NODE_NAME)
            if node is not None and not node.IsA("vtkMRMLScalarVolumeNode"):
                node = None
        node = volume_node_from_image(scene, image_from_pool(self.pool, self.task.images[0]), IMAGE_NODE_NAME, node)
        show_in_slice_views(scene, node)
        return node

    def thumbnails(self) -> list[tuple[str, bytes]]:
        """The open batch's images as (key, PNG bytes), in the order to show them."""
        from cmrlib.labelling.outputs import png_bytes

        task = self._require("rank")
        return [(key, png_bytes(self.pool, key)) for key in task.images]

    # ---- answers -----------------------------------------------------------------------------------
    def submit_score(self, score: float) -> dict[str, Any]:
        """Score (0–100) the open image; committed; then the next task."""
        from cmrlib.labelling.tasks import answer

        task = self._require("score")
        result = answer(self.pool, self.rater, image=task.images[0], score=score)
        self.next_task()
        return result

    def submit_order(self, order: Sequence[str]) -> dict[str, Any]:
        """The open batch's keys from most basal to most apical; committed; then the next task."""
        from cmrlib.labelling.tasks import answer

        task = self._require("rank")
        result = answer(self.pool, self.rater, batch=task.batch, order=list(order))
        self.next_task()
        return result

    def submit_class(self, slice_class: str) -> dict[str, Any]:
        """Answer the open cut-point question (one of :data:`CLASS_CHOICES`); committed; the next task."""
        from cmrlib.labelling.tasks import answer

        task = self._require("classify")
        result = answer(self.pool, self.rater, image=task.images[0], slice_class=slice_class)
        self.next_task()
        return result

    # ---- status ------------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        from cmrlib.labelling.status import pool_status

        return pool_status(self.pool)

    def status_text(self) -> str:
        """Images, answers, coverage (and agreement so far): `cmr label status`'s lines, plus this
        rater's own count."""
        from cmrlib.labelling.status import status_lines

        s = self.status()
        lines = status_lines(s)
        if self.rater and s["mode"] == "vas":
            lines.append(f"  {self.rater}: {s['coverage']['raters'].get(self.rater, 0)} of {s['images']} images scored")
        return "\n".join(lines)

    def close(self) -> None:
        self.pool.close()
        self.task = None

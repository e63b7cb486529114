"""One rater's loop, the same for every front end: :func:`next_task`, then :func:`answer`.

The CLI (`cmr label next / answer`), the simulated raters, and the coming web app and Slicer
section all call these two functions, so each front end only shows images and collects answers:

* visual-analogue pool: ``score`` tasks (one image, a score 0–100), until the rater has scored
  every image;
* ranking pool: ``rank`` tasks (a batch of up to 8 images, answered with their keys from most
  basal to most apical) until every image has been seen 3 times, then ``classify`` tasks (the
  cut-point questions: one image, too basal / LV / too apical) until both cut points are settled;
* then ``done``.

Asking again before answering returns the same task (an unsubmitted batch is kept for its rater),
so a rater who closes the window resumes where they stopped.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

from ..errors import InputError
from . import ranking, vas
from .pool import Pool

TASK_KINDS = ("score", "rank", "classify", "done")


@dataclass
class Task:
    kind: str  # one of TASK_KINDS
    rater: str
    images: list[str] = field(default_factory=list)  # keys, in the order to show
    batch: int | None = None  # rank: the batch to name in the answer
    resumed: bool = False  # rank: a batch issued earlier and not yet answered
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def next_task(pool: Pool, rater: str) -> Task:
    """What ``rater`` does next in ``pool`` (module docstring)."""
    if pool.mode == "vas":
        key = vas.next_image(pool, rater)
        if key is not None:
            return Task("score", rater, [key], message="score the likelihood of LGE, 0 (none) … 100 (certain)")
        n = len(pool.images())
        return Task("done", rater, message=f"{rater} has scored all {n} images" if n else "the pool has no images")
    batch = ranking.next_batch(pool, rater)
    if batch is not None:
        return Task("rank", rater, batch.images, batch.id, batch.resumed,
                    f"order these {len(batch.images)} images from most basal to most apical")
    key = ranking.next_boundary_image(pool, rater)
    if key is not None:
        return Task("classify", rater, [key], message="too basal, LV or too apical? (places the cut points)")
    if not pool.images():
        return Task("done", rater, message="the pool has no images")
    cuts = ranking.cut_points(pool)
    how = "set by hand" if cuts and cuts["source"] == "set by hand" else "settled"
    done = f"ranking done (every image seen ≥ {pool.target_views} times)"
    return Task("done", rater, message=f"{done}; cut points {how}" if cuts
                else f"{done}; no cut-point question is left for this rater")


def answer(pool: Pool, rater: str, *, image: str | None = None, score: Any = None, batch: int | None = None,
           order: Sequence[str] | None = None, slice_class: str | None = None) -> dict[str, Any]:
    """Record one answer: ``image`` + ``score`` (visual-analogue), ``batch`` + ``order`` (ranking) or
    ``image`` + ``slice_class`` (a cut-point question). Committed before returning."""
    given = [name for name, v in (("score", score), ("batch", batch), ("class", slice_class)) if v is not None]
    if len(given) != 1:
        raise InputError("give one answer: a score (with its image), a batch with its order, or a class (with its "
                         f"image); got {' and '.join(given) or 'none'}")
    if score is not None:
        if image is None:
            raise InputError("a score needs the image it scores")
        return vas.submit_score(pool, rater, image, score)
    if batch is not None:
        if not order:
            raise InputError(f"batch {batch}: give the order of its images, most basal first")
        return ranking.submit_batch(pool, rater, int(batch), list(order))
    if image is None:
        raise InputError("a class needs the image it classifies")
    return ranking.submit_class(pool, rater, image, str(slice_class))

"""Simulated raters with known bias and noise, answering a pool's tasks from the truth.

For tests and benchmarks/bench_labelling.py: the truth of each image is known (a phantom slice),
so the engines' results can be compared with it.

* **Ranking.** Each image has a true long-axis *level*: 0 at the too-basal / LV boundary (SCMR:
  myocardium around half the blood pool), 1 at the LV / too-apical boundary (the epicardial apex),
  linear in the long-axis position between — below 0 too basal, from 1 on too apical. Each time
  a rater looks at an image they perceive ``level + bias + N(0, level_sd)``; a batch is ordered
  by the perceived levels (the bias, shared by the batch, cancels). Classifying one image at a
  time, without neighbours to compare, they perceive it with ``single_sd_factor`` × the noise
  and compare it with the boundaries 0 and 1 (here the bias does not cancel) — the card's
  premise that ranking is the more consistent way to label.
* **Visual-analogue scoring.** A rater's scores come with them (``scores``: image key → 0–100),
  e.g. one column of :func:`cmrlib.quality.data.simulate_raters` on the phantom's LGE likelihood,
  calibrated to the published inter-rater Spearman 0.82 (:func:`~cmrlib.quality.data.calibrate_rater_sd`)
  — one noise model for the classifiers' labels and the labelling benchmark.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .pool import Pool
from .ranking import SLICE_CLASSES
from .tasks import Task, answer, next_task


@dataclass
class SimulatedRater:
    name: str
    level_bias: float = 0.0  # LV lengths, added to every perceived level (+: seen as more apical)
    level_sd: float = 0.08  # LV lengths, per look at an image in a batch
    single_sd_factor: float = 1.5  # noise × this when one image is judged alone
    scores: Mapping[str, float] = field(default_factory=dict)  # visual-analogue answers by image key
    seed: int = 0

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)

    def perceive(self, levels: Sequence[float], single: bool = False) -> np.ndarray:
        sd = self.level_sd * (self.single_sd_factor if single else 1.0)
        lv = np.asarray(levels, float)
        return lv + self.level_bias + self.rng.normal(0.0, sd, lv.shape)

    def order(self, keys: Sequence[str], levels: Mapping[str, float]) -> list[str]:
        """``keys`` from most basal (lowest perceived level) to most apical."""
        seen = self.perceive([levels[k] for k in keys])
        return [keys[i] for i in np.argsort(seen, kind="stable")]

    def classify(self, key: str, levels: Mapping[str, float]) -> str:
        return level_class(float(self.perceive([levels[key]], single=True)[0]))

    def answer(self, task: Task, levels: Mapping[str, float] | None = None) -> dict[str, Any]:
        """The keyword arguments of :func:`cmrlib.labelling.tasks.answer` for ``task``."""
        if task.kind == "score":
            return {"image": task.images[0], "score": round(float(self.scores[task.images[0]]), 2)}
        if task.kind == "rank":
            return {"batch": task.batch, "order": self.order(task.images, levels or {})}
        if task.kind == "classify":
            return {"image": task.images[0], "slice_class": self.classify(task.images[0], levels or {})}
        raise ValueError(f"nothing to answer in a {task.kind!r} task")


def level_class(level: float) -> str:
    """The slice class of a long-axis level (module docstring)."""
    return SLICE_CLASSES[0] if level < 0.0 else SLICE_CLASSES[2] if level >= 1.0 else SLICE_CLASSES[1]


def run_raters(pool: Pool, raters: Sequence[SimulatedRater], levels: Mapping[str, float] | None = None, *,
               max_tasks: int = 100_000, kinds: Sequence[str] = ("score", "rank", "classify"),
               after: Callable[[SimulatedRater, Task, dict], None] | None = None) -> dict[str, int]:
    """The raters take turns — one task each — until none has a task of ``kinds`` left (or
    ``max_tasks``); ``after(rater, task, result)`` is called after each answer. Returns the number
    of answers of each kind."""
    counts = {k: 0 for k in kinds}
    active = list(raters)
    while active and sum(counts.values()) < max_tasks:
        for rater in list(active):
            task = next_task(pool, rater.name)
            if task.kind not in kinds:
                active.remove(rater)
                continue
            result = answer(pool, rater.name, **rater.answer(task, levels))
            counts[task.kind] += 1
            if after is not None:
                after(rater, task, result)
            if sum(counts.values()) >= max_tasks:
                break
    return counts

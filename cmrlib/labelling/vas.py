"""Visual-analogue LGE-likelihood scoring (LGE-certainty card, seed 000): scores, agreement, thresholds.

Each rater scores one image at a time, 0 (certainly no LGE) … 100 (certainly LGE), on a slider
without numbers. A rater may score an image again (a revision): every score is kept, the latest
of an image and rater counts. :func:`next_image` gives a rater the first image, in the pool's
shuffled order, that they have not scored — every rater walks the same shuffled order, so pairs of
raters (and the agreement statistics) accumulate from the first images on.

**Agreement** (:func:`agreement`) between every two raters on the images both scored: Spearman ρ,
the mean difference (bias, first rater − second, by name) and its 95 % limits of agreement
(``cmrlib.metrics.bland_altman``), and the share of images both put in the same class at the
card's 25 / 75. With more than two raters the differences of all pairs are pooled.

**Class thresholds from the limits** (the card): the limits of the inter-rater difference are
about ±25–28 points, so a mean score within that distance of 0 or of 100 is *high certainty*
and the rest *low certainty*: thresholds ``(h, 100 − h)`` with ``h`` the half-width of the pooled
95 % limits, ``(upper − lower) / 2 = 1.96 SD`` (the bias, a rater's offset, does not widen it).
The export keeps the card's published 25 / 75 in ``lge_scores.csv`` (``cmr train lge-certainty``
applies those) and writes the pool's own thresholds beside them.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np

from ..errors import InputError
from .pool import Pool

#: the card's published class cut points (cmrlib.quality.data.LOW_CERTAINTY_RANGE; a test checks they agree)
PUBLISHED_THRESHOLDS = (25.0, 75.0)
SCORE_RANGE = (0.0, 100.0)


def next_image(pool: Pool, rater: str) -> str | None:
    """The first image in the pool's order that ``rater`` has not scored; None when all are."""
    pool.require_mode("vas", "a visual-analogue score")
    with pool.reading() as db:
        rid = pool.rater_id(db, rater)
        row = db.execute("SELECT key FROM images i WHERE NOT EXISTS (SELECT 1 FROM scores s WHERE s.image_id = i.id "
                         "AND s.rater_id = ?) ORDER BY position LIMIT 1", (rid,)).fetchone()
    return None if row is None else str(row[0])


def check_score(score: Any) -> float:
    try:
        value = float(score)
    except (TypeError, ValueError):
        raise InputError(f"a score is a number 0–100; got {score!r}") from None
    if not math.isfinite(value) or not SCORE_RANGE[0] <= value <= SCORE_RANGE[1]:
        raise InputError(f"a score is a number 0–100; got {score!r}")
    return value


def submit_score(pool: Pool, rater: str, image: str, score: Any) -> dict[str, Any]:
    """Record ``rater``'s score (0–100) of ``image``, committed before returning."""
    pool.require_mode("vas", "a visual-analogue score")
    value = check_score(score)
    with pool.writing() as db:
        rid = pool.rater_id(db, rater)
        (iid,) = pool.image_ids(db, [image])
        revised = db.execute("SELECT 1 FROM scores WHERE image_id = ? AND rater_id = ?", (iid, rid)).fetchone()
        db.execute("INSERT INTO scores (image_id, rater_id, score, at) VALUES (?, ?, ?, ?)",
                   (iid, rid, value, time.time()))
        done = db.execute("SELECT COUNT(DISTINCT image_id) FROM scores WHERE rater_id = ?", (rid,)).fetchone()[0]
        total = db.execute("SELECT COUNT(*) FROM images").fetchone()[0]
    return {"image": image, "rater": rater, "score": value, "revised": bool(revised), "scored": int(done),
            "images": int(total)}


def latest_scores(pool: Pool) -> dict[str, dict[str, float]]:
    """Image key → {rater: score} (the latest score of each image and rater)."""
    with pool.reading() as db:
        rows = db.execute("SELECT i.key, r.name, s.score FROM scores s JOIN images i ON i.id = s.image_id "
                          "JOIN raters r ON r.id = s.rater_id WHERE s.id IN "
                          "(SELECT MAX(id) FROM scores GROUP BY image_id, rater_id) ORDER BY i.position").fetchall()
    out: dict[str, dict[str, float]] = {}
    for key, name, score in rows:
        out.setdefault(key, {})[name] = float(score)
    return out


@dataclass
class PairAgreement:
    raters: tuple[str, str]
    n: int
    spearman: float | None
    bias: float  # mean of first − second, points
    lower: float  # 95 % limits of agreement, points
    upper: float
    class_agreement: float  # share of images in the same class at the card's 25 / 75

    def to_dict(self) -> dict[str, Any]:
        return {"raters": list(self.raters), "n": self.n,
                "spearman": None if self.spearman is None else round(self.spearman, 4),
                "bias": round(self.bias, 3), "lower": round(self.lower, 3), "upper": round(self.upper, 3),
                "class_agreement": round(self.class_agreement, 4)}


def is_low_certainty(score: float, thresholds: tuple[float, float] = PUBLISHED_THRESHOLDS) -> bool:
    return thresholds[0] < score < thresholds[1]


def _spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    from scipy import stats
    if a.size < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return float(stats.spearmanr(a, b).statistic)


def _pair(names: tuple[str, str], a: np.ndarray, b: np.ndarray) -> PairAgreement:
    from ..metrics import bland_altman
    ba = bland_altman(a, b)
    same = float(np.mean([is_low_certainty(x) == is_low_certainty(y) for x, y in zip(a, b)]))
    return PairAgreement(names, ba.n, _spearman(a, b), ba.bias, ba.lower, ba.upper, same)


def paired_scores(scores: dict[str, dict[str, float]]) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
    """(rater a, rater b) with a < b → their scores of the images both scored."""
    raters = sorted({r for s in scores.values() for r in s})
    out = {}
    for a, b in combinations(raters, 2):
        both = [(s[a], s[b]) for s in scores.values() if a in s and b in s]
        if both:
            arr = np.array(both, float)
            out[(a, b)] = (arr[:, 0], arr[:, 1])
    return out


def agreement(pool: Pool | None = None, scores: dict[str, dict[str, float]] | None = None) -> dict[str, Any]:
    """Inter-rater agreement and the derived class thresholds (module docstring). ``pairs`` lists
    every rater pair with ≥ 2 images in common; ``pooled`` is None (with ``reason``) until then."""
    scores = latest_scores(pool) if scores is None else scores
    pairs = {k: v for k, v in paired_scores(scores).items() if v[0].size >= 2}
    out: dict[str, Any] = {"pairs": [_pair(k, *v).to_dict() for k, v in pairs.items()], "pooled": None,
                           "thresholds": None, "published_thresholds": list(PUBLISHED_THRESHOLDS)}
    if not pairs:
        out["reason"] = "needs two raters who scored at least 2 of the same images"
        return out
    a = np.concatenate([v[0] for v in pairs.values()])
    b = np.concatenate([v[1] for v in pairs.values()])
    pooled = _pair(("all", "pairs"), a, b).to_dict()
    del pooled["raters"]
    out["pooled"] = pooled
    half = (pooled["upper"] - pooled["lower"]) / 2.0
    h = float(np.clip(half, 0.0, 50.0))
    out["thresholds"] = [round(h, 1), round(100.0 - h, 1)]
    return out


def mean_scores(scores: dict[str, dict[str, float]], thresholds: tuple[float, float] | None) -> list[dict[str, Any]]:
    """Per scored image: the mean score, the number of raters, the class at the card's 25 / 75 and
    at the pool's own thresholds (None before there are any)."""
    out = []
    for key, per in scores.items():
        m = float(np.mean(list(per.values())))
        out.append({"image": key, "mean_score": round(m, 2), "raters": len(per),
                    "class": "low" if is_low_certainty(m) else "high",
                    "class_derived": None if thresholds is None else
                    ("low" if is_low_certainty(m, tuple(thresholds)) else "high")})  # type: ignore[arg-type]
    return out


def coverage(pool: Pool) -> dict[str, Any]:
    """Images, and per rater the images scored; images scored by ≥ 1 and ≥ 2 raters."""
    scores = latest_scores(pool)
    images = pool.images()
    raters = list(pool.raters())
    return {"images": len(images), "scores": _count_rows(pool),
            "raters": {r: sum(r in s for s in scores.values()) for r in raters},
            "scored_once": sum(len(s) >= 1 for s in scores.values()),
            "scored_twice": sum(len(s) >= 2 for s in scores.values())}


def _count_rows(pool: Pool) -> int:
    with pool.reading() as db:
        return int(db.execute("SELECT COUNT(*) FROM scores").fetchone()[0])

"""Multiple-image ranking (slice-level card, seed 004): batches of 8, ratings, scheduling, cut points.

**The rating update.** A rater orders a batch of ``m`` images (8) from most basal to most apical:
``m(m−1)/2`` pairwise results (28), image ``i`` placed above ``j`` counting as ``i`` being the more
basal. Ratings live on an Elo scale — 0 very apical … 3000 very basal, start 1500 — where a
difference of ``ELO_SCALE`` (400) points means 10 : 1 odds that a rater puts the higher one
above. From the ratings *before* the batch (so the update does not depend on the order in which
the 28 pairs are read):

* expected wins ``E_i = Σ_j 1 / (1 + 10^((R_j − R_i) / 400))``, observed ``S_i`` = the number of
  batch-mates placed below ``i``;
* ``R_i += K_i (S_i − E_i)``, clipped to 0–3000: an image moves towards the basal or apical end by
  where it landed, and the further the placement is from where its rating predicted (a
  *divergent* placement), the more it moves;
* ``K_i = K_BASE (½ + v_i) / √(1 + n_i)`` with ``n_i`` the image's earlier views and ``v_i`` its
  volatility: a settled image (seen often, placed consistently) moves little, an inconsistent
  one keeps moving;
* volatility — the card's agreement of repeated ratings, 0–1, 1 for an unseen image — is a running
  average of the placement's surprise: ``v_i ← clip(½ v_i + ½ · 2|S_i − E_i| / (m − 1), 0, 1)``;
  placements that agree with the rating lower it, divergent ones raise it.

``K_BASE`` = 100 was chosen on simulated raters: 60–150 give the same final Spearman within 0.005.
On the benchmark's phantom stacks (benchmarks/bench_labelling.py) these live ratings reach
Spearman 0.97 with the true level after 3 views, a constant-K Elo on the same answers 0.95.

**Scheduling** (:func:`next_batch`): a rater with an unsubmitted batch gets it again (stop and
resume). Otherwise the images are put in priority order — fewest views, then highest volatility,
ties at random — leaving out images in another rater's open batch issued within ``BATCH_HOLD_S``
(concurrent raters see different images) unless too few remain. The batch is built around the
first of them: it and the ``batch_size − 1`` images nearest to it in rating among those seen no
more often (so the 28 pairs compare images the ratings cannot yet tell apart, not an apical slice
with a basal one; in the first pass all ratings are equal and the batch is random), shown in a
shuffled order. Ranking is **done** when every image has been seen ``target_views`` (3) times.

**The final ordering** (:func:`ordering`): the live ratings depend on the order in which batches
arrived and use each pair once; the ordering that is exported refits all pairs of all submitted
batches together — a Bradley–Terry model on the same Elo scale, maximum a posteriori with a
normal prior (mean 1500, SD ``FIT_PRIOR_SD`` = 500 points, which keeps it within about 0–3000;
the export clips it there) — a function of the answers alone, not of their order (Spearman
0.987 against the live ratings' 0.971 at rater noise of 5 % of the LV length). With the
rating-neighbour batches it raised the share of images the best two cuts classify right from
88 to 94.5 % there (benchmarks/bench_labelling.py).

**Cut points** on the final ordering (rank 0 = most basal) give the classes: the first ``c1``
images too basal, the next ``c2 − c1`` LV, the rest too apical. They are set by hand
(:func:`set_cut_points`, e.g. after looking at the ordering) or fitted to one-at-a-time class
answers (:func:`fit_cut_points`): the two cuts with the fewest disagreements. The *boundary
questions* (:func:`next_boundary_image`) choose those answers by probabilistic bisection: for each
cut a posterior over its place, assuming each answer is wrong with probability
``ANSWER_ERROR`` (¼; then its log is ``−1.1 × disagreements``, so its mode is the fit above); the
next question is the image at the posterior median of the less settled cut (the one before it,
then the one after, by turns; images the rater has classified are skipped), so conflicting
answers send the questions back where the evidence is thin instead of bisecting on into a
wrong half — one wrong answer early made a plain bisection cut 40 images off on simulated
raters. A cut is settled when ``SETTLED_MASS`` (80 %) of its posterior lies within ±3 % of the
images (at least 2) of the median, or after ``MAX_QUESTIONS_PER_CUT``; about 35–40 questions for
365 images (benchmarks/bench_labelling.py).
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..errors import InputError
from .pool import RATING_MAX, RATING_MIN, Pool, PoolImage

ELO_SCALE = 400.0
K_BASE = 100.0
VOLATILITY_MEMORY = 0.5  # weight of the earlier volatility in each update
BATCH_HOLD_S = 1800.0  # an open batch keeps its images from other raters for 30 minutes
FIT_PRIOR_SD = 500.0  # Elo points: the final ordering's prior around 1500
FIT_TOLERANCE = 0.01  # Elo points: the fit stops when no rating moves more
SLICE_CLASSES = ("too basal", "LV", "too apical")
ANSWER_ERROR = 0.25  # the boundary questions' assumed chance that a one-at-a-time answer is wrong
SETTLED_MASS = 0.8  # a cut is settled when this much of its posterior is near its median …
SETTLED_WIDTH = 0.03  # … within this share of the images (at least 2) either side
MAX_QUESTIONS_PER_CUT = 60


# ---- the update ------------------------------------------------------------------------------
def batch_update(ratings: Sequence[float], volatility: Sequence[float], views: Sequence[int], *,
                 k_base: float = K_BASE, use_volatility: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """New (ratings, volatilities) of one batch given in placement order (index 0 = most basal);
    the module docstring gives the rule. ``use_volatility=False``: constant-K Elo (for comparison)."""
    r = np.asarray(ratings, float)
    v = np.asarray(volatility, float)
    n = np.asarray(views, float)
    m = r.size
    p = 1.0 / (1.0 + 10.0 ** ((r[None, :] - r[:, None]) / ELO_SCALE))  # p[i, j]: i above j
    np.fill_diagonal(p, 0.0)
    expected = p.sum(axis=1)
    observed = (m - 1 - np.arange(m)).astype(float)
    k = k_base * ((0.5 + v) if use_volatility else 1.0) / np.sqrt(1.0 + n)
    new_r = np.clip(r + k * (observed - expected), RATING_MIN, RATING_MAX)
    surprise = np.abs(observed - expected) / max(m - 1, 1)
    new_v = np.clip(VOLATILITY_MEMORY * v + (1.0 - VOLATILITY_MEMORY) * 2.0 * surprise, 0.0, 1.0)
    return new_r, new_v


# ---- batches ------------------------------------------------------------------------------------
@dataclass
class Batch:
    id: int
    rater: str
    images: list[str]  # keys in the order shown (shuffled)
    issued: float  # unix s
    resumed: bool = False  # an earlier, unsubmitted batch of this rater


def progress(images: Sequence[PoolImage], target_views: int) -> dict[str, Any]:
    views = np.array([im.views for im in images], int)
    done = int((views >= target_views).sum()) if views.size else 0
    return {"images": len(images), "seen_enough": done, "target_views": target_views,
            "done": bool(views.size) and done == views.size,
            "views_min": int(views.min()) if views.size else 0,
            "views_median": float(np.median(views)) if views.size else 0.0,
            "views_max": int(views.max()) if views.size else 0}


def _batch_from_row(pool: Pool, db, row, rater: str, resumed: bool) -> Batch:
    ids = json.loads(row[1])
    keys = dict(db.execute(f"SELECT id, key FROM images WHERE id IN ({','.join('?' * len(ids))})", ids).fetchall())
    return Batch(int(row[0]), rater, [keys[i] for i in ids], float(row[2]), resumed)


def choose_batch(images: Sequence[PoolImage], held: set[int], size: int, rng: np.random.Generator) -> list[int]:
    """Indices into ``images`` of the next batch, in the order to show (module docstring);
    ``held``: ids of images in other raters' open batches."""
    ties = rng.random(len(images))
    priority = sorted(range(len(images)), key=lambda i: (images[i].id in held, images[i].views,
                                                         -images[i].volatility, ties[i]))
    first = priority[0]
    peers = [i for i in priority[1:] if images[i].id not in held and images[i].views <= images[first].views]
    if len(peers) >= size - 1:
        mates = sorted(peers, key=lambda i: (abs(images[i].rating - images[first].rating), ties[i]))[:size - 1]
    else:  # too few of this pass left: the next in priority
        mates = priority[1:size]
    chosen = [first, *mates]
    return [chosen[i] for i in rng.permutation(len(chosen))]


def next_batch(pool: Pool, rater: str, *, now: float | None = None) -> Batch | None:
    """The rater's next batch (module docstring), or None when ranking is done."""
    pool.require_mode("rank", "a ranking batch")
    now = time.time() if now is None else now
    with pool.writing() as db:  # issuing is a write: two raters asking at once get different images
        rid = pool.rater_id(db, rater)
        mine = db.execute("SELECT id, images, issued FROM batches WHERE rater_id = ? AND submitted IS NULL "
                          "ORDER BY id LIMIT 1", (rid,)).fetchone()
        if mine is not None:
            return _batch_from_row(pool, db, mine, rater, True)
        images = pool.images(db)
        if not images or progress(images, pool.target_views)["done"]:
            return None
        held = set()
        for (ids,) in db.execute("SELECT images FROM batches WHERE submitted IS NULL AND rater_id != ? AND issued > ?",
                                 (rid, now - BATCH_HOLD_S)):
            held.update(json.loads(ids))
        n_issued = db.execute("SELECT COUNT(*) FROM batches").fetchone()[0]
        rng = np.random.default_rng([pool.seed, n_issued])
        shown = [images[i] for i in choose_batch(images, held, min(pool.batch_size, len(images)), rng)]
        cur = db.execute("INSERT INTO batches (rater_id, images, issued) VALUES (?, ?, ?)",
                         (rid, json.dumps([im.id for im in shown]), now))
        return Batch(int(cur.lastrowid), rater, [im.key for im in shown], now)


def submit_batch(pool: Pool, rater: str, batch_id: int, order: Sequence[str], *,
                 now: float | None = None) -> dict[str, Any]:
    """Record the rater's order of batch ``batch_id`` (image keys, most basal first) and update the
    images' ratings, volatilities and views, in one transaction.

    The same order submitted again is acknowledged without counting twice; another order for a
    submitted batch is refused (the first answer stands). A batch issued to another rater is
    recorded as this rater's own copy (each rater's ordering is evidence; none is lost)."""
    pool.require_mode("rank", "a ranking answer")
    now = time.time() if now is None else now
    order = [str(k).strip() for k in order]
    with pool.writing() as db:
        rid = pool.rater_id(db, rater)
        row = db.execute("SELECT id, rater_id, images, submitted FROM batches WHERE id = ?",
                         (int(batch_id),)).fetchone()
        if row is None:
            raise InputError(f"{pool.path} has no batch {batch_id}; ask for one with `cmr label next`")
        batch_ids = json.loads(row[2])
        keys = dict(db.execute(f"SELECT id, key FROM images WHERE id IN ({','.join('?' * len(batch_ids))})",
                               batch_ids).fetchall())
        expected = sorted(keys.values())
        if sorted(order) != expected or len(set(order)) != len(order):
            raise InputError(f"batch {batch_id} holds {len(expected)} images ({', '.join(expected)}); the order must "
                             f"name each of them once, most basal first (got {', '.join(order) or 'nothing'})")
        ids = pool.image_ids(db, order)
        note = ""
        if row[1] != rid:
            owner = db.execute("SELECT name FROM raters WHERE id = ?", (row[1],)).fetchone()[0]
            cur = db.execute("INSERT INTO batches (rater_id, images, issued, copied_from) VALUES (?, ?, ?, ?)",
                             (rid, row[2], now, row[0]))
            note = f"batch {batch_id} was issued to {owner}; recorded as {rater}'s batch {cur.lastrowid}"
            batch_id = int(cur.lastrowid)
        elif row[3] is not None:
            before = [r[0] for r in db.execute("SELECT image_id FROM placements WHERE batch_id = ? ORDER BY place",
                                               (row[0],))]
            when = time.strftime("%H:%M:%S", time.localtime(row[3]))
            if before == ids:
                return {"batch": int(batch_id), "rater": rater, "duplicate": True,
                        "note": f"batch {batch_id} was already recorded at {when}; not counted twice"}
            raise InputError(f"batch {batch_id} was already submitted by {rater} at {when} with another order; "
                             "the first answer stands (nothing changed)")
        state = {r[0]: r[1:] for r in db.execute(
            f"SELECT id, rating, volatility, views FROM images WHERE id IN ({','.join('?' * len(ids))})", ids)}
        ratings, vols, views = (np.array([state[i][c] for i in ids], float) for c in range(3))
        new_r, new_v = batch_update(ratings, vols, views)
        for place, (i, r0, r1, v1) in enumerate(zip(ids, ratings, new_r, new_v)):
            db.execute("UPDATE images SET rating = ?, volatility = ?, views = views + 1 WHERE id = ?",
                       (float(r1), float(v1), i))
            db.execute("INSERT INTO placements (batch_id, image_id, place, rating_before, rating_after, "
                       "volatility_after) VALUES (?, ?, ?, ?, ?, ?)", (batch_id, i, place, float(r0), float(r1),
                                                                       float(v1)))
        db.execute("UPDATE batches SET submitted = ? WHERE id = ?", (now, batch_id))
        prog = progress(pool.images(db), pool.target_views)
    out = {"batch": int(batch_id), "rater": rater, "duplicate": False, "progress": prog,
           "ratings": {k: round(float(r), 1) for k, r in zip(order, new_r)}}
    if note:
        out["note"] = note
    return out


def replay_ratings(pool: Pool, **update_options: Any) -> dict[str, tuple[float, float, int]]:
    """Ratings, volatilities and views recomputed from the stored placements in the order they
    were committed: equal to the stored ones unless an update was lost (a check), or under other
    ``update_options`` of :func:`batch_update` (a comparison)."""
    from .pool import RATING_START, VOLATILITY_START
    images = pool.images()
    state = {im.id: [RATING_START, VOLATILITY_START, 0] for im in images}
    with pool.reading() as db:
        rows = db.execute("SELECT batch_id, image_id FROM placements ORDER BY rowid").fetchall()
    batches: dict[int, list[int]] = {}
    for b, i in rows:
        batches.setdefault(b, []).append(i)
    for ids in batches.values():  # dicts keep insertion (commit) order
        r, v = batch_update([state[i][0] for i in ids], [state[i][1] for i in ids], [state[i][2] for i in ids],
                            **update_options)
        for i, r1, v1 in zip(ids, r, v):
            state[i] = [float(r1), float(v1), state[i][2] + 1]
    return {im.key: tuple(state[im.id]) for im in images}  # type: ignore[misc]


# ---- the ordering and its agreement ---------------------------------------------------------------
def placed_pairs(pool: Pool) -> list[tuple[int, int]]:
    """(more basal, more apical) image ids of every pair of every submitted batch."""
    with pool.reading() as db:
        rows = db.execute("SELECT batch_id, image_id FROM placements ORDER BY batch_id, place").fetchall()
    batches: dict[int, list[int]] = {}
    for b, i in rows:
        batches.setdefault(b, []).append(i)
    return [(ids[a], ids[b]) for ids in batches.values() for a in range(len(ids)) for b in range(a + 1, len(ids))]


def fit_ratings(ids: Sequence[int], pairs: Sequence[tuple[int, int]], *, prior_sd: float = FIT_PRIOR_SD,
                max_iterations: int = 1000) -> dict[int, float]:
    """Bradley–Terry ratings (Elo scale, 1500 ± ``prior_sd`` prior) of ``ids`` from (winner, loser)
    ``pairs``, the winner being the more basal (module docstring), by Newton steps on each rating
    (the diagonal of the Hessian; the prior keeps it positive), until no rating moves more than
    ``FIT_TOLERANCE``. Not clipped."""
    index = {i: k for k, i in enumerate(ids)}
    n = len(ids)
    win = np.array([index[a] for a, _ in pairs], int)
    lose = np.array([index[b] for _, b in pairs], int)
    to_logit = np.log(10.0) / ELO_SCALE
    precision = 1.0 / (prior_sd * to_logit) ** 2
    r = np.zeros(n)  # logits around 1500
    for _ in range(max_iterations):
        p = 1.0 / (1.0 + np.exp(r[lose] - r[win]))  # P(winner above loser)
        grad = -precision * r
        np.add.at(grad, win, 1.0 - p)
        np.add.at(grad, lose, p - 1.0)
        hess = np.full(n, precision)
        np.add.at(hess, win, p * (1.0 - p))
        np.add.at(hess, lose, p * (1.0 - p))
        step = np.clip(grad / hess, -2.0, 2.0)
        r += step
        if np.abs(step).max() / to_logit < FIT_TOLERANCE:
            break
    return {i: float(1500.0 + r[index[i]] / to_logit) for i in ids}


def ordering(pool: Pool) -> list[PoolImage]:
    """Every image from most basal to most apical by its fitted rating (module docstring; in
    ``fitted_rating``), ties in the pool's order."""
    from dataclasses import replace
    images = pool.images()
    fitted = fit_ratings([im.id for im in images], placed_pairs(pool))
    ranked = sorted(images, key=lambda im: (-fitted[im.id], im.position))
    return [replace(im, fitted_rating=fitted[im.id]) for im in ranked]


def pair_agreement(pool: Pool) -> dict[str, Any]:
    """The share of submitted placements' pairs that agree with the current ordering, overall and
    per rater (how consistently raters order; 1 = every pair as the ordering has it)."""
    rank = {im.id: k for k, im in enumerate(ordering(pool))}
    with pool.reading() as db:
        rows = db.execute("SELECT r.name, p.batch_id, p.image_id, p.place FROM placements p JOIN batches b ON "
                          "b.id = p.batch_id JOIN raters r ON r.id = b.rater_id "
                          "ORDER BY p.batch_id, p.place").fetchall()
    per: dict[str, list[int]] = {}
    batches: dict[int, tuple[str, list[int]]] = {}
    for name, b, i, _ in rows:
        batches.setdefault(b, (name, []))[1].append(rank[i])
    for name, ranks in batches.values():
        a = np.array(ranks)
        upper = np.triu_indices(a.size, 1)
        agree = (a[:, None] < a[None, :])[upper]  # placed above and ranked above
        tally = per.setdefault(name, [0, 0])
        tally[0] += int(agree.sum())
        tally[1] += int(agree.size)
    total = [sum(t[0] for t in per.values()), sum(t[1] for t in per.values())]
    share = (lambda t: round(t[0] / t[1], 4) if t[1] else None)  # noqa: E731
    return {"pairs": total[1], "agreement": share(total), "raters": {n: share(t) for n, t in per.items()},
            "batches": len(batches)}


# ---- cut points -----------------------------------------------------------------------------------
def set_cut_points(pool: Pool, n_basal: int, n_apical: int) -> dict[str, Any]:
    """Cut the current ordering by hand: its first ``n_basal`` images too basal, its last
    ``n_apical`` too apical. Stored as fitted ratings (midway between the neighbours), so the cut
    stays between the same images when more answers reorder the others."""
    pool.require_mode("rank", "cut points")
    order = ordering(pool)
    n = len(order)
    if not (0 <= n_basal and 0 <= n_apical and n_basal + n_apical <= n):
        raise InputError(f"cut points: {n_basal} too basal + {n_apical} too apical must be ≥ 0 and at most the "
                         f"{n} images of the pool")
    ratings = [im.fitted_rating for im in order]

    def between(k: int) -> float:  # a rating between rank k-1 and rank k
        if k <= 0:
            return math.inf
        if k >= n:
            return -math.inf
        return 0.5 * (ratings[k - 1] + ratings[k])

    for k in (n_basal, n - n_apical):
        if 0 < k < n and ratings[k - 1] == ratings[k]:
            raise InputError(f"cut points: the images at ranks {k} and {k + 1} have the same rating (not yet ranked "
                             "apart); rank more batches before cutting there")
    basal, apical = between(n_basal), between(n - n_apical)
    with pool.writing() as db:
        pool.set_meta(db, {"cut_basal_rating": basal, "cut_apical_rating": apical})
    return {"basal_rating": basal, "apical_rating": apical, "n_basal": n_basal, "n_apical": n_apical}


def clear_cut_points(pool: Pool) -> None:
    with pool.writing() as db:
        pool.set_meta(db, {"cut_basal_rating": None, "cut_apical_rating": None})


def class_answers(pool: Pool) -> dict[str, list[tuple[str, str]]]:
    """Image key → [(rater, class)] of every one-at-a-time class answer, oldest first."""
    with pool.reading() as db:
        rows = db.execute("SELECT i.key, r.name, c.class FROM classes c JOIN images i ON i.id = c.image_id "
                          "JOIN raters r ON r.id = c.rater_id ORDER BY c.id").fetchall()
    out: dict[str, list[tuple[str, str]]] = {}
    for key, name, cls in rows:
        out.setdefault(key, []).append((name, cls))
    return out


def fit_cut_points(n: int, answers: dict[int, Sequence[str]]) -> tuple[int, int, int]:
    """(c1, c2, disagreements): the cuts of an ordering of ``n`` images that disagree least with
    class ``answers`` (rank → classes); ranks < c1 too basal, c1 ≤ rank < c2 LV, the rest too
    apical. Among equally good cuts the middle of the tied ranks (module docstring)."""
    ranks = sorted(r for r in answers if 0 <= r < n)
    m = len(ranks)
    counts = np.zeros((m, 3))
    for j, r in enumerate(ranks):
        for c in answers[r]:
            counts[j, SLICE_CLASSES.index(c)] += 1
    wrong = counts.sum(axis=1, keepdims=True) - counts  # answers that disagree with each class, per image
    before = np.vstack([np.zeros((1, 3)), np.cumsum(wrong, axis=0)])  # wrong[:g] summed, g = 0..m
    best, ties = None, []
    for g1 in range(m + 1):
        for g2 in range(g1, m + 1):
            err = before[g1, 0] + (before[g2, 1] - before[g1, 1]) + (before[m, 2] - before[g2, 2])
            if best is None or err < best - 1e-9:
                best, ties = err, [(g1, g2)]
            elif abs(err - best) <= 1e-9:
                ties.append((g1, g2))
    edges = [-1, *ranks, n]  # cut after g answered images: any rank in (edges[g], edges[g + 1]]

    def middle(gs: list[int]) -> int:
        lo, hi = min(edges[g] + 1 for g in gs), max(edges[g + 1] for g in gs)
        return (lo + hi) // 2

    c1 = middle(sorted({t[0] for t in ties}))
    c2 = max(c1, middle(sorted({t[1] for t in ties})))
    return c1, c2, int(round(best or 0))


def cut_points(pool: Pool) -> dict[str, Any] | None:
    """The cut points in force: set by hand, else fitted to the class answers; None without either.
    ``c1`` / ``c2`` are ranks in the current ordering."""
    meta = pool.meta()
    order = ordering(pool)
    n = len(order)
    if "cut_basal_rating" in meta:
        basal, apical = float(meta["cut_basal_rating"]), float(meta["cut_apical_rating"])
        c1 = int(sum(im.fitted_rating > basal for im in order))
        c2 = n - int(sum(im.fitted_rating < apical for im in order))
        return {"source": "set by hand", "c1": c1, "c2": max(c1, c2), "answers": 0}
    by_rank = _answers_by_rank(pool, order)
    if not by_rank:
        return None
    c1, c2, wrong = fit_cut_points(n, by_rank)
    n_answers = sum(len(v) for v in by_rank.values())
    state = [_cut_state(n, by_rank, which) for which in (0, 1)]
    return {"source": f"fitted to {n_answers} class answer(s)", "c1": c1, "c2": c2, "answers": n_answers,
            "disagreements": wrong, "settled": all(st["settled"] for st in state),
            "posterior_near_median": [round(st["mass"], 3) for st in state]}


def _answers_by_rank(pool: Pool, order: Sequence[PoolImage]) -> dict[int, list[str]]:
    rank = {im.key: k for k, im in enumerate(order)}
    return {rank[k]: [c for _, c in v] for k, v in class_answers(pool).items()}


def cut_posterior(n: int, answers: dict[int, Sequence[str]], which: int,
                  error: float = ANSWER_ERROR) -> np.ndarray:
    """P(cut = c), c = 0…n, of the basal (``which`` 0) or apical (1) cut given class answers by
    rank, each wrong with probability ``error`` (module docstring)."""
    c = np.arange(n + 1)
    log_p = np.zeros(n + 1)
    for r, classes in answers.items():
        for cls in classes:
            before = cls == SLICE_CLASSES[0] if which == 0 else cls != SLICE_CLASSES[2]  # the image lies before the cut
            log_p += np.where((r < c) if before else (r >= c), np.log1p(-error), np.log(error))
    p = np.exp(log_p - log_p.max())
    return p / p.sum()


def _cut_state(n: int, answers: dict[int, Sequence[str]], which: int) -> dict[str, Any]:
    cdf = np.cumsum(cut_posterior(n, answers, which))
    median = int(np.searchsorted(cdf, 0.5))
    width = max(2, int(np.ceil(SETTLED_WIDTH * n)))
    mass = float(cdf[min(n, median + width)] - (cdf[median - width - 1] if median - width >= 1 else 0.0))
    asked = sum(len(v) for r, v in answers.items() if abs(r - median) <= max(width, n // 4))
    return {"median": median, "mass": mass, "settled": mass >= SETTLED_MASS or asked >= MAX_QUESTIONS_PER_CUT}


def next_boundary_image(pool: Pool, rater: str) -> str | None:
    """The next one-at-a-time class question (module docstring), or None when both cuts are
    settled or set by hand."""
    if "cut_basal_rating" in pool.meta():
        return None
    order = ordering(pool)
    n = len(order)
    by_rank = _answers_by_rank(pool, order)
    mine = {k for k, v in class_answers(pool).items() if any(r == rater for r, _ in v)}
    states = [_cut_state(n, by_rank, which) for which in (0, 1)]
    open_cuts = sorted((st["mass"], which) for which, st in enumerate(states) if not st["settled"])
    for _, which in open_cuts:
        median = states[which]["median"]
        turn = sum(len(v) for v in by_rank.values()) % 2
        for d in range(n + 1):  # the image just before the cut, then just after, by turns; then outwards
            pair = (median - 1 - d, median + d)
            for r in (pair if turn == 0 else pair[::-1]):
                if 0 <= r < n and order[r].key not in mine:
                    return order[r].key
    return None


def submit_class(pool: Pool, rater: str, image: str, slice_class: str) -> dict[str, Any]:
    """Record a one-at-a-time class answer (too basal / LV / too apical) for ``image``."""
    pool.require_mode("rank", "a slice-level class answer")
    norm = {c.lower(): c for c in SLICE_CLASSES}
    cls = norm.get(str(slice_class).strip().lower())
    if cls is None:
        raise InputError(f"class must be one of {', '.join(SLICE_CLASSES)}; got {slice_class!r}")
    with pool.writing() as db:
        rid = pool.rater_id(db, rater)
        (iid,) = pool.image_ids(db, [image])
        db.execute("INSERT INTO classes (image_id, rater_id, class, at) VALUES (?, ?, ?, ?)",
                   (iid, rid, cls, time.time()))
    return {"image": image, "rater": rater, "class": cls}


def labels(pool: Pool) -> tuple[list[tuple[PoolImage, int, str]], dict[str, Any]]:
    """(image, rank, class) for every image of the ordering, and the cut points used.
    InputError when no cut points are set or can be fitted yet."""
    cuts = cut_points(pool)
    if cuts is None:
        raise InputError(f"{pool.path}: no cut points yet: answer the boundary questions after ranking "
                         f"(`cmr label next`) or set them (`cmr label cut {pool.path} --basal N --apical M`)")
    out = []
    for k, im in enumerate(ordering(pool)):
        cls = SLICE_CLASSES[0] if k < cuts["c1"] else SLICE_CLASSES[1] if k < cuts["c2"] else SLICE_CLASSES[2]
        out.append((im, k, cls))
    return out, cuts

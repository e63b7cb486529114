"""The engines: visual-analogue scores, agreement and thresholds from the limits; ranking updates,
scheduling, duplicate and foreign submissions, cut points and the boundary questions; simulated
raters; and the export's formats as `cmr train --data` reads them."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from cmrlib.errors import InputError
from cmrlib.labelling import outputs, ranking, vas
from cmrlib.labelling.ranking import batch_update, fit_cut_points
from cmrlib.labelling.simulate import SimulatedRater, level_class, run_raters
from cmrlib.labelling.tasks import answer, next_task
from test_labelling_pool import make_pool


def test_the_formats_are_those_cmr_train_reads():
    """Capability packages do not import each other, so the names are repeated: they must agree."""
    from cmrlib.phantom.labels import SLICE_CLASSES as PHANTOM_CLASSES
    from cmrlib.quality import data
    assert outputs.SCORES_CSV == data.SCORES_CSV and outputs.LEVELS_CSV == data.LEVELS_CSV
    assert ranking.SLICE_CLASSES == data.SLICE_CLASSES == PHANTOM_CLASSES
    assert vas.PUBLISHED_THRESHOLDS == data.LOW_CERTAINTY_RANGE


# ---- visual-analogue scoring ----------------------------------------------------------------------
def test_raters_walk_the_shuffled_order_and_may_revise(tmp_path):
    pool = make_pool(tmp_path, n_stacks=2, n_slices=3)
    order = [im.key for im in pool.images()]
    assert next_task(pool, "alice").images == [order[0]] and next_task(pool, "bob").images == [order[0]]
    assert answer(pool, "alice", image=order[0], score="30")["scored"] == 1
    assert next_task(pool, "alice").images == [order[1]]
    revised = vas.submit_score(pool, "alice", order[0], 35)
    assert revised["revised"] and revised["scored"] == 1
    assert vas.latest_scores(pool) == {order[0]: {"alice": 35.0}}
    with pool.reading() as db:
        assert [r[0] for r in db.execute("SELECT score FROM scores ORDER BY id")] == [30.0, 35.0]  # both kept
    for key in order[1:]:
        vas.submit_score(pool, "alice", key, 50)
    done = next_task(pool, "alice")
    assert done.kind == "done" and done.message == "alice has scored all 6 images"


@pytest.mark.parametrize("bad", [-1, 100.5, "abc", float("nan"), None])
def test_a_score_outside_0_100_is_refused(tmp_path, bad):
    pool = make_pool(tmp_path)
    key = pool.images()[0].key
    with pytest.raises(InputError, match="a score is a number 0–100|give one answer"):
        answer(pool, "alice", image=key, score=bad)
    with pytest.raises(InputError, match="holds no image 'nope'"):
        vas.submit_score(pool, "alice", "nope", 5)
    with pytest.raises(InputError, match="is a visual-analogue LGE-likelihood scoring pool .*belongs to multiple-image "
                                         "ranking"):
        ranking.next_batch(pool, "alice")
    assert vas.latest_scores(pool) == {}


def test_agreement_and_the_thresholds_from_the_limits():
    from cmrlib.metrics import bland_altman
    rng = np.random.default_rng(1)
    truth = rng.uniform(0, 100, 300)
    a, b, c = (np.clip(truth + off + rng.normal(0, 12, 300), 0, 100) for off in (2.0, -2.0, 0.0))
    keys = [f"i{k}" for k in range(300)]
    two = {k: {"a": x, "b": y} for k, x, y in zip(keys, a, b)}
    result = vas.agreement(scores=two)
    ba = bland_altman(a, b)
    (pair,) = result["pairs"]
    assert pair["raters"] == ["a", "b"] and pair["n"] == 300
    assert pair["spearman"] == pytest.approx(stats.spearmanr(a, b).statistic, abs=1e-4)
    assert pair["bias"] == pytest.approx(ba.bias, abs=1e-3) and pair["upper"] == pytest.approx(ba.upper, abs=1e-3)
    half = (ba.upper - ba.lower) / 2
    assert result["thresholds"] == [pytest.approx(half, abs=0.06), pytest.approx(100 - half, abs=0.06)]
    assert 25 < half < 40  # 1.96 × √2 × 12 points of noise, less where scores clip
    three = {k: {"a": x, "b": y, "c": z} for k, x, y, z in zip(keys, a, b, c)}
    pooled = vas.agreement(scores=three)
    assert len(pooled["pairs"]) == 3 and pooled["pooled"]["n"] == 900
    none = vas.agreement(scores={k: {"a": x} for k, x in zip(keys, a)})
    assert none["pooled"] is None and none["thresholds"] is None and "two raters" in none["reason"]
    means = vas.mean_scores({"x": {"a": 20.0, "b": 40.0}, "y": {"a": 90.0}}, (30.0, 70.0))
    assert means == [{"image": "x", "mean_score": 30.0, "raters": 2, "class": "low", "class_derived": "high"},
                     {"image": "y", "mean_score": 90.0, "raters": 1, "class": "high", "class_derived": "high"}]


def test_simulated_raters_at_the_published_agreement_give_thresholds_near_25_75():
    """quality.data's raters, calibrated to ρ 0.82 on a spread of likelihoods like the phantom's."""
    from cmrlib.quality.data import calibrate_rater_sd, simulate_raters
    rng = np.random.default_rng(4)
    likelihood = np.concatenate([rng.uniform(0, 15, 120), rng.uniform(85, 100, 60), rng.uniform(15, 85, 60)])
    sd = calibrate_rater_sd(likelihood, seed=3)["sd"]
    scores = simulate_raters(likelihood, sd, np.random.default_rng(9))
    result = vas.agreement(scores={f"i{k}": {"a": s[0], "b": s[1]} for k, s in enumerate(scores)})
    assert result["pooled"]["spearman"] == pytest.approx(0.82, abs=0.06)
    low, high = result["thresholds"]
    assert 15 < low < 35 and 65 < high < 85


# ---- ranking: the update ----------------------------------------------------------------------------
def test_an_unseen_batch_spreads_by_place_and_keeps_the_mean():
    r, v = batch_update([1500.0] * 8, [1.0] * 8, [0] * 8)
    assert np.all(np.diff(r) < 0)  # placed first = most basal = highest rating
    assert r.mean() == pytest.approx(1500.0) and r[0] - 1500 == pytest.approx(1500 - r[-1])
    assert r[0] == pytest.approx(1500 + 100 * 1.5 * 3.5)  # K (½ + 1) × (7 wins − 3.5 expected)
    assert np.all((v > 0) & (v <= 1)) and v[0] > v[3]  # the extremes surprised most


def test_divergent_placements_move_more_and_raise_volatility():
    ratings = np.array([2400, 2200, 2000, 1800, 1600, 1400, 1200, 1000], float)
    calm = [0.2] * 8
    expected_r, expected_v = batch_update(ratings, calm, [3] * 8)  # placed as the ratings say
    swapped = ratings.copy()
    swapped[[0, 7]] = swapped[[7, 0]]  # the most apical-rated image placed most basal, and vice versa
    r, v = batch_update(swapped, calm, [3] * 8)
    assert abs(r[0] - swapped[0]) > 5 * abs(expected_r[0] - ratings[0])
    assert v[0] > 0.5 > expected_v[0] and v[7] > 0.5
    # a volatile image moves more than a settled one for the same placement, an often seen one less
    hot, _ = batch_update(swapped, [1.0] + [0.2] * 7, [3] * 8)
    seen, _ = batch_update(swapped, calm, [30] + [3] * 7)
    assert abs(hot[0] - swapped[0]) > abs(r[0] - swapped[0]) > abs(seen[0] - swapped[0])
    flat, _ = batch_update(swapped, calm, [3] * 8, use_volatility=False)
    assert flat[0] != r[0]
    top, _ = batch_update([2990.0] + [100.0] * 7, [1.0] * 8, [0] * 8)
    assert top.max() <= 3000.0 and top.min() >= 0.0


def test_the_final_fit_uses_all_pairs_regardless_of_their_order():
    from cmrlib.labelling.ranking import fit_ratings
    rng = np.random.default_rng(2)
    truth = rng.permutation(30)  # image i's true place, 0 = most basal
    pairs = []
    for _ in range(40):  # batches of 8 ordered by a rater who errs now and then
        batch = rng.choice(30, 8, replace=False)
        seen = truth[batch] + rng.normal(0, 1.5, 8)
        ordered = batch[np.argsort(seen)]
        pairs += [(int(ordered[a]), int(ordered[b])) for a in range(8) for b in range(a + 1, 8)]
    fitted = fit_ratings(list(range(30)), pairs)
    again = fit_ratings(list(range(30)), [pairs[k] for k in rng.permutation(len(pairs))])
    assert all(fitted[i] == pytest.approx(again[i], abs=0.05) for i in range(30))  # order-free
    assert stats.spearmanr([fitted[i] for i in range(30)], -truth).statistic > 0.95
    assert np.mean(list(fitted.values())) == pytest.approx(1500.0, abs=1.0)
    one_sided = fit_ratings([0, 1], [(0, 1)] * 500)  # always above: the prior keeps it on the scale
    assert 1500 < one_sided[0] < 3000 and 0 < one_sided[1] < 1500
    assert fit_ratings([0, 1, 2], []) == {0: 1500.0, 1: 1500.0, 2: 1500.0}


def test_kappa_and_mcnemar():
    from scipy.stats import binomtest

    from cmrlib.metrics import cohen_kappa, mcnemar
    assert cohen_kappa([0, 1, 2, 1, 1, 0], [0, 1, 2, 1, 0, 0], 3) == pytest.approx(17 / 23)
    assert cohen_kappa([1, 1], [1, 1], 3) == 1.0
    a = np.array([1] * 30 + [1] * 9 + [0] * 2 + [0] * 5, bool)
    b = np.array([1] * 30 + [0] * 9 + [1] * 2 + [0] * 5, bool)
    test = mcnemar(a, b)
    assert (test.only_a, test.only_b) == (9, 2)
    assert test.p == pytest.approx(binomtest(2, 11, 0.5).pvalue)
    assert mcnemar(a, a).p == 1.0


# ---- ranking: scheduling and submissions --------------------------------------------------------------
def test_batches_prefer_unseen_then_volatile_and_resume(tmp_path):
    pool = make_pool(tmp_path, "rank", n_stacks=3, n_slices=8)  # 24 images: 3 batches per pass
    first = next_task(pool, "alice")
    assert first.kind == "rank" and len(first.images) == 8 and not first.resumed
    again = next_task(pool, "alice")  # not answered: the same batch (stop and resume)
    assert again.batch == first.batch and again.images == first.images and again.resumed
    other = next_task(pool, "bob")  # concurrent rater: other images
    assert not set(other.images) & set(first.images)
    answer(pool, "alice", batch=first.batch, order=first.images)
    second = next_task(pool, "alice")
    assert not set(second.images) & (set(first.images) | set(other.images))  # the unseen ones
    answer(pool, "alice", batch=second.batch, order=second.images)
    answer(pool, "bob", batch=other.batch, order=other.images)
    # every image seen once: the batch is built around the most volatile image, with the images
    # nearest to it in rating (those the ratings cannot tell apart yet)
    images = pool.images()
    hottest = max(images, key=lambda im: im.volatility)
    third = next_task(pool, "alice")
    assert hottest.key in third.images
    distance = sorted(abs(im.rating - hottest.rating) for im in images if im.key != hottest.key)
    chosen = [abs(im.rating - hottest.rating) for im in images if im.key in third.images and im.key != hottest.key]
    assert max(chosen) <= distance[6] + 1e-9


def test_an_open_batch_holds_its_images_only_for_a_while(tmp_path):
    pool = make_pool(tmp_path, "rank", n_stacks=2, n_slices=8)
    t0 = 1_000_000.0
    a = ranking.next_batch(pool, "alice", now=t0)
    b = ranking.next_batch(pool, "bob", now=t0 + 10)
    assert not set(a.images) & set(b.images)
    pool.add_raters(["carol"])
    c = ranking.next_batch(pool, "carol", now=t0 + 20)  # all 16 held: carol ranks some of them again
    assert len(c.images) == 8
    late = ranking.next_batch(pool, "alice", now=t0 + ranking.BATCH_HOLD_S + 100)
    assert late.id == a.id  # alice's own batch is still hers
    answer(pool, "alice", batch=a.id, order=a.images)  # answered late: still counted
    assert {im.key: im.views for im in pool.images()}[a.images[0]] == 1


def test_duplicate_foreign_and_malformed_submissions(tmp_path):
    pool = make_pool(tmp_path, "rank", n_stacks=2, n_slices=8)
    batch = next_task(pool, "alice")
    order = list(reversed(batch.images))
    with pytest.raises(InputError, match=rf"batch {batch.batch} holds 8 images .*must name each of them once"):
        answer(pool, "alice", batch=batch.batch, order=order[:7])
    with pytest.raises(InputError, match="must name each of them once"):
        answer(pool, "alice", batch=batch.batch, order=order[:7] + order[:1])
    with pytest.raises(InputError, match="has no batch 99"):
        answer(pool, "alice", batch=99, order=order)
    first = answer(pool, "alice", batch=batch.batch, order=order)
    views = {im.key: im.views for im in pool.images()}
    again = answer(pool, "alice", batch=batch.batch, order=order)  # a double click
    assert again["duplicate"] and "not counted twice" in again["note"]
    with pytest.raises(InputError, match="already submitted by alice .*with another order; the first answer stands"):
        answer(pool, "alice", batch=batch.batch, order=batch.images)
    assert {im.key: im.views for im in pool.images()} == views
    foreign = answer(pool, "bob", batch=batch.batch, order=batch.images)  # bob ranked alice's batch
    assert f"issued to alice; recorded as bob's batch {foreign['batch']}" in foreign["note"]
    assert foreign["batch"] != first["batch"]
    assert all(im.views == views[im.key] + (im.key in batch.images) for im in pool.images())
    with pytest.raises(InputError, match="give one answer"):
        answer(pool, "alice", batch=1, order=order, score=5)
    with pytest.raises(InputError, match="give the order"):
        answer(pool, "alice", batch=1)


def test_ranking_is_done_after_three_views_and_the_ordering_follows_the_raters(tmp_path):
    pool = make_pool(tmp_path, "rank", raters=("a", "b"), n_stacks=4, n_slices=6)
    jitter = np.random.default_rng(3).uniform(0, 0.15, 24)  # stacks of other hearts: levels differ a little
    levels = {im.key: im.slice / 5.0 + j for im, j in zip(pool.images(), jitter)}
    raters = [SimulatedRater("a", level_sd=0.05, seed=1), SimulatedRater("b", level_bias=0.1, level_sd=0.05, seed=2)]
    counts = run_raters(pool, raters, levels, kinds=("rank",))
    assert min(im.views for im in pool.images()) == 3 and ranking.progress(pool.images(), 3)["done"]
    assert counts["rank"] <= 12  # 24 images × 3 views / 8, plus a few at the end
    order = ranking.ordering(pool)
    rho = stats.spearmanr([levels[im.key] for im in order], range(len(order))).statistic
    assert rho > 0.9
    agreement = ranking.pair_agreement(pool)
    assert agreement["pairs"] == 28 * counts["rank"] and agreement["agreement"] > 0.85
    assert next_task(pool, "a").kind == "classify"  # then the cut-point questions


# ---- cut points ----------------------------------------------------------------------------------------
def test_fit_cut_points_on_clean_noisy_and_missing_answers():
    truth = ["too basal"] * 5 + ["LV"] * 10 + ["too apical"] * 5
    all_answers = {r: [c] for r, c in enumerate(truth)}
    assert fit_cut_points(20, all_answers) == (5, 15, 0)
    noisy = dict(all_answers)
    noisy[7] = ["too basal"]  # one rater wrong, in the LV
    assert fit_cut_points(20, noisy)[:2] == (5, 15) and fit_cut_points(20, noisy)[2] == 1
    assert fit_cut_points(20, {})[:2] == (10, 10)  # nothing known: the middle
    assert fit_cut_points(20, {10: ["LV"]})[:2] == (5, 15)  # one LV answer: bisect each side
    assert fit_cut_points(20, {r: ["LV"] for r in range(20)})[:2] == (0, 20)  # no basal or apical images
    assert fit_cut_points(20, {3: ["LV", "LV", "too basal"]})[:2] == (1, 12)  # the majority at rank 3


def test_boundary_questions_bisect_to_the_true_cuts(tmp_path):
    pool = make_pool(tmp_path, "rank", raters=("a",), n_stacks=8, n_slices=8)  # 64 images
    images = pool.images()
    # ranked with a known order: rating by truth level, highest (most basal) first
    truth = {im.key: k for k, im in enumerate(sorted(images, key=lambda im: im.position))}
    with pool.writing() as db:
        for key, k in truth.items():
            db.execute("UPDATE images SET rating = ?, views = 3 WHERE key = ?", (3000.0 - 40 * k, key))
    cls = {key: "too basal" if k < 9 else "LV" if k < 50 else "too apical" for key, k in truth.items()}
    questions = 0
    while (task := next_task(pool, "a")).kind == "classify":
        answer(pool, "a", image=task.images[0], slice_class=cls[task.images[0]])
        questions += 1
    cuts = ranking.cut_points(pool)
    assert (cuts["c1"], cuts["c2"], cuts["settled"]) == (9, 50, True)
    assert questions <= 2 * (np.log2(64) + 4)
    labels, _ = ranking.labels(pool)
    assert all(c == cls[im.key] for im, _, c in labels)
    assert next_task(pool, "a").message.endswith("cut points settled")
    with pytest.raises(InputError, match="class must be one of too basal, LV, too apical"):
        answer(pool, "a", image=images[0].key, slice_class="mid")


def test_cut_points_by_hand_stay_between_the_same_images(tmp_path):
    pool = make_pool(tmp_path, "rank", raters=("alice",), n_stacks=2, n_slices=8)
    with pytest.raises(InputError, match="no cut points yet"):
        ranking.labels(pool)
    with pytest.raises(InputError, match="ranks 2 and 3 have the same rating"):
        ranking.set_cut_points(pool, 2, 3)  # nothing ranked yet: every image at 1500
    levels = {im.key: im.slice + 0.1 * (im.stack == pool.images()[0].stack) for im in pool.images()}
    run_raters(pool, [SimulatedRater("alice", level_sd=0.0)], levels, kinds=("rank",))
    with pytest.raises(InputError, match="at most the 16 images"):
        ranking.set_cut_points(pool, 10, 7)
    ranking.set_cut_points(pool, 2, 3)
    labels, cuts = ranking.labels(pool)
    assert cuts["source"] == "set by hand" and [c for _, _, c in labels] == \
        ["too basal"] * 2 + ["LV"] * 11 + ["too apical"] * 3
    ranked = [levels[im.key] for im, _, _ in labels]
    assert stats.spearmanr(ranked, np.arange(16)).statistic > 0.95  # a perfect rater, 6 batches
    assert next_task(pool, "alice").kind == "done"  # cut by hand: no boundary questions
    ranking.clear_cut_points(pool)
    assert ranking.cut_points(pool) is None and next_task(pool, "alice").kind == "classify"


def test_one_at_a_time_classes_of_a_simulated_rater():
    assert [level_class(x) for x in (-0.01, 0.0, 0.99, 1.0)] == ["too basal", "LV", "LV", "too apical"]
    biased = SimulatedRater("x", level_bias=0.2, level_sd=0.0)
    assert biased.classify("k", {"k": 0.9}) == "too apical"  # the bias does not cancel alone
    assert biased.order(["a", "b"], {"a": 0.9, "b": 0.1}) == ["b", "a"]  # but does in a batch

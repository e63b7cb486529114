"""QCD framework: candidates by k-of-M voting, the inter-candidate Dice matrix, OLS regressors,
selection and the "no answer" path (docs/methods/qcd.md)."""
import numpy as np
import pytest

from cmrlib.metrics import dice
from cmrlib.qcd.framework import (MIN_MYOCARDIUM_PX, Regressors, candidate_names, candidates, decide, dice_matrix,
                                  features, fit_regressors, true_dice)


def _ring(shape, r0, r1, centre=(16, 16)):
    y, x = np.mgrid[0:shape[0], 0:shape[1]]
    d = np.hypot(y - centre[0], x - centre[1])
    lab = np.zeros(shape, np.uint8)
    lab[d < r0] = 2
    lab[(d >= r0) & (d < r1)] = 1
    return lab


def test_candidates_are_the_single_maps_then_k_of_m_votes():
    maps = np.stack([_ring((32, 32), 5, 8 + i) for i in range(3)])  # rings of growing outer radius
    c = candidates(maps)
    assert c.shape == (6, 32, 32)
    assert np.array_equal(c[:3], maps)
    votes = (maps == 1).sum(0)
    for k in (1, 2, 3):
        assert np.array_equal(c[2 + k] == 1, votes >= k)
        assert not np.any((c[2 + k] == 2) & (c[2 + k] == 1))
    # k = 1 is the union (largest), k = M the intersection (smallest)
    assert (c[3] == 1).sum() >= (c[4] == 1).sum() >= (c[5] == 1).sum()
    assert candidate_names(3) == ["SCS d1", "SCS d2", "SCS d3", "CCS k>=1", "CCS k>=2", "CCS k>=3"]


def test_dice_matrix_matches_the_one_dice():
    rng = np.random.default_rng(0)
    c = rng.integers(0, 3, (4, 20, 20)).astype(np.uint8)
    c[3] = 0  # an empty candidate
    m = dice_matrix(c)
    for i in range(4):
        for j in range(4):
            assert m[i, j] == pytest.approx(dice(c[i] == 1, c[j] == 1))
    assert np.allclose(np.diag(m), 1.0)


def test_ols_regressors_recover_a_linear_rule_and_round_trip():
    rng = np.random.default_rng(1)
    n = 4
    true_coef = rng.normal(0, 0.2, (n, n))
    true_coef[:, 0] = 0.5
    mats, ys = [], []
    for _ in range(60):
        a = rng.uniform(0.3, 1.0, (n, n))
        m = (a + a.T) / 2
        np.fill_diagonal(m, 1.0)
        mats.append(m)
        ys.append([true_coef[i] @ features(m, i) for i in range(n)])
    reg = fit_regressors(mats, ys)
    assert np.allclose(reg.coef, true_coef, atol=1e-4)
    back = Regressors.from_dict(reg.to_dict())
    assert np.allclose(back.coef, reg.coef, atol=1e-7)
    with pytest.raises(ValueError):
        fit_regressors(mats[:3], ys[:3])  # fewer images than parameters


def test_decide_picks_the_highest_predicted_dice_and_flags_below_threshold():
    maps = np.stack([_ring((32, 32), 5, 9)] * 3)
    c = candidates(maps)
    coef = np.zeros((6, 6))
    coef[:, 0] = np.linspace(0.5, 0.8, 6)  # intercepts only: candidate 5 predicted best (0.8)
    d = decide(c, Regressors(coef), threshold=0.7)
    assert d.candidate == 5 and d.predicted_dice == pytest.approx(0.8) and d.qc_pass
    d = decide(c, Regressors(coef), threshold=0.85)
    assert not d.qc_pass and "review" in d.reason


def test_no_myocardium_is_no_answer_even_when_all_candidates_agree():
    c = candidates(np.zeros((3, 32, 32), np.uint8))
    coef = np.zeros((6, 6))
    coef[:, 0] = 0.95  # agreement on "nothing" would look perfect
    d = decide(c, Regressors(coef))
    assert d.predicted_dice == 0.0 and not d.qc_pass and "no myocardium" in d.reason
    tiny = np.zeros((3, 32, 32), np.uint8)
    tiny[:, 0, :MIN_MYOCARDIUM_PX - 1] = 1
    assert not decide(candidates(tiny), Regressors(coef)).qc_pass


def test_true_dice_is_zero_for_every_candidate_when_the_truth_has_no_myocardium():
    c = candidates(np.stack([_ring((32, 32), 5, 9)] * 3))
    assert np.all(true_dice(c, np.zeros((32, 32))) == 0)
    assert np.allclose(true_dice(c, _ring((32, 32), 5, 9)), 1.0)


def test_two_separate_hearts_fail_qc_whatever_the_predicted_dice():
    two = np.maximum(_ring((32, 64), 4, 7, (16, 16)), _ring((32, 64), 4, 7, (16, 48)))
    coef = np.zeros((6, 6))
    coef[:, 0] = 0.95
    d = decide(candidates(np.stack([two] * 3)), Regressors(coef))
    assert not d.qc_pass and "separate regions" in d.reason
    one = _ring((32, 64), 4, 7, (16, 16))
    one[0, 60:63] = 1  # a tiny stray fragment is fine
    assert decide(candidates(np.stack([one] * 3)), Regressors(coef)).qc_pass

"""T1 fitting against the analytic recovery model and an independent scipy fit."""
import numpy as np
import pytest
from scipy.optimize import curve_fit

from cmrlib import InputError
from cmrlib.t1.fit import fit_t1

SHMOLLI = [100.0, 180.0, 260.0, 1100.0, 1180.0, 2100.0, 3100.0]
MOLLI_533 = [120.0, 200.0, 1020.0, 1100.0, 1920.0, 2000.0, 2820.0, 3720.0]
MOLLI_11 = [110.0, 190.0, 270.0, 1010.0, 1090.0, 1170.0, 1910.0, 2070.0, 2970.0, 3870.0, 4770.0]


def _signals(t1, a, ratio, tis):
    b = a * ratio
    t1s = t1 / (ratio - 1)
    return np.abs(a[None] - b[None] * np.exp(-np.asarray(tis)[:, None, None] / t1s[None]))


@pytest.mark.parametrize("tis", [SHMOLLI, MOLLI_533, MOLLI_11], ids=["ShMOLLI", "MOLLI533", "MOLLI11"])
def test_noise_free_t1_within_0p1_percent(tis, rng):
    t1 = rng.uniform(300, 2000, (24, 24))
    a = rng.uniform(200, 1000, (24, 24))
    ratio = rng.uniform(1.8, 2.0, (24, 24))
    res = fit_t1(_signals(t1, a, ratio, tis), tis)
    assert res.valid.all()
    assert np.abs(res.t1 / t1 - 1).max() < 1e-3
    assert res.r2.min() > 0.9999
    assert np.allclose(res.b / res.a, ratio, rtol=1e-3)


def test_frames_in_any_order(rng):
    order = rng.permutation(len(SHMOLLI))
    t1 = np.full((4, 4), 1000.0)
    frames = _signals(t1, np.full((4, 4), 500.0), np.full((4, 4), 1.9), SHMOLLI)
    res = fit_t1(frames[order], [SHMOLLI[k] for k in order])
    assert np.allclose(res.t1, 1000.0, rtol=1e-3)


def test_agrees_with_independent_scipy_fit_under_noise(rng):
    tis = np.asarray(SHMOLLI)
    t1 = np.full((6, 6), 1000.0)
    frames = _signals(t1, np.full((6, 6), 400.0), np.full((6, 6), 1.9), SHMOLLI)
    frames = np.abs(frames + rng.normal(0, 8, frames.shape))
    res = fit_t1(frames, SHMOLLI)

    def model(ti, a, b, t1s):  # polarity restored by trying every null position
        return a - b * np.exp(-ti / t1s)

    for r, c in [(0, 0), (2, 3), (5, 5)]:
        y = frames[:, r, c]
        best = None
        for k in range(len(tis)):
            ys = np.where(np.arange(len(tis)) < k, -y, y)
            try:
                p, _ = curve_fit(model, tis, ys, p0=(ys[-1], 2 * ys[-1], 800.0), maxfev=5000)
            except RuntimeError:
                continue
            cost = ((model(tis, *p) - ys) ** 2).sum()
            if best is None or cost < best[0]:
                best = (cost, p[2] * (p[1] / p[0] - 1))
        assert res.t1[r, c] == pytest.approx(best[1], rel=2e-3)


def test_background_masked_not_nan(rng):
    frames = np.zeros((7, 10, 10))
    frames[:, 3:7, 3:7] = _signals(np.full((4, 4), 1200.0), np.full((4, 4), 500.0), np.full((4, 4), 1.9), SHMOLLI)
    res = fit_t1(frames, SHMOLLI)
    assert res.valid[3:7, 3:7].all() and not res.valid[0].any()
    assert np.isfinite(res.t1).all() and (res.t1[~res.valid] == 0).all()
    mask = np.zeros((10, 10), bool)
    mask[4, 4] = True
    assert fit_t1(frames, SHMOLLI, mask=mask).valid.sum() == 1


@pytest.mark.parametrize("frames, tis, text", [
    (np.ones((4, 5, 5)), [100.0, 200.0, 300.0, 400.0], "at least 5"),
    (np.ones((7, 5, 5)), SHMOLLI[:6] + [None], "needs an InversionTime"),
    (np.ones((7, 5, 5)), SHMOLLI[:6], "needs an InversionTime"),
    (np.ones((7, 5, 5)), SHMOLLI[:6] + [180.0], "duplicate InversionTime"),
    (np.zeros((7, 5, 5)), SHMOLLI, "all IRW frames are zero"),
    (np.ones((7, 5)), SHMOLLI, "frames must be"),
])
def test_bad_input(frames, tis, text):
    with pytest.raises(InputError, match=text):
        fit_t1(frames, tis)

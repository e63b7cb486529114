"""The quality-control-driven (QCD) framework: candidates, their Dice matrix, Dice regressors.

For one image and the ``M`` U-Nets' class maps (docs/methods/qcd.md):

* **SCS** — the ``M`` single candidate segmentations (each network's arg-max);
* **CCS** — ``M`` combined candidates by pixel-wise k-of-M voting, ``k = 1..M``:
  myocardium where at least ``k`` networks say myocardium, blood pool where at least ``k``
  say blood pool and the pixel is not myocardium;
* the ``2M × 2M`` matrix of myocardium Dice between every pair of candidates;
* one ordinary-least-squares regressor per candidate ``i``: its row of the matrix without the
  diagonal (``2M − 1`` values) and an intercept → that candidate's Dice against the truth,
  fitted on the **validation** split only (:func:`fit_regressors`);
* the candidate with the highest predicted Dice is returned with that Dice; below the QC
  threshold (default 0.7) the image is flagged for review.

Plausibility: a selected myocardium in two separate regions of comparable size (two heart-like
structures: strong ghosting, wrap-around) fails QC whatever its predicted Dice.

"No answer": a selected candidate with less than :data:`MIN_MYOCARDIUM_PX` myocardium pixels on
the network grid has predicted Dice 0 (every candidate agreeing on "nothing" would otherwise
look like perfect agreement) — empty, constant, long-axis and non-cardiac images end here.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MYOCARDIUM, BLOOD_POOL = 1, 2
DEFAULT_THRESHOLD = 0.7
#: below this many myocardium pixels on the network grid (1.5 mm pixels: 22.5 mm²) the answer is "none"
MIN_MYOCARDIUM_PX = 10
#: a second separate myocardium region holding more than this share of it: two heart-like
#: structures (ghosting, wrap-around) — the LV myocardium of a short-axis slice is one ring or arc
SECOND_REGION_SHARE = 0.25


def candidate_names(m: int) -> list[str]:
    """``SCS d1 … SCS dM`` (the U-Net of depth d), then ``CCS k≥1 … CCS k≥M`` (votes)."""
    return [f"SCS d{i + 1}" for i in range(m)] + [f"CCS k>={k}" for k in range(1, m + 1)]


def candidates(class_maps: np.ndarray) -> np.ndarray:
    """``[M, H, W]`` class maps (0/1/2) → ``[2M, H, W]`` uint8 candidates (SCS then CCS)."""
    scs = np.asarray(class_maps, np.uint8)
    m = scs.shape[0]
    myo_votes = (scs == MYOCARDIUM).sum(0)
    bp_votes = (scs == BLOOD_POOL).sum(0)
    ccs = np.zeros_like(scs)
    for k in range(1, m + 1):
        myo = myo_votes >= k
        ccs[k - 1][myo] = MYOCARDIUM
        ccs[k - 1][(bp_votes >= k) & ~myo] = BLOOD_POOL
    return np.concatenate([scs, ccs])


def dice_matrix(cands: np.ndarray) -> np.ndarray:
    """``[2M, 2M]`` myocardium Dice between candidates (1 where both are empty, as
    :func:`cmrlib.metrics.dice`); computed at once as one matrix product."""
    a = (np.asarray(cands) == MYOCARDIUM).reshape(len(cands), -1).astype(np.float32)
    inter = a @ a.T
    size = a.sum(1)
    denom = size[:, None] + size[None, :]
    return np.where(denom > 0, 2.0 * inter / np.maximum(denom, 1.0), 1.0).astype(np.float64)


def features(matrix: np.ndarray, i: int) -> np.ndarray:
    """Regressor input of candidate ``i``: 1 (intercept) and its row without the diagonal."""
    row = np.delete(np.asarray(matrix, float)[i], i)
    return np.concatenate([[1.0], row])


@dataclass
class Regressors:
    """One OLS regressor per candidate: ``coef[i] @ features(matrix, i)`` → predicted Dice."""

    coef: np.ndarray  # [2M, 2M]: intercept + 2M-1 weights

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        """Predicted Dice (clipped 0–1) of every candidate of one image."""
        n = len(self.coef)
        return np.clip([float(self.coef[i] @ features(matrix, i)) for i in range(n)], 0.0, 1.0)

    def to_dict(self) -> dict:
        return {"coefficients": np.round(self.coef, 8).tolist(),
                "features": "intercept, then the candidate's row of the inter-candidate Dice matrix without the diagonal"}

    @classmethod
    def from_dict(cls, d: dict) -> "Regressors":
        coef = np.asarray(d["coefficients"], float)
        if coef.ndim != 2 or coef.shape[0] != coef.shape[1]:
            raise ValueError(f"QCD regressor coefficients must be 2M × 2M; got {coef.shape}")
        return cls(coef)


def fit_regressors(matrices: list[np.ndarray], true_dice: list[np.ndarray], ridge: float = 1e-6) -> Regressors:
    """Ordinary least squares per candidate on the validation images (``ridge`` only keeps the
    normal equations solvable when two candidates are identical on every image)."""
    mats = np.asarray(matrices, float)  # [n, 2M, 2M]
    y = np.asarray(true_dice, float)  # [n, 2M]
    n_img, n = y.shape
    if n_img < n + 1:
        raise ValueError(f"fitting {n} regressors of {n} parameters needs more than {n} validation images; got {n_img}")
    coef = np.zeros((n, n))
    for i in range(n):
        x = np.stack([features(m, i) for m in mats])
        coef[i] = np.linalg.solve(x.T @ x + ridge * np.eye(n), x.T @ y[:, i])
    return Regressors(coef)


@dataclass
class QCDecision:
    """The QC outcome of one image."""

    candidate: int  # index into candidate_names
    predicted_dice: float
    candidates_predicted_dice: list[float]
    qc_pass: bool
    reason: str = ""  # why it failed ("" when it passed)


def decide(cands: np.ndarray, regressors: Regressors, threshold: float = DEFAULT_THRESHOLD) -> QCDecision:
    """Pick the candidate with the highest predicted Dice; flag below ``threshold``."""
    matrix = dice_matrix(cands)
    pred = regressors.predict(matrix)
    best = int(np.argmax(pred))
    predicted = float(pred[best])
    if int((cands[best] == MYOCARDIUM).sum()) < MIN_MYOCARDIUM_PX:
        return QCDecision(best, 0.0, [round(float(v), 4) for v in pred], False,
                          "no myocardium found (not a short-axis image of the LV, or unreadable)")
    regions = myocardium_regions(cands[best])
    if len(regions) > 1 and regions[1] > SECOND_REGION_SHARE * sum(regions):
        return QCDecision(best, predicted, [round(float(v), 4) for v in pred], False,
                          f"the myocardium falls into {len(regions)} separate regions (a second heart-like "
                          "structure: ghosting or wrap-around?): review this slice")
    ok = predicted >= threshold
    return QCDecision(best, predicted, [round(float(v), 4) for v in pred], ok,
                      "" if ok else f"predicted Dice {predicted:.2f} < {threshold:.2f}: review this slice")


def myocardium_regions(candidate: np.ndarray) -> list[int]:
    """Pixel counts of the candidate's separate myocardium regions (8-connected), largest first."""
    from scipy import ndimage
    lab, n = ndimage.label(np.asarray(candidate) == MYOCARDIUM, structure=np.ones((3, 3)))
    return sorted(np.bincount(lab.ravel())[1:].tolist(), reverse=True) if n else []


def true_dice(cands: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Myocardium Dice of every candidate against the truth label map (the regression target).
    An image whose truth has no myocardium scores 0 for every candidate: "no answer" is what
    it should get, and :func:`decide` gives it."""
    from ..metrics import dice
    t = np.asarray(truth) == MYOCARDIUM
    if not t.any():
        return np.zeros(len(cands))
    return np.array([dice(c == MYOCARDIUM, t) for c in cands])

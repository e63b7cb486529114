"""The one home of the evaluation metrics every capability, benchmark and test uses.

Dice overlap, end-point error of displacement fields, the intraclass correlation coefficient
(form named, after McGraw & Wong 1996 / Shrout & Fleiss 1979), Bland–Altman limits of
agreement, confusion-matrix statistics, Cohen's κ, McNemar's exact test of two paired
classifications, the ROC AUC and the regression through the origin with Pearson's r. Plain numpy;
no torch.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ICC_FORMS = ("ICC(1,1)", "ICC(2,1)", "ICC(3,1)")


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice overlap 2|A∩B| / (|A|+|B|) of two boolean masks; 1.0 when both are empty."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    s = int(a.sum()) + int(b.sum())
    return float(2.0 * np.logical_and(a, b).sum() / s) if s else 1.0


def endpoint_error(dvf: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean end-point error (pixels) between DVF sets ``[frame, 2, row, col]``, within ``mask``."""
    epe = np.sqrt(((np.asarray(dvf) - np.asarray(truth)) ** 2).sum(axis=1))  # [frame, row, col]
    if mask is not None:
        epe = epe[:, np.asarray(mask, bool)]
    return float(epe.mean())


def icc(ratings: np.ndarray, form: str = "ICC(3,1)") -> float:
    """Intraclass correlation of ``ratings[subject, rater]`` (single measures).

    ``ICC(1,1)``: one-way random effects; ``ICC(2,1)``: two-way random, absolute agreement;
    ``ICC(3,1)``: two-way mixed, consistency (the form reported for repeated measurements by
    the same method, e.g. test–retest T1).
    """
    x = np.asarray(ratings, float)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 2:
        raise ValueError(f"ICC needs ratings[subjects ≥ 2, raters ≥ 2]; got shape {x.shape}")
    if form not in ICC_FORMS:
        raise ValueError(f"unknown ICC form {form!r}; expected one of {', '.join(ICC_FORMS)}")
    n, k = x.shape
    grand = x.mean()
    ss_rows = k * ((x.mean(axis=1) - grand) ** 2).sum()
    ss_cols = n * ((x.mean(axis=0) - grand) ** 2).sum()
    ss_total = ((x - grand) ** 2).sum()
    ss_err = ss_total - ss_rows - ss_cols
    msr, msc = ss_rows / (n - 1), ss_cols / (k - 1)
    mse = ss_err / ((n - 1) * (k - 1))
    msw = (ss_cols + ss_err) / (n * (k - 1))
    if form == "ICC(1,1)":
        return float((msr - msw) / (msr + (k - 1) * msw))
    if form == "ICC(2,1)":
        return float((msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n))
    return float((msr - mse) / (msr + (k - 1) * mse))


@dataclass
class BlandAltman:
    bias: float  # mean of (a − b), in the units of the inputs
    sd: float
    lower: float  # bias − 1.96 sd
    upper: float  # bias + 1.96 sd
    n: int


def bland_altman(a: np.ndarray, b: np.ndarray) -> BlandAltman:
    """Bias and 95 % limits of agreement of paired measurements ``a`` and ``b``."""
    d = np.asarray(a, float).ravel() - np.asarray(b, float).ravel()
    if d.size < 2:
        raise ValueError("Bland–Altman needs at least two pairs")
    bias, sd = float(d.mean()), float(d.std(ddof=1))
    return BlandAltman(bias, sd, bias - 1.96 * sd, bias + 1.96 * sd, int(d.size))


@dataclass
class BinaryStats:
    tp: int
    fp: int
    tn: int
    fn: int

    @property
    def sensitivity(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else float("nan")

    @property
    def specificity(self) -> float:
        return self.tn / (self.tn + self.fp) if self.tn + self.fp else float("nan")

    @property
    def accuracy(self) -> float:
        total = self.tp + self.fp + self.tn + self.fn
        return (self.tp + self.tn) / total if total else float("nan")

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else float("nan")

    @property
    def recall(self) -> float:
        """= sensitivity."""
        return self.sensitivity

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r > 0 else (0.0 if self.tp + self.fn else float("nan"))


def binary_stats(truth: np.ndarray, predicted: np.ndarray) -> BinaryStats:
    """Confusion-matrix counts of boolean ``predicted`` against boolean ``truth``."""
    t, p = np.asarray(truth, bool).ravel(), np.asarray(predicted, bool).ravel()
    return BinaryStats(int((t & p).sum()), int((~t & p).sum()), int((~t & ~p).sum()), int((t & ~p).sum()))


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """``m[true_class, predicted_class]`` counts for integer labels ``0..n_classes-1``."""
    t, p = np.asarray(truth, int).ravel(), np.asarray(predicted, int).ravel()
    m = np.zeros((n_classes, n_classes), int)
    np.add.at(m, (t, p), 1)
    return m


def cohen_kappa(a: np.ndarray, b: np.ndarray, n_classes: int) -> float:
    """Cohen's κ of two raters' integer labels ``0..n_classes-1`` (1 = perfect, 0 = chance)."""
    m = confusion_matrix(a, b, n_classes).astype(float)
    n = m.sum()
    if n == 0:
        raise ValueError("Cohen's kappa needs at least one pair of labels")
    observed = np.trace(m) / n
    chance = float((m.sum(axis=0) * m.sum(axis=1)).sum()) / n ** 2
    return float((observed - chance) / (1.0 - chance)) if chance < 1.0 else 1.0


@dataclass
class McNemar:
    only_a: int  # cases only method a got right
    only_b: int  # cases only method b got right
    p: float  # two-sided exact (binomial) p-value


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> McNemar:
    """McNemar's exact test: do two methods, judged on the same cases (booleans: right or wrong),
    differ? Only the discordant cases count; p = 2 · P(X ≤ min) for X ~ Binomial(discordant, ½)."""
    from math import comb
    a, b = np.asarray(correct_a, bool).ravel(), np.asarray(correct_b, bool).ravel()
    if a.shape != b.shape:
        raise ValueError(f"McNemar needs paired results; got {a.size} and {b.size}")
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    n, k = only_a + only_b, min(only_a, only_b)
    p = min(1.0, 2.0 * sum(comb(n, i) for i in range(k + 1)) / 2.0 ** n) if n else 1.0
    return McNemar(only_a, only_b, float(p))


def roc_auc(truth: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve of ``score`` for boolean ``truth`` (Mann–Whitney, ties halved)."""
    from scipy.stats import rankdata
    t = np.asarray(truth, bool).ravel()
    s = np.asarray(score, float).ravel()
    n_pos, n_neg = int(t.sum()), int((~t).sum())
    if not n_pos or not n_neg:
        raise ValueError("ROC AUC needs both positive and negative cases")
    ranks = rankdata(s)
    return float((ranks[t].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def landmark_error_mm(predicted_px: np.ndarray, truth_px: np.ndarray,
                      spacing_mm: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """Euclidean error (mm) of in-plane points given as ``(col, row)`` pixels (…, 2) on a grid of
    ``spacing_mm`` = (Δcol, Δrow); one value per point (report the median, thesis ch. 5)."""
    d = (np.asarray(predicted_px, float) - np.asarray(truth_px, float)) * np.asarray(spacing_mm, float)[:2]
    return np.hypot(d[..., 0], d[..., 1])


def line_angle_error_deg(a_pred: np.ndarray, b_pred: np.ndarray, a_true: np.ndarray, b_true: np.ndarray,
                         spacing_mm: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """Angle (°, 0–180) between the predicted and the true line a → b, e.g. the RV entry line
    (anterior RV insertion → LV centre); points as ``(col, row)`` pixels (…, 2)."""
    sp = np.asarray(spacing_mm, float)[:2]
    p = (np.asarray(b_pred, float) - np.asarray(a_pred, float)) * sp
    t = (np.asarray(b_true, float) - np.asarray(a_true, float)) * sp
    diff = np.arctan2(p[..., 1], p[..., 0]) - np.arctan2(t[..., 1], t[..., 0])
    return np.abs(np.degrees((diff + np.pi) % (2 * np.pi) - np.pi))


@dataclass
class Regression:
    """``y ≈ slope × x`` through the origin (as seed 003 reports %scar and volume), with Pearson's r."""

    slope: float
    r: float
    n: int


def regression_through_origin(truth: np.ndarray, predicted: np.ndarray) -> Regression:
    """Least-squares slope of ``predicted = slope × truth`` (no intercept) and Pearson's r."""
    x, y = np.asarray(truth, float).ravel(), np.asarray(predicted, float).ravel()
    if x.size < 2:
        raise ValueError("a regression needs at least two pairs")
    sxx = float(x @ x)
    slope = float(x @ y) / sxx if sxx > 0 else float("nan")
    r = float(np.corrcoef(x, y)[0, 1]) if x.std() > 0 and y.std() > 0 else float("nan")
    return Regression(slope, r, int(x.size))

"""Training and evaluation slices for the certainty and slice-level classifiers.

**Phantom** (:func:`phantom_slices`): every slice of a subject's short-axis LGE stack (PSIR, and
the magnitude image for a quarter of the subjects), the stack extended by 0–2 slices above the
mitral plane and 0–2 beyond the apex so that *too basal* and *too apical* slices are common
(a planned stack has few). Training subjects come from :func:`cmrlib.phantom.sets.subject`
(1.5 T, matrices 80–160, pixels 1.4–4 mm); the shifted set is 3 T, other SNR, poor nulling
and bright blood, hearts outside the training range. Each slice keeps the phantom's truth:
its SCMR slice class and its LGE likelihood (:func:`cmrlib.phantom.labels.lge_likelihood`:
scar conspicuity against measured artefact strength).

**Simulated raters** (:func:`simulate_raters`): the card's labels are the mean of two experts'
visual-analogue scores, and experts disagree (Spearman ρ 0.82, 86 % agreement on the class).
So a label here is not the phantom's likelihood but the mean of two simulated raters' scores:
the likelihood plus a rater's own offset (SD ``RATER_BIAS_SD``) plus noise that is largest for
equivocal images (SD ``sd · (0.35 + 0.65 · 4p(1−p))``, p = likelihood / 100), clipped to 0–100.
:func:`calibrate_rater_sd` picks ``sd`` so that two raters reach the published ρ on the
training subjects; the class agreement it gives is reported beside it (docs/methods).

**User data** (``--data DIR``, :func:`user_slices`): images (NRRD / NIfTI / MHA files or DICOM
folders, paths relative to DIR) with one CSV — the format the labelling tools export:

* ``lge_scores.csv`` (certainty): ``image,slice,score[,rater]`` — LGE likelihood 0–100, one row
  per rater score (the mean is the label, the card's 25 / 75 cut points give the class);
* ``slice_levels.csv`` (slice level): ``image,slice,class[,rating]`` — class ``too basal`` / ``LV``
  / ``too apical`` (the ranking tool's export; ``rating`` 0 very apical … 3000 very basal is kept).

``slice`` counts from 0 in the image's slice order.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from ..errors import InputError
from .preprocess import context_image

TRAIN_SEED_BASE = 930_000
VAL_SEED_BASE = 960_000
TEST_SEED_BASE = 970_000  # held-out subjects of the benchmark
SHIFTED_SEED_BASE = 980_000
SLICE_CLASSES = ("too basal", "LV", "too apical")
CERTAINTY_CLASSES = ("high", "low")
#: the card's class cut points on the rater-mean LGE likelihood (0–25 and 75–100 high certainty)
LOW_CERTAINTY_RANGE = (25.0, 75.0)
#: published inter-rater agreement the simulated raters are calibrated to (seed 000)
PUBLISHED_RATER_SPEARMAN = 0.82
PUBLISHED_RATER_ACCURACY = 0.86
RATER_BIAS_SD = 3.0
SCORES_CSV = "lge_scores.csv"
LEVELS_CSV = "slice_levels.csv"


@dataclass
class QualitySlice:
    """One slice for training / evaluation: the card's context image and its labels."""

    context: np.ndarray  # [n, n] float16, preprocess.context_image
    slice_class: str  # too basal / LV / too apical
    likelihood: float | None = None  # true LGE likelihood 0–100 (phantom) or the rater mean (user data)
    rater_scores: tuple[float, ...] = ()
    subject: int = -1
    tissue: np.ndarray | None = None  # phantom labels on the context grid (random-contrast images), uint8
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def label_likelihood(self) -> float | None:
        """The training label: the rater mean when raters scored, else the likelihood."""
        if self.rater_scores:
            return float(np.mean(self.rater_scores))
        return self.likelihood

    @property
    def low_certainty(self) -> bool | None:
        v = self.label_likelihood
        return None if v is None else bool(is_low_certainty(v))

    @property
    def true_low_certainty(self) -> bool | None:
        return None if self.likelihood is None else bool(is_low_certainty(self.likelihood))


def is_low_certainty(likelihood):
    lo, hi = LOW_CERTAINTY_RANGE
    x = np.asarray(likelihood, float)
    return (x > lo) & (x < hi)


# ---- simulated raters ----------------------------------------------------------------------
def rater_noise_sd(likelihood: np.ndarray, sd: float) -> np.ndarray:
    p = np.clip(np.asarray(likelihood, float) / 100.0, 0.0, 1.0)
    return sd * (0.35 + 0.65 * 4.0 * p * (1.0 - p))


def simulate_raters(likelihood: np.ndarray, sd: float, rng: np.random.Generator, n_raters: int = 2) -> np.ndarray:
    """Scores ``[n_slices, n_raters]`` (0–100) of simulated raters (module docstring)."""
    lk = np.asarray(likelihood, float)
    bias = rng.normal(0.0, RATER_BIAS_SD, n_raters)
    noise = rng.normal(0.0, 1.0, (lk.size, n_raters)) * rater_noise_sd(lk, sd)[:, None]
    return np.clip(lk[:, None] + bias[None] + noise, 0.0, 100.0)


def ideal_reader_p_low(likelihood: np.ndarray, sd: float, n_raters: int = 2, draws: int = 4000,
                       seed: int = 0) -> np.ndarray:
    """The best any reader of the image can do against rater-mean labels: the probability that
    ``n_raters`` simulated raters' mean falls in the low-certainty band, given the phantom's
    noise-free likelihood (Monte Carlo over the raters' offsets and noise). Thresholded at 0.5
    it is the Bayes-optimal classifier of the rater-mean class, so its accuracy / F1 / AUC are
    the ceiling a network can reach on these labels."""
    lk = np.asarray(likelihood, float)
    rng = np.random.default_rng(seed)
    p = np.empty(lk.size)
    for i in range(0, lk.size, 256):  # chunks keep the draws' memory small
        part = lk[i:i + 256]
        bias = rng.normal(0.0, RATER_BIAS_SD, (draws, 1, n_raters))
        noise = rng.normal(0.0, 1.0, (draws, part.size, n_raters)) * rater_noise_sd(part, sd)[None, :, None]
        mean = np.clip(part[None, :, None] + bias + noise, 0.0, 100.0).mean(-1)
        p[i:i + 256] = is_low_certainty(mean).mean(0)
    return p


def rater_agreement(scores: np.ndarray) -> dict[str, float]:
    """Spearman ρ and the class agreement (25 / 75 cut points) between raters 0 and 1."""
    a, b = scores[:, 0], scores[:, 1]
    rho = float(stats.spearmanr(a, b).statistic)
    return {"spearman": round(rho, 4), "accuracy": round(float(np.mean(is_low_certainty(a) == is_low_certainty(b))), 4)}


def calibrate_rater_sd(likelihood: np.ndarray, target_rho: float = PUBLISHED_RATER_SPEARMAN, seed: int = 0) -> dict:
    """The rater noise SD (points) at which two simulated raters agree with Spearman ``target_rho``."""
    lk = np.asarray(likelihood, float)
    lo, hi = 0.0, 60.0
    for _ in range(30):
        mid = 0.5 * (lo + hi)
        rho = np.mean([rater_agreement(simulate_raters(lk, mid, np.random.default_rng(seed + r)))["spearman"]
                       for r in range(4)])
        lo, hi = (mid, hi) if rho > target_rho else (lo, mid)
    sd = 0.5 * (lo + hi)
    agree = [rater_agreement(simulate_raters(lk, sd, np.random.default_rng(seed + 100 + r))) for r in range(8)]
    return {"sd": round(sd, 3), "spearman": round(float(np.mean([a["spearman"] for a in agree])), 4),
            "accuracy": round(float(np.mean([a["accuracy"] for a in agree])), 4), "slices": int(lk.size)}


# ---- phantom ---------------------------------------------------------------------------------
MAGNITUDE_SHARE = 0.25  # subjects whose magnitude (not PSIR) LGE stack is used


def phantom_lge_stack(seed: int, shifted: bool = False):
    """The extended LGE stack of subject ``seed``: its PSIR series, or for a quarter of the subjects
    the magnitude one (the same draw for training and evaluation)."""
    from ..phantom.sets import extended_phantom
    rng = np.random.default_rng(seed + 5)
    psir, mag = extended_phantom(seed, shifted, rng).lge()
    return mag if rng.random() < MAGNITUDE_SHARE else psir


def phantom_slices(seed_base: int, n_subjects: int, crop_size: int, *, shifted: bool = False,
                   progress=None) -> list[QualitySlice]:
    """Every slice of ``n_subjects`` phantom LGE stacks as :class:`QualitySlice` (module docstring)."""
    from ..progress import report
    from .preprocess import CONTEXT, _resample, card_square
    out: list[QualitySlice] = []
    for i in range(n_subjects):
        seed = seed_base + i
        report(progress, "phantom LGE stacks", i, n_subjects, f"subject {seed}")
        series = phantom_lge_stack(seed, shifted)
        arr = np.asarray(series.image.array, np.float32)
        lab = np.asarray(series.labels.array)
        for k, st in enumerate(series.truth["slices"]):
            r, c, side = card_square(arr[k].shape)
            n = int(round(crop_size * CONTEXT))
            tissue = _resample(lab[k].astype(np.float32), (r, c), side * CONTEXT, n, order=0).astype(np.uint8)
            out.append(QualitySlice(context_image(arr[k], crop_size).astype(np.float16), st["class"],
                                    float(st["lge_likelihood"]), subject=seed, tissue=tissue,
                                    meta={"kind": series.kind, "index": k, "scar": bool(st.get("scar_present")),
                                          "uncertainty": st.get("uncertainty"), "evidence": st.get("evidence")}))
    report(progress, "phantom LGE stacks", n_subjects, n_subjects, "done")
    return out


def add_raters(slices: list[QualitySlice], sd: float, seed: int) -> None:
    """Give every LV slice two simulated raters' scores (in place)."""
    lv = [s for s in slices if s.slice_class == "LV" and s.likelihood is not None]
    if not lv:
        return
    scores = simulate_raters(np.array([s.likelihood for s in lv]), sd, np.random.default_rng(seed))
    for s, sc in zip(lv, scores):
        s.rater_scores = tuple(round(float(v), 2) for v in sc)


# ---- user data -------------------------------------------------------------------------------
def _read_csv(path: Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: cannot read ({exc})") from exc
    header = {h.strip().lower() for h in (rows[0].keys() if rows else [])}
    missing = [c for c in required if c not in header]
    if not rows or missing:
        raise InputError(f"{path}: needs columns {', '.join(required)}"
                         + (f"; missing {', '.join(missing)}" if rows else "; the file has no rows"))
    return [{k.strip().lower(): (v or "").strip() for k, v in r.items() if k} for r in rows]


def _load_stack(folder: Path, name: str, cache: dict) -> np.ndarray:
    if name not in cache:
        from ..image import Image
        from ..io import image_or_scan, load_series
        path = folder / name
        found = image_or_scan(path, "--data")
        if not isinstance(found, Image):
            lge = [s for s in found.series if s.kind in ("lge_psir", "lge_magnitude")] or found.series
            found = load_series(lge[0])
        arr = np.asarray(found.array, np.float32)
        if found.is_sequence:
            raise InputError(f"--data {path}: a multi-frame series; give one slice per image or a stack")
        cache[name] = arr if arr.ndim == 3 else arr[None]
    return cache[name]


def user_slices(folder: str | Path, task: str, crop_size: int) -> list[QualitySlice]:
    """A site's own labelled slices (module docstring); ``task`` certainty or slice-level."""
    folder = Path(folder)
    name = SCORES_CSV if task == "certainty" else LEVELS_CSV
    path = folder / name
    if not path.is_file():
        raise InputError(f"--data {folder}: no {name} (README 'Quality training data' gives its columns)")
    rows = _read_csv(path, ("image", "slice", "score") if task == "certainty" else ("image", "slice", "class"))
    stacks: dict[str, np.ndarray] = {}
    grouped: dict[tuple[str, int], list[dict]] = {}
    for i, r in enumerate(rows, start=2):
        try:
            key = (r["image"], int(r["slice"]))
        except ValueError as exc:
            raise InputError(f"{path} line {i}: slice must be an integer; got {r['slice']!r}") from exc
        grouped.setdefault(key, []).append(r)
    out = []
    for (image, k), rs in grouped.items():
        arr = _load_stack(folder, image, stacks)
        if not 0 <= k < arr.shape[0]:
            raise InputError(f"{path}: {image} has {arr.shape[0]} slice(s); slice {k} does not exist")
        ctx = context_image(arr[k], crop_size).astype(np.float16)
        if task == "certainty":
            try:
                scores = tuple(float(r["score"]) for r in rs)
            except ValueError as exc:
                raise InputError(f"{path}: {image} slice {k}: scores must be numbers 0–100") from exc
            if any(not 0 <= v <= 100 for v in scores):
                raise InputError(f"{path}: {image} slice {k}: scores must be 0–100; got {scores}")
            out.append(QualitySlice(ctx, "LV", float(np.mean(scores)), scores, meta={"image": image, "index": k}))
        else:
            cls = rs[-1]["class"]
            norm = {c.lower(): c for c in SLICE_CLASSES}
            if cls.lower() not in norm:
                raise InputError(f"{path}: {image} slice {k}: class must be one of {', '.join(SLICE_CLASSES)}; "
                                 f"got {cls!r}")
            out.append(QualitySlice(ctx, norm[cls.lower()], meta={"image": image, "index": k,
                                                                 "rating": rs[-1].get("rating")}))
    return out

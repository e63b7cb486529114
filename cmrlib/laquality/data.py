"""Training and evaluation scans for the LA detector and the LA quality network (seed 001).

**Phantom scans** (:func:`phantom_scan`): the phantom's axial 3-D LA LGE (1.25 × 1.25 × 2.5 mm,
192² × 44 slices here, 240 mm field of view) with its LA blood-pool mask and its quality truth
(:func:`cmrlib.phantom.labels.la_quality_continuous`: nulling from the LV myocardium / blood
ratio, sharpness from the edge blur, aorta/valve enhancement from the wall contrast, the overall
score from them and the SNR). A share of subjects get a blur artefact (the phantom's default
cohort is almost always sharp, which would make the sharpness attribute trivial).

**Simulated raters** (:func:`simulate_raters`): the card's scores come from trained observers
and disagree. Each of two raters sees a scan's unrounded 1–5 scores plus their own offset
(SD :data:`RATER_OFFSET_SD`) and per-scan noise (SD :data:`RATER_NOISE_SD` points), rounds to an
integer; the label is the mean of the two, *diagnostic* when ≥ 3 (the card's binarisation).
With these settings the raters agree on the binary overall label on about 85 % of scans, and
the label differs from the noise-free one on about 1 scan in 10: the ceiling a network can
reach is well below F1 = 1 (the measured agreement is in the model manifest and the bench).

**Shifted scans** (:func:`shift_scan`): the same anatomy re-acquired differently — 1.6 mm
in-plane / 2.0 mm slices (resampled back, as the pipeline does), a strong coil-shading field,
the atrium off the centre of the field of view and an arbitrary intensity scale; the labels do
not change.

**A site's own scans** (:func:`user_scans`, ``--data DIR``): ``DIR/la_scores.csv`` with columns
``image,myocardial_nulling,sharpness,aorta_valve_enhancement,overall_quality`` (integer scores
1–5, 5 best), optional ``mask`` (an LA blood-pool mask file, needed to train the detector and the
multi-task variant) and optional ``rater`` (several rows per image are averaged). ``image`` and
``mask`` are paths relative to ``DIR``: NRRD / NIfTI / MHA files or DICOM folders.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .networks import LABELS
from .preprocess import check_volume, normalise_volume, to_card_grid

SCORES_CSV = "la_scores.csv"
TRAIN_SEED_BASE, VAL_SEED_BASE, TEST_SEED_BASE = 60_000, 61_000, 62_000
MATRIX, N_SLICES = 192, 44
RATER_NOISE_SD = 0.45  # points on the 1–5 scale
RATER_OFFSET_SD = 0.2
BLUR_SHARE = 0.4  # share of phantom subjects given a blur artefact (severity 0.1–1)
DIAGNOSTIC_FROM = 3.0


@dataclass
class LAScan:
    """One axial LA LGE volume on the card grid, normalised to 0–1, with what is known of it."""

    name: str
    volume: np.ndarray  # float16 [Z, H, W]
    mask: np.ndarray | None = None  # bool [Z, H, W], LA blood pool
    scores: dict[str, float] | None = None  # label → raters' mean score (1–5)
    truth: dict[str, float] | None = None  # label → noise-free unrounded score (phantom only)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def labels(self) -> np.ndarray | None:
        """Binary targets in :data:`LABELS` order (1 = diagnostic, score ≥ 3)."""
        if self.scores is None:
            return None
        return np.array([float(self.scores[k] >= DIAGNOSTIC_FROM) for k in LABELS], np.float32)

    @property
    def truth_labels(self) -> np.ndarray | None:
        if self.truth is None:
            return None
        return np.array([float(np.round(self.truth[k]) >= DIAGNOSTIC_FROM) for k in LABELS], np.float32)

    @property
    def la_slices(self) -> list[int]:
        return [] if self.mask is None else [int(k) for k in np.flatnonzero(self.mask.reshape(len(self.mask), -1).any(1))]

    @property
    def la_centre(self) -> tuple[float, float]:
        """(row, col) of the blood pool's centroid over the volume (the slice centre without a mask)."""
        if self.mask is None or not self.mask.any():
            return ((self.volume.shape[1] - 1) / 2.0, (self.volume.shape[2] - 1) / 2.0)
        rows, cols = np.nonzero(self.mask.any(0))
        w = self.mask.sum(0)[rows, cols]
        return (float(np.average(rows, weights=w)), float(np.average(cols, weights=w)))


def simulate_raters(truth: dict[str, float], rng: np.random.Generator, n_raters: int = 2,
                    noise_sd: float = RATER_NOISE_SD, offset_sd: float = RATER_OFFSET_SD) -> dict[str, list[int]]:
    """Integer 1–5 scores of ``n_raters`` raters for each label from the unrounded truth."""
    offsets = rng.normal(0.0, offset_sd, n_raters)
    return {k: [int(np.clip(np.round(truth[k] + offsets[r] + rng.normal(0.0, noise_sd)), 1, 5))
                for r in range(n_raters)] for k in LABELS}


def phantom_options(seed: int):
    """The phantom options of LA cohort subject ``seed`` (a share with a blur artefact)."""
    from ..phantom import PhantomOptions
    rng = np.random.default_rng([seed, 17])
    artefacts = {"blur": float(rng.uniform(0.1, 1.0))} if rng.random() < BLUR_SHARE else {}
    return PhantomOptions(matrix=96, artefacts=artefacts)


def phantom_scan(seed: int, matrix: int = MATRIX, n_slices: int = N_SLICES, rater_seed: int | None = None) -> LAScan:
    """LA cohort subject ``seed``: the phantom's LA 3-D LGE, its mask, truth and two raters' scores."""
    from ..phantom import Phantom, sample_subject
    from ..phantom.labels import la_quality_continuous
    series = Phantom(sample_subject(seed, phantom_options(seed))).la_lge(matrix=matrix, n_slices=n_slices)
    m = series.truth["quality"]["measures"]
    snr = m["snr"] if m["snr"] is not None else float("inf")
    truth = la_quality_continuous(m["lv_myocardium_over_blood"], m["edge_sigma_mm"], m["wall_enhancement_over_blood"],
                                  snr)
    raters = simulate_raters(truth, np.random.default_rng([seed, 29, rater_seed or 0]))
    return LAScan(f"phantom-{seed}", normalise_volume(series.image.array).astype(np.float16),
                  series.labels.array == 6, {k: float(np.mean(v)) for k, v in raters.items()}, truth,
                  {"raters": raters, "seed": seed, "spacing": series.image.spacing})


def cached_phantom_scans(cache: str | Path, base: int, n: int, progress=None) -> list[LAScan]:
    """Phantom scans ``base … base+n-1``, each generated once into ``cache/phantom-<seed>.npz``."""
    import os
    import tempfile

    from ..atomic import replace_file
    from ..progress import report
    cache = Path(cache)
    cache.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        seed = base + i
        path = cache / f"phantom-{seed}.npz"
        if path.is_file():
            z = np.load(path, allow_pickle=False)
            scan = LAScan(f"phantom-{seed}", z["volume"], z["mask"],
                          dict(zip(LABELS, z["scores"].tolist())), dict(zip(LABELS, z["truth"].tolist())),
                          {"seed": seed, "raters": dict(zip(LABELS, z["raters"].tolist()))})
        else:
            scan = phantom_scan(seed)
            # a temporary file of this writer's own: trainers run side by side (the benchmark's
            # jobs) fill one cache, and a shared temporary name let one rename away the other's
            fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".part.npz", dir=cache)
            try:
                with os.fdopen(fd, "wb") as f:
                    np.savez_compressed(f, volume=scan.volume, mask=scan.mask,
                                        scores=np.array([scan.scores[k] for k in LABELS]),
                                        truth=np.array([scan.truth[k] for k in LABELS]),
                                        raters=np.array([scan.meta["raters"][k] for k in LABELS]))
                replace_file(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        out.append(scan)
        report(progress, "LA scans", i + 1, n, scan.name)
    return out


def shift_scan(scan: LAScan, rng: np.random.Generator) -> LAScan:
    """``scan`` re-acquired differently (see the module docstring); labels kept."""
    from scipy import ndimage

    from ..augment import bias_field
    vol = scan.volume.astype(np.float32)
    # coarser acquisition (1.6 mm in-plane, 2.0 mm slices), read back on the card grid
    f = (2.5 / 2.0, 1.25 / 1.6, 1.25 / 1.6)
    low = ndimage.zoom(vol, f, order=1)
    vol = ndimage.zoom(low, np.array(vol.shape) / np.array(low.shape), order=1)[:, :scan.volume.shape[1],
                                                                               :scan.volume.shape[2]]
    vol = np.pad(vol, [(0, a - b) for a, b in zip(scan.volume.shape, vol.shape)], mode="edge")
    field_ = bias_field(vol.shape[1:], rng, float(rng.uniform(0.25, 0.45)))
    vol = vol * field_[None]
    # the atrium off-centre: the field of view moved by up to 30 mm (what leaves it is lost, what
    # enters reads as air)
    shift = (0, int(rng.integers(-24, 25)), int(rng.integers(-24, 25)))
    vol = ndimage.shift(vol, shift, order=0, mode="constant", cval=0.0)
    mask = ndimage.shift(scan.mask.astype(np.uint8), shift, order=0, mode="constant", cval=0) > 0 \
        if scan.mask is not None else None
    vol = vol * float(rng.uniform(50, 3000)) + float(rng.uniform(0, 40))
    return LAScan(scan.name + "-shifted", normalise_volume(vol).astype(np.float16), mask, scan.scores, scan.truth,
                  {**scan.meta, "shifted": True})


def _read_volume(path: Path):
    from ..io import load_series, read_image, scan_folder
    from ..io.files import SUFFIXES
    if path.is_file() and path.name.lower().endswith(SUFFIXES):
        return read_image(path)
    if path.is_dir():
        scan = scan_folder(path)
        if not scan.series:
            raise InputError(f"{path}: no DICOM series found")
        return load_series(scan.series[0])
    raise InputError(f"{path}: no such image file or DICOM folder")


def _resample_mask(mask_img, grid_img) -> np.ndarray:
    from ..io import from_sitk, to_sitk
    import SimpleITK as sitk
    res = sitk.Resample(to_sitk(mask_img.with_array(mask_img.array.astype(np.float32))),
                        to_sitk(grid_img.with_array(grid_img.array.astype(np.float32))), sitk.Transform(),
                        sitk.sitkNearestNeighbor, 0.0)
    return from_sitk(res).array > 0.5


def user_scans(folder: str | Path, need_scores: bool = True, need_masks: bool = False) -> list[LAScan]:
    """A site's own labelled LA LGE volumes from ``folder/la_scores.csv`` (module docstring)."""
    folder = Path(folder)
    table = folder / SCORES_CSV
    if not table.is_file():
        raise InputError(f"--data {folder}: no {SCORES_CSV} (columns image,{','.join(LABELS)}[,mask][,rater]; "
                         "README 'LA quality training data')")
    rows: dict[str, list[dict]] = {}
    with table.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in ("image", *(LABELS if need_scores else ())) if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"{table}: missing column(s) {', '.join(missing)}")
        if need_masks and "mask" not in (reader.fieldnames or []):
            raise InputError(f"{table}: a 'mask' column (LA blood-pool masks) is needed to train the detector")
        for i, row in enumerate(reader, start=2):
            if not (row.get("image") or "").strip():
                raise InputError(f"{table} line {i}: empty image")
            rows.setdefault(row["image"].strip(), []).append({**row, "_line": i})
    scans = []
    for name, group in rows.items():
        scores = None
        if need_scores:
            scores = {}
            for k in LABELS:
                vals = []
                for row in group:
                    try:
                        v = float(row[k])
                    except (TypeError, ValueError):
                        raise InputError(f"{table} line {row['_line']}: {k} must be a score 1–5; got {row[k]!r}")
                    if not 1.0 <= v <= 5.0:
                        raise InputError(f"{table} line {row['_line']}: {k} must be 1–5; got {v:g}")
                    vals.append(v)
                scores[k] = float(np.mean(vals))
        img = _read_volume(folder / name)
        check_volume(img, str(folder / name))
        grid, _ = to_card_grid(img)
        mask = None
        mask_name = (group[0].get("mask") or "").strip()
        if mask_name:
            mask = _resample_mask(_read_volume(folder / mask_name), grid)
        elif need_masks:
            raise InputError(f"{table} line {group[0]['_line']}: no mask for {name}")
        scans.append(LAScan(name, normalise_volume(grid.array).astype(np.float16), mask, scores, None,
                            {"source": str(folder / name)}))
    if not scans:
        raise InputError(f"{table}: no rows")
    return scans


def rater_agreement(scans: list[LAScan]) -> dict[str, float]:
    """Binary agreement of the two simulated raters, and of their mean label with the noise-free one."""
    out = {}
    for j, k in enumerate(LABELS):
        pairs = [s.meta["raters"][k] for s in scans if "raters" in s.meta]
        if pairs:
            a = np.array([[v >= DIAGNOSTIC_FROM for v in p] for p in pairs])
            out[f"{k}_rater_agreement"] = round(float(np.mean(a[:, 0] == a[:, 1])), 3)
        lab = [(s.labels[j], s.truth_labels[j]) for s in scans if s.truth is not None and s.scores is not None]
        if lab:
            out[f"{k}_label_vs_noise_free"] = round(float(np.mean([a == b for a, b in lab])), 3)
    return out

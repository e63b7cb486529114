"""Training, validation and evaluation images of the QCD ensemble, with their label maps.

Phantom images (:func:`phantom_slices`): short-axis slices of phantom subjects
(:func:`cmrlib.phantom.sets.subject`) in every contrast QCD reads (:data:`CONTRASTS`): LGE
PSIR and magnitude, VNE-like images, native and post-contrast T1 maps. Labels are the
phantom's truth mapped to the data contract (0 background, 1 myocardium — scar included —,
2 blood pool). Training T1 maps are the phantom's true T1 of the rendered tissue with the
acquisition blur, fit noise and the scanner's background threshold (the inline fit costs
~1.6 s per map); ``fitted_t1=True`` (validation and benchmark sets) uses the phantom's own
MOLLI/ShMOLLI simulation and inline fit at the basal / mid / apical positions.

Images without a short-axis answer — slices beyond the apex or above the base, long-axis
planes through the LV, and :func:`non_cardiac_image` — carry an all-background label map, so
the networks learn to return nothing there and the QC reports "no myocardium".

Appearance (:func:`training_sample`): every sample is domain-randomised with
:mod:`cmrlib.augment` (random intensity curve, bias field, resolution, noise, per-tissue
random contrast for 15 %, rotation over the full circle for half the samples, mirror,
scale ±20 %, shift ±38 mm on the 256 mm grid; two-pass models: a share of overview samples so
centred, the rest heart-centred crops shifted up to 12 mm) and a share is corrupted
(:func:`cmrlib.augment.corrupt`, severity up to 0.6). Validation / evaluation sets carry a
fixed 35 % of corrupted images at severity 0.3–1 so that some segmentations are poor: the
regressors of the QC learn from those.

User data (:func:`user_slices`, ``cmr train qcd --data DIR``): README "QCD training data".
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from ..augment import corrupt, degrade, jitter_map, random_contrast_image
from ..errors import InputError
from ..planes import PlaneMap, centred_map

CONTRASTS = ("lge_psir", "lge_magnitude", "vne", "t1_native", "t1_post")
TRAIN_SEED_BASE = 910_000
VAL_SEED_BASE = 960_000
TEST_SEED_BASE = 980_000  # held-out subjects of the benchmark
SHIFTED_SEED_BASE = 990_000
EVAL_CORRUPT_FRACTION = 0.35


@dataclass
class Slice2D:
    """One 2-D image with its label map on the same ``[row, col]`` grid."""

    image: np.ndarray  # float32
    labels: np.ndarray  # uint8: 0 background, 1 myocardium, 2 blood pool
    spacing: tuple[float, float]  # (Δcol, Δrow) mm
    contrast: str
    subject: int = -1
    kind: str = "sax"  # sax | beyond_lv | long_axis | non_cardiac | user
    scar: str = "none"  # scar pattern of the subject (phantom)
    tissue: np.ndarray | None = None  # phantom tissue codes (random-contrast images)
    corruption: str | None = None
    severity: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def has_myocardium(self) -> bool:
        return bool((self.labels == 1).any())


def contract_labels(phantom_labels: np.ndarray) -> np.ndarray:
    """Phantom label map → 0 background, 1 myocardium (normal + scar), 2 LV blood pool."""
    lab = np.asarray(phantom_labels)
    out = np.zeros(lab.shape, np.uint8)
    out[(lab == 1) | (lab == 3)] = 1
    out[lab == 2] = 2
    return out


def _scar_name(ph) -> str:
    s = ph.s.scar
    return "none" if s is None else f"{s.kind}/{s.pattern}"


def _t1_render(ph, k: int, condition: str, rng: np.random.Generator, grid=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(scanner-like T1 map ms, phantom labels, tissue) of SAX slice ``k`` without the IRW simulation."""
    from ..phantom.tissue import TISSUE_TO_LABEL
    grid = grid or ph.sax
    r = ph.render(grid, k, ph.t_mid)
    tis = r["tissue"]
    t1 = ph.t1_true(tis, r["aha"], condition)
    t1 = ndimage.gaussian_filter(t1, float(rng.uniform(0.5, 1.3)))
    t1 = t1 * (1.0 + rng.normal(0.0, rng.uniform(0.01, 0.06), t1.shape)).astype(np.float32)
    pd = ndimage.gaussian_filter(ph.ts.pd[tis], 1.0)
    background = pd < float(rng.uniform(0.08, 0.2))
    noise_t1 = rng.uniform(0, 3000.0, t1.shape).astype(np.float32) * (rng.random() < 0.4)
    return np.where(background, noise_t1, np.clip(t1, 0, 4095)).astype(np.float32), TISSUE_TO_LABEL[tis], tis


def _lge_like(ph, tis: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An LGE-like magnitude image of a tissue map (for planes the phantom has no series of)."""
    from ..phantom import sequences as seq
    from ..phantom.tissue import T
    trep = 2.0 * ph.s.rr_ms
    post = ph.ts.t1_post(ph.s.blood_t1_post_ms)
    ti = seq.null_ti(float(post[T.MYOCARDIUM]), trep)
    img = np.abs(seq.ir_gre(ph.ts.pd[tis], post[tis], ph.ts.t2s[tis], ti, trep))
    img = ndimage.gaussian_filter(img, 0.8)
    return (img + rng.normal(0, 0.03 * float(img.max() or 1.0), img.shape)).astype(np.float32)


def long_axis_grid(ph, pixel_mm: float | None = None):
    """A plane holding the LV long axis (4-chamber-like), centred mid-ventricle."""
    from ..phantom.geometry import Grid
    s, anat = ph.s, ph.anat
    px = pixel_mm or s.pixel_mm
    n = anat.R[:, 2]
    col, row = n, -anat.R[:, 1]
    centre = anat.O + 0.5 * s.lv_length_mm * n
    m = s.matrix
    origin = centre - (m - 1) / 2.0 * px * (col + row)
    return Grid(origin, col, row, anat.R[:, 0], m, m, 1, (px, px, 8.0))


def non_cardiac_image(rng: np.random.Generator, size: int = 128) -> np.ndarray:
    """A random non-cardiac image: smooth blobs, texture and edges (no heart)."""
    img = ndimage.gaussian_filter(rng.normal(0, 1, (size, size)), rng.uniform(2, 10))
    img = (img - img.min()) / (np.ptp(img) or 1.0)
    r, c = np.mgrid[0:size, 0:size]
    for _ in range(int(rng.integers(1, 6))):
        cy, cx, rad = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(4, size / 3)
        img = img + rng.uniform(-0.8, 0.8) * ((r - cy) ** 2 + (c - cx) ** 2 < rad ** 2)
    return ndimage.gaussian_filter(img, 0.7).astype(np.float32)


def _maybe_corrupt(sl: Slice2D, rng: np.random.Generator, fraction: float, lo: float = 0.3, hi: float = 1.0) -> Slice2D:
    if rng.random() < fraction:
        from ..augment import CORRUPTIONS
        sl.corruption = str(rng.choice(CORRUPTIONS))
        sl.severity = float(rng.uniform(lo, hi))
        sl.image = corrupt(sl.image, rng, sl.corruption, sl.severity)
    return sl


def phantom_slices(seeds, contrasts: tuple[str, ...] = CONTRASTS, *, shifted: bool = False, per_contrast: int = 3,
                   fitted_t1: bool = False, negatives: bool = True, corrupt_fraction: float = 0.0,
                   progress=None) -> list[Slice2D]:
    """``per_contrast`` random slices of each subject in each contrast, plus (``negatives``)
    one image without a short-axis answer per subject; ``corrupt_fraction`` of them corrupted
    (evaluation sets: :data:`EVAL_CORRUPT_FRACTION`)."""
    from ..phantom.sets import subject
    from ..progress import report
    unknown = [c for c in contrasts if c not in CONTRASTS]
    if unknown:
        raise InputError(f"unknown contrast(s) {', '.join(unknown)}; expected {', '.join(CONTRASTS)}")
    out: list[Slice2D] = []
    seeds = list(seeds)
    for i, seed in enumerate(seeds):
        report(progress, "phantom images", i, len(seeds), f"subject {seed}")
        ph, rng = subject(seed, shifted)
        n = ph.s.n_slices
        sp = (float(ph.s.pixel_mm), float(ph.s.pixel_mm))
        scar = _scar_name(ph)
        made: list[Slice2D] = []
        lge = vne = None
        for c in contrasts:
            if c.startswith("t1_"):
                cond = c[3:]
                for pos in rng.choice(["basal", "mid", "apical"], size=min(per_contrast, 3), replace=False):
                    if fitted_t1:
                        irw = ph.irw(str(pos), cond)
                        t1 = ph.t1map(irw)
                        img = np.asarray(t1.image.array[0], np.float32)
                        lab = contract_labels(irw.labels.array[0])
                        tis = np.asarray(irw.maps["tissue"].array[0])
                    else:
                        grid = ph.irw_grid(str(pos))
                        img, plab, tis = _t1_render(ph, 0, cond, rng, grid)
                        lab = contract_labels(plab)
                    made.append(Slice2D(img, lab, sp, c, seed, "sax", scar, tis, meta={"position": str(pos)}))
                continue
            ks = rng.choice(n, size=min(per_contrast, n), replace=False)
            for k in ks:
                k = int(k)
                if c in ("lge_psir", "lge_magnitude"):
                    lge = lge or ph.lge()
                    ser = lge[0] if c == "lge_psir" else lge[1]
                else:
                    vne = vne or ph.vne()
                    ser = vne
                img = np.asarray(ser.image.array[k], np.float32)
                lab = contract_labels(ser.labels.array[k])
                cls = ser.truth["slices"][k]["class"]
                made.append(Slice2D(img, lab, sp, c, seed, "sax" if cls == "LV" else "beyond_lv", scar,
                                    meta={"slice": k, "class": cls}))
        if negatives:
            which = int(rng.integers(0, 3))
            if which == 0:  # a plane beyond the apex or above the base
                k = int(rng.choice([n + 3, n + 5, -4, -6]))
                r = ph.render(ph.sax, k, ph.t_mid)
                img = _lge_like(ph, r["tissue"], rng)
                made.append(Slice2D(img, np.zeros(img.shape, np.uint8), sp, "lge_magnitude", seed, "beyond_lv", scar,
                                    r["tissue"], meta={"slice": k}))
            elif which == 1:  # a long-axis plane: not a short-axis answer
                r = ph.render(long_axis_grid(ph), 0, ph.t_mid)
                img = _lge_like(ph, r["tissue"], rng)
                made.append(Slice2D(img, np.zeros(img.shape, np.uint8), sp, "lge_magnitude", seed, "long_axis", scar,
                                    r["tissue"]))
            else:
                img = non_cardiac_image(rng, ph.s.matrix)
                made.append(Slice2D(img, np.zeros(img.shape, np.uint8), sp, "non_cardiac", seed, "non_cardiac"))
        out += [_maybe_corrupt(s, rng, corrupt_fraction) for s in made]
    report(progress, "phantom images", len(seeds), len(seeds), "done")
    return out


# ---- network input -------------------------------------------------------------------------------
def normalise01(x: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Intensities scaled 0–1 between the 0.5th and 99.5th percentiles of the ``valid`` pixels
    (the card: "normalised 0–1"), zero outside ``valid`` (zero padding)."""
    x = np.asarray(x, np.float32)
    sel = np.ones(x.shape, bool) if valid is None else np.asarray(valid, bool)
    if not sel.any():
        return np.zeros_like(x)
    lo, hi = np.percentile(x[sel], [0.5, 99.5])
    out = np.clip((x - lo) / (hi - lo), 0.0, 1.0) if hi - lo > 1e-6 * max(abs(hi), 1.0) else np.zeros_like(x)
    return np.where(sel, out, 0.0).astype(np.float32)


def network_input(image2d: np.ndarray, pm: PlaneMap) -> np.ndarray:
    """The image on the network grid ``pm``, normalised 0–1, zero outside the source."""
    inside = pm.sample(np.ones(image2d.shape, np.float32)) > 0.5
    return normalise01(pm.sample(np.nan_to_num(np.asarray(image2d, np.float32))), inside)


def heart_centre_px(labels: np.ndarray) -> tuple[float, float] | None:
    """(col, row) centroid of the labelled heart (myocardium + blood pool); None without one."""
    rows, cols = np.nonzero(np.asarray(labels) > 0)
    return (float(cols.mean()), float(rows.mean())) if len(rows) else None


#: heart-centred crops (two-pass models): the crop centre is the true heart centroid moved by up
#: to this much (mm), more than the overview pass misses it by on an image it can read
CROP_SHIFT_MM = 12.0


def training_sample(sl: Slice2D, size: int, pixel_mm: float, rng: np.random.Generator | None, *, augment: bool = True,
                    random_contrast: float = 0.15, corrupt_p: float = 0.25,
                    heart_centred: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(network input ``[size, size]`` 0–1, labels ``[size, size]`` int64) of one slice.

    ``heart_centred``: the grid is centred on the true heart (the crop pass of a two-pass model;
    :func:`cmrlib.qcd.infer.network_maps` centres it on the overview's heart at inference), moved
    by up to :data:`CROP_SHIFT_MM` when augmented; an image without a heart gets a random centre."""
    centre = heart_centre_px(sl.labels) if heart_centred else None
    if heart_centred and centre is None and augment:
        rows, cols = sl.image.shape
        centre = (float(rng.uniform(0.2, 0.8) * cols), float(rng.uniform(0.2, 0.8) * rows))
    base = centred_map(sl.image.shape, sl.spacing, size, pixel_mm, centre_px=centre)
    if not augment:
        return network_input(sl.image, base), base.sample(sl.labels.astype(np.float32), order=0).astype(np.int64)
    rotate = 30.0 if rng.random() < 0.5 else 180.0
    shift_mm = CROP_SHIFT_MM if heart_centred else 0.15 * size * pixel_mm
    pm = jitter_map(base, rng, rotate, 0.2, shift_mm, rng.random() < 0.5)
    if sl.tissue is not None and rng.random() < random_contrast:
        img = random_contrast_image(sl.tissue, rng)
    else:
        img = degrade(sl.image, rng)
    if rng.random() < corrupt_p:
        img = corrupt(img, rng, None, float(rng.uniform(0.05, 0.6)))
    x = network_input(img, pm)
    y = pm.sample(sl.labels.astype(np.float32), order=0).astype(np.int64)
    return x, y


# ---- user data (--data DIR) ----------------------------------------------------------------------
def _label_file_for(image: Path, label_files: list[Path]) -> Path | None:
    """``NAME.labels.*``, ``NAME_labels.*``, ``NAME_label.*``, ``NAME-label.*`` or ``NAME.seg.nrrd`` of ``NAME.*``."""
    stem = image.name.split(".")[0].lower()
    for f in label_files:
        low = f.name.lower()
        if low.split(".")[0] in (f"{stem}_labels", f"{stem}_label", f"{stem}-label") \
                or low.startswith(f"{stem}.labels.") or low == f"{stem}.seg.nrrd":
            return f
    return None


def _is_label_file(f: Path) -> bool:
    low = f.name.lower()
    return low.split(".")[0].endswith(("_labels", "_label", "-label")) or ".labels." in low or low.endswith(".seg.nrrd")


def user_slices(folder: str | Path) -> list[Slice2D]:
    """Training pairs from a user's folder (README "QCD training data"): each image file
    ``NAME.nrrd`` / ``.nii.gz`` / ``.mha`` (a 2-D image or a stack) with a label map
    ``NAME.labels.nrrd``, ``NAME_labels.nii.gz`` or a Slicer ``NAME.seg.nrrd`` beside it.
    Slices of a stack whose label map holds no label at all are skipped (unlabelled)."""
    from ..io import read_image
    from ..io.files import SUFFIXES
    from ..io.masks import load_label_map
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"--data {folder}: not a folder")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(SUFFIXES))
    label_files = [f for f in files if _is_label_file(f)]
    images = [f for f in files if not _is_label_file(f)]
    out: list[Slice2D] = []
    for path in images:
        lab_path = _label_file_for(path, label_files)
        if lab_path is None:
            continue
        image = read_image(path)
        if image.is_sequence:
            image = image.frame(0)
        labels = load_label_map(lab_path, image)
        arr = np.asarray(image.array, np.float32)
        for k in range(arr.shape[0]):
            if not labels[k].any():
                continue
            out.append(Slice2D(arr[k], labels[k], (float(image.spacing[0]), float(image.spacing[1])), "user",
                               kind="user", meta={"image": path.name, "slice": k}))
    if not out:
        raise InputError(f"--data {folder}: no image with a label map beside it (NAME.nrrd with NAME.labels.nrrd, "
                         "NAME_labels.nii.gz or NAME.seg.nrrd; labels 1 myocardium, 2 blood pool)")
    return out

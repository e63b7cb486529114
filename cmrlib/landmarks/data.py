"""Training and evaluation samples for the landmark networks.

Sources (:func:`phantom_sources`): one short-axis image per (subject, contrast) from
:mod:`cmrlib.phantom`, which knows the true anterior RV insertion point and LV centre of
every slice, over every short-axis contrast it makes (:data:`CONTRASTS`): native, post-contrast
and stress T1 maps, LGE magnitude and PSIR, VNE-like, cine. Training subjects are 1.5 T; the
**shifted** set (:func:`shifted_options`) is 3 T with other SNR, poor LGE nulling / bright
blood and hearts 20–30 % smaller or larger than any in training. The T1 maps used for
training are the phantom's true (apparent) T1 map passed through the acquisition blur, noise
and the scanner's background threshold — the phantom's inline fit costs ~1 s per map — while
``fitted_t1=True`` (the benchmark's held-out sets) makes them with the phantom's own inline
fit (:meth:`cmrlib.phantom.Phantom.t1map`).

Augmentation (:func:`augment_stage1`, :func:`stage2_sample`): the card's rotation, scaling,
Gaussian noise and blur, brightness, contrast, low-resolution simulation, gamma and (stage 1
only) flips, plus SynthSeg-style domain randomisation: a random monotone intensity curve,
multiplicative bias field, SNR and resolution changes, field of view and heart position
(random crops and shifts), mirrored and rotated orientations, and — for a share of the
samples — an image whose intensities are drawn at random per tissue of the phantom's tissue
map (contrast never seen in any sequence). Everything is resampled through
:mod:`cmrlib.landmarks.geometry` so the true points follow exactly.

User data (:func:`user_sources`, ``--data DIR``): short-axis images (DICOM folders or
NRRD / NIfTI / MHA files, one 2-D image or a stack) with the points either in Slicer markups
beside the image (``<image stem>.mrk.json`` with control points labelled "LV centre" and
"RV insertion", positions in the file's coordinate system, LPS or RAS) or in a
``landmarks.csv`` in the folder (columns ``image,slice,lv_col,lv_row,rv_col,rv_row``:
pixel (column, row) of that slice, 0-based; see README). For the LV-presence gate
(`cmr train landmarks-presence --data DIR`) the annotated slices are the images *with* landmarks
and ``no_landmarks.csv`` (columns ``image,slice``) names slices *without* them (no LV, too basal /
too apical, no RV insertion visible) — :func:`user_negative_sources`.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from ..errors import InputError
from ..phantom.sets import shifted_options, subject  # noqa: F401  (shifted_options re-exported)
from ..augment import degrade, jitter_map, random_contrast_image
from .geometry import PlaneMap, is_mirrored, stage1_map, stage2_map, standardise

CONTRASTS = ("t1_native", "t1_post", "t1_stress", "lge_magnitude", "lge_psir", "vne", "cine")
TRAIN_SEED_BASE = 710_000
VAL_SEED_BASE = 760_000
TEST_SEED_BASE = 790_000  # held-out subjects of the benchmark
SHIFTED_SEED_BASE = 820_000
LV_LABEL_NAMES = ("lv centre", "lv center", "lv_centre", "lvc")
RV_LABEL_NAMES = ("rv insertion", "rv_insertion", "rvip", "anterior rv insertion", "rv insertion (anterior)")


@dataclass
class Source:
    """One short-axis image with its true points, ``(col, row)`` pixels of ``image``."""

    image: np.ndarray  # [row, col] float32
    spacing: tuple[float, float]  # (Δcol, Δrow) mm
    rv_px: np.ndarray | None
    lv_px: np.ndarray | None
    contrast: str
    subject: int
    mirrored: bool = False  # handedness from the geometry (standard view: False)
    tissue: np.ndarray | None = None  # phantom tissue codes on the same grid (for random-contrast images)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def has_lv(self) -> bool:
        return self.rv_px is not None and self.lv_px is not None


def _points(truth: dict) -> tuple[np.ndarray | None, np.ndarray | None]:
    lv, rv = truth.get("lv_centre"), truth.get("rv_insertion_anterior")
    if not lv or not rv or truth.get("class", "LV") != "LV":
        return None, None
    return np.array(rv["pixel_col_row"], float), np.array(lv["pixel_col_row"], float)


def _t1_like(irw, rng: np.random.Generator) -> np.ndarray:
    """A scanner-like T1 map (ms) from the phantom's true T1: acquisition blur, fit noise, background 0."""
    t1 = np.asarray(irw.maps["t1_ms"].array[0], np.float32)
    t1 = ndimage.gaussian_filter(t1, float(rng.uniform(0.5, 1.2)))
    snr = float(irw.truth.get("snr_myocardium") or 40.0)
    t1 = t1 * (1.0 + rng.normal(0.0, 1.0, t1.shape).astype(np.float32) * (1.5 / max(snr, 5.0)))
    last = np.asarray(irw.image.frames()[-1, 0], np.float32)
    sigma = float(irw.truth["noise_sigma"]) or 0.02 * float(last.max())
    return np.where(last > 4 * sigma, np.clip(t1, 0, 4095), 0.0).astype(np.float32)


def _source_from_series(series, image2d: np.ndarray, truth: dict, contrast: str, subject: int,
                        tissue: np.ndarray | None = None) -> Source:
    rv, lv = _points(truth)
    img = series.image
    return Source(np.asarray(image2d, np.float32), (img.spacing[0], img.spacing[1]), rv, lv, contrast, subject,
                  is_mirrored(img.direction), tissue,
                  {"class": truth.get("class"), "material_z_mm": truth.get("material_z_mm")})


def _stack_slice(ph, contrast: str, k: int, seed: int) -> Source:
    """Slice ``k`` of the subject's LGE (PSIR / magnitude), VNE or cine (end-diastole) stack."""
    if contrast in ("lge_magnitude", "lge_psir"):
        psir, mag = ph.lge([k])
        ser = psir if contrast == "lge_psir" else mag
        img2d, truth = ser.image.array[0], ser.truth["slices"][0]
    elif contrast == "vne":
        ser = ph.vne([k])
        img2d, truth = ser.image.array[0], ser.truth["slices"][0]
    else:
        ser = ph.cine([k], n_phases=2)
        img2d, truth = ser.image.array[0, 0], ser.truth["slices"][0]["ed"]
    return _source_from_series(ser, img2d, truth, contrast, seed)


def phantom_sources(seeds: range | list[int], contrasts: tuple[str, ...] = CONTRASTS, *, shifted: bool = False,
                    fitted_t1: bool = False, lv_only: bool = True, progress=None) -> list[Source]:
    """One image per (subject, contrast): a random slice of the stacks, the random T1 position.

    ``lv_only``: keep only slices with an LV and both points (training); False keeps too
    apical / too basal slices as ``has_lv = False`` sources (the no-LV evaluation).
    """
    from ..progress import report
    unknown = [c for c in contrasts if c not in CONTRASTS]
    if unknown:
        raise InputError(f"unknown contrast(s) {', '.join(unknown)}; expected {', '.join(CONTRASTS)}")
    out: list[Source] = []
    seeds = list(seeds)
    for i, seed in enumerate(seeds):
        report(progress, "phantom images", i, len(seeds), f"subject {seed}")
        ph, rng = subject(seed, shifted)
        n = ph.s.n_slices
        # stack contrasts share one slice per subject when possible: an LV slice of the stack
        for c in contrasts:
            if c.startswith("t1_"):
                cond = c[3:]
                pos = str(rng.choice(["basal", "mid", "apical"]))
                irw = ph.irw(pos, cond)
                if fitted_t1:
                    t1 = ph.t1map(irw)
                    img2d = t1.image.array[0]
                else:
                    img2d = _t1_like(irw, rng)
                src = _source_from_series(irw, img2d, irw.truth["slice"], c, seed,
                                          np.asarray(irw.maps["tissue"].array[0]))
            else:
                k = int(rng.integers(1 if lv_only else 0, max(n - 1, 2) if lv_only else n))
                src = _stack_slice(ph, c, k, seed)
            if lv_only and not src.has_lv:
                continue
            out.append(src)
    report(progress, "phantom images", len(seeds), len(seeds), "done")
    return out


def no_lv_sources(seeds: range | list[int], *, shifted: bool = False, per_subject: int = 2,
                  progress=None) -> list[Source]:
    """Short-axis images without landmarks: slices of each subject's stack extended by 1–2 slices
    above the base and beyond the apex (too basal, too apical, apical LV without the RV), from
    ``per_subject`` random stack contrasts (LGE PSIR / magnitude, VNE, cine)."""
    from ..phantom.sets import extended_phantom
    from ..progress import report
    out: list[Source] = []
    seeds = list(seeds)
    stack_contrasts = ("lge_psir", "lge_magnitude", "vne", "cine")
    for i, seed in enumerate(seeds):
        report(progress, "no-LV images", i, len(seeds), f"subject {seed}")
        rng = np.random.default_rng(seed + 31)
        ph = extended_phantom(seed, shifted, rng, at_least=1)
        n = ph.s.n_slices
        for c in rng.choice(stack_contrasts, per_subject, replace=False):
            src = _stack_slice(ph, str(c), int(rng.choice([0, 1, n - 2, n - 1])), seed)
            if not src.has_lv:
                src.meta["extended"] = True
                out.append(src)
    return out


def non_cardiac_sources(n: int, seed: int) -> list[Source]:
    """Images without an LV: phantom LGE images of the body with the heart's side cut away (the
    third of the image away from the LV, tiled to fill the frame), and pure Rician-like noise."""
    rng = np.random.default_rng(seed)
    out = []
    base = phantom_sources(range(seed, seed + 3 * n), ("lge_magnitude",), lv_only=True)[:n]
    for src in base:
        img = src.image
        h, w = img.shape
        lv = src.lv_px
        part = img[:, : w // 3] if lv[0] > w / 2 else img[:, -(w // 3):]
        tiled = np.tile(part, (1, 3))[:, :w]
        out.append(Source(tiled.astype(np.float32), src.spacing, None, None, "non-cardiac (body, no heart)", src.subject))
        noise = np.abs(rng.normal(0, 1, img.shape) + 1j * rng.normal(0, 1, img.shape)).astype(np.float32) * 100
        out.append(Source(noise, src.spacing, None, None, "pure noise", src.subject))
    return out


# ---- augmentation ------------------------------------------------------------------------------------
def _targets(pm: PlaneMap, rv_px: np.ndarray, lv_px: np.ndarray) -> np.ndarray:
    return np.concatenate([pm.from_source_px(rv_px), pm.from_source_px(lv_px)]) / pm.size


def _photometric(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Brightness / contrast on the standardised network input."""
    nz = x != 0
    return np.where(nz, x * float(rng.uniform(0.8, 1.25)) + float(rng.normal(0, 0.15)), 0.0).astype(np.float32)


def _pick_image(src: Source, rng: np.random.Generator, random_contrast: float) -> np.ndarray:
    if src.tissue is not None and rng.random() < random_contrast:
        return random_contrast_image(src.tissue, rng)
    return degrade(src.image, rng)


def stage1_input(src: Source, size: int, pixel_mm: float, rng: np.random.Generator,
                 random_contrast: float = 0.15, augment: bool = True) -> tuple[np.ndarray, PlaneMap]:
    """(network input [size, size] on the stage-1 grid, its plane map), augmented: any
    rotation, scale, shift and flip, degraded or random-contrast appearance, brightness."""
    base = stage1_map(src.image.shape, src.spacing, size, pixel_mm, src.mirrored)
    if augment:
        # half the samples near the usual orientation (±30°), half at any rotation
        rotate = 30.0 if rng.random() < 0.5 else 180.0
        pm = jitter_map(base, rng, rotate, 0.15, 0.12 * size * pixel_mm, rng.random() < 0.5)
        img = _pick_image(src, rng, random_contrast)
    else:
        pm, img = base, src.image
    x = standardise(pm.sample(img))
    if augment:
        x = _photometric(x, rng)
    return x, pm


def augment_stage1(src: Source, size: int, pixel_mm: float, rng: np.random.Generator,
                   random_contrast: float = 0.15, augment: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(network input [size, size], targets (rv_u, rv_v, lv_u, lv_v) / size) for stage 1."""
    x, pm = stage1_input(src, size, pixel_mm, rng, random_contrast, augment)
    return x, _targets(pm, src.rv_px, src.lv_px)


def stage2_sample(src: Source, size: int, pixel_mm: float, rng: np.random.Generator, error_mm: float = 4.0,
                  random_contrast: float = 0.15, augment: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(network input, targets) for stage 2: the crop made from the true points moved by a
    random stage-1-like error of ``error_mm`` (sd per point) — no flips (card)."""
    sp = np.asarray(src.spacing)
    rv, lv = src.rv_px, src.lv_px
    if augment:
        rv = rv + rng.normal(0, error_mm, 2) / sp
        lv = lv + rng.normal(0, error_mm, 2) / sp
        img = _pick_image(src, rng, random_contrast)
    else:
        img = src.image
    pm = stage2_map(rv, lv, src.spacing, size, pixel_mm * (float(np.exp(rng.uniform(-0.1, 0.1))) if augment else 1.0),
                    src.mirrored)
    pm = PlaneMap(pm.matrix, pm.offset, size, pm.spacing)
    x = standardise(pm.sample(img))
    if augment:
        x = _photometric(x, rng)
    return x, _targets(pm, src.rv_px, src.lv_px)


# ---- user data (--data DIR) --------------------------------------------------------------------------------
def _markups_points(path: Path, image) -> dict[str, np.ndarray]:
    """LPS mm points by label from a Slicer ``.mrk.json`` (coordinate system LPS or RAS)."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable markups JSON file ({exc})") from None
    found: dict[str, np.ndarray] = {}
    for markup in doc.get("markups", []):
        system = str(markup.get("coordinateSystem", "LPS")).upper()
        for cp in markup.get("controlPoints", []):
            label = str(cp.get("label", "")).strip().lower()
            pos = np.asarray(cp.get("position", []), float)
            if pos.shape != (3,):
                continue
            if system == "RAS":
                pos = pos * np.array([-1.0, -1.0, 1.0])
            if label in LV_LABEL_NAMES:
                found.setdefault("lv", []).append(pos)  # type: ignore[union-attr]
            elif label in RV_LABEL_NAMES:
                found.setdefault("rv", []).append(pos)  # type: ignore[union-attr]
    return {k: np.array(v) for k, v in found.items()}


def _user_images(folder: Path) -> list[tuple[str, Any]]:
    from ..io import load_series, read_image, scan_folder
    from ..io.files import SUFFIXES
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(SUFFIXES))
    if files:
        return [(p.name, read_image(p)) for p in files]
    scan = scan_folder(folder)
    return [(s.description or str(s.series_number), load_series(s)) for s in scan.series]


def user_sources(folder: str | Path) -> list[Source]:
    """Training sources from a user's folder (module docstring); InputError when unusable."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"--data {folder}: not a folder")
    images = _user_images(folder)
    if not images:
        raise InputError(f"--data {folder}: no image (NRRD / NIfTI / MHA or DICOM) found")
    table: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}
    csv_path = folder / "landmarks.csv"
    if csv_path.is_file():
        with csv_path.open(newline="") as fh:
            reader = csv.DictReader(fh)
            need = {"image", "slice", "lv_col", "lv_row", "rv_col", "rv_row"}
            if not need <= set(reader.fieldnames or ()):
                raise InputError(f"{csv_path}: needs the columns {', '.join(sorted(need))}")
            for row in reader:
                try:
                    key = (row["image"].strip(), int(row["slice"]))
                    table[key] = (np.array([float(row["rv_col"]), float(row["rv_row"])]),
                                  np.array([float(row["lv_col"]), float(row["lv_row"])]))
                except ValueError:
                    raise InputError(f"{csv_path}: line {reader.line_num} has a non-numeric value") from None
    out: list[Source] = []
    for name, image in images:
        if image.is_sequence:
            image = image.frame(0)
        arr = np.asarray(image.array, np.float32)
        stem = name.split(".")[0]
        markups = folder / f"{stem}.mrk.json"
        pts = _markups_points(markups, image) if markups.is_file() else {}
        mirrored = is_mirrored(image.direction)
        spacing = (image.spacing[0], image.spacing[1])
        for k in range(arr.shape[0]):
            rv = lv = None
            if (name, k) in table or (stem, k) in table:
                rv, lv = table.get((name, k)) or table[(stem, k)]
            elif pts:
                # the points of this slice: the markups closest to it through the plane
                def on_slice(p):
                    idx = image.lps_to_index(p)
                    return idx[np.abs(idx[:, 2] - k) < 0.5, :2]
                lv_k = on_slice(pts["lv"]) if "lv" in pts else np.zeros((0, 2))
                rv_k = on_slice(pts["rv"]) if "rv" in pts else np.zeros((0, 2))
                if len(lv_k) and len(rv_k):
                    lv, rv = lv_k[0], rv_k[0]
            if rv is None:
                continue
            out.append(Source(arr[k], spacing, np.asarray(rv, float), np.asarray(lv, float), "user", -1, mirrored,
                              None, {"image": name, "slice": k}))
    if not out:
        raise InputError(f"--data {folder}: no image has both points (a <image>.mrk.json with control points "
                         "'LV centre' and 'RV insertion', or landmarks.csv with image,slice,lv_col,lv_row,rv_col,rv_row)")
    return out


def user_negative_sources(folder: str | Path) -> list[Source]:
    """The slices ``no_landmarks.csv`` in ``folder`` names (``image,slice``): images without
    landmarks, for the LV-presence gate. InputError when the file is missing or names nothing."""
    folder = Path(folder)
    path = folder / "no_landmarks.csv"
    if not path.is_file():
        raise InputError(f"--data {folder}: no no_landmarks.csv (image,slice of slices without landmarks); the "
                         "LV-presence gate needs examples of both kinds (README 'Landmark training data')")
    images = dict(_user_images(folder))
    stems = {name.split(".")[0]: name for name in images}
    out: list[Source] = []
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        if not {"image", "slice"} <= set(reader.fieldnames or ()):
            raise InputError(f"{path}: needs the columns image,slice")
        for row in reader:
            name = row["image"].strip()
            name = name if name in images else stems.get(name.split(".")[0], name)
            if name not in images:
                raise InputError(f"{path} line {reader.line_num}: no image {row['image']!r} in {folder}")
            image = images[name].frame(0) if images[name].is_sequence else images[name]
            try:
                k = int(row["slice"])
            except ValueError:
                raise InputError(f"{path} line {reader.line_num}: slice must be an integer") from None
            arr = np.asarray(image.array, np.float32)
            if not 0 <= k < arr.shape[0]:
                raise InputError(f"{path} line {reader.line_num}: {name} has {arr.shape[0]} slice(s); no slice {k}")
            out.append(Source(arr[k], (image.spacing[0], image.spacing[1]), None, None, "user (no landmarks)", -1,
                              is_mirrored(image.direction), None, {"image": name, "slice": k}))
    if not out:
        raise InputError(f"{path}: names no slice")
    return out

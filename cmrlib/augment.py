"""SynthSeg-style domain randomisation of 2-D images, shared by every network's training data.

A phantom-trained network must read images it never saw: real scans and other groups'
simulators. So training images are randomised far beyond the phantom's look:

* :func:`random_intensity` — a random monotone intensity curve and gamma (contrast non-linearity);
* :func:`bias_field` — a smooth multiplicative coil-shading field;
* :func:`random_contrast_image` — a new image with a random intensity per tissue of the
  phantom's tissue map (a contrast no sequence makes);
* :func:`degrade` — the above plus low-resolution simulation, blur and noise of random level;
* :func:`jitter_map` — a network grid (:class:`cmrlib.planes.PlaneMap`) rotated, scaled,
  mirrored and shifted at random (orientation, heart size and position, field of view).

Used by :mod:`cmrlib.landmarks.data` and :mod:`cmrlib.qcd.data`.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from .planes import PlaneMap


def random_intensity(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Monotone random curve + gamma on a 0–1 scaled image (SynthSeg-style non-linearity)."""
    lo, hi = np.percentile(img, [0.5, 99.5])
    x = np.clip((img - lo) / max(hi - lo, 1e-6), 0.0, 1.0)
    knots = np.sort(rng.uniform(0, 1, 5))
    xs = np.linspace(0, 1, 7)
    ys = np.concatenate([[0.0], knots, [1.0]])
    x = np.interp(x, xs, ys)
    return (x ** float(np.exp(rng.normal(0, 0.35)))).astype(np.float32)


def bias_field(shape: tuple[int, int], rng: np.random.Generator, strength: float) -> np.ndarray:
    coarse = rng.normal(0, strength, (4, 4)).astype(np.float32)
    field_ = ndimage.zoom(coarse, (shape[0] / 4, shape[1] / 4), order=3)[:shape[0], :shape[1]]
    return np.exp(field_).astype(np.float32)


def random_contrast_image(tissue: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An image with a random intensity per tissue code (air stays dark), blurred and noisy."""
    values = rng.uniform(0.0, 1.0, int(tissue.max()) + 1).astype(np.float32)
    values[0] = rng.uniform(0.0, 0.05)
    img = values[tissue] * (1.0 + 0.05 * rng.normal(0, 1, tissue.shape)).astype(np.float32)
    return ndimage.gaussian_filter(img, float(rng.uniform(0.4, 1.5)))


def degrade(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Intensity / resolution / SNR randomisation of a source image (before resampling)."""
    x = random_intensity(img, rng) if rng.random() < 0.7 else img.astype(np.float32)
    if rng.random() < 0.6:
        x = x * bias_field(x.shape, rng, float(rng.uniform(0.1, 0.4)))
    if rng.random() < 0.4:  # low-resolution simulation: down and up again along one or both axes
        f = (float(rng.uniform(0.35, 1.0)), float(rng.uniform(0.35, 1.0)))
        small = ndimage.zoom(x, f, order=1)
        x = ndimage.zoom(small, (x.shape[0] / small.shape[0], x.shape[1] / small.shape[1]), order=1)
        x = x[:img.shape[0], :img.shape[1]]
        if x.shape != img.shape:
            x = np.pad(x, [(0, img.shape[0] - x.shape[0]), (0, img.shape[1] - x.shape[1])], mode="edge")
    if rng.random() < 0.3:
        x = ndimage.gaussian_filter(x, float(rng.uniform(0.3, 1.5)))
    if rng.random() < 0.5:
        scale = float(np.percentile(np.abs(x), 99)) or 1.0
        x = x + rng.normal(0, float(rng.uniform(0.01, 0.12)) * scale, x.shape).astype(np.float32)
    return x.astype(np.float32)


def jitter_map(base: PlaneMap, rng: np.random.Generator, rotate_deg: float, scale: float, shift_mm: float,
                flip: bool) -> PlaneMap:
    """``base`` composed with a random rotation / scaling / flip about the grid centre and a shift."""
    a = np.deg2rad(rng.uniform(-rotate_deg, rotate_deg))
    r = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    s = float(np.exp(rng.uniform(-scale, scale)))
    fl = np.diag([-1.0, 1.0]) if flip else np.eye(2)
    h = (base.size - 1) / 2
    m = base.matrix @ r @ fl * s
    centre_q = base.matrix @ np.array([h, h]) + base.offset + rng.uniform(-shift_mm, shift_mm, 2)
    return PlaneMap(m, centre_q - m @ np.array([h, h]), base.size, base.spacing)


#: image corruptions of :func:`corrupt`, each with a severity 0 (none) … 1 (unreadable)
CORRUPTIONS = ("noise", "blur", "ghosting", "banding", "signal_void", "crop", "lowres", "inversion")


def corrupt(img: np.ndarray, rng: np.random.Generator, kind: str | None = None, severity: float = 0.5) -> np.ndarray:
    """``img`` with one acquisition failure of the given ``severity`` (random ``kind`` if None).

    noise: Gaussian noise up to 0.6 × the 99th percentile; blur: Gaussian up to 4 px;
    ghosting: phase-encode ghosts (shifted copies) up to 0.9 of the signal; banding: bright /
    dark stripes (off-resonance-like) up to full contrast; signal_void: a smooth region where
    the signal drops to nothing (susceptibility / coil failure); crop: the field of view cut
    down so part of the image is missing; lowres: resolution reduced up to 6×; inversion:
    intensities mirrored (a contrast no training image had).
    """
    kind = kind or str(rng.choice(CORRUPTIONS))
    s = float(np.clip(severity, 0.0, 1.0))
    x = np.asarray(img, np.float32).copy()
    scale = float(np.percentile(np.abs(x), 99)) or 1.0
    rows, cols = x.shape
    if kind == "noise":
        return x + rng.normal(0, 0.6 * s * scale, x.shape).astype(np.float32)
    if kind == "blur":
        return ndimage.gaussian_filter(x, 0.3 + 3.7 * s).astype(np.float32)
    if kind == "ghosting":
        axis = int(rng.integers(0, 2))
        out = x.copy()
        for n in (1, 2, 3):
            out += (0.9 * s / n) * np.roll(x, int(round(n * x.shape[axis] / rng.uniform(3.0, 6.0))), axis=axis)
        return out.astype(np.float32)
    if kind == "banding":
        a = rng.uniform(0, np.pi)
        r, c = np.mgrid[0:rows, 0:cols]
        period = rng.uniform(6.0, 20.0)
        band = np.cos((np.cos(a) * c + np.sin(a) * r) * 2 * np.pi / period + rng.uniform(0, 2 * np.pi))
        return (x * (1.0 + s * band) + 0.5 * s * scale * np.maximum(band, 0)).astype(np.float32)
    if kind == "signal_void":
        r, c = np.mgrid[0:rows, 0:cols]
        cy, cx = rng.uniform(0.3, 0.7) * rows, rng.uniform(0.3, 0.7) * cols
        rad = (0.1 + 0.35 * s) * min(rows, cols)
        void = np.exp(-(((r - cy) ** 2 + (c - cx) ** 2) / (2 * rad ** 2)) ** 2)
        return (x * (1.0 - s * void)).astype(np.float32)
    if kind == "crop":
        keep = 1.0 - 0.75 * s
        h, w = max(2, int(rows * keep)), max(2, int(cols * keep))
        r0, c0 = int(rng.integers(0, rows - h + 1)), int(rng.integers(0, cols - w + 1))
        out = np.zeros_like(x)
        out[r0:r0 + h, c0:c0 + w] = x[r0:r0 + h, c0:c0 + w]
        return out
    if kind == "lowres":
        f = 1.0 / (1.0 + 5.0 * s)
        small = ndimage.zoom(x, f, order=1)
        up = ndimage.zoom(small, (rows / small.shape[0], cols / small.shape[1]), order=0)
        out = np.zeros_like(x)
        out[:min(rows, up.shape[0]), :min(cols, up.shape[1])] = up[:rows, :cols]
        return out
    if kind == "inversion":
        lo, hi = np.percentile(x, [0.5, 99.5])
        return (lo + hi - x if s >= 0.5 else x + s * (lo + hi - 2 * x)).astype(np.float32)
    raise ValueError(f"unknown corruption {kind!r}; expected one of {', '.join(CORRUPTIONS)}")

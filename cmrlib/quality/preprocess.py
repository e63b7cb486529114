"""The cards' image preparation (seed 000 / 004), one home for training and inference.

1. **Card crop**: keep the central 60 % of the rows and 70 % of the columns — the card's "crop
   40 % top/bottom and 30 % left/right" read as 40 % of the height (20 % from each edge) and 30 %
   of the width, which leaves the heart and removes the periphery (40 % from *each* edge would
   leave a 20 %-high strip that often cuts the heart).
2. **Square**: the card takes a 256×256 pixel centre crop of that rectangle. Its images were
   ~1.3–1.6 mm pixels; here the square of the rectangle's shorter side is resampled to
   ``crop_size`` pixels (256 paper, 128 compact) so that any matrix and pixel size gives the
   same input.
3. **Network input**: inference resizes the square to ``size`` (224 / 112), as the card's
   validation and test images; training takes random ``size`` crops with flips, rotations and
   scaling (:func:`training_view`).

Intensities: the 0.5th–99.5th percentile of the square scaled to 0–1 and clipped (PSIR's
negative background included), so magnitude and PSIR and any scanner scaling look alike.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

ROW_KEEP = 0.6  # fraction of the rows kept by the card crop
COL_KEEP = 0.7
CONTEXT = 1.25  # training keeps this much more than the square, for rotations / zoom-out / shifts


def card_square(shape: tuple[int, int]) -> tuple[float, float, float]:
    """(centre row, centre col, side) in source pixels of the card's square region of a slice."""
    rows, cols = shape
    h, w = rows * ROW_KEEP, cols * COL_KEEP
    return (rows - 1) / 2.0, (cols - 1) / 2.0, float(min(h, w))


def normalise(img: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(img, [0.5, 99.5])
    return np.clip((img - lo) / max(float(hi - lo), 1e-6), 0.0, 1.0).astype(np.float32)


def _resample(img: np.ndarray, centre_rc: tuple[float, float], side: float, out: int, *, angle_deg: float = 0.0,
              flip: bool = False, order: int = 1) -> np.ndarray:
    """``out``×``out`` pixels covering a square of ``side`` source pixels about ``centre_rc``
    (rotated by ``angle_deg``, mirrored left-right when ``flip``)."""
    s = side / out
    a = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    m = rot @ np.diag([s, -s if flip else s])
    h = (out - 1) / 2.0
    offset = np.asarray(centre_rc, float) - m @ np.array([h, h])
    return ndimage.affine_transform(np.asarray(img, np.float32), m, offset, output_shape=(out, out), order=order,
                                    mode="constant", cval=float(np.percentile(img, 1)))


def network_input(img: np.ndarray, size: int) -> np.ndarray:
    """The inference input ``[size, size]`` (0–1) of one slice ``[row, col]``: card crop, square, resize."""
    r, c, side = card_square(img.shape)
    return normalise(_resample(img, (r, c), side, size))


def context_image(img: np.ndarray, crop_size: int) -> np.ndarray:
    """What training keeps of a slice: the card's square, ``CONTEXT`` × larger, at ``crop_size`` per square
    side (0–1) — :func:`training_view` cuts the augmented network inputs from it."""
    r, c, side = card_square(img.shape)
    n = int(round(crop_size * CONTEXT))
    return normalise(_resample(img, (r, c), side * CONTEXT, n))


def training_view(context: np.ndarray, crop_size: int, size: int, rng: np.random.Generator,
                  augment: bool = True) -> np.ndarray:
    """One training input ``[size, size]`` from :func:`context_image`: the card's random ``size``
    crop of the ``crop_size`` square (a shift of up to the margin), random flip, rotation (any
    angle: short-axis orientation differs between sites) and scale (0.85–1.2; inference resizes
    the whole square, which a random crop alone never shows). Without ``augment``: the inference
    view."""
    n = context.shape[0]
    h = (n - 1) / 2.0
    if not augment:
        return _resample(context, (h, h), n / CONTEXT, size)  # the square, resized as at inference
    # context pixels per square pixel are 1 (the square is crop_size pixels of the context)
    side = (size if rng.random() < 0.5 else crop_size) * float(np.exp(rng.uniform(np.log(0.85), np.log(1.2))))
    side = min(side, 1.2 * crop_size)
    shift = rng.uniform(-1, 1, 2) * max(crop_size - size, 0) / 2.0
    return _resample(context, (h + shift[0], h + shift[1]), side, size, angle_deg=float(rng.uniform(-180, 180)),
                     flip=bool(rng.random() < 0.5))

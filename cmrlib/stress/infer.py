"""Registration of one stress map to its rest map on the native grid: network (Swin-U-Net or
U-Net VoxelMorph) or classical (SimpleITK rigid + B-spline).

The network works on its own grid (``size`` × ``size`` pixels of ``pixel_mm`` centred on the
myocardium, :func:`cmrlib.planes.centred_map`); its sampling DVF ``d(u)`` (network pixels) is
carried back to the source grid exactly: the network grid is an affine image of the source
(``x = A u + b``), so ``warped(x) = stress(x + A d(u(x)))`` — the source DVF is ``A d``
sampled at ``u(x)`` (:meth:`cmrlib.planes.PlaneMap.sample_back`), zero outside the network
grid. A model with ``prealign="rigid"`` (the compact preset) first aligns the pair rigidly
(:func:`cmrlib.stress.data.prealign`) and the network's DVF is composed with that one. All
DVFs are sampling DVFs ``[2, row, col]`` in source pixels (:mod:`cmrlib.warp`).
"""
from __future__ import annotations

import numpy as np

from ..planes import PlaneMap, centred_map
from .data import (PREALIGN_MARGIN_MM, heart_centre_px, network_pair, pair_scale, prealign, registration_view,
                   search_px)

METHODS = ("swin", "unet", "classical", "none")


def network_grid(shape: tuple[int, int], spacing: tuple[float, float], size: int, pixel_mm: float,
                 labels: np.ndarray | None) -> PlaneMap:
    return centred_map(shape, spacing, size, pixel_mm, centre_px=heart_centre_px(labels, shape))


def dvf_to_source(dvf_net: np.ndarray, grid: PlaneMap, shape: tuple[int, int]) -> np.ndarray:
    """Network-grid sampling DVF ``[2, v, u]`` (rows, cols of the network) → source ``[2, row, col]``."""
    a = grid.matrix / np.asarray(grid.spacing)[:, None]  # source (col, row) px per network (u, v) px
    d_u = grid.sample_back(dvf_net[1], shape)  # network column displacement at u(x)
    d_v = grid.sample_back(dvf_net[0], shape)
    d_col = a[0, 0] * d_u + a[0, 1] * d_v
    d_row = a[1, 0] * d_u + a[1, 1] * d_v
    return np.stack([d_row, d_col]).astype(np.float32)


#: the heart region the candidates are compared in: rest myocardium + blood pool dilated by this (mm)
CHECK_MARGIN_MM = 6.0


def heart_similarity(rest: np.ndarray, moved: np.ndarray, region: np.ndarray) -> float:
    """Normalised cross-correlation of the rest map and a registered stress map inside ``region``."""
    a, b = rest[region].astype(float), moved[region].astype(float)
    a, b = a - a.mean(), b - b.mean()
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-9))


def no_worse(rest: np.ndarray, stress: np.ndarray, candidates: list[np.ndarray], rest_labels: np.ndarray | None,
             spacing: tuple[float, float]) -> tuple[np.ndarray, int]:
    """(the candidate DVF whose registered stress map correlates best with the rest map in the
    rest heart, its index): a registration may fail — a rigid stage caught by another structure,
    a network on an image it cannot read — and must then not leave the pair worse than it was.
    Without rest labels the last candidate is returned."""
    from scipy import ndimage

    from ..warp import warp_image
    if rest_labels is None or not np.isin(rest_labels, (1, 2, 3)).any():
        return candidates[-1], len(candidates) - 1
    r = max(1, int(round(CHECK_MARGIN_MM / float(min(spacing)))))
    region = ndimage.binary_dilation(np.isin(rest_labels, (1, 2, 3)), iterations=r)
    rest_view, stress_view = registration_view(rest, spacing), registration_view(stress, spacing)
    scores = [heart_similarity(rest_view, warp_image(stress_view, d), region) for d in candidates]
    best = int(np.argmax(scores))
    return candidates[best], best


def register_network(model, rest: np.ndarray, stress: np.ndarray, spacing: tuple[float, float],
                     rest_labels: np.ndarray | None = None, device=None) -> np.ndarray:
    """Source-grid sampling DVF ``[2, row, col]`` warping ``stress`` onto ``rest`` (2-D maps, ms)."""
    import torch

    from ..warp import compose_dvf, warp_image
    cfg = model.cfg
    rigid = prealign(rest, stress, rest_labels, spacing) if cfg.prealign == "rigid" else None
    moving = warp_image(stress, rigid) if rigid is not None else stress
    grid = network_grid(rest.shape, spacing, cfg.size, cfg.pixel_mm, rest_labels)
    x = network_pair(moving, rest, grid, pair_scale(rest))  # the scaling of training (data.training_sample)
    dev = next(model.parameters()).device
    with torch.no_grad():
        t = torch.from_numpy(x[None]).to(dev)
        _, dvf = model(t[:, :1], t[:, 1:])
    dvf_src = dvf_to_source(dvf[0].cpu().numpy(), grid, rest.shape)
    final = compose_dvf(rigid, dvf_src) if rigid is not None else dvf_src
    zero = np.zeros_like(final)
    return no_worse(rest, stress, [zero] + ([rigid] if rigid is not None else []) + [final], rest_labels, spacing)[0]


def register_classical(rest: np.ndarray, stress: np.ndarray, spacing: tuple[float, float],
                       rest_labels: np.ndarray | None = None) -> np.ndarray:
    """SimpleITK rigid (Euler, mean squares) then B-spline (3×3 cells, mean squares) on the two
    maps' :func:`~cmrlib.stress.data.registration_view`, the metric restricted to the heart dilated by :data:`~cmrlib.stress.data.PREALIGN_MARGIN_MM`
    when a rest mask is known.

    The coarse mesh is measured: on 24 validation phantom pairs (Dice 0.57 before) a rigid
    alignment alone reached 0.81, rigid + B-spline 0.80 (3×3), 0.79 (4×4), 0.78 (8×8): T1
    differences between the maps (the dT1 itself, a sequence's heart-rate dependence) pull a
    finer B-spline off the anatomy."""
    from scipy import ndimage

    from ..registration import register_pair
    mask = None
    if rest_labels is not None and np.isin(rest_labels, (1, 2, 3)).any():
        r = max(1, int(round(PREALIGN_MARGIN_MM / float(min(spacing)))))
        mask = ndimage.binary_dilation(np.isin(rest_labels, (1, 2, 3)), iterations=r)
    rest_view, stress_view = registration_view(rest, spacing), registration_view(stress, spacing)
    scale = pair_scale(rest_view)
    dvf = register_pair(np.clip(rest_view / scale, 0, 1.5), np.clip(stress_view / scale, 0, 1.5), mesh_size=3,
                        iterations=30, metric="mean_squares", rigid_first=True, mask=mask, search_px=search_px(spacing))
    return no_worse(rest, stress, [np.zeros_like(dvf), dvf], rest_labels, spacing)[0]

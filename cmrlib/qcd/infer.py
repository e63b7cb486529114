"""QCD inference on 2-D images: ensemble → candidates → predicted Dice → selected label map.

Each ``[row, col]`` image is resampled onto the network grid (:class:`QCDConfig` ``size`` ×
``pixel_mm``, zero outside; :func:`cmrlib.planes.centred_map`) and normalised 0–1. The grid is
centred on the image, or — two-pass models (:func:`network_maps`) — on the heart that the
deepest U-Net finds on an overview grid of the whole image;
the ``M`` U-Nets give class maps, :mod:`cmrlib.qcd.framework` builds the ``2M`` candidates,
their Dice matrix and predicted Dice and picks one; the chosen candidate goes back onto the
source grid through the exact inverse map (per-class indicator, linear, arg-max).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from ..planes import PlaneMap, centred_map, labels_back
from .data import network_input
from .framework import BLOOD_POOL, DEFAULT_THRESHOLD, SECOND_REGION_SHARE, QCDecision, Regressors, candidates, decide


@dataclass
class SliceSegmentation:
    """One image's answer: ``labels`` on the source grid (0 / 1 / 2) and the QC decision."""

    labels: np.ndarray
    decision: QCDecision
    candidates_net: np.ndarray  # [2M, size, size] on the network grid (for evaluation)
    plane_map: PlaneMap | None = None  # the network grid the candidates lie on


def regressors_of(entry) -> Regressors:
    """The Dice regressors stored with a QCD model (manifest ``calibration``)."""
    from ..errors import ModelError
    qcd = (entry.calibration or {}).get("qcd_regressors")
    if not qcd:
        raise ModelError(f"model {entry.name!r} has no QCD regressors in its manifest entry "
                         "(train it with `cmr train qcd`, which fits them on the validation split)")
    return Regressors.from_dict(qcd)


def class_maps(model, inputs: np.ndarray, device=None, batch: int = 16) -> np.ndarray:
    """``[N, S, S]`` network inputs → ``[N, M, S, S]`` arg-max class maps of the M U-Nets."""
    dev = device if device is not None else next(model.parameters()).device
    out = []
    with torch.no_grad():
        for i in range(0, len(inputs), batch):
            x = torch.from_numpy(np.ascontiguousarray(inputs[i:i + batch])[:, None]).to(dev)
            out.append(model(x).argmax(2).permute(1, 0, 2, 3).to(torch.uint8).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, len(model.nets)) + inputs.shape[1:], np.uint8)


#: overview pixels of heart (myocardium + blood pool) below which no heart was found: the crop
#: stays on the image centre and the ensemble's disagreement decides
MIN_HEART_PX = 20


@dataclass
class HeartSearch:
    """What the overview pass of a two-pass model found in one image."""

    centre_px: tuple[float, float] | None  # source (col, row) of the largest heart region; None: none found
    regions: int = 0  # separate heart-like structures (their own blood pools) large enough to count

    @property
    def separate_hearts(self) -> bool:
        """Two heart-like structures (ghosting, wrap-around): the crop could hold the wrong one."""
        return self.regions > 1


def _heart_search(class_map: np.ndarray) -> tuple[tuple[float, float] | None, int]:
    """(u, v) centroid of the largest connected heart region (myocardium + blood pool) of a
    network-grid class map (None below :data:`MIN_HEART_PX`), and how many separate blood pools
    hold more than :data:`cmrlib.qcd.framework.SECOND_REGION_SHARE` of the blood-pool pixels (a
    ghost touching the heart joins its heart region, but brings a blood pool of its own)."""
    from scipy import ndimage
    lab, n = ndimage.label(class_map > 0)
    if n == 0:
        return None, 0
    sizes = np.bincount(lab.ravel())[1:]
    k = int(np.argmax(sizes)) + 1
    if sizes[k - 1] < MIN_HEART_PX:
        return None, 0
    v, u = np.nonzero(lab == k)
    pools, m = ndimage.label(class_map == BLOOD_POOL)
    pool_sizes = np.bincount(pools.ravel())[1:] if m else np.zeros(0)
    big = int((pool_sizes > SECOND_REGION_SHARE * pool_sizes.sum()).sum()) if m else 0
    return (float(u.mean()), float(v.mean())), max(1, big)


def locate_hearts(model, images: list[np.ndarray], spacing: tuple[float, float], device=None) -> list[HeartSearch]:
    """The overview pass (two-pass models): the deepest U-Net's heart on a grid of the whole image."""
    cfg = model.config
    if not images:
        return []
    overview = [centred_map(im.shape, spacing, cfg.overview_size, cfg.overview_pixel_mm) for im in images]
    x = np.stack([network_input(im, pm) for im, pm in zip(images, overview)])
    dev = device if device is not None else next(model.parameters()).device
    deepest = model.nets[-1]
    heart = []
    with torch.no_grad():
        for i in range(0, len(x), 16):
            t = torch.from_numpy(np.ascontiguousarray(x[i:i + 16])[:, None]).to(dev)
            heart.append(deepest(t).argmax(1).to(torch.uint8).cpu().numpy())
    out = []
    for pm, h in zip(overview, np.concatenate(heart)):
        uv, regions = _heart_search(h)
        out.append(HeartSearch(None if uv is None else tuple(float(c) for c in pm.to_source_px(np.array(uv))), regions))
    return out


def network_maps(model, images: list[np.ndarray], spacing: tuple[float, float], device=None,
                 searches: list[HeartSearch] | None = None) -> list[PlaneMap]:
    """The network grid of each image: centred on the image (one-pass models), or centred on the
    heart that the deepest U-Net finds on the overview grid (two-pass models; ``searches``:
    :func:`locate_hearts` already run)."""
    cfg = model.config
    if not cfg.two_pass:
        return [centred_map(im.shape, spacing, cfg.size, cfg.pixel_mm) for im in images]
    searches = searches if searches is not None else locate_hearts(model, images, spacing, device)
    return [centred_map(im.shape, spacing, cfg.size, cfg.pixel_mm, centre_px=h.centre_px)
            for im, h in zip(images, searches)]


def segment(model, regressors: Regressors, images: list[np.ndarray], spacing: tuple[float, float], *,
            threshold: float = DEFAULT_THRESHOLD, device=None) -> list[SliceSegmentation]:
    """QCD on each ``[row, col]`` image of one grid (``spacing`` = (Δcol, Δrow) mm)."""
    cfg = model.config
    model.eval()
    searches = locate_hearts(model, images, spacing, device) if cfg.two_pass else [None] * len(images)
    maps = network_maps(model, images, spacing, device, searches if cfg.two_pass else None)
    inputs = np.stack([network_input(im, pm) for im, pm in zip(images, maps)]) if images else np.zeros((0, cfg.size, cfg.size), np.float32)
    per_net = class_maps(model, inputs, device)
    out = []
    for im, pm, cm, search in zip(images, maps, per_net, searches):
        cands = candidates(cm)
        d = decide(cands, regressors, threshold)
        if search is not None and search.separate_hearts and d.qc_pass:
            # the crop holds one of them, and the ensemble may agree on a ghost: never a pass
            d = replace(d, qc_pass=False, reason=f"the overview found {search.regions} separate heart-like regions "
                                                 "(ghosting or wrap-around?): review this slice")
        out.append(SliceSegmentation(labels_to_source(cands[d.candidate], pm, im.shape), d, cands, pm))
    return out


def labels_to_source(label_net: np.ndarray, pm, shape: tuple[int, int]) -> np.ndarray:
    """Network-grid label map (0 / 1 / 2) → source grid (:func:`cmrlib.planes.labels_back`)."""
    return labels_back(pm, label_net, shape, 3)

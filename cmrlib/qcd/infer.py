"""QCD inference on 2-D images: ensemble → candidates → predicted Dice → selected label map.

Each ``[row, col]`` image is resampled onto the network grid (:class:`QCDConfig` ``size`` ×
``pixel_mm``, centred, zero outside; :func:`cmrlib.planes.centred_map`) and normalised 0–1;
the ``M`` U-Nets give class maps, :mod:`cmrlib.qcd.framework` builds the ``2M`` candidates,
their Dice matrix and predicted Dice and picks one; the chosen candidate goes back onto the
source grid through the exact inverse map (per-class indicator, linear, arg-max).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..planes import centred_map, labels_back
from .data import network_input
from .framework import DEFAULT_THRESHOLD, QCDecision, Regressors, candidates, decide


@dataclass
class SliceSegmentation:
    """One image's answer: ``labels`` on the source grid (0 / 1 / 2) and the QC decision."""

    labels: np.ndarray
    decision: QCDecision
    candidates_net: np.ndarray  # [2M, size, size] on the network grid (for evaluation)


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


def segment(model, regressors: Regressors, images: list[np.ndarray], spacing: tuple[float, float], *,
            threshold: float = DEFAULT_THRESHOLD, device=None) -> list[SliceSegmentation]:
    """QCD on each ``[row, col]`` image of one grid (``spacing`` = (Δcol, Δrow) mm)."""
    cfg = model.config
    model.eval()
    maps = [centred_map(im.shape, spacing, cfg.size, cfg.pixel_mm) for im in images]
    inputs = np.stack([network_input(im, pm) for im, pm in zip(images, maps)]) if images else np.zeros((0, cfg.size, cfg.size), np.float32)
    per_net = class_maps(model, inputs, device)
    out = []
    for im, pm, cm in zip(images, maps, per_net):
        cands = candidates(cm)
        d = decide(cands, regressors, threshold)
        out.append(SliceSegmentation(labels_to_source(cands[d.candidate], pm, im.shape), d, cands))
    return out


def labels_to_source(label_net: np.ndarray, pm, shape: tuple[int, int]) -> np.ndarray:
    """Network-grid label map (0 / 1 / 2) → source grid (:func:`cmrlib.planes.labels_back`)."""
    return labels_back(pm, label_net, shape, 3)

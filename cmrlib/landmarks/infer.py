"""Two-stage inference of the landmark networks on 2-D images, with a confidence per image.

For each image: stage 1 on the standardised whole image and on its mirror image (test-time
flip, the prediction mapped back), their mean → stage-2 crop (RV entry line horizontal) →
stage 2 → the final points on the source pixel grid. ``disagreement_mm`` is the larger of
(a) the distance between the stage-1 points of the image and of its flip and (b) the
distance between the stage-1 and stage-2 points (each the larger over the two landmarks);
``confidence = exp(-disagreement / CONFIDENCE_SCALE_MM)`` (1 = all agree); the pipeline
refuses points under :data:`MIN_CONFIDENCE` (:mod:`cmrlib.landmarks.pipeline`). Measured: a
weak detector of images without an LV (see the constants' note).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .geometry import PlaneMap, stage1_map, stage2_map, standardise

#: calibrated on the validation subjects of the bundled compact weights: the stage-1 points of
#: an image and of its flip typically differ by ~10 mm (95th percentile 17 mm) while the final
#: error is ~2 mm, so disagreement is scaled by 10 mm and images over 20 mm are refused (2 % of
#: validation LV images). This catches only a third of images without an LV: the networks
#: give consistent points on them too (benchmarks/bench_landmarks.py, "no-LV images").
CONFIDENCE_SCALE_MM = 10.0
MIN_CONFIDENCE = float(np.exp(-2.0))  # below (disagreement over 20 mm): no landmarks


@dataclass
class Prediction:
    """Points as source ``(col, row)`` pixels."""

    rv_px: np.ndarray
    lv_px: np.ndarray
    rv_stage1_px: np.ndarray
    lv_stage1_px: np.ndarray
    disagreement_mm: float
    confidence: float


def _run(net: torch.nn.Module, inputs: list[np.ndarray], device) -> np.ndarray:
    x = torch.from_numpy(np.stack(inputs)[:, None]).to(device)
    with torch.no_grad():
        return net(x).cpu().numpy().astype(float)


def _back(pm: PlaneMap, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    uv = y.reshape(2, 2) * pm.size
    px = pm.to_source_px(uv)
    return px[0], px[1]


def _dist_mm(a: np.ndarray, b: np.ndarray, spacing: tuple[float, float]) -> float:
    return float(np.hypot(*((a - b) * np.asarray(spacing))))


def predict(model, images: list[np.ndarray], spacing: tuple[float, float], mirrored: bool = False,
            *, stages: int = 2, flip_test: bool = True, device=None) -> list[Prediction]:
    """Landmarks of each ``[row, col]`` image of one grid (``spacing`` = (Δcol, Δrow) mm)."""
    cfg = model.config
    dev = device if device is not None else next(model.parameters()).device
    model.eval()
    maps = [stage1_map(im.shape, spacing, cfg.stage1_size, cfg.stage1_pixel_mm, mirrored) for im in images]
    inputs = [standardise(pm.sample(im)) for pm, im in zip(maps, images)]
    y1 = _run(model.stage1, inputs, dev)
    flip_maps = [stage1_map(im.shape, spacing, cfg.stage1_size, cfg.stage1_pixel_mm, not mirrored) for im in images]
    y1f = _run(model.stage1, [standardise(pm.sample(im)) for pm, im in zip(flip_maps, images)], dev) if flip_test else None
    coarse = []
    for i in range(len(images)):
        rv, lv = _back(maps[i], y1[i])
        d_flip = 0.0
        if y1f is not None:
            rvf, lvf = _back(flip_maps[i], y1f[i])
            d_flip = max(_dist_mm(rv, rvf, spacing), _dist_mm(lv, lvf, spacing))
            rv, lv = (rv + rvf) / 2, (lv + lvf) / 2
        coarse.append((rv, lv, d_flip))
    if stages == 1:
        return [_prediction(rv, lv, rv, lv, d, 0.0) for rv, lv, d in coarse]
    maps2 = [stage2_map(rv, lv, spacing, cfg.stage2_size, cfg.stage2_pixel_mm, mirrored) for rv, lv, _ in coarse]
    y2 = _run(model.stage2, [standardise(pm.sample(im)) for pm, im in zip(maps2, images)], dev)
    out = []
    for i, (rv1, lv1, d_flip) in enumerate(coarse):
        rv, lv = _back(maps2[i], y2[i])
        d_stage = max(_dist_mm(rv, rv1, spacing), _dist_mm(lv, lv1, spacing))
        out.append(_prediction(rv, lv, rv1, lv1, d_flip, d_stage))
    return out


def _prediction(rv, lv, rv1, lv1, d_flip: float, d_stage: float) -> Prediction:
    d = max(d_flip, d_stage)
    return Prediction(np.asarray(rv, float), np.asarray(lv, float), np.asarray(rv1, float), np.asarray(lv1, float),
                      d, float(np.exp(-d / CONFIDENCE_SCALE_MM)))

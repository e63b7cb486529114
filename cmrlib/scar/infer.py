"""Scar U-Net inference on one slice pair: network grids, inputs, classes, post-processing.

Each image goes onto a ``size × size`` grid of ``pixel_mm`` pixels centred on its own LV centre
(:func:`cmrlib.planes.centred_map` with ``centre_px``), which is the paper's translation-only
alignment; intensities are scaled 0–1 (:func:`normalise01`). The network's 4 classes become
myocardium and scar after the card's post-processing (:func:`postprocess`), on the network
grid, and go back onto the LGE grid through the exact inverse map.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from ..planes import PlaneMap, centred_map, labels_back
from .unet import MYOCARDIUM, SCAR

#: the card's closing radius, 3 px of 1.2 mm, kept in mm on other grids
CLOSING_RADIUS_MM = 3.6
#: output labels (labels.nrrd)
OUT_BACKGROUND, OUT_MYOCARDIUM, OUT_SCAR = 0, 1, 2


def normalise01(img: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Intensities scaled 0–1 between the 1st and 99.5th percentiles of the (valid) pixels."""
    x = np.asarray(img, np.float32)
    sel = x[valid] if valid is not None and valid.any() else x
    if sel.size == 0:
        return np.zeros_like(x)
    lo, hi = np.percentile(sel, [1.0, 99.5])
    return np.clip((x - lo) / max(float(hi - lo), 1e-6), 0.0, 1.0).astype(np.float32)


def grid_map(shape: tuple[int, int], spacing, centre_px, config) -> PlaneMap:
    """The network grid of one image, centred on its LV centre (col, row) px (image centre if None)."""
    c = None if centre_px is None else (float(centre_px[0]), float(centre_px[1]))
    return centred_map(shape, (float(spacing[0]), float(spacing[1])), config.size, config.pixel_mm, centre_px=c)


def _inside(pm: PlaneMap, shape: tuple[int, int]) -> np.ndarray:
    return pm.sample(np.ones(shape, np.float32), order=0) > 0.5


def network_input(lge2d: np.ndarray, pm_lge: PlaneMap, cine2d: np.ndarray | None = None,
                  pm_cine: PlaneMap | None = None) -> np.ndarray:
    """``[C, S, S]``: the LGE (and the aligned cine) on the network grid, each scaled 0–1."""
    chans = [normalise01(pm_lge.sample(lge2d), _inside(pm_lge, lge2d.shape))]
    if cine2d is not None:
        chans.append(normalise01(pm_cine.sample(cine2d), _inside(pm_cine, cine2d.shape)))
    return np.stack(chans).astype(np.float32)


def predict(model, inputs: np.ndarray, device=None, batch: int = 16, scar_logit_offset: float = 0.0) -> np.ndarray:
    """``[N, C, S, S]`` inputs → ``[N, S, S]`` arg-max classes (:data:`cmrlib.scar.unet.CLASSES`).

    ``scar_logit_offset`` is added to the scar logit before the arg-max: the model's calibrated
    decision (manifest ``calibration``), fitted on validation stacks so the %scar it reads there
    is unbiased (a network trained with class-weighted cross-entropy still under-calls scar)."""
    dev = device if device is not None else next(model.parameters()).device
    out = []
    model.eval()
    with torch.no_grad():
        for i in range(0, len(inputs), batch):
            x = torch.from_numpy(np.ascontiguousarray(inputs[i:i + batch])).to(dev)
            logits = model(x)
            if scar_logit_offset:
                logits[:, SCAR] += float(scar_logit_offset)
            out.append(logits.argmax(1).to(torch.uint8).cpu().numpy())
    size = inputs.shape[-1] if len(inputs) else 0
    return np.concatenate(out) if out else np.zeros((0, size, size), np.uint8)


def _disk(radius_px: int) -> np.ndarray:
    r = np.arange(-radius_px, radius_px + 1)
    return (r[:, None] ** 2 + r[None] ** 2) <= radius_px ** 2


#: the card's final dilation of the myocardium (pixels)
CARD_DILATE_PX = 1


def postprocess(classes: np.ndarray, pixel_mm: float, dilate_px: int = CARD_DILATE_PX) -> np.ndarray:
    """The card's post-processing of one class map: myocardium (normal + scar) closed with a disk
    of :data:`CLOSING_RADIUS_MM`, its largest connected component kept, dilated by ``dilate_px``
    (the card: one pixel); blood merged into background; scar only inside that myocardium.
    Returns 0 / 1 / 2 labels."""
    cls = np.asarray(classes)
    myo = (cls == MYOCARDIUM) | (cls == SCAR)
    out = np.zeros(cls.shape, np.uint8)
    if not myo.any():
        return out
    radius = max(1, int(round(CLOSING_RADIUS_MM / pixel_mm)))
    pad = radius + 1  # closing near the border must not erode what touches it
    closed = ndimage.binary_closing(np.pad(myo, pad), structure=_disk(radius))[pad:-pad, pad:-pad]
    lab, n = ndimage.label(closed)
    if n > 1:
        sizes = ndimage.sum(closed, lab, index=np.arange(1, n + 1))
        closed = lab == (int(np.argmax(sizes)) + 1)
    final = ndimage.binary_dilation(closed, structure=_disk(1), iterations=dilate_px) if dilate_px > 0 else closed
    out[final] = OUT_MYOCARDIUM
    out[final & (cls == SCAR)] = OUT_SCAR
    return out


def labels_to_lge(labels_net: np.ndarray, pm_lge: PlaneMap, shape: tuple[int, int]) -> np.ndarray:
    """0 / 1 / 2 labels on the network grid → the LGE slice's grid."""
    return labels_back(pm_lge, labels_net, shape, 3)

"""Running a trained MOCOnet on IRW frames of any size and any supported frame count.

Pre-processing (the same in training, :mod:`cmrlib.motion.train`): frames ordered by TI,
each divided by its own 99th percentile (quantile normalisation per frame, so the dark
early-TI frames show their structure as clearly as the late ones), zero-padded to a
centred square, resized to the network input; absent frame slots are zero. The predicted
DVFs are resized back (displacements scaled with the grid) and cropped to the input.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from .warp import warp_frames


def normalise_frames(frames: np.ndarray) -> np.ndarray:
    """Quantile normalisation: each frame ``[n, h, w]`` divided by its own 99th percentile."""
    q = np.percentile(frames.reshape(len(frames), -1), 99, axis=1)
    return frames / np.where(q > 0, q, 1.0)[:, None, None]


def to_network_input(frames: np.ndarray, size: int, slots: int) -> tuple[torch.Tensor, torch.Tensor, tuple]:
    """``[1, slots, size, size]`` input, presence mask ``[1, slots]`` and the geometry to undo it."""
    n, h, w = frames.shape
    if n > slots:
        raise InputError(f"this MOCOnet model takes at most {slots} frames; the series has {n}")
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    padded = np.zeros((slots, side, side), np.float32)
    padded[:n, top:top + h, left:left + w] = normalise_frames(frames.astype(np.float32))
    x = torch.from_numpy(padded)[None]
    if side != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=True)
    present = torch.zeros(1, slots, dtype=torch.bool)
    present[0, :n] = True
    return x, present, (n, h, w, side, top, left)


def from_network_dvf(dvf: torch.Tensor, geometry: tuple) -> np.ndarray:
    """Network DVF ``[1, slots, 2, size, size]`` → ``[n, 2, h, w]`` pixels of the input frames."""
    n, h, w, side, top, left = geometry
    d = dvf[0, :n]
    size = d.shape[-1]
    if size != side:
        d = F.interpolate(d, size=(side, side), mode="bilinear", align_corners=True) * ((side - 1) / (size - 1))
    return d[:, :, top:top + h, left:left + w].cpu().numpy().astype(np.float32)


@torch.no_grad()
def predict_dvf(model: torch.nn.Module, frames: np.ndarray) -> np.ndarray:
    """Sampling DVFs ``[n, 2, h, w]`` for TI-ordered ``frames`` ``[n, h, w]``."""
    cfg = model.config
    # the groupwise design takes any number of frames; the channels design has fixed slots
    slots = len(frames) if getattr(model, "any_frame_count", False) else cfg.frame_slots
    x, present, geo = to_network_input(frames, cfg.input_size, slots)
    device = next(model.parameters()).device
    dvf = model(x.to(device), present.to(device))
    return from_network_dvf(dvf, geo)


def correct_frames(model: torch.nn.Module, frames: np.ndarray, tis: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """(corrected frames, DVFs) for TI-ordered frames ``[n, h, w]``."""
    if list(tis) != sorted(tis):
        raise InputError("MOCOnet expects frames ordered by inversion time")
    dvf = predict_dvf(model, frames)
    return warp_frames(frames, dvf), dvf

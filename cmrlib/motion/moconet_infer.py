"""Running a trained MOCOnet on IRW frames of any size and any supported frame count.

Pre-processing (the same in training, :mod:`cmrlib.motion.train`): frames ordered by TI,
each divided by its own 99th percentile (quantile normalisation per frame, so the dark
early-TI frames show their structure as clearly as the late ones), zero-padded to a
centred square, resized to the network input; absent frame slots are zero. The predicted
DVFs are resized back (displacements scaled with the grid) and cropped to the input.
By default the network runs on the 8 flips / transposes of the frames in one batch and the
DVFs, mapped back, are averaged (:data:`FLIP_AVERAGE`; measured in the model card).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from ..warp import warp_frames


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


#: The product's setting for ``predict_dvf(flip_average=...)`` (pipeline, evaluation, benchmark).
FLIP_AVERAGE = True


def _dihedral(x: torch.Tensor, code: int) -> torch.Tensor:
    """One of the 8 flips / transposes of the square images ``[..., H, W]`` (bits: transpose, row flip, col flip)."""
    if code & 1:
        x = x.transpose(-1, -2)
    if code & 2:
        x = x.flip(-2)
    if code & 4:
        x = x.flip(-1)
    return x


def _undo_dihedral_dvf(d: torch.Tensor, code: int) -> torch.Tensor:
    """Map DVFs ``[..., 2, H, W]`` predicted on ``_dihedral(x, code)`` back to ``x``'s grid and axes."""
    sign = torch.tensor([-1.0 if code & 2 else 1.0, -1.0 if code & 4 else 1.0], dtype=d.dtype, device=d.device)
    d = _dihedral(d, code & 6) * sign.view(2, 1, 1)  # flips are their own inverses; components flip sign
    if code & 1:
        d = d.transpose(-1, -2).flip(-3)  # transpose back; row and column components swap
    return d


@torch.no_grad()
def predict_dvf(model: torch.nn.Module, frames: np.ndarray, flip_average: bool | None = None) -> np.ndarray:
    """Sampling DVFs ``[n, 2, h, w]`` for TI-ordered ``frames`` ``[n, h, w]``.

    ``flip_average``: run the network on the 8 flips / transposes of the frames (one batch)
    and average the DVFs mapped back — test-time augmentation that cancels much of the
    network's orientation-dependent error (on still sets the spurious motion roughly halves)
    for 8× the network time. None: the product's setting, :data:`FLIP_AVERAGE`.
    """
    flip_average = FLIP_AVERAGE if flip_average is None else flip_average
    cfg = model.config
    # the groupwise design takes any number of frames; the channels design has fixed slots
    slots = len(frames) if getattr(model, "any_frame_count", False) else cfg.frame_slots
    x, present, geo = to_network_input(frames, cfg.input_size, slots)
    device = next(model.parameters()).device
    x, present = x.to(device), present.to(device)
    if not flip_average:
        return from_network_dvf(model(x, present), geo)
    codes = range(8)
    dvfs = model(torch.cat([_dihedral(x, c) for c in codes]), present.expand(len(codes), -1))
    dvf = torch.stack([_undo_dihedral_dvf(dvfs[i], c) for i, c in enumerate(codes)]).mean(dim=0, keepdim=True)
    return from_network_dvf(dvf, geo)


def correct_frames(model: torch.nn.Module, frames: np.ndarray, tis: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """(corrected frames, DVFs) for TI-ordered frames ``[n, h, w]``."""
    if list(tis) != sorted(tis):
        raise InputError("MOCOnet expects frames ordered by inversion time")
    dvf = predict_dvf(model, frames)
    return warp_frames(frames, dvf), dvf

"""Displacement fields and warping: one convention for MOCOnet, the stress registration, the classical baselines and the phantom checks.

Convention (one for the whole project): a DVF for frame k is an array ``[2, row, col]`` of
*sampling* displacements in pixels, channel 0 along rows, channel 1 along columns. The
corrected frame is ``corrected(x) = frame(x + dvf(x))`` (backward warping, bilinear).
A sequence of DVFs is ``[frame, 2, row, col]``.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def identity_grid(h: int, w: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Pixel coordinates ``[2, h, w]`` (row, col)."""
    rows = torch.arange(h, device=device, dtype=dtype)
    cols = torch.arange(w, device=device, dtype=dtype)
    return torch.stack(torch.meshgrid(rows, cols, indexing="ij"))


def warp_torch(images: torch.Tensor, dvf: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """Warp ``images`` [N, C, H, W] by sampling DVFs ``dvf`` [N, 2, H, W] (pixels; see module doc)."""
    n, _, h, w = images.shape
    grid = identity_grid(h, w, images.device, images.dtype)[None] + dvf
    # grid_sample wants (x=col, y=row) normalised to [-1, 1] with align_corners=True
    norm = torch.stack([2.0 * grid[:, 1] / max(w - 1, 1) - 1.0, 2.0 * grid[:, 0] / max(h - 1, 1) - 1.0], dim=-1)
    return F.grid_sample(images, norm, mode=mode, padding_mode="border", align_corners=True)


def warp_frames(frames: np.ndarray, dvf: np.ndarray) -> np.ndarray:
    """Warp each frame ``[frame, row, col]`` by its DVF ``[frame, 2, row, col]``; numpy in and out."""
    img = torch.as_tensor(np.ascontiguousarray(frames), dtype=torch.float32)[:, None]
    d = torch.as_tensor(np.ascontiguousarray(dvf), dtype=torch.float32)
    return warp_torch(img, d)[:, 0].numpy()


def remove_mean_displacement(dvf: np.ndarray | torch.Tensor):
    """Subtract the mean over frames (groupwise: only relative motion is defined)."""
    return dvf - dvf.mean(axis=0, keepdims=True) if isinstance(dvf, np.ndarray) else dvf - dvf.mean(dim=0, keepdim=True)


def dvf_to_lps_mm(dvf_px: np.ndarray, spacing: tuple[float, float, float], direction: np.ndarray) -> np.ndarray:
    """Pixel DVFs ``[..., 2, row, col]`` (d_row, d_col) → LPS mm vectors ``[..., row, col, 3]``."""
    row_vec = direction[:, 1] * spacing[1]  # one row step in LPS mm
    col_vec = direction[:, 0] * spacing[0]
    d = np.moveaxis(dvf_px, -3, -1)  # [..., row, col, 2]
    return d[..., 0:1] * row_vec + d[..., 1:2] * col_vec


def compose_dvf(first: np.ndarray, then: np.ndarray) -> np.ndarray:
    """The one sampling DVF of two warps in turn: ``first`` (``a(x) = m(x + first(x))``), then
    ``then`` applied to its result (``b(x) = a(x + then(x))``) — ``b(x) = m(x + total(x))`` with
    ``total = then + first(x + then)``. Arrays ``[2, row, col]`` (pixels)."""
    moved_first = warp_frames(np.ascontiguousarray(first), np.stack([then, then]))
    return (then + moved_first).astype(np.float32)


def warp_image(image2d: np.ndarray, dvf: np.ndarray, nearest: bool = False) -> np.ndarray:
    """One 2-D image (or label map, ``nearest``) warped by a sampling DVF ``[2, row, col]``; same dtype."""
    img = torch.as_tensor(np.ascontiguousarray(image2d, dtype=np.float32))[None, None]
    d = torch.as_tensor(np.ascontiguousarray(dvf, dtype=np.float32))[None]
    out = warp_torch(img, d, mode="nearest" if nearest else "bilinear")[0, 0].numpy()
    return out.astype(np.asarray(image2d).dtype) if nearest else out.astype(np.float32)

"""Classical motion-correction baseline for IRW frames: model-driven B-spline registration.

Contrast changes with inversion time (early frames are inverted and nulled), so frames are
not registered to one another directly. As in model-based MOLLI motion correction (Xue et
al., MRM 2012): fit T1 to the current frames, synthesise each frame's expected image from
the fit (same contrast as that frame), register the frame to its synthetic twin with a
SimpleITK B-spline transform (Mattes mutual information, multi-resolution L-BFGS-B), warp,
refit, repeat. Returns sampling DVFs in the project convention (:mod:`cmrlib.warp`).
"""
from __future__ import annotations

import numpy as np

from ..progress import ProgressCallback, report
from ..registration import register_pair
from ..t1.fit import fit_t1
from ..warp import warp_frames


def _synthetic_frames(frames: np.ndarray, tis: list[float]) -> np.ndarray:
    fit = fit_t1(frames, tis)
    ti = np.asarray(fit.inversion_times_ms)[:, None, None]
    order = np.argsort(np.argsort(tis))  # fit sorts by TI: map back to the input order
    t1s = np.where(fit.valid, fit.t1_star, 1.0)
    synth = np.abs(fit.a[None] - fit.b[None] * np.exp(-ti / t1s[None]))[order]
    return np.where(fit.valid[None], synth, frames)


def register_irw_classical(frames: np.ndarray, inversion_times_ms: list[float], *, outer_iterations: int = 2,
                           mesh_size: int = 6, progress: ProgressCallback | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Correct the IRW ``frames`` ``[frame, row, col]``; returns (corrected frames, DVFs ``[frame,2,row,col]``)."""
    n = frames.shape[0]
    dvf = np.zeros((n, 2, *frames.shape[1:]), np.float32)
    corrected = frames.astype(np.float32)
    steps = outer_iterations * n
    for it in range(outer_iterations):
        synth = _synthetic_frames(corrected, inversion_times_ms)
        for k in range(n):
            report(progress, "classical registration", it * n + k, steps, f"frame {k + 1}/{n}")
            # register the ORIGINAL frame to the synthetic target: no accumulated interpolation blur
            dvf[k] = register_pair(synth[k], frames[k], mesh_size)
        corrected = warp_frames(frames, dvf)
    report(progress, "classical registration", steps, steps, "done")
    return corrected, dvf

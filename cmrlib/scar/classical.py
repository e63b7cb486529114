"""The classical LGE scar thresholds clinicians use: n-SD above remote myocardium, and FWHM.

Both need a myocardium mask (the user's, QCD's or the phantom truth) and work on the LGE's own
grid, without post-processing (as CMRSegTools and clinical packages report them):

* **n-SD** (:func:`nsd_scar`): scar = myocardium brighter than mean + n × sd of a *remote*
  region. Remote is the user's region (one mask, pooled over the stack) or, automatically on
  each slice, the lowest-signal of six equal-angle myocardial sectors around the LV centre
  (:func:`auto_remote`) — normal myocardium is the darkest tissue of a well-nulled LGE.
* **FWHM** (:func:`fwhm_scar`): scar = myocardium brighter than half the maximum myocardial
  signal of the stack (the maximum after a 3×3 median, so one noisy pixel does not set it).
  FWHM assumes a scar is there: on a stack without one, half the brightest normal pixel
  labels noise as scar — a known weakness the benchmark shows.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

N_SECTORS = 6
MIN_REMOTE_PX = 8
CLASSICAL_METHODS = {"nsd2": 2.0, "nsd3": 3.0, "nsd5": 5.0, "fwhm": None}


def _centre(myo2d: np.ndarray) -> tuple[float, float]:
    rr, cc = np.nonzero(myo2d)
    return float(cc.mean()), float(rr.mean())


def auto_remote(lge2d: np.ndarray, myo2d: np.ndarray, centre_px: tuple[float, float] | None = None) -> np.ndarray:
    """The lowest-mean of :data:`N_SECTORS` angular sectors of the myocardium (boolean mask);
    the whole myocardium when no sector has :data:`MIN_REMOTE_PX` pixels."""
    myo = np.asarray(myo2d, bool)
    if myo.sum() < MIN_REMOTE_PX:
        return myo
    cx, cy = centre_px if centre_px is not None else _centre(myo)
    rr, cc = np.nonzero(myo)
    sector = (np.floor((np.arctan2(rr - cy, cc - cx) + np.pi) / (2 * np.pi) * N_SECTORS).astype(int)) % N_SECTORS
    vals = np.asarray(lge2d, float)[rr, cc]
    best, best_mean = None, None
    for s in range(N_SECTORS):
        sel = sector == s
        if sel.sum() >= MIN_REMOTE_PX and (best_mean is None or vals[sel].mean() < best_mean):
            best, best_mean = s, float(vals[sel].mean())
    out = np.zeros_like(myo)
    if best is None:
        return myo
    out[rr[sector == best], cc[sector == best]] = True
    return out


def nsd_scar(lge: np.ndarray, myocardium: np.ndarray, n_sd: float, remote: np.ndarray | None = None,
             centres_px: list | None = None) -> tuple[np.ndarray, list[float | None]]:
    """Scar mask ``[slice, row, col]`` by mean + ``n_sd`` sd of remote myocardium, and each slice's
    threshold (None on a slice without myocardium). ``remote``: the user's remote region (pooled)."""
    lge = np.asarray(lge, float)
    myo = np.asarray(myocardium, bool)
    scar = np.zeros_like(myo)
    thresholds: list[float | None] = []
    pooled = None
    if remote is not None and np.asarray(remote, bool).sum() >= MIN_REMOTE_PX:
        vals = lge[np.asarray(remote, bool)]
        pooled = float(vals.mean() + n_sd * vals.std())
    for k in range(lge.shape[0]):
        if myo[k].sum() < MIN_REMOTE_PX:
            thresholds.append(None)
            continue
        if pooled is not None:
            thr = pooled
        else:
            c = centres_px[k] if centres_px is not None and centres_px[k] is not None else None
            vals = lge[k][auto_remote(lge[k], myo[k], c)]
            thr = float(vals.mean() + n_sd * vals.std())
        thresholds.append(thr)
        scar[k] = myo[k] & (lge[k] > thr)
    return scar, thresholds


#: the intensity gate's "off" value: a threshold at −∞ keeps every scar pixel
NO_GATE = float("-inf")


def gate_scar(labels: np.ndarray, lge: np.ndarray, n_sd: float, remote: np.ndarray | None = None,
              centres_px: list | None = None, scar_label: int = 2, myocardium_label: int = 1) -> np.ndarray:
    """A network's scar kept only where the LGE is brighter than remote myocardium's mean +
    ``n_sd`` sd (remote: the user's region, else each slice's darkest sector of the labelled
    myocardium, as :func:`nsd_scar`); scar pixels at or below it become normal myocardium. The
    reference reader's rule (seed 003: a grey-scale threshold over the visibly hyper-enhanced
    areas) applied to the network's candidate: it removes scar the network reads into
    non-enhanced texture (artefacts, noise). ``n_sd`` = :data:`NO_GATE` returns the labels as they are."""
    out = np.array(labels, copy=True)
    if n_sd == NO_GATE:
        return out
    bright, _ = nsd_scar(lge, out > 0, n_sd, remote, centres_px)
    out[(out == scar_label) & ~bright] = myocardium_label
    return out


def fwhm_scar(lge: np.ndarray, myocardium: np.ndarray) -> tuple[np.ndarray, float | None]:
    """Scar mask by half the stack's maximum myocardial signal (after a 3×3 median), and that threshold."""
    lge = np.asarray(lge, float)
    myo = np.asarray(myocardium, bool)
    if not myo.any():
        return np.zeros_like(myo), None
    smooth = np.stack([ndimage.median_filter(s, size=3) for s in lge])
    thr = 0.5 * float(smooth[myo].max())
    return myo & (lge > thr), thr


def classical_scar(method: str, lge: np.ndarray, myocardium: np.ndarray, remote: np.ndarray | None = None,
                   centres_px: list | None = None) -> np.ndarray:
    """Scar mask of one of :data:`CLASSICAL_METHODS`."""
    if method not in CLASSICAL_METHODS:
        raise ValueError(f"unknown classical method {method!r}")
    if method == "fwhm":
        return fwhm_scar(lge, myocardium)[0]
    return nsd_scar(lge, myocardium, CLASSICAL_METHODS[method], remote, centres_px)[0]

"""MR signal models of the phantom's sequences (layer c). Times in ms, angles in degrees.

* bSSFP cine: steady-state balanced SSFP with off-resonance (elliptical signal model of
  Xiang & Hoff 2014, RF phase cycling 180°), TE = TR/2.
* MOLLI / ShMOLLI inversion-recovery-weighted (IRW) frames: by default the sequence-level
  Bloch simulation of :mod:`cmrlib.t1.sequence`; the idealised Look-Locker-modified
  recovery ``S(TI) = |A - B exp(-TI/T1*)|`` with ``T1* = T1 / (B/A - 1)`` (:func:`look_locker`,
  full recovery before every inversion) stays available as ``irw_model="ideal"``.
* LGE: inversion-recovery gradient echo, ``Mz(TI) = 1 - 2 exp(-TI/T1) + exp(-Trep/T1)``
  (inversion every ``Trep``), signed for PSIR and magnitude otherwise; the null TI of a
  tissue is ``T1 ln(2 / (1 + exp(-Trep/T1)))``.
* A scanner-style inline T1 fit of IRW frames (grid search over T1* with polarity
  restoration, parabolic refinement, linear A/B) that makes the phantom's T1-map series.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

F32 = np.float32


# ---- bSSFP -------------------------------------------------------------------------------
def bssfp(pd: np.ndarray, t1: np.ndarray, t2: np.ndarray, flip_deg: float, tr_ms: float,
          off_resonance_hz: np.ndarray | float = 0.0) -> np.ndarray:
    """bSSFP magnitude (relative to M0 = 1) with off-resonance (Hz); dark bands at +-1/(2 TR)."""
    a = np.deg2rad(flip_deg)
    e1 = np.exp(-tr_ms / np.maximum(t1, 1e-3))
    e2 = np.exp(-tr_ms / np.maximum(t2, 1e-3))
    ca, sa = np.cos(a), np.sin(a)
    den = 1.0 - e1 * ca - e2 ** 2 * (e1 - ca)
    m = (1.0 - e1) * sa / den
    b = e2 * (1.0 - e1) * (1.0 + ca) / den
    # phase accrued per TR; +pi from the alternating (+a, -a) RF puts on-resonance in the pass band
    theta = 2.0 * np.pi * np.asarray(off_resonance_hz) * tr_ms * 1e-3 + np.pi
    mag = m * np.sqrt(1.0 - 2.0 * e2 * np.cos(theta) + e2 ** 2) / (1.0 - b * np.cos(theta))
    return (pd * mag * np.exp(-0.5 * tr_ms / np.maximum(t2, 1e-3))).astype(F32)


def bssfp_tissue(tissue: np.ndarray, pd: np.ndarray, t1: np.ndarray, t2: np.ndarray, flip_deg: float,
                 tr_ms: float, off_resonance_hz: np.ndarray | None = None) -> np.ndarray:
    """:func:`bssfp` for a tissue-code map: per-tissue constants, per-pixel off-resonance only.

    ``pd`` may be a per-pixel map (texture); ``t1``/``t2`` are per-tissue vectors (ms).
    """
    a = np.deg2rad(flip_deg)
    e1 = np.exp(-tr_ms / np.maximum(t1, 1e-3))
    e2 = np.exp(-tr_ms / np.maximum(t2, 1e-3))
    ca, sa = np.cos(a), np.sin(a)
    den = 1.0 - e1 * ca - e2 ** 2 * (e1 - ca)
    m = ((1.0 - e1) * sa / den * np.exp(-0.5 * tr_ms / np.maximum(t2, 1e-3))).astype(F32)
    b = (e2 * (1.0 - e1) * (1.0 + ca) / den).astype(F32)
    e2 = e2.astype(F32)
    if off_resonance_hz is None or not np.any(off_resonance_hz):
        # on resonance (theta = pi): |1 + E2| / (1 + b)
        lut = m * (1.0 + e2) / (1.0 + b)
        return (pd * lut[tissue]).astype(F32)
    cos_t = -np.cos(2.0 * np.pi * off_resonance_hz * tr_ms * 1e-3).astype(F32)  # theta + pi
    e2p = e2[tissue]
    mag = m[tissue] * np.sqrt(1.0 - 2.0 * e2p * cos_t + e2p ** 2) / (1.0 - b[tissue] * cos_t)
    return (pd * mag).astype(F32)


def band_proximity(off_resonance_hz: np.ndarray, tr_ms: float) -> np.ndarray:
    """0 in the bSSFP pass band centre .. 1 on a dark band (off-resonance of 1/(2 TR) + k/TR)."""
    theta = 2.0 * np.pi * np.asarray(off_resonance_hz) * tr_ms * 1e-3
    return (0.5 * (1.0 - np.cos(theta))) ** 4


# ---- MOLLI / ShMOLLI ---------------------------------------------------------------------
# The MOLLI-family schemes and their nominal inversion times have one home, cmrlib.t1.sequence
# (with the sequence-level Bloch simulation the phantom's IRW images use by default).
from ..t1.sequence import SCHEMES, IRWSample, irw_samples  # noqa: E402,F401  (re-exported)


def look_locker(ti_ms: np.ndarray, a: np.ndarray, ba: np.ndarray, t1: np.ndarray) -> np.ndarray:
    """|A - B exp(-TI/T1*)| for frames: ti (F,), maps (...) -> (F, ...)."""
    t1s = t1 / np.maximum(ba - 1.0, 1e-3)
    ti = np.asarray(ti_ms, F32).reshape((-1,) + (1,) * np.ndim(a))
    return np.abs(a - a * ba * np.exp(-ti / np.maximum(t1s, 1e-3))).astype(F32)


# ---- inversion-recovery gradient echo (LGE) ------------------------------------------------
def ir_mz(t1: np.ndarray, ti_ms: float, trep_ms: float) -> np.ndarray:
    """Longitudinal magnetisation at TI after inversion every ``trep_ms`` (signed, M0 = 1)."""
    t1 = np.maximum(t1, 1e-3)
    return (1.0 - 2.0 * np.exp(-ti_ms / t1) + np.exp(-trep_ms / t1)).astype(F32)


def null_ti(t1: float, trep_ms: float) -> float:
    """Inversion time (ms) that nulls a tissue of longitudinal relaxation ``t1`` (ms)."""
    return float(t1 * np.log(2.0 / (1.0 + np.exp(-trep_ms / t1))))


def ir_gre(pd: np.ndarray, t1: np.ndarray, t2s: np.ndarray, ti_ms: float, trep_ms: float,
           te_ms: float = 3.0) -> np.ndarray:
    """Signed IR-GRE signal (PSIR before normalisation): PD * Mz(TI) * exp(-TE/T2*)."""
    return (pd * ir_mz(t1, ti_ms, trep_ms) * np.exp(-te_ms / np.maximum(t2s, 1e-3))).astype(F32)

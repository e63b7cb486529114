"""Sequence-level simulation of MOLLI / ShMOLLI inversion-recovery-weighted (IRW) images.

A Bloch simulation of one on-resonance isochromat per tissue (vectorised over tissues: every
array argument broadcasts to one shape ``(N,)``) through the whole breath-hold of a
MOLLI-family scheme: ECG-triggered single-shot bSSFP images, inversion pulses of finite
efficiency, and the real recovery between inversions (no assumption of full recovery).
The signal of an image is the transverse magnetisation at the k-space centre line.

Choices (defaults; see docs/methods/t1-sequence-simulation.md for the sources):

* inversion: instantaneous, ``Mz -> -eta * Mz`` with ``eta = 0.96`` (adiabatic tan/tanh pulse
  on myocardium, Kellman et al. MRM 2014), transverse magnetisation spoiled after it;
* readout: single-shot bSSFP, flip angle 35 deg, TR 2.6 ms, TE = TR/2, RF phase alternated
  (0/180 deg), preceded by ``n_ramp = 5`` linearly ramped pulses (alpha*(k+0.5)/5); 72 lines
  (e.g. 192 phase encodes, GRAPPA 2, 6/8 partial Fourier, linear order) with the k-space
  centre at line 24; hard pulses; the slice profile as six equally weighted sub-slices at
  1, 0.95, 0.8, 0.6, 0.35 and 0.15 x the nominal flip angle (a windowed-sinc excitation of
  time-bandwidth ~2), whose complex signals add; transverse magnetisation spoiled after the
  train (no alpha/2 flip-back);
* timing: beat ``k`` starts at the sum of the preceding R-R intervals (optionally with
  beat-to-beat variability); every image's k-space centre is ``trigger_delay_ms`` +
  (ramp + centre lines) x TR after its R wave; inversion ``j`` precedes the centre of its first
  image by ``TI0 + j * ti_step_ms``; the recorded inversion time of every image is the real
  time from its inversion to its k-space centre (as scanners record it);
* start: fully relaxed (``Mz = M0``) at the first inversion;
* between events: free relaxation ``Mz -> 1 - (1 - Mz) exp(-t/T1)``.

Nothing here imports the phantom or CMRMotion (core layer).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: images per inversion and recovery heartbeats after each inversion block (acquisition order)
SCHEMES: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "ShMOLLI": ((5, 1, 1), (1, 1)),
    "MOLLI 5(3)3": ((5, 3), (3,)),
    "MOLLI 3(3)3(3)5": ((3, 3, 5), (3, 3)),
    "MOLLI 4(1)3(1)2": ((4, 3, 2), (1, 1)),
}
#: the sampling schemes' own names (a 5(3)3 MOLLI is sometimes written 5b(3b)3b)
SCHEME_NAMES = tuple(SCHEMES)


@dataclass(frozen=True)
class IRWSample:
    """One IRW image of a scheme: inversion time (ms), inversion index, heartbeat index."""

    ti_ms: float
    inversion: int
    heartbeat: int


def irw_samples(scheme: str, ti0_ms: float, rr_ms: float, ti_step_ms: float = 80.0) -> list[IRWSample]:
    """Nominal inversion times of a MOLLI-family scheme (constant R-R), in acquisition order.

    Inversion ``j`` (0-based) samples ``TI0 + j*ti_step + k*RR`` (k = 0..n_j-1); the
    recovery heartbeats between inversion blocks are counted in ``heartbeat``.
    """
    counts, recovery = SCHEMES[scheme]
    out, beat = [], 0
    for j, n in enumerate(counts):
        for k in range(n):
            out.append(IRWSample(ti0_ms + j * ti_step_ms + k * rr_ms, j, beat))
            beat += 1
        if j < len(recovery):
            beat += recovery[j]
    return out


def n_heartbeats(scheme: str) -> int:
    """Heartbeats of one breath-hold of ``scheme`` (images + recovery beats), e.g. 9 for ShMOLLI."""
    counts, recovery = SCHEMES[scheme]
    return int(sum(counts) + sum(recovery))


@dataclass(frozen=True)
class Readout:
    """bSSFP single-shot readout and inversion parameters (ms, degrees)."""

    flip_deg: float = 35.0
    tr_ms: float = 2.6
    n_ramp: int = 5  # linearly ramped start-up pulses before the first imaging line
    n_lines: int = 72  # imaging lines (RF pulses) per image
    centre_line: int = 24  # imaging line that samples the k-space centre (0-based)
    inversion_efficiency: float = 0.96
    #: flip-angle scale of equally weighted sub-slices across the slice profile ((1.0,): ideal)
    slice_profile: tuple[float, ...] = (1.0, 0.95, 0.8, 0.6, 0.35, 0.15)

    @property
    def centre_offset_ms(self) -> float:
        """Time from the first RF pulse of an image to its k-space centre."""
        return (self.n_ramp + self.centre_line) * self.tr_ms

    @property
    def duration_ms(self) -> float:
        """Length of one image's RF train (the acquisition window)."""
        return (self.n_ramp + self.n_lines) * self.tr_ms

    def to_dict(self) -> dict[str, float]:
        return {"flip_deg": self.flip_deg, "tr_ms": self.tr_ms, "te_ms": self.tr_ms / 2, "n_ramp": self.n_ramp,
                "n_lines": self.n_lines, "centre_line": self.centre_line,
                "inversion_efficiency": self.inversion_efficiency, "slice_profile": list(self.slice_profile),
                "acquisition_window_ms": round(self.duration_ms, 2)}


DEFAULT_READOUT = Readout()


@dataclass
class IRWSimulation:
    """Simulated IRW images of a scheme for N tissues.

    ``signal`` [images, N]: magnitude of the transverse magnetisation at the k-space centre
    (M0 = 1, TE decay included), images in acquisition order; ``signed`` the same with the sign
    of the longitudinal magnetisation it was excited from; ``ti_ms`` the real inversion time of
    each image; ``inversion`` / ``heartbeat`` its inversion block and beat; ``rr_ms`` the R-R
    interval of every beat of the breath-hold.
    """

    signal: np.ndarray
    signed: np.ndarray
    ti_ms: np.ndarray
    inversion: np.ndarray
    heartbeat: np.ndarray
    rr_ms: np.ndarray
    scheme: str
    readout: Readout
    trigger_delay_ms: float
    mz_before_inversion: np.ndarray  # [inversions, N] longitudinal magnetisation just before each inversion
    notes: dict = field(default_factory=dict)

    @property
    def order(self) -> np.ndarray:
        """Indices that sort the images by inversion time (the order fits and DICOM series use)."""
        return np.argsort(self.ti_ms, kind="stable")


def beat_intervals(scheme: str, rr_ms: float, rr_sd_ms: float = 0.0, seed: int | None = 0) -> np.ndarray:
    """R-R interval (ms) of every beat of one breath-hold; Gaussian beat-to-beat variability ``rr_sd_ms``."""
    n = n_heartbeats(scheme)
    if rr_sd_ms <= 0:
        return np.full(n, float(rr_ms))
    rng = np.random.default_rng(seed)
    return np.clip(rr_ms + rng.normal(0.0, rr_sd_ms, n), 0.4 * rr_ms, 2.0 * rr_ms)


def simulate_irw(t1_ms, t2_ms, scheme: str, rr_ms: float | np.ndarray, *, ti0_ms: float = 100.0,
                 ti_step_ms: float = 80.0, readout: Readout = DEFAULT_READOUT, trigger_delay_ms: float = 500.0,
                 inversion_efficiency=None, flip_scale=1.0) -> IRWSimulation:
    """Bloch-simulate the IRW images of ``scheme`` for tissues (``t1_ms``, ``t2_ms``; arrays broadcast).

    ``rr_ms``: one R-R interval (ms) for every beat, or one per beat (:func:`beat_intervals`).
    ``inversion_efficiency`` (default ``readout.inversion_efficiency``) and ``flip_scale``
    (B1: actual / nominal flip angle) may vary per tissue. The trigger delay shifts every
    event equally within its beat; with beat-to-beat variability it decides nothing else.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r}; known: {', '.join(SCHEMES)}")
    eta = readout.inversion_efficiency if inversion_efficiency is None else inversion_efficiency
    t1, t2, eta, fs = np.broadcast_arrays(np.asarray(t1_ms, float), np.asarray(t2_ms, float),
                                          np.asarray(eta, float), np.asarray(flip_scale, float))
    t1, t2, eta, fs = (np.ravel(x).astype(np.float64) for x in (t1, t2, eta, fs))
    n_tissue = t1.size
    prof = np.asarray(readout.slice_profile, float)
    k_prof = len(prof)  # sub-slices: tissue-major blocks of k_prof isochromats
    t1, t2, eta = (np.repeat(x, k_prof) for x in (t1, t2, eta))
    fs = (fs[:, None] * prof[None, :]).ravel()
    counts, recovery = SCHEMES[scheme]
    nb = n_heartbeats(scheme)
    rr = np.broadcast_to(np.asarray(rr_ms, float), (nb,)).astype(float) if np.ndim(rr_ms) == 0 \
        else np.asarray(rr_ms, float)
    if len(rr) != nb:
        raise ValueError(f"{scheme} takes {nb} heartbeats; got {len(rr)} R-R intervals")
    r_wave = np.concatenate([[0.0], np.cumsum(rr)[:-1]])
    # images: (beat, inversion); centre of k-space of each image
    beats, invs = [], []
    beat = 0
    for j, n in enumerate(counts):
        for _ in range(n):
            beats.append(beat)
            invs.append(j)
            beat += 1
        if j < len(recovery):
            beat += recovery[j]
    beats, invs = np.array(beats), np.array(invs)
    centre = r_wave[beats] + trigger_delay_ms + readout.centre_offset_ms
    first_of = {j: int(np.flatnonzero(invs == j)[0]) for j in range(len(counts))}
    t_inv = np.array([centre[first_of[j]] - (ti0_ms + j * ti_step_ms) for j in range(len(counts))])
    if np.any(np.diff(t_inv) <= 0) or t_inv[0] < -trigger_delay_ms - readout.centre_offset_ms - 1e-6:
        raise ValueError("inversion times inconsistent with the R-R interval")
    train_start = centre - readout.centre_offset_ms
    if np.any(train_start[1:] < train_start[:-1] + readout.duration_ms):
        raise ValueError(f"R-R interval too short for a {readout.duration_ms:.0f} ms acquisition window")
    for j in range(1, len(counts)):  # an inversion may not fall inside the previous image's train
        prev_end = train_start[first_of[j] - 1] + readout.duration_ms
        if t_inv[j] < prev_end:
            raise ValueError(f"inversion {j + 1} would fall inside the previous image's readout "
                             f"(R-R {float(np.min(rr)):.0f} ms too short for the TI offsets)")
    n = t1.size
    my = np.zeros(n)
    mz = np.ones(n)
    e2_half = np.exp(-0.5 * readout.tr_ms / t2)
    e1_tr = np.exp(-readout.tr_ms / t1)
    e2_tr = np.exp(-readout.tr_ms / t2)
    alpha = np.deg2rad(readout.flip_deg)
    flips = np.concatenate([alpha * (np.arange(readout.n_ramp) + 0.5) / max(readout.n_ramp, 1),
                            np.full(readout.n_lines, alpha)])
    centre_idx = readout.n_ramp + readout.centre_line
    events = sorted([(float(t), 0, j) for j, t in enumerate(t_inv)] + [(float(t), 1, i) for i, t in enumerate(train_start)])
    now = float(t_inv[0])
    signal = np.zeros((len(beats), n))
    signed = np.zeros((len(beats), n))
    mz_pre = np.zeros((len(counts), n))
    for t, kind, idx in events:
        mz = 1.0 - (1.0 - mz) * np.exp(-(t - now) / t1)  # free recovery; transverse already spoiled
        if kind == 0:
            mz_pre[idx] = mz
            mz = -eta * mz
            now = t
            continue
        sign = 1.0
        for k, a in enumerate(flips):
            a_eff = a * fs * sign
            ca, sa = np.cos(a_eff), np.sin(a_eff)
            my, mz = my * ca - mz * sa, my * sa + mz * ca  # rotation about x (phase 0 / 180 alternating)
            if k == centre_idx:
                s = np.abs(my) * e2_half
                signal[idx] = s
                signed[idx] = np.where(my * sign < 0, s, -s)  # excited from +Mz gives -My*sign
            my = my * e2_tr
            mz = 1.0 - (1.0 - mz) * e1_tr
            sign = -sign
        my = np.zeros(n)  # spoiled after the train
        now = t + readout.duration_ms
    ti = centre - t_inv[invs]
    signed = signed.reshape(len(beats), n_tissue, k_prof).mean(axis=2)  # the sub-slices' signals add
    mz_pre = mz_pre.reshape(len(counts), n_tissue, k_prof).mean(axis=2)
    return IRWSimulation(np.abs(signed), signed, ti, invs, beats, rr, scheme, readout, float(trigger_delay_ms),
                         mz_pre, {"sub_slices": k_prof})


def ideal_look_locker(t1_ms, ti_ms, ba_ratio=1.9) -> np.ndarray:
    """The idealised model (full recovery before every inversion, no sequence effects):
    ``|A - B exp(-TI/T1*)|`` with A = 1 and ``T1* = T1 / (B/A - 1)``; [images, N]."""
    t1 = np.atleast_1d(np.asarray(t1_ms, float))
    ba = np.broadcast_to(np.asarray(ba_ratio, float), t1.shape)
    t1s = t1 / np.maximum(ba - 1.0, 1e-3)
    ti = np.asarray(ti_ms, float)[:, None]
    return np.abs(1.0 - ba[None] * np.exp(-ti / t1s[None]))


#: T1 (ms) each scheme is designed for, for :func:`recovery_warning`: native myocardium, except
#: the post-contrast scheme 4(1)3(1)2 (Kellman & Hansen 2014)
DESIGN_T1_MS = {"MOLLI 5(3)3": 1000.0, "MOLLI 3(3)3(3)5": 1000.0, "MOLLI 4(1)3(1)2": 500.0, "ShMOLLI": 1000.0}


def recovery_warning(scheme: str, rr_ms: float, t1_ms: float | None = None, readout: Readout = DEFAULT_READOUT,
                     tolerance: float = 0.05) -> str | None:
    """A sentence when the R-R interval is too short for ``scheme``'s recovery periods, else None.

    The criterion: a tissue of ``t1_ms`` (default :data:`DESIGN_T1_MS` of the scheme: native
    myocardium, or post-contrast myocardium for 4(1)3(1)2) must have recovered to within
    ``tolerance`` of M0 before every later inversion. ShMOLLI is built not to need it (its
    conditional reconstruction drops the later inversions' samples for long T1), so for ShMOLLI
    the warning is about heart rates at which even the first inversion's readouts crowd each
    other (R-R shorter than 2.5 acquisition windows).
    """
    if scheme not in SCHEMES or not rr_ms or rr_ms <= 0:
        return None
    t1_ms = DESIGN_T1_MS[scheme] if t1_ms is None else t1_ms
    if scheme == "ShMOLLI":
        if rr_ms < 2.5 * readout.duration_ms:
            return (f"R-R {rr_ms:.0f} ms is short for ShMOLLI's readouts ({readout.duration_ms:.0f} ms window): "
                    "T1 is read low")
        return None
    try:
        sim = simulate_irw([t1_ms], [45.0], scheme, rr_ms, readout=readout)
    except ValueError as exc:
        return f"R-R {rr_ms:.0f} ms cannot hold {scheme}'s timing: {exc}"
    deficit = 1.0 - float(sim.mz_before_inversion[1:].min()) if sim.mz_before_inversion.shape[0] > 1 else 0.0
    if deficit > tolerance:
        hr = 60000.0 / rr_ms
        return (f"R-R {rr_ms:.0f} ms ({hr:.0f} bpm) is too short for {scheme}'s recovery beats: a T1 of "
                f"{t1_ms:.0f} ms recovers only to {100 * (1 - deficit):.0f} % of M0 before the next inversion, "
                "so T1 is read low (more so for longer T1)")
    return None


#: the measurement that literature "MOLLI-type" T1 values stand for: MOLLI 5(3)3 at 60 bpm
REFERENCE_SCHEME, REFERENCE_RR_MS = "MOLLI 5(3)3", 1000.0


def ideal_fit_t1(sim: IRWSimulation) -> np.ndarray:
    """T1 (ms) a three-parameter fit of all noise-free simulated samples reads, per tissue."""
    from .fit import fit_t1
    order = sim.order
    n = sim.signal.shape[1]
    fit = fit_t1(sim.signal[order][:, None, :], sim.ti_ms[order].tolist(), mask=np.ones((1, n), bool),
                 background_fraction=0.0)
    return np.where(fit.valid[0], fit.t1[0], np.nan)


#: tissue T1 grid (ms) of the reading curves :func:`tissue_t1_for_reading` interpolates
_CURVE_T1_MS = np.geomspace(50.0, 6000.0, 96)
_CURVES: dict[tuple, np.ndarray] = {}


def _reading_curves(t2_values: np.ndarray, scheme: str, rr_ms: float, readout: Readout) -> dict[float, np.ndarray]:
    """{T2: reading (ms) of every :data:`_CURVE_T1_MS`}, simulated once per T2 and cached."""
    keys = {float(t2): (round(float(t2), 4), scheme, float(rr_ms), readout) for t2 in np.unique(t2_values)}
    missing = [t2 for t2, k in keys.items() if k not in _CURVES]
    if missing:
        t1 = np.tile(_CURVE_T1_MS, len(missing))
        t2 = np.repeat(np.asarray(missing, float), len(_CURVE_T1_MS))
        got = ideal_fit_t1(simulate_irw(t1, t2, scheme, rr_ms, readout=readout)).reshape(len(missing), -1)
        for t2v, row in zip(missing, got):
            _CURVES[keys[t2v]] = row
    return {t2: _CURVES[k] for t2, k in keys.items()}


def tissue_t1_for_reading(reading_ms, t2_ms, *, scheme: str = REFERENCE_SCHEME, rr_ms: float = REFERENCE_RR_MS,
                          readout: Readout = DEFAULT_READOUT) -> np.ndarray:
    """Tissue T1 (ms) whose simulated ``scheme`` acquisition at ``rr_ms`` reads ``reading_ms`` when fitted.

    Reference tables of myocardial T1 (e.g. 950-1050 ms at 1.5 T) are MOLLI-type readings, lower
    than the tissue's T1; the phantom takes its tables as MOLLI 5(3)3 readings at 60 bpm and
    simulates the tissue T1 this returns. Inverts the reading curve (simulated once per T2 on a
    T1 grid of 50-6000 ms and cached) by interpolation in log T1; where a tissue cannot be read
    at all (T2 of ~1 ms: no signal) or lies off the grid, the reading itself is returned.
    """
    reading = np.atleast_1d(np.asarray(reading_ms, float))
    t2 = np.broadcast_to(np.asarray(t2_ms, float), reading.shape)
    out = reading.copy()
    for t2v, curve in _reading_curves(t2, scheme, rr_ms, readout).items():
        ratio = curve / _CURVE_T1_MS
        # a fit of a very short T1 (one sample before the plateau) or beyond the last TI can fail:
        # keep the grid points whose reading is plausible and strictly increasing
        ok = np.isfinite(ratio) & (ratio > 0.5) & (ratio < 1.1)
        idx = np.flatnonzero(ok)
        keep = [i for k, i in enumerate(idx) if k == 0 or curve[i] > curve[idx[:k]].max()]
        ok = np.zeros_like(ok)
        ok[keep] = True
        if ok.sum() < 8:
            continue  # unreadable (no signal): keep the reading
        sel = (t2 == t2v) & (reading >= curve[ok][0]) & (reading <= curve[ok][-1])
        out[sel] = np.exp(np.interp(np.log(reading[sel]), np.log(curve[ok]), np.log(_CURVE_T1_MS[ok])))
    return out

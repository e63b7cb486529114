"""Acquisition effects and artefacts with known severity (phantom layer d).

Every function is deterministic given its ``rng`` and documents what severity 1 means
(0 = none). Images here are float32 ``[rows, cols]`` (or ``[..., rows, cols]``) in
arbitrary signal units; pixel sizes in mm; the phase-encoding direction is the row axis
(vertical, anterior-posterior in a SAX image), as usual for short-axis CMR.
"""
from __future__ import annotations

import numpy as np
import scipy.fft as sfft
from scipy import ndimage

F32 = np.float32


def kspace_window(shape: tuple[int, int], pixel_mm: float, acquired_mm: float | None,
                  blur_sigma_mm: float = 0.0) -> np.ndarray:
    """rfft2-shaped low-pass: acquisition resolution (Tukey edge) times an optional Gaussian blur.

    ``acquired_mm`` is the acquired pixel size; frequencies above 1/(2 acquired_mm) were
    not sampled (zero-filled). A raised-cosine taper over the outer 25 % of the sampled
    range stands in for the scanner's reconstruction filter (limits Gibbs ringing).
    ``acquired_mm=None``: no resolution limit (ideal images), only the blur.
    """
    rows, cols = shape
    ky = np.fft.fftfreq(rows, d=pixel_mm)[:, None]
    kx = np.fft.rfftfreq(cols, d=pixel_mm)[None, :]
    kmax = 0.5 / max(acquired_mm or 0.0, pixel_mm)

    def taper(k: np.ndarray) -> np.ndarray:
        a = np.abs(k) / kmax
        w = np.where(a <= 0.75, 1.0, np.where(a <= 1.0, 0.5 * (1 + np.cos(np.pi * (a - 0.75) / 0.25)), 0.0))
        return w

    win = taper(ky) * taper(kx) if acquired_mm is not None else np.ones((rows, cols // 2 + 1))
    if blur_sigma_mm > 0:
        win = win * np.exp(-2.0 * np.pi ** 2 * blur_sigma_mm ** 2 * (ky ** 2 + kx ** 2))
    return win.astype(F32)


def acquire(img: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Apply a k-space window (from :func:`kspace_window`) to real image(s) [..., rows, cols]."""
    if np.all(window == 1.0):
        return img.astype(F32)
    k = sfft.rfft2(img.astype(F32, copy=False), axes=(-2, -1))
    k *= window
    return sfft.irfft2(k, s=img.shape[-2:], axes=(-2, -1)).astype(F32, copy=False)


def ghosting(img: np.ndarray, severity: float, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Parallel-imaging (R = 2) residual aliasing plus periodic motion ghosts along the rows.

    Severity 1: an aliased copy shifted by half the FOV at up to 30 % amplitude (spatially
    varying, like an imperfect SENSE/GRAPPA unfolding) and ghosts at +-FOV/6, +-FOV/3 at
    12 % / 6 %. Returns the image and a description of the ghosts.
    """
    if severity <= 0:
        return img, {}
    rows = img.shape[-2]
    yy = np.linspace(-1, 1, img.shape[-1])[None, :]
    xx = np.linspace(-1, 1, rows)[:, None]
    ph = rng.uniform(0, 2 * np.pi)
    spatial = (0.6 + 0.4 * np.cos(np.pi * xx + ph) * np.cos(0.5 * np.pi * yy)).astype(F32)
    pi_amp = 0.30 * severity
    out = img + pi_amp * spatial * np.roll(img, rows // 2, axis=-2)
    motion_amp = 0.12 * severity
    sign = rng.choice([-1.0, 1.0])
    for j, amp in ((1, motion_amp), (2, motion_amp / 2)):
        out = out + sign * amp * (np.roll(img, j * rows // 6, axis=-2) + np.roll(img, -j * rows // 6, axis=-2)) / 2
    return out.astype(F32), {"parallel_imaging_ghost_amplitude": round(pi_amp, 4),
                             "motion_ghost_amplitude": round(motion_amp, 4), "phase_encoding": "rows"}


def rician(signal: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Magnitude of the signal plus complex Gaussian noise of standard deviation ``sigma`` per channel."""
    if sigma <= 0:
        return np.abs(signal).astype(F32)
    out = rng.standard_normal(signal.shape, dtype=F32)
    out *= F32(sigma)
    out += signal
    np.square(out, out=out)
    n2 = rng.standard_normal(signal.shape, dtype=F32)
    n2 *= F32(sigma)
    np.square(n2, out=n2)
    out += n2
    return np.sqrt(out, out=out)


def complex_noise(signal: np.ndarray, sigma: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(real part, magnitude) of signal + complex noise: PSIR and magnitude from one acquisition."""
    if sigma <= 0:
        return signal.astype(F32), np.abs(signal).astype(F32)
    n1 = rng.standard_normal(signal.shape, dtype=F32) * F32(sigma)
    n2 = rng.standard_normal(signal.shape, dtype=F32) * F32(sigma)
    real = signal + n1
    return real.astype(F32), np.sqrt(real ** 2 + n2 ** 2).astype(F32)


def smooth_field(shape: tuple[int, int], corr_px: float, rng: np.random.Generator) -> np.ndarray:
    """Zero-mean, unit-peak smooth random field (Gaussian-filtered white noise, correlation ~corr_px).

    Filtered on a grid coarsened by up to corr_px/4 and upsampled (bilinear): the field has no
    detail finer than its correlation length, so this is exact enough and much cheaper.
    """
    factor = max(1, int(corr_px // 4))
    small = (max(4, -(-shape[0] // factor)), max(4, -(-shape[1] // factor)))
    f = ndimage.gaussian_filter(rng.standard_normal(small), corr_px / factor, mode="wrap")
    if small != shape:
        f = ndimage.zoom(f, (shape[0] / small[0], shape[1] / small[1]), order=1, mode="grid-wrap", grid_mode=True)
        f = f[:shape[0], :shape[1]]
    return (f / max(np.abs(f).max(), 1e-9)).astype(F32)


def motion_fields(n_frames: int, shape: tuple[int, int], pixel_mm: float, severity: float,
                  resp_dir: np.ndarray, centre_px: tuple[float, float], rng: np.random.Generator,
                  ) -> tuple[np.ndarray, dict]:
    """Per-frame displacement fields (F, 2, rows, cols) in pixels [d_row, d_col].

    Frame f at pixel x shows the reference anatomy at x + d_f(x). Severity 1: respiratory
    drift of up to 10 mm over the breath-hold along ``resp_dir`` (unit (row, col) vector,
    the superior-inferior direction projected into the plane) with 2.5 mm frame-to-frame
    jitter, weighted towards the heart/liver (the chest wall moves 30 %), plus a smooth
    non-rigid component of up to 3 mm (correlation ~40 mm).
    """
    rows, cols = shape
    d = np.zeros((n_frames, 2, rows, cols), F32)
    info = {"severity": severity, "resp_direction_row_col": [float(v) for v in resp_dir]}
    if severity <= 0:
        info["max_displacement_mm"] = 0.0
        return d, info
    rr, cc = np.mgrid[0:rows, 0:cols].astype(F32)
    dist = np.hypot((rr - centre_px[0]) * pixel_mm, (cc - centre_px[1]) * pixel_mm)
    weight = 0.3 + 0.7 * np.exp(-0.5 * (dist / 90.0) ** 2)
    drift = 10.0 * severity * rng.uniform(0.5, 1.0)
    pattern = rng.choice(["drift", "gasp", "random"])
    t = np.linspace(0.0, 1.0, n_frames)
    if pattern == "drift":
        amp = drift * t
    elif pattern == "gasp":
        amp = drift * (t >= rng.uniform(0.3, 0.8))
    else:
        amp = drift * rng.uniform(0, 1, n_frames)
    amp = amp + rng.normal(0.0, 2.5 * severity, n_frames)
    side = rng.normal(0.0, 0.25, n_frames)  # a little anterior-posterior component
    corr = 40.0 / pixel_mm
    for f in range(n_frames):
        ax = np.array(resp_dir, float) * amp[f] + np.array([-resp_dir[1], resp_dir[0]]) * side[f] * amp[f]
        for comp in range(2):
            nonrigid = 3.0 * severity * smooth_field((rows, cols), corr, rng)
            d[f, comp] = (ax[comp] * weight + nonrigid) / pixel_mm
    mag = np.hypot(d[:, 0], d[:, 1]) * pixel_mm
    info.update({"pattern": str(pattern), "max_displacement_mm": round(float(mag.max()), 3),
                 "mean_displacement_mm": round(float(mag.mean()), 3)})
    return d, info


def warp(img: np.ndarray, disp: np.ndarray, order: int = 1) -> np.ndarray:
    """img [rows, cols] sampled at x + disp(x); disp (2, rows, cols) pixels [d_row, d_col]."""
    rows, cols = img.shape
    rr, cc = np.mgrid[0:rows, 0:cols].astype(F32)
    return ndimage.map_coordinates(img, [rr + disp[0], cc + disp[1]], order=order, mode="nearest").astype(F32)


def invert_displacement(disp: np.ndarray, iterations: int = 12, factor: int = 4) -> np.ndarray:
    """Inverse field v with frame(x + v(x)) = reference(x): v(x) = -d(x + v(x)) by fixed point.

    disp: (2, rows, cols) pixels. The fields here are smooth (correlation >= 40 mm), so the
    iteration runs on a grid coarsened by ``factor`` and the result is upsampled (cubic).
    """
    rows, cols = disp.shape[-2:]
    if not np.any(disp):
        return np.zeros_like(disp, dtype=F32)
    f = factor if min(rows, cols) >= 16 * factor else 1
    d = disp[:, ::f, ::f] / f if f > 1 else disp
    r2, c2 = d.shape[-2:]
    rr, cc = np.mgrid[0:r2, 0:c2].astype(F32)
    v = -d.copy()
    for _ in range(iterations):
        coords = [rr + v[0], cc + v[1]]
        v = -np.stack([ndimage.map_coordinates(d[c], coords, order=1, mode="nearest") for c in range(2)])
    if f > 1:
        # coarse sample i sits at fine pixel i*f: map fine pixel centres onto the coarse index grid
        fr, fc = np.mgrid[0:rows, 0:cols].astype(F32) / f
        v = np.stack([ndimage.map_coordinates(v[c], [fr, fc], order=3, mode="nearest") for c in range(2)]) * f
    return v.astype(F32)


def offresonance_hz(points: np.ndarray, centre: np.ndarray, hotspot: np.ndarray, severity: float,
                    tr_ms: float, rng_seed: int) -> np.ndarray:
    """Static B0 off-resonance (Hz) at LPS points: linear shim residual + a susceptibility hot spot.

    Severity 1: the field reaches about 1.2 band spacings (1/TR) at 180 mm from the
    heart and 0.5 at the heart-lung hot spot (inferolateral wall), so dark bands cross
    the field of view and reach the heart; severity 0.3 leaves a band near the edge.
    """
    if severity <= 0:
        return np.zeros(points.shape[0], F32)
    rng = np.random.default_rng(rng_seed)
    band = 1000.0 / tr_ms  # Hz between bands
    g = rng.normal(size=3)
    g /= np.linalg.norm(g)
    rel = (points - centre).astype(F32)
    lin = (rel @ g.astype(F32)) / 180.0 * 1.2 * band
    quad = 0.25 * band * (np.sum(rel ** 2, axis=1) / 180.0 ** 2)
    hs = 0.5 * band * np.exp(-np.sum((points - hotspot) ** 2, axis=1) / (2 * 25.0 ** 2))
    return (severity * (lin + quad + hs)).astype(F32)

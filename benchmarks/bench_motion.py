"""CMRMotion: T1 fit accuracy and speed (vs per-pixel scipy curve_fit and the sh-molli package),
and motion correction on held-out phantom sets (before / classical / MOCOnet).

Environment: CMR_BENCH_SETS (held-out sets per severity group, default 4).
"""
from __future__ import annotations

import os
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import OptimizeWarning, curve_fit

from cmrlib.t1.fit import fit_t1

SCHEMES = {
    "ShMOLLI": [100.0, 180.0, 260.0, 1100.0, 1180.0, 2100.0, 3100.0],
    "MOLLI 5(3)3": [120.0, 200.0, 1020.0, 1100.0, 1920.0, 2000.0, 2820.0, 3720.0],
    "MOLLI 3(3)3(3)5": [110.0, 190.0, 270.0, 1010.0, 1090.0, 1170.0, 1910.0, 2070.0, 2970.0, 3870.0, 4770.0],
}


def _signals(t1, a, ratio, tis):
    t1s = t1 / (ratio - 1)
    return np.abs(a[None] - a[None] * ratio[None] * np.exp(-np.asarray(tis)[:, None, None] / t1s[None]))


def accuracy_rows():
    rows = []
    rng = np.random.default_rng(0)
    for name, tis in SCHEMES.items():
        t1 = np.linspace(300, 2000, 64 * 64).reshape(64, 64)
        res = fit_t1(_signals(t1, np.full_like(t1, 500.0), np.full_like(t1, 1.9), tis), tis)
        rows.append({"scheme": name, "condition": "noise-free, T1 300-2000 ms", "max |error| %":
                     float(100 * np.abs(res.t1 / t1 - 1).max()), "bias %": float(100 * np.mean(res.t1 / t1 - 1)),
                     "sd %": float(100 * np.std(res.t1 / t1 - 1)), "valid %": float(100 * res.valid.mean())})
        for snr in (20, 50, 100):
            for tissue, t1v in (("myocardium", 1000.0), ("blood", 1600.0)):
                t1 = np.full((64, 64), t1v)
                clean = _signals(t1, np.full_like(t1, 500.0), np.full_like(t1, 1.9), tis)
                sigma = clean[-1].mean() / snr  # SNR of the longest-TI image
                noisy = np.abs(clean + rng.normal(0, sigma, clean.shape) + 1j * rng.normal(0, sigma, clean.shape))
                res = fit_t1(noisy, tis)
                rel = res.t1[res.valid] / t1v - 1
                rows.append({"scheme": name, "condition": f"SNR {snr}, {tissue} {t1v:.0f} ms",
                             "max |error| %": float(100 * np.abs(rel).max()), "bias %": float(100 * rel.mean()),
                             "sd %": float(100 * rel.std()), "valid %": float(100 * res.valid.mean())})
    return rows


def _curve_fit_pixel(tis, y):
    def model(ti, a, b, t1s):
        return np.abs(a - b * np.exp(-ti / t1s))
    p, _ = curve_fit(model, tis, y, p0=(y[-1], 2 * y[-1], 1000.0), maxfev=2000)
    return p[2] * (p[1] / p[0] - 1)


def speed_rows():
    torch.set_num_threads(2)
    tis = SCHEMES["ShMOLLI"]
    rng = np.random.default_rng(1)
    t1 = rng.uniform(300, 2000, (256, 256))
    frames = _signals(t1, rng.uniform(200, 1000, t1.shape), rng.uniform(1.8, 2.0, t1.shape), tis)
    fit_t1(frames[:, :32, :32], tis)  # warm-up (torch initialisation)
    t0 = time.perf_counter()
    res = fit_t1(frames, tis)
    ours = time.perf_counter() - t0
    n_sub = 3000
    idx = rng.choice(256 * 256, n_sub, replace=False)
    flat = frames.reshape(len(tis), -1)
    t0 = time.perf_counter()
    base_t1 = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizeWarning)
        for i in idx:
            try:
                base_t1.append(_curve_fit_pixel(np.asarray(tis), flat[:, i]))
            except RuntimeError:
                base_t1.append(np.nan)
    per_pixel = (time.perf_counter() - t0) / n_sub
    baseline = per_pixel * 256 * 256
    truth = t1.reshape(-1)[idx]
    base_err = np.abs(np.asarray(base_t1) / truth - 1)
    rows = [{"method": "cmrlib fit_t1 (torch, grid + LM, polarity restoration)", "pixels": 65536,
             "seconds": ours, "speed-up vs curve_fit": baseline / ours,
             "max |T1 error| %": float(100 * np.abs(res.t1 / t1 - 1).max()),
             "failed fits %": float(100 * (1 - res.valid.mean()))},
            {"method": f"scipy curve_fit per pixel (|A-B·e| magnitude model; {n_sub} pixels timed, x{65536 // n_sub} extrapolated)",
             "pixels": 65536, "seconds": baseline, "speed-up vs curve_fit": 1.0,
             "max |T1 error| %": float(100 * np.nanmax(base_err)),
             "failed fits %": float(100 * np.mean(~np.isfinite(base_err) | (base_err > 0.05)))}]
    rows.append(_sh_molli_row(frames, t1, tis, baseline / 65536))
    return rows


SH_MOLLI_PYTHON = Path(os.environ.get("CMR_SHMOLLI_PYTHON", ".venv-shmolli/bin/python"))
SH_MOLLI_CROP = 128  # pixels a side: its per-pixel Python loop takes ~1 ms/pixel
_SH_MOLLI_SCRIPT = """
import contextlib, io, sys, time
import numpy as np
from sh_molli import sh_molli
t0 = time.perf_counter()
with contextlib.redirect_stdout(io.StringIO()):
    t1 = sh_molli.process_folder(sys.argv[1], 'fast', dcmtag=1, disable_TQDM=True)
print(time.perf_counter() - t0)
np.save(sys.argv[2], t1)
"""


def _sh_molli_row(frames: np.ndarray, t1: np.ndarray, tis: list[float], curve_fit_s_per_pixel: float) -> dict:
    """The sh-molli package (PyPI 0.0.55, 'fast' Jacquelin integral fit with 4 polarity choices per
    pixel) on a centred crop of the same frames, written as a DICOM series as it expects; it runs in
    its own environment (requirements/sh-molli.txt) because it needs NumPy 1 / SciPy 1.11 / pydicom 2."""
    from cmrlib.image import Image
    from cmrlib.io.dicom_write import write_dicom_series
    label = "sh-molli 0.0.55 (PyPI; per-pixel 'fast' integral fit, 4 polarity choices"
    empty = {"pixels": 0, "seconds": float("nan"), "speed-up vs curve_fit": float("nan"),
             "max |T1 error| %": float("nan"), "failed fits %": float("nan")}
    if not SH_MOLLI_PYTHON.exists():
        return {"method": f"{label}): not compared — no {SH_MOLLI_PYTHON} (run `make bench`, which installs "
                          "requirements/sh-molli.txt there)", **empty}
    c = SH_MOLLI_CROP
    r0 = (frames.shape[1] - c) // 2
    crop, truth = frames[:, r0:r0 + c, r0:r0 + c] * 4.0, t1[r0:r0 + c, r0:r0 + c]  # x4: 16-bit DICOM precision
    with tempfile.TemporaryDirectory() as tmp:
        image = Image(crop.astype(np.float32), (1.5, 1.5, 8.0), is_sequence=True,
                      frame_meta=[{"InversionTime": float(t)} for t in tis])
        write_dicom_series(image, Path(tmp) / "dicom", description="bench ShMOLLI")
        out = Path(tmp) / "t1.npy"
        proc = subprocess.run([str(SH_MOLLI_PYTHON), "-c", _SH_MOLLI_SCRIPT, str(Path(tmp) / "dicom"), str(out)],
                              capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
            return {"method": f"{label}): failed — {last}", **empty}
        seconds = float(proc.stdout.strip().splitlines()[-1])
        t1_map = np.load(out)
    err = np.abs(t1_map / truth - 1)
    full = seconds * frames.shape[1] * frames.shape[2] / (c * c)
    return {"method": f"{label}; {c}x{c} centre timed, x{frames.shape[1] * frames.shape[2] / (c * c):.3g} extrapolated)",
            "pixels": frames.shape[1] * frames.shape[2], "seconds": full,
            "speed-up vs curve_fit": curve_fit_s_per_pixel * frames.shape[1] * frames.shape[2] / full,
            "max |T1 error| %": float(100 * np.nanmax(err)),
            "failed fits %": float(100 * np.mean(~np.isfinite(err) | (err > 0.05)))}


def moconet_speed_rows():
    from cmrlib.motion.pipeline import moconet_installed
    if not moconet_installed():
        return _speed_without_weights()
    from cmrlib.models import load_model
    from cmrlib.motion.moconet import MOCOnet, MOCOnetConfig
    from cmrlib.motion.moconet_infer import FLIP_AVERAGE, predict_dvf
    from cmrlib.motion.registration import register_irw_classical
    from cmrlib.motion.data import heldout_sample
    torch.set_num_threads(2)
    s = heldout_sample(0, 0.6, "ShMOLLI", matrix=192)
    model, _ = load_model("moconet-compact", device="cpu")
    predict_dvf(model, s.frames)
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        predict_dvf(model, s.frames)
        times.append(time.perf_counter() - t0)
    compact = float(np.median(times))
    t0 = time.perf_counter()
    register_irw_classical(s.frames, s.inversion_times_ms)
    classical = time.perf_counter() - t0
    paper = MOCOnet(MOCOnetConfig.preset("paper")).eval()
    x = torch.zeros(1, 7, 384, 384)
    with torch.no_grad():
        paper(x)
        t0 = time.perf_counter()
        paper(x)
        paper_s = time.perf_counter() - t0
    label = "8-fold flip average" if FLIP_AVERAGE else "single pass"
    return [{"method": f"MOCOnet compact (groupwise, 144², {label}), 7-frame 192² set", "seconds / set": compact,
             "x faster than classical": classical / compact},
            {"method": "classical model-driven B-spline (SimpleITK)", "seconds / set": classical,
             "x faster than classical": 1.0},
            {"method": "MOCOnet paper preset (384²×7) forward only", "seconds / set": paper_s,
             "x faster than classical": classical / paper_s}]


def _speed_without_weights():
    """No MOCOnet weights installed: time the classical baseline and the untrained networks' forward pass
    (speed does not depend on the weights)."""
    from cmrlib.motion.data import heldout_sample
    from cmrlib.motion.moconet import MOCOnet, MOCOnetConfig, moconet_from_config
    from cmrlib.motion.moconet_infer import predict_dvf
    from cmrlib.motion.registration import register_irw_classical
    torch.set_num_threads(2)
    s = heldout_sample(0, 0.6, "ShMOLLI", matrix=192)
    compact = moconet_from_config(MOCOnetConfig.preset("compact")).eval()
    predict_dvf(compact, s.frames)
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        predict_dvf(compact, s.frames)
        times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    register_irw_classical(s.frames, s.inversion_times_ms)
    classical = time.perf_counter() - t0
    paper = MOCOnet(MOCOnetConfig.preset("paper")).eval()
    with torch.no_grad():
        paper(torch.zeros(1, 7, 384, 384))
        t0 = time.perf_counter()
        paper(torch.zeros(1, 7, 384, 384))
        paper_s = time.perf_counter() - t0
    c = float(np.median(times))
    return [{"method": "MOCOnet compact forward + warp, 7-frame 192² set (no trained weights installed)",
             "seconds / set": c, "x faster than classical": classical / c},
            {"method": "classical model-driven B-spline (SimpleITK)", "seconds / set": classical,
             "x faster than classical": 1.0},
            {"method": "MOCOnet paper preset (384²×7) forward only", "seconds / set": paper_s,
             "x faster than classical": classical / paper_s}]


def run():
    from cmrlib.motion.evaluate import evaluate, motion_free_change, summary_rows
    from cmrlib.motion.pipeline import moconet_installed
    out = [("T1 fit accuracy (bias / sd of T1 relative to truth)", accuracy_rows()),
           ("T1 fit speed, 256x256 x 7 frames, 2 CPU threads", speed_rows()),
           ("motion-correction speed (CPU, 2 threads)", moconet_speed_rows())]
    sets = int(os.environ.get("CMR_BENCH_SETS", "4"))
    methods = ("none", "classical", "moconet") if moconet_installed() else ("none", "classical")
    results = evaluate(sets, methods)
    rows = summary_rows(results)
    out.append((f"held-out phantom sets ({sets} per severity group; like thesis Table 2.1, measured; "
                f"methods {', '.join(methods)})", rows))
    if "moconet" in methods:
        out.append(("motion-free sets: T1 change by MOCOnet",
                    [{"largest myocardial T1 change %": motion_free_change(results)}]))
    return out

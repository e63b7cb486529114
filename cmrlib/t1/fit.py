"""Pixel-wise MOLLI / ShMOLLI T1 fitting: three-parameter model, polarity restoration,
Look-Locker correction, R² quality map. Vectorised in torch (no per-pixel loop).

Model for the signed signal:  S(TI) = A − B·exp(−TI / T1*);  the scanner stores |S|.
Polarity restoration: the frames before the null point are negated; the null position
(0..n frames inverted, frames sorted by TI) is chosen per pixel by the smallest residual.
Look-Locker correction:  T1 = T1*·(B/A − 1)  (ms).

Algorithm (per pixel, all pixels at once):
1. For every polarity k and every T1* on a log grid, the model is linear in (A, B), so
   the best (A, B) and the residual come from an orthogonal projection onto
   span{1, exp(−TI/T1*)} — a few small matrix products for the whole image.
2. The best (k, T1*) seeds a damped Gauss–Newton (Levenberg–Marquardt) refinement of
   (A, B, T1*) with the polarity fixed.
R² = 1 − SS_res / SS_tot of the fit to the polarity-restored samples.

ShMOLLI's conditional reconstruction (Piechnik et al., JCMR 2010;12:69) is
:func:`fit_t1_shmolli`: samples 6 and 7 come from inversions that follow the previous
readouts after a single recovery beat, so they are used only where the T1 found is short
enough for that recovery to be complete (see :data:`SHMOLLI_THRESHOLDS`). MOLLI schemes keep
the plain fit of all frames.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import InputError

MIN_FRAMES = 5
FIT_METHOD = "three-parameter fit of all frames with polarity restoration and Look-Locker correction"


@dataclass
class T1FitResult:
    """Maps on the frame grid ``[..., row, col]``; invalid pixels are 0 where ``valid`` is False."""

    t1: np.ndarray  # ms
    a: np.ndarray
    b: np.ndarray
    t1_star: np.ndarray  # ms
    r2: np.ndarray  # coefficient of determination, 0..1
    valid: np.ndarray  # bool: signal above background, converged, physical parameters
    n_inverted: np.ndarray  # frames (sorted by TI) whose polarity was restored
    inversion_times_ms: list[float] = field(default_factory=list)
    method: str = FIT_METHOD
    #: ShMOLLI conditional reconstruction only: samples used per pixel (5, 6 or 7; 0 invalid)
    n_samples: np.ndarray | None = None
    #: ShMOLLI conditional reconstruction only: R-R used (ms), where it came from, pixel counts
    conditional: dict = field(default_factory=dict)


def validate_inversion_times(tis: list[float | None], n_frames: int) -> np.ndarray:
    """Inversion times (ms) as an array, or InputError naming what is wrong."""
    if n_frames < MIN_FRAMES:
        raise InputError(f"T1 fitting needs at least {MIN_FRAMES} inversion-recovery frames; got {n_frames}")
    if len(tis) != n_frames or any(t is None for t in tis):
        missing = [k for k, t in enumerate(tis) if t is None] if len(tis) == n_frames else "all"
        raise InputError(f"every IRW frame needs an InversionTime; missing for frame(s) {missing}")
    ti = np.asarray(tis, dtype=np.float64)
    if np.any(~np.isfinite(ti)) or np.any(ti < 0):
        raise InputError(f"InversionTime values must be finite and >= 0 ms; got {ti.tolist()}")
    if len(np.unique(np.round(ti, 3))) != len(ti):
        raise InputError(f"duplicate InversionTime values {ti.tolist()} ms: each frame needs its own TI")
    return ti


def fit_t1(frames: np.ndarray, inversion_times_ms: list[float], *, mask: np.ndarray | None = None,
           background_fraction: float = 0.05, t1_star_grid_ms: tuple[float, float, int] = (20.0, 5000.0, 64),
           iterations: int = 12, device: torch.device | str = "cpu", chunk_pixels: int = 131072) -> T1FitResult:
    """Fit T1 per pixel of ``frames`` ``[frame, ...spatial]`` (magnitude IRW images).

    ``mask``: optional bool map on the spatial grid restricting the fit; otherwise pixels
    whose peak signal is below ``background_fraction`` of the 99th-percentile peak are
    background. Output maps have the spatial shape of one frame.
    """
    frames = np.asarray(frames)
    if frames.ndim < 3:
        raise InputError(f"frames must be [frame, row, col] (or with slices); got shape {frames.shape}")
    ti = validate_inversion_times(list(inversion_times_ms), frames.shape[0])
    if not np.isfinite(frames).all():
        raise InputError("IRW frames contain NaN or infinite values")
    peak = np.abs(frames).max(axis=0)
    if peak.max() <= 0:
        raise InputError("all IRW frames are zero: nothing to fit")
    spatial = frames.shape[1:]
    order = np.argsort(ti)
    ti_sorted = ti[order]
    data = np.abs(frames[order]).reshape(len(ti), -1).astype(np.float32)
    fg = peak.reshape(-1) > background_fraction * np.percentile(peak, 99)
    if mask is not None:
        if mask.shape != spatial:
            raise InputError(f"mask shape {mask.shape} differs from the frame shape {spatial}")
        fg &= mask.reshape(-1).astype(bool)
    idx = np.flatnonzero(fg)
    out = {k: np.zeros(data.shape[1], np.float32) for k in ("t1", "a", "b", "t1s", "r2")}
    ninv = np.zeros(data.shape[1], np.int16)
    ok = np.zeros(data.shape[1], bool)
    ti_t = torch.as_tensor(ti_sorted, dtype=torch.float32, device=device)
    grid = torch.logspace(np.log10(t1_star_grid_ms[0]), np.log10(t1_star_grid_ms[1]), int(t1_star_grid_ms[2]),
                          device=device)
    for start in range(0, len(idx), chunk_pixels):
        sel = idx[start:start + chunk_pixels]
        y = torch.as_tensor(data[:, sel], device=device)
        res = _fit_chunk(y, ti_t, grid, iterations)
        for key, value in res.items():
            if key == "ninv":
                ninv[sel] = value.cpu().numpy()
            elif key == "ok":
                ok[sel] = value.cpu().numpy()
            else:
                out[key][sel] = value.cpu().numpy()
    for key in ("t1", "a", "b", "t1s", "r2"):
        out[key][~ok] = 0.0
    ninv[~ok] = 0
    return T1FitResult(
        t1=out["t1"].reshape(spatial), a=out["a"].reshape(spatial), b=out["b"].reshape(spatial),
        t1_star=out["t1s"].reshape(spatial), r2=out["r2"].reshape(spatial), valid=ok.reshape(spatial),
        n_inverted=ninv.reshape(spatial), inversion_times_ms=ti_sorted.tolist())


def _fit_chunk(y: torch.Tensor, ti: torch.Tensor, grid: torch.Tensor, iterations: int) -> dict[str, torch.Tensor]:
    """Fit one chunk: ``y`` [n, P] magnitudes sorted by TI."""
    n, p = y.shape
    scale = y.abs().amax(dim=0).clamp_min(1e-12)
    ys = y / scale  # unit-peak signals: conditioning of the normal equations
    # Orthonormal basis of span{1, exp(-TI/T1*)} for every grid value: Q [G, n, 2]
    e = torch.exp(-ti[None, :] / grid[:, None])  # [G, n]
    ones = torch.ones_like(e)
    q1 = ones / np.sqrt(n)
    e_c = e - (e @ q1[0])[:, None] * q1
    q2 = e_c / e_c.norm(dim=1, keepdim=True).clamp_min(1e-12)
    best_res = torch.full((p,), float("inf"), device=y.device)
    best_k = torch.zeros(p, dtype=torch.long, device=y.device)
    best_g = torch.zeros(p, dtype=torch.long, device=y.device)
    total = (ys * ys).sum(dim=0)
    sign = torch.ones(n, 1, device=y.device)
    proj1_all = q1[0] @ ys  # same for every grid value
    for k in range(n):  # k frames inverted (k = n would make every sample negative: same fit as 0)
        if k > 0:
            sign[k - 1] = -1.0
        yk = ys * sign
        p1 = proj1_all if k == 0 else q1[0] @ yk
        # residual = |y|² − p1² − p2²; B > 0 (a recovery, not a decay) means p2 < 0, so the
        # best grid value is simply the most negative projection p2.
        p2_min, g_min = (q2 @ yk).min(dim=0)  # [P]
        r_min = torch.where(p2_min < 0, total - p1 ** 2 - p2_min ** 2, torch.full_like(p2_min, float("inf")))
        better = r_min < best_res
        best_res = torch.where(better, r_min, best_res)
        best_k = torch.where(better, torch.full_like(best_k, k), best_k)
        best_g = torch.where(better, g_min, best_g)
    # Refine the chosen polarity; then, only for pixels whose sample at the polarity boundary
    # is close to the null (|S| < 20 % of peak), also the neighbouring polarity: such a
    # sample's sign is ambiguous on the grid and only the refined fit can settle it.
    frame_idx = torch.arange(n, device=y.device)[:, None]
    yk, a, b, t1s, cost = _refine(ys, ti, best_k, grid[best_g], iterations, frame_idx)
    for shift in (-1, 1):
        boundary = (best_k - 1) if shift < 0 else best_k
        inside = (boundary >= 0) & (boundary < n) & ((best_k + shift) >= 0) & ((best_k + shift) < n)
        near_null = ys.gather(0, boundary.clamp(0, n - 1)[None, :])[0].abs() < 0.2
        sel = torch.nonzero(inside & near_null).flatten()
        if sel.numel() == 0:
            continue
        yk_c, a_c, b_c, t_c, cost_c = _refine(ys[:, sel], ti, best_k[sel] + shift, grid[best_g[sel]], iterations, frame_idx)
        better = cost_c < cost[sel]
        upd = sel[better]
        yk[:, upd], a[upd], b[upd], t1s[upd], cost[upd] = yk_c[:, better], a_c[better], b_c[better], t_c[better], cost_c[better]
        best_k[upd] = best_k[upd] + shift
    model = a[None, :] - b[None, :] * torch.exp(-ti[:, None] / t1s[None, :])
    ss_res = ((yk - model) ** 2).sum(dim=0)
    ss_tot = ((yk - yk.mean(dim=0, keepdim=True)) ** 2).sum(dim=0).clamp_min(1e-12)
    r2 = 1.0 - ss_res / ss_tot
    t1 = t1s * (b / a - 1.0)
    ok = (a > 0) & (b > a) & (t1s > 0) & (t1 > 0) & (t1 < 10000.0) & torch.isfinite(t1) & torch.isfinite(r2)
    return {"t1": t1, "a": a * scale, "b": b * scale, "t1s": t1s, "r2": r2.clamp(min=0.0), "ninv": best_k, "ok": ok}


def _refine(ys, ti, k, t1s0, iterations, frame_idx):
    """Polarity-restore with ``k`` inverted frames, then LM-fit; returns signed data, A, B, T1*, cost."""
    yk = torch.where(frame_idx < k[None, :], -ys, ys)
    a, b = _linear_ab(yk, ti, t1s0)
    a, b, t1s = _levenberg_marquardt(yk, ti, a, b, t1s0, iterations)
    cost = ((yk - (a[None, :] - b[None, :] * torch.exp(-ti[:, None] / t1s[None, :]))) ** 2).sum(0)
    cost = torch.where((b > 0) & torch.isfinite(cost), cost, torch.full_like(cost, float("inf")))
    return yk, a, b, t1s, cost


def _linear_ab(y: torch.Tensor, ti: torch.Tensor, t1s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Least-squares (A, B) of y = A − B·e for fixed T1* per pixel."""
    e = torch.exp(-ti[:, None] / t1s[None, :])  # [n, P]
    n = y.shape[0]
    se, see = e.sum(0), (e * e).sum(0)
    sy, sey = y.sum(0), (e * y).sum(0)
    det = (n * see - se * se).clamp_min(1e-12)
    a = (see * sy - se * sey) / det
    minus_b = (n * sey - se * sy) / det
    return a, -minus_b


def _levenberg_marquardt(y, ti, a, b, t1s, iterations: int):
    """Damped Gauss–Newton on (A, B, T1*) per pixel, accepting only steps that reduce the residual."""
    lam = torch.full_like(a, 1e-3)

    def residual(a_, b_, t_):
        return y - (a_[None, :] - b_[None, :] * torch.exp(-ti[:, None] / t_[None, :]))

    r = residual(a, b, t1s)
    cost = (r * r).sum(0)
    n = float(y.shape[0])
    for _ in range(iterations):
        e = torch.exp(-ti[:, None] / t1s[None, :])  # [n, P]
        # Jacobian columns of the model wrt (A, B, T1*): 1, -e, -B·e·TI/T1*²; the 3x3 normal
        # equations are formed from sums (elementwise, no batched matmul) and solved in closed
        # form (adjugate of the symmetric matrix): the fastest form for millions of tiny systems.
        g = e * ti[:, None]  # e·TI
        k = -b / (t1s * t1s)  # dT-column = k·g
        s_e, s_ee, s_g, s_eg, s_gg = e.sum(0), (e * e).sum(0), g.sum(0), (e * g).sum(0), (g * g).sum(0)
        s_r, s_er, s_gr = r.sum(0), (e * r).sum(0), (g * r).sum(0)
        h11, h12, h13 = torch.full_like(s_e, n), -s_e, k * s_g
        h22, h23, h33 = s_ee, -k * s_eg, k * k * s_gg
        j1, j2, j3 = s_r, -s_er, k * s_gr
        h11, h22, h33 = h11 * (1 + lam) + 1e-12, h22 * (1 + lam) + 1e-12, h33 * (1 + lam) + 1e-12
        c11, c12, c13 = h22 * h33 - h23 * h23, h13 * h23 - h12 * h33, h12 * h23 - h13 * h22
        c22, c23, c33 = h11 * h33 - h13 * h13, h12 * h13 - h11 * h23, h11 * h22 - h12 * h12
        det = h11 * c11 + h12 * c12 + h13 * c13
        det = torch.where(det.abs() > 1e-30, det, torch.full_like(det, 1e-30))
        step = torch.stack([(c11 * j1 + c12 * j2 + c13 * j3) / det,
                            (c12 * j1 + c22 * j2 + c23 * j3) / det,
                            (c13 * j1 + c23 * j2 + c33 * j3) / det], dim=1)
        a_n, b_n = a + step[:, 0], b + step[:, 1]
        t_n = (t1s + step[:, 2]).clamp(1.0, 20000.0)
        r_n = residual(a_n, b_n, t_n)
        cost_n = (r_n * r_n).sum(0)
        better = cost_n < cost
        a, b, t1s = torch.where(better, a_n, a), torch.where(better, b_n, b), torch.where(better, t_n, t1s)
        r = torch.where(better[None, :], r_n, r)
        cost = torch.where(better, cost_n, cost)
        lam = torch.where(better, lam * 0.3, lam * 10.0).clamp(1e-7, 1e7)
    return a, b, t1s


# ---- ShMOLLI conditional reconstruction -------------------------------------------------------
#: (T1 / RR below which sample 6 is used, T1 / RR below which sample 7 is also used): the
#: conditional rule of Piechnik et al. 2010 as we read it — the 5 samples of the first inversion
#: always; the 2nd inversion's sample when T1 < RR; the 3rd inversion's when T1 < 0.4 RR.
SHMOLLI_THRESHOLDS = (1.0, 0.4)
SHMOLLI_METHOD = ("ShMOLLI conditional reconstruction (Piechnik 2010): samples of the 1st inversion always, "
                  "the 2nd inversion's when T1 < {t6:g} RR, the 3rd's when T1 < {t7:g} RR; three-parameter fit "
                  "with polarity restoration and Look-Locker correction")


def shmolli_sample_sets(inversion_times_ms: list[float], inversion: list[int] | None = None) -> tuple[list[int], int, int]:
    """(indices of the 1st inversion's 5 samples, index of the 2nd's, index of the 3rd's) in the given order.

    ``inversion``: the inversion block (0, 1, 2) of each frame when known (acquisition order);
    otherwise the ShMOLLI layout is assumed: sorted by TI, the 2nd and 3rd shortest TIs
    (TI0 + offset, TI0 + 2 offsets) are the single samples of inversions 2 and 3.
    """
    ti = np.asarray(inversion_times_ms, float)
    if len(ti) != 7:
        raise InputError(f"ShMOLLI conditional reconstruction needs the 7 ShMOLLI frames; got {len(ti)}")
    if inversion is not None:
        inv = np.asarray(inversion)
        if sorted(np.bincount(inv, minlength=3).tolist()) != [1, 1, 5] or len(inv) != 7:
            raise InputError(f"ShMOLLI frames must come from inversions of 5, 1 and 1 images; got {inv.tolist()}")
        first = [int(i) for i in np.flatnonzero(inv == 0)]
        return first, int(np.flatnonzero(inv == 1)[0]), int(np.flatnonzero(inv == 2)[0])
    order = np.argsort(ti, kind="stable")
    return sorted([int(order[0]), *map(int, order[3:])]), int(order[1]), int(order[2])


def rr_from_inversion_times(inversion_times_ms: list[float]) -> tuple[float, str]:
    """R-R (ms) inferred from the spacing of ShMOLLI's first-inversion TIs, and a sentence saying how."""
    ti = np.sort(np.asarray(inversion_times_ms, float))
    first = np.concatenate([ti[:1], ti[3:]])
    steps = np.diff(first)
    rr = float(np.median(steps))
    spread = float((steps.max() - steps.min()) / rr) if rr > 0 else np.inf
    why = f"R-R {rr:.0f} ms inferred from the first inversion's TI spacing ({', '.join(f'{s:.0f}' for s in steps)} ms)"
    if spread > 0.1:
        why += f"; the spacing is irregular (spread {100 * spread:.0f} % of R-R): the median was assumed"
    return rr, why


def fit_t1_shmolli(frames: np.ndarray, inversion_times_ms: list[float], rr_ms: float | None = None, *,
                   rr_source: str = "", inversion: list[int] | None = None, force_all: bool = False,
                   thresholds: tuple[float, float] = SHMOLLI_THRESHOLDS, mask: np.ndarray | None = None,
                   background_fraction: float = 0.05, **fit_kwargs) -> T1FitResult:
    """ShMOLLI T1 map with conditional use of 5, 6 or 7 samples per pixel (vectorised).

    Fits the first inversion's 5 samples for every pixel; where that T1 < ``thresholds[0]`` x RR,
    refits with the 2nd inversion's sample and keeps it where the 6-sample T1 is still below that
    bound; where the 6-sample T1 < ``thresholds[1]`` x RR, refits with all 7 and keeps them where
    the 7-sample T1 is still below. ``rr_ms``: the R-R interval (ms) from the DICOM heart-rate
    tags; None infers it from the TI spacing (said so in ``conditional['rr_source']``).
    ``force_all``: the plain fit of all 7 samples (recorded as such). Result maps as
    :func:`fit_t1`, plus ``n_samples`` and ``conditional`` (R-R, source, pixel counts).
    """
    frames = np.asarray(frames)
    ti = validate_inversion_times(list(inversion_times_ms), frames.shape[0])
    first, i6, i7 = shmolli_sample_sets(ti.tolist(), inversion)
    if rr_ms is None:
        rr_ms, rr_source = rr_from_inversion_times(ti.tolist())
    elif not np.isfinite(rr_ms) or rr_ms <= 0:
        raise InputError(f"R-R interval must be a positive number of ms; got {rr_ms}")
    rr_ms = float(rr_ms)
    spatial = frames.shape[1:]
    if force_all:
        res = fit_t1(frames, ti.tolist(), mask=mask, background_fraction=background_fraction, **fit_kwargs)
        res.n_samples = np.where(res.valid, 7, 0).astype(np.int8)
        res.conditional = {"rr_ms": rr_ms, "rr_source": rr_source, "forced_all_samples": True,
                           "pixels_by_samples": {"5": 0, "6": 0, "7": int(res.valid.sum())}}
        return res
    peak = np.abs(frames).max(axis=0)
    fg = peak > background_fraction * np.percentile(peak, 99)
    if mask is not None:
        if mask.shape != spatial:
            raise InputError(f"mask shape {mask.shape} differs from the frame shape {spatial}")
        fg &= mask.astype(bool)
    kw = dict(background_fraction=0.0, **fit_kwargs)
    res = fit_t1(frames[first], ti[first].tolist(), mask=fg, **kw)
    n_used = np.where(res.valid, 5, 0).astype(np.int8)
    best = res
    # pixels the 5-sample fit could not settle (a very short T1 sampled once before its
    # plateau) go on to the 6- and 7-sample fits as well
    unsettled = fg & ~res.valid
    cand6 = (res.valid & (res.t1 < thresholds[0] * rr_ms)) | unsettled
    idx6 = sorted(first + [i6])
    if cand6.any():
        r6 = fit_t1(frames[idx6], ti[idx6].tolist(), mask=cand6, **kw)
        take6 = r6.valid & cand6 & (r6.t1 < thresholds[0] * rr_ms)
        _take(best, r6, take6)
        n_used[take6] = 6
        cand7 = (take6 & (r6.t1 < thresholds[1] * rr_ms)) | (unsettled & ~take6)
        if cand7.any():
            r7 = fit_t1(frames, ti.tolist(), mask=cand7, **kw)
            take7 = r7.valid & cand7 & ((r7.t1 < thresholds[1] * rr_ms) | (unsettled & ~take6))
            _take(best, r7, take7)
            n_used[take7] = 7
    best.inversion_times_ms = sorted(ti.tolist())
    best.n_samples = n_used
    best.method = SHMOLLI_METHOD.format(t6=thresholds[0], t7=thresholds[1])
    best.conditional = {"rr_ms": rr_ms, "rr_source": rr_source, "forced_all_samples": False,
                        "thresholds_t1_over_rr": list(thresholds),
                        "pixels_by_samples": {str(k): int((n_used == k).sum()) for k in (5, 6, 7)}}
    return best


def _take(dst: T1FitResult, src: T1FitResult, sel: np.ndarray) -> None:
    """Copy ``src``'s maps into ``dst`` where ``sel`` (in place). ``n_inverted`` stays in each fit's own
    frame count (frames sorted by TI of the samples that fit used)."""
    for name in ("t1", "a", "b", "t1_star", "r2", "valid", "n_inverted"):
        getattr(dst, name)[sel] = getattr(src, name)[sel]


def scheme_of(meta: dict, n_frames: int) -> str:
    """The sampling scheme of an IRW image from its metadata (classifier subtype, phantom ``scheme``,
    description), e.g. "ShMOLLI" or "MOLLI 5(3)3"; "" when unknown."""
    for key in ("scheme", "subtype"):
        value = str(meta.get(key) or "")
        if value.startswith("ShMOLLI"):
            return "ShMOLLI"
        if value.startswith("MOLLI"):
            return value.split(" (")[0]
    desc = str(meta.get("SeriesDescription") or "").lower()
    if "shmolli" in desc and n_frames == 7:
        return "ShMOLLI"
    return ""


def fit_irw(frames: np.ndarray, inversion_times_ms: list[float], scheme: str = "", *, rr_ms: float | None = None,
            rr_source: str = "", all_samples: bool = False, **fit_kwargs) -> T1FitResult:
    """The T1 fit a scheme calls for: ShMOLLI (7 frames) with conditional reconstruction
    (:func:`fit_t1_shmolli`, unless ``all_samples``), every other scheme the plain fit of all frames."""
    if scheme == "ShMOLLI" and np.asarray(frames).shape[0] == 7:
        return fit_t1_shmolli(frames, inversion_times_ms, rr_ms, rr_source=rr_source, force_all=all_samples,
                              **fit_kwargs)
    return fit_t1(frames, inversion_times_ms, **fit_kwargs)

"""Series generators of the phantom: anatomy -> tissue maps -> signal -> artefacts -> truth.

:class:`Phantom` renders one subject. Each method returns a :class:`Series` — the image as
a :class:`cmrlib.Image` in real-world units (what a scanner would store), its ground
truth (label map, AHA segments, true T1, displacement fields) on the same grid, the
DICOM description / ImageType / series-level tags, and a JSON-ready ``truth`` dict.
:meth:`Phantom.study` makes every series of a study. Single series (one IRW set, one
LGE slice) are fast enough for training loops (see ``cmrlib.phantom`` docs).
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from ..errors import InputError
from ..image import Image
from ..progress import ProgressCallback, report
from . import artefacts as art
from . import sequences as seq
from .anatomy import Anatomy, WaveField, contraction, mid_diastole
from .geometry import Grid, RigidMotion, la_grid, sax_grid
from .labels import certainty_class, la_quality, landmarks, lge_likelihood, model_volumes, plane_level, slice_class
from .params import ARTEFACTS, PhantomOptions, SubjectParams, sample_subject, snr_severity, stable_seed
from .tissue import BLOOD_CODES, LABELS, T, TISSUE_TO_LABEL, TissueSet, tissue_names

F32 = np.float32
PHANTOM_VERSION = "1.0"
POSITIONS = ("basal", "mid", "apical")
CONDITIONS = ("native", "stress", "post")
MYO_CODES = (T.MYOCARDIUM, T.SCAR, T.PAPILLARY, T.RV_MYOCARDIUM, T.LA_WALL, T.LA_FIBROSIS)
def _irw_reference_signal() -> float:
    """Simulated signal (M0 = 1) of a myocardium-like tissue (T1 1000 ms, T2 45 ms) at the last
    image of MOLLI 5(3)3, 60 bpm: scales the sequence-model IRW images to the ideal model's range."""
    global _IRW_REF
    if _IRW_REF is None:
        from ..t1.sequence import simulate_irw
        sim = simulate_irw([1000.0], [45.0], "MOLLI 5(3)3", 1000.0)
        _IRW_REF = float(sim.signal[sim.order][-1, 0])
    return _IRW_REF


_IRW_REF: float | None = None
_SCALE = {"cine": 2400.0, "irw": 450.0, "lge": 1500.0, "la": 1500.0, "vne": 1500.0}


@dataclass
class Series:
    """One simulated series with its ground truth.

    ``image`` holds real-world values (signal units, T1 in ms, PSIR signed). ``labels``
    (mask label table :data:`cmrlib.phantom.tissue.LABELS`) and ``aha`` (0 or 1..17) are
    on the same grid (a sequence for cine, one frame's grid for IRW: the reference
    anatomy, before motion). ``maps`` holds further truth maps on that grid (e.g.
    ``t1_ms``). ``displacement``: IRW only, (frames, 2, rows, cols) pixels [d_row, d_col]:
    frame f at pixel x shows the reference anatomy at x + d_f(x); ``inverse_displacement``
    maps it back: corrected(x) = frame_f(x + v_f(x)).
    """

    name: str
    kind: str
    description: str
    image: Image
    labels: Image
    aha: Image | None = None
    maps: dict[str, Image] = field(default_factory=dict)
    truth: dict[str, Any] = field(default_factory=dict)
    image_type: tuple[str, ...] = ("ORIGINAL", "PRIMARY", "M", "NONE")
    dicom: dict[str, Any] = field(default_factory=dict)
    rescale_slope: float = 1.0
    rescale_intercept: float = 0.0
    series_number: int = 1
    displacement: np.ndarray | None = None
    _inverse: np.ndarray | None = field(default=None, repr=False)

    @property
    def inverse_displacement(self) -> np.ndarray | None:
        """Inverse fields (frames, 2, rows, cols) px, computed on first use (IRW only)."""
        if self.displacement is None:
            return None
        if self._inverse is None:
            self._inverse = np.stack([art.invert_displacement(d) for d in self.displacement])
        return self._inverse


@dataclass
class Study:
    """All series of one subject and the study-level truth."""

    subject: SubjectParams
    series: dict[str, Series]
    truth: dict[str, Any]


def _json(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _json(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json(x) for x in v]
    if isinstance(v, np.ndarray):
        return _json(v.tolist())
    if isinstance(v, (np.floating, float)):
        f = float(v)
        return round(f, 6) if np.isfinite(f) else None
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v


def _acq_time(start_s: float) -> str:
    """DICOM TM string for seconds after midnight."""
    t = _dt.datetime(2026, 1, 1) + _dt.timedelta(seconds=start_s)
    return t.strftime("%H%M%S.%f")


class Phantom:
    """Renderer for one subject (see module docstring)."""

    def __init__(self, subject: SubjectParams) -> None:
        self.s = subject
        self.anat = Anatomy(subject)
        self.ts: TissueSet = subject.tissues()
        self.sax = sax_grid(subject, self.anat, subject.slice_z())
        self.t_mid = mid_diastole(subject)
        self.tex = WaveField(stable_seed("texture", subject.seed), 10, 6.0, 22.0)
        self.pivot = self.anat.to_lps(np.array([[0.0, 0.0, 0.5 * subject.lv_length_mm]]))[0]
        self._torso: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
        body = subject.body_semi_axes
        self._coil_y = (8.0 - body[1], 8.0 + body[1])  # anterior / posterior body surface (LPS y, mm)
        self._coil_ref = 1.0
        self._coil_ref = float(self._coil(self.pivot[None])[0])

    # ---- helpers ---------------------------------------------------------------------
    def _rng(self, *parts: Any) -> np.random.Generator:
        return np.random.default_rng(stable_seed(self.s.seed, *parts))

    def _coil(self, p: np.ndarray) -> np.ndarray:
        """Receive-coil sensitivity (anterior and posterior arrays), 1 at the LV centre."""
        y0, y1 = self._coil_y
        y = p[:, 1]
        c = 0.45 + 0.75 * np.exp(-(y - y0) / 110.0) + 0.45 * np.exp(-(y1 - y) / 110.0)
        return (c / self._coil_ref).astype(F32)

    def _plane(self, grid: Grid, k: int, motion: RigidMotion | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple]:
        """(reference points, torso tissue, texture, near-heart points) of slice k, cached (static over the cycle)."""
        key = (grid.origin.tobytes(), grid.slice_dir.tobytes(), k, grid.rows,
               None if motion is None else tuple(motion.to_dict().values()))
        if key not in self._torso:
            p = grid.points(k)
            if motion is not None:
                p = motion.sample_points(p, grid, self.pivot)
            self._torso[key] = (p, self.anat.torso(p), self.tex(p), self.anat.near_heart(p))
            if len(self._torso) > 64:
                self._torso.pop(next(iter(self._torso)))
        return self._torso[key]

    def render(self, grid: Grid, k: int, t_frac: float, motion: RigidMotion | None = None
               ) -> dict[str, np.ndarray]:
        """Tissue map, AHA map, depth, LPS points (of the displayed pixels) of slice k at phase t_frac."""
        p_ref, torso, tex, near = self._plane(grid, k, motion)
        tissue, aha, depth = self.anat.tissue_at(p_ref, t_frac, torso, near)
        shape = (grid.rows, grid.cols)
        return {"tissue": tissue.reshape(shape), "aha": aha.reshape(shape), "depth": depth.reshape(shape),
                "texture": tex.reshape(shape), "points": p_ref}

    def _severity(self, name: str) -> float:
        return float(self.s.artefacts.get(name, 0.0))

    def _window(self, acquired_mm: float, extra_blur: bool = True) -> np.ndarray:
        """k-space window: acquisition resolution (unless the PSF is off) and the blur artefact."""
        blur = 2.5 * self._severity("blur") if extra_blur else 0.0
        shape = (self.s.matrix, self.s.matrix)
        return art.kspace_window(shape, self.s.pixel_mm, acquired_mm if self.s.psf else None, blur)

    def _motion(self, pair: str | None) -> RigidMotion | None:
        if pair is None:
            return None
        m = RigidMotion(*self.s.misregistration[pair])
        return None if m.is_identity else m

    def _slice_truth(self, grid: Grid, k: int, t_frac: float, motion: RigidMotion | None, labels: np.ndarray,
                     aha: np.ndarray) -> dict[str, Any]:
        z, za = plane_level(self.anat, grid, k, t_frac, motion, self.pivot)
        cls, comp = slice_class(self.anat, za)
        px_area = grid.spacing[0] * grid.spacing[1]
        areas = {name: float(np.sum(labels == lab) * px_area) for lab, name in
                 ((1, "myocardium_normal_mm2"), (2, "lv_blood_mm2"), (3, "scar_mm2"), (4, "rv_blood_mm2"))}
        areas["myocardium_mm2"] = areas["myocardium_normal_mm2"] + areas["scar_mm2"]
        return {
            "index": k, "slice_location_mm": round(grid.slice_location(k), 4),
            "position_lps_mm": [round(float(v), 4) for v in grid.slice_origin(k)],
            "z_from_mitral_plane_mm": round(z, 3), "material_z_mm": round(za, 3),
            "class": cls, "ring_completeness": round(comp, 4), "aha_level": self.anat.aha_level(za),
            "areas": {k2: round(v, 3) for k2, v in areas.items()},
            "aha_segments_present": sorted(int(v) for v in np.unique(aha) if v > 0),
            **landmarks(self.anat, grid, k, t_frac, motion, self.pivot),
        }

    def _image(self, array: np.ndarray, grid: Grid, *, sequence: bool, meta: dict[str, Any],
               frame_meta: list[dict[str, Any]] | None = None) -> Image:
        return Image(array, grid.spacing, tuple(grid.origin), grid.direction, sequence, meta, frame_meta or [])

    def _base_dicom(self, tr_ms: float, te_ms: float, flip: float) -> dict[str, Any]:
        return {"MagneticFieldStrength": self.s.field_t, "RepetitionTime": round(tr_ms, 3), "EchoTime": round(te_ms, 3),
                "FlipAngle": flip, "HeartRate": int(round(self.s.heart_rate_bpm)),
                "SliceThickness": self.s.slice_thickness_mm, "ImagingFrequency": round(42.577 * self.s.field_t, 4)}

    def _artefact_record(self, names: tuple[str, ...], snr: float) -> dict[str, float]:
        rec = {n: round(self._severity(n), 4) for n in names}
        rec["noise"] = round(snr_severity(snr), 4)
        return rec

    def _sigma(self, reference_signal: float, snr: float) -> float:
        return 0.0 if not np.isfinite(snr) else float(reference_signal / snr)

    # ---- cine ------------------------------------------------------------------------------
    def cine(self, slices: list[int] | None = None, n_phases: int | None = None,
             progress: ProgressCallback | None = None, phases: list[int] | None = None) -> Series:
        """bSSFP cine SAX stack: [phase, slice, row, col], 20-30 phases over the R-R interval.

        ``phases`` (indices among the ``n_phases``) renders only those frames — a fast path for
        training loops (e.g. the frame at the LGE trigger time); the per-slice end-systolic truth
        is then left out unless that phase is among them."""
        s = self.s
        ks = list(range(s.n_slices)) if slices is None else list(slices)
        grid = self.sax if slices is None else _subgrid(self.sax, ks)
        n_ph = int(n_phases or s.n_phases)
        rr = s.rr_ms
        tr, flip = (3.0, 60.0) if s.field_t < 2 else (3.3, 45.0)
        rng = self._rng("cine")
        win = self._window(1.8)
        all_fracs = np.arange(n_ph) / n_ph
        chosen = list(range(n_ph)) if phases is None else [int(p) % n_ph for p in phases]
        t_fracs = all_fracs[chosen]
        sig = np.zeros((len(chosen), len(ks), s.matrix, s.matrix), F32)
        lab = np.zeros_like(sig, dtype=np.uint8)
        aha_m = np.zeros_like(lab)
        sev_band = self._severity("banding")
        hotspot = self._hotspot()
        inflow = np.ones(len(T), F32)
        inflow[[T.LV_BLOOD, T.RV_BLOOD, T.AORTA_BLOOD, T.OTHER_BLOOD, T.LA_BLOOD]] = 1.3
        scale = _SCALE["cine"] * s.gain
        per_slice = []
        for j, k in enumerate(ks):
            report(progress, "cine", j, len(ks), f"slice {j + 1}/{len(ks)}")
            p_ref = self._plane(self.sax, k, None)[0]
            coil = self._coil(p_ref).reshape(s.matrix, s.matrix)
            off = art.offresonance_hz(p_ref, self.pivot, hotspot, sev_band, tr, stable_seed(s.seed, "b0"))
            off = off.reshape(s.matrix, s.matrix)
            for f, tf in enumerate(t_fracs):
                r = self.render(self.sax, k, float(tf))
                ti = r["tissue"]
                pd = self.ts.pd[ti] * (1.0 + 0.04 * r["texture"])
                sig[f, j] = seq.bssfp_tissue(ti, pd * inflow[ti] * coil * scale, self.ts.t1, self.ts.t2, flip, tr, off)
                lab[f, j] = TISSUE_TO_LABEL[ti]
                aha_m[f, j] = r["aha"]
            es = int(round(s.t_es * n_ph)) % n_ph  # the phase nearest to end-systole
            entry = {"ed": self._slice_truth(self.sax, k, float(t_fracs[0]), None, lab[0, j], aha_m[0, j])}
            if es in chosen:
                e = chosen.index(es)
                entry["es"] = {"phase": es, **self._slice_truth(self.sax, k, float(t_fracs[e]), None,
                                                                lab[e, j], aha_m[e, j])}
            per_slice.append(entry)
        report(progress, "cine", len(ks), len(ks), "artefacts")
        sig = art.acquire(sig, win)
        ghost_info: dict = {}
        if self._severity("ghosting") > 0:
            for f in range(len(chosen)):
                for j in range(len(ks)):
                    sig[f, j], ghost_info = art.ghosting(sig[f, j], self._severity("ghosting"), rng)
        myo_ref = float(sig[0][lab[0] == 1].mean()) if np.any(lab[0] == 1) else float(sig.mean())
        sigma = self._sigma(myo_ref, s.snr["cine"])
        img = art.rician(sig, sigma, rng)
        px_vol = s.pixel_mm ** 2 * s.slice_spacing_mm / 1000.0
        lv_ml = [float(np.sum(lab[f] == 2) * px_vol) for f in range(len(chosen))]
        frame_meta = [{"TriggerTime": round(float(tf * rr), 2), "CardiacPhase": f} for f, tf in zip(chosen, t_fracs)]
        desc = "cine SAX"
        meta = {"SeriesDescription": desc, "kind": "cine"}
        truth = {
            "phases": n_ph, "trigger_times_ms": [fm["TriggerTime"] for fm in frame_meta], "rr_ms": rr,
            "tr_ms": tr, "flip_deg": flip, "acquired_pixel_mm": 1.8, "noise_sigma": sigma, "snr_myocardium": s.snr["cine"],
            "artefacts": self._artefact_record(("banding", "ghosting", "blur"), s.snr["cine"]), "ghosting": ghost_info,
            "slices": per_slice, "lv_blood_volume_ml_by_phase_stack": lv_ml,
            "end_systolic_phase": chosen[int(np.argmin(lv_ml))],
            "model_cavity_ml": {"ed": model_volumes(self.anat, 0.0, False)["cavity_ml"],
                                "es": model_volumes(self.anat, s.t_es, False)["cavity_ml"]},
        }
        m = truth["model_cavity_ml"]
        truth["model_ejection_fraction_percent"] = 100.0 * (m["ed"] - m["es"]) / m["ed"]
        return Series("cine", "cine", desc, self._image(img, grid, sequence=True, meta=meta, frame_meta=frame_meta),
                      self._image(lab, grid, sequence=True, meta={"labels": LABELS}, frame_meta=frame_meta),
                      self._image(aha_m, grid, sequence=True, meta={}, frame_meta=frame_meta),
                      truth=truth, dicom={**self._base_dicom(tr, tr / 2, flip), "ScanningSequence": "GR",
                                          "SequenceVariant": "SS", "CardiacNumberOfImages": n_ph},
                      series_number=2)

    def _hotspot(self) -> np.ndarray:
        """LPS point of the heart-lung susceptibility hot spot (inferolateral epicardium, mid level)."""
        s = self.s
        a = np.deg2rad(s.rv_anterior_deg + 210.0)
        r = s.endo_radius_mm + s.wall_mm + 5.0
        return self.anat.to_lps(np.array([[r * np.cos(a), r * np.sin(a), 0.5 * s.lv_length_mm]]))[0]

    # ---- IRW (MOLLI / ShMOLLI) and T1 maps ----------------------------------------------------
    def irw_grid(self, position: str) -> Grid:
        """Single-slice SAX grid of a T1-mapping position (basal / mid / apical)."""
        if position not in POSITIONS:
            raise InputError(f"position must be one of {', '.join(POSITIONS)}; got {position!r}")
        s = self.s
        frac = {"basal": 0.25, "mid": 0.5, "apical": 0.75}[position]
        za = max(frac * s.lv_length_mm, s.lvot_depth_mm + 3.0) if position == "basal" else frac * s.lv_length_mm
        c = float(contraction(self.t_mid, s.t_es))
        z = self.anat.l_epi - (self.anat.l_epi - za) * (1.0 - s.long_shortening * c)
        return sax_grid(s, self.anat, [z], thickness_mm=8.0)

    def t1_true(self, tissue: np.ndarray, aha: np.ndarray, condition: str) -> np.ndarray:
        """Per-pixel T1 (ms, MOLLI-type) of a tissue map for a condition (native / stress / post)."""
        s = self.s
        if condition == "post":
            return self.ts.t1_post(s.blood_t1_post_ms)[tissue]
        t1 = self.ts.t1[tissue].copy()
        if condition == "stress":
            react = np.zeros(18, F32)
            for seg, v in s.stress_reactivity.items():
                react[seg] = v
            normal = float(np.mean(list(s.stress_reactivity.values())))
            lv_myo = (tissue == T.MYOCARDIUM)
            t1 = np.where(lv_myo, t1 * (1.0 + react[aha]), t1)
            t1 = np.where(np.isin(tissue, (T.PAPILLARY, T.RV_MYOCARDIUM)), t1 * (1.0 + normal), t1)
            t1 = np.where(np.isin(tissue, BLOOD_CODES), t1 * (1.0 + s.blood_stress_change), t1)
            # infarct (scar) does not react
        return t1.astype(F32)

    def irw(self, position: str = "mid", condition: str = "native", scheme: str | None = None,
            motion_severity: float | None = None) -> Series:
        """One MOLLI/ShMOLLI IRW set (frames sorted by TI) at a SAX position, with truth.

        condition: native (rest), stress (vasodilator: higher heart rate, T1 reactivity per
        AHA segment, rest->stress misregistration) or post (post-contrast; default scheme
        MOLLI 4(1)3(1)2, native->post misregistration).
        """
        if condition not in CONDITIONS:
            raise InputError(f"condition must be one of {', '.join(CONDITIONS)}; got {condition!r}")
        s = self.s
        scheme = scheme or ("MOLLI 4(1)3(1)2" if condition == "post" else s.scheme)
        if scheme not in seq.SCHEMES:
            raise InputError(f"IRW scheme must be one of {', '.join(seq.SCHEMES)}; got {scheme!r}")
        name = f"irw_{condition}_{position}"
        rng = self._rng(name)
        grid = self.irw_grid(position)
        motion = self._motion({"stress": "rest_stress", "post": "native_post"}.get(condition))
        rr = s.rr_ms / (rng.uniform(1.2, 1.45) if condition == "stress" else 1.0)
        ti0 = float(rng.uniform(100.0, 120.0))
        samples = seq.irw_samples(scheme, ti0, rr)
        r = self.render(grid, 0, self.t_mid, motion)
        tissue, aha = r["tissue"], r["aha"]
        labels = TISSUE_TO_LABEL[tissue]
        t1_tissue = self.t1_true(tissue, aha, condition)
        coil = self._coil(r["points"]).reshape(tissue.shape)
        sev_band = self._severity("banding")
        band = np.zeros(tissue.shape, F32)
        if sev_band > 0:  # off-resonant bSSFP readout: lower signal and inversion efficiency
            off = art.offresonance_hz(r["points"], self.pivot, self._hotspot(), sev_band, 2.6,
                                      stable_seed(s.seed, "b0")).reshape(tissue.shape)
            band = seq.band_proximity(off, 2.6 * 1.15).astype(F32)
        physics: dict[str, Any] = {"irw_model": s.irw_model}
        if s.irw_model == "ideal":
            t1_app = t1_tissue * (s.shmolli_factor if scheme == "ShMOLLI" else 1.0)
            # Look-Locker amplitudes: A follows PD and the bSSFP readout; B/A per tissue
            ro = seq.bssfp(np.ones(len(T), F32), self.ts.t1, self.ts.t2, 35.0, 2.6)
            ro_rel = np.sqrt(ro / ro[T.MYOCARDIUM])
            ba_t = np.full(len(T), s.ba_ratio, F32)
            ba_t[list(BLOOD_CODES)] += 0.04
            ba_t[[T.FAT, T.MARROW]] -= 0.12
            a = self.ts.pd[tissue] * (1.0 + 0.04 * r["texture"]) * ro_rel[tissue] * coil * _SCALE["irw"] * s.gain
            ba = ba_t[tissue]
            if sev_band > 0:
                a = a * (1.0 - 0.8 * band)
                ba = 1.0 + (ba - 1.0) * (1.0 - 0.3 * band)
            ti = np.array([x.ti_ms for x in samples])
            order = np.argsort(ti, kind="stable")
            frames = seq.look_locker(ti[order], a.astype(F32), ba.astype(F32), t1_app)
            t1_fit = t1_app
            t1_cond = None
        else:
            frames, ti, order, t1_fit, t1_cond, physics, t1_app = self._irw_sequence(
                scheme, tissue, t1_tissue, band, rr, ti0, rng, r["texture"], coil, name)
            samples = [seq.IRWSample(float(t), x.inversion, x.heartbeat) for t, x in zip(ti, samples)]
        # respiratory / non-rigid motion between frames (object moves, then it is imaged)
        sev_m = self._severity("motion") if motion_severity is None else float(motion_severity)
        centre = grid.to_pixel(self.pivot, 0)
        resp = np.array([np.dot([0, 0, 1.0], grid.row_dir), np.dot([0, 0, 1.0], grid.col_dir)])
        resp = resp / max(np.linalg.norm(resp), 1e-6)
        disp, motion_info = art.motion_fields(len(ti), tissue.shape, s.pixel_mm, sev_m, resp,
                                              (float(centre[1]), float(centre[0])), rng)
        if sev_m > 0:
            frames = np.stack([art.warp(frames[f], disp[f]) for f in range(len(ti))])
        frames = art.acquire(frames, self._window(2.0))
        ghost_info: dict = {}
        if self._severity("ghosting") > 0:
            for f in range(frames.shape[0]):
                frames[f], ghost_info = art.ghosting(frames[f], self._severity("ghosting"), rng)
        myo = labels == 1
        ref = float(frames[-1][myo].mean()) if myo.any() else float(frames[-1].mean())
        sigma = self._sigma(ref, s.snr["irw"])
        frames = art.rician(frames, sigma, rng)
        trig = round(self.t_mid * rr, 2)
        rr_mean = float(np.mean(physics["rr_per_beat_ms"])) if "rr_per_beat_ms" in physics else rr
        start = 10 * 3600.0 + {"native": 0.0, "post": 1800.0, "stress": 900.0}[condition] + POSITIONS.index(position) * 30.0
        frame_meta = []
        for f in order:
            smp = samples[f]
            frame_meta.append({"InversionTime": round(smp.ti_ms, 2), "TriggerTime": trig,
                               "AcquisitionTime": _acq_time(start + (smp.heartbeat * rr + smp.ti_ms) / 1000.0)})
        desc = f"{scheme} {condition} {position.upper()}"
        meta = {"SeriesDescription": desc, "kind": "irw", "scheme": scheme, "condition": condition, "position": position}
        gt = {
            "scheme": scheme, "condition": condition, "position": position, "rr_ms": rr, "ti0_ms": ti0,
            "heart_rate_bpm": 60000.0 / rr, "trigger_time_ms": trig,
            "frames": [{"frame": i, "inversion_time_ms": round(samples[f].ti_ms, 3), "inversion": samples[f].inversion,
                        "heartbeat": samples[f].heartbeat, "acquisition_index": int(f)} for i, f in enumerate(order)],
            "t1_scale_vs_molli": (s.shmolli_factor if scheme == "ShMOLLI" else 1.0) if s.irw_model == "ideal" else None,
            "noise_sigma": sigma, "snr_myocardium": s.snr["irw"], "acquired_pixel_mm": 2.0,
            "motion": motion_info, "misregistration": motion.to_dict() if motion else None,
            "artefacts": {**self._artefact_record(("banding", "ghosting", "blur"), s.snr["irw"]),
                          "motion": round(sev_m, 4),
                          "misregistration": round(self._severity("misregistration"), 4) if motion else 0.0},
            "ghosting": ghost_info,
            "tissue_t1_ms": self._tissue_t1_table(tissue, t1_app),
            # what an ideal fit of noise-free, motion-free frames reads (all samples), and for
            # ShMOLLI with conditional reconstruction: the sequence's own bias, not the tissue T1
            "fit_t1_ms": self._tissue_t1_table(tissue, t1_fit),
            "reference_t1_ms": self._tissue_t1_table(tissue, t1_tissue),
            **({"conditional_fit_t1_ms": self._tissue_t1_table(tissue, t1_cond)} if t1_cond is not None else {}),
            "sequence": physics,
            "slice": self._slice_truth(grid, 0, self.t_mid, motion, labels, aha),
        }
        labels_img = self._image(labels, grid, sequence=False, meta={"labels": LABELS})
        maps = {"t1_ms": self._image(t1_app, grid, sequence=False, meta={"units": "ms"}),
                "t1_fit_ms": self._image(t1_fit.astype(F32), grid, sequence=False, meta={"units": "ms"}),
                "t1_reference_ms": self._image(t1_tissue.astype(F32), grid, sequence=False, meta={"units": "ms"}),
                "tissue": self._image(tissue, grid, sequence=False, meta={"tissues": tissue_names()})}
        return Series(name, "irw", desc,
                      self._image(frames, grid, sequence=True, meta=meta, frame_meta=frame_meta),
                      labels_img, self._image(aha, grid, sequence=False, meta={}), maps, gt,
                      image_type=("ORIGINAL", "PRIMARY", "M", "NONE"),
                      dicom={**self._base_dicom(2.6, 1.1, 35.0), "ScanningSequence": "IR\\GR",
                             "SequenceVariant": "SS\\SP", "SliceThickness": 8.0,
                             # this breath-hold's heart rate (stress sets beat faster than the subject at rest);
                             # NominalInterval is an IS (whole ms)
                             "HeartRate": int(round(60000.0 / rr_mean)), "NominalInterval": int(round(rr_mean))},
                      series_number=_series_number(name), displacement=disp)

    def _irw_sequence(self, scheme: str, tissue: np.ndarray, t1: np.ndarray, band: np.ndarray, rr: float,
                      ti0: float, rng: np.random.Generator, texture: np.ndarray, coil: np.ndarray, name: str):
        """IRW frames from the sequence-level Bloch simulation (cmrlib.t1.sequence), one simulation
        per distinct (T1, T2, off-resonance level) of the slice; with the ideal fits' readings."""
        from ..t1.fit import fit_t1, fit_t1_shmolli
        from ..t1.sequence import (DEFAULT_READOUT, REFERENCE_RR_MS, REFERENCE_SCHEME, beat_intervals, simulate_irw,
                                   tissue_t1_for_reading)
        s = self.s
        t2 = self.ts.t2[tissue]
        band_q = np.round(band * 8.0) / 8.0  # 9 off-resonance levels
        keys = np.stack([np.round(t1.astype(np.float64), 2), t2.astype(np.float64), band_q.astype(np.float64)], -1)
        uniq, inv = np.unique(keys.reshape(-1, 3), axis=0, return_inverse=True)
        inv = inv.reshape(-1)
        # the tissue tables are MOLLI-type readings: simulate the tissue T1 that reads them
        pairs, pinv = np.unique(uniq[:, :2], axis=0, return_inverse=True)
        t1_tissue_u = tissue_t1_for_reading(pairs[:, 0], pairs[:, 1])[pinv.reshape(-1)]
        eta = DEFAULT_READOUT.inversion_efficiency * (1.0 - 0.3 * uniq[:, 2])
        beats = beat_intervals(scheme, rr, s.rr_sd_ms, stable_seed(s.seed, name, "rr"))
        sim = simulate_irw(t1_tissue_u, uniq[:, 1], scheme, beats, ti0_ms=ti0, inversion_efficiency=eta)
        order = sim.order
        sig = sim.signal[order]  # [frames, combos] sorted by TI
        tis = sim.ti_ms[order]
        fit = fit_t1(sig[:, None, :], tis.tolist(), mask=np.ones((1, len(uniq)), bool))
        t1_fit = fit.t1[0][inv].reshape(tissue.shape)
        t1_cond = None
        cond_info = None
        if scheme == "ShMOLLI":
            cf = fit_t1_shmolli(sig[:, None, :], tis.tolist(), float(np.mean(beats)),
                                inversion=sim.inversion[order].tolist(), mask=np.ones((1, len(uniq)), bool))
            t1_cond = cf.t1[0][inv].reshape(tissue.shape)
        a = (self.ts.pd[tissue] * (1.0 + 0.04 * texture) * coil * _SCALE["irw"] * s.gain
             * (1.0 - 0.8 * band) / _irw_reference_signal())
        frames = (a[None] * sig[:, inv].reshape((len(tis),) + tissue.shape)).astype(F32)
        t1_tissue = t1_tissue_u[inv].reshape(tissue.shape)
        physics = {"irw_model": "sequence", "model": "Bloch simulation of the breath-hold (cmrlib.t1.sequence)",
                   "tissue_t1": (f"tissue T1 chosen so that {REFERENCE_SCHEME} at {60000 / REFERENCE_RR_MS:.0f} bpm "
                                 "reads the tissue table's (MOLLI-type) value; reference_t1_ms lists those"),
                   "readout": DEFAULT_READOUT.to_dict(), "trigger_delay_ms": sim.trigger_delay_ms,
                   "rr_per_beat_ms": [round(float(x), 2) for x in beats], "rr_sd_ms": s.rr_sd_ms,
                   "heart_rate_bpm": round(60000.0 / float(np.mean(beats)), 2),
                   "ideal_fit": "three-parameter fit of all noise-free samples (cmrlib.t1.fit.fit_t1)"}
        if cond_info is not None:
            physics["conditional"] = cond_info
        return (frames, sim.ti_ms, order, t1_fit.astype(F32), None if t1_cond is None else t1_cond.astype(F32),
                physics, t1_tissue.astype(F32))

    def _tissue_t1_table(self, tissue: np.ndarray, t1: np.ndarray) -> dict[str, float]:
        """Median T1 (ms) per tissue present in the slice (truth.json)."""
        out = {}
        for code in np.unique(tissue):
            m = tissue == code
            out[T(int(code)).name.lower()] = round(float(np.median(t1[m])), 2)
        return out

    def t1map(self, irw: Series) -> Series:
        """The scanner's T1 map (ms) from an IRW series (inline fit of the frames as acquired)."""
        ti = np.array(irw.image.frame_values("InversionTime"), float)
        frames = irw.image.frames()[:, 0]
        sigma = float(irw.truth["noise_sigma"])
        thr = 4.0 * sigma if sigma > 0 else 0.02 * float(frames.max())
        from ..t1.fit import fit_t1, fit_t1_shmolli  # lazy: torch is not needed to draw images
        kw = dict(mask=frames.max(axis=0) > thr, iterations=4, t1_star_grid_ms=(20.0, 5000.0, 40))
        if irw.image.meta.get("scheme") == "ShMOLLI":  # the scanner's ShMOLLI map: conditional reconstruction
            fit = fit_t1_shmolli(frames, ti.tolist(), float(irw.truth["rr_ms"]), **kw)
        else:
            fit = fit_t1(frames, ti.tolist(), **kw)  # a scanner-like inline fit, kept fast
        t1 = np.clip(fit.t1, 0.0, 4095.0)
        name = irw.name.replace("irw_", "t1map_")
        desc = f"{irw.description} T1 map"
        meta = {"SeriesDescription": desc, "kind": "t1map", "units": "ms", **{k: irw.image.meta[k] for k in
                                                                               ("scheme", "condition", "position")}}
        grid_img = irw.labels
        img = Image(t1[None], grid_img.spacing, grid_img.origin, grid_img.direction, False, meta, [])
        truth = {k: v for k, v in irw.truth.items() if k not in ("frames",)}
        truth["fit"] = ("scanner inline fit of |A - B exp(-TI/T1*)|, T1 = T1*(B/A - 1); background below 4 sigma = 0"
                        + ("; ShMOLLI conditional reconstruction (5/6/7 samples by T1 / RR)" if fit.n_samples is not None else ""))
        if fit.n_samples is not None:
            truth["conditional_samples"] = fit.conditional["pixels_by_samples"]
        maps = dict(irw.maps)
        maps["r2"] = Image(fit.r2[None], grid_img.spacing, grid_img.origin, grid_img.direction, False, {}, [])
        return Series(name, "t1map", desc, img, irw.labels, irw.aha, maps, truth,
                      image_type=("DERIVED", "PRIMARY", "T1 MAP", "NONE"),
                      dicom={**irw.dicom, "TriggerTime": irw.truth["trigger_time_ms"]},
                      series_number=_series_number(name))

    # ---- LGE -------------------------------------------------------------------------------------
    def lge(self, slices: list[int] | None = None, progress: ProgressCallback | None = None) -> tuple[Series, Series]:
        """PSIR and magnitude LGE SAX stacks from one acquisition (same noise), with truth.

        TI = the myocardial null TI (inversion every 2 R-R) times (1 + offset): the operator
        sets it slightly short of the null (``lge_ti_bias``); the nulling artefact adds a
        larger error either way (poor nulling). Each slice gets an LGE-likelihood score and
        certainty class computed from the noise-free images with and without artefacts — for
        each series on its own reconstruction (magnitude, or signed PSIR, on which myocardium
        inverted below its null looks nulled rather than grey).
        """
        s = self.s
        ks = list(range(s.n_slices)) if slices is None else list(slices)
        grid = self.sax if slices is None else _subgrid(self.sax, ks)
        rng = self._rng("lge", *ks) if slices is not None else self._rng("lge")
        motion = self._motion("cine_lge")
        trep = 2.0 * s.rr_ms
        post = self.ts.t1_post(s.blood_t1_post_ms)
        ti_null = seq.null_ti(float(post[T.MYOCARDIUM]), trep)
        ti_nominal = ti_null * (1.0 + s.lge_ti_bias)
        ti = ti_null * (1.0 + s.lge_ti_error)
        post_obs = post.copy()
        bb = self._severity("bright_blood")
        post_obs[list(BLOOD_CODES)] *= 1.0 - 0.4 * bb
        scale = _SCALE["lge"] * s.gain
        # blood-pool reference signal (slice independent): noise level and likelihood scale
        blood_ref = abs(float(seq.ir_gre(np.float32(self.ts.pd[T.LV_BLOOD] * scale), post[T.LV_BLOOD],
                                         self.ts.t2s[T.LV_BLOOD], ti_nominal, trep)))
        win_clean = self._window(1.6, extra_blur=False)
        win = self._window(1.6)
        n = len(ks)
        shape = (n, s.matrix, s.matrix)
        observed, clean = np.zeros(shape, F32), np.zeros(shape, F32)
        coil = np.zeros(shape, F32)
        lab, aha_m = np.zeros(shape, np.uint8), np.zeros(shape, np.uint8)
        ghost_info: dict = {}
        for j, k in enumerate(ks):
            report(progress, "lge", j, n, f"slice {j + 1}/{n}")
            r = self.render(self.sax, k, self.t_mid, motion)
            tis = r["tissue"]
            pd = self.ts.pd[tis] * (1.0 + 0.04 * r["texture"]) * scale
            clean[j] = seq.ir_gre(pd, post[tis], self.ts.t2s[tis], ti_nominal, trep)
            observed[j] = seq.ir_gre(pd, post_obs[tis], self.ts.t2s[tis], ti, trep)
            coil[j] = self._coil(r["points"]).reshape(tis.shape)
            lab[j], aha_m[j] = TISSUE_TO_LABEL[tis], r["aha"]
        clean = art.acquire(clean, win_clean)
        observed = art.acquire(observed, win)
        ghost = np.zeros_like(observed)
        if self._severity("ghosting") > 0:
            for j in range(n):
                g, ghost_info = art.ghosting(observed[j], self._severity("ghosting"), rng)
                ghost[j] = g - observed[j]
                observed[j] = g
        sigma = self._sigma(blood_ref, s.snr["lge"])
        real, mag = art.complex_noise(observed * coil, sigma, rng)
        # PSIR: real part after background-phase correction, normalised by the (smooth) coil map
        psir = real / np.maximum(coil, 0.2)
        sev = {k: self._severity(k) for k in ARTEFACTS}
        # remote myocardium level for slices without normal myocardium of their own (noise-free, analytic)
        pd_myo = np.float32(self.ts.pd[T.MYOCARDIUM] * scale)
        remote_ref = (abs(float(seq.ir_gre(pd_myo, post_obs[T.MYOCARDIUM], self.ts.t2s[T.MYOCARDIUM], ti, trep))),
                      abs(float(seq.ir_gre(pd_myo, post[T.MYOCARDIUM], self.ts.t2s[T.MYOCARDIUM], ti_nominal, trep))))
        remote_ref_signed = (float(seq.ir_gre(pd_myo, post_obs[T.MYOCARDIUM], self.ts.t2s[T.MYOCARDIUM], ti, trep)),
                             float(seq.ir_gre(pd_myo, post[T.MYOCARDIUM], self.ts.t2s[T.MYOCARDIUM], ti_nominal, trep)))
        per_slice, per_slice_psir = [], []
        for j, k in enumerate(ks):
            st = self._slice_truth(self.sax, k, self.t_mid, motion, lab[j], aha_m[j])
            st["scar_present"] = bool(np.any(lab[j] == 3))
            # what a rater sees differs between the two reconstructions: on the magnitude image
            # myocardium inverted below its null (TI short) is as grey as myocardium above it; PSIR
            # keeps the sign, so there it looks dark (nulled) and only signal above the intended
            # level is a nulling artefact — the likelihood of each series is scored on its own image
            for target, clean_j, observed_j, ref in (
                    (per_slice, np.abs(clean[j]), np.abs(observed[j] - ghost[j]), remote_ref),
                    (per_slice_psir, clean[j], observed[j] - ghost[j], remote_ref_signed)):
                lk = lge_likelihood(lab[j], clean_j, observed_j, ghost[j], sigma, s.pixel_mm, blood_ref, sev, ref)
                target.append({**st, **lk, "certainty": certainty_class(lk["lge_likelihood"])})
        psir = np.clip(psir, -4000.0, None)
        desc_p, desc_m = "LGE PSIR SAX", "LGE MAG SAX"
        arte = {**self._artefact_record(("nulling", "ghosting", "blur", "bright_blood"), s.snr["lge"]),
                "misregistration": round(self._severity("misregistration"), 4) if motion else 0.0}
        gt = {"inversion_time_ms": ti, "null_inversion_time_ms": ti_null, "ti_error_fraction": s.lge_ti_error,
              "intended_inversion_time_ms": ti_nominal, "blood_reference_signal": blood_ref,
              "inversion_interval_ms": trep, "trigger_time_ms": round(self.t_mid * s.rr_ms, 2),
              "t1_post_ms": {"myocardium": float(post[T.MYOCARDIUM]), "scar": float(post[T.SCAR]),
                             "blood": float(post_obs[T.LV_BLOOD]), "fat": float(post[T.FAT])},
              "noise_sigma": sigma, "snr_blood": s.snr["lge"], "acquired_pixel_mm": 1.6,
              "misregistration_vs_cine": motion.to_dict() if motion else None,
              "artefacts": arte, "ghosting": ghost_info, "slices": per_slice}
        gt_psir = {**gt, "slices": per_slice_psir, "likelihood_image": "PSIR (signed)"}
        gt["likelihood_image"] = "magnitude"
        for g in (gt, gt_psir):
            eq = [x for x in g["slices"] if x["class"] == "LV"]
            g["equivocal_fraction_lv_slices"] = float(np.mean([x["certainty"] == "low" for x in eq])) if eq else 0.0
        dic = {**self._base_dicom(2 * s.rr_ms, 3.0, 25.0), "InversionTime": round(ti, 2),
               "TriggerTime": gt["trigger_time_ms"], "ScanningSequence": "IR\\GR", "SequenceVariant": "SP\\OSP"}
        labels = self._image(lab, grid, sequence=False, meta={"labels": LABELS})
        aha_img = self._image(aha_m, grid, sequence=False, meta={})
        psir_s = Series("lge_psir", "lge_psir", desc_p,
                        self._image(psir, grid, sequence=False, meta={"SeriesDescription": desc_p, "kind": "lge_psir"}),
                        labels, aha_img, {}, gt_psir, image_type=("ORIGINAL", "PRIMARY", "R", "PSIR"), dicom=dic,
                        rescale_intercept=-4096.0, series_number=_series_number("lge_psir"))
        mag_s = Series("lge_mag", "lge_magnitude", desc_m,
                       self._image(mag, grid, sequence=False, meta={"SeriesDescription": desc_m, "kind": "lge_magnitude"}),
                       labels, aha_img, {}, gt, image_type=("ORIGINAL", "PRIMARY", "M", "NONE"), dicom=dic,
                       series_number=_series_number("lge_mag"))
        return psir_s, mag_s

    def lge_slice(self, k: int) -> Series:
        """One LGE PSIR slice (fast path for training loops)."""
        return self.lge([k])[0]

    # ---- VNE-like -----------------------------------------------------------------------------------
    def vne(self, slices: list[int] | None = None) -> Series:
        """VNE-like (LGE-like contrast from native data) SAX stack on the cine geometry.

        Virtual native enhancement is a network output computed from native T1 maps and
        cine; here it is emulated as an LGE-like image of the same anatomy with perfect
        nulling, scar contrast reduced by 30 %, a greyer blood pool and extra smoothing.
        """
        s = self.s
        ks = list(range(s.n_slices)) if slices is None else list(slices)
        grid = self.sax if slices is None else _subgrid(self.sax, ks)
        rng = self._rng("vne")
        trep = 2.0 * s.rr_ms
        ts = s.tissues()
        ts.lam[T.SCAR] = ts.lam[T.MYOCARDIUM] + 0.7 * (ts.lam[T.SCAR] - ts.lam[T.MYOCARDIUM])
        post = ts.t1_post(s.blood_t1_post_ms)
        post[list(BLOOD_CODES)] *= 1.25
        ti = seq.null_ti(float(post[T.MYOCARDIUM]), trep)
        scale = _SCALE["vne"] * s.gain
        out = np.zeros((len(ks), s.matrix, s.matrix), F32)
        lab, aha_m = np.zeros(out.shape, np.uint8), np.zeros(out.shape, np.uint8)
        for j, k in enumerate(ks):
            r = self.render(self.sax, k, self.t_mid)
            tis = r["tissue"]
            pd = self.ts.pd[tis] * (1.0 + 0.03 * r["texture"]) * scale
            out[j] = np.abs(seq.ir_gre(pd, post[tis], ts.t2s[tis], ti, trep))
            lab[j], aha_m[j] = TISSUE_TO_LABEL[tis], r["aha"]
        out = art.acquire(out, art.kspace_window((s.matrix, s.matrix), s.pixel_mm, 1.8 if s.psf else None, 0.9))
        blood = lab == 2
        ref = float(out[blood].mean()) if blood.any() else float(out.max() / 3)
        snr = 30.0 if np.isfinite(s.snr["lge"]) else float("inf")
        sigma = self._sigma(ref, snr)
        img = art.rician(out, sigma, rng)
        desc = "VNE SAX"
        per_slice = [self._slice_truth(self.sax, k, self.t_mid, None, lab[j], aha_m[j]) for j, k in enumerate(ks)]
        gt = {"emulation": "LGE-like contrast from the native tissue model (perfect nulling, scar contrast x0.7)",
              "noise_sigma": sigma, "artefacts": {"noise": round(snr_severity(snr), 4), "blur": 0.36}, "slices": per_slice}
        return Series("vne", "vne", desc,
                      self._image(img, grid, sequence=False, meta={"SeriesDescription": desc, "kind": "vne"}),
                      self._image(lab, grid, sequence=False, meta={"labels": LABELS}),
                      self._image(aha_m, grid, sequence=False, meta={}), {}, gt,
                      image_type=("DERIVED", "SECONDARY", "VNE", "NONE"),
                      dicom={**self._base_dicom(2 * s.rr_ms, 3.0, 25.0), "TriggerTime": round(self.t_mid * s.rr_ms, 2)},
                      series_number=_series_number("vne"))

    # ---- left-atrial 3D LGE ---------------------------------------------------------------------------
    def la_lge(self, matrix: int = 160, n_slices: int = 44, progress: ProgressCallback | None = None) -> Series:
        """Axial 3-D LGE of the left atrium (1.25 x 1.25 x 2.5 mm) with quality attributes 1-5."""
        s = self.s
        grid = la_grid(s, self.anat, matrix=matrix, n_slices=n_slices)
        rng = self._rng("la")
        ts = s.tissues()
        enh = float(rng.uniform(0.2, 1.6))  # aortic wall / valve enhancement (contrast dose and timing)
        ts.lam[T.VESSEL_WALL] *= enh
        ts.lam[T.VALVE] *= enh
        blood_post = s.blood_t1_post_ms * 1.15  # ~20 min after contrast
        post = ts.t1_post(blood_post)
        trep = s.rr_ms  # 3-D LGE: one inversion per heartbeat (navigator gated)
        ti_null = seq.null_ti(float(post[T.MYOCARDIUM]), trep)
        ti = ti_null * (1.0 + s.lge_ti_error)
        scale = _SCALE["la"] * s.gain
        sig = np.zeros((n_slices, matrix, matrix), F32)
        lab = np.zeros(sig.shape, np.uint8)
        tis_all = np.zeros(sig.shape, np.uint8)
        coil = np.zeros(sig.shape, F32)
        for k in range(n_slices):
            report(progress, "la", k, n_slices, f"slice {k + 1}/{n_slices}")
            p = grid.points(k)
            tis, _, _ = self.anat.tissue_at(p, self.t_mid)
            pd = self.ts.pd[tis] * (1.0 + 0.04 * self.tex(p))
            sig[k] = seq.ir_gre(pd, post[tis], ts.t2s[tis], ti, trep).reshape(matrix, matrix) * scale
            lab[k] = TISSUE_TO_LABEL[tis].reshape(matrix, matrix)
            tis_all[k] = tis.reshape(matrix, matrix)
            coil[k] = self._coil(p).reshape(matrix, matrix)
        # contrast attributes are measured before blurring (nulling and enhancement are about
        # the inversion time and contrast timing; blur is the sharpness attribute)
        la_blood = tis_all == T.LA_BLOOD
        ref = float(np.abs(sig[la_blood]).mean()) if la_blood.any() else float(np.abs(sig).max() / 3)
        myo = tis_all == T.MYOCARDIUM
        myo_rel = float(np.abs(sig[myo]).mean() / max(ref, 1e-6)) if myo.any() else 0.0
        wall = np.isin(tis_all, (T.VESSEL_WALL, T.VALVE))
        wall_rel = float((np.abs(sig[wall]).mean() - np.abs(sig[myo]).mean()) / max(ref, 1e-6)) if wall.any() and myo.any() else 0.0
        # residual respiratory motion (navigator window) + blur artefact: Gaussian in-plane and through-plane
        edge_sigma = float(np.hypot(0.5, 2.5 * self._severity("blur")) + 1.0 * self._severity("motion"))
        sig = ndimage.gaussian_filter(sig, (0.4 * edge_sigma / grid.spacing[2], edge_sigma / grid.spacing[1],
                                            edge_sigma / grid.spacing[0]))
        snr = s.snr["la"]
        sigma = self._sigma(ref, snr)
        img = art.rician(sig * coil, sigma, rng)
        quality = la_quality(myo_rel, edge_sigma, wall_rel, snr)
        vox = float(np.prod(grid.spacing)) / 1000.0
        fib = lab == 8
        wall_l = (lab == 7) | fib
        desc = "LA 3D LGE"
        gt = {"inversion_time_ms": ti, "null_inversion_time_ms": ti_null, "blood_t1_post_ms": blood_post,
              "enhancement_factor": enh, "edge_sigma_mm": edge_sigma, "noise_sigma": sigma, "snr_blood": snr,
              "la_blood_volume_ml_voxels": float(np.sum(lab == 6) * vox), "la_body_volume_ml_model": s.la_volume_ml,
              "la_wall_volume_ml": float(np.sum(wall_l) * vox),
              "la_fibrosis_percent_of_wall": float(100.0 * fib.sum() / max(wall_l.sum(), 1)),
              "af": s.af, "quality": quality,
              "slices_with_la": [int(k) for k in range(n_slices) if np.any(lab[k] == 6)],
              "artefacts": {"nulling": round(self._severity("nulling"), 4), "blur": round(self._severity("blur"), 4),
                            "motion": round(self._severity("motion"), 4), "noise": round(snr_severity(snr), 4)}}
        dic = {**self._base_dicom(4.5, 2.1, 20.0), "InversionTime": round(ti, 2), "MRAcquisitionType": "3D",
               "TriggerTime": round(self.t_mid * s.rr_ms, 2), "SliceThickness": grid.spacing[2],
               "ScanningSequence": "IR\\GR", "SequenceVariant": "SP\\OSP"}
        return Series("la_lge", "la_lge", desc,
                      self._image(img, grid, sequence=False, meta={"SeriesDescription": desc, "kind": "la_lge"}),
                      self._image(lab, grid, sequence=False, meta={"labels": LABELS}), None,
                      {"tissue": self._image(tis_all, grid, sequence=False, meta={"tissues": tissue_names()})}, gt,
                      dicom=dic, series_number=_series_number("la_lge"))

    # ---- whole study ---------------------------------------------------------------------------------------
    def study(self, options: PhantomOptions | None = None, progress: ProgressCallback | None = None) -> Study:
        """Every series of the subject and the study-level truth."""
        opt = options or PhantomOptions()
        series: dict[str, Series] = {}
        series["cine"] = self.cine(progress=progress)
        conditions = ["native"] + (["post"] if opt.post else []) + (["stress"] if opt.stress else [])
        steps = [(c, p) for c in conditions for p in POSITIONS]
        for i, (cond, pos) in enumerate(steps):
            report(progress, "T1 mapping", i, len(steps), f"{cond} {pos}")
            irw = self.irw(pos, cond)
            series[irw.name] = irw
            t1 = self.t1map(irw)
            series[t1.name] = t1
        report(progress, "T1 mapping", len(steps), len(steps), "done")
        psir, mag = self.lge(progress=progress)
        series[psir.name], series[mag.name] = psir, mag
        series["vne"] = self.vne()
        if opt.la:
            series["la_lge"] = self.la_lge(matrix=opt.la_matrix, progress=progress)
        return Study(self.s, series, self.study_truth(series))

    def study_truth(self, series: dict[str, Series]) -> dict[str, Any]:
        """Study-level truth: parameters, label/tissue tables, volumes, per-series summaries."""
        s = self.s
        vols = model_volumes(self.anat, self.t_mid)
        lge = series.get("lge_psir")
        stack = {}
        if lge is not None:
            lab = lge.labels.array
            vox = s.pixel_mm ** 2 * s.slice_spacing_mm / 1000.0
            myo = float(np.sum((lab == 1) | (lab == 3)) * vox)
            scar = float(np.sum(lab == 3) * vox)
            stack = {"myocardium_ml": myo, "scar_ml": scar, "scar_percent": 100.0 * scar / max(myo, 1e-9),
                     "method": "sum of mask areas x slice spacing over the LGE stack"}
        truth = {
            "phantom_version": PHANTOM_VERSION, "seed": s.seed, "synthetic": True,
            "subject": s.to_dict(),
            "label_table": {str(k): v for k, v in LABELS.items()},
            "tissue_codes": {str(k): v for k, v in tissue_names().items()},
            "tissues_native_and_post": self.ts.table(s.blood_t1_post_ms),
            "aha_territories": {"LAD": [1, 2, 7, 8, 13, 14, 17], "RCA": [3, 4, 9, 10, 15], "LCx": [5, 6, 11, 12, 16]},
            "scar": {"type": s.scar.kind if s.scar else "none", "pattern": s.scar.pattern if s.scar else None,
                     "territory": s.scar.territory if s.scar else None,
                     "model_volume_ml": vols["scar_ml"], "model_percent_of_myocardium": vols["scar_percent"],
                     "stack_mask": stack},
            "lv_model_volumes_mid_diastole_ml": vols,
            "stress": {"territory": s.stress_territory, "reactivity_by_aha_segment": s.stress_reactivity},
            "artefacts": s.artefacts, "artefact_meaning": ARTEFACTS,
            "landmark_conventions": {
                "angles": "counter-clockwise in the standard SAX display (anterior up, RV left)",
                "pixel_col_row": "continuous (col, row) index of the series grid; pixel centres at integers",
                "lps_mm": "DICOM patient coordinates (LPS), mm"},
            "displacement_convention": "frame f at pixel x shows the reference anatomy (masks) at x + d_f(x); "
                                       "inverse v_f: corrected(x) = frame_f(x + v_f(x)); units pixels [d_row, d_col]",
            "series": {},
        }
        for name, ser in series.items():
            truth["series"][name] = {"description": ser.description, "kind": ser.kind,
                                     "series_number": ser.series_number, **ser.truth}
        return _json(truth)


def _subgrid(grid: Grid, ks: list[int]) -> Grid:
    """Grid of a subset of equally spaced slices (geometry of the first, spacing from the list)."""
    step = (ks[1] - ks[0]) if len(ks) > 1 else 1
    if len(ks) > 1 and any(b - a != step for a, b in zip(ks, ks[1:])):
        raise InputError(f"slice subset must be equally spaced; got {ks}")
    return Grid(grid.slice_origin(ks[0]), grid.col_dir, grid.row_dir, grid.slice_dir, grid.rows, grid.cols, len(ks),
                (grid.spacing[0], grid.spacing[1], grid.spacing[2] * step))


_NUMBERS = {"cine": 2, "lge_psir": 40, "lge_mag": 41, "vne": 45, "la_lge": 50}


def _series_number(name: str) -> int:
    if name in _NUMBERS:
        return _NUMBERS[name]
    kind, cond, pos = name.split("_")
    base = {"native": 10, "stress": 20, "post": 30}[cond] + 2 * POSITIONS.index(pos)
    return base + (1 if kind == "t1map" else 0)


def make_study(seed: int, options: PhantomOptions | None = None, progress: ProgressCallback | None = None) -> Study:
    """Sample a subject from ``seed`` and generate its whole study in memory."""
    opt = options or PhantomOptions()
    return Phantom(sample_subject(seed, opt)).study(opt, progress)


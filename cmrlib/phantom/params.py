"""Subject parameters of the phantom, sampled from a seed (phantom layer a).

:func:`sample_subject` turns a seed and :class:`PhantomOptions` into a
:class:`SubjectParams`: anatomy (LV / RV / LA geometry, position and orientation in the
chest), physiology (heart rate, contraction), tissue properties at the chosen field
strength, scar, stress reactivity and the acquisition plan (slice stack, artefacts).
Ranges come from docs/methods/phantom-reference.md. Sampling is cheap (no
rendering), so training loops can draw thousands of subjects.

Conventions: lengths in mm, angles in degrees, times in ms. Angles around the LV are
measured counter-clockwise in the standard short-axis display (viewed from the apex,
anterior up, RV on the left): 0° = lateral (image right), 90° = anterior (up).
"""
from __future__ import annotations

import dataclasses
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError
from .tissue import T, TissueSet

#: AHA segments of each coronary territory (phantom-reference.md).
TERRITORIES: dict[str, tuple[int, ...]] = {
    "LAD": (1, 2, 7, 8, 13, 14, 17),
    "RCA": (3, 4, 9, 10, 15),
    "LCx": (5, 6, 11, 12, 16),
}
SCAR_TYPES = ("ischemic", "nonischemic", "none")
#: native T1 ranges (ms) the subjects are drawn from, per field strength (phantom-reference.md)
NATIVE_T1_RANGES: dict[float, dict[T, tuple[float, float]]] = {
    1.5: {T.MYOCARDIUM: (950, 1050), T.LV_BLOOD: (1500, 1650), T.LIVER: (550, 620), T.SPLEEN: (1000, 1100),
          T.FAT: (250, 300), T.MUSCLE: (1000, 1100)},
    3.0: {T.MYOCARDIUM: (1150, 1250), T.LV_BLOOD: (1800, 1950), T.LIVER: (780, 850), T.SPLEEN: (1250, 1350),
          T.FAT: (350, 400), T.MUSCLE: (1300, 1450)},
}
IRW_SCHEMES = ("ShMOLLI", "MOLLI 5(3)3", "MOLLI 3(3)3(3)5", "MOLLI 4(1)3(1)2")
#: IRW signal models: "sequence" = Bloch simulation of the whole breath-hold (cmrlib.t1.sequence:
#: bSSFP readouts, inversion efficiency, real recovery between inversions); "ideal" = the
#: Look-Locker formula with full recovery before every inversion (what a plain fit reads exactly)
IRW_MODELS = ("sequence", "ideal")

#: artefact names and what severity 1 means (0 = none).
ARTEFACTS: dict[str, str] = {
    "motion": "respiratory / non-rigid motion between IRW frames: up to ~10 mm drift + 3 mm non-rigid",
    "misregistration": "rest/stress and cine/LGE misregistration: up to 8 mm in-plane, 8 deg, 8 mm through-plane",
    "noise": "Rician noise; severity derived from SNR (1 = SNR 5, 0 = SNR >= 60 or noise-free)",
    "nulling": "LGE inversion time off the myocardial null by 5-40 % either way (grey myocardium)",
    "ghosting": "parallel-imaging / motion ghosts along phase encoding, up to 35 % amplitude",
    "blur": "extra blur, Gaussian PSF sigma up to 2.5 mm",
    "bright_blood": "LGE blood pool too bright (blood T1 shortened up to 40 %), subendocardial scar less conspicuous",
    "banding": "bSSFP off-resonance dark bands (field offset up to ~1.2 band spacings across the FOV, 0.5 at the heart)",
}

#: default probability that an artefact is present in a randomly drawn subject, and the
#: severity range when present. Calibrated so that about a quarter of LV LGE slices are
#: equivocal (LGE likelihood 26-74, see labels.lge_likelihood).
_ARTEFACT_PRIOR: dict[str, tuple[float, float, float]] = {
    "motion": (0.5, 0.1, 1.0),
    "misregistration": (0.7, 0.05, 0.6),
    "nulling": (0.2, 0.15, 1.0),
    "ghosting": (0.2, 0.15, 1.0),
    "blur": (0.2, 0.1, 1.0),
    "bright_blood": (0.15, 0.2, 1.0),
    "banding": (0.3, 0.2, 1.0),
}


@dataclass
class PhantomOptions:
    """What to generate. ``None`` means "draw at random from the seed".

    field_t: 1.5 or 3 (T). scar: ischemic | nonischemic | none. phenotype: normal | hcm.
    stress: also make stress IRW/T1 maps. post: make post-contrast IRW/T1 maps.
    stress_territory: LAD | LCx | RCA | none.
    motion: IRW motion severity 0..1. snr: myocardial (cine/IRW) / blood (LGE) SNR;
    ``inf`` gives noise-free images. artefacts: explicit severities (0..1) by name
    (see :data:`ARTEFACTS`); ``clean=True`` sets every artefact to 0 and noise off.
    matrix: in-plane matrix (square); pixel_mm: in-plane pixel (default max(1.4,
    300 / matrix) mm, i.e. a field of view of at least 300 mm). n_phases: cine phases (20-30). n_slices: SAX slices (8-14).
    scheme: native IRW scheme (one of :data:`IRW_SCHEMES`). la: make the LA 3D LGE volume
    (``la_matrix`` x ``la_matrix`` x 44 voxels of 1.25 x 1.25 x 2.5 mm).
    af: atrial fibrillation substrate (enlarged, fibrotic LA). psf: apply the acquisition
    point-spread function (acquired resolution coarser than the reconstructed pixels and
    the reconstruction filter); False renders ideal, partial-volume-free images (tests).
    irw_model: IRW signal model (:data:`IRW_MODELS`; default the sequence-level simulation).
    rr_sd_ms: beat-to-beat R-R variability (SD, ms) during the IRW breath-holds (default 0).
    """

    field_t: float | None = None
    scar: str | None = None
    phenotype: str | None = None
    stress: bool = False
    post: bool = True
    stress_territory: str | None = None
    motion: float | None = None
    snr: float | None = None
    artefacts: dict[str, float] = field(default_factory=dict)
    clean: bool = False
    matrix: int = 256
    pixel_mm: float | None = None
    n_phases: int | None = None
    n_slices: int | None = None
    slice_thickness_mm: float | None = None
    scheme: str | None = None
    la: bool = True
    la_matrix: int = 160
    af: bool | None = None
    psf: bool = True
    irw_model: str = "sequence"
    rr_sd_ms: float = 0.0

    def validate(self) -> None:
        """Raise InputError for values outside what the phantom can make."""
        if self.field_t is not None and self.field_t not in (1.5, 3.0, 3):
            raise InputError(f"field strength must be 1.5 or 3 (T); got {self.field_t}")
        if self.scar is not None and self.scar not in SCAR_TYPES:
            raise InputError(f"scar must be one of {', '.join(SCAR_TYPES)}; got {self.scar!r}")
        if self.phenotype is not None and self.phenotype not in ("normal", "hcm"):
            raise InputError(f"phenotype must be normal or hcm; got {self.phenotype!r}")
        if self.stress_territory is not None and self.stress_territory not in (*TERRITORIES, "none"):
            raise InputError(f"stress territory must be LAD, LCx, RCA or none; got {self.stress_territory!r}")
        if self.scheme is not None and self.scheme not in IRW_SCHEMES:
            raise InputError(f"IRW scheme must be one of {', '.join(IRW_SCHEMES)}; got {self.scheme!r}")
        if self.irw_model not in IRW_MODELS:
            raise InputError(f"IRW signal model must be one of {', '.join(IRW_MODELS)}; got {self.irw_model!r}")
        if not 0.0 <= self.rr_sd_ms <= 200.0:
            raise InputError(f"beat-to-beat R-R variability must be 0..200 ms; got {self.rr_sd_ms}")
        for name, sev in self.artefacts.items():
            if name not in ARTEFACTS:
                raise InputError(f"unknown artefact {name!r}; known: {', '.join(ARTEFACTS)}")
            if not 0.0 <= float(sev) <= 1.0:
                raise InputError(f"artefact severity must be 0..1; got {name}={sev}")
        if self.motion is not None and not 0.0 <= self.motion <= 1.0:
            raise InputError(f"motion severity must be 0..1; got {self.motion}")
        if self.snr is not None and not self.snr > 0:
            raise InputError(f"SNR must be positive (or inf for noise-free); got {self.snr}")
        if not 32 <= self.matrix <= 512:
            raise InputError(f"matrix must be 32..512 pixels; got {self.matrix}")
        if not 64 <= self.la_matrix <= 320:
            raise InputError(f"LA matrix must be 64..320 pixels; got {self.la_matrix}")
        if self.pixel_mm is not None and not 0.5 <= self.pixel_mm <= 6.0:
            raise InputError(f"pixel size must be 0.5..6 mm; got {self.pixel_mm}")
        if self.n_phases is not None and not 2 <= self.n_phases <= 60:
            raise InputError(f"cine phases must be 2..60; got {self.n_phases}")
        if self.n_slices is not None and not 1 <= self.n_slices <= 200:
            raise InputError(f"slices must be 1..200; got {self.n_slices}")
        if self.slice_thickness_mm is not None and not 1.0 <= self.slice_thickness_mm <= 12.0:
            raise InputError(f"slice thickness must be 1..12 mm; got {self.slice_thickness_mm}")


@dataclass
class ScarParams:
    """Scar geometry in heart coordinates (angles deg CCW, z mm from the mitral plane,
    transmural depth 0 = endocardium .. 1 = epicardium)."""

    kind: str  # ischemic | nonischemic
    pattern: str  # subendocardial | transmural | midwall | patchy | rv_insertion
    territory: str | None  # LAD / LCx / RCA for ischemic scar
    centre_deg: float
    halfwidth_deg: float
    z_from_mm: float
    z_to_mm: float
    transmurality: float  # ischemic: max depth reached from the endocardium (0..1)
    depth_lo: float  # non-ischemic band: inner depth (0..1)
    depth_hi: float  # non-ischemic band: outer depth (0..1)
    blobs: list[tuple[float, float, float, float, float]]  # patchy: (deg, z mm, depth, radius deg, radius mm)
    wobble: list[tuple[float, float, float, float]]  # border irregularity: (amp, k_theta, k_z, phase)


@dataclass
class SubjectParams:
    """Everything that defines one phantom subject. Plain numbers; see module docstring for units."""

    seed: int
    field_t: float
    phenotype: str
    heart_rate_bpm: float
    # placement in patient coordinates (LPS mm)
    long_axis: np.ndarray  # unit vector base -> apex
    base_centre: np.ndarray  # LV centre on the mitral plane
    fov_rotation_deg: float  # in-plane rotation of the planned SAX field of view
    fov_offset_mm: tuple[float, float]  # FOV centre offset from the LV axis (col, row) mm
    body_semi_axes: tuple[float, float]  # (L-R, A-P) half widths mm
    subcut_fat_mm: float
    dome_heights_mm: tuple[float, float]  # right, left diaphragm dome tops (S coordinate)
    # LV geometry at end-diastole
    lv_length_mm: float  # mitral plane to endocardial apex
    apex_wall_mm: float
    endo_radius_mm: float  # basal endocardial radius (half the inner diameter)
    ellipticity: float
    ellipse_angle_deg: float
    profile_power: float
    wall_mm: float  # basal wall thickness, non-septal
    septal_extra_mm: float  # HCM septal predominance (0 for normal)
    septal_centre_deg: float
    septal_width_deg: float
    # contraction
    es_radius_ratio: float
    thickening: float
    long_shortening: float
    t_es: float  # end-systole as fraction of RR
    # base / outflow
    lvot_centre_deg: float
    lvot_halfwidth_deg: float
    lvot_depth_mm: float
    # RV
    rv_anterior_deg: float  # anterior insertion angle
    rv_span_deg: float  # inferior insertion = anterior + span (through the septum)
    rv_width_mm: float
    rv_wall_mm: float
    rv_length_fraction: float
    # papillary muscles
    pm_angles_deg: tuple[float, float]
    pm_radius_mm: float
    # epicardial fat
    epi_fat_mm: float
    # LA
    la_volume_ml: float
    la_wall_mm: float
    la_fibrosis_fraction: float
    af: bool
    # tissue
    hct: float
    ecv_myo: float
    ecv_scar: float
    scar_t1_increase: float  # fraction over myocardial native T1
    blood_t1_post_ms: float
    ba_ratio: float  # MOLLI B/A of myocardium
    shmolli_factor: float  # ShMOLLI T1 / MOLLI T1
    tissue_jitter: dict[str, dict[int, float]]
    # scar and stress
    scar: ScarParams | None
    stress_territory: str | None
    stress_reactivity: dict[int, float]  # AHA segment -> fractional T1 rise under stress
    blood_stress_change: float
    # acquisition plan
    n_slices: int
    slice_thickness_mm: float
    slice_gap_mm: float
    first_slice_z_mm: float
    n_phases: int
    matrix: int
    pixel_mm: float
    scheme: str
    snr: dict[str, float]  # per series family: cine, irw, lge, la (inf = noise-free)
    artefacts: dict[str, float]
    misregistration: dict[str, list[float]]  # pair -> [d_col mm, d_row mm, rot deg, through-plane mm]
    lge_ti_error: float  # fractional TI offset from the myocardial null used by LGE (bias + nulling error)
    lge_ti_bias: float  # the operator's intended offset (no nulling artefact), slightly short
    gain: float  # receiver gain (arbitrary)
    psf: bool = True  # acquisition point-spread function on/off
    irw_model: str = "sequence"  # IRW signal model (IRW_MODELS)
    rr_sd_ms: float = 0.0  # beat-to-beat R-R variability (SD, ms) of the IRW breath-holds

    # ---- derived ---------------------------------------------------------------------
    @property
    def rr_ms(self) -> float:
        """R-R interval (ms)."""
        return 60000.0 / self.heart_rate_bpm

    @property
    def slice_spacing_mm(self) -> float:
        return self.slice_thickness_mm + self.slice_gap_mm

    @property
    def epi_length_mm(self) -> float:
        """Mitral plane to the epicardial apex (mm)."""
        return self.lv_length_mm + self.apex_wall_mm

    def slice_z(self) -> np.ndarray:
        """Distance of each SAX slice centre from the mitral plane along the long axis (mm)."""
        return self.first_slice_z_mm + self.slice_spacing_mm * np.arange(self.n_slices)

    def tissues(self) -> TissueSet:
        """Native tissue properties of this subject (ms)."""
        ts = TissueSet(self.field_t, self.tissue_jitter)
        lam_myo = self.ecv_myo / (1.0 - self.hct)
        lam_scar = self.ecv_scar / (1.0 - self.hct)
        for code in (T.MYOCARDIUM, T.PAPILLARY, T.RV_MYOCARDIUM, T.LA_WALL):
            ts.lam[code] = lam_myo
        for code in (T.SCAR, T.LA_FIBROSIS):
            ts.lam[code] = lam_scar
            ts.t1[code] = ts.t1[T.MYOCARDIUM] * (1.0 + self.scar_t1_increase)
        return ts

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every parameter."""
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, np.ndarray):
                v = [round(float(x), 6) for x in v]
            elif f.name == "scar" and v is not None:
                v = dataclasses.asdict(v)
            elif f.name == "tissue_jitter":
                v = {k: {str(int(c)): float(x) for c, x in d.items()} for k, d in v.items()}
            elif f.name == "stress_reactivity":
                v = {str(k): round(float(x), 5) for k, x in v.items()}
            out[f.name] = v
        out["rr_ms"] = self.rr_ms
        out["slice_spacing_mm"] = self.slice_spacing_mm
        out["epi_length_mm"] = self.epi_length_mm
        out["slice_z_mm"] = [round(float(z), 4) for z in self.slice_z()]
        return out


#: the stress cohort's global vasodilator response: (share, low, high) of the factor on the
#: segment reactivities — adequate (up to high-dose and dobutamine responses), globally blunted
#: (microvascular disease, hypertrophy, weaker agents such as regadenoson) and inadequate or
#: paradoxical (caffeine). Chosen so that the cohort's mean dT1 is the paper's cohort's, 3.6 ±
#: 3.3 % (thesis ch. 3; phantom seeds 9500–9699: 3.7 ± 3.3 %, 5th–95th percentile −1.7 … 10.4 %)
STRESS_RESPONSE_MIX = ((0.6, 1.0, 2.4), (0.2, 0.3, 1.0), (0.2, -0.8, 0.2))


def stress_response(seed: int) -> float:
    """The subject's global stress-response factor (1 = the segment reactivities as drawn)."""
    rng = np.random.default_rng(stable_seed(int(seed), "stress_response"))
    shares = np.array([m[0] for m in STRESS_RESPONSE_MIX])
    low, high = STRESS_RESPONSE_MIX[int(rng.choice(len(shares), p=shares / shares.sum()))][1:]
    return float(rng.uniform(low, high))


def stable_seed(*parts: Any) -> int:
    """A 32-bit seed from strings/numbers, stable across runs and Python versions."""
    return zlib.crc32("|".join(str(p) for p in parts).encode()) & 0x7FFFFFFF


def subject_seeds(base_seed: int, count: int) -> list[int]:
    """``count`` independent subject seeds derived from ``base_seed``."""
    ss = np.random.SeedSequence(int(base_seed))
    return [int(s.generate_state(1)[0] & 0x7FFFFFFF) for s in ss.spawn(count)]


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def snr_severity(snr: float) -> float:
    """Noise severity 0..1 from an SNR (1 at SNR <= 5, 0 at SNR >= 60 or noise-free)."""
    if not np.isfinite(snr):
        return 0.0
    return float(np.clip((60.0 - snr) / 55.0, 0.0, 1.0))


def _sample_scar(rng: np.random.Generator, kind: str, rv_ant: float, rv_span: float, length: float,
                 epi_length: float) -> ScarParams:
    """Scar geometry: ischaemic in a coronary territory, or a non-ischaemic pattern."""
    wobble = [(float(rng.uniform(0.05, 0.2)), float(rng.integers(1, 4)), float(rng.uniform(0.02, 0.08)),
               float(rng.uniform(0, 2 * np.pi))) for _ in range(3)]
    if kind == "ischemic":
        territory = str(rng.choice(list(TERRITORIES)))
        # territory centre angles relative to the anterior insertion (AHA 60-degree sectors)
        centre_rel = {"LAD": float(rng.uniform(-20, 60)), "RCA": float(rng.uniform(140, 175)),
                      "LCx": float(rng.uniform(225, 285))}[territory]
        transmural = rng.random() < 0.45
        if territory == "LAD":  # LAD infarcts reach the apex
            z0, z1 = rng.uniform(0.25, 0.55) * length, epi_length
        else:
            z0 = rng.uniform(0.0, 0.3) * length
            z1 = z0 + rng.uniform(0.35, 0.65) * length
        return ScarParams(
            kind="ischemic", pattern="transmural" if transmural else "subendocardial", territory=territory,
            centre_deg=float((rv_ant + centre_rel) % 360), halfwidth_deg=float(rng.uniform(25, 55)),
            z_from_mm=float(z0), z_to_mm=float(z1),
            transmurality=float(rng.uniform(0.85, 1.0) if transmural else rng.uniform(0.35, 0.7)),
            depth_lo=0.0, depth_hi=0.0, blobs=[], wobble=wobble)
    pattern = str(rng.choice(["midwall", "patchy", "rv_insertion"], p=[0.4, 0.3, 0.3]))
    blobs: list[tuple[float, float, float, float, float]] = []
    if pattern == "midwall":  # septal mid-wall stripe (dilated cardiomyopathy, myocarditis)
        centre = (rv_ant + rv_span / 2.0) % 360
        halfwidth = float(rng.uniform(30, 60))
        z0, z1 = rng.uniform(0.05, 0.3) * length, rng.uniform(0.55, 0.85) * length
        lo = float(rng.uniform(0.3, 0.42))
        hi = float(lo + rng.uniform(0.15, 0.3))
    elif pattern == "rv_insertion":  # hypertrophic cardiomyopathy / pulmonary hypertension
        centre, halfwidth = rv_ant, float(rng.uniform(10, 18))
        z0, z1 = rng.uniform(0.0, 0.2) * length, rng.uniform(0.45, 0.8) * length
        lo, hi = float(rng.uniform(0.2, 0.35)), float(rng.uniform(0.7, 0.9))
        for a in (rv_ant, rv_ant + rv_span):
            for _ in range(2):
                blobs.append((float(a + rng.normal(0, 5)), float(rng.uniform(z0, z1)), float(rng.uniform(0.35, 0.65)),
                              float(rng.uniform(10, 18)), float(rng.uniform(8, 16))))
    else:  # patchy (sarcoid, myocarditis): blobs anywhere, epicardial to mid-wall
        centre, halfwidth = float(rng.uniform(0, 360)), 180.0
        z0, z1 = 0.0, length
        lo, hi = 0.0, 0.0
        for _ in range(int(rng.integers(3, 7))):
            blobs.append((float(rng.uniform(0, 360)), float(rng.uniform(0.05, 0.85) * length),
                          float(rng.uniform(0.4, 0.85)), float(rng.uniform(15, 35)), float(rng.uniform(8, 18))))
    return ScarParams(kind="nonischemic", pattern=pattern, territory=None, centre_deg=float(centre % 360),
                      halfwidth_deg=halfwidth, z_from_mm=float(z0), z_to_mm=float(z1), transmurality=0.0,
                      depth_lo=lo, depth_hi=hi, blobs=blobs, wobble=wobble)


def sample_subject(seed: int, options: PhantomOptions | None = None) -> SubjectParams:
    """Draw one subject from ``seed`` honouring the fixed choices in ``options``."""
    opt = options or PhantomOptions()
    opt.validate()
    rng = np.random.default_rng(int(seed))
    u = rng.uniform
    field_t = float(opt.field_t) if opt.field_t is not None else float(rng.choice([1.5, 3.0], p=[0.6, 0.4]))
    phenotype = opt.phenotype or ("hcm" if rng.random() < 0.15 else "normal")
    hr = float(u(55, 90))
    scale = float(u(0.9, 1.1))  # overall heart size

    # ---- placement: long axis points to the patient's left, anterior, inferior ----------
    axis = _unit(np.array([0.57, -0.47, -0.62]) + rng.normal(0, 0.07, 3))
    base_centre = np.array([18.0, -22.0, 22.0]) + rng.normal(0, [6, 5, 8])

    # ---- LV ----------------------------------------------------------------------------
    hcm = phenotype == "hcm"
    # end-diastolic inner diameter 42-58 mm (HCM: smaller cavity), ES 25-40 mm
    endo_r = float(u(21.0, 29.0)) if not hcm else float(u(19.0, 24.0))
    es_d = float(u(max(25.0, 1.1 * endo_r), min(40.0, 1.45 * endo_r))) if not hcm else float(u(12.0, 22.0))
    wall = float(u(6.5, 10.0)) if not hcm else float(u(9.0, 12.0))
    septal_extra = float(u(6.0, 13.0)) if hcm else 0.0
    lv_len = float(u(74.0, 88.0))  # + apical wall: long axis 80-95 mm
    rv_ant = float(u(100.0, 135.0))
    rv_span = float(u(110.0, 140.0))
    thickening = float(u(0.4, 0.6)) if not hcm else float(u(0.2, 0.4))

    # ---- scar ------------------------------------------------------------------------------
    scar_kind = opt.scar or str(rng.choice(SCAR_TYPES, p=[0.4, 0.3, 0.3]))
    apex_wall = float(u(5.0, 8.0))
    scar = None if scar_kind == "none" else _sample_scar(rng, scar_kind, rv_ant, rv_span, lv_len, lv_len + apex_wall)

    # ---- stress reactivity per AHA segment -----------------------------------------------
    if opt.stress_territory is not None:
        territory = None if opt.stress_territory == "none" else opt.stress_territory
    elif scar is not None and scar.territory and rng.random() < 0.7:
        territory = scar.territory
    else:
        territory = str(rng.choice([*TERRITORIES, "none"], p=[0.25, 0.2, 0.2, 0.35]))
        territory = None if territory == "none" else territory
    cad = territory is not None or (scar is not None and scar.kind == "ischemic")
    # the subject's global response to the stress agent (its own stream, so drawing it changes
    # nothing else of the subject): stress cohorts mix adequate vasodilation with globally blunted
    # reserve (microvascular disease, hypertrophy, weaker agents such as regadenoson) and
    # inadequate stress (caffeine) — the spread a dT1 cohort has (STRESS_RESPONSE_MIX). A
    # territory chosen by the user keeps the drawn reactivities, so its defect shows as asked.
    response = stress_response(seed) if opt.stress_territory is None else 1.0
    reactivity = {}
    for seg in range(1, 18):
        if territory is not None and seg in TERRITORIES[territory]:
            r = u(0.0, 0.02)
        elif cad:
            r = u(0.03, 0.04)
        else:
            r = u(0.04, 0.07)
        reactivity[seg] = float(r) * response

    # ---- stack ------------------------------------------------------------------------------
    thickness = float(opt.slice_thickness_mm or rng.choice([6.0, 7.0, 8.0, 8.0, 10.0]))
    gap = float(rng.choice([0.0, 1.0, 2.0, 2.0, 4.0])) if opt.slice_thickness_mm is None else 0.0
    spacing = thickness + gap
    epi_len = lv_len + apex_wall
    first_z = float(u(-1.0, 0.4) * spacing)
    if opt.n_slices is not None:
        n_slices = int(opt.n_slices)
    else:
        span = epi_len + float(u(-4.0, 10.0)) - first_z
        n_slices = int(np.clip(np.ceil(span / spacing), 8, 14))

    # ---- tissue ------------------------------------------------------------------------------
    # native T1 drawn inside the reference ranges (phantom-reference.md, MOLLI-type)
    jitter: dict[str, dict[int, float]] = {"t1": {}, "pd": {}}
    for code, (lo, hi) in NATIVE_T1_RANGES[3.0 if field_t >= 2 else 1.5].items():
        jitter["t1"][int(code)] = float(u(lo, hi))
    for code in (T.RV_BLOOD, T.LA_BLOOD, T.AORTA_BLOOD, T.OTHER_BLOOD):
        jitter["t1"][int(code)] = jitter["t1"][int(T.LV_BLOOD)]
    for code in (T.PAPILLARY, T.RV_MYOCARDIUM, T.LA_WALL):
        jitter["t1"][int(code)] = jitter["t1"][int(T.MYOCARDIUM)]
    hct = float(u(0.38, 0.46))
    scar_t1_increase = float(u(0.12, 0.28))
    # post-contrast (10-20 min): myocardium 400-550 ms, blood 280-400 ms, scar 200-300 ms.
    # Draw myocardium and ECV, derive the blood-pool contrast concentration from them
    # (fast-exchange model, see TissueSet.t1_post) and keep draws with blood in range.
    t1_myo, t1_blood = jitter["t1"][int(T.MYOCARDIUM)], jitter["t1"][int(T.LV_BLOOD)]
    for _ in range(200):
        ecv_myo = float(u(0.22, 0.28))
        myo_post = float(u(410.0, 540.0))
        d_r1 = (1.0 / myo_post - 1.0 / t1_myo) / (ecv_myo / (1.0 - hct))
        blood_post = 1.0 / (1.0 / t1_blood + d_r1)
        if 285.0 <= blood_post <= 395.0:
            break
    scar_post = float(u(220.0, 295.0))
    t1_scar = t1_myo * (1.0 + scar_t1_increase)
    ecv_scar = float(np.clip((1.0 / scar_post - 1.0 / t1_scar) / d_r1 * (1.0 - hct), ecv_myo + 0.2, 0.95))

    # ---- artefacts ------------------------------------------------------------------------------
    artefacts: dict[str, float] = {}
    for name, (p, lo, hi) in _ARTEFACT_PRIOR.items():
        artefacts[name] = float(u(lo, hi)) if rng.random() < p else 0.0
    if field_t >= 3.0 and artefacts["banding"] == 0.0 and rng.random() < 0.4:
        artefacts["banding"] = float(u(0.2, 0.8))  # 3 T bSSFP bands are common
    snr = {"cine": float(u(25, 60)), "irw": float(u(20, 60)), "lge": float(u(12, 45)), "la": float(u(8, 25))}
    if opt.snr is not None:
        snr = {k: float(opt.snr) for k in snr}
    if opt.motion is not None:
        artefacts["motion"] = float(opt.motion)
    artefacts.update({k: float(v) for k, v in opt.artefacts.items()})
    if opt.clean:
        artefacts = {k: 0.0 for k in artefacts}
        snr = {k: float("inf") for k in snr}
    artefacts["noise"] = snr_severity(snr["lge"])
    mis = {}
    for pair in ("rest_stress", "cine_lge", "native_post"):
        s = artefacts["misregistration"]
        mis[pair] = [float(rng.normal(0, 3.0) * s), float(rng.normal(0, 3.0) * s),
                     float(rng.normal(0, 3.0) * s), float(rng.normal(0, 3.0) * s)]
    # LGE TI: set at or slightly short of the myocardial null (usual practice with PSIR:
    # myocardium black on magnitude, just below background on PSIR); "poor nulling" adds
    # an error of 5-40 % either way
    ti_bias = float(u(-0.05, 0.0))
    sign = 1.0 if rng.random() < 0.5 else -1.0
    ti_error = ti_bias + (sign * (0.05 + 0.35 * artefacts["nulling"]) if artefacts["nulling"] > 0 else 0.0)

    af = bool(opt.af) if opt.af is not None else bool(rng.random() < 0.3)
    la_vol = float(u(80, 150) if af else u(50, 70))
    fib = float(u(0.1, 0.35) if af else u(0.0, 0.06))

    matrix = int(opt.matrix)
    # default field of view >= 300 mm with pixels no smaller than 1.4 mm (phantom-reference.md)
    pixel = float(opt.pixel_mm) if opt.pixel_mm else max(1.4, 300.0 / matrix)

    return SubjectParams(
        seed=int(seed), field_t=field_t, phenotype=phenotype, heart_rate_bpm=hr,
        long_axis=axis, base_centre=base_centre, fov_rotation_deg=float(rng.normal(0, 8)),
        fov_offset_mm=(float(rng.normal(0, 12)), float(rng.normal(0, 12))),
        body_semi_axes=(float(u(155, 185)), float(u(100, 125))), subcut_fat_mm=float(u(6, 25)),
        dome_heights_mm=(float(u(-30, -15)), float(u(-55, -40))),
        lv_length_mm=lv_len, apex_wall_mm=apex_wall, endo_radius_mm=endo_r,
        ellipticity=float(u(0.0, 0.07)), ellipse_angle_deg=float(u(0, 180)), profile_power=float(u(1.9, 2.6)),
        wall_mm=wall, septal_extra_mm=septal_extra, septal_centre_deg=float((rv_ant + rv_span / 2 + u(-20, 20)) % 360),
        septal_width_deg=float(u(30, 50)),
        es_radius_ratio=es_d / (2.0 * endo_r),
        thickening=thickening, long_shortening=float(u(0.1, 0.16)), t_es=float(u(0.32, 0.4)),
        lvot_centre_deg=float((rv_ant + u(5, 35)) % 360), lvot_halfwidth_deg=float(u(105, 135)),
        lvot_depth_mm=float(u(12, 20)),
        rv_anterior_deg=rv_ant, rv_span_deg=rv_span, rv_width_mm=float(u(18, 30) * scale),
        rv_wall_mm=float(u(3.0, 5.0)), rv_length_fraction=float(u(0.75, 0.9)),
        pm_angles_deg=(float((rv_ant + u(170, 185)) % 360), float((rv_ant + u(255, 280)) % 360)),
        pm_radius_mm=float(u(4.0, 6.0)), epi_fat_mm=float(u(0.8, 2.5)),
        la_volume_ml=la_vol, la_wall_mm=float(u(2.0, 3.0)), la_fibrosis_fraction=fib, af=af,
        hct=hct, ecv_myo=ecv_myo, ecv_scar=ecv_scar,
        scar_t1_increase=scar_t1_increase, blood_t1_post_ms=float(blood_post),
        ba_ratio=float(u(1.8, 2.0)), shmolli_factor=float(u(0.95, 0.98)), tissue_jitter=jitter,
        scar=scar, stress_territory=territory, stress_reactivity=reactivity,
        blood_stress_change=float(u(-0.01, 0.01)),
        n_slices=n_slices, slice_thickness_mm=thickness, slice_gap_mm=gap, first_slice_z_mm=first_z,
        n_phases=int(opt.n_phases or rng.integers(20, 31)), matrix=matrix, pixel_mm=pixel,
        scheme=opt.scheme or str(rng.choice(["ShMOLLI", "MOLLI 5(3)3", "MOLLI 3(3)3(3)5"], p=[0.5, 0.35, 0.15])),
        snr=snr, artefacts=artefacts, misregistration=mis, lge_ti_error=float(ti_error), lge_ti_bias=ti_bias,
        gain=float(u(0.8, 1.25)), psf=bool(opt.psf), irw_model=opt.irw_model, rr_sd_ms=float(opt.rr_sd_ms),
    )

"""Analytic 3-D anatomy of a phantom subject, evaluated at arbitrary points (layers a/b).

The heart lives in *heart coordinates* (mm): origin at the LV centre on the mitral plane,
``z`` along the long axis towards the apex, ``x``/``y`` in the short-axis plane with ``y``
pointing to the anterior (screen up in the standard SAX display) and ``x`` to the lateral
wall (screen right). The polar angle ``phi = atan2(y, x)`` therefore runs counter-clockwise
on screen: 90° anterior, 180° septum/RV, 270° inferior.

* LV: nested truncated super-ellipsoids (endocardium, epicardium) with elliptical,
  HCM-septal and cardiac-phase modulation; the base ring opens towards the outflow tract
  (``z < z_ring(phi)``) so basal slices show an incomplete ring; the endocardial cavity
  ends at ``lv_length`` and the epicardium ``apex_wall`` further, giving an apical cap.
* RV: a crescent in polar coordinates between the anterior and inferior insertion
  angles; LA (with wall, fibrosis, pulmonary veins, appendage), RA, aortic root and
  ascending aorta with wall and valve, pulmonary trunk, epicardial fat and pericardium.
* Torso (patient LPS coordinates, static): body with skin, subcutaneous fat, chest-wall
  muscle, sternum, spine (vertebral body, canal, cord), paraspinal muscles, descending
  aorta, lungs with vessels, mediastinal fat, diaphragm domes, liver, stomach, spleen.

Cardiac motion: the apex is fixed; the base descends by ``long_shortening`` and the
cavity radius follows a contraction curve ``c(t)`` (0 end-diastole, 1 end-systole); the
wall thickens by ``thickening`` (less in infarcted territory).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri

from .params import SubjectParams, stable_seed
from .tissue import T

F32 = np.float32
NONE = 255  # "no heart structure here" in the heart renderer


def contraction(t_frac: np.ndarray | float, t_es: float) -> np.ndarray:
    """Contraction state c(t) in [0, 1] over the R-R interval (t_frac 0..1, 0 = R wave).

    Systole (sin² to end-systole at ``t_es``), rapid filling (to 0.2), diastasis (0.2 to
    0.12) and atrial contraction back to 0 (end-diastole).
    """
    t = np.mod(np.asarray(t_frac, dtype=float), 1.0)

    def smooth(s: np.ndarray) -> np.ndarray:
        s = np.clip(s, 0.0, 1.0)
        return s * s * (3 - 2 * s)

    fill_end = t_es + 0.15
    c = np.where(t < t_es, np.sin(0.5 * np.pi * t / t_es) ** 2, 0.0)
    c = np.where((t >= t_es) & (t < fill_end), 1.0 - 0.8 * smooth((t - t_es) / 0.15), c)
    c = np.where((t >= fill_end) & (t < 0.8), 0.2 - 0.08 * (t - fill_end) / max(0.8 - fill_end, 1e-6), c)
    c = np.where(t >= 0.8, 0.12 * (1.0 - smooth((t - 0.8) / 0.2)), c)
    return c


def mid_diastole(subject: SubjectParams) -> float:
    """Trigger fraction of the R-R interval used for MOLLI, LGE and VNE (diastasis)."""
    return float(min(0.72, subject.t_es + 0.15 + 0.5 * (0.8 - subject.t_es - 0.15)))


def _angdiff(a: np.ndarray, b: float) -> np.ndarray:
    """Signed angle a - b wrapped to [-180, 180) degrees."""
    return (a - b + 180.0) % 360.0 - 180.0


def _profile(u: np.ndarray, p: float) -> np.ndarray:
    """Long-axis radius profile (1 - u^p)^(1/p) for 0 <= u < 1, 1 above the base, 0 beyond."""
    uc = np.clip(u, 0.0, 1.0)
    return np.where(u >= 1.0, 0.0, (1.0 - uc ** p) ** (1.0 / p)).astype(F32)


class WaveField:
    """A smooth random scalar field: normalised sum of plane waves (deterministic per seed).

    Approximately zero-mean, unit-variance; wavelengths between ``lam_lo`` and ``lam_hi`` mm.
    """

    def __init__(self, seed: int, n: int = 8, lam_lo: float = 20.0, lam_hi: float = 60.0) -> None:
        rng = np.random.default_rng(seed)
        d = rng.normal(size=(n, 3))
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        k = 2 * np.pi / rng.uniform(lam_lo, lam_hi, n)
        self.k = (d * k[:, None]).astype(F32)
        self.phase = rng.uniform(0, 2 * np.pi, n).astype(F32)
        self.scale = F32(np.sqrt(2.0 / n))

    def __call__(self, p: np.ndarray) -> np.ndarray:
        return (np.cos(p @ self.k.T + self.phase).sum(axis=1) * self.scale).astype(F32)


@dataclass
class HeartSample:
    """Heart-renderer output for N points (only points with a heart structure are meaningful)."""

    tissue: np.ndarray  # uint8 tissue code, NONE outside the heart
    aha: np.ndarray  # uint8 AHA segment 1..17 for LV myocardium/scar, else 0
    depth: np.ndarray  # float32 transmural depth 0 (endo) .. 1 (epi) in LV myocardium, else -1


class Anatomy:
    """The subject's anatomy; :meth:`tissue_at` gives the tissue at LPS points for a phase."""

    def __init__(self, s: SubjectParams) -> None:
        self.s = s
        n = np.asarray(s.long_axis, float)
        # x axis along the intersection of the SAX plane with a coronal plane (towards the
        # patient's left): the anterior chest wall then runs across the top of the image, as
        # short-axis stacks are planned and displayed
        e_u = np.cross(n, np.array([0.0, 1.0, 0.0]))
        e_u /= np.linalg.norm(e_u)
        if e_u[0] < 0:
            e_u = -e_u
        e_v = np.cross(n, e_u)  # anterior: screen up in the standard display
        self.R = np.column_stack([e_u, e_v, n])  # heart -> LPS
        self.O = np.asarray(s.base_centre, float)
        self.l_endo = s.lv_length_mm
        self.l_epi = s.epi_length_mm
        self._la_setup()
        self._vessel_setup()
        seed = stable_seed("anatomy", s.seed)
        self.fib_field = WaveField(seed + 1, 10, 15.0, 40.0)
        # the field is ~N(0, 1): this threshold marks the requested fraction of the LA wall fibrotic
        self.fib_threshold = float(ndtri(1.0 - max(s.la_fibrosis_fraction, 1e-4)))
        wr = np.random.default_rng(seed + 4)
        self.trab_waves = [(float(wr.uniform(0.15, 0.3)), float(wr.integers(16, 32)), float(wr.uniform(0, 2 * np.pi)),
                            float(wr.uniform(0.1, 0.3))) for _ in range(3)]
        self.fat_waves = [(float(wr.uniform(0.5, 0.9)), float(k), float(wr.uniform(0, 2 * np.pi)),
                           float(wr.uniform(0.0, 0.05))) for k in (1, 2, 3)]
        self.lung_field = WaveField(seed + 2, 6, 25.0, 60.0)
        self.lung_field2 = WaveField(seed + 3, 6, 25.0, 60.0)

    # ---- coordinate helpers ----------------------------------------------------------
    def to_heart(self, p: np.ndarray) -> np.ndarray:
        """LPS mm (N,3) -> heart coordinates (N,3)."""
        return ((p - self.O) @ self.R).astype(F32)

    def to_lps(self, q: np.ndarray) -> np.ndarray:
        """Heart coordinates (N,3) -> LPS mm."""
        return np.asarray(q, float) @ self.R.T + self.O

    def _lps_dir_to_heart(self, d: np.ndarray) -> np.ndarray:
        d = np.asarray(d, float)
        return (d / np.linalg.norm(d)) @ self.R

    # ---- LV radial functions -----------------------------------------------------------
    def anatomical_z(self, z: np.ndarray, c: float) -> np.ndarray:
        """Material long-axis position of spatial heart-z for contraction c (apex fixed)."""
        s = 1.0 - self.s.long_shortening * c
        return (self.l_epi - (self.l_epi - z) / s).astype(F32)

    def z_ring(self, phi: np.ndarray) -> np.ndarray:
        """Long-axis level (mm) below which the LV wall is open to the outflow tract at angle phi."""
        s = self.s
        d = np.abs(_angdiff(phi, s.lvot_centre_deg))
        h = np.where(d < s.lvot_halfwidth_deg, np.cos(0.5 * np.pi * d / s.lvot_halfwidth_deg) ** 2, 0.0)
        return (s.lvot_depth_mm * h).astype(F32)

    def ring_completeness(self, z_anat: float) -> float:
        """Fraction (0..1) of the blood-pool circumference covered by myocardium at material level z."""
        if z_anat < 0 or z_anat >= self.l_epi:
            return 0.0
        phi = np.arange(0.0, 360.0, 0.05)
        return float(np.mean(self.z_ring(phi) <= z_anat))

    def _scar_window(self, phi: np.ndarray, za: np.ndarray) -> np.ndarray:
        """0..1 weight of ischaemic scar territory (used to reduce wall thickening)."""
        sc = self.s.scar
        if sc is None or sc.kind != "ischemic":
            return np.zeros_like(phi)
        d = np.abs(_angdiff(phi, sc.centre_deg)) / sc.halfwidth_deg
        inside_z = (za >= sc.z_from_mm) & (za <= sc.z_to_mm)
        return np.where(inside_z, np.clip(1.0 - d, 0.0, 1.0) ** 0.5, 0.0).astype(F32) * min(1.0, sc.transmurality * 1.5)

    def radii(self, phi: np.ndarray, za: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray]:
        """Endocardial and epicardial radius (mm) at angle phi (deg) and material level za."""
        r_endo, r_epi, _ = self.radii_full(phi, za, c)
        return r_endo, r_epi

    def radii_full(self, phi: np.ndarray, za: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Endocardial, epicardial and basal (unprofiled) epicardial radius (mm)."""
        s = self.s
        ell = 1.0 + s.ellipticity * np.cos(np.deg2rad(2.0 * (phi - s.ellipse_angle_deg)))
        r_endo_base = s.endo_radius_mm * (1.0 - c * (1.0 - s.es_radius_ratio)) * ell
        # trabeculated endocardial border: ~1 mm bumps that vary slowly along the long axis
        trab = np.zeros_like(r_endo_base)
        for amp, k, ph, kz in self.trab_waves:
            trab += amp * np.cos(np.deg2rad(phi) * k + ph + za * kz)
        r_endo_base = r_endo_base + trab * (1.0 - 0.5 * c)
        wall = s.wall_mm + s.septal_extra_mm * np.exp(-0.5 * (_angdiff(phi, s.septal_centre_deg) / s.septal_width_deg) ** 2)
        thick = s.thickening * (1.0 - 0.85 * self._scar_window(phi, za))
        wall = wall * (1.0 + thick * c)
        p = s.profile_power
        r_endo = r_endo_base * _profile(za / self.l_endo, p)
        r_epi = (r_endo_base + wall) * _profile(za / self.l_epi, p)
        return r_endo.astype(F32), r_epi.astype(F32), (r_endo_base + wall).astype(F32)

    # ---- scar membership ---------------------------------------------------------------------
    def _wobble(self, phi: np.ndarray, za: np.ndarray) -> np.ndarray:
        sc = self.s.scar
        w = np.zeros_like(phi)
        for amp, kt, kz, ph in sc.wobble:
            w += amp * np.sin(np.deg2rad(phi) * kt + za * kz + ph)
        return w

    def scar_mask(self, phi: np.ndarray, za: np.ndarray, depth: np.ndarray, cap: np.ndarray) -> np.ndarray:
        """True where LV myocardium at (phi deg, za mm, transmural depth) is scar."""
        sc = self.s.scar
        if sc is None:
            return np.zeros(phi.shape, bool)
        wob = self._wobble(phi, za)
        d = _angdiff(phi, sc.centre_deg)
        in_z = (za >= sc.z_from_mm) & (za <= sc.z_to_mm)
        if sc.kind == "ischemic":
            hw = sc.halfwidth_deg * (1.0 + wob)
            rel = np.clip(np.abs(d) / hw, 0.0, 1.0)
            # transmurality falls off towards the territory edges and the z ends
            zt = np.clip(np.minimum(za - sc.z_from_mm, sc.z_to_mm - za) / 8.0, 0.0, 1.0)
            tr = sc.transmurality * np.sqrt(1.0 - rel ** 2) * (0.75 + 0.25 * zt) * (1.0 + 0.5 * wob)
            m = in_z & (np.abs(d) < hw) & (depth < tr)
            if sc.territory == "LAD":  # the apical cap (segment 17) belongs to the LAD
                m |= cap & (depth < sc.transmurality)
            return m
        m = np.zeros(phi.shape, bool)
        if sc.pattern in ("midwall", "rv_insertion"):
            hw = sc.halfwidth_deg * (1.0 + wob)
            lo = sc.depth_lo + 0.08 * wob
            hi = sc.depth_hi + 0.08 * wob
            m |= in_z & ~cap & (np.abs(d) < hw) & (depth > lo) & (depth < hi)
        for (b_phi, b_z, b_depth, r_phi, r_z) in sc.blobs:
            q = (_angdiff(phi, b_phi) / r_phi) ** 2 + ((za - b_z) / r_z) ** 2 + ((depth - b_depth) / 0.3) ** 2
            m |= (q < 1.0 + 0.3 * wob) & ~cap
        return m

    # ---- AHA ------------------------------------------------------------------------------------
    def aha_segment(self, phi: np.ndarray, za: np.ndarray) -> np.ndarray:
        """AHA segment (1..17) of LV myocardium at angle phi (deg CCW) and material level za (mm)."""
        rel = np.mod(phi - self.s.rv_anterior_deg, 360.0)
        # basal/mid: anteroseptal, inferoseptal, inferior, inferolateral, anterolateral, anterior
        six = np.array([2, 3, 4, 5, 6, 1], np.uint8)[np.clip((rel // 60).astype(int), 0, 5)]
        four = np.array([14, 15, 16, 13], np.uint8)[np.clip((np.mod(rel - 15.0, 360.0) // 90).astype(int), 0, 3)]
        third = self.l_endo / 3.0
        seg = np.where(za < third, six, np.where(za < 2 * third, six + 6, np.where(za < self.l_endo, four, 17)))
        return seg.astype(np.uint8)

    def aha_level(self, za: float) -> str:
        """basal / mid / apical / apex (cap) / above the base / beyond the apex, by material level (mm)."""
        if za < 0:
            return "above base"
        if za >= self.l_epi:
            return "beyond apex"
        third = self.l_endo / 3.0
        return "basal" if za < third else "mid" if za < 2 * third else "apical" if za < self.l_endo else "apex"

    # ---- atria and great vessels (heart coordinates) --------------------------------------------
    def _la_setup(self) -> None:
        s = self.s
        vol = s.la_volume_ml * 1000.0  # mm^3 of the LA body (veins and appendage add a little)
        c = (3.0 * vol / (4.0 * np.pi * 1.25 * 0.95)) ** (1.0 / 3.0)
        self.la_axes = np.array([1.25 * c, 0.95 * c, c], F32)
        self.la_centre = np.array([0.05 * s.endo_radius_mm, -0.45 * s.endo_radius_mm, -c + 1.0], F32)
        veins = {"LSPV": (0.55, 0.55, 0.6), "LIPV": (0.6, 0.75, -0.1), "RSPV": (-0.55, 0.55, 0.6),
                 "RIPV": (-0.6, 0.75, -0.1)}
        self.pv = []
        rng = np.random.default_rng(stable_seed("pv", s.seed))
        for name, d in veins.items():
            dh = self._lps_dir_to_heart(np.array(d) + rng.normal(0, 0.08, 3)).astype(F32)
            reach = float(np.sqrt(1.0 / np.sum((dh / self.la_axes) ** 2)))  # distance to the LA surface
            start = self.la_centre + dh * 0.7 * reach
            self.pv.append((name, start.astype(F32), dh, float(reach * 0.3 + 35.0), float(rng.uniform(6.0, 8.5))))
        d_laa = self._lps_dir_to_heart(np.array([0.8, -0.5, 0.45]))
        reach = float(np.sqrt(1.0 / np.sum((d_laa / self.la_axes) ** 2)))
        self.laa_centre = (self.la_centre + d_laa * (reach + 4.0)).astype(F32)

    def _vessel_setup(self) -> None:
        s = self.s
        lv_r = s.endo_radius_mm
        a = np.deg2rad(s.lvot_centre_deg)
        self.ao_start = np.array([0.55 * lv_r * np.cos(a), 0.55 * lv_r * np.sin(a), 4.0], F32)
        self.ao_dir = self._lps_dir_to_heart(np.array([-0.3, -0.15, 1.0])).astype(F32)
        self.ao_radius = F32(13.0 + 2.0 * (s.endo_radius_mm - 25.0) / 4.0)
        rv_a = np.deg2rad(s.rv_anterior_deg + 28.0)
        rr = lv_r + s.wall_mm + 0.55 * s.rv_width_mm
        self.pa_start = np.array([rr * np.cos(rv_a), rr * np.sin(rv_a), -6.0], F32)
        self.pa_dir = self._lps_dir_to_heart(np.array([0.35, 0.3, 1.0])).astype(F32)
        ra_a = np.deg2rad(s.rv_anterior_deg + 0.78 * s.rv_span_deg)
        rr = lv_r + s.wall_mm + 0.6 * s.rv_width_mm
        self.ra_centre = np.array([rr * np.cos(ra_a), rr * np.sin(ra_a), -24.0], F32)
        self.ra_axes = np.array([24.0, 21.0, 25.0], F32)

    @staticmethod
    def _tube(q: np.ndarray, start: np.ndarray, d: np.ndarray, length: float) -> tuple[np.ndarray, np.ndarray]:
        """(radial distance, axial position) of points relative to a straight tube."""
        rel = q - start
        t = rel @ d
        radial = np.linalg.norm(rel - t[:, None] * d[None, :], axis=1)
        return radial.astype(F32), t.astype(F32)

    # ---- heart renderer ---------------------------------------------------------------------
    def heart(self, q: np.ndarray, c: float) -> HeartSample:
        """Heart structures at heart-coordinate points q (N,3) for contraction c."""
        s = self.s
        n = q.shape[0]
        tissue = np.full(n, NONE, np.uint8)
        aha = np.zeros(n, np.uint8)
        depth = np.full(n, -1.0, F32)
        if n == 0:
            return HeartSample(tissue, aha, depth)
        r_all = np.hypot(q[:, 0], q[:, 1]).astype(F32)
        za_all = self.anatomical_z(q[:, 2], c)
        # ventricles + their fat envelope can only be within r_lim of the axis
        vent = np.nonzero((r_all < self.r_lim) & (za_all > -14.0) & (za_all < self.l_epi + 2.0 * s.epi_fat_mm + 6.0))[0]
        if vent.size:
            t_v, a_v, d_v = self._ventricles(q[vent, 0], q[vent, 1], r_all[vent], za_all[vent], c)
            tissue[vent], aha[vent], depth[vent] = t_v, a_v, d_v
        # above the mitral plane: LA, RA, aortic root, pulmonary trunk
        basal = (za_all < 12.0) & np.isin(tissue, (NONE, T.FAT, T.PERICARDIUM))
        if basal.any():
            idx = np.nonzero(basal)[0]
            qa = np.column_stack([q[idx, 0], q[idx, 1], za_all[idx]]).astype(F32)
            sub = self._atria_vessels(qa)
            keep = sub != NONE
            tissue[idx[keep]] = sub[keep]
        return HeartSample(tissue, aha, depth)

    @property
    def r_lim(self) -> float:
        """Largest distance (mm) from the LV axis reached by the ventricles and their fat envelope."""
        s = self.s
        return float(s.endo_radius_mm * (1 + s.ellipticity) + (s.wall_mm + s.septal_extra_mm) * (1 + s.thickening)
                     + s.rv_width_mm * 1.2 + s.rv_wall_mm + 4.0 * s.epi_fat_mm + 10.0)

    def _ventricles(self, x: np.ndarray, y: np.ndarray, r: np.ndarray, za: np.ndarray, c: float
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """LV, RV, epicardial fat and pericardium at points near the LV axis (material z = za)."""
        s = self.s
        n = r.shape[0]
        tissue = np.full(n, NONE, np.uint8)
        aha = np.zeros(n, np.uint8)
        depth = np.full(n, -1.0, F32)
        phi = np.mod(np.rad2deg(np.arctan2(y, x)), 360.0).astype(F32)
        za_lv = np.maximum(za, 0.0)
        r_endo, r_epi, r_epi_base = self.radii_full(phi, za_lv, c)
        lv_zone = (za >= 0) & (za < self.l_epi)

        # ---- envelope: epicardial fat + pericardium around LV and RV -----------------------
        rv_rel = np.mod(phi - s.rv_anterior_deg, 360.0) / s.rv_span_deg
        in_span = rv_rel < 1.0
        rv_len = s.rv_length_fraction * self.l_endo
        qz = np.where(za <= 0.45 * rv_len, 1.0,
                      np.where(za < rv_len, np.cos(0.5 * np.pi * (za - 0.45 * rv_len) / (0.55 * rv_len)), 0.0))
        qz = np.where(za < -14.0, 0.0, qz).astype(F32)
        rv_present = in_span & (qz > 0) & (za < self.l_epi)
        g = np.zeros(n, F32)
        g[rv_present] = (np.maximum(np.sin(np.pi * rv_rel[rv_present]), 0.0) ** 0.6
                         * (1.0 + 0.3 * (0.5 - rv_rel[rv_present])))
        w_rv = (s.rv_width_mm * (1.0 - 0.35 * c) * qz * g).astype(F32)
        t_rv = (s.rv_wall_mm * np.minimum(1.0, 5.0 * qz)).astype(F32)
        r_in = r_epi.copy()
        above = za < 0
        if above.any():  # above the mitral plane the RV wraps the basal epicardial contour
            r_in[above] = r_epi_base[above]
        rv_outer = np.where(rv_present, r_in + w_rv + t_rv, 0.0)
        # fat in the interventricular grooves (coronary arteries) while the RV is present
        groove = 2.5 * np.minimum(qz * 3.0, 1.0) * (np.exp(-(_angdiff(phi, s.rv_anterior_deg) / 12.0) ** 2)
                                                   + np.exp(-(_angdiff(phi, s.rv_anterior_deg + s.rv_span_deg) / 12.0) ** 2))
        # epicardial fat is patchy: thick in the grooves, thin or absent over parts of the free walls
        patchy = np.zeros(n, F32)
        for amp, k, ph, kz in self.fat_waves:
            patchy += amp * np.sin(np.deg2rad(phi) * k + ph + za * kz)
        fat = (s.epi_fat_mm * (np.maximum(0.0, 0.6 + patchy) + groove) + 6.0 * np.exp(-(za / 10.0) ** 2)).astype(F32)
        # epicardial envelope of the LV including an apical fat cap
        env_len = self.l_epi + 0.5 * s.epi_fat_mm + 1.0
        r_env_lv = np.where(za >= 0, r_epi_base * _profile(za_lv / env_len, s.profile_power), 0.0)
        lv_outer = np.where(lv_zone, r_epi, 0.0)
        outer = np.maximum(lv_outer, rv_outer)
        has_outer = outer > 0
        apical = za > 0.9 * self.l_epi  # the apical fat cap closes the envelope beyond the apex
        in_fat = (has_outer & (r < outer + fat)) | (apical & (r < r_env_lv + fat * 0.5))
        in_peri = ~in_fat & ((has_outer & (r < outer + fat + 1.2)) | (apical & (r < r_env_lv + fat * 0.5 + 1.2)))
        heart_zone = za > -8.0
        tissue[heart_zone & in_peri] = T.PERICARDIUM
        tissue[heart_zone & in_fat] = T.FAT

        # ---- RV ---------------------------------------------------------------------------
        # where the LV ring is open (outflow tract) a fibrous wall (aorto-mitral continuity /
        # aortic root) still separates the LV outflow from the RV cavity
        gap = za < self.z_ring(phi)
        sep = np.where(lv_zone & gap, t_rv, 0.0).astype(F32)
        rv_cav = rv_present & (r >= r_in + sep) & (r < r_in + w_rv)
        rv_wall = rv_present & (r >= r_in + w_rv) & (r < r_in + w_rv + t_rv)
        tissue[rv_wall] = T.RV_MYOCARDIUM
        tissue[rv_cav] = T.RV_BLOOD
        tissue[rv_present & (sep > 0) & (r >= r_in) & (r < r_in + sep)] = T.VESSEL_WALL

        # ---- LV -----------------------------------------------------------------------------
        cap = lv_zone & (za >= self.l_endo)
        wall = lv_zone & (r >= r_endo) & (r < r_epi)
        cavity = lv_zone & (r < r_endo) & ~cap
        myo = wall & ~gap
        tissue[cavity | (wall & gap)] = T.LV_BLOOD
        # papillary muscles: round bundles touching the wall in the mid cavity
        cav = np.nonzero(cavity & (za > 0.22 * self.l_endo) & (za < 0.77 * self.l_endo))[0]
        if cav.size:
            zc = za[cav]
            span = np.clip((zc - 0.22 * self.l_endo) / (0.55 * self.l_endo), 0.0, 1.0)
            radius = s.pm_radius_mm * (1.0 + 0.3 * c) * np.maximum(np.sin(np.pi * span), 0.0) ** 0.5
            for ang in s.pm_angles_deg:
                a = np.deg2rad(ang)
                r_wall = self.radii(np.full(cav.size, ang, F32), zc, c)[0]
                dc = np.maximum(r_wall - 0.75 * radius, 0.0)
                dist = np.hypot(x[cav] - dc * np.cos(a), y[cav] - dc * np.sin(a))
                tissue[cav[dist < radius]] = T.PAPILLARY
        if myo.any():
            idx = np.nonzero(myo)[0]
            w = np.maximum(r_epi[idx] - r_endo[idx], 1e-3)
            capi = cap[idx]
            dep = np.where(capi, (za[idx] - self.l_endo) / max(self.l_epi - self.l_endo, 1e-3), (r[idx] - r_endo[idx]) / w)
            dep = np.clip(dep, 0.0, 1.0).astype(F32)
            scar = self.scar_mask(phi[idx], za[idx], dep, capi)
            tissue[idx] = np.where(scar, T.SCAR, T.MYOCARDIUM)
            aha[idx] = self.aha_segment(phi[idx], za[idx])
            depth[idx] = dep
        return tissue, aha, depth

    @staticmethod
    def _ball(q: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
        """Indices of points within ``radius`` mm of ``centre`` (cheap pre-selection)."""
        d = q - centre
        return np.nonzero(np.einsum("ij,ij->i", d, d) < radius * radius)[0]

    def _tube_sel(self, q: np.ndarray, start: np.ndarray, d: np.ndarray, length: float, radius: float,
                  t_lo: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(indices, radial distance, axial position) of points near a tube segment."""
        mid = start + d * (0.5 * (length + t_lo))
        idx = self._ball(q, mid, 0.5 * (length - t_lo) + radius + 1.0)
        rad, t = self._tube(q[idx], start, d, length)
        return idx, rad, t

    def _atria_vessels(self, q: np.ndarray) -> np.ndarray:
        """Atria and great vessels at heart-coordinate points (material z); NONE elsewhere.

        Each structure is evaluated only on points inside its bounding sphere.
        """
        s = self.s
        out = np.full(q.shape[0], NONE, np.uint8)
        ao_env = self.ao_radius * 1.25 + 4.0
        # fat envelope of the atria and great vessels (assigned first; structures override)
        for centre, axes in ((self.la_centre, self.la_axes + 4.0), (self.ra_centre, self.ra_axes + 4.0)):
            idx = self._ball(q, centre, float(axes.max()))
            e = np.sum(((q[idx] - centre) / axes) ** 2, axis=1)
            out[idx[e < 1]] = T.FAT
        for start, d, radius in ((self.ao_start, self.ao_dir, ao_env), (self.pa_start, self.pa_dir, 16.0)):
            idx, rad, t = self._tube_sel(q, start, d, 90.0, radius, -6.0)
            out[idx[(t > -6.0) & (t < 90.0) & (rad < radius)]] = T.FAT
        # RA and its wall
        idx = self._ball(q, self.ra_centre, float(self.ra_axes.max()) + 2.5)
        rel = q[idx] - self.ra_centre
        out[idx[np.sum((rel / (self.ra_axes + 2.5)) ** 2, axis=1) < 1]] = T.RV_MYOCARDIUM
        out[idx[np.sum((rel / self.ra_axes) ** 2, axis=1) < 1]] = T.OTHER_BLOOD
        # pulmonary trunk
        idx, rad, t = self._tube_sel(q, self.pa_start, self.pa_dir, 60.0, 13.5, -4.0)
        along = (t > -4.0) & (t < 60.0)
        out[idx[along & (rad < 13.5)]] = T.VESSEL_WALL
        out[idx[along & (rad < 12.0)]] = T.OTHER_BLOOD
        # LA wall, fibrosis, blood pool, veins, appendage (within one bounding sphere)
        reach = float(self.la_axes.max()) + max(length for *_, length, _ in self.pv) + 12.0
        la_idx = self._ball(q, self.la_centre, reach)
        if la_idx.size:
            ql = q[la_idx]
            nl = ql.shape[0]
            rel = ql - self.la_centre
            e_la = np.sum((rel / self.la_axes) ** 2, axis=1)
            e_wall = np.sum((rel / (self.la_axes + s.la_wall_mm)) ** 2, axis=1)
            wall = (e_wall < 1) & (e_la >= 1) & (ql[:, 2] < -0.5)
            pv_blood = np.zeros(nl, bool)
            pv_wall = np.zeros(nl, bool)
            for _, start, d, length, radius in self.pv:
                idx, rad, t = self._tube_sel(ql, start, d, length, radius + s.la_wall_mm)
                along = (t > 0) & (t < length)
                pv_blood[idx[along & (rad < radius)]] = True
                pv_wall[idx[along & (rad < radius + s.la_wall_mm * 0.8)]] = True
            laa_axes = np.array([11.0, 8.0, 8.0], F32)
            laa = np.sum(((ql - self.laa_centre) / laa_axes) ** 2, axis=1)
            laa_wall = np.sum(((ql - self.laa_centre) / (laa_axes + s.la_wall_mm)) ** 2, axis=1)
            wall |= (pv_wall & ~pv_blood) | ((laa_wall < 1) & (laa >= 1))
            blood = (e_la < 1) | pv_blood | (laa < 1)
            wall &= ~blood
            if wall.any():
                fib = self.fib_field(self.to_lps(ql[wall]).astype(F32)) > self.fib_threshold
                out[la_idx[wall]] = np.where(fib, T.LA_FIBROSIS, T.LA_WALL)
            out[la_idx[blood]] = T.LA_BLOOD
        # mitral valve leaflets at the annulus (thin disc rim between LA and LV)
        r0 = s.endo_radius_mm
        idx = np.nonzero((q[:, 2] > -2.0) & (q[:, 2] < 0.0))[0]
        r = np.hypot(q[idx, 0], q[idx, 1])
        out[idx[(r < r0) & (r > 0.55 * r0)]] = T.VALVE
        # aortic root (sinus bulge) and ascending aorta with wall and valve
        idx, rad, t = self._tube_sel(q, self.ao_start, self.ao_dir, 90.0, self.ao_radius * 1.25 + 2.0, -2.0)
        bulge = 1.0 + 0.25 * np.exp(-((t - 10.0) / 9.0) ** 2)
        along = (t > -2.0) & (t < 90.0)
        lumen = along & (rad < self.ao_radius * bulge)
        out[idx[along & (rad < self.ao_radius * bulge + 2.0) & ~lumen]] = T.VESSEL_WALL
        out[idx[lumen]] = T.AORTA_BLOOD
        out[idx[lumen & (t < 0.0)]] = T.VALVE
        return out

    # ---- torso (patient coordinates, static) ---------------------------------------------------
    def torso(self, p: np.ndarray) -> np.ndarray:
        """Non-cardiac tissue at LPS points p (N,3)."""
        s = self.s
        x, y, z = p[:, 0], p[:, 1], p[:, 2]
        ax, ay = s.body_semi_axes
        yc = 8.0  # body centre (posterior of the heart)
        out = np.zeros(p.shape[0], np.uint8)

        def ell(cx: float, cy: float, a: float, b: float) -> np.ndarray:
            return ((x - cx) / a) ** 2 + ((y - cy) / b) ** 2

        body = ell(0, yc, ax, ay)
        inside = body < 1
        out[inside] = T.SKIN
        fat_t = s.subcut_fat_mm
        out[ell(0, yc, ax - 2, ay - 2) < 1] = T.FAT
        # anterior chest wall (pectoral) muscle is thicker than lateral/posterior
        ant = np.clip(-(y - yc) / ay, 0.0, 1.0)
        mus_in = ell(0, yc, ax - 2 - fat_t - 9 - 6 * ant, ay - 2 - fat_t - 9 - 6 * ant) < 1
        out[(ell(0, yc, ax - 2 - fat_t, ay - 2 - fat_t) < 1)] = T.MUSCLE
        cavity = mus_in
        # ribs: oval cross-sections (cortex around marrow) in the inner chest-wall muscle,
        # running obliquely (their position along the wall shifts with height z)
        e_in = ell(0, yc, ax - 2 - fat_t - 4, ay - 2 - fat_t - 4)
        band = np.abs(np.sqrt(e_in) - 1.0) * min(ax, ay) / 5.0  # ~distance from the rib centre line / 5 mm
        theta = np.arctan2((y - yc) / ay, x / ax)
        phase = np.mod(theta * 22.0 / (2 * np.pi) + z / 38.0, 1.0)  # rib pitch ~ 1/22 of the circumference
        along = np.abs(phase - 0.5) / 0.17  # ~ 17 % of the pitch is rib, the rest intercostal muscle
        q_rib = along ** 2 + band ** 2
        rib = (q_rib < 1.0) & ~cavity & (np.abs(theta + np.pi / 2) > 0.22)  # no ribs at the sternum
        out[rib] = T.CORTEX
        out[rib & (q_rib < 0.45)] = T.MARROW
        out[cavity] = T.FAT
        # diaphragm domes: abdomen below
        dr, dl = s.dome_heights_mm
        z_d = np.maximum(dr - ((x + 60) ** 2 + (y - 10) ** 2) / 320.0, dl - ((x - 65) ** 2 + (y - 15) ** 2) / 320.0)
        below = cavity & (z < z_d)
        diaphragm = cavity & (z >= z_d - 4.0) & (z < z_d)
        # lungs: thoracic cavity above the diaphragm, outside the mediastinum
        spine_y = yc + ay
        # anterior mediastinum (retrosternal fat) and posterior mediastinum (around oesophagus/aorta);
        # the heart and great vessels bring their own fat envelopes
        mediastinum = (ell(2, yc - ay + 25, 24, 30) < 1) | (ell(5, spine_y - 75, 42, 30) < 1)
        lung = cavity & ~below & ~mediastinum
        out[lung] = T.LUNG
        # pulmonary vessels: thin tubes where two smooth fields cross zero together
        pl = p[lung].astype(F32)
        if pl.shape[0]:
            # intersection of two thin sheets = tubes in 3-D: dots and short streaks in a slice
            v = (np.abs(self.lung_field(pl)) < 0.1) & (np.abs(self.lung_field2(pl)) < 0.1)
            idx = np.nonzero(lung)[0]
            out[idx[v]] = T.OTHER_BLOOD
        out[diaphragm] = T.MUSCLE
        # abdomen: liver (right and central), stomach (left, with gas cap), spleen (left posterior)
        abd = below & ~diaphragm
        out[abd] = T.MUSCLE  # bowel / abdominal soft tissue between the organs
        liver = abd & ((x < 25.0 + 0.4 * (y - yc)) | (x < 55.0) & (y < yc - 20) & (z > z_d - 45))
        out[liver] = T.LIVER
        st_c = np.array([70.0, yc - 15.0, dl - 42.0])
        st = ((x - st_c[0]) / 42) ** 2 + ((y - st_c[1]) / 38) ** 2 + ((z - st_c[2]) / 40) ** 2
        st_in = abd & (st < 1)
        out[abd & (st < 1.25) & ~st_in] = T.MUSCLE
        out[st_in] = T.STOMACH
        out[st_in & (z > st_c[2] + 18) & (y < st_c[1] + 10)] = T.GAS
        sp = ((x - 95) / 28) ** 2 + ((y - yc - 55) / 45) ** 2 + ((z - dl + 45) / 50) ** 2
        out[abd & (sp < 1)] = T.SPLEEN
        # sternum
        st_y = yc - ay + 2 + fat_t + 10
        stern = ell(0, st_y, 15, 7)
        out[stern < 1] = T.CORTEX
        out[stern < 0.6] = T.MARROW
        # spine: paraspinal muscles, vertebral body, canal, cord; descending aorta
        out[inside & (ell(-32, spine_y - 32, 24, 26) < 1)] = T.MUSCLE
        out[inside & (ell(32, spine_y - 32, 24, 26) < 1)] = T.MUSCLE
        vb = ell(0, spine_y - 68, 19, 17)
        out[vb < 1] = T.CORTEX
        out[vb < 0.75] = T.MARROW
        canal = ell(0, spine_y - 40, 9, 8)
        out[canal < 1] = T.CSF
        out[canal < 0.35] = T.CORD
        out[(ell(-5, spine_y - 92, 7, 6) < 1) & ~below] = T.MUSCLE  # oesophagus
        dao = ell(24, spine_y - 84, 12.5, 12.5)
        out[dao < 1] = T.VESSEL_WALL
        out[dao < 0.78] = T.AORTA_BLOOD
        return out

    # ---- whole scene --------------------------------------------------------------------------
    def near_heart(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(indices, heart coordinates) of the LPS points p that can hold a heart structure."""
        q = self.to_heart(p)
        near = (np.hypot(q[:, 0], q[:, 1]) < 95.0) & (q[:, 2] > -110.0) & (q[:, 2] < self.l_epi + 25.0)
        idx = np.nonzero(near)[0]
        return idx, q[idx]

    def tissue_at(self, p: np.ndarray, t_frac: float, torso: np.ndarray | None = None,
                  near: tuple[np.ndarray, np.ndarray] | None = None,
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(tissue uint8, AHA uint8, transmural depth f32) at LPS points p (N,3) at cardiac phase t_frac.

        ``torso`` and ``near`` may pass precomputed :meth:`torso` / :meth:`near_heart`
        results for the same points (both are static over the cardiac cycle).
        """
        c = float(contraction(t_frac, self.s.t_es))
        tissue = self.torso(p) if torso is None else torso.copy()
        idx, qn = self.near_heart(p) if near is None else near
        aha = np.zeros(p.shape[0], np.uint8)
        depth = np.full(p.shape[0], -1.0, F32)
        if idx.size:
            h = self.heart(qn, c)
            has = h.tissue != NONE
            # the heart displaces lungs and mediastinal fat but not the chest wall / spine
            soft = np.isin(tissue[idx], (T.LUNG, T.FAT, T.OTHER_BLOOD, T.MUSCLE, T.LIVER, T.STOMACH, T.GAS, T.SPLEEN))
            put = has & (soft | (h.tissue != T.FAT) & (h.tissue != T.PERICARDIUM))
            tissue[idx[put]] = h.tissue[put]
            aha[idx] = h.aha
            depth[idx] = h.depth
        return tissue, aha, depth

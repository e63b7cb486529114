"""Tissue classes and their MR properties at 1.5 T and 3 T (phantom layer b).

Every pixel the phantom renders carries one tissue code (:class:`T`). Each code has a
proton density (PD, relative to pure water), native T1 and T2 (ms), T2* (ms) and an
extracellular partition used to derive post-contrast T1 from the blood pool's contrast
concentration. Values follow docs/methods/phantom-reference.md (native T1 table,
post-contrast ranges) and common literature values for T2/T2*/PD; subjects vary around
them (see :mod:`cmrlib.phantom.params`).
"""
from __future__ import annotations

from enum import IntEnum

import numpy as np


class T(IntEnum):
    """Tissue codes of the rendered tissue map (uint8)."""

    AIR = 0
    LUNG = 1
    FAT = 2  # subcutaneous / mediastinal / epicardial fat
    MUSCLE = 3  # chest wall, paraspinal, diaphragm
    SKIN = 4
    MARROW = 5  # sternum / vertebral body
    CORTEX = 6  # cortical bone
    LIVER = 7
    SPLEEN = 8
    STOMACH = 9  # fluid content
    GAS = 10  # stomach gas
    CSF = 11
    CORD = 12
    LV_BLOOD = 13
    RV_BLOOD = 14
    LA_BLOOD = 15
    AORTA_BLOOD = 16
    OTHER_BLOOD = 17  # RA, pulmonary artery, vessels
    MYOCARDIUM = 18  # LV myocardium, normal
    SCAR = 19  # LV myocardial scar / fibrosis
    PAPILLARY = 20  # papillary muscles (myocardial tissue inside the LV cavity)
    RV_MYOCARDIUM = 21
    LA_WALL = 22
    LA_FIBROSIS = 23
    PERICARDIUM = 24
    VESSEL_WALL = 25  # aortic / pulmonary artery wall
    VALVE = 26


N_TISSUES = len(T)
BLOOD_CODES = (T.LV_BLOOD, T.RV_BLOOD, T.LA_BLOOD, T.AORTA_BLOOD, T.OTHER_BLOOD)

# columns: PD, T1 1.5 T, T1 3 T, T2 1.5 T, T2 3 T, T2* 1.5 T, T2* 3 T (ms), partition lambda
# lambda = tissue/blood contrast-agent concentration ratio (ECV/(1-Hct) for myocardium; set
# per subject for myocardium, scar and blood, which are overwritten in TissueSet.build).
_BASE: dict[T, tuple[float, float, float, float, float, float, float, float]] = {
    T.AIR: (0.0, 1000, 1000, 1, 1, 1, 1, 0.0),
    T.LUNG: (0.12, 1300, 1500, 40, 35, 1.5, 0.8, 0.25),
    T.FAT: (0.95, 275, 380, 80, 70, 30, 18, 0.05),
    T.MUSCLE: (0.74, 1050, 1380, 35, 32, 28, 18, 0.2),
    T.SKIN: (0.70, 900, 1100, 40, 35, 20, 12, 0.25),
    T.MARROW: (0.85, 550, 700, 50, 45, 12, 7, 0.15),
    T.CORTEX: (0.03, 500, 600, 1, 1, 0.5, 0.3, 0.0),
    T.LIVER: (0.75, 585, 815, 42, 35, 25, 14, 0.45),
    T.SPLEEN: (0.85, 1050, 1300, 60, 55, 40, 25, 0.45),
    T.STOMACH: (0.95, 2500, 2800, 300, 250, 150, 80, 0.0),
    T.GAS: (0.0, 1000, 1000, 1, 1, 1, 1, 0.0),
    T.CSF: (1.0, 4000, 4300, 1800, 1500, 400, 200, 0.0),
    T.CORD: (0.72, 750, 850, 75, 70, 50, 35, 0.05),
    T.LV_BLOOD: (0.90, 1580, 1870, 250, 180, 100, 50, 1.0),
    T.RV_BLOOD: (0.90, 1580, 1870, 250, 180, 100, 50, 1.0),
    T.LA_BLOOD: (0.90, 1580, 1870, 250, 180, 100, 50, 1.0),
    T.AORTA_BLOOD: (0.90, 1580, 1870, 250, 180, 100, 50, 1.0),
    T.OTHER_BLOOD: (0.90, 1580, 1870, 250, 180, 100, 50, 1.0),
    T.MYOCARDIUM: (0.78, 1000, 1200, 50, 45, 35, 25, 0.43),
    T.SCAR: (0.80, 1200, 1450, 58, 52, 35, 25, 1.2),
    T.PAPILLARY: (0.78, 1000, 1200, 50, 45, 35, 25, 0.43),
    T.RV_MYOCARDIUM: (0.78, 1000, 1200, 50, 45, 35, 25, 0.43),
    T.LA_WALL: (0.78, 1000, 1200, 50, 45, 35, 25, 0.43),
    T.LA_FIBROSIS: (0.80, 1200, 1450, 58, 52, 35, 25, 1.2),
    T.PERICARDIUM: (0.30, 900, 1100, 20, 18, 10, 6, 0.3),
    T.VESSEL_WALL: (0.60, 1100, 1300, 40, 35, 20, 12, 0.6),
    T.VALVE: (0.55, 1100, 1300, 40, 35, 20, 12, 0.7),
}


class TissueSet:
    """Per-tissue property vectors (indexed by tissue code) for one subject and condition.

    Attributes are float32 arrays of length :data:`N_TISSUES`: ``pd``, ``t1`` (ms), ``t2``
    (ms), ``t2s`` (ms), ``lam`` (partition coefficient). ``t1_post`` (ms) is derived from
    the blood-pool post-contrast T1 with the fast-exchange model
    ``1/T1post = 1/T1native + lam * (1/T1blood_post - 1/T1blood_native)``.
    """

    def __init__(self, field_t: float, overrides: dict[str, dict[int, float]] | None = None) -> None:
        col = 0 if field_t < 2.0 else 1
        rows = [_BASE[t] for t in T]
        self.field_t = float(field_t)
        self.pd = np.array([r[0] for r in rows], np.float32)
        self.t1 = np.array([r[1 + col] for r in rows], np.float32)
        self.t2 = np.array([r[3 + col] for r in rows], np.float32)
        self.t2s = np.array([r[5 + col] for r in rows], np.float32)
        self.lam = np.array([r[7] for r in rows], np.float32)
        for name, values in (overrides or {}).items():
            arr = getattr(self, name)
            for code, v in values.items():
                arr[int(code)] = v

    def t1_post(self, blood_t1_post_ms: float) -> np.ndarray:
        """Post-contrast T1 (ms) of every tissue for a blood-pool T1 of ``blood_t1_post_ms``."""
        blood_native = float(self.t1[T.LV_BLOOD])
        d_r1 = 1.0 / blood_t1_post_ms - 1.0 / blood_native  # 1/ms
        return (1.0 / (1.0 / self.t1 + self.lam * d_r1)).astype(np.float32)

    def table(self, blood_t1_post_ms: float | None = None) -> dict[str, dict[str, float]]:
        """Human-readable table for truth.json: {tissue: {pd, t1_ms, t2_ms, t2s_ms, lambda[, t1_post_ms]}}."""
        post = self.t1_post(blood_t1_post_ms) if blood_t1_post_ms else None
        out = {}
        for t in T:
            row = {"pd": round(float(self.pd[t]), 4), "t1_ms": round(float(self.t1[t]), 2),
                   "t2_ms": round(float(self.t2[t]), 2), "t2s_ms": round(float(self.t2s[t]), 2),
                   "lambda": round(float(self.lam[t]), 4)}
            if post is not None:
                row["t1_post_ms"] = round(float(post[t]), 2)
            out[t.name.lower()] = row
        return out


#: Mask label table of the ground truth (docs/architecture.md "Data contract": 0 background,
#: 1 myocardium, 2 blood pool, 3 scar; the rest extend it).
LABELS: dict[int, str] = {
    0: "background",
    1: "LV myocardium (normal)",
    2: "LV blood pool (incl. papillary muscles)",
    3: "LV scar",
    4: "RV blood pool",
    5: "RV myocardium",
    6: "LA blood pool",
    7: "LA wall (normal)",
    8: "LA wall fibrosis",
    9: "aorta lumen",
}

#: tissue code -> mask label
TISSUE_TO_LABEL = np.zeros(N_TISSUES, np.uint8)
TISSUE_TO_LABEL[T.MYOCARDIUM] = 1
TISSUE_TO_LABEL[T.LV_BLOOD] = 2
TISSUE_TO_LABEL[T.PAPILLARY] = 2  # papillary muscles belong to the cavity (volumetry convention)
TISSUE_TO_LABEL[T.SCAR] = 3
TISSUE_TO_LABEL[T.RV_BLOOD] = 4
TISSUE_TO_LABEL[T.RV_MYOCARDIUM] = 5
TISSUE_TO_LABEL[T.LA_BLOOD] = 6
TISSUE_TO_LABEL[T.LA_WALL] = 7
TISSUE_TO_LABEL[T.LA_FIBROSIS] = 8
TISSUE_TO_LABEL[T.AORTA_BLOOD] = 9


def tissue_names() -> dict[int, str]:
    """{code: name} of the tissue map, for truth.json."""
    return {int(t): t.name.lower() for t in T}

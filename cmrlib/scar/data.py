"""Training, validation and evaluation data of the scar U-Nets: LGE stacks with their cine.

Phantom stacks (:func:`phantom_stack`): one subject (:func:`cmrlib.phantom.sets.subject`,
training or *shifted*) with ischaemic, non-ischaemic or no scar; the LGE stack (PSIR or
magnitude, the phantom's own acquisition with its misregistration against the cine), the cine
frames at and around the LGE trigger time (the same subject, the cine's own breath-hold
position), the truth labels and AHA segments of the LGE. Labels map to the network's classes
(:func:`classes_of`): background, normal myocardium, LV blood pool, scar.

Training samples (:func:`training_sample`) are domain-randomised as every network's are
(:mod:`cmrlib.augment`): a random intensity curve, bias field, resolution and noise, drawn
*independently* for the LGE and the cine; rotation over the full circle for half the samples,
mirror, scale ±20 %, shift; a share corrupted (:func:`cmrlib.augment.corrupt`). The LV centres
that align the pair are the truth centroids with a random error (sd ``centre_sd_mm``, the
detector's), and the cine frame is sometimes a neighbour of the matched one, so the network
learns to tolerate imperfect matching and alignment.

User data (:func:`user_stacks`, ``cmr train scar --data DIR``): README "Scar training data".
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..augment import corrupt, degrade, jitter_map
from ..errors import InputError
from ..image import Image
from .infer import grid_map, network_input
from .matching import centre_from_mask
from .unet import BACKGROUND, BLOOD, MYOCARDIUM, SCAR

TRAIN_SEED_BASE = 700_000
VAL_SEED_BASE = 760_000
TEST_SEED_BASE = 780_000  # held-out subjects of the benchmark
SHIFTED_SEED_BASE = 790_000
SCAR_KINDS = ("ischemic", "nonischemic", "none")
#: neighbouring cine frames rendered around the matched one (training: phase mismatch)
FRAME_OFFSETS = (-2, 0, 2)


@dataclass
class ScarStack:
    """One LGE stack with its cine and truth (phantom labels: 1 myocardium, 2 LV blood, 3 scar)."""

    lge: Image
    cine: Image | None
    labels: np.ndarray  # [slice, row, col] phantom labels of the LGE
    cine_labels: np.ndarray | None  # [frame, slice, row, col] phantom labels of the cine
    aha: Image | None = None
    scar: str = "none"
    subject: int = -1
    meta: dict[str, Any] = field(default_factory=dict)

    def truth_mask(self) -> Image:
        """The data-contract label map of the LGE (1 myocardium, 2 blood pool, 3 scar)."""
        lab = np.zeros(self.labels.shape, np.uint8)
        lab[self.labels == 1] = 1
        lab[self.labels == 2] = 2
        lab[self.labels == 3] = 3
        img = self.lge.with_array(lab, is_sequence=False)
        img.meta = {}
        return img

    @property
    def truth_myocardium(self) -> np.ndarray:
        return (self.labels == 1) | (self.labels == 3)

    @property
    def truth_scar(self) -> np.ndarray:
        return self.labels == 3


def classes_of(phantom_labels: np.ndarray) -> np.ndarray:
    """Phantom / data-contract labels → network classes (papillary muscle and RV are background)."""
    lab = np.asarray(phantom_labels)
    out = np.full(lab.shape, BACKGROUND, np.uint8)
    out[lab == 1] = MYOCARDIUM
    out[lab == 2] = BLOOD
    out[lab == 3] = SCAR
    return out


def phantom_stack(seed: int, *, shifted: bool = False, scar: str | None = None, slices=None,
                  magnitude: bool | None = None) -> ScarStack:
    """One phantom subject's LGE stack and cine (see the module docstring). ``scar`` forces the
    scar type; ``magnitude`` the LGE image (default: PSIR, or random for training seeds)."""
    from dataclasses import replace

    from ..phantom import Phantom
    from ..phantom.sets import subject
    ph, rng = subject(seed, shifted)
    if scar is not None:
        from ..phantom import PhantomOptions, sample_subject
        from ..phantom.sets import shifted_options
        opt = shifted_options(seed) if shifted else PhantomOptions(field_t=1.5, la=False, matrix=ph.s.matrix,
                                                                   pixel_mm=ph.s.pixel_mm)
        s = sample_subject(seed, replace(opt, scar=scar))
        ph = Phantom(s)
    ks = None if slices is None else list(slices)
    psir, mag = ph.lge(ks)
    use_mag = bool(rng.random() < 0.3) if magnitude is None else magnitude
    series = mag if use_mag else psir
    lge = series.image
    lge.meta = {**lge.meta, "TriggerTime": psir.truth["trigger_time_ms"], "SliceThickness": ph.s.slice_thickness_mm,
                "kind": series.kind}
    n_ph = int(ph.s.n_phases)
    matched = int(round(psir.truth["trigger_time_ms"] / ph.s.rr_ms * n_ph)) % n_ph
    cine = ph.cine(ks, n_phases=n_ph, phases=[matched + o for o in FRAME_OFFSETS])
    cimg = cine.image
    cimg.meta = {**cimg.meta, "rr_ms": ph.s.rr_ms, "kind": "cine"}
    kind = "none" if ph.s.scar is None else ph.s.scar.kind
    return ScarStack(lge, cimg, np.asarray(psir.labels.array), np.asarray(cine.labels.array), psir.aha, kind, seed,
                     {"magnitude": use_mag, "matched_phase": matched, "shifted": shifted,
                      "misregistration": psir.truth.get("misregistration_vs_cine")})


def phantom_stacks(first_seed: int, n: int, *, shifted: bool = False, progress=None) -> list[ScarStack]:
    """``n`` subjects from ``first_seed``, scar types cycling ischaemic / non-ischaemic / none."""
    from ..progress import report
    out = []
    for i in range(n):
        report(progress, "phantom stacks", i, n, f"subject {i + 1}/{n}")
        out.append(phantom_stack(first_seed + i, shifted=shifted, scar=SCAR_KINDS[i % 3]))
    return out


# ---- user data ---------------------------------------------------------------------------------------
def user_stacks(folder: str | Path) -> list[ScarStack]:
    """``NAME_lge`` + ``NAME_labels`` (+ optional ``NAME_cine``) images in ``folder`` (NRRD / NIfTI /
    MHA). Labels on the LGE grid in the data contract (0 background, 1 myocardium, 2 blood pool,
    3 scar). The cine is the already-matched frame per LGE slice on its own grid, ``[slice, row,
    col]`` with the LGE's slice count (2-D for a one-slice LGE)."""
    from ..io import read_image
    from ..io.files import SUFFIXES
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"--data {folder}: not a folder")

    def stem(p: Path) -> str:
        name = p.name
        for suf in sorted(SUFFIXES, key=len, reverse=True):
            if name.lower().endswith(suf):
                return name[: -len(suf)]
        return p.stem

    files = {stem(p): p for p in sorted(root.iterdir()) if p.is_file() and p.name.lower().endswith(SUFFIXES)}
    names = sorted(s[: -len("_lge")] for s in files if s.endswith("_lge"))
    if not names:
        raise InputError(f"--data {folder}: no NAME_lge images (with NAME_labels, optional NAME_cine); see the README "
                         "'Scar training data'")
    out = []
    for name in names:
        if f"{name}_labels" not in files:
            raise InputError(f"--data {folder}: {name}_lge has no {name}_labels")
        lge = read_image(files[f"{name}_lge"])
        labels = np.asarray(read_image(files[f"{name}_labels"]).array)
        if labels.shape != tuple(lge.spatial_shape):
            raise InputError(f"--data {folder}: {name}_labels is {labels.shape}, not the LGE's {lge.spatial_shape}")
        cine, cine_labels = None, None
        if f"{name}_cine" in files:
            c = read_image(files[f"{name}_cine"])
            arr = np.asarray(c.array, np.float32)
            if arr.shape[0] != labels.shape[0]:
                raise InputError(f"--data {folder}: {name}_cine has {arr.shape[0]} slices, the LGE {labels.shape[0]}")
            cine = Image(arr[None], c.spacing, c.origin, c.direction, True, {"kind": "cine"}, [{"TriggerTime": 0.0}])
        if not np.isin(labels, (0, 1, 2, 3)).all():
            raise InputError(f"--data {folder}: {name}_labels holds values other than 0–3")
        out.append(ScarStack(lge, cine, labels.astype(np.uint8), cine_labels,
                             scar="scar" if (labels == 3).any() else "none", meta={"name": name, "user": True}))
    return out


# ---- samples ---------------------------------------------------------------------------------------------
def _cine2d(st: ScarStack, k: int, frame: int) -> np.ndarray:
    arr = np.asarray(st.cine.array, np.float32)
    return arr[frame] if arr.ndim == 3 else arr[frame, k]


def _cine_centre(st: ScarStack, k: int, frame: int, fallback: np.ndarray | None) -> np.ndarray | None:
    if st.cine_labels is None:
        return fallback
    lab = st.cine_labels[frame] if st.cine_labels.ndim == 3 else st.cine_labels[frame, k]
    c = centre_from_mask(lab)
    return c if c is not None else fallback


def _matched_frame(st: ScarStack) -> int:
    return FRAME_OFFSETS.index(0) if st.cine is not None and st.cine.n_frames == len(FRAME_OFFSETS) else 0


def training_sample(st: ScarStack, k: int, config, rng: np.random.Generator, *, augment: bool = True,
                    centre_sd_mm: float = 2.5) -> tuple[np.ndarray, np.ndarray]:
    """One ``([C, S, S] input, [S, S] classes)`` pair of slice ``k`` (see the module docstring)."""
    lge2d = np.asarray(st.lge.array[k], np.float32)
    sp_l = st.lge.spacing
    c_lge = centre_from_mask(st.labels[k])
    fusion = config.inputs == "fusion"
    frame = _matched_frame(st)
    if fusion and augment and st.cine is not None and st.cine.n_frames > 1 and rng.random() < 0.25:
        frame = int(rng.integers(0, st.cine.n_frames))  # a neighbouring phase: imperfect trigger matching
    c_cine = _cine_centre(st, k, frame, c_lge) if fusion else None
    if augment:
        def jitter(c, spacing):
            if c is None:
                return None
            return c + rng.normal(0, centre_sd_mm, 2) / np.asarray(spacing[:2])
        c_lge_used, c_cine_used = jitter(c_lge, sp_l), (jitter(c_cine, st.cine.spacing) if fusion else None)
    else:
        c_lge_used, c_cine_used = c_lge, c_cine
    pm_l = grid_map(lge2d.shape, sp_l, c_lge_used, config)
    cine2d, pm_c = None, None
    if fusion:
        cine2d = _cine2d(st, k, frame)
        pm_c = grid_map(cine2d.shape, st.cine.spacing, c_cine_used, config)
    if augment:
        seed = int(rng.integers(0, 2 ** 31))
        rot = 180.0 if rng.random() < 0.5 else 15.0
        flip = bool(rng.random() < 0.5)
        # the same rotation / flip / scale / shift for both images keeps them aligned
        pm_l = jitter_map(pm_l, np.random.default_rng(seed), rot, 0.2, 6.0, flip)
        if fusion:
            pm_c = jitter_map(pm_c, np.random.default_rng(seed), rot, 0.2, 6.0, flip)
        lge2d = degrade(lge2d, rng)
        if rng.random() < 0.15:
            lge2d = corrupt(lge2d, rng, severity=float(rng.uniform(0.1, 0.4)))
        if fusion:
            cine2d = degrade(cine2d, rng)
            if rng.random() < 0.1:
                cine2d = corrupt(cine2d, rng, severity=float(rng.uniform(0.1, 0.4)))
    x = network_input(lge2d, pm_l, cine2d, pm_c)
    y = pm_l.sample(classes_of(st.labels[k]).astype(np.float32), order=0).astype(np.uint8)
    return x, y

"""Phantom IRW sets for MOCOnet training and held-out evaluation.

Training sample (appendix A.1 recipe): a motion-free phantom IRW set (random subject,
position and scheme: ShMOLLI 7, MOLLI 5(3)3 8, MOLLI 3(3)3(3)5 11 frames; the phantom's
default sequence-level IRW simulation, cmrlib.t1.sequence) deformed by random
smooth, topology-preserving displacement fields (respiratory drift + jitter + non-rigid,
severity 0..1; the phantom's motion generator), mean displacement over frames removed.
The network learns the inverse (sampling) DVFs that undo the deformation.

Seeds: training, validation and motion-free training subjects come from ``TRAIN_SEED_BASE``
and ``STILL_SEED_BASE`` ranges; evaluation uses ``HELDOUT_SEED_BASE``; the ranges never overlap.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TRAIN_SEED_BASE = 10_000  # training sets; validation sets start at TRAIN_SEED_BASE + 500_000
STILL_SEED_BASE = 710_000  # motion-free training sets
HELDOUT_SEED_BASE = 900_000
SCHEMES = ("ShMOLLI", "MOLLI 5(3)3", "MOLLI 3(3)3(3)5")
#: version of the phantom IRW images the sets are drawn from (training caches are keyed by it):
#: "seq1" = the sequence-level Bloch simulation of cmrlib.t1.sequence (issue #11)
IRW_SIGNAL_VERSION = "seq1"
MATRIX = 144  # phantom matrix for training: the compact network's input size (2.5 mm pixels)
#: Training severities are drawn from U(0, TRAIN_MAX_SEVERITY): wider than the 0..1 evaluation
#: range, because most phantom motion at severity < 0.5 is sub-pixel at 2.5 mm and gives the
#: network little to learn from; larger displacements teach the correspondence faster.
TRAIN_MAX_SEVERITY = 1.6


@dataclass
class MotionSample:
    frames: np.ndarray  # [n, h, w] deformed IRW frames, ordered by TI (real units)
    clean: np.ndarray  # [n, h, w] the motion-free frames
    inverse_dvf: np.ndarray  # [n, 2, h, w] sampling DVFs that undo the motion (pixels), mean removed
    forward_dvf: np.ndarray  # [n, 2, h, w] frame f shows the motion-free anatomy at x + d_f(x)
    inversion_times_ms: list[float]
    labels: np.ndarray  # [h, w] motion-free label map (1 myocardium)
    t1_true_ms: np.ndarray  # [h, w] T1 (ms) an ideal fit of the motion-free, noise-free frames reads
    severity: float
    scheme: str
    seed: int


def _phantom(seed: int, matrix: int):
    from ..phantom import Phantom, PhantomOptions, sample_subject
    return Phantom(sample_subject(seed, PhantomOptions(matrix=matrix, la=False, motion=0.0)))


def deform(clean: np.ndarray, pixel_mm: float, severity: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray,
                                                                                                  np.ndarray]:
    """(deformed frames, inverse sampling DVFs, forward DVFs) of motion-free frames ``[n, h, w]``:
    the phantom's motion generator at ``severity``, mean displacement over frames removed."""
    from ..phantom.artefacts import invert_displacement, motion_fields, warp
    n, h, w = clean.shape
    centre = (h / 2 + rng.normal(0, h / 20), w / 2 + rng.normal(0, w / 20))
    angle = rng.uniform(0, 2 * np.pi)
    forward, _ = motion_fields(n, (h, w), float(pixel_mm), severity, np.array([np.cos(angle), np.sin(angle)]),
                               centre, rng)
    forward = forward - forward.mean(axis=0, keepdims=True)  # groupwise: relative motion only
    frames = np.stack([warp(clean[f], forward[f]) for f in range(n)]) if severity > 0 else clean.copy()
    inverse = np.stack([invert_displacement(forward[f]) for f in range(n)])
    return frames, inverse.astype(np.float32), forward.astype(np.float32)


def make_sample(seed: int, severity: float | None = None, scheme: str | None = None, matrix: int = MATRIX,
                snr: float | None = None, max_severity: float = TRAIN_MAX_SEVERITY) -> MotionSample:
    """One deformed IRW set; ``severity`` (U(0, max_severity)) and ``scheme`` random from ``seed`` when None."""
    from ..phantom import POSITIONS
    rng = np.random.default_rng(seed)
    severity = float(rng.uniform(0.0, max_severity)) if severity is None else float(severity)
    scheme = scheme or SCHEMES[int(rng.integers(0, len(SCHEMES)))]
    ph = _phantom(seed, matrix)
    if snr is not None:
        ph.s.snr["irw"] = snr
    series = ph.irw(POSITIONS[int(rng.integers(0, 3))], "native", scheme, motion_severity=0.0)
    clean = series.image.frames()[:, 0].astype(np.float32)
    frames, inverse, forward = deform(clean, float(series.image.spacing[0]), severity, rng)
    return MotionSample(frames, clean, inverse, forward,
                        [float(t) for t in series.image.frame_values("InversionTime")],
                        series.labels.array[0], series.maps["t1_fit_ms"].array[0], severity, scheme, seed)


def heldout_sample(index: int, severity: float, scheme: str | None = None, matrix: int = 192) -> MotionSample:
    """Held-out evaluation set ``index`` (subject seeds disjoint from training) at ``severity``."""
    return make_sample(HELDOUT_SEED_BASE + index, severity, scheme or SCHEMES[index % len(SCHEMES)], matrix)


# ---- a site's own IRW series (``cmr train moconet --data DIR``) -------------------------------------
def user_irw_series(folder) -> list[tuple[np.ndarray, float, str]]:
    """Motion-free (or motion-corrected) IRW series of a user: ``(frames [n, h, w] ordered by TI,
    pixel mm, name)`` from every NRRD / NIfTI / MHA sequence file with an InversionTime per frame
    (as `cmr run` writes them) and every IRW series of the DICOM folders in ``folder``. Training
    deforms them with the same synthetic motion as the phantom's sets (:func:`deform`)."""
    from pathlib import Path

    from ..errors import InputError
    from ..io import read_image
    from ..io.dicom import load_series, scan_folder
    from ..io.files import SUFFIXES
    from .pipeline import check_irw
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"--data {folder}: not a folder")
    images = []
    for p in sorted(root.iterdir()):
        if p.is_file() and p.name.lower().endswith(SUFFIXES):
            images.append((read_image(p), p.name))
        elif p.is_dir():
            scan = scan_folder(p)
            images += [(load_series(s), f"{p.name}/{s.description or s.series_uid}") for s in scan.of_kind("irw")]
    out = []
    for img, name in images:
        try:
            tis = check_irw(img)
        except InputError as e:
            raise InputError(f"--data {folder}: {name}: {e}") from None
        frames = img.frames()
        if frames.shape[1] != 1:
            raise InputError(f"--data {folder}: {name} has {frames.shape[1]} slices; MOCOnet trains on one slice per "
                             "series")
        order = np.argsort(tis)
        out.append((frames[order, 0].astype(np.float32), float(img.spacing[0]), name))
    if not out:
        raise InputError(f"--data {folder}: no IRW series (sequence files with an InversionTime per frame, or DICOM "
                         "folders holding IRW series); see the README 'MOCOnet training data'")
    return out


def user_sample(series: tuple[np.ndarray, float, str], seed: int, size: int,
                severity: float | None = None, max_severity: float = TRAIN_MAX_SEVERITY) -> tuple[np.ndarray,
                                                                                                 np.ndarray]:
    """(deformed frames, inverse DVFs) of one user series on a ``size`` × ``size`` grid covering
    its field of view (pixel size scaled accordingly), at a random severity from ``seed``."""
    from scipy import ndimage
    frames, pixel_mm, _ = series
    rng = np.random.default_rng(seed)
    severity = float(rng.uniform(0.0, max_severity)) if severity is None else float(severity)
    n, h, w = frames.shape
    zoom = (size / h, size / w)
    clean = np.stack([ndimage.zoom(f, zoom, order=1) for f in frames])[:, :size, :size]
    deformed, inverse, _ = deform(clean.astype(np.float32), pixel_mm * h / size, severity, rng)
    return deformed, inverse

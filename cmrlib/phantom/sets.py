"""Phantom subjects of the training and the *shifted* evaluation sets, one definition for every network.

:func:`subject` ``(seed, shifted=False, clinical=False)``:

* training (``shifted=False``) — 1.5 T, matrix 80–160 and pixel 1.4–4 mm (field of view 220–380 mm);
* shifted (:func:`shifted_options`) — 3 T, other matrices and SNR, poor LGE nulling and bright
  blood, hearts 20–30 % smaller or larger than any in training;
* clinical (:func:`clinical_options`) — the clinical T1-mapping protocol of the dT1 paper's test
  data: the ShMOLLI prototype at 1.5 T (a third at 3 T), reconstructed pixels of 1.6–1.9 mm.

It returns ``(Phantom, rng)``: the rng (seeded from the subject seed) is what callers draw
their slice choices from, so a seed always gives the same images.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

def shifted_options(seed: int):
    """Phantom options of the shifted evaluation set (3 T, other SNR and contrast settings)."""
    from . import PhantomOptions
    rng = np.random.default_rng(seed)
    return PhantomOptions(field_t=3.0, la=False, matrix=int(rng.choice([112, 128, 160])),
                          snr=float(rng.uniform(8.0, 14.0)),
                          artefacts={"nulling": float(rng.uniform(0.3, 0.8)), "bright_blood": float(rng.uniform(0.2, 0.7))})


def clinical_options(seed: int):
    """Phantom options of the clinical T1-mapping protocol (the dT1 paper's test data, thesis
    ch. 3: Siemens ShMOLLI prototype at 1.5 and 3 T): matrix 192 over a 300–360 mm field of view."""
    from . import PhantomOptions
    rng = np.random.default_rng(seed + 29)
    field = float(rng.choice([1.5, 1.5, 3.0]))
    return PhantomOptions(field_t=field, la=False, matrix=192, pixel_mm=float(rng.uniform(300.0, 360.0) / 192),
                          scheme="ShMOLLI")


def subject(seed: int, shifted: bool = False, clinical: bool = False):
    """``(Phantom, rng)`` of ``seed`` in the training (1.5 T), the shifted or the clinical-protocol set."""
    from . import Phantom, PhantomOptions, sample_subject
    rng = np.random.default_rng(seed + 17)
    if clinical:
        opt = clinical_options(seed)
    elif shifted:
        opt = shifted_options(seed)
    else:
        matrix = int(rng.choice([80, 96, 112, 128, 144, 160]))
        pixel = float(np.clip(rng.uniform(220.0, 380.0) / matrix, 1.4, 4.0))
        opt = PhantomOptions(field_t=1.5, la=False, matrix=matrix, pixel_mm=pixel)
    s = sample_subject(seed, opt)
    if shifted:  # heart sizes outside the training range
        k = float(rng.choice([rng.uniform(0.72, 0.8), rng.uniform(1.2, 1.3)]))
        s = replace(s, lv_length_mm=s.lv_length_mm * k, endo_radius_mm=s.endo_radius_mm * k,
                    wall_mm=s.wall_mm * k, rv_width_mm=s.rv_width_mm * k)
    return Phantom(s), rng


def extended_phantom(seed: int, shifted: bool, rng: np.random.Generator, at_least: int = 0):
    """The subject's phantom with its short-axis stack extended by ``at_least``–2 slices above the
    base and ``at_least``–2 beyond the apex (slices without an LV, for the slice-level classifier
    and the landmarks' LV-presence gate)."""
    from . import Phantom
    ph, _ = subject(seed, shifted)
    s = ph.s
    above, beyond = int(rng.integers(at_least, 3)), int(rng.integers(at_least, 3))
    s2 = replace(s, first_slice_z_mm=s.first_slice_z_mm - above * s.slice_spacing_mm,
                 n_slices=s.n_slices + above + beyond)
    return Phantom(s2)

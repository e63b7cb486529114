"""``cmr phantom``: write synthetic CMR studies (DICOM + ground truth) to disk.

Example::

    cmr phantom --out phantoms --seed 1 --subjects 5 --field 3 --scar ischemic --stress --motion 0.5

writes ``phantoms/subject_000`` ... ``subject_004``, each with ``dicom/``, ``truth/``,
``truth.json`` and ``sheets/`` (see :mod:`cmrlib.phantom.writer`).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

from ..errors import InputError
from .generate import Phantom
from .params import ARTEFACTS, IRW_MODELS, IRW_SCHEMES, PhantomOptions, TERRITORIES, sample_subject, subject_seeds


def _artefact(text: str) -> tuple[str, float]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected NAME=SEVERITY (e.g. ghosting=0.5); got {text!r}")
    name, value = text.split("=", 1)
    if name not in ARTEFACTS:
        raise argparse.ArgumentTypeError(f"unknown artefact {name!r}; known: {', '.join(ARTEFACTS)}")
    try:
        sev = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"severity must be a number 0..1; got {value!r}") from None
    if not 0.0 <= sev <= 1.0:
        raise argparse.ArgumentTypeError(f"severity must be 0..1; got {sev}")
    return name, sev


def _snr(text: str) -> float:
    v = float(text)
    if not (v > 0 or math.isinf(v)):
        raise argparse.ArgumentTypeError(f"SNR must be positive or inf; got {text}")
    return v


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``cmr phantom``."""
    parser.add_argument("--out", required=True, help="output folder; one sub-folder per subject")
    parser.add_argument("--seed", type=int, default=0, help="base seed; subject seeds derive from it (default 0)")
    parser.add_argument("--subjects", type=int, default=1, help="number of subjects (default 1)")
    parser.add_argument("--field", type=float, choices=(1.5, 3.0), default=None, help="field strength in T (default random)")
    parser.add_argument("--scar", choices=("ischemic", "nonischemic", "none"), default=None, help="scar type (default random)")
    parser.add_argument("--phenotype", choices=("normal", "hcm"), default=None, help="LV phenotype (default random)")
    parser.add_argument("--stress", action="store_true", help="also make stress IRW sets and T1 maps")
    parser.add_argument("--no-post", action="store_true", help="skip the post-contrast IRW sets and T1 maps")
    parser.add_argument("--stress-territory", choices=(*TERRITORIES, "none"), default=None,
                        help="coronary territory with blunted stress T1 reactivity (default random)")
    parser.add_argument("--motion", type=float, default=None, help="IRW motion severity 0..1 (default random)")
    parser.add_argument("--snr", type=_snr, default=None, help="SNR of every series (myocardium / LGE blood); inf = noise-free")
    parser.add_argument("--artefact", type=_artefact, action="append", default=[], metavar="NAME=SEV",
                        help="set an artefact severity 0..1 (repeatable): " + ", ".join(ARTEFACTS))
    parser.add_argument("--clean", action="store_true", help="no artefacts and no noise")
    parser.add_argument("--matrix", type=int, default=256, help="in-plane matrix (default 256)")
    parser.add_argument("--pixel", type=float, default=None, help="pixel size mm (default max(1.4, 300/matrix))")
    parser.add_argument("--phases", type=int, default=None, help="cine phases (default random 20-30)")
    parser.add_argument("--slices", type=int, default=None, help="SAX slices (default to cover base to apex, 8-14)")
    parser.add_argument("--thickness", type=float, default=None, help="slice thickness mm, no gap (default random 6-10 + gap)")
    parser.add_argument("--scheme", choices=IRW_SCHEMES, default=None, help="native IRW scheme (default random)")
    parser.add_argument("--irw-model", choices=IRW_MODELS, default="sequence",
                        help="IRW signal model: sequence-level Bloch simulation (default) or the ideal "
                             "full-recovery Look-Locker formula")
    parser.add_argument("--rr-sd", type=float, default=0.0, metavar="MS",
                        help="beat-to-beat R-R variability (SD, ms) during IRW breath-holds (default 0)")
    parser.add_argument("--af", action="store_true", default=None, help="atrial fibrillation substrate (enlarged fibrotic LA)")
    parser.add_argument("--no-la", action="store_true", help="skip the left-atrial 3D LGE volume")
    parser.add_argument("--la-matrix", type=int, default=160, help="in-plane matrix of the LA 3D LGE (1.25 mm pixels, default 160)")
    parser.add_argument("--no-sheets", action="store_true", help="skip the PNG contact sheets")
    parser.add_argument("--overwrite", action="store_true", help="replace existing subject folders")
    parser.add_argument("--zip", default=None, metavar="PATH",
                        help="also zip the (single) subject folder to PATH and write, beside it, a thumbnail "
                             "<name>.png and sampledata.json (file, SHA256, size, this command): the bundled study")


def command_line(args: argparse.Namespace) -> str:
    """The ``cmr phantom`` command that reproduces ``args`` (recorded with the bundled study)."""
    parts = ["cmr", "phantom", "--out", str(args.out), "--seed", str(args.seed)]
    flags = {"subjects": 1, "field": None, "scar": None, "phenotype": None, "stress_territory": None, "motion": None,
             "snr": None, "matrix": 256, "pixel": None, "phases": None, "slices": None, "thickness": None,
             "scheme": None, "la_matrix": 160, "zip": None, "irw_model": "sequence", "rr_sd": 0.0}
    for key, default in flags.items():
        value = getattr(args, key, default)
        if value != default:
            text = f"{value:g}" if isinstance(value, float) else str(value)
            parts += [f"--{key.replace('_', '-')}", f"'{text}'" if " " in text else text]
    for name, sev in args.artefact:
        parts += ["--artefact", f"{name}={sev:g}"]
    for key in ("stress", "no_post", "clean", "af", "no_la", "no_sheets"):
        if getattr(args, key):
            parts.append(f"--{key.replace('_', '-')}")
    return " ".join(parts)


def options_from_args(args: argparse.Namespace) -> PhantomOptions:
    """PhantomOptions from parsed ``cmr phantom`` arguments (validated)."""
    opt = PhantomOptions(
        field_t=args.field, scar=args.scar, phenotype=args.phenotype, stress=args.stress, post=not args.no_post,
        stress_territory=args.stress_territory, motion=args.motion, snr=args.snr,
        artefacts=dict(args.artefact), clean=args.clean, matrix=args.matrix, pixel_mm=args.pixel,
        n_phases=args.phases, n_slices=args.slices, slice_thickness_mm=args.thickness, scheme=args.scheme,
        la=not args.no_la, la_matrix=args.la_matrix, af=args.af,
        irw_model=getattr(args, "irw_model", "sequence"), rr_sd_ms=getattr(args, "rr_sd", 0.0))
    opt.validate()
    return opt


def run(args: argparse.Namespace) -> int:
    """Generate and write the subjects; print one line per subject. Exit code 0 on success."""
    from ..progress import make_progress
    from ..models.zoo import sha256_of
    from .writer import thumbnail, write_study, zip_folder
    if args.subjects < 1:
        raise InputError(f"--subjects must be >= 1; got {args.subjects}")
    if args.zip and args.subjects != 1:
        raise InputError("--zip packs one subject; use --subjects 1")
    opt = options_from_args(args)
    out = Path(args.out)
    progress = make_progress(args)
    seeds = [args.seed] if args.subjects == 1 else subject_seeds(args.seed, args.subjects)
    written = []
    for k, seed in enumerate(seeds):
        folder = out / f"subject_{k:03d}"
        if folder.exists() and any(folder.iterdir()) and not args.overwrite:
            raise InputError(f"{folder} exists and is not empty; use --overwrite or another --out")
        t0 = time.perf_counter()
        subject = sample_subject(seed, opt)
        study = Phantom(subject).study(opt, progress)
        t1 = time.perf_counter()
        write_study(study, folder, sheets=not args.no_sheets, overwrite=args.overwrite, progress=progress)
        t2 = time.perf_counter()
        if hasattr(progress, "close"):
            progress.close()
        scar = subject.scar.kind + "/" + subject.scar.pattern if subject.scar else "none"
        print(f"{folder}: seed {seed}, {subject.field_t:g} T, {subject.phenotype}, scar {scar}, "
              f"{len(study.series)} series, {subject.n_slices} slices x {subject.n_phases} phases "
              f"(generated {t1 - t0:.1f} s, written {t2 - t1:.1f} s)")
        written.append(folder)
        last_study = study
    if args.zip:
        path = zip_folder(written[0], args.zip)
        thumb = path.with_suffix(".png")
        thumbnail(last_study).save(thumb)
        record = {"name": path.stem, "file": path.name, "sha256": sha256_of(path), "size_bytes": path.stat().st_size,
                  "thumbnail": thumb.name, "command": command_line(args), "seed": seeds[0],
                  "contents": "dicom/ (one folder per series), truth/ (NRRD masks and maps), truth.json",
                  "synthetic": True}
        (path.parent / "sampledata.json").write_text(json.dumps(record, indent=2) + "\n")
        print(f"zipped {written[0]} -> {path} ({path.stat().st_size / 1e6:.2f} MB), sha256 {record['sha256']}")
    print(f"{len(written)} synthetic subject(s) in {out} (phantom data, not patient data)", file=sys.stderr)
    return 0

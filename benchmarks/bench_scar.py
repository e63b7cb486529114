"""Scar quantification: held-out and shifted phantom LGE stacks — slices segmented, %scar and
myocardial-volume slope / r, scar detection, Bland–Altman, success by level, for the fusion
U-Net, the LGE-only U-Net and the classical n-SD / FWHM thresholds (true myocardium); speed per
slice (inference, post-processing) and end to end.

Environment: CMR_BENCH_SUBJECTS (held-out stacks; shifted: half; default 30), CMR_MODELS_DIR
(weights to test; default the bundled ones). Published (seed 003, 66 HCM patients, 635 slices):
fusion / LGE-only slices segmented 95 / 89 %; %scar slope 0.82 (r 0.84) / 0.47 (r 0.81); volume
slope 1.03 (r 0.96) / 0.91 (r 0.91); detection accuracy / specificity / sensitivity 89/96/77 % /
80/93/57 %; bias −0.3 % scar, 7 mL; apical slices 89 / 79 %; < 0.05 s inference and < 0.10 s
post-processing per slice.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cmrlib.models.zoo import model_installed
from cmrlib.scar.data import SHIFTED_SEED_BASE, TEST_SEED_BASE, phantom_stacks
from cmrlib.scar.evaluate import evaluate_stacks
from cmrlib.scar.pipeline import METHODS, MODEL_NAMES

PUBLISHED = {"fusion": {"success": 95, "scar_slope": 0.82, "scar_r": 0.84, "volume_slope": 1.03, "volume_r": 0.96},
             "lge-only": {"success": 89, "scar_slope": 0.47, "scar_r": 0.81, "volume_slope": 0.91, "volume_r": 0.91}}


def _pct(v):
    return None if v is None or v != v else round(100 * v, 1)


def _row(set_name: str, method: str, a: dict) -> dict:
    loa = (lambda t: "–" if t is None else f"[{t[0]:.1f}, {t[1]:.1f}]")  # noqa: E731
    r = lambda k, n=2: None if a.get(k) is None or a.get(k) != a.get(k) else round(a[k], n)  # noqa: E731
    return {"set": set_name, "method": method, "slices": a["slices"], "segmented %": _pct(a["success_rate"]),
            "%scar slope": r("scar_slope"), "%scar r": r("scar_r"), "volume slope": r("volume_slope"),
            "volume r": r("volume_r"), "detect acc %": _pct(a.get("detection_accuracy")),
            "spec %": _pct(a.get("detection_specificity")), "sens %": _pct(a.get("detection_sensitivity")),
            "%scar bias [LoA]": f"{r('scar_bias', 1)} {loa(a.get('scar_loa'))}",
            "volume bias [LoA] mL": f"{r('volume_bias', 1)} {loa(a.get('volume_loa'))}",
            "basal / mid / apical %": f"{_pct(a['success_basal'])} / {_pct(a['success_mid'])} / "
                                      f"{_pct(a['success_apical'])}", "mean slice Dice": r("mean_slice_dice")}


def _r(v, n=2):
    return None if v is None or v != v else round(v, n)


def _command_seconds(stack) -> float | None:
    """`cmr scar` on NRRD files of one stack, start-up included (fusion when installed)."""
    from cmrlib.io import write_image
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        write_image(stack.lge, d / "lge.nrrd")
        write_image(stack.cine, d / "cine.nrrd")
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "cmrlib.cli", "scar", "--lge", str(d / "lge.nrrd"), "--cine",
                               str(d / "cine.nrrd"), "--out", str(d / "out"), "--quiet"], capture_output=True,
                              text=True)
        return round(time.perf_counter() - t0, 2) if done.returncode == 0 else None


def run():
    n = int(os.environ.get("CMR_BENCH_SUBJECTS", "30"))
    methods = [m for m in METHODS if m not in MODEL_NAMES or model_installed(MODEL_NAMES[m])]
    missing = [MODEL_NAMES[m] for m in MODEL_NAMES if m not in methods]
    held = phantom_stacks(TEST_SEED_BASE, n)
    shifted = phantom_stacks(SHIFTED_SEED_BASE, max(6, n // 2), shifted=True)
    results = {"held-out": evaluate_stacks(held, methods), "shifted": evaluate_stacks(shifted, methods)}
    nets = [m for m in methods if m in MODEL_NAMES]
    if nets:  # the card's 1-pixel dilation beside each model's calibrated one
        for set_name, stacks in (("held-out", held), ("shifted", shifted)):
            card = evaluate_stacks(stacks, nets, dilate_px=1)
            for m, r in card["methods"].items():
                results[set_name]["methods"][f"{m} (card's 1-px dilation)"] = r
    for which, title in (("success_only", "totals over successfully segmented slices (the paper's analysis)"),
                         ("all_slices", "totals over all slices")):
        rows = [_row(set_name, m, r[which]) for set_name, res in results.items() for m, r in res["methods"].items()]
        yield f"Table 2 / 3 like — {title}", rows
    qc = [{**_row(set_name, m, r["qc_passed"]), "flagged for review": r["flagged_for_review"]}
          for set_name, res in results.items() for m, r in res["methods"].items() if m in ("fusion", "lge-only")]
    yield ("Without the stacks the result flags for review (fusion and LGE-only disagree, implausible volume; "
           "no truth used) — as the paper left out its 4 failed patients"), qc
    by_type = []
    for set_name, res in results.items():
        for m in ("fusion", "lge-only", "nsd5"):
            for kind, a in res["methods"].get(m, {}).get("qc_passed_by_scar", {}).items():
                mae = a.get("scar_mae")
                by_type.append({"set": set_name, "method": m, "scar": kind, "stacks": a["stacks"],
                                "truth %scar mean ± sd": a.get("truth_scar_mean_sd"),
                                "%scar slope": "–" if kind == "none" else _r(a.get("scar_slope")),
                                "%scar r": "–" if kind == "none" else _r(a.get("scar_r")),
                                "%scar mean abs error": _r(mae), "segmented %": _pct(a["success_rate"])})
    yield "By scar type (without the flagged stacks; no-scar stacks have no slope)", by_type
    ratios = []
    for set_name, res in results.items():
        got = res["methods"]
        for base in ("lge-only", "nsd5", "fwhm"):
            if "fusion" in got and base in got:
                f, b = got["fusion"]["success_only"], got[base]["success_only"]
                ratios.append({"set": set_name, "fusion vs": base,
                               "segmented ratio": round(f["success_rate"] / b["success_rate"], 3)
                               if b["success_rate"] else None,
                               "abs(slope − 1) ratio": round(abs(f.get("scar_slope", 0) - 1) / abs(b.get("scar_slope", 0) - 1), 3)
                               if b.get("scar_slope") not in (None, 1.0) else None})
    if ratios:
        yield "Fusion against the baselines (abs(slope − 1) ratio < 1: fusion closer to the truth)", ratios
    pub = [{"method": m, **{k: v for k, v in p.items()}} for m, p in PUBLISHED.items()]
    yield "Published (seed 003, 66 HCM patients)", pub
    timing = results["held-out"]["timing"]
    speed = [{"step": k.replace("_", " "), "s": round(v, 4)} for k, v in sorted(timing.items())]
    if "fusion" in methods:
        speed.append({"step": "cmr scar command, one stack (fusion, start-up included)",
                      "s": _command_seconds(held[0])})
    yield "Speed (CPU, compact presets; median per stack)", speed
    if missing:
        yield "Not compared", [{"model": m, "why": "not installed (cmr train scar)"} for m in missing]

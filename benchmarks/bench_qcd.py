"""QCD: held-out phantom subjects with corrupted images (Dice of the selected candidate vs the
deepest single U-Net, predicted-Dice MAE vs a constant predictor, good/poor accuracy with the
confusion matrix, wrong-and-unflagged share), by contrast and scar pattern, the shifted set,
the card's Table 4.1 (training contrasts), and speed (compact ensemble on a 10-slice stack,
paper preset per slice).

Environment: CMR_BENCH_SUBJECTS (held-out subjects per set, default 12), CMR_MODELS_DIR (the
weights to test; default the bundled qcd-compact), CMR_QCD_TABLE_MODELS (comma-separated
``label=model`` pairs for Table 4.1, e.g. ``LGE=qcd-lge,VNE=qcd-vne,LGE+VNE=qcd-lgevne``; rows
are skipped for models not installed). Published (thesis ch. 4, 309 LGE + 309 VNE test
images): Dice 0.845 ± 0.075 (LGE), 0.845 ± 0.071 (VNE); MAE 0.043; accuracy 0.951.
"""
from __future__ import annotations

import os
import time

from cmrlib.qcd.evaluate import evaluate


def _paper_speed() -> dict:
    """Paper preset (256 px, 32…1024 filters; untrained weights: speed only) per slice on this CPU."""
    import torch

    from cmrlib.qcd.unet import QCDConfig, QCDEnsemble
    model = QCDEnsemble(QCDConfig.preset("paper")).eval()
    x = torch.zeros(1, 1, 256, 256)
    with torch.no_grad():
        model(x)
        t = time.perf_counter()
        model(x)
    return {"preset": "paper (256 px, 6 U-Nets, 41 M parameters)", "per slice ms": round(1000 * (time.perf_counter() - t), 1)}


def run():
    subjects = int(os.environ.get("CMR_BENCH_SUBJECTS", "12"))
    result = evaluate(subjects=subjects)
    thr = result["threshold"]
    rows = []
    for name, s in result["sets"].items():
        # baselines: the deepest single U-Net (no QC), and a constant predicted Dice (the set's mean Dice)
        rows.append({"set": name, **s})
    yield (f"held-out phantom subjects ({subjects} per set, {int(100 * 0.35)} % corrupted), {result['model']} "
           f"v{result['version']} — {result['notice']}; issue figures: Dice ≥ 0.85, MAE ≤ 0.043, accuracy ≥ 0.95, "
           "≥ 10 % poor", rows)
    ratio_rows = []
    for name, s in result["sets"].items():
        ratio_rows.append({"set": name, "Dice QCD / deepest U-Net": round(s["mean Dice (QCD)"] / s["mean Dice (deepest U-Net)"], 3)
                           if s["mean Dice (deepest U-Net)"] else None,
                           "MAE QCD / MAE constant": round(s["MAE predicted Dice"] / s["MAE constant predictor"], 3)
                           if s["MAE constant predictor"] else None,
                           "QC accuracy": s[f"accuracy @{thr:.2f}"], "poor %": s["poor %"]})
    yield ("QCD against its baselines: the deepest single U-Net (no quality estimate) for Dice, and a constant "
           "predicted Dice (the set's mean) for the MAE", ratio_rows)
    for name in result["by_contrast"]:
        yield f"{name}: by contrast", result["by_contrast"][name]
        yield f"{name}: by scar pattern", result["by_scar"][name]
        yield f"{name}: by corruption", result["by_corruption"][name]
    if "generalisation_gap" in result:
        yield "generalisation gap (held-out vs shifted)", [result["generalisation_gap"]]
    table = os.environ.get("CMR_QCD_TABLE_MODELS", "")
    if table:
        from cmrlib.models import list_models
        have = {m.name for m in list_models()}
        t_rows = []
        for pair in table.split(","):
            label, _, model = pair.partition("=")
            if model not in have:
                continue
            r = evaluate(model, subjects, sets=("heldout",))
            by = {row["contrast"]: row for row in r["by_contrast"]["heldout"]}
            for contrast in ("lge_psir", "lge_magnitude", "vne"):
                if contrast in by:
                    t_rows.append({"trained on": label, "tested on": contrast,
                                   "deepest U-Net Dice": by[contrast]["mean Dice (deepest U-Net)"],
                                   "QCD Dice": by[contrast]["mean Dice (QCD)"],
                                   "MAE predicted Dice": by[contrast]["MAE predicted Dice"]})
        yield "Table 4.1 (compact presets): deepest single U-Net vs QCD by training contrasts", t_rows
    speed = [{"preset": "compact (bundled)", **result["speed"]}]
    speed.append(_paper_speed())
    yield ("speed (this machine's CPU): the whole compact ensemble + QC on a 10-slice stack (issue: < 10 s), "
           "and the paper preset per slice", speed)

"""LGE certainty and LV slice level: held-out and shifted phantom LGE stacks — the cards' Table 3
statistics for certainty (against the simulated raters' mean, the card's labels, and against the
phantom's noise-free class), accuracy / macro ROC AUC / per-class F1 and AUC for the slice level,
each beside a baseline (logistic regression on image statistics; the slice's position in its
stack); network speed per slice and `cmr quality watch` latency from a series' last file to its
verdict.

Environment: CMR_BENCH_SUBJECTS (held-out stacks; shifted: half; default 40), CMR_MODELS_DIR
(weights to test; default the bundled ones). Published: certainty (seed 000, 247 internal / 247
external test images) accuracy 0.94 / 0.91, precision 0.97 / 0.93, recall 0.80 / 0.73, specificity
0.99 / 0.98, F1 0.87 / 0.82, AUC 0.94 / 0.91, inter-rater accuracy 0.86 and Spearman 0.82; slice
level (seed 004, 333 test images) accuracy 0.86, macro AUC 0.95, F1 0.86, per class AUC basal 0.98
/ LV 0.95 / apical 0.97.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cmrlib.quality.evaluate import PUBLISHED_CERTAINTY, PUBLISHED_SLICE_LEVEL, evaluate


def _watch_latency(settle_s: float) -> dict:
    """`cmr quality watch` on a folder that receives a phantom LGE series file by file (10 ms apart)."""
    from cmrlib.phantom import Phantom, PhantomOptions, sample_subject
    from cmrlib.phantom.generate import Study
    from cmrlib.phantom.writer import write_study
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        ph = Phantom(sample_subject(5, PhantomOptions(matrix=160, la=False, n_slices=12)))
        psir, _ = ph.lge()
        study = write_study(Study(ph.s, {"lge_psir": psir}, ph.study_truth({"lge_psir": psir})), d / "study",
                            sheets=False)
        src = next((study / "dicom").iterdir())
        inbox, log = d / "inbox", d / "log.jsonl"
        inbox.mkdir()
        proc = subprocess.Popen([sys.executable, "-m", "cmrlib.cli", "quality", "watch", str(inbox), "--settle",
                                 str(settle_s), "--interval", "0.2", "--max-verdicts", "1", "--max-seconds", "120",
                                 "--log", str(log), "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        ready = proc.stdout.readline()  # "watching …": the watcher has loaded its networks
        if not ready.startswith("watching"):
            return {"settle s": settle_s, "error": (ready + proc.communicate(timeout=60)[1])[-300:]}
        files = sorted(src.iterdir())
        for f in files:
            tmp_name = inbox / (f.name + ".part")
            shutil.copy(f, tmp_name)
            tmp_name.rename(inbox / f.name)  # storescp-like: complete files appear
            time.sleep(0.01)
        t_last = time.time()
        proc.communicate(timeout=180)
        entry = json.loads(log.read_text().splitlines()[0]) if log.is_file() else {}
        return {"settle s": settle_s, "files": len(files), "verdict after last file s":
                round(entry.get("latency_s", float("nan")), 2), "classification s": round(entry.get("seconds", 0), 3),
                "wall s from last file": round(time.time() - t_last, 2)}


def run():
    n = int(os.environ.get("CMR_BENCH_SUBJECTS", "40"))
    res = evaluate(n)
    rows = []
    for set_name, r in res["sets"].items():
        c = r.get("certainty")
        if not c:
            continue
        for key, label in (("rater_mean", "network vs rater mean (card's labels)"),
                           ("baseline_rater_mean", "baseline (image statistics) vs rater mean"),
                           ("noise_free", "network vs noise-free class"),
                           ("baseline_noise_free", "baseline vs noise-free class"),
                           ("ideal_reader_vs_rater_mean", "ceiling: ideal reader of the noise-free likelihood vs rater "
                                                          "mean (Bayes-optimal)")):
            v = c.get(key)
            if not v:
                continue
            rows.append({"set": set_name, "compared": label, "slices": v["n"], "low": v["n_low"],
                         **{k: v[k] for k in ("accuracy", "precision", "recall", "specificity", "f1", "auc")}})
    if rows:
        yield "LGE certainty (Table 3 like; threshold: the model's operating point)", rows
        pub = [{"set": k, **v} for k, v in PUBLISHED_CERTAINTY.items()]
        yield "LGE certainty — published (seed 000)", pub
        labels = [{"set": s, "rater noise SD": res.get("rater_sd"), "inter-rater Spearman": r["certainty"]["raters"]["spearman"],
                   "inter-rater class agreement": r["certainty"]["raters"]["accuracy"],
                   "ceiling: noise-free class vs rater mean": r["certainty"]["ceiling_vs_rater_mean"],
                   "threshold": r["certainty"]["threshold"],
                   "LV slices the slice level gated out": r["certainty"].get("lv_slices_gated_out_by_slice_level")}
                  for s, r in res["sets"].items() if r.get("certainty")]
        yield "How noisy the labels are (simulated raters; published inter-rater 0.82 / 0.86)", labels
        ratios = [{"set": s, "AUC ratio network / baseline (rater mean)":
                   round(r["certainty"]["rater_mean"]["auc"] / r["certainty"]["baseline_rater_mean"]["auc"], 3)
                   if r["certainty"]["rater_mean"]["auc"] and r["certainty"]["baseline_rater_mean"]["auc"] else None,
                   "F1 ratio": round(r["certainty"]["rater_mean"]["f1"] / r["certainty"]["baseline_rater_mean"]["f1"], 3)
                   if r["certainty"]["rater_mean"]["f1"] and r["certainty"]["baseline_rater_mean"]["f1"] else None}
                  for s, r in res["sets"].items() if r.get("certainty")]
        yield "Certainty against its baseline", ratios
    rows = []
    for set_name, r in res["sets"].items():
        s = r.get("slice_level")
        if not s:
            continue
        for label, v in (("network", s), ("baseline: position in stack", s.get("baseline_position"))):
            if v:
                rows.append({"set": set_name, "method": label, "slices": v["n"], "accuracy": v["accuracy"],
                             "macro AUC": v["macro_auc"], "macro F1": v["macro_f1"],
                             **{f"{k} F1 / AUC": f"{c['f1']:.3f} / {c['auc']:.3f}" for k, c in v["per_class"].items()},
                             "confusion (rows truth)": str(v["confusion"])})
    if rows:
        yield "LV slice level (too basal / LV / too apical)", rows
        yield "LV slice level — published (seed 004)", [{"accuracy": PUBLISHED_SLICE_LEVEL["accuracy"],
                                                         "macro AUC": PUBLISHED_SLICE_LEVEL["macro_auc"],
                                                         "F1": PUBLISHED_SLICE_LEVEL["f1"],
                                                         **{f"{k} AUC": v for k, v in PUBLISHED_SLICE_LEVEL["auc"].items()}}]
    speed = [{"network": k, "ms per slice": v} for k, v in res["ms_per_slice"].items()]
    yield "Speed (CPU, network alone)", speed
    if res["models"]:
        yield "`cmr quality watch` latency (a 12-slice series arriving file by file)", [_watch_latency(1.0),
                                                                                       _watch_latency(2.0)]
    if res["not_installed"]:
        yield "Not compared", [{"model": m, "why": "not installed"} for m in res["not_installed"]]

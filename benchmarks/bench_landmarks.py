"""Landmarks: held-out phantom subjects per contrast and overall (two stages, stage 1 alone, a
mask-centroid baseline), the shifted phantom set, no-LV images (the stages' agreement and the
LV-presence gate), speed per image, and generalist vs specialists (the card's Table 5.2(c)).

**Generalist vs specialists**: one compact model per contrast (`cmr train landmarks --contrast
NAME`) and one generalist over every contrast, each trained here for the same number of batches
(CMR_BENCH_SPECIALIST_STEPS, default 2520 of 8 images; 0 skips the comparison: a specialist
sees its contrast 7× as often) on the same phantom subjects (CMR_BENCH_SPECIALIST_SUBJECTS,
default 240), into ``.cache/landmarks/bench-models`` (models already there are reused); each is
scored on the held-out images of its contrast, the generalist on all of them. The bundled
generalist (longer training) is shown beside them.

Environment: CMR_BENCH_SUBJECTS (held-out subjects per set, default 12), CMR_MODELS_DIR (the
weights to test; default the bundled landmarks-compact). Published (thesis ch. 5, 3,568 test
images, GPU): median 2.2 mm (IQR 1.2–4.4), angular 5.7° (2.6–10.2); 60 / 165 ms per image;
a generalist over all modalities beats modality-specialist models.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from cmrlib.landmarks.evaluate import evaluate


def _train(models: Path, contrast: str, steps: int, subjects: int) -> str:
    """`cmr train landmarks --contrast` for about ``steps`` batches of 8 (an epoch is one pass)."""
    from cmrlib.cli import main
    from cmrlib.landmarks.data import CONTRASTS
    from cmrlib.models.zoo import read_manifest
    name = f"landmarks-bench-{contrast}-{steps}"
    if any(e.name == name for e in read_manifest(models)):
        return name
    images = subjects * (len(CONTRASTS) if contrast == "all" else 1)
    epochs = max(1, round(steps / max(1, images // 8)))
    argv = ["train", "landmarks", "--contrast", contrast, "--train-subjects", str(subjects), "--val-subjects", "16",
            "--epochs", str(epochs), "--name", name, "--out", str(models), "--cache", ".cache/landmarks", "--quiet"]
    if main(argv) != 0:
        raise RuntimeError(f"training {name} failed")
    return name


def specialists(subjects: int) -> list[dict]:
    """Median error (mm) and angle (°) per contrast: each specialist, the equal-budget generalist,
    the bundled generalist (module docstring)."""
    from cmrlib.landmarks.data import CONTRASTS, TEST_SEED_BASE, phantom_sources
    from cmrlib.landmarks.evaluate import score
    from cmrlib.models import load_model
    from cmrlib.models.zoo import clear_model_cache
    steps = int(os.environ.get("CMR_BENCH_SPECIALIST_STEPS", "2520"))
    n_train = int(os.environ.get("CMR_BENCH_SPECIALIST_SUBJECTS", "240"))
    models = Path(".cache/landmarks/bench-models")
    names = {c: _train(models, c, steps, n_train) for c in ("all", *CONTRASTS)}
    os.environ["CMR_MODELS_DIR"] = os.pathsep.join([str(models), os.environ.get("CMR_MODELS_DIR", "")]).strip(os.pathsep)
    clear_model_cache()
    held = phantom_sources(range(TEST_SEED_BASE, TEST_SEED_BASE + subjects), fitted_t1=True)
    loaded = {c: load_model(n) for c, n in names.items()}
    nets = {c: net for c, (net, _) in loaded.items()}
    bundled = load_model("landmarks-compact")[0]

    def batches(entry) -> int:  # epochs run × batches per epoch (the manifest names the images)
        import re
        images = int(re.search(r"(\d+) short-axis images", entry.trained_on).group(1))
        return int(entry.metrics["epochs"]) * max(1, images // 8)

    def stats(model, sources):
        res = score(model, sources)
        errs = [e for r in res for e in r["errors_mm"]]
        return f"{np.median(errs):.2f}", f"{np.median([r['angle_deg'] for r in res]):.1f}"

    rows = []
    for c in (*CONTRASTS, "all"):
        sel = held if c == "all" else [s for s in held if s.contrast == c]
        spec = stats(nets[c], sel) if c != "all" else ("—", "—")
        gen, full = stats(nets["all"], sel), stats(bundled, sel)
        rows.append({"contrast": c, "images": len(sel), "specialist mm / °": " / ".join(spec),
                     "specialist batches": batches(loaded[c][1]) if c != "all" else "—",
                     "generalist mm / °": " / ".join(gen), "generalist batches": batches(loaded["all"][1]),
                     "bundled generalist (64 epochs, 19,800 batches) mm / °": " / ".join(full)})
    return rows


def run():
    subjects = int(os.environ.get("CMR_BENCH_SUBJECTS", "12"))
    result = evaluate(subjects=subjects)
    yield (f"held-out phantom subjects ({subjects} per set), {result['model']} v{result['version']} — "
           f"{result['notice']}; issue figures: median ≤ 2.2 mm, angular ≤ 5.7°", result["rows"])
    yield (f"generalisation gap (shifted − held-out median): {result['generalisation_gap_mm']} mm", [])
    gate = result["presence_gate"]
    yield (f"no-LV images: refused when confidence < {result['min_confidence']:.3f}"
           + (f" or LV-presence p < {gate['threshold']:.3f} ({gate['model']})" if gate else " (no LV-presence gate)"),
           result["no_lv"])
    yield "speed (this machine's CPU, batch 1) beside the published GPU batch figures", result["speed"]
    if int(os.environ.get("CMR_BENCH_SPECIALIST_STEPS", "2520")):
        yield ("generalist vs specialists (card Table 5.2(c)): median Euclidean error / RV-entry-line angle on the "
               f"held-out images of each contrast ({subjects} subjects), the same number of batches each"), \
            specialists(subjects)

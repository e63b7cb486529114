"""Landmarks: held-out phantom subjects per contrast and overall (two stages, stage 1 alone, a
mask-centroid baseline), the shifted phantom set, no-LV images, and speed per image.

Environment: CMR_BENCH_SUBJECTS (held-out subjects per set, default 12), CMR_MODELS_DIR (the
weights to test; default the bundled landmarks-compact). Published (thesis ch. 5, 3,568 test
images, GPU): median 2.2 mm (IQR 1.2–4.4), angular 5.7° (2.6–10.2); 60 / 165 ms per image.
"""
from __future__ import annotations

import os

from cmrlib.landmarks.evaluate import evaluate


def run():
    subjects = int(os.environ.get("CMR_BENCH_SUBJECTS", "12"))
    result = evaluate(subjects=subjects)
    yield (f"held-out phantom subjects ({subjects} per set), {result['model']} v{result['version']} — "
           f"{result['notice']}; issue figures: median ≤ 2.2 mm, angular ≤ 5.7°", result["rows"])
    yield (f"generalisation gap (shifted − held-out median): {result['generalisation_gap_mm']} mm", [])
    yield f"no-LV images: refused when confidence < {result['min_confidence']}", result["no_lv"]
    yield "speed (this machine's CPU, batch 1) beside the published GPU batch figures", result["speed"]

"""Held-out evaluation of the landmark networks on phantom subjects never used in training.

Sets: ``heldout`` (the training distribution: 1.5 T, every contrast; T1 maps made by the
phantom's inline fit, not the fast emulation used for training) and ``shifted`` (3 T, lower
SNR, poor LGE nulling / bright blood, hearts 20–30 % smaller or larger: see
:func:`cmrlib.landmarks.data.shifted_options`). Per image: Euclidean error (mm) of both points
(pooled, as the thesis reports), angular error (°) of the RV entry line, the confidence, and
whether the pipeline would refuse the image (confidence under the threshold). Methods: the
two-stage pipeline, stage 1 alone, and a classical baseline for the LV centre (the centroid
of the true myocardium mask, i.e. what a mask alone gives). ``no_lv``: too apical / too basal
phantom slices (of the usual stacks, and of stacks extended 1–2 slices beyond the base and
apex, held-out subjects) and non-cardiac images (the body far from the heart, pure noise): how
many the pipeline refuses. Speed: ms per image for one and two stages (batch 1, this machine).
Used by `cmr evaluate landmarks` and ``python -m benchmarks landmarks``.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from ..metrics import landmark_error_mm, line_angle_error_deg
from ..progress import ProgressCallback, report
from .data import (CONTRASTS, SHIFTED_SEED_BASE, TEST_SEED_BASE, Source, no_lv_sources, non_cardiac_sources,
                   phantom_sources, user_sources)
from .infer import MIN_CONFIDENCE, predict


def _q(v, k):
    return round(float(np.percentile(v, k)), 2) if len(v) else None


def _row(name: str, errs: list[float], angs: list[float], refused: list[bool]) -> dict[str, Any]:
    return {"set": name, "images": len(angs), "median mm": _q(errs, 50), "IQR mm": f"{_q(errs, 25)}–{_q(errs, 75)}",
            "median °": _q(angs, 50), "IQR °": f"{_q(angs, 25)}–{_q(angs, 75)}",
            "refused %": round(100.0 * float(np.mean(refused)), 1) if refused else None}


def _centroid_baseline(src: Source) -> np.ndarray | None:
    """LV centre = centroid of the true myocardium (phantom tissue map, T1 sources only)."""
    if src.tissue is None:
        return None
    from ..phantom.tissue import T
    rows, cols = np.nonzero(np.isin(src.tissue, (T.MYOCARDIUM, T.SCAR)))
    return np.array([cols.mean(), rows.mean()]) if rows.size else None


def score(model, sources: list[Source], stages: int = 2, gate=None, threshold: float = 0.5) -> list[dict]:
    """Per-image results of ``model`` on ``sources`` with the pipeline's inference: refused by
    the stages' agreement (confidence) or, with ``gate``, by the LV-presence gate."""
    from .presence import probabilities
    out = []
    for src in sources:
        p = predict(model, [src.image], src.spacing, src.mirrored, stages=stages)[0]
        rec = {"contrast": src.contrast, "confidence": p.confidence, "refused_confidence": p.confidence < MIN_CONFIDENCE}
        if gate is not None:
            rec["lv_presence"] = float(probabilities(gate, [src.image], src.spacing, src.mirrored)[0])
            rec["refused_presence"] = rec["lv_presence"] < threshold
        rec["refused"] = rec["refused_confidence"] or rec.get("refused_presence", False)
        if src.has_lv:
            e = landmark_error_mm(np.stack([p.rv_px, p.lv_px]), np.stack([src.rv_px, src.lv_px]), src.spacing)
            rec.update(errors_mm=[float(x) for x in e], lv_error_mm=float(e[1]),
                       angle_deg=float(line_angle_error_deg(p.rv_px, p.lv_px, src.rv_px, src.lv_px, src.spacing)))
        out.append(rec)
    return out


def evaluate(model_name: str | None = None, subjects: int = 8, *, data: str | None = None, device=None,
             progress: ProgressCallback | None = None, model=None, speed_images: int = 20,
             presence_model: str | None = None) -> dict[str, Any]:
    """The held-out table (module docstring) as ``{"rows": [...], "speed": [...], ...}``.

    ``presence_model``: the LV-presence gate to apply as the pipeline does (default: the
    pipeline's when installed; ``""``: none)."""
    from ..device import pick_device
    from ..models import load_model
    from ..models.zoo import model_installed
    from .pipeline import MODEL_NAME, PRESENCE_MODEL
    dev = pick_device(device)
    entry = None
    if model is None:
        model, entry = load_model(model_name or MODEL_NAME, device=dev)
    gate, threshold, gate_entry = None, 0.5, None
    gate_name = PRESENCE_MODEL if presence_model is None else presence_model
    if gate_name and (model_installed(gate_name) or presence_model):
        gate, gate_entry = load_model(gate_name, device=dev)
        threshold = float((gate_entry.calibration or {}).get("presence_threshold", 0.5))
    sets: dict[str, list[Source]] = {}
    if data:
        sets["user data"] = user_sources(data)
    else:
        report(progress, "held-out images", 0, 3, "phantom (training distribution)")
        sets["heldout"] = phantom_sources(range(TEST_SEED_BASE, TEST_SEED_BASE + subjects), fitted_t1=True)
        report(progress, "held-out images", 1, 3, "shifted phantom")
        sets["shifted"] = phantom_sources(range(SHIFTED_SEED_BASE, SHIFTED_SEED_BASE + subjects), shifted=True,
                                          fitted_t1=True)
        report(progress, "held-out images", 2, 3, "no-LV images")
        apical = [s for s in phantom_sources(range(TEST_SEED_BASE + 5000, TEST_SEED_BASE + 5000 + 3 * subjects),
                                             ("lge_psir", "cine"), lv_only=False) if not s.has_lv]
        extended = no_lv_sources(range(TEST_SEED_BASE + 100, TEST_SEED_BASE + 100 + 2 * subjects))
        sets["no LV"] = apical + extended + non_cardiac_sources(max(2, subjects // 2), TEST_SEED_BASE + 9000)
    results = {name: {st: score(model, srcs, st, gate, threshold) for st in (1, 2)} for name, srcs in sets.items()}
    rows = []
    for name, srcs in sets.items():
        if name == "no LV":
            continue
        for st, label in ((2, "two stages"), (1, "stage 1 only")):
            res = results[name][st]
            groups = [("all", res)] + ([(c, [r for r in res if r["contrast"] == c]) for c in CONTRASTS]
                                       if st == 2 else [])
            for g, sel in groups:
                if not sel:
                    continue
                errs = [e for r in sel for e in r["errors_mm"]]
                row = _row(f"{name} / {g}", errs, [r["angle_deg"] for r in sel], [r["refused"] for r in sel])
                if gate is not None:  # of these images with an LV, those the gate alone refuses (wrongly)
                    row["by LV-presence gate %"] = round(100.0 * float(np.mean([r["refused_presence"] for r in sel])), 1)
                rows.append({"method": label, **row})
        base = [(_centroid_baseline(s), s) for s in srcs]
        lv_err = [float(landmark_error_mm(b, s.lv_px, s.spacing)) for b, s in base if b is not None and s.has_lv]
        if lv_err:
            rows.append({"method": "mask centroid (LV centre only, T1 maps)", "set": f"{name} / t1 maps",
                         "images": len(lv_err), "median mm": _q(lv_err, 50),
                         "IQR mm": f"{_q(lv_err, 25)}–{_q(lv_err, 75)}", "median °": None, "IQR °": None,
                         "refused %": None})
            net_lv = [r["lv_error_mm"] for r in results[name][2] if r["contrast"].startswith("t1_")]
            rows.append({"method": "two stages (LV centre only, T1 maps)", "set": f"{name} / t1 maps",
                         "images": len(net_lv), "median mm": _q(net_lv, 50),
                         "IQR mm": f"{_q(net_lv, 25)}–{_q(net_lv, 75)}", "median °": None, "IQR °": None,
                         "refused %": None})
    no_lv = []
    if "no LV" in results:
        def kind(src: Source) -> str:
            cls = src.meta.get("class")
            if src.meta.get("extended"):  # beyond the base / apex of the usual stack
                return (f"{cls} slice, stack extended beyond base and apex" if cls != "LV"
                        else "apical LV slice without RV, stack extended beyond base and apex")
            if not src.contrast.startswith(("lge", "cine")):
                return src.contrast
            return f"{cls} slice" if cls != "LV" else "apical LV slice without RV (no insertion point)"
        kinds = [kind(s) for s in sets["no LV"]]
        for k in sorted(set(kinds)):
            sel = [r for r, kk in zip(results["no LV"][2], kinds) if kk == k]
            row = {"images": k, "n": len(sel), "refused %": round(100.0 * np.mean([r["refused"] for r in sel]), 1),
                   "by confidence %": round(100.0 * np.mean([r["refused_confidence"] for r in sel]), 1),
                   "median confidence": _q([r["confidence"] for r in sel], 50)}
            if gate is not None:
                row["by LV-presence gate %"] = round(100.0 * np.mean([r["refused_presence"] for r in sel]), 1)
                row["median LV-presence p"] = _q([r["lv_presence"] for r in sel], 50)
            no_lv.append(row)
    gap = None
    if "heldout" in sets:
        med = {n: _q([e for r in results[n][2] for e in r["errors_mm"]], 50) for n in ("heldout", "shifted")}
        gap = round(med["shifted"] - med["heldout"], 2)
    speed = _speed(model, sets[next(iter(sets))][:speed_images])
    return {"model": entry.name if entry else "(in memory)", "version": entry.version if entry else "",
            "notice": entry.notice if entry else "", "subjects": subjects, "rows": rows, "no_lv": no_lv,
            "generalisation_gap_mm": gap, "speed": speed, "min_confidence": MIN_CONFIDENCE,
            "presence_gate": ({"model": gate_entry.name, "threshold": threshold} if gate_entry else None)}


def _speed(model, sources: list[Source]) -> list[dict]:
    rows = []
    for stages, flip, label in ((1, False, "one stage"), (2, False, "two stages"), (2, True, "two stages + flip test (pipeline)")):
        predict(model, [sources[0].image], sources[0].spacing, stages=stages, flip_test=flip)  # warm-up
        t0 = time.perf_counter()
        for s in sources:
            predict(model, [s.image], s.spacing, s.mirrored, stages=stages, flip_test=flip)
        ms = 1000.0 * (time.perf_counter() - t0) / len(sources)
        published = {"one stage": 60.0, "two stages": 165.0}.get(label)
        rows.append({"inference": label, "ms per image (CPU, batch 1)": round(ms, 1),
                     "published ms (GPU, batch)": published if published else "—"})
    return rows


def format_table(result: dict[str, Any]) -> str:
    lines = [f"model {result['model']} v{result['version']} — {result['notice']}"]
    for title, rows in (("held-out landmarks", result["rows"]), ("no-LV images", result["no_lv"]),
                        ("speed", result["speed"])):
        if not rows:
            continue
        keys = list(rows[0])
        lines += ["", f"### {title}", "| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
        lines += ["| " + " | ".join(str(r.get(k, "")) for k in keys) + " |" for r in rows]
    if result.get("generalisation_gap_mm") is not None:
        lines.append(f"\ngeneralisation gap (shifted − held-out median error): {result['generalisation_gap_mm']} mm")
    return "\n".join(lines)

"""Held-out evaluation of scar quantification, as seed 003's Tables 2 and 3.

For each held-out phantom stack (:data:`cmrlib.scar.data.TEST_SEED_BASE`, and the *shifted*
set), every method runs through :func:`cmrlib.scar.pipeline.quantify_scar` exactly as a user's
stack would (DICOM-tag matching, detected LV centres, post-processing); the classical methods
get the phantom's true myocardium (what a user's corrected mask would be). Reported:

* slices successfully segmented — ≥ 50 % of the true myocardium labelled myocardium (the
  paper's criterion), over slices with true LV myocardium; split basal / mid / apical;
* %scar and myocardial volume (mL) per stack against the truth: regression slope through the
  origin with Pearson's r, Bland–Altman bias and limits;
* scar detection (%scar > 1 %) per stack: accuracy, specificity, sensitivity.

As in the paper, the per-stack totals count the successfully segmented slices only (the
``all slices`` variant is reported beside it).
"""
from __future__ import annotations

import numpy as np

from ..metrics import binary_stats, bland_altman, dice, regression_through_origin
from .data import SHIFTED_SEED_BASE, TEST_SEED_BASE, ScarStack, phantom_stacks
from .infer import OUT_SCAR
from .pipeline import METHODS, NETWORK_METHODS, SCAR_PRESENT_PERCENT, quantify_scar, voxel_ml

SUCCESS_FRACTION = 0.5


def stack_record(st: ScarStack, labels: np.ndarray, levels: list) -> dict:
    """Per-stack truth and prediction (volumes mL, %scar) and per-slice success."""
    vox = voxel_ml(st.lge)
    t_myo, t_scar = st.truth_myocardium, st.truth_scar
    p_myo, p_scar = labels > 0, labels == OUT_SCAR
    slices = []
    for k in range(labels.shape[0]):
        if t_myo[k].sum() < 5:
            continue
        covered = float((t_myo[k] & p_myo[k]).sum() / t_myo[k].sum())
        slices.append({"index": k, "level": levels[k] or "none", "covered": covered,
                       "success": covered >= SUCCESS_FRACTION, "dice": dice(t_myo[k], p_myo[k])})
    ok = [s["index"] for s in slices if s["success"]]

    def totals(ks):
        tm, ts = float(t_myo[ks].sum()) * vox, float(t_scar[ks].sum()) * vox
        pm, ps = float(p_myo[ks].sum()) * vox, float((p_scar[ks] & p_myo[ks]).sum()) * vox
        return {"truth_myo_ml": tm, "pred_myo_ml": pm, "truth_pct": 100 * ts / tm if tm else 0.0,
                "pred_pct": 100 * ps / pm if pm else 0.0}
    allk = [s["index"] for s in slices]
    return {"subject": st.subject, "scar": st.scar, "slices": slices, "success_only": totals(ok) if ok else None,
            "all": totals(allk) if allk else None}


def agreement(records: list[dict], key: str = "success_only", qc_passed_only: bool = False) -> dict:
    """Slope / r / Bland–Altman of %scar and volume, detection statistics, success rates;
    ``qc_passed_only``: without the stacks the result flags for review (no truth used)."""
    if qc_passed_only:
        records = [r for r in records if not r.get("review")]
    rows = [r[key] for r in records if r[key] is not None]
    out: dict = {"stacks": len(rows)}
    sl = [s for r in records for s in r["slices"]]
    out["slices"] = len(sl)
    out["success_rate"] = float(np.mean([s["success"] for s in sl])) if sl else float("nan")
    out["mean_slice_dice"] = float(np.mean([s["dice"] for s in sl])) if sl else float("nan")
    for level in ("basal", "mid", "apical"):
        lv = [s for s in sl if s["level"] == level]
        out[f"success_{level}"] = float(np.mean([s["success"] for s in lv])) if lv else float("nan")
    if len(rows) >= 2:
        tp, pp = np.array([r["truth_pct"] for r in rows]), np.array([r["pred_pct"] for r in rows])
        tv, pv = np.array([r["truth_myo_ml"] for r in rows]), np.array([r["pred_myo_ml"] for r in rows])
        reg_p, reg_v = regression_through_origin(tp, pp), regression_through_origin(tv, pv)
        ba_p, ba_v = bland_altman(pp, tp), bland_altman(pv, tv)
        det = binary_stats(tp > SCAR_PRESENT_PERCENT, pp > SCAR_PRESENT_PERCENT)
        out.update(scar_slope=reg_p.slope, scar_r=reg_p.r, volume_slope=reg_v.slope, volume_r=reg_v.r,
                   scar_bias=ba_p.bias, scar_loa=(ba_p.lower, ba_p.upper), volume_bias=ba_v.bias,
                   volume_loa=(ba_v.lower, ba_v.upper), detection_accuracy=det.accuracy,
                   detection_specificity=det.specificity, detection_sensitivity=det.sensitivity,
                   scar_mae=float(np.mean(np.abs(pp - tp))), truth_scar_mean_sd=f"{tp.mean():.2f} ± {tp.std():.2f}")
    return out


def by_scar_type(records: list[dict]) -> dict[str, dict]:
    """:func:`agreement` (successful slices, stacks not flagged for review) per scar type of the
    truth: ischaemic, non-ischaemic and no-scar stacks err in different ways, and a pooled r
    hides which."""
    kinds = sorted({r["scar"] for r in records})
    return {k: agreement([r for r in records if r["scar"] == k], "success_only", qc_passed_only=True) for k in kinds}


def evaluate_stacks(stacks: list[ScarStack], methods=METHODS, networks: dict | None = None, device=None,
                    progress=None, dilate_px: int | None = None) -> dict:
    """Every method on every stack: per-method agreement (success-only and all-slice totals) and timing.
    ``dilate_px``: the networks' post-processing dilation (default: each model's calibrated one)."""
    from ..progress import report
    per: dict[str, list] = {m: [] for m in methods}
    timing: dict[str, list] = {}
    for i, st in enumerate(stacks):
        report(progress, "scar evaluation", i, len(stacks), f"stack {i + 1}/{len(stacks)}")
        nets = [m for m in methods if m in NETWORK_METHODS]
        res = None
        for m in nets:
            # fusion with the LGE-only network beside it: their disagreement is the result's review flag
            both = m == "fusion" and "lge-only" in nets
            res = quantify_scar(st.lge, st.cine if m == "fusion" else None, method=m, networks=networks,
                                compare=both, device=device, dilate_px=dilate_px)
            rec = stack_record(st, np.asarray(res.labels.array), [s.level for s in res.slices])
            rec["review"] = any(n.startswith("review:") for n in res.notes)
            per[m].append(rec)
            for k, v in res.timing.items():
                timing.setdefault(k, []).append(v)
        classical = [m for m in methods if m not in NETWORK_METHODS]
        if classical:
            res_c = quantify_scar(st.lge, None, method=classical[0], mask=st.truth_mask(), mask_source="phantom truth",
                                  compare=True, networks={}, device=device)
            from .classical import classical_scar
            myo = st.truth_myocardium
            centres = [s.lv_centre_lge_px for s in res_c.slices]
            for m in classical:
                scar = classical_scar(m, np.asarray(st.lge.array, float), myo, None, centres)
                lab = np.where(myo, 1, 0).astype(np.uint8)
                lab[scar] = OUT_SCAR
                per[m].append(stack_record(st, lab, [s.level for s in res_c.slices]))
            for k, v in res_c.timing.items():
                timing.setdefault(k, []).append(v)
    report(progress, "scar evaluation", len(stacks), len(stacks), "done")
    return {"methods": {m: {"success_only": agreement(r, "success_only"), "all_slices": agreement(r, "all"),
                            "qc_passed": agreement(r, "success_only", qc_passed_only=True),
                            "qc_passed_by_scar": by_scar_type(r),
                            "flagged_for_review": int(sum(bool(x.get("review")) for x in r))}
                        for m, r in per.items() if r},
            "timing": {k: float(np.median(v)) for k, v in timing.items()}, "stacks": len(stacks)}


def evaluate(n_subjects: int = 30, *, shifted_subjects: int | None = None, methods=METHODS, networks=None,
             device=None, progress=None) -> dict:
    """Held-out and shifted phantom sets (:func:`evaluate_stacks` each)."""
    test = phantom_stacks(TEST_SEED_BASE, n_subjects, progress=progress)
    shifted = phantom_stacks(SHIFTED_SEED_BASE, shifted_subjects or max(6, n_subjects // 2), shifted=True,
                             progress=progress)
    return {"held_out": evaluate_stacks(test, methods, networks, device, progress),
            "shifted": evaluate_stacks(shifted, methods, networks, device, progress)}


def _f(v, spec=".2f") -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "–"
    return format(v, spec)


def format_table(result: dict, which: str = "success_only") -> str:
    """Markdown tables: seed 003's Table 2 (+ Bland–Altman) and Table 3 per set."""
    lines = []
    for name in ("held_out", "shifted"):
        block = result.get(name)
        if not block:
            continue
        lines += [f"### {name.replace('_', '-')} phantom stacks ({block['stacks']}), totals over "
                  f"{'successfully segmented slices' if which == 'success_only' else 'all slices'}", "",
                  "| method | slices OK | %scar slope / r | volume slope / r | detection acc / spec / sens | "
                  "%scar bias [LoA] | volume bias [LoA] mL | success basal / mid / apical | mean slice Dice |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for m, r in block["methods"].items():
            a = r[which]
            loa = (lambda t: "–" if t is None else f"[{t[0]:.1f}, {t[1]:.1f}]")
            lines.append(f"| {m} | {_f(100 * a['success_rate'], '.0f')} % ({a['slices']}) | "
                         f"{_f(a.get('scar_slope'))} / {_f(a.get('scar_r'))} | {_f(a.get('volume_slope'))} / "
                         f"{_f(a.get('volume_r'))} | {_f(100 * a.get('detection_accuracy', float('nan')), '.0f')} / "
                         f"{_f(100 * a.get('detection_specificity', float('nan')), '.0f')} / "
                         f"{_f(100 * a.get('detection_sensitivity', float('nan')), '.0f')} % | "
                         f"{_f(a.get('scar_bias'), '.1f')} {loa(a.get('scar_loa'))} | {_f(a.get('volume_bias'), '.1f')} "
                         f"{loa(a.get('volume_loa'))} | {_f(100 * a['success_basal'], '.0f')} / "
                         f"{_f(100 * a['success_mid'], '.0f')} / {_f(100 * a['success_apical'], '.0f')} % | "
                         f"{_f(a['mean_slice_dice'])} |")
        lines.append("")
    return "\n".join(lines)

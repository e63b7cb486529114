"""The scar benchmark's statistics (`cmrlib.scar.evaluate`): stack records from label maps, the
paper's success-only totals, the review exclusion and the split by scar type."""
from __future__ import annotations

import numpy as np
import pytest

from cmrlib.scar.data import ScarStack
from cmrlib.scar.evaluate import agreement, by_scar_type, stack_record
from cmrlib.scar.infer import OUT_MYOCARDIUM, OUT_SCAR
from cmrlib.image import Image


def _stack(scar_px: int, kind: str) -> ScarStack:
    """Two 20 × 20 slices, each with a 10 × 10 myocardium holding ``scar_px`` scar pixels (label 3)."""
    lab = np.zeros((2, 20, 20), np.uint8)
    lab[:, 5:15, 5:15] = 1
    lab[:, 5:15, 5:5 + scar_px // 10] = 3
    lge = Image(np.zeros((2, 20, 20), np.float32), (1.0, 1.0, 10.0))
    return ScarStack(lge, None, lab, None, scar=kind)


def _record(scar_px: int, pred_px: int, kind: str, review: bool = False, miss_slice: bool = False) -> dict:
    st = _stack(scar_px, kind)
    pred = np.zeros(st.labels.shape, np.uint8)
    pred[:, 5:15, 5:15] = OUT_MYOCARDIUM
    pred[:, 5:15, 5:5 + pred_px // 10] = OUT_SCAR
    if miss_slice:
        pred[1] = 0
    rec = stack_record(st, pred, ["mid", "mid"])
    rec["review"] = review
    return rec


def test_stack_record_counts_volumes_in_ml_and_the_paper_success_rule():
    rec = _record(20, 30, "ischemic", miss_slice=True)
    assert [s["success"] for s in rec["slices"]] == [True, False]
    ok = rec["success_only"]  # the missed slice is left out of the paper's totals
    assert ok["truth_myo_ml"] == pytest.approx(100 * 10 / 1000) and ok["pred_myo_ml"] == pytest.approx(1.0)
    assert ok["truth_pct"] == pytest.approx(20.0) and ok["pred_pct"] == pytest.approx(30.0)
    assert rec["all"]["truth_myo_ml"] == pytest.approx(2.0) and rec["all"]["pred_pct"] == pytest.approx(30.0)


def test_by_scar_type_separates_a_type_that_is_over_called_and_leaves_out_flagged_stacks():
    recs = [_record(t, t, "ischemic") for t in (10, 20, 40, 60)]
    recs += [_record(t, 2 * t, "nonischemic") for t in (10, 20, 30)]  # read at twice the truth
    recs += [_record(0, p, "none") for p in (0, 10)]
    recs += [_record(10, 90, "nonischemic", review=True)]  # flagged: not counted
    split = by_scar_type(recs)
    assert set(split) == {"ischemic", "nonischemic", "none"}
    assert split["ischemic"]["scar_slope"] == pytest.approx(1.0) and split["ischemic"]["scar_mae"] == 0.0
    assert split["nonischemic"]["stacks"] == 3 and split["nonischemic"]["scar_slope"] == pytest.approx(2.0)
    assert split["nonischemic"]["scar_mae"] == pytest.approx(20.0)
    assert split["none"]["scar_mae"] == pytest.approx(5.0) and split["none"]["detection_specificity"] == 0.5
    pooled = agreement(recs, "success_only", qc_passed_only=True)
    assert pooled["stacks"] == 9 and 1.0 < pooled["scar_slope"] < 2.0
    assert agreement(recs, "success_only")["stacks"] == 10

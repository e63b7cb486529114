"""LGE certainty / slice level (`cmrlib.quality`): the cards' preprocessing, the simulated raters,
a site's own labelled slices, the stack classification with its refusals and notes, and the
networks' presets. Weight-independent: networks are built here (untrained) or are test
doubles whose answer is known."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from cmrlib import Image
from cmrlib.errors import InputError
from cmrlib.models import ModelEntry


# ---- preprocessing -----------------------------------------------------------------------------
def test_card_crop_keeps_the_centre_and_drops_the_periphery():
    from cmrlib.quality.preprocess import card_square, network_input
    img = np.zeros((200, 160), np.float32)
    img[95:105, 75:85] = 1.0  # the heart, centred
    img[5:25, 5:25] = 5.0  # a bright structure in the periphery
    r, c, side = card_square(img.shape)
    assert (r, c) == (99.5, 79.5) and side == pytest.approx(min(0.6 * 200, 0.7 * 160))
    x = network_input(img, 112)
    assert x.shape == (112, 112) and 0.0 <= x.min() and x.max() <= 1.0
    assert x[52:60, 52:60].mean() > 0.9  # the centre kept, now bright; the corner structure gone
    assert x[:10, :10].max() < 0.05


def test_training_views_cover_the_inference_view_and_are_random():
    from cmrlib.quality.preprocess import context_image, network_input, training_view
    rng = np.random.default_rng(0)
    img = rng.normal(0, 1, (96, 96)).astype(np.float32)
    ctx = context_image(img, 128)
    assert ctx.shape == (160, 160)
    plain = training_view(ctx, 128, 112, rng, augment=False)
    ref = network_input(img, 112)
    assert np.corrcoef(plain.ravel(), ref.ravel())[0, 1] > 0.9  # the same region as at inference
    a, b = training_view(ctx, 128, 112, rng), training_view(ctx, 128, 112, rng)
    assert a.shape == (112, 112) and not np.allclose(a, b)


# ---- simulated raters ------------------------------------------------------------------------------
def test_simulated_raters_reach_the_published_agreement_and_their_mean_is_the_label():
    from cmrlib.quality.data import (PUBLISHED_RATER_SPEARMAN, QualitySlice, calibrate_rater_sd, is_low_certainty,
                                     rater_agreement, simulate_raters)
    rng = np.random.default_rng(3)
    lk = np.concatenate([rng.uniform(0, 10, 300), rng.uniform(10, 90, 300), rng.uniform(90, 100, 300)])
    cal = calibrate_rater_sd(lk)
    assert abs(cal["spearman"] - PUBLISHED_RATER_SPEARMAN) < 0.02 and 5 < cal["sd"] < 50
    scores = simulate_raters(lk, cal["sd"], rng)
    assert scores.shape == (900, 2) and scores.min() >= 0 and scores.max() <= 100
    assert rater_agreement(scores)["accuracy"] < 1.0  # raters disagree on some classes
    s = QualitySlice(np.zeros((4, 4), np.float16), "LV", likelihood=20.0, rater_scores=(30.0, 40.0))
    assert s.label_likelihood == 35.0 and s.low_certainty is True and s.true_low_certainty is False
    assert list(is_low_certainty([25.0, 25.1, 74.9, 75.0])) == [False, True, True, False]  # the card's cut points



def test_ideal_reader_is_the_best_classifier_of_noisy_rater_labels():
    """The Bayes ceiling: no score of the image beats the rater model's own posterior, and it is
    below 1 because the raters are noisy."""
    from cmrlib.metrics import binary_stats
    from cmrlib.quality.data import ideal_reader_p_low, is_low_certainty, simulate_raters
    rng = np.random.default_rng(5)
    lk = rng.uniform(0, 100, 3000)
    p = ideal_reader_p_low(lk, 20.0, draws=1000)
    assert p.shape == lk.shape and 0 <= p.min() and p.max() <= 1
    assert p[np.abs(lk - 50) < 5].mean() > 0.9 and p[lk < 5].mean() < 0.1  # the band's middle vs far outside
    labels = is_low_certainty(simulate_raters(lk, 20.0, np.random.default_rng(6)).mean(1))
    ideal = binary_stats(labels, p >= 0.5).accuracy
    noise_free = binary_stats(labels, is_low_certainty(lk)).accuracy
    assert 0.8 < ideal < 0.99 and ideal >= noise_free - 0.01

def test_phantom_slices_span_the_three_levels_with_the_truth():
    from cmrlib.quality.data import SLICE_CLASSES, phantom_slices
    items = phantom_slices(930_000, 6, 64)
    classes = {s.slice_class for s in items}
    assert classes == set(SLICE_CLASSES)  # the extended stacks reach beyond base and apex
    assert all(s.context.shape == (80, 80) and s.tissue.shape == (80, 80) for s in items)
    assert all(0.0 <= s.likelihood <= 100.0 for s in items)


# ---- a site's own labelled slices ------------------------------------------------------------------------
def _user_folder(tmp_path, scores: str, levels: str | None = None):
    from cmrlib.io import write_image
    rng = np.random.default_rng(1)
    write_image(Image(rng.normal(100, 10, (3, 40, 36)).astype(np.float32), (1.5, 1.5, 8.0)), tmp_path / "a.nrrd")
    (tmp_path / "lge_scores.csv").write_text(scores)
    if levels is not None:
        (tmp_path / "slice_levels.csv").write_text(levels)
    return tmp_path


def test_user_slices_average_the_raters_and_read_the_ranking_export(tmp_path):
    from cmrlib.quality.data import user_slices
    folder = _user_folder(tmp_path, "image,slice,score,rater\na.nrrd,0,10,A\na.nrrd,0,30,B\na.nrrd,2,60,A\n",
                          "image,slice,class,rating\na.nrrd,0,too basal,2900\na.nrrd,1,LV,1500\na.nrrd,2,too apical,40\n")
    items = user_slices(folder, "certainty", 64)
    by = {s.meta["index"]: s for s in items}
    assert set(by) == {0, 2} and by[0].label_likelihood == 20.0 and by[0].low_certainty is False
    assert by[2].low_certainty is True and by[0].context.shape == (80, 80)
    levels = user_slices(folder, "slice-level", 64)
    assert [s.slice_class for s in sorted(levels, key=lambda s: s.meta["index"])] == ["too basal", "LV", "too apical"]


@pytest.mark.parametrize("scores, message", [
    ("image,slice\na.nrrd,0\n", "needs columns image, slice, score"),
    ("image,slice,score\na.nrrd,5,10\n", "slice 5 does not exist"),
    ("image,slice,score\na.nrrd,0,140\n", "scores must be 0–100"),
    ("image,slice,score\nmissing.nrrd,0,10\n", "no such file"),
])
def test_user_slices_refuse_bad_tables_in_one_line(tmp_path, scores, message):
    from cmrlib.quality.data import user_slices
    with pytest.raises(InputError, match=message):
        user_slices(_user_folder(tmp_path, scores), "certainty", 64)


def test_user_slice_levels_need_a_known_class(tmp_path):
    from cmrlib.quality.data import user_slices
    folder = _user_folder(tmp_path, "image,slice,score\na.nrrd,0,1\n", "image,slice,class\na.nrrd,0,mid\n")
    with pytest.raises(InputError, match="class must be one of too basal, LV, too apical"):
        user_slices(folder, "slice-level", 64)
    with pytest.raises(InputError, match="no slice_levels.csv"):
        user_slices(tmp_path / "nothing", "slice-level", 64)


# ---- networks -------------------------------------------------------------------------------------
def test_presets_print_next_to_the_published_counts():
    from cmrlib.models.unet2d import n_parameters
    from cmrlib.quality.efficientnetv2 import PUBLISHED_PARAMETERS as P_CERT
    from cmrlib.quality.efficientnetv2 import CertaintyNet, CertaintyNetConfig
    from cmrlib.quality.resnet import PUBLISHED_PARAMETERS as P_LEVEL
    from cmrlib.quality.resnet import SliceLevelNet, SliceLevelNetConfig
    cert_paper = n_parameters(CertaintyNet(CertaintyNetConfig.preset("paper")))
    level_paper = n_parameters(SliceLevelNet(SliceLevelNetConfig.preset("paper")))
    # EfficientNetV2-S features (20.18 M, as published by Tan & Le) + the head; ResNet-34 + head
    assert 0.85 < cert_paper / P_CERT < 1.0 and 0.95 < level_paper / P_LEVEL < 1.02
    for cls, cfg, n_out in ((CertaintyNet, CertaintyNetConfig.preset("compact"), 2),
                            (SliceLevelNet, SliceLevelNetConfig.preset("compact"), 3)):
        net = cls(cfg).eval()
        assert n_parameters(net) < 1_000_000
        with torch.no_grad():
            assert net(torch.zeros(2, 1, cfg.size, cfg.size)).shape == (2, n_out)


# ---- stack classification -------------------------------------------------------------------------
class _MeanLevel(nn.Module):
    """Slice-level double: too basal when the input is bright, too apical when dark, else LV."""

    def forward(self, x):
        m = x.mean(dim=(1, 2, 3))
        return torch.stack([(m - 0.6) * 50, torch.zeros_like(m), (0.2 - m) * 50], 1)


class _StdCertainty(nn.Module):
    """Certainty double: p(low certainty) grows with the input's standard deviation."""

    def forward(self, x):
        s = x[:, :, 40:72, 40:72].std(dim=(1, 2, 3))  # the centre, inside the stack's fixed bands
        return torch.stack([torch.zeros_like(s), (s - 0.2) * 40], 1)


def _entry(name, size=112, threshold=None):
    return ModelEntry(name=name, task="quality", architecture="x", file="x", sha256="x", arch_args={"size": size},
                      calibration={} if threshold is None else {"operating_threshold": threshold})


def _networks(threshold=0.5):
    return {"slice-level": (_MeanLevel(), _entry("level-double")),
            "certainty": (_StdCertainty(), _entry("certainty-double", threshold=threshold))}


def _stack():
    """5 slices: bright (too basal), three mid-grey LV slices of rising contrast, dark (too apical)."""
    rng = np.random.default_rng(0)
    sl = []
    for level, sd in ((0.9, 0.01), (0.5, 0.01), (0.5, 0.15), (0.5, 0.4), (0.05, 0.01)):
        img = np.full((64, 64), level, np.float32) + rng.normal(0, sd, (64, 64)).astype(np.float32)
        img[13:17], img[47:51] = 0.0, 1.0  # bands inside the card's square: the same 0–1 range for every slice
        sl.append(img)
    return Image(np.stack(sl), (1.5, 1.5, 8.0))


def test_slice_level_first_then_certainty_on_lv_slices_only():
    from cmrlib.quality.pipeline import classify_stack
    res = classify_stack(_stack(), networks=_networks(), series="LGE", kind="lge_psir")
    classes = [s.slice_class for s in res.slices]
    assert classes[0] == "too basal" and classes[-1] == "too apical" and classes[1:4] == ["LV"] * 3
    assert res.slices[0].p_low_certainty is None and "not assessed" in res.slices[0].reason
    p = [s.p_low_certainty for s in res.slices[1:4]]
    assert p[0] < p[1] < p[2]
    assert res.flagged == [i + 1 for i, v in enumerate(p) if v >= 0.5] and res.non_lv == [0, 4]
    assert res.threshold == 0.5 and "2 of 5 slices outside the LV (1 too basal, 1 too apical)" in res.sentence
    n = len(res.flagged)
    assert f"{n} of 3 LV slices equivocal" in res.sentence
    d = res.to_dict()
    assert [s["index"] for s in d["slices"]] == list(range(5)) and d["models"][0]["name"] == "level-double"
    assert set(d["slices"][2]) >= {"index", "class", "probabilities", "p_low_certainty", "flag"}


def test_threshold_moves_the_flags_and_all_slices_assesses_every_slice():
    from cmrlib.quality.pipeline import classify_stack
    strict = classify_stack(_stack(), networks=_networks(), threshold=0.95)
    loose = classify_stack(_stack(), networks=_networks(), threshold=0.05)
    assert len(strict.flagged) <= len(loose.flagged) and set(strict.flagged) <= set(loose.flagged)
    every = classify_stack(_stack(), tasks=("certainty",), all_slices=True, networks=_networks())
    assert all(s.p_low_certainty is not None and s.slice_class is None for s in every.slices)
    assert "of 5 slices equivocal" in every.sentence
    with pytest.raises(InputError, match="between 0 and 1"):
        classify_stack(_stack(), networks=_networks(), threshold=1.5)


def test_odd_inputs_are_classified_with_a_note_or_refused():
    from cmrlib.quality.pipeline import classify_stack
    one = classify_stack(Image(_stack().array[2:3], (1.5, 1.5, 8.0)), networks=_networks())
    assert len(one.slices) == 1 and any("single slice" in n for n in one.notes)
    thin = classify_stack(Image(np.random.default_rng(0).normal(0, 1, (2, 200, 40)).astype(np.float32),
                                (1.5, 1.5, 8.0)), networks=_networks())
    assert any("200×40" in n and "distorts" in n for n in thin.notes)
    cine = Image(np.zeros((5, 2, 32, 32), np.float32), (1.5, 1.5, 8.0), is_sequence=True)
    with pytest.raises(InputError, match="multi-frame"):
        classify_stack(cine, networks=_networks())


def test_non_lge_kinds_are_refused_with_the_reason_unless_forced():
    from cmrlib.quality.pipeline import check_series_kind
    with pytest.raises(InputError, match=r"'cine SAX' is a cine series \(20 phases\).*--force"):
        check_series_kind("cine", "20 phases", "cine SAX")
    with pytest.raises(InputError, match="a T1 map"):
        check_series_kind("t1map", "", "T1MAP")
    assert "meaningless" in check_series_kind("irw", "7 TIs", "MOLLI", force=True)[0]
    assert check_series_kind("lge_psir", "", "LGE") == []
    assert "not recognised as LGE" in check_series_kind("unknown", "no pattern", "odd")[0]


def test_montage_and_files_round_trip(tmp_path):
    from cmrlib.quality.outputs import CSV_FIELDS, read_result, slice_label, write_result
    from cmrlib.quality.pipeline import classify_stack
    res = classify_stack(_stack(), networks=_networks(), series="LGE PSIR", hide_non_lv=True)
    summary = write_result(res, tmp_path)
    assert (tmp_path / "quality.png").stat().st_size > 5000 and summary["figures"] == ["quality.png"]
    back = read_result(tmp_path)
    assert back["summary"]["sentence"] == res.sentence and len(back["slices"]) == 5  # hidden from the picture only
    rows = (tmp_path / "slices.csv").read_text().splitlines()
    assert rows[0].split(",") == CSV_FIELDS and len(rows) == 6
    text, colour = slice_label(back["slices"][0])
    assert "slice 1" in text and "too basal" in text and colour == "#868e96"


# ---- evaluation helpers ---------------------------------------------------------------------------
def test_baselines_fit_what_they_can_see():
    from cmrlib.quality.evaluate import EvalStack, _binary, fit_logistic, logistic_p, position_cut_points
    rng = np.random.default_rng(2)
    f = rng.normal(0, 1, (400, 3))
    y = (f[:, 0] + 0.3 * rng.normal(0, 1, 400) > 0.5).astype(float)
    w = fit_logistic(f, y)
    p = logistic_p(w, f)
    stats = _binary(y.astype(bool), p, 0.5)
    assert stats["auc"] > 0.9 and stats["accuracy"] > 0.85 and stats["n"] == 400
    stacks = [EvalStack(None, ["too basal"] + ["LV"] * 8 + ["too apical"], [0.0] * 10, i, "lge_psir")
              for i in range(5)]
    a, b = position_cut_points(stacks)
    assert 0.0 < a <= 1 / 9 + 1e-9 and 8 / 9 - 1e-9 <= b < 1.0  # first and last slice cut off


def test_an_unreadable_slice_level_is_reported():
    from cmrlib.quality.pipeline import LEVEL_CONFIDENCE, classify_stack

    class _Unsure(nn.Module):
        def forward(self, x):
            return torch.zeros(x.shape[0], 3)  # one third each

    nets = {"slice-level": (_Unsure(), _entry("unsure")), "certainty": _networks()["certainty"]}
    res = classify_stack(_stack(), networks=nets)
    assert LEVEL_CONFIDENCE > 1 / 3
    assert any("slice level uncertain on slice(s) 1, 2, 3, 4, 5" in n for n in res.notes)

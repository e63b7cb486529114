"""QCD inference grids: a two-pass model reads a crop centred on the heart that its deepest
U-Net finds on the overview of the whole image; without a heart (or a one-pass model) the grid
stays on the image centre."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from cmrlib.qcd.infer import MIN_HEART_PX, locate_hearts, network_maps, segment
from cmrlib.qcd.unet import QCDConfig, QCDEnsemble


class BrightIsHeart(torch.nn.Module):
    """A stand-in deepest U-Net: blood pool wherever the normalised input is above 0.5, and a
    myocardium ring two pixels wide around it."""

    def forward(self, x):
        bright = (x > 0.5).float()
        ring = torch.nn.functional.max_pool2d(bright, 5, stride=1, padding=2) - bright
        return torch.cat([1 - bright - ring, ring, bright], 1) * 10.0


def _model(two_pass: bool) -> QCDEnsemble:
    cfg = QCDConfig(depths=(1, 2), base_filters=4, max_filters=8, size=32, pixel_mm=1.5, norm="batch",
                    overview_size=64 if two_pass else None, overview_pixel_mm=4.0 if two_pass else None)
    model = QCDEnsemble(cfg).eval()
    model.nets[-1] = BrightIsHeart()
    return model


def _image_with_disc(centre_colrow, radius_px=8, shape=(120, 140), more=()):
    rr, cc = np.mgrid[0:shape[0], 0:shape[1]]
    img = np.random.default_rng(0).random(shape).astype(np.float32) * 0.2
    for c in (centre_colrow, *more):
        img[np.hypot(cc - c[0], rr - c[1]) < radius_px] = 1.0
    return img


def _grid_centre_px(pm):
    h = (pm.size - 1) / 2
    return pm.to_source_px(np.array([h, h]))


def test_two_pass_crop_is_centred_on_the_heart_the_overview_finds():
    model = _model(True)
    img = _image_with_disc((110, 25))
    (pm,) = network_maps(model, [img], (2.0, 2.0))
    assert pm.size == 32 and np.allclose(np.abs(np.linalg.det(pm.matrix)), 1.5 ** 2)
    assert _grid_centre_px(pm) == pytest.approx([110, 25], abs=2.5)  # one 4 mm overview pixel = 2 source px


def test_without_a_heart_or_with_one_pass_the_grid_stays_on_the_image_centre():
    flat = np.full((120, 140), 0.1, np.float32)
    flat[60:63, 0:3] = 1.0  # a few bright pixels: below MIN_HEART_PX on the overview
    assert MIN_HEART_PX > 1
    (pm,) = network_maps(_model(True), [flat], (2.0, 2.0))
    assert _grid_centre_px(pm) == pytest.approx([69.5, 59.5], abs=1e-6)
    (pm1,) = network_maps(_model(False), [_image_with_disc((110, 25))], (2.0, 2.0))
    assert _grid_centre_px(pm1) == pytest.approx([69.5, 59.5], abs=1e-6)


def test_segment_returns_labels_on_the_source_grid_from_the_crop():
    from cmrlib.qcd.framework import Regressors
    model = _model(True)
    img = _image_with_disc((110, 25))
    coef = np.zeros((4, 4))
    coef[1, 0] = 0.9  # the regressors trust the stand-in net's candidate (an intercept of 0.9)
    reg = Regressors(coef)
    (seg,) = segment(model, reg, [img], (2.0, 2.0))
    assert seg.labels.shape == img.shape and seg.plane_map is not None
    assert seg.candidates_net.shape[1:] == (32, 32)
    assert seg.decision.candidate == 1 and seg.decision.qc_pass
    # the stand-in net's myocardium lies on the disc, back on the source grid
    rows, cols = np.nonzero(seg.labels == 1)
    assert len(rows) and abs(cols.mean() - 110) < 2 and abs(rows.mean() - 25) < 2


def _trusting_regressors():
    coef = np.zeros((4, 4))
    coef[1, 0] = 0.9
    from cmrlib.qcd.framework import Regressors
    return Regressors(coef)


def test_two_heart_like_regions_on_the_overview_never_pass_qc():
    # a ghost copy of the heart: the crop holds one of the two, and the ensemble may agree on the
    # ghost with full confidence; the overview's two regions fail the slice whatever the Dice
    model = _model(True)
    one, two = _image_with_disc((110, 25)), _image_with_disc((110, 25), more=[(40, 90)])
    s1, s2 = locate_hearts(model, [one, two], (2.0, 2.0))
    assert s1.regions == 1 and not s1.separate_hearts and s2.regions == 2 and s2.separate_hearts
    a, b = segment(model, _trusting_regressors(), [one, two], (2.0, 2.0))
    assert a.decision.qc_pass and a.decision.predicted_dice == pytest.approx(0.9)
    assert not b.decision.qc_pass and "separate heart-like regions" in b.decision.reason
    assert b.decision.predicted_dice == pytest.approx(0.9)  # the prediction is kept, the pass is not

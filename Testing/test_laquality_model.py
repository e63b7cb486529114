"""LA 3-D LGE quality (seed 001): networks, contrastive pieces, saliency, preparation of volumes and slices,
phantom labels, simulated raters and a site's own data."""
from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from cmrlib.errors import InputError
from cmrlib.image import Image
from cmrlib.laquality import data, preprocess
from cmrlib.laquality.contrastive import LARS, SupConLoss, multi_label_supcon
from cmrlib.laquality.networks import (LABELS, LADetector, LADetectorConfig, LAQualityNet, LAQualityNetConfig,
                                       build_la_quality)
from cmrlib.laquality.saliency import hirescam
from cmrlib.models.unet2d import n_parameters


# ---- networks ------------------------------------------------------------------------------------
def test_quality_network_presets_and_outputs():
    paper = LAQualityNet(LAQualityNetConfig.preset("paper"))
    # ResNet-34 encoder: the 21.3 M of torchvision's ResNet-34 features with a 1-channel stem
    assert 21.0e6 < n_parameters(paper.encoder) < 21.5e6
    assert [len(layer) for layer in (paper.encoder.layer1, paper.encoder.layer2, paper.encoder.layer3,
                                     paper.encoder.layer4)] == [3, 4, 6, 3]
    compact = LAQualityNet(LAQualityNetConfig.preset("compact", "multitask"))
    x = torch.randn(3, 1, 128, 128)
    logits, seg = compact.forward_with_mask(x)
    assert logits.shape == (3, len(LABELS)) and seg.shape == (3, 1, 128, 128)
    with pytest.raises(ValueError, match="variant"):
        LAQualityNetConfig.preset("compact", "unknown")
    con = build_la_quality(**{"variant": "contrastive", "widths": [16, 32, 64, 128], "latent": 32, "projection": 64})
    z = con.project(x)
    assert z.shape == (3, 64) and torch.allclose(z.norm(dim=1), torch.ones(3), atol=1e-5)
    # the heads the contrastive variant trains exclude the encoder and the projector
    head_ids = {id(p) for p in con.head_parameters()}
    assert not head_ids & {id(p) for p in con.encoder.parameters()}
    assert not head_ids & {id(p) for p in con.projector.parameters()}


def test_quality_head_reads_attribute_outputs():
    """The QA logit depends on the attribute modules (the card's concatenation), not on the
    encoder features directly."""
    net = LAQualityNet(LAQualityNetConfig.preset("compact")).eval()
    feat = torch.randn(2, 128)
    base = net.heads(feat)[:, 3].detach().clone()
    with torch.no_grad():
        for m in net.attributes:
            m[1].weight.mul_(0.0)
            m[1].bias.fill_(0.3)
    changed = net.heads(feat)[:, 3]
    assert not torch.allclose(base, changed)
    assert torch.allclose(changed[0], changed[1])  # features no longer reach the QA head


def test_detector_shapes():
    det = LADetector(LADetectorConfig.preset("compact"))
    assert det(torch.randn(2, 1, 128, 128)).shape == (2, 1, 128, 128)
    assert n_parameters(LADetector(LADetectorConfig.preset("paper"))) > 10 * n_parameters(det)


def test_supcon_prefers_label_clusters():
    loss = SupConLoss(0.1)
    labels = torch.tensor([0, 0, 1, 1, 0, 0, 1, 1])
    clustered = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0]] * 2 + [[0.0, 1.0]] * 2 + [[1.0, 0.05]] * 2
                                                           + [[0.05, 1.0]] * 2), dim=1)
    mixed = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0]] * 4), dim=1)
    assert loss(clustered, labels) < loss(mixed, labels)
    # summed over label columns: two identical columns give twice the loss
    two = multi_label_supcon(loss, clustered, torch.stack([labels, labels], 1))
    assert torch.isclose(two, 2 * loss(clustered, labels))


def test_lars_reduces_a_loss():
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(8, 4))
    target = torch.randn(8, 4)
    opt = LARS([w], lr=0.5, trust=0.01)
    first = None
    for _ in range(30):
        loss = ((w - target) ** 2).sum()
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first


def test_hirescam_marks_where_the_evidence_is():
    net = LAQualityNet(LAQualityNetConfig.preset("compact")).eval()
    x = torch.zeros(1, 1, 128, 128)
    x[..., 80:112, 16:48] = 1.0
    before = {k: v.clone() for k, v in net.state_dict().items()}
    cam = hirescam(net, x)
    assert cam.shape == (1, 128, 128) and (cam >= 0).all()
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert all(p.grad is None for p in net.parameters())


# ---- preparation ---------------------------------------------------------------------------------
AXIAL = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, -1.0]]).T


def test_check_volume_refuses_what_is_not_3d_la_lge():
    with pytest.raises(InputError, match="2-D image"):
        preprocess.check_volume(Image(np.zeros((1, 64, 64)), (1.25, 1.25, 2.5)))
    sax = np.array([[0.8, 0.5, 0.33], [-0.5, 0.86, 0.0], [-0.3, -0.2, 0.93]]).T
    with pytest.raises(InputError, match="short-axis stack"):
        preprocess.check_volume(Image(np.zeros((10, 128, 128)), (1.5, 1.5, 8.0), direction=sax))
    with pytest.raises(InputError, match="too small"):
        preprocess.check_volume(Image(np.zeros((20, 30, 30)), (1.25, 1.25, 2.5)))
    preprocess.check_volume(Image(np.zeros((20, 96, 96)), (1.25, 1.25, 2.5), direction=AXIAL))


def test_card_grid_resamples_and_says_so():
    same = Image(np.random.rand(20, 96, 96).astype(np.float32), (1.25, 1.25, 2.5), direction=AXIAL)
    out, notes = preprocess.to_card_grid(same)
    assert out is same and notes == []
    coarse = Image(np.random.rand(16, 60, 60).astype(np.float32), (2.0, 2.0, 3.2), direction=AXIAL)
    out, notes = preprocess.to_card_grid(coarse)
    assert out.spacing == (1.25, 1.25, 2.5) and "resampled from 2.00 × 2.00 × 3.20 mm" in notes[0]
    # the same field of view (within a voxel)
    assert abs(out.array.shape[2] * 1.25 - 60 * 2.0) <= 2.5 and abs(out.array.shape[0] * 2.5 - 16 * 3.2) <= 5.0
    coronal = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]]).T
    out, notes = preprocess.to_card_grid(Image(np.random.rand(40, 80, 80).astype(np.float32), (1.25, 1.25, 2.5),
                                               direction=coronal))
    assert "reoriented to axial" in notes[0]
    assert np.allclose(out.direction[:, 2], [0, 0, -1])


def test_window_and_unwindow_are_inverse():
    img = np.zeros((160, 150), np.float32)
    img[60:90, 40:80] = 1.0
    centre, side = (75.0, 60.0), 120.0
    view = preprocess.window(img, centre, side)
    back = preprocess.unwindow(view, img.shape, centre, side)
    assert view.shape == (128, 128)
    inside = np.zeros_like(img, bool)
    inside[20:130, 5:115] = True
    assert np.abs(back - img)[inside].mean() < 0.03
    # a mirrored view is the mirror of the view
    assert np.allclose(preprocess.window(img, centre, side, flip=True), view[:, ::-1], atol=1e-4)


# ---- labels and raters ---------------------------------------------------------------------------
def test_continuous_scores_round_to_the_phantom_labels():
    from cmrlib.phantom.labels import la_quality, la_quality_continuous
    rng = np.random.default_rng(0)
    for _ in range(200):
        args = (rng.uniform(0, 0.6), rng.uniform(0.4, 4.0), rng.uniform(-0.1, 0.8), rng.uniform(5, 30))
        c, q = la_quality_continuous(*args), la_quality(*args)
        assert all(int(np.round(c[k])) == q[k] for k in LABELS[:3])


def test_simulated_raters_disagree_as_configured():
    rng = np.random.default_rng(1)
    truth = {k: 3.0 for k in LABELS}
    scores = np.array([simulated["overall_quality"] for simulated in
                       (data.simulate_raters(truth, rng) for _ in range(2000))])
    assert scores.shape == (2000, 2) and scores.min() >= 1 and scores.max() <= 5
    assert 0.3 < np.mean(scores[:, 0] != scores[:, 1]) < 0.9  # at a cut point, raters often differ
    far = {k: 4.6 for k in LABELS}
    agree = np.array([data.simulate_raters(far, rng)["overall_quality"] for _ in range(500)])
    assert np.all(agree >= 3)  # far from the cut point, both say diagnostic


def test_phantom_scan_has_mask_labels_and_raters(tmp_path):
    scans = data.cached_phantom_scans(tmp_path, data.TEST_SEED_BASE, 1)
    s = scans[0]
    assert s.volume.shape == (data.N_SLICES, data.MATRIX, data.MATRIX) and s.volume.dtype == np.float16
    assert 10 < len(s.la_slices) < data.N_SLICES  # slices with and without atrium
    assert s.labels.shape == (4,) and set(np.unique(s.labels)) <= {0.0, 1.0}
    assert set(s.meta["raters"]) == set(LABELS)
    # read back from the cache: the same scan
    again = data.cached_phantom_scans(tmp_path, data.TEST_SEED_BASE, 1)[0]
    assert np.array_equal(again.volume, s.volume) and again.scores == s.scores
    shifted = data.shift_scan(s, np.random.default_rng(0))
    assert np.array_equal(shifted.labels, s.labels) and shifted.mask.sum() == s.mask.sum()
    assert not np.allclose(shifted.volume.astype(np.float32), s.volume.astype(np.float32), atol=0.05)


def test_two_writers_of_one_cache_scan_both_succeed(tmp_path, monkeypatch):
    """The benchmark trains models side by side on one cache: a second writer that finishes the
    same scan while the first is between writing and renaming must not take the first's file."""
    import os
    real_replace, calls = os.replace, []

    def replace_after_another_writer(src, dst):
        calls.append(str(src))
        if len(calls) == 1:  # the first writer pauses here; another writes the same scan
            data.cached_phantom_scans(tmp_path, data.TEST_SEED_BASE, 1)
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_after_another_writer)
    scan = data.cached_phantom_scans(tmp_path, data.TEST_SEED_BASE, 1)[0]
    assert len(calls) == 2 and calls[0] != calls[1]  # each writer its own temporary file
    assert [p.name for p in tmp_path.iterdir()] == [f"phantom-{data.TEST_SEED_BASE}.npz"]
    again = data.cached_phantom_scans(tmp_path, data.TEST_SEED_BASE, 1)[0]
    assert np.array_equal(again.volume, scan.volume)


def _write_user_folder(folder, n=3, with_masks=True, bad_score=None):
    from cmrlib.io import write_image
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    rng = np.random.default_rng(3)
    for i in range(n):
        vol = rng.normal(100, 10, (24, 96, 96)).astype(np.float32)
        mask = np.zeros(vol.shape, np.uint8)
        mask[8:16, 40:60, 40:60] = 1
        vol[mask > 0] += 200
        write_image(Image(vol, (1.25, 1.25, 2.5), direction=AXIAL), folder / f"scan{i}.nrrd")
        if with_masks:
            write_image(Image(mask, (1.25, 1.25, 2.5), direction=AXIAL), folder / f"scan{i}_la.nrrd")
        for rater in ("A", "B"):
            rows.append({"image": f"scan{i}.nrrd", "myocardial_nulling": 4, "sharpness": 2 + i,
                         "aorta_valve_enhancement": 3, "overall_quality": bad_score or (2 + i), "rater": rater,
                         "mask": f"scan{i}_la.nrrd" if with_masks else ""})
    with (folder / data.SCORES_CSV).open("w", newline="") as fh:
        w = csv.DictWriter(fh, list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def test_user_scans_read_scores_and_masks(tmp_path):
    _write_user_folder(tmp_path / "site")
    scans = data.user_scans(tmp_path / "site", need_masks=True)
    assert len(scans) == 3
    assert [s.labels[3] for s in scans] == [0.0, 1.0, 1.0]  # 2 → non-diagnostic, 3 and 4 diagnostic
    assert scans[0].la_slices == list(range(8, 16))
    with pytest.raises(InputError, match="must be 1–5"):
        _write_user_folder(tmp_path / "bad", bad_score=7)
        data.user_scans(tmp_path / "bad")
    with pytest.raises(InputError, match="no la_scores.csv"):
        data.user_scans(tmp_path)
    _write_user_folder(tmp_path / "nomask", with_masks=False)
    with pytest.raises(InputError, match="no mask"):
        data.user_scans(tmp_path / "nomask", need_masks=True)


def test_select_atrium_keeps_one_connected_blood_pool():
    from cmrlib.laquality.pipeline import select_atrium
    voxel_ml = 1.25 * 1.25 * 2.5 / 1000
    rng = np.random.default_rng(0)
    speckle = (rng.random((30, 96, 96)) > 0.995).astype(np.float32)  # isolated bright pixels everywhere
    mask, used, peaks = select_atrium(speckle, 0.6, voxel_ml)
    assert used == [] and not mask.any()  # the card's any-pixel rule alone would take every slice
    prob = speckle * 0.45  # faint speckle below the mask level
    prob[10:20, 30:60, 30:60] = 0.95  # a 28 ml atrium over slices 10-19
    prob[2:4, 80:84, 80:84] = 0.99  # a small bright spot elsewhere
    mask, used, peaks = select_atrium(prob, 0.6, voxel_ml)
    assert used == list(range(10, 20)) and mask[10:20, 30:60, 30:60].all() and not mask[2:4, 80:84, 80:84].any()
    assert np.isclose(peaks[15], 0.95) and peaks[3] == 0.0
    assert select_atrium(prob, 0.97, voxel_ml)[1] == []

"""MOCOnet training pieces: augmentation keeps frames and DVFs consistent, loss behaviour, data."""
import numpy as np
import torch

from cmrlib.motion.data import make_sample
from cmrlib.motion.train import _augment, _resize_target, moconet_loss
from cmrlib.motion.warp import warp_torch


def test_augmentation_keeps_dvfs_consistent():
    torch.manual_seed(0)
    frames = torch.rand(1, 3, 16, 16)
    dvf = torch.randn(1, 3, 2, 16, 16) * 0.5
    warped = warp_torch(frames[0][:, None], dvf[0])[:, 0][None]
    for seed in range(8):  # every flip / transpose combination appears
        gen = torch.Generator().manual_seed(seed)
        x_a, d_a = _augment(frames, dvf, gen)
        gen = torch.Generator().manual_seed(seed)
        w_a, _ = _augment(warped, dvf, gen)
        again = warp_torch(x_a[0][:, None], d_a[0])[:, 0][None]
        inner = (slice(None), slice(None), slice(2, -2), slice(2, -2))  # borders are clamped differently
        assert torch.allclose(again[inner], w_a[inner], atol=1e-5)


def test_loss_prefers_the_truth():
    smooth = torch.nn.functional.interpolate(torch.randn(2, 22, 6, 6), size=(144, 144), mode="bilinear",
                                             align_corners=True)
    target = smooth.view(2, 11, 2, 144, 144)  # smooth, like real motion
    present = torch.zeros(2, 11, dtype=torch.bool)
    present[:, :7] = True
    target[~present] = 0
    truth = [_resize_target(target, s) for s in (18, 24, 72)] + [target]
    zero = [torch.zeros_like(t) for t in truth]
    assert moconet_loss(truth, target, present) < moconet_loss(zero, target, present)
    # absent frame slots never contribute
    noisy = [t.clone() for t in truth]
    for t in noisy:
        t[:, 7:] = 5.0
    assert torch.isclose(moconet_loss(noisy, target, present), moconet_loss(truth, target, present))


def test_training_sample_inverse_undoes_the_motion():
    s = make_sample(123, severity=1.2, scheme="MOLLI 5(3)3", matrix=96)
    assert s.frames.shape == (8, 96, 96) and s.inverse_dvf.shape == (8, 2, 96, 96)
    assert np.allclose(s.forward_dvf.mean(axis=0), 0, atol=1e-5)  # groupwise: mean removed
    from cmrlib.motion.warp import warp_frames
    corrected = warp_frames(s.frames, s.inverse_dvf)
    inner = (slice(None), slice(8, -8), slice(8, -8))
    assert np.abs(corrected - s.clean)[inner].mean() < 0.6 * np.abs(s.frames - s.clean)[inner].mean()


def test_still_sets_are_the_motion_undone_with_zero_targets():
    from cmrlib.motion.train import _make_still
    s = make_sample(7, severity=1.0, scheme="ShMOLLI", matrix=48)
    x = torch.from_numpy(s.frames)[None].repeat(2, 1, 1, 1)
    d = torch.from_numpy(s.inverse_dvf)[None].repeat(2, 1, 1, 1, 1)
    x_all, d_all = _make_still(x, d, 1.0, torch.Generator().manual_seed(0))
    assert (d_all == 0).all() and (d != 0).any()  # the inputs are not modified in place
    undone = warp_torch(x[0][:, None], d[0])[:, 0]
    assert torch.allclose(x_all[0], undone)
    x_none, d_none = _make_still(x, d, 0.0, torch.Generator().manual_seed(0))
    assert torch.equal(x_none, x) and torch.equal(d_none, d)

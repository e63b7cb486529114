"""MOCOnet training pieces: augmentation keeps frames and DVFs consistent, loss behaviour, data."""
import numpy as np
import torch

from cmrlib.motion.data import make_sample
from cmrlib.motion.train import _augment, _resize_target, moconet_loss
from cmrlib.warp import warp_torch


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
    from cmrlib.warp import warp_frames
    corrected = warp_frames(s.frames, s.inverse_dvf)
    inner = (slice(None), slice(8, -8), slice(8, -8))
    assert np.abs(corrected - s.clean)[inner].mean() < 0.6 * np.abs(s.frames - s.clean)[inner].mean()


def test_still_sets_replace_batch_entries_with_zero_targets():
    from cmrlib.motion.train import _mix_still
    x, d = torch.rand(3, 11, 8, 8), torch.randn(3, 11, 2, 8, 8)
    counts = torch.tensor([7, 8, 11])
    still = (np.full((2, 11, 8, 8), 0.5, np.float16), np.zeros((2, 11, 2, 8, 8), np.float16), np.array([8, 8]))
    x_all, d_all, c_all = _mix_still(x, d, counts, still, 1.0, torch.Generator().manual_seed(0))
    assert (d_all == 0).all() and (x_all == 0.5).all() and (c_all == 8).all()
    assert (d != 0).any() and (counts == torch.tensor([7, 8, 11])).all()  # inputs not modified in place
    x_none, d_none, c_none = _mix_still(x, d, counts, still, 0.0, torch.Generator().manual_seed(0))
    assert torch.equal(x_none, x) and torch.equal(d_none, d) and torch.equal(c_none, counts)

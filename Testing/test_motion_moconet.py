"""MOCOnet layer shapes (appendix A.1) and warping conventions."""
import numpy as np
import pytest
import torch

from cmrlib.motion.moconet import GroupwiseMOCOnet, MOCOnet, MOCOnetConfig, build_moconet
from cmrlib.warp import warp_frames


def _trace_shapes(model: MOCOnet, x: torch.Tensor) -> dict[str, tuple]:
    shapes = {}
    hooks = []
    for i, block in enumerate(model.enc):
        hooks.append(block.register_forward_hook(lambda m, a, o, i=i: shapes.__setitem__(f"enc{i + 1}", tuple(o.shape[1:]))))
    hooks.append(model.bottleneck.register_forward_hook(lambda m, a, o: shapes.__setitem__("bottleneck", tuple(o.shape[1:]))))
    for i, up in enumerate(model.up):
        hooks.append(up.register_forward_hook(lambda m, a, o, i=i: shapes.__setitem__(f"up{i + 1}", tuple(o.shape[1:]))))
    for i, r in enumerate(model.refine):
        hooks.append(r.register_forward_hook(lambda m, a, o, i=i: shapes.__setitem__(f"dec{i + 1}", tuple(o.shape[1:]))))
        hooks.append(r.register_forward_pre_hook(lambda m, a, i=i: shapes.__setitem__(f"concat{i + 1}", tuple(a[0].shape[1:]))))
    with torch.no_grad():
        scales = model.forward_scales(x)
    for h in hooks:
        h.remove()
    shapes["dvf"] = [tuple(s.shape[1:]) for s in scales]
    return shapes


def test_paper_preset_intermediate_shapes():
    model = MOCOnet(MOCOnetConfig.preset("paper")).eval()
    s = _trace_shapes(model, torch.zeros(1, 7, 384, 384))
    # encoder (channels, H, W) before pooling, then pooled sizes 192 → 64 → 48 → 24
    assert s["enc1"] == (16, 384, 384) and s["enc2"] == (32, 192, 192)
    assert s["enc3"] == (64, 64, 64) and s["enc4"] == (128, 48, 48)
    assert s["bottleneck"] == (256, 24, 24)
    assert s["up1"] == (128, 48, 48)  # 2×2 stride 2
    assert s["up3"] == (32, 192, 192) and s["up4"] == (16, 384, 384)  # 3×3 s3, 2×2 s2
    assert s["concat1"] == (256, 48, 48) and s["concat2"] == (128, 64, 64)
    assert s["concat3"] == (64, 192, 192) and s["concat4"] == (32, 384, 384)
    assert s["dec1"] == (128, 48, 48) and s["dec2"] == (64, 64, 64) and s["dec3"] == (32, 192, 192)
    assert s["dec4"] == (14, 384, 384)  # the 384×384×14 inverse DVF
    assert s["dvf"] == [(7, 2, 48, 48), (7, 2, 64, 64), (7, 2, 192, 192), (7, 2, 384, 384)]


def _groupwise_with_output() -> GroupwiseMOCOnet:
    model = GroupwiseMOCOnet(MOCOnetConfig.preset("compact")).eval()
    torch.manual_seed(0)
    for head in model.dvf_head:  # zero-initialised ("no motion"): give them an output for the checks
        torch.nn.init.normal_(head.weight, std=0.05)
    return model


def test_compact_is_groupwise_and_takes_any_frame_count():
    model = _groupwise_with_output()
    assert isinstance(build_moconet(preset="compact"), GroupwiseMOCOnet)
    for n in (5, 7, 8, 11, 13):  # ShMOLLI, MOLLI 5(3)3, MOLLI 3(3)3(3)5 and others: one set of weights
        slots = max(n, 11)
        x = torch.zeros(2, slots, 144, 144)
        x[:, :n] = torch.rand(2, n, 144, 144)
        present = torch.zeros(2, slots, dtype=torch.bool)
        present[:, :n] = True
        with torch.no_grad():
            scales = model.forward_scales(x, present)
        assert [tuple(s.shape[-2:]) for s in scales] == [(18, 18), (36, 36), (72, 72), (144, 144)]
        dvf = scales[-1]
        assert dvf.shape == (2, slots, 2, 144, 144) and dvf.abs().max() > 1e-3
        assert torch.allclose(dvf[:, :n].mean(dim=1), torch.zeros(1), atol=1e-5)  # groupwise: mean removed
        assert (dvf[:, n:] == 0).all()


def test_groupwise_follows_the_order_of_the_frames():
    """The encoder is shared by all frames: permuting the frames permutes their DVFs."""
    model = _groupwise_with_output()
    x = torch.rand(1, 7, 96, 96)
    perm = torch.tensor([3, 0, 6, 1, 5, 2, 4])
    with torch.no_grad():
        dvf, dvf_perm = model(x), model(x[:, perm])
    assert torch.allclose(dvf[:, perm], dvf_perm, atol=1e-5)


def test_sets_in_a_batch_do_not_mix():
    model = _groupwise_with_output()
    a, b = torch.rand(1, 8, 96, 96), torch.rand(1, 8, 96, 96)
    present = torch.tensor([[True] * 8, [True] * 6 + [False] * 2])
    with torch.no_grad():
        alone = model(b[:, :6], torch.ones(1, 6, dtype=torch.bool))
        batch = model(torch.cat([a, b]), present)
    assert torch.allclose(batch[1, :6], alone[0], atol=1e-5)


def test_input_size_checked():
    with pytest.raises(ValueError, match="multiple of 48"):
        MOCOnet(input_size=100)
    with pytest.raises(ValueError, match="multiple of 16"):
        GroupwiseMOCOnet(input_size=100, filters=(8, 16, 32, 64))


def test_warp_convention_shifts_content():
    """corrected(x) = frame(x + d): a +2-row DVF moves content up by 2 rows."""
    frame = np.zeros((1, 16, 16), np.float32)
    frame[0, 8, 5] = 1.0
    dvf = np.zeros((1, 2, 16, 16), np.float32)
    dvf[0, 0] = 2.0
    out = warp_frames(frame, dvf)
    assert out[0, 6, 5] == pytest.approx(1.0) and out[0, 8, 5] == pytest.approx(0.0)


class _CentroidShift(torch.nn.Module):
    """A stand-in 'network' whose answer is exactly equivariant to flips and transposes: each
    frame's DVF is the constant shift from its intensity centroid to the mean centroid."""

    any_frame_count = True

    def __init__(self):
        super().__init__()
        self.config = MOCOnetConfig(input_size=48, frame_slots=3, filters=(4, 4), design="groupwise")
        self.unused = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x, present=None):
        n, f, h, w = x.shape
        rows = torch.arange(h, dtype=x.dtype).view(1, 1, h, 1)
        cols = torch.arange(w, dtype=x.dtype).view(1, 1, 1, w)
        mass = x.sum(dim=(-1, -2))
        centroid = torch.stack([(x * rows).sum(dim=(-1, -2)) / mass, (x * cols).sum(dim=(-1, -2)) / mass], dim=-1)
        shift = centroid - centroid.mean(dim=1, keepdim=True)  # sampling DVF that aligns frame k to the mean
        return shift[..., None, None].expand(n, f, 2, h, w).clone()


def test_flip_average_maps_dvfs_back_correctly():
    from cmrlib.motion.moconet_infer import predict_dvf
    frames = np.zeros((3, 48, 48), np.float32)
    for k, (r, c) in enumerate([(20, 14), (24, 30), (17, 25)]):  # blobs off-centre, not symmetric
        frames[k, r - 3:r + 3, c - 5:c + 2] = 1.0
    model = _CentroidShift()
    plain = predict_dvf(model, frames, flip_average=False)
    assert np.abs(plain).max() > 3  # a real displacement to map back
    assert np.allclose(predict_dvf(model, frames, flip_average=True), plain, atol=1e-4)

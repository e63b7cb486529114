"""CMRStressT1 registration networks: presets, shapes, identity at initialisation, the warp
convention (MONAI's spatial transformer = cmrlib.warp), and the network DVF carried back to
the source grid exactly."""
import numpy as np
import pytest
import torch

from cmrlib.models.registry import build_architecture
from cmrlib.planes import centred_map
from cmrlib.stress.infer import dvf_to_source
from cmrlib.stress.swin_unet import PatchExpand, RegistrationConfig, StressRegistration
from cmrlib.warp import warp_frames, warp_torch


def test_paper_preset_is_the_appendix():
    cfg = RegistrationConfig.preset("paper")
    assert (cfg.size, cfg.patch_size, cfg.embed_dim, cfg.window_size) == (192, 4, 128, 7)
    assert cfg.num_heads == (4, 8, 8, 8) and cfg.depths == (2, 2, 2, 2)
    assert cfg.mlp_ratio == 4.0 and cfg.dropout == 0.1
    with pytest.raises(ValueError, match="unknown preset"):
        RegistrationConfig.preset("huge")


@pytest.mark.parametrize("backbone", ["swin", "unet"])
def test_compact_shapes_and_identity_at_start(backbone):
    torch.manual_seed(0)
    cfg = RegistrationConfig.preset("compact", backbone)
    net = build_architecture("dt1-registration", **cfg.to_args()).eval()
    x = torch.rand(2, 1, cfg.size, cfg.size)
    warped, dvf = net(x, torch.rand_like(x))
    assert warped.shape == x.shape and dvf.shape == (2, 2, cfg.size, cfg.size)
    # VoxelMorph's flow initialisation: the untrained network is (nearly) the identity warp
    assert float(dvf.abs().max()) < 0.05
    assert torch.allclose(warped[:, :, 2:-2, 2:-2], x[:, :, 2:-2, 2:-2], atol=0.02)


def test_paper_swin_runs_at_192():
    net = StressRegistration(RegistrationConfig.preset("paper")).eval()
    with torch.no_grad():
        _, dvf = net(torch.rand(1, 1, 192, 192), torch.rand(1, 1, 192, 192))
    assert dvf.shape == (1, 2, 192, 192)
    assert sum(p.numel() for p in net.parameters()) > 40e6  # embedding 128 doubling over 4 levels


def test_patch_expand_doubles_resolution_halves_channels():
    x = torch.rand(1, 4, 5, 16)
    assert PatchExpand(16)(x).shape == (1, 8, 10, 8)
    assert PatchExpand(16, scale=4)(x).shape == (1, 16, 20, 16)


def test_monai_warp_is_the_project_convention():
    """The network's spatial transformer (MONAI Warp) and cmrlib.warp agree on a known shift."""
    net = StressRegistration(RegistrationConfig.preset("compact", "unet"))
    warp = net.voxelmorph.warp
    img = torch.zeros(1, 1, 32, 32)
    img[0, 0, 10:14, 8:12] = 1.0
    dvf = torch.zeros(1, 2, 32, 32)
    dvf[:, 0], dvf[:, 1] = 3.0, -2.0  # sample 3 rows down, 2 columns left
    a = warp(img, dvf)
    b = warp_torch(img, dvf)
    assert torch.allclose(a[..., 4:-4, 4:-4], b[..., 4:-4, 4:-4], atol=1e-5)
    # warped(x) = img(x + d): the square moves 3 rows up and 2 columns right
    assert float(a[0, 0, 7:11, 10:14].mean()) == pytest.approx(1.0)
    zero = warp(img, torch.zeros_like(dvf))
    assert torch.allclose(zero, img)


def test_network_dvf_back_to_the_source_grid():
    """A uniform shift on a rotated, scaled network grid becomes the same physical shift on the
    source grid (anisotropic pixels)."""
    shape, spacing = (60, 80), (1.25, 1.0)
    grid = centred_map(shape, spacing, 32, 2.0, centre_px=(40.0, 30.0))
    dvf_net = np.zeros((2, 32, 32), np.float32)
    dvf_net[0] = 1.5  # 1.5 network rows = 3 mm along rows
    src = dvf_to_source(dvf_net, grid, shape)
    inside = src[0] != 0
    assert inside.sum() > 500
    np.testing.assert_allclose(src[0][inside], 3.0 / spacing[1], atol=1e-4)  # 3 mm in 1.0 mm rows
    np.testing.assert_allclose(src[1][inside], 0.0, atol=1e-4)
    img = np.zeros(shape, np.float32)
    img[20:30, 30:40] = 1
    moved = warp_frames(img[None], src[None])[0]
    assert moved[17:27, 30:40].mean() == pytest.approx(1.0)


def test_composed_dvf_is_the_two_warps_in_turn():
    from cmrlib.warp import compose_dvf, warp_image
    r, c = np.mgrid[0:48, 0:48] / 48.0
    img = np.exp(-((r - 0.45) ** 2 + (c - 0.5) ** 2) / 0.02).astype(np.float32)  # smooth: interpolation exact enough
    first = np.stack([2.0 + np.sin(3 * r), -1.5 * c]).astype(np.float32)  # non-uniform fields
    then = np.stack([0.5 * np.cos(2 * c), 1.0 + r]).astype(np.float32)
    two = warp_image(warp_image(img, first), then)
    one = warp_image(img, compose_dvf(first, then))
    assert np.abs(two - one)[6:-6, 6:-6].max() < 0.02
    assert np.abs(two - img)[6:-6, 6:-6].max() > 0.3  # and the warps did move it
    labels = (img > 0.5).astype(np.uint8)
    assert warp_image(labels, first, nearest=True).dtype == np.uint8

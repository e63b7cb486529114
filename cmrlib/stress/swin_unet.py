"""Swin-U-Net VoxelMorph of thesis appendix A.2: unsupervised 2-D registration of a stress T1
map (moving) to the rest T1 map (fixed) of the same slice position.

Input ``[N, 2, S, S]`` (moving, fixed; each scaled 0–1 by one factor per pair, centred on
the myocardium); the backbone predicts a 2-channel *sampling* DVF in pixels (channel 0 rows,
channel 1 columns — the project convention of :mod:`cmrlib.warp`) and MONAI's spatial
transformer (``monai.networks.blocks.Warp`` inside ``monai.networks.nets.VoxelMorph``) warps
the moving map: ``warped(x) = moving(x + dvf(x))``.

Backbone (the Swin-Unet of Cao et al. 2021 with the appendix's settings, ``paper`` preset):
patch 4×4 embedding to 128 channels (doubling per level: 128/256/512/1024), 4 levels × 2
Swin blocks (window 7×7, every second block shifted by half a window, heads 4/8/8/8, MLP
ratio 4, GELU, dropout 0.1, pre-norm), patch merging between encoder levels, patch
expanding between decoder levels with skip connections (concatenation + linear), a final
×4 patch expansion and a 3×3 convolution to the DVF, on a 192×192 input.

From MONAI: ``PatchEmbed``, ``BasicLayer`` (the Swin blocks with shifted-window masks),
``PatchMerging`` (``monai.networks.nets.swin_unetr``), ``VoxelMorph`` with
``integration_steps=0`` (a displacement, not a velocity field, as in the appendix) and its
``Warp``. MONAI has no Swin *decoder* (its ``SwinUNETR`` decodes with convolutions): the
patch expanding layers (:class:`PatchExpand`) are written here. Where a level's grid is
smaller than the window (6×6 tokens at the paper's deepest level) MONAI's ``BasicLayer``
shrinks the window to the grid and drops the shift, as the Swin reference code does.

The ``compact`` preset (the bundled CPU-trained weights) keeps the layer types and narrows
the width to 24…192 channels, window 4, heads 2/4/4/4 on a 128×128 input of 1.5 mm pixels,
and works on rigidly pre-aligned pairs (``prealign="rigid"``: the network learns the residual
deformation). Measured here: trained on raw pairs, the compact Swin reached a validation
myocardial Dice of only 0.69 (from 0.57) after 1,350 batches of CPU training, while a rigid
SimpleITK alignment alone reached 0.81 — the CPU budget has no room for the appendix's 200
epochs that learn large displacements from scratch (:class:`RegistrationConfig`).
"""
from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
from monai.networks.blocks.patchembedding import PatchEmbed
from monai.networks.nets import VoxelMorph, VoxelMorphUNet
from monai.networks.nets.swin_unetr import BasicLayer, PatchMerging

from ..models.registry import register_architecture

# MONAI says on every Warp construction that it uses PyTorch's grid_sample (no compiled
# extension): expected here, and noise in a user's terminal
warnings.filterwarnings("ignore", message="monai.networks.blocks.Warp: Using PyTorch native grid_sample")


@dataclass(frozen=True)
class RegistrationConfig:
    """Network and input-grid settings; travels in the manifest's ``arch_args``."""

    backbone: str = "swin"  # swin | unet (the VoxelMorph U-Net baseline)
    size: int = 192  # input grid, px
    pixel_mm: float = 1.0  # input pixel size the maps are resampled to (mm)
    patch_size: int = 4
    embed_dim: int = 128
    depths: tuple[int, ...] = (2, 2, 2, 2)
    num_heads: tuple[int, ...] = (4, 8, 8, 8)
    window_size: int = 7
    mlp_ratio: float = 4.0
    dropout: float = 0.1
    #: "rigid": the pair is rigidly pre-aligned (SimpleITK Euler, :func:`cmrlib.stress.data.prealign`)
    #: before the network, which learns the residual deformation (VoxelMorph's own assumption of
    #: affinely pre-aligned inputs); "none": the network alone (the appendix)
    prealign: str = "none"

    @classmethod
    def preset(cls, name: str, backbone: str = "swin") -> "RegistrationConfig":
        if backbone not in ("swin", "unet"):
            raise ValueError(f"backbone must be swin or unet; got {backbone!r}")
        if name == "paper":
            return cls(backbone=backbone)
        if name == "compact":
            return cls(backbone=backbone, size=128, pixel_mm=1.0, embed_dim=24, num_heads=(2, 4, 4, 4), window_size=4,
                       prealign="rigid")
        raise ValueError(f"unknown preset {name!r}; expected paper or compact")

    def to_args(self) -> dict:
        d = asdict(self)
        d["depths"], d["num_heads"] = list(self.depths), list(self.num_heads)
        return d


class PatchExpand(nn.Module):
    """Swin-Unet patch expanding: channel-last ``[B, H, W, C]`` → ``[B, s·H, s·W, C·2/s]``
    (s = 2 between decoder levels: linear C→2C, rearranged into 2×2 pixels of C/2; s = 4 for
    the final expansion to the input resolution: linear C→16C into 4×4 pixels of C)."""

    def __init__(self, dim: int, scale: int = 2):
        super().__init__()
        self.scale = scale
        self.out_dim = dim // 2 if scale == 2 else dim
        self.expand = nn.Linear(dim, self.out_dim * scale * scale, bias=False)
        self.norm = nn.LayerNorm(self.out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, _ = x.shape
        s, c = self.scale, self.out_dim
        x = self.expand(x).view(b, h, w, s, s, c).permute(0, 1, 3, 2, 4, 5).reshape(b, h * s, w * s, c)
        return self.norm(x)


class SwinUNetBackbone(nn.Module):
    """Swin-Unet: ``[N, 2, S, S]`` → DVF ``[N, 2, S, S]`` (pixels)."""

    def __init__(self, cfg: RegistrationConfig):
        super().__init__()
        if cfg.size % (cfg.patch_size * 2 ** (len(cfg.depths) - 1)):
            raise ValueError(f"input size {cfg.size} must be a multiple of patch × 2^(levels-1)")
        n = len(cfg.depths)
        self.patch_embed = PatchEmbed(patch_size=cfg.patch_size, in_chans=2, embed_dim=cfg.embed_dim,
                                      norm_layer=nn.LayerNorm, spatial_dims=2)
        self.pos_drop = nn.Dropout(cfg.dropout)
        window = (cfg.window_size, cfg.window_size)
        dims = [cfg.embed_dim * 2 ** i for i in range(n)]
        self.encoder = nn.ModuleList(
            BasicLayer(dim=dims[i], depth=cfg.depths[i], num_heads=cfg.num_heads[i], window_size=window,
                       drop_path=[0.0] * cfg.depths[i], mlp_ratio=cfg.mlp_ratio, qkv_bias=True, drop=cfg.dropout,
                       downsample=PatchMerging if i < n - 1 else None)
            for i in range(n))
        self.bottleneck_norm = nn.LayerNorm(dims[-1])
        self.expand_first = PatchExpand(dims[-1])
        self.concat_back = nn.ModuleList(nn.Linear(2 * dims[i], dims[i]) for i in range(n - 2, -1, -1))
        self.decoder = nn.ModuleList(
            BasicLayer(dim=dims[i], depth=cfg.depths[i], num_heads=cfg.num_heads[i], window_size=window,
                       drop_path=[0.0] * cfg.depths[i], mlp_ratio=cfg.mlp_ratio, qkv_bias=True, drop=cfg.dropout,
                       downsample=None)
            for i in range(n - 2, -1, -1))
        self.expand_up = nn.ModuleList(PatchExpand(dims[i]) for i in range(n - 2, 0, -1))
        self.decoder_norm = nn.LayerNorm(dims[0])
        self.expand_final = PatchExpand(dims[0], scale=cfg.patch_size) if cfg.patch_size == 4 else None
        if self.expand_final is None:
            raise ValueError("the Swin-Unet final expansion is ×4: patch_size must be 4")
        self.flow = nn.Conv2d(dims[0], 2, kernel_size=3, padding=1)
        # VoxelMorph's flow-layer initialisation: start near the identity warp
        nn.init.normal_(self.flow.weight, 0.0, 1e-5)
        nn.init.zeros_(self.flow.bias)

    @staticmethod
    def _last(x: torch.Tensor) -> torch.Tensor:  # [B, C, H, W] → [B, H, W, C]
        return x.permute(0, 2, 3, 1)

    @staticmethod
    def _first(x: torch.Tensor) -> torch.Tensor:  # [B, H, W, C] → [B, C, H, W]
        return x.permute(0, 3, 1, 2).contiguous()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pos_drop(self.patch_embed(x))  # [B, C, H/4, W/4]
        skips = []
        for layer in self.encoder:
            skips.append(x)
            x = layer(x)
        x = self.bottleneck_norm(self._last(x))
        x = self.expand_first(x)
        for k, (cat, layer) in enumerate(zip(self.concat_back, self.decoder)):
            skip = self._last(skips[len(skips) - 2 - k])
            x = cat(torch.cat([x, skip], dim=-1))
            x = self._last(layer(self._first(x)))
            if k < len(self.expand_up):
                x = self.expand_up[k](x)
        x = self.expand_final(self.decoder_norm(x))
        return self.flow(self._first(x))


def unet_backbone() -> nn.Module:
    """The baseline: VoxelMorph's own U-Net (MONAI ``VoxelMorphUNet`` with the VoxelMorph-2
    channel widths 16/32/32/32/32/32, final convolutions 16/16) with the same flow initialisation."""
    net = VoxelMorphUNet(spatial_dims=2, in_channels=2, unet_out_channels=32, channels=(16, 32, 32, 32, 32, 32),
                         final_conv_channels=(16, 16))
    for m in reversed(list(net.modules())):  # the last convolution outputs the DVF
        if isinstance(m, nn.Conv2d) and m.out_channels == 2:
            nn.init.normal_(m.weight, 0.0, 1e-5)
            nn.init.zeros_(m.bias)
            break
    return net


class StressRegistration(nn.Module):
    """``forward(moving, fixed)`` → (warped moving, DVF), both ``[N, ·, S, S]``."""

    def __init__(self, cfg: RegistrationConfig):
        super().__init__()
        self.cfg = cfg
        backbone = SwinUNetBackbone(cfg) if cfg.backbone == "swin" else unet_backbone()
        # integration_steps=0: the network's output is the displacement itself (appendix A.2)
        self.voxelmorph = VoxelMorph(backbone=backbone, integration_steps=0, spatial_dims=2)

    def forward(self, moving: torch.Tensor, fixed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.voxelmorph(moving, fixed)


@register_architecture("dt1-registration")
def build(**arch_args) -> StressRegistration:
    args = dict(arch_args)
    for key in ("depths", "num_heads"):
        if key in args:
            args[key] = tuple(args[key])
    return StressRegistration(RegistrationConfig(**args))

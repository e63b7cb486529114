"""MOCOnet: groupwise motion correction of IRW frames (thesis ch. 2, appendix A.1), in PyTorch.

Input ``[N, F, H, W]``: the IRW frames as channels, quantile-normalised, zero frames for
absent ones. Output: one sampling DVF per frame, ``[N, F, 2, H, W]`` in pixels of the input
grid (project convention, :mod:`cmrlib.motion.warp`), mean over present frames removed.

Presets (``MOCOnetConfig``):

* ``paper`` — layer for layer as appendix A.1: 384×384×7 input; encoder blocks of three
  3×3 conv + batch norm + LeakyReLU(0.1), filters 16/32/64/128, max-pools 2 → 3 → 4
  (stride 4/3) → 2, bottleneck 256 at 24×24; decoder of transposed convs (2×2 s2, 4×4 s3,
  3×3 s3, 2×2 s2) back to 48, 64, 192, 384; at each of the four scales a 3×3 conv predicts
  a 14-channel DVF, the decoder features are bilinearly warped by it and concatenated with
  the encoder features of that scale; the last refinement conv gives the 384×384×14 DVF.
* ``compact`` — same topology, filters 8/16/32/64/128, 144×144 input, 11 frame slots.

Where A.1's numbers do not determine a layer, the choice made here:
* the 4×4 / stride-4/3 pool (64 → 48) is an adaptive max-pool to 3/4 of the size;
* a transposed conv whose kernel/stride cannot produce the published size (4×4 s3: 48 → 64)
  is followed by an exact-size bilinear resize;
* "warping the decoder features by a 14-channel DVF": the decoder channels are split into
  one group per frame and group k is warped by frame k's DVF;
* A.1 lists concatenated widths of 192, 96 and 64 channels that its own layer list cannot
  produce; here the concatenation is decoder + encoder channels (256, 128, 64, 32).
* DVFs are refined coarse to fine: each scale's conv predicts a residual added to the
  upsampled (and rescaled) DVF of the previous scale.
* Frame counts: ShMOLLI 7, MOLLI 8 and 11 all run through one network with ``frame_slots``
  inputs (11 for ``compact``); absent slots are zero and their DVFs are ignored. The
  ``paper`` preset keeps the published 7 slots.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..models.registry import register_architecture
from .warp import warp_torch


@dataclass(frozen=True)
class MOCOnetConfig:
    input_size: int = 384
    frame_slots: int = 7
    filters: tuple[int, int, int, int, int] = (16, 32, 64, 128, 256)
    negative_slope: float = 0.1

    @classmethod
    def preset(cls, name: str) -> "MOCOnetConfig":
        if name == "paper":
            return cls()
        if name == "compact":
            return cls(input_size=144, frame_slots=11, filters=(8, 16, 32, 64, 128))
        raise ValueError(f"unknown MOCOnet preset {name!r}; expected 'paper' or 'compact'")

    @property
    def scale_sizes(self) -> tuple[int, int, int, int]:
        """Spatial sizes of the four DVF scales, coarse to fine (48, 64, 192, 384 for paper)."""
        s = self.input_size
        return (s // 6 * 3 // 4, s // 6, s // 2, s)


def _conv_block(cin: int, cout: int, slope: float, n: int = 3) -> nn.Sequential:
    layers: list[nn.Module] = []
    for k in range(n):
        layers += [nn.Conv2d(cin if k == 0 else cout, cout, 3, padding=1), nn.BatchNorm2d(cout),
                   nn.LeakyReLU(slope, inplace=True)]
    return nn.Sequential(*layers)


class MOCOnet(nn.Module):
    """See module docstring. ``forward`` returns the finest DVFs; ``forward_scales`` all four."""

    def __init__(self, config: MOCOnetConfig | None = None, **overrides) -> None:
        super().__init__()
        cfg = config or MOCOnetConfig(**{k: tuple(v) if k == "filters" else v for k, v in overrides.items()})
        if cfg.input_size % 48:
            raise ValueError(f"MOCOnet input size must be a multiple of 48 (pools 2·3·4/3·2); got {cfg.input_size}")
        self.config = cfg
        f, slope, nf = cfg.filters, cfg.negative_slope, cfg.frame_slots
        self.enc = nn.ModuleList([_conv_block(nf, f[0], slope), _conv_block(f[0], f[1], slope),
                                  _conv_block(f[1], f[2], slope), _conv_block(f[2], f[3], slope)])
        self.bottleneck = _conv_block(f[3], f[4], slope)
        # decoder: transposed convs as published (kernel, stride), then refinement convs
        self.up = nn.ModuleList([nn.ConvTranspose2d(f[4], f[3], 2, 2), nn.ConvTranspose2d(f[3], f[2], 4, 3),
                                 nn.ConvTranspose2d(f[2], f[1], 3, 3), nn.ConvTranspose2d(f[1], f[0], 2, 2)])
        self.dvf_head = nn.ModuleList([nn.Conv2d(c, 2 * nf, 3, padding=1) for c in (f[3], f[2], f[1], f[0])])
        skips = (f[3], f[2], f[1], f[0])  # encoder features before pooling at 48, 64, 192, 384
        self.refine = nn.ModuleList([
            nn.Sequential(nn.Conv2d(f[3] + skips[0], f[3], 3, padding=1), nn.LeakyReLU(slope, inplace=True)),
            nn.Sequential(nn.Conv2d(f[2] + skips[1], f[2], 3, padding=1), nn.LeakyReLU(slope, inplace=True)),
            nn.Sequential(nn.Conv2d(f[1] + skips[2], f[1], 3, padding=1), nn.LeakyReLU(slope, inplace=True)),
            nn.Conv2d(f[0] + skips[3], 2 * nf, 3, padding=1),  # final 14-channel (2·slots) DVF
        ])
        # Start from "no motion" (every DVF head and the last refinement zero): the initial
        # loss is that of predicting zero, and the network departs from it only where it helps.
        # With random heads the summed multi-scale noise kept the training loss above the
        # zero-prediction loss for epochs.
        for layer in (*self.dvf_head, self.refine[-1]):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    # -- helpers ---------------------------------------------------------------------------
    def _pool(self, level: int, x: torch.Tensor) -> torch.Tensor:
        if level == 0 or level == 3:
            return F.max_pool2d(x, 2, 2)
        if level == 1:
            return F.max_pool2d(x, 3, 3)
        return F.adaptive_max_pool2d(x, (x.shape[-2] * 3 // 4, x.shape[-1] * 3 // 4))  # 4×4, stride 4/3

    @staticmethod
    def _resize_dvf(dvf: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Resample a DVF [N, 2F, h, w] (pixels) to ``size``, scaling displacements with the grid."""
        h, w = dvf.shape[-2:]
        out = F.interpolate(dvf, size=size, mode="bilinear", align_corners=True)
        n, c = out.shape[:2]
        out = out.view(n, c // 2, 2, *size)
        scale = torch.tensor([(size[0] - 1) / max(h - 1, 1), (size[1] - 1) / max(w - 1, 1)],
                             device=dvf.device, dtype=dvf.dtype).view(1, 1, 2, 1, 1)
        return (out * scale).view(n, c, *size)

    def _warp_groups(self, feat: torch.Tensor, dvf: torch.Tensor) -> torch.Tensor:
        """Warp channel group k of ``feat`` by frame k's DVF (groups as equal as possible)."""
        nf = self.config.frame_slots
        groups = torch.tensor_split(feat, nf, dim=1)
        d = dvf.view(dvf.shape[0], nf, 2, *dvf.shape[-2:])
        return torch.cat([warp_torch(g, d[:, k]) if g.shape[1] else g for k, g in enumerate(groups)], dim=1)

    # -- forward ----------------------------------------------------------------------------
    def forward_scales(self, x: torch.Tensor, present: torch.Tensor | None = None) -> list[torch.Tensor]:
        """DVFs at the four scales, coarse to fine, each ``[N, F, 2, h, w]`` in that scale's pixels."""
        skips = []
        for level, block in enumerate(self.enc):
            x = block(x)
            skips.append(x)
            x = self._pool(level, x)
        x = self.bottleneck(x)
        dvf = None
        outputs = []
        for i in range(4):
            skip = skips[3 - i]
            x = self.up[i](x)
            if x.shape[-2:] != skip.shape[-2:]:
                x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            step = self.dvf_head[i](x)
            dvf = step if dvf is None else self._resize_dvf(dvf, skip.shape[-2:]) + step
            merged = torch.cat([self._warp_groups(x, dvf), skip], dim=1)
            if i < 3:
                x = self.refine[i](merged)
                outputs.append(dvf)
            else:
                dvf = dvf + self.refine[i](merged)
                outputs.append(dvf)
        n = outputs[0].shape[0]
        nf = self.config.frame_slots
        return [_remove_mean(o.view(n, nf, 2, *o.shape[-2:]), present) for o in outputs]

    def forward(self, x: torch.Tensor, present: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_scales(x, present)[-1]

    def arch_args(self) -> dict:
        d = asdict(self.config)
        d["filters"] = list(d["filters"])
        return d


def _remove_mean(dvf: torch.Tensor, present: torch.Tensor | None) -> torch.Tensor:
    """Subtract the mean DVF over present frames (groupwise), zero the absent frames."""
    if present is None:
        return dvf - dvf.mean(dim=1, keepdim=True)
    m = present.to(dvf.dtype).view(present.shape[0], -1, 1, 1, 1)
    mean = (dvf * m).sum(dim=1, keepdim=True) / m.sum(dim=1, keepdim=True).clamp_min(1.0)
    return (dvf - mean) * m


@register_architecture("moconet")
def build_moconet(**arch_args) -> MOCOnet:
    """Registry builder: ``arch_args`` are MOCOnetConfig fields (or ``preset``)."""
    if "preset" in arch_args:
        return MOCOnet(MOCOnetConfig.preset(arch_args["preset"]))
    return MOCOnet(**arch_args)

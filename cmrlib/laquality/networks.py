"""The two networks of left-atrial 3-D LGE quality assessment (seed 001).

**Stage 1, LA detector** (:class:`LADetector`): MONAI's 2-D ``UNet`` segmenting the LA blood
pool on one axial slice ``[N, 1, S, S]`` → logits ``[N, 1, S, S]``; a sigmoid and a threshold t
then say whether the slice contains LA (any pixel above t).

**Stage 2, quality network** (:class:`LAQualityNet`): a ResNet-34 encoder (MONAI ``ResNet``,
basic blocks 3/4/6/3, its own classifier off) on one LA slice ``[N, 1, 128, 128]``; three
attribute classifiers (myocardial nulling, sharpness, enhancement of aorta and valves), each a
dense layer to a latent vector and a logit; the quality-for-fibrosis-assessment (QA) head reads
the three attribute modules' outputs concatenated (latents and logits — the card says "the
output of these 3 attribute classifiers"; the latents are kept so that what the attributes miss,
e.g. noise, can still reach the QA head). Output: 4 logits in :data:`LABELS` order.

Variants (one class, ``variant`` in the architecture arguments):

* ``baseline`` — encoder + attribute and QA heads (BCE over the four labels);
* ``multitask`` — plus a decoder segmenting the LA blood pool from the encoder's feature maps
  (U-Net-style, skips from every ResNet stage; Dice loss added), :meth:`LAQualityNet.forward_with_mask`;
* ``contrastive`` — plus a projection head (dense–ReLU–dense, L2-normalised) for supervised
  contrastive pre-training of the encoder (:meth:`LAQualityNet.project`); the heads are then
  trained on the frozen encoder.

Presets: ``paper`` — ResNet-34 widths 64–512 (21.3 M encoder parameters; the card's ImageNet
weights are not used: no downloads) with 256-wide attribute latents; ``compact`` — the same
depth at widths 16–128 and 32-wide latents, for CPU training. The detector's ``paper`` preset is
MONAI's UNet with channels 32–512 and two residual units per level, ``compact`` 8–128 with one.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from monai.networks.blocks import Convolution
from monai.networks.nets import ResNet, UNet

from ..models.registry import register_architecture

#: the four binary labels in output order: three attributes, then quality for fibrosis assessment
LABELS = ("myocardial_nulling", "sharpness", "aorta_valve_enhancement", "overall_quality")
ATTRIBUTES = LABELS[:3]
VARIANTS = ("baseline", "multitask", "contrastive")


# ---- stage 1 -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LADetectorConfig:
    channels: tuple[int, ...] = (32, 64, 128, 256, 512)
    res_units: int = 2
    size: int = 128
    dropout: float = 0.1

    @classmethod
    def preset(cls, name: str) -> "LADetectorConfig":
        if name == "paper":
            return cls()
        if name == "compact":
            return cls(channels=(8, 16, 32, 64, 128), res_units=1, size=128, dropout=0.1)
        raise ValueError(f"unknown preset {name!r}; expected paper or compact")


class LADetector(nn.Module):
    """LA blood-pool logits of axial slices (MONAI UNet, strides 2).

    A learnt offset starts the logits at the blood pool's prior (about 2 % of a slice's pixels):
    MONAI's UNet ends in an instance-normalised residual unit, and from logits near 0 Adam at the
    card's lr 1e-3 needs thousands of steps to reach the background before the shapes are learnt.
    """

    PRIOR = -4.0  # log-odds of ~2 %

    def __init__(self, config: LADetectorConfig) -> None:
        super().__init__()
        self.config = config
        self.unet = UNet(spatial_dims=2, in_channels=1, out_channels=1, channels=tuple(config.channels),
                         strides=(2,) * (len(config.channels) - 1), num_res_units=config.res_units,
                         dropout=config.dropout)
        self.prior = nn.Parameter(torch.tensor(self.PRIOR))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.unet(x) + self.prior


# ---- stage 2 -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LAQualityNetConfig:
    variant: str = "baseline"
    layers: tuple[int, ...] = (3, 4, 6, 3)  # ResNet-34
    widths: tuple[int, ...] = (64, 128, 256, 512)
    latent: int = 256
    dropout: float = 0.3
    projection: int = 128
    size: int = 128

    @classmethod
    def preset(cls, name: str, variant: str = "baseline") -> "LAQualityNetConfig":
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; expected one of {', '.join(VARIANTS)}")
        if name == "paper":
            return cls(variant=variant)
        if name == "compact":
            return cls(variant=variant, widths=(16, 32, 64, 128), latent=32, projection=64)
        raise ValueError(f"unknown preset {name!r}; expected paper or compact")


class _Decoder(nn.Module):
    """LA blood-pool decoder over the ResNet's stage outputs (deepest first), to input size."""

    def __init__(self, widths: tuple[int, ...]) -> None:
        super().__init__()
        rev = list(reversed(widths))  # e.g. 128, 64, 32, 16
        self.ups = nn.ModuleList()
        for i in range(len(rev) - 1):
            self.ups.append(Convolution(2, rev[i] + rev[i + 1], rev[i + 1], act="RELU", norm="BATCH"))
        self.head = nn.Sequential(Convolution(2, rev[-1], rev[-1], act="RELU", norm="BATCH"),
                                  nn.Conv2d(rev[-1], 1, 1))

    def forward(self, feats: list[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        x = feats[-1]
        for up, skip in zip(self.ups, reversed(feats[:-1])):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = up(torch.cat([x, skip], 1))
        return self.head(F.interpolate(x, size=size, mode="bilinear", align_corners=False))


class LAQualityNet(nn.Module):
    """ResNet-34 encoder → three attribute classifiers → QA head (+ decoder / projection by variant)."""

    def __init__(self, config: LAQualityNetConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = ResNet("basic", list(config.layers), list(config.widths), spatial_dims=2, n_input_channels=1,
                              conv1_t_size=7, conv1_t_stride=2, feed_forward=False)
        f, h = config.widths[-1], config.latent
        self.attributes = nn.ModuleList(
            nn.Sequential(nn.Dropout(config.dropout), nn.Linear(f, h), nn.ReLU(inplace=True)) for _ in ATTRIBUTES)
        self.attribute_logits = nn.ModuleList(nn.Linear(h, 1) for _ in ATTRIBUTES)
        self.qa = nn.Sequential(nn.Linear(len(ATTRIBUTES) * (h + 1), h), nn.ReLU(inplace=True),
                                nn.Dropout(config.dropout), nn.Linear(h, 1))
        if config.variant == "multitask":
            self.decoder = _Decoder(tuple(config.widths))
        if config.variant == "contrastive":
            self.projector = nn.Sequential(nn.Linear(f, f), nn.ReLU(inplace=True), nn.Linear(f, config.projection))

    # the encoder's stages, kept apart so that the decoder and saliency can reach them
    def stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        e = self.encoder
        x = e.act(e.bn1(e.conv1(x)))
        if not e.no_max_pool:
            x = e.maxpool(x)
        out = []
        for layer in (e.layer1, e.layer2, e.layer3, e.layer4):
            x = layer(x)
            out.append(x)
        return out

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled encoder features ``[N, widths[-1]]``."""
        return self.stages(x)[-1].mean((2, 3))

    def heads(self, feat: torch.Tensor) -> torch.Tensor:
        latents = [m(feat) for m in self.attributes]
        logits = [head(z) for head, z in zip(self.attribute_logits, latents)]
        qa = self.qa(torch.cat(latents + logits, 1))
        return torch.cat(logits + [qa], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[N, 4]`` of :data:`LABELS` (probability of *diagnostic*, score ≥ 3)."""
        return self.heads(self.embed(x))

    def forward_with_mask(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(label logits, LA blood-pool logits ``[N, 1, S, S]``) — the multi-task variant."""
        feats = self.stages(x)
        return self.heads(feats[-1].mean((2, 3))), self.decoder(feats, tuple(x.shape[-2:]))

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """L2-normalised projection of the embedding (supervised contrastive pre-training)."""
        return F.normalize(self.projector(self.embed(x)), dim=1)

    def head_parameters(self):
        """What the contrastive variant trains on its frozen encoder: attribute and QA heads."""
        for m in (self.attributes, self.attribute_logits, self.qa):
            yield from m.parameters()


def config_args(config) -> dict:
    d = asdict(config)
    for k, v in d.items():
        if isinstance(v, tuple):
            d[k] = list(v)
    return d


def _tuples(arch_args: dict) -> dict:
    return {k: tuple(int(x) for x in v) if isinstance(v, list) else v for k, v in arch_args.items()}


@register_architecture("la_detector_unet")
def build_la_detector(**arch_args) -> LADetector:
    return LADetector(LADetectorConfig(**_tuples(arch_args)))


@register_architecture("la_quality_resnet34")
def build_la_quality(**arch_args) -> LAQualityNet:
    return LAQualityNet(LAQualityNetConfig(**_tuples(arch_args)))

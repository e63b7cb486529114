"""The LV slice-level classifier of seed 004: a ResNet trained from scratch + a feed-forward head.

Input ``[N, 1, S, S]`` (one short-axis slice after :mod:`cmrlib.quality.preprocess`); output
``[N, 3]`` logits of :data:`CLASSES` (too basal / LV / too apical, SCMR definitions).

The feature extractor is MONAI's ``ResNet`` (2-D, post-activation basic blocks, 7×7 stride-2
stem and max-pool — the layers of He et al. 2016), its own classifier switched off
(``feed_forward=False``); the card's feed-forward network follows: dropout, dense (``hidden``,
ReLU, He-normal init), dropout, dense 3.

Presets (:meth:`SliceLevelNetConfig.preset`): ``paper`` is ResNet-34 (basic blocks 3/4/6/3,
widths 64–512) with a 1024-wide head at 224 px: 21.8 M parameters against the card's
22,199,747 (the card does not give the depth or the head; ResNet-34 is the standard ResNet
nearest that count); ``compact`` is basic blocks 1/1/1/1 at widths 16–128 with a 64-wide head at
112 px.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
from monai.networks.nets import ResNet

from ..models.registry import register_architecture

#: published trainable parameters of the slice-level classifier (seed 004, Table 1)
PUBLISHED_PARAMETERS = 22_199_747
CLASSES = ("too basal", "LV", "too apical")


@dataclass(frozen=True)
class SliceLevelNetConfig:
    layers: tuple[int, ...] = (3, 4, 6, 3)
    widths: tuple[int, ...] = (64, 128, 256, 512)
    hidden: int = 1024
    dropout: float = 0.3
    size: int = 224
    crop_size: int = 256

    @classmethod
    def preset(cls, name: str) -> "SliceLevelNetConfig":
        if name == "paper":
            return cls()
        if name == "compact":
            return cls(layers=(1, 1, 1, 1), widths=(16, 32, 64, 128), hidden=64, dropout=0.3, size=112, crop_size=128)
        raise ValueError(f"unknown preset {name!r}; expected paper or compact")


class SliceLevelNet(nn.Module):
    def __init__(self, config: SliceLevelNetConfig, in_channels: int = 1) -> None:
        super().__init__()
        self.config = config
        self.features = ResNet("basic", list(config.layers), list(config.widths), spatial_dims=2,
                               n_input_channels=in_channels, conv1_t_size=7, conv1_t_stride=2, feed_forward=False)
        self.classifier = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(config.widths[-1], config.hidden),
                                        nn.ReLU(inplace=True), nn.Dropout(config.dropout),
                                        nn.Linear(config.hidden, len(CLASSES)))
        for m in self.classifier:
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def config_args(config: SliceLevelNetConfig) -> dict:
    d = asdict(config)
    d["layers"], d["widths"] = list(config.layers), list(config.widths)
    return d


@register_architecture("slice_level_resnet")
def build_slice_level_net(**arch_args) -> SliceLevelNet:
    args = dict(arch_args)
    for k in ("layers", "widths"):
        if k in args:
            args[k] = tuple(int(v) for v in args[k])
    return SliceLevelNet(SliceLevelNetConfig(**args))

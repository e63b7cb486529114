"""The landmark regressor of thesis ch. 5 / appendix A.4: 3-filter stem + ResNet50V2 + dense head.

Input ``[N, 1, S, S]`` (one standardised grey image); output ``[N, 4]`` in 0–1: (x, y) of the
anterior RV insertion point and of the LV centre, each divided by the input size, in
(column, row) order of the network's input grid (:mod:`cmrlib.landmarks.geometry`).

Layers, as the card (docs/methods/landmarks.md) and Keras' ``ResNet50V2``:

* a 3×3 convolution with 3 filters (grey → 3 channels, where the paper's ImageNet backbone
  expects RGB);
* the ResNet50V2 stem: 7×7 convolution stride 2, 3×3 max-pool stride 2;
* four stacks of **pre-activation** bottlenecks (He et al. 2016, "identity mappings"):
  BN → ReLU → 1×1 (f) → BN → ReLU → 3×3 (f, stride) → BN → ReLU → 1×1 (4f), added to the
  shortcut (a 1×1 projection of the pre-activated input in a stack's first block, else the
  input, max-pooled 1×1 with the stride where the block strides). Blocks (3, 4, 6, 3),
  widths 64/128/256/512 (×4 out); as in Keras the stride 2 is in the *last* block of the
  first three stacks;
* the final BN → ReLU, global average pool, dense 1000 + ReLU, dropout 0.35, dense 4 + sigmoid.

MONAI: its ``ResNetBottleneck`` is post-activation (conv → BN → ReLU, add, ReLU), which is
not the V2 block, so the bottleneck is written here; MONAI's ``ADN`` block ("NA": norm then
activation) is exactly V2's pre-activation and its ``Convolution`` the plain convolutions.
No ImageNet initialisation (no downloads at run time; torchvision/timm are not in the stack):
both presets are trained from scratch.

Presets (:meth:`LandmarkNetConfig.preset`): ``paper`` as above (384×384 stage 1 at 1 mm,
128×128 stage 2 at 1 mm); ``compact``, the same topology with widths 8/16/32/64, blocks
(2, 2, 2, 2) and a 256-wide dense layer, stage 1 on 96×96 at 3 mm and stage 2 on 64×64 at
1.5 mm (the paper's 384 mm and 128 mm fields of view scaled to CPU size).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
from monai.networks.blocks import ADN, Convolution

from ..models.registry import register_architecture


@dataclass(frozen=True)
class LandmarkNetConfig:
    """Network and input-grid settings (the grids travel in the manifest's ``arch_args``)."""

    widths: tuple[int, ...] = (64, 128, 256, 512)  # bottleneck widths; outputs 4× these
    blocks: tuple[int, ...] = (3, 4, 6, 3)
    stem: int = 64  # filters of the 7×7 stem convolution
    dense: int = 1000
    dropout: float = 0.35
    stage1_size: int = 384  # px
    stage1_pixel_mm: float = 1.0
    stage2_size: int = 128  # px
    stage2_pixel_mm: float = 1.0
    outputs: int = 4  # sigmoid outputs: the 4 point coordinates; 1 for the LV-presence gate

    @classmethod
    def preset(cls, name: str) -> "LandmarkNetConfig":
        if name == "paper":
            return cls()
        if name == "compact":
            return cls(widths=(8, 16, 32, 64), blocks=(2, 2, 2, 2), stem=16, dense=256, dropout=0.35,
                       stage1_size=96, stage1_pixel_mm=3.0, stage2_size=64, stage2_pixel_mm=1.5)
        raise ValueError(f"unknown landmark preset {name!r}; expected paper or compact")

    def to_args(self) -> dict:
        d = asdict(self)
        d["widths"], d["blocks"] = list(self.widths), list(self.blocks)
        return d


def _conv(cin: int, cout: int, k: int, stride: int = 1, bias: bool = False) -> nn.Module:
    return Convolution(2, cin, cout, strides=stride, kernel_size=k, conv_only=True, bias=bias, padding=k // 2)


def _preact(channels: int) -> nn.Module:
    return ADN(ordering="NA", in_channels=channels, act="RELU", norm="BATCH", norm_dim=2)


class PreActBottleneck(nn.Module):
    """ResNet V2 bottleneck (Keras ``block2``): see the module docstring."""

    def __init__(self, cin: int, width: int, stride: int = 1, project: bool = False) -> None:
        super().__init__()
        cout = 4 * width
        self.preact = _preact(cin)
        self.project = _conv(cin, cout, 1, stride, bias=True) if project else None
        self.pool = nn.MaxPool2d(1, stride) if (stride > 1 and not project) else None
        self.conv1 = _conv(cin, width, 1)
        self.act1 = _preact(width)
        self.conv2 = _conv(width, width, 3, stride)
        self.act2 = _preact(width)
        self.conv3 = _conv(width, cout, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.preact(x)
        if self.project is not None:
            shortcut = self.project(pre)
        else:
            shortcut = self.pool(x) if self.pool is not None else x
        y = self.conv3(self.act2(self.conv2(self.act1(self.conv1(pre)))))
        return shortcut + y


class LandmarkNet(nn.Module):
    """Stem + ResNetV2 + head (module docstring); ``forward`` gives ``[N, outputs]`` in 0–1 (4 point
    coordinates; the LV-presence gate of :mod:`cmrlib.landmarks.presence` has one output)."""

    def __init__(self, config: LandmarkNetConfig) -> None:
        super().__init__()
        self.config = config
        self.grey_to_rgb = _conv(1, 3, 3, bias=True)
        self.stem = nn.Sequential(_conv(3, config.stem, 7, 2, bias=True), nn.MaxPool2d(3, 2, padding=1))
        layers: list[nn.Module] = []
        cin = config.stem
        n_stacks = len(config.widths)
        for s, (width, n) in enumerate(zip(config.widths, config.blocks)):
            for b in range(n):
                last = b == n - 1
                stride = 2 if (last and s < n_stacks - 1) else 1  # Keras V2: stride in the last block
                layers.append(PreActBottleneck(cin, width, stride, project=(b == 0)))
                cin = 4 * width
        self.stacks = nn.Sequential(*layers)
        self.post = _preact(cin)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(cin, config.dense), nn.ReLU(inplace=True),
                                  nn.Dropout(config.dropout), nn.Linear(config.dense, config.outputs), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.post(self.stacks(self.stem(self.grey_to_rgb(x))))
        return self.head(torch.mean(x, dim=(-2, -1), keepdim=True))

    def arch_args(self) -> dict:
        return self.config.to_args()


@register_architecture("landmark-resnetv2")
def landmark_net(**arch_args) -> LandmarkNet:
    """Build from the manifest's ``arch_args`` (a :class:`LandmarkNetConfig` as a dict)."""
    args = dict(arch_args)
    for key in ("widths", "blocks"):
        if key in args:
            args[key] = tuple(args[key])
    return LandmarkNet(LandmarkNetConfig(**args))


class TwoStageLandmarkNet(nn.Module):
    """The two regressors of the card in one module (one weights file): ``stage1`` on the
    whole (resampled) image, ``stage2`` on the crop standardised by stage 1's points."""

    def __init__(self, config: LandmarkNetConfig) -> None:
        super().__init__()
        self.config = config
        self.stage1 = LandmarkNet(config)
        self.stage2 = LandmarkNet(config)

    def forward(self, x: torch.Tensor, stage: int = 1) -> torch.Tensor:
        return (self.stage1 if stage == 1 else self.stage2)(x)

    def arch_args(self) -> dict:
        return self.config.to_args()


@register_architecture("landmark-two-stage")
def two_stage_landmark_net(**arch_args) -> TwoStageLandmarkNet:
    """Both stages (``arch_args`` as for ``landmark-resnetv2``)."""
    return TwoStageLandmarkNet(landmark_net(**arch_args).config)

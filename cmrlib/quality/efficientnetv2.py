"""The LGE-certainty classifier of seed 000: an EfficientNetV2 feature extractor + a feed-forward head.

Input ``[N, 1, S, S]`` (one PSIR / magnitude LGE slice after :mod:`cmrlib.quality.preprocess`);
output ``[N, 2]`` logits of (high certainty, low certainty).

Layers, as Tan & Le (ICML 2021), EfficientNetV2-S (their Table 4):

* stem: 3×3 convolution stride 2 (24 filters) + BN + SiLU;
* stages of **Fused-MBConv** (a 3×3 expansion convolution + BN + SiLU, then a 1×1 projection
  + BN; no expansion: the 3×3 convolution alone) and **MBConv** (1×1 expansion, 3×3 depth-wise
  convolution, squeeze-and-excitation with ratio 0.25 of the block's input, 1×1 projection),
  with a residual connection (and stochastic depth in training) where stride 1 and widths match:

  ====== ============ ======= ====== ======== =======
  stage  block        expand  stride channels layers
  ====== ============ ======= ====== ======== =======
  1      Fused-MBConv 1       1      24       2
  2      Fused-MBConv 4       2      48       4
  3      Fused-MBConv 4       2      64       4
  4      MBConv + SE  4       2      128      6
  5      MBConv + SE  6       1      160      9
  6      MBConv + SE  6       2      256      15
  ====== ============ ======= ====== ======== =======

* head: 1×1 convolution to 1280 + BN + SiLU, global average pool;
* the card's feed-forward network in place of the ImageNet classifier: dropout, dense
  (``hidden``, ReLU, He-normal init), dropout, dense 2.

MONAI has EfficientNet (v1, ``EfficientNetBN``) but not V2's Fused-MBConv stages, so the blocks
are written here from MONAI's ``Convolution`` (conv + norm + act) and ``ChannelSELayer``
(squeeze-and-excitation). There are no ImageNet weights here (no downloads at run time;
torchvision/timm are not in the stack): both presets are trained from scratch.

Presets (:meth:`CertaintyNetConfig.preset`): ``paper`` is EfficientNetV2-S at 224 px with a
1024-wide head (20.2 M + 1.3 M parameters; the card's 23,590,049 includes a head it does not
describe); ``compact`` keeps the six stage types with widths 16/24/32/48/64/96, 1–3 layers per
stage, a 384-wide 1×1 head and a 128-wide dense layer at 112 px (CPU size).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
from monai.networks.blocks import ChannelSELayer, Convolution

from ..models.registry import register_architecture

#: published trainable parameters of the certainty classifier (seed 000, Table 1)
PUBLISHED_PARAMETERS = 23_590_049
CLASSES = ("high certainty", "low certainty")

# (block, expand, stride, channels, layers) of EfficientNetV2-S
_V2S = (("fused", 1, 1, 24, 2), ("fused", 4, 2, 48, 4), ("fused", 4, 2, 64, 4),
        ("mb", 4, 2, 128, 6), ("mb", 6, 1, 160, 9), ("mb", 6, 2, 256, 15))


@dataclass(frozen=True)
class CertaintyNetConfig:
    """Network and input settings (travel in the manifest's ``arch_args``)."""

    stages: tuple[tuple, ...] = _V2S
    stem: int = 24
    head: int = 1280
    hidden: int = 1024  # dense layer of the feed-forward head
    dropout: float = 0.3
    drop_path: float = 0.2  # stochastic depth of the last block (linearly from 0)
    size: int = 224  # network input, px (the card: 256 centre crop, 224 random crops / resize)
    crop_size: int = 256  # the centre crop the random crops are taken from
    likelihood_head: bool = False  # a training-only regression of the raters' LGE likelihood (0–1)

    @classmethod
    def preset(cls, name: str) -> "CertaintyNetConfig":
        if name == "paper":
            return cls()
        if name == "compact":
            return cls(stages=(("fused", 1, 1, 16, 1), ("fused", 4, 2, 24, 2), ("fused", 4, 2, 32, 2),
                               ("mb", 4, 2, 48, 2), ("mb", 6, 1, 64, 2), ("mb", 6, 2, 96, 3)),
                       stem=16, head=384, hidden=128, dropout=0.3, drop_path=0.1, size=112, crop_size=128)
        raise ValueError(f"unknown preset {name!r}; expected paper or compact")


def _conv(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, act: bool = True) -> Convolution:
    return Convolution(2, cin, cout, strides=stride, kernel_size=k, groups=groups, bias=False, norm="batch",
                       act="swish" if act else None, adn_ordering="NA")


class _DropPath(nn.Module):
    """Stochastic depth: drop the residual branch of a whole sample with probability p (training only)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.rand(x.shape[0], 1, 1, 1, device=x.device) >= self.p
        return x * keep / (1.0 - self.p)


class FusedMBConv(nn.Module):
    def __init__(self, cin: int, cout: int, expand: int, stride: int, drop: float) -> None:
        super().__init__()
        mid = cin * expand
        if expand == 1:
            self.body = _conv(cin, cout, 3, stride)
        else:
            self.body = nn.Sequential(_conv(cin, mid, 3, stride), _conv(mid, cout, 1, act=False))
        self.residual = stride == 1 and cin == cout
        self.drop = _DropPath(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + self.drop(y) if self.residual else y


class MBConv(nn.Module):
    def __init__(self, cin: int, cout: int, expand: int, stride: int, drop: float) -> None:
        super().__init__()
        mid = cin * expand
        # SE squeezes to 0.25 of the block's *input* width (as EfficientNetV2), SiLU then sigmoid
        self.body = nn.Sequential(
            _conv(cin, mid, 1), _conv(mid, mid, 3, stride, groups=mid),
            ChannelSELayer(2, mid, r=max(mid / max(cin // 4, 1), 1.0), acti_type_1="swish", acti_type_2="sigmoid"),
            _conv(mid, cout, 1, act=False))
        self.residual = stride == 1 and cin == cout
        self.drop = _DropPath(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + self.drop(y) if self.residual else y


class CertaintyNet(nn.Module):
    """EfficientNetV2 features + the feed-forward head; logits of :data:`CLASSES`."""

    def __init__(self, config: CertaintyNetConfig, in_channels: int = 1) -> None:
        super().__init__()
        self.config = config
        blocks: list[nn.Module] = [_conv(in_channels, config.stem, 3, 2)]
        total = sum(s[4] for s in config.stages)
        cin, i = config.stem, 0
        for kind, expand, stride, cout, layers in config.stages:
            block = FusedMBConv if kind == "fused" else MBConv
            for j in range(layers):
                blocks.append(block(cin, cout, expand, stride if j == 0 else 1, config.drop_path * i / max(total, 1)))
                cin, i = cout, i + 1
        blocks.append(_conv(cin, config.head, 1))
        self.features = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(config.dropout), nn.Linear(config.head, config.hidden),
                                        nn.ReLU(inplace=True), nn.Dropout(config.dropout),
                                        nn.Linear(config.hidden, len(CLASSES)))
        # optional second output of the last hidden layer: the raters' mean score (0–1), a richer
        # training signal than the binary class (it tells clear absence from clear presence);
        # inference reads the class logits only
        self.likelihood = nn.Linear(config.hidden, 1) if config.likelihood_head else None
        for m in [*self.classifier, self.likelihood]:
            if isinstance(m, nn.Linear):  # the card: He-normal initialisation of the feed-forward network
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)))

    def forward_with_likelihood(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(class logits, predicted rater-mean likelihood 0–1) — training with ``likelihood_head``."""
        hidden = self.classifier[:-2](self.pool(self.features(x)))
        return self.classifier[-2:](hidden), torch.sigmoid(self.likelihood(hidden))[:, 0]


def config_args(config: CertaintyNetConfig) -> dict:
    d = asdict(config)
    d["stages"] = [list(s) for s in config.stages]
    return d


@register_architecture("lge_certainty_efficientnetv2")
def build_certainty_net(**arch_args) -> CertaintyNet:
    """``arch_args``: the fields of :class:`CertaintyNetConfig` (tuples as lists in JSON)."""
    args = dict(arch_args)
    if "stages" in args:
        args["stages"] = tuple(tuple(s) for s in args["stages"])
    return CertaintyNet(CertaintyNetConfig(**args))

"""The QCD ensemble of thesis ch. 4 / appendix A.3: six 2-D U-Nets of depth 1–6.

Input ``[N, 1, S, S]`` (one image normalised 0–1, zero-padded); output ``[N, 3, S, S]``
logits of background, myocardium and blood pool (softmax at inference).

Layers of a U-Net of depth ``d`` (the card, docs/methods/qcd.md):

* encoder levels ``i = 1..d``: 3×3 convolution with ``f_i`` filters + ReLU, dropout
  ``0.2·(1 + 0.25·(i−1))``, 3×3 convolution + ReLU; 2×2 max-pool between levels (none after
  the deepest, the bottleneck);
* decoder levels ``i = d−1..1``: 2×2 transposed convolution (stride 2) to ``f_i`` filters,
  concatenation with the encoder's level ``i``, the same two convolutions and dropout;
* a 1×1 convolution to 3 classes.

``f_i = base · 2^(i−1)``: ``paper`` 2^(4+i) (32 … 1024 filters, 256×256 input), ``compact``
8 … 256 capped at 128 filters, read in two passes (:class:`QCDConfig`): a 128×128 overview of
2 mm pixels (256 mm) where the deepest U-Net finds the heart, then a 96×96 crop of 1.5 mm
pixels (144 mm) centred on it where the six U-Nets and the QC run. The
crop gives the thin myocardium 1.33× the pixels at 56 % of the computation. The
compact preset adds batch normalisation after each 3×3 convolution (``norm="batch"``): without
it, the plain U-Nets learned no myocardium at all in 300 batches of domain-randomised images
(measured here: validation Dice 0.00 for all six after one 12-minute epoch), and a CPU budget
has no room for the appendix's 300 epochs. The ``paper`` preset keeps the appendix's layers. MONAI's
``Convolution`` (conv + activation) and ``UpSample(mode="deconv")`` are exactly these layers;
MONAI's own ``UNet`` (strided convolutions, residual units) and ``BasicUNet`` (fixed depth 4,
batch norm) are not, so the U-Net is assembled from the blocks in :mod:`cmrlib.models.unet2d`
(shared with the scar U-Nets).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn

from ..models.registry import register_architecture
from ..models.unet2d import UNet2D

N_CLASSES = 3  # 0 background, 1 myocardium, 2 blood pool (the data contract's label table)


@dataclass(frozen=True)
class QCDConfig:
    """Ensemble settings; travels in the manifest's ``arch_args``."""

    depths: tuple[int, ...] = (1, 2, 3, 4, 5, 6)
    base_filters: int = 32  # f_1 (paper: 2^(4+1))
    max_filters: int = 1024
    size: int = 256  # input grid, px
    pixel_mm: float = 1.4  # input pixel size the images are resampled to (mm); the card zero-pads 256 px
    dropout: float = 0.2
    norm: str | None = None  # None (the appendix) or "batch": batch norm after each 3×3 convolution
    #: two-pass inference (``compact``): the deepest U-Net first finds the heart on an overview
    #: grid (``overview_size`` px of ``overview_pixel_mm``, centred on the image); the ensemble then
    #: reads a ``size`` px crop of ``pixel_mm`` centred on it. None: one pass on the centred grid.
    overview_size: int | None = None
    overview_pixel_mm: float | None = None

    @classmethod
    def preset(cls, name: str) -> "QCDConfig":
        if name == "paper":
            return cls()
        if name == "compact":
            return cls(base_filters=8, max_filters=128, size=96, pixel_mm=1.5, norm="batch",
                       overview_size=128, overview_pixel_mm=2.0)
        raise ValueError(f"unknown preset {name!r}; expected paper or compact")

    @property
    def two_pass(self) -> bool:
        return bool(self.overview_size and self.overview_pixel_mm)

    def same_layers(self, other: "QCDConfig") -> bool:
        """True when ``other`` has the same networks (weights interchangeable; grids may differ)."""
        keys = ("depths", "base_filters", "max_filters", "dropout", "norm")
        return all(getattr(self, k) == getattr(other, k) for k in keys)

    def filters(self, level: int) -> int:
        return int(min(self.base_filters * 2 ** (level - 1), self.max_filters))

    def level_dropout(self, level: int) -> float:
        return float(self.dropout * (1.0 + 0.25 * (level - 1)))


class QCDUNet(UNet2D):
    """One U-Net of depth ``depth`` (1 = no pooling): :class:`cmrlib.models.unet2d.UNet2D` with
    the appendix's filters and per-level dropout."""

    def __init__(self, depth: int, config: QCDConfig, in_channels: int = 1) -> None:
        if depth < 1:
            raise ValueError("depth must be ≥ 1")
        levels = range(1, depth + 1)
        super().__init__([config.filters(i) for i in levels], [config.level_dropout(i) for i in levels],
                         in_channels=in_channels, n_classes=N_CLASSES, norm=config.norm)


class QCDEnsemble(nn.Module):
    """The M U-Nets of one model file; ``forward`` gives logits ``[M, N, 3, S, S]``."""

    def __init__(self, config: QCDConfig) -> None:
        super().__init__()
        self.config = config
        self.nets = nn.ModuleList([QCDUNet(d, config) for d in config.depths])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([net(x) for net in self.nets])


@register_architecture("qcd_ensemble")
def build_qcd_ensemble(**arch_args) -> QCDEnsemble:
    """``arch_args``: the fields of :class:`QCDConfig` (tuples as lists in JSON)."""
    args = dict(arch_args)
    if "depths" in args:
        args["depths"] = tuple(int(d) for d in args["depths"])
    return QCDEnsemble(QCDConfig(**args))


def config_args(config: QCDConfig) -> dict:
    """:class:`QCDConfig` as manifest ``arch_args`` (JSON-friendly)."""
    d = asdict(config)
    d["depths"] = list(d["depths"])
    return d

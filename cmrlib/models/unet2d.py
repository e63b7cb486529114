"""The one plain 2-D U-Net of cmrlib: the layers shared by QCD's ensemble and the scar U-Nets.

Encoder level ``i``: 3×3 convolution + (batch norm) + ReLU, dropout, 3×3 convolution + (batch
norm) + ReLU; 2×2 max-pooling between levels (none after the deepest). Decoder level ``i``:
2×2 transposed convolution (stride 2) to level ``i``'s filters, concatenation with the encoder's
level ``i`` (the long skip), the same two convolutions; a 1×1 convolution to the classes.
Built from MONAI's ``Convolution`` and ``UpSample(mode="deconv")``, which are exactly these
layers; MONAI's ``UNet`` (strided convolutions, residual units) and ``BasicUNet`` (fixed depth,
no dropout per level) are not.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
from monai.networks.blocks import Convolution, UpSample


class DoubleConv(nn.Sequential):
    """3×3 conv (+norm) + ReLU, dropout, 3×3 conv (+norm) + ReLU."""

    def __init__(self, cin: int, cout: int, dropout: float, norm: str | None = None) -> None:
        order = "NA" if norm else "A"
        super().__init__(
            Convolution(2, cin, cout, kernel_size=3, act="relu", norm=norm, adn_ordering=order),
            nn.Dropout(dropout),
            Convolution(2, cout, cout, kernel_size=3, act="relu", norm=norm, adn_ordering=order),
        )


class UNet2D(nn.Module):
    """A U-Net with ``len(filters)`` levels (1 = no pooling); ``dropouts`` one per level.

    Input ``[N, in_channels, S, S]`` (S divisible by 2^(levels−1)); output logits
    ``[N, n_classes, S, S]``.
    """

    def __init__(self, filters: Sequence[int], dropouts: Sequence[float], *, in_channels: int = 1,
                 n_classes: int = 2, norm: str | None = None) -> None:
        super().__init__()
        if len(filters) < 1 or len(dropouts) != len(filters):
            raise ValueError("a U-Net needs ≥ 1 level and one dropout per level")
        self.depth = len(filters)
        self.down = nn.ModuleList()
        cin = in_channels
        for f, p in zip(filters, dropouts):
            self.down.append(DoubleConv(cin, int(f), float(p), norm))
            cin = int(f)
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList()
        self.merge = nn.ModuleList()
        for level in range(self.depth - 2, -1, -1):
            f = int(filters[level])
            self.up.append(UpSample(2, cin, f, scale_factor=2, kernel_size=2, mode="deconv"))
            self.merge.append(DoubleConv(2 * f, f, float(dropouts[level]), norm))
            cin = f
        self.head = Convolution(2, cin, n_classes, kernel_size=1, conv_only=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for level, block in enumerate(self.down):
            x = block(x)
            if level < self.depth - 1:
                skips.append(x)
                x = self.pool(x)
        for up, merge in zip(self.up, self.merge):
            x = merge(torch.cat([up(x), skips.pop()], dim=1))
        return self.head(x)


def n_parameters(net: nn.Module, trainable_only: bool = True) -> int:
    """Parameters of ``net``: the trainable ones, or all (``trainable_only=False``: a frozen
    encoder counts too)."""
    return int(sum(p.numel() for p in net.parameters() if p.requires_grad or not trainable_only))

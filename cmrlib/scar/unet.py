"""The scar U-Nets of seed 003 (docs/methods/scar-fusion.md): LGE–cine fusion and LGE only.

Both are the plain 2-D U-Net of :mod:`cmrlib.models.unet2d` with four resolution levels
(3×3 convolutions, batch normalisation, ReLU, dropout 0.25, 2×2 max-pooling, long skips) and a
4-class softmax (:data:`CLASSES`: background, normal myocardium, blood pool, scar; blood is
merged into the background afterwards). Input ``[N, C, S, S]``: the LGE (C = 1), or the LGE and
the matched, LV-centre-aligned cine frame (C = 2), each normalised 0–1 on ``pixel_mm`` pixels.

Presets (:meth:`ScarUNetConfig.preset`):

* ``fusion-paper`` — 2 channels, 32/64/128/128 filters, 160 px of 1.2 mm (published 0.58 M parameters);
* ``lge-paper`` — 1 channel, 48/96/196/196 filters (published 1.3 M);
* ``fusion-compact`` / ``lge-compact`` — the same layers at half the filters on 128 px of 1.5 mm
  (the same 192 mm field of view): what a CPU trains in minutes. The filter ratio between
  the two (LGE-only 1.5× wider) is kept.

Our parameter counts (fusion-paper 1.27 M, lge-paper 2.95 M) are about twice the published
ones (:data:`PUBLISHED_PARAMETERS_M`); the paper does not give the layer list that makes its
counts (number of convolutions per level, up-sampling layer), so the layers here are the
card's: two 3×3 convolutions per level and transposed-convolution up-sampling. The ratio
LGE-only / fusion (2.3 here, 2.2 published) matches.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from ..models.registry import register_architecture
from ..models.unet2d import UNet2D

#: network classes (softmax order)
CLASSES = ("background", "myocardium", "blood", "scar")
BACKGROUND, MYOCARDIUM, BLOOD, SCAR = range(4)
#: published parameter counts (seed 003), millions
PUBLISHED_PARAMETERS_M = {"fusion": 0.58, "lge": 1.3}


@dataclass(frozen=True)
class ScarUNetConfig:
    """One scar U-Net; travels in the manifest's ``arch_args``."""

    inputs: str = "fusion"  # fusion (LGE + cine) | lge (LGE only)
    filters: tuple[int, ...] = (32, 64, 128, 128)
    size: int = 160  # input grid, px
    pixel_mm: float = 1.2
    dropout: float = 0.25

    @property
    def in_channels(self) -> int:
        return 2 if self.inputs == "fusion" else 1

    @classmethod
    def preset(cls, name: str) -> "ScarUNetConfig":
        presets = {
            "fusion-paper": cls(),
            "lge-paper": cls(inputs="lge", filters=(48, 96, 196, 196)),
            "fusion-compact": cls(filters=(16, 32, 64, 64), size=128, pixel_mm=1.5),
            "lge-compact": cls(inputs="lge", filters=(24, 48, 96, 96), size=128, pixel_mm=1.5),
        }
        if name not in presets:
            raise ValueError(f"unknown preset {name!r}; expected one of {', '.join(presets)}")
        return presets[name]


def build(config: ScarUNetConfig) -> UNet2D:
    if config.inputs not in ("fusion", "lge"):
        raise ValueError(f"inputs must be fusion or lge; got {config.inputs!r}")
    net = UNet2D(config.filters, [config.dropout] * len(config.filters), in_channels=config.in_channels,
                 n_classes=len(CLASSES), norm="batch")
    net.config = config  # the grid and inputs travel with the network (inference reads them)
    return net


@register_architecture("scar_unet")
def build_scar_unet(**arch_args) -> UNet2D:
    """``arch_args``: the fields of :class:`ScarUNetConfig` (tuples as lists in JSON)."""
    args = dict(arch_args)
    if "filters" in args:
        args["filters"] = tuple(int(f) for f in args["filters"])
    return build(ScarUNetConfig(**args))


def config_args(config: ScarUNetConfig) -> dict:
    d = asdict(config)
    d["filters"] = list(d["filters"])
    return d

"""The scar methods by name (no torch: the CLI's parser and the panel read these)."""
from __future__ import annotations

from .classical import CLASSICAL_METHODS

NETWORK_METHODS = ("fusion", "lge-only")
METHODS = NETWORK_METHODS + tuple(CLASSICAL_METHODS)
MODEL_NAMES = {"fusion": "scar-fusion-compact", "lge-only": "scar-lge-compact"}
METHOD_TITLES = {"fusion": "fusion U-Net (LGE + cine)", "lge-only": "LGE-only U-Net", "nsd2": "2 SD above remote",
                 "nsd3": "3 SD above remote", "nsd5": "5 SD above remote", "fwhm": "FWHM"}

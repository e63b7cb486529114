"""Metadata dicts <-> MRML node attributes.

Each ``meta`` entry becomes the node attribute ``CMR.<key>`` holding the JSON encoding of
the value, so numbers, strings, lists and nested dicts come back with their JSON types
(tuples come back as lists). Node attributes are saved in the ``.mrml`` scene file, so
metadata survives :func:`cmrlib.mrml.save_scene` / :func:`cmrlib.mrml.load_scene`.
"""
from __future__ import annotations

import json
import math
from pathlib import PurePath
from typing import Any

import numpy as np

from ..errors import InputError

PREFIX = "CMR."


def _json_default(value: Any) -> Any:
    # numpy scalars and arrays are common in meta (e.g. a pixel-spacing array from pydicom
    # conversion); paths are written as text. Anything else is refused rather than written
    # as an unreadable repr.
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, PurePath):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def encode(value: Any, key: str = "") -> str:
    """JSON text of one metadata value (NaN and infinities allowed, as Python's json writes them)."""
    try:
        return json.dumps(value, default=_json_default, allow_nan=True)
    except (TypeError, ValueError) as exc:
        raise InputError(f"metadata '{key}' cannot be stored on an MRML node: {exc}") from exc


def decode(text: str | None) -> Any:
    """Inverse of :func:`encode`; text that is not JSON (e.g. typed by a user in Slicer) is kept as is."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def encode_meta(meta: dict[str, Any], prefix: str = PREFIX) -> dict[str, str]:
    """``{prefix + key: JSON text}`` for ``meta``; raises InputError before anything is changed."""
    if not isinstance(meta, dict):
        raise InputError(f"metadata must be a dict; got {type(meta).__name__}")
    out: dict[str, str] = {}
    for key, value in meta.items():
        if not isinstance(key, str) or not key:
            raise InputError(f"metadata keys must be non-empty strings; got {key!r}")
        if ":" in key or ";" in key:
            # The .mrml file writes attributes as "name:value;name:value" and escapes the
            # values only, so such a key would come back split into another key.
            raise InputError(f"metadata key {key!r} contains ':' or ';', which MRML attribute names cannot hold")
        out[prefix + key] = encode(value, key)
    return out


def set_meta(node, meta: dict[str, Any] | dict[str, str], prefix: str = PREFIX,  # noqa: ANN001 - vtkMRMLNode
             encoded: bool = False) -> None:
    """Replace all ``prefix``-attributes of ``node`` with ``meta`` (stale keys are removed).

    ``encoded=True`` takes the output of :func:`encode_meta` (validated beforehand).
    """
    attributes = meta if encoded else encode_meta(meta, prefix)
    for name in list(node.GetAttributeNames() or ()):
        if name.startswith(prefix):
            node.RemoveAttribute(name)
    for name, text in attributes.items():
        node.SetAttribute(name, text)


def get_meta(node, prefix: str = PREFIX) -> dict[str, Any]:  # noqa: ANN001 - vtkMRMLNode
    """The ``prefix``-attributes of ``node`` as a dict (keys without the prefix)."""
    out: dict[str, Any] = {}
    for name in sorted(node.GetAttributeNames() or ()):
        if name.startswith(prefix):
            out[name[len(prefix):]] = decode(node.GetAttribute(name))
    return out


def is_number(value: Any) -> bool:
    """True for real numbers (bool excluded), including numpy scalars."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def finite_number(value: Any) -> bool:
    """True for a real, finite number."""
    return is_number(value) and math.isfinite(float(value))

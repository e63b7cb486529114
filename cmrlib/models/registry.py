"""Architecture registry: networks are built by name from the manifest, never unpickled.

Modules that define networks decorate their builder with ``@register_architecture("name")``.
The model zoo imports the modules named in the capability records lazily so that listing models needs no
torch network code, and loading a model needs only its own module.
"""
from __future__ import annotations

import importlib
from typing import Any, Callable

from ..errors import ModelError

_BUILDERS: dict[str, Callable[..., Any]] = {}


def register_architecture(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register ``builder(**arch_args) -> torch.nn.Module`` under ``name``."""
    def deco(builder: Callable[..., Any]) -> Callable[..., Any]:
        if name in _BUILDERS and _BUILDERS[name] is not builder:
            raise ModelError(f"architecture {name!r} is registered twice")
        _BUILDERS[name] = builder
        return builder
    return deco


def _import_all() -> None:
    from ..capabilities import architecture_modules  # each capability's record names its network modules
    for module in architecture_modules():
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


def architectures() -> list[str]:
    """Names of all registered architectures."""
    _import_all()
    return sorted(_BUILDERS)


def build_architecture(name: str, **arch_args: Any) -> Any:
    """Instantiate the registered architecture ``name`` with ``arch_args``."""
    if name not in _BUILDERS:
        _import_all()
    if name not in _BUILDERS:
        raise ModelError(f"unknown architecture {name!r}; registered: {', '.join(sorted(_BUILDERS)) or 'none'}")
    try:
        return _BUILDERS[name](**arch_args)
    except TypeError as exc:
        raise ModelError(f"architecture {name!r} does not accept arguments {arch_args}: {exc}") from exc

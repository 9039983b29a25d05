"""A name -> constructor registry, so the CLI and tests can enumerate every model."""

from __future__ import annotations

import difflib
from collections.abc import Callable

import torch.nn as nn

from edgegan.errors import EdgeGANError

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    def decorator(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is registered twice")
        _MODELS[name] = fn
        return fn

    return decorator


def list_models() -> list[str]:
    return sorted(_MODELS)


def create_model(name: str, **kwargs) -> nn.Module:
    """Build a registered model by name, e.g. ``create_model("ugatit-light", ngf=32, img_size=128)``."""
    if name not in _MODELS:
        close = difflib.get_close_matches(name, _MODELS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise EdgeGANError(f"unknown model {name!r}{hint}; available: {', '.join(list_models())}")
    return _MODELS[name](**kwargs)

"""Model registry: `genzoo list`, the CLI and the contract tests all iterate over it."""

from __future__ import annotations

from genzoo.errors import unknown_name
from genzoo.models.base import GenerativeModel

_MODELS: dict[str, type[GenerativeModel]] = {}


def register_model(cls: type[GenerativeModel]) -> type[GenerativeModel]:
    """Class decorator: register under `cls.name`."""
    if not cls.name or not cls.family or not cls.modalities:
        raise TypeError(f"{cls.__name__} must set name, family and modalities")
    _MODELS[cls.name] = cls
    return cls


def get_model_class(name: str) -> type[GenerativeModel]:
    if name not in _MODELS:
        raise unknown_name("model", name, _MODELS)
    return _MODELS[name]


def model_names() -> list[str]:
    return sorted(_MODELS)


def describe_models() -> list[dict]:
    """What `genzoo list --json` prints."""
    return [
        {
            "name": cls.name,
            "family": cls.family,
            "modalities": list(cls.modalities),
            **cls.capabilities(),
            "description": (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else "",
        }
        for cls in (_MODELS[n] for n in model_names())
    ]


def describe_presets() -> list[dict]:
    """What `genzoo list --presets --json` prints: every family's presets."""
    return [
        {"model": cls.name, "preset": name, "data": preset.data, "figure": preset.figure,
         "settings": preset.settings}
        for cls in (_MODELS[n] for n in model_names())
        for name, preset in sorted(cls.presets.items())
    ]  # fmt: skip

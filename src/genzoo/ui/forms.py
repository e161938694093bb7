"""What the pages ask for, read from the library's own declarations rather than written twice.

The Train page's settings form comes from the model's typed `Config` and `TrainConfig` (a dropdown
for a `Literal`, a checkbox for a `bool`, a number for an `int` or `float`, YAML text otherwise) with
the family's defaults; the Sample page shows the options the model's `sample()` accepts.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin

from genzoo.errors import GenzooError
from genzoo.models import get_model_class
from genzoo.settings import dataclass_hints, parse_value
from genzoo.train.config import TrainConfig
from genzoo.train.run import default_settings

# Training settings the Train page asks for on their own (steps, budget, seed) or the server owns.
OWN_TRAIN_FIELDS = ("max_steps", "epochs", "time_budget", "time_limit", "seed")
# The sampling options the Sample page offers, in the order shown; each appears when the model takes it.
SAMPLE_FIELDS = (
    "temperature", "sampler", "steps", "eta", "guidance", "label", "top_k", "top_p", "prompt", "max_new_tokens",
)  # fmt: skip
SAMPLERS = ("ddpm", "ddim", "dpm-solver++", "sde-dpm-solver++")
INTEGER_OPTIONS = ("steps", "label", "top_k", "max_new_tokens")
TEXT_OPTIONS = ("sampler", "prompt")


@dataclass(frozen=True)
class Field:
    """One setting on the form: `scope` is "model" or "train"; `kind` picks the widget."""

    scope: str
    name: str
    kind: str  # "choice", "bool", "int", "float", "text" or "yaml"
    default: Any
    choices: tuple[Any, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.scope}.{self.name}"  # dotted, so a name both scopes use is never ambiguous

    def shown(self) -> Any:
        """The default as the widget holds it (YAML-ish JSON text for lists and the like)."""
        return json.dumps(self.default) if self.kind == "yaml" else self.default

    def read(self, value: Any) -> Any:
        """The widget's value as a setting; a GenzooError naming the field when it cannot be one."""
        if self.kind == "yaml":
            return parse_value(str(value))
        if self.kind in ("int", "float"):
            if value is None or value == "":
                raise GenzooError(f"setting '{self.name}' needs a number")
            return int(value) if self.kind == "int" else float(value)
        return value


def settings_fields(model: str) -> list[Field]:
    """The form for `model`: its model settings, then the training settings, with their defaults."""
    cls = get_model_class(model)
    hints = {"model": dataclass_hints(cls.Config), "train": dataclass_hints(TrainConfig)}
    fields = []
    for scope, defaults in default_settings(model).items():
        for name, default in defaults.items():
            if scope == "train" and name in OWN_TRAIN_FIELDS:
                continue
            fields.append(_field(scope, name, hints[scope].get(name), default))
    return fields


def _field(scope: str, name: str, hint: Any, default: Any) -> Field:
    if get_origin(hint) is Literal:
        return Field(scope, name, "choice", default, tuple(get_args(hint)))
    for kind, type_ in (("bool", bool), ("int", int), ("float", float), ("text", str)):
        if hint is type_:
            return Field(scope, name, kind, default)
    return Field(scope, name, "yaml", default)  # tuples, lists, optional values


def changed_settings(fields: list[Field], values: list[Any]) -> dict[str, Any]:
    """The settings whose widget differs from its default, keyed for `genzoo.train` (dotted)."""
    settings = {}
    for field, value in zip(fields, values, strict=True):
        read = field.read(value)
        if read != field.default and not (
            field.kind == "yaml" and json.dumps(read) == json.dumps(field.default)
        ):
            settings[field.key] = read
    return settings


def sample_options(model: str) -> tuple[str, ...]:
    """Which of SAMPLE_FIELDS the model's `sample()` takes."""
    taken = inspect.signature(get_model_class(model).sample).parameters
    return tuple(name for name in SAMPLE_FIELDS if name in taken)


def read_option(name: str, text: str) -> Any:
    """A sampling option typed into the page: a number where the option is one, else the text."""
    if name in TEXT_OPTIONS:
        return text
    try:
        return int(text) if name in INTEGER_OPTIONS else float(text)
    except ValueError:
        kind = "a whole number" if name in INTEGER_OPTIONS else "a number"
        raise GenzooError(f"{name} must be {kind}, got '{text}'") from None

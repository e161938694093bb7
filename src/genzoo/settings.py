"""`--set key=value` and `--config FILE.yaml`: route each setting to the model, trainer or dataset.

A bare key goes to whichever of the three has a field of that name; `model.x`,
`train.x` and `data.x` say it explicitly and are needed only when a name is ambiguous.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from genzoo.errors import GenzooError, did_you_mean, first_line
from genzoo.files import read_utf8

SCOPES = ("model", "train", "data")


def parse_assignments(pairs: list[str]) -> dict[str, Any]:
    """['lr=3e-4', 'hidden=[256,256]'] -> {'lr': 0.0003, 'hidden': [256, 256]}."""
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise GenzooError(f"--set expects key=value, got '{pair}'")
        values[key.strip()] = parse_value(raw.strip())
    return values


class SettingsLoader(yaml.SafeLoader):
    """PyYAML's safe loader reading numbers as YAML 1.2 (and every user) does.

    YAML 1.1 wants a dot and a signed exponent in a float, so `lr: 3e-4` or `1e5` would arrive
    as strings; here a number with an exponent is a float. Everything else is as in YAML 1.1.
    """


# Added after the YAML 1.1 float and int resolvers, so it only decides what they leave as strings.
SettingsLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$"),
    list("-+.0123456789"),
)


def load_yaml(text: str) -> Any:
    """Parse YAML settings with `SettingsLoader` (raises yaml.YAMLError)."""
    return yaml.load(text, Loader=SettingsLoader)  # safe: a SafeLoader subclass


def parse_value(raw: str) -> Any:
    # Python's numbers first: '010' stays 10 (YAML 1.1 reads octal 8), 'inf' and 'nan' are floats.
    for cast in (int, float):
        try:
            return cast(raw)
        except ValueError:
            pass
    try:
        return load_yaml(raw)
    except yaml.YAMLError:
        return raw


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A YAML file, flat (`lr: 1e-3`) or grouped (`train: {lr: 1e-3}`), flattened to dotted keys."""
    path = Path(path)
    if not path.is_file():
        raise GenzooError(f"config file '{path}' does not exist")
    text = read_utf8(path, "config file ")
    try:
        content = load_yaml(text) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or first_line(err)
        raise GenzooError(f"config file '{path}' is not valid YAML{where}: {problem}; fix the file") from err
    if not isinstance(content, dict):
        raise GenzooError(f"config file '{path}' must hold a mapping of settings")
    flat: dict[str, Any] = {}
    for key, value in content.items():
        if key in SCOPES and isinstance(value, dict):
            flat.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            flat[str(key)] = value
    return flat


def route(settings: dict[str, Any], fields: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Split settings by scope. `fields[scope]` maps that scope's field names to their type hints."""
    routed: dict[str, dict[str, Any]] = {scope: {} for scope in SCOPES}
    for key, value in settings.items():
        scope, _, name = key.partition(".") if key.split(".", 1)[0] in SCOPES else ("", "", key)
        head, dot, entry = name.partition(".")
        if dot and any(head in fields[s] for s in ([scope] if scope else SCOPES)):
            # A dict setting by entry: columns.age=integer is {"columns": {"age": "integer"}}.
            owner = scope or next(s for s in SCOPES if head in fields[s])
            routed[owner].setdefault(head, {})[entry] = value
            continue
        if scope:
            if name not in fields[scope]:
                raise GenzooError(f"unknown {scope} setting '{name}'{did_you_mean(name, fields[scope])}")
        else:
            owners = [s for s in SCOPES if name in fields[s]]
            if not owners:
                everything = [n for s in SCOPES for n in fields[s]]
                raise GenzooError(
                    f"unknown setting '{name}'{did_you_mean(name, everything)}; "
                    "`genzoo config MODEL` prints every setting"
                )
            if len(owners) > 1:
                raise GenzooError(
                    f"setting '{name}' is ambiguous: write {' or '.join(f'{s}.{name}' for s in owners)}"
                )
            scope = owners[0]
        routed[scope][name] = coerce(name, fields[scope][name], value)
    return routed


def dataclass_hints(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def coerce(name: str, hint: Any, value: Any) -> Any:
    """Check `value` against the field's type and convert where that is lossless (int -> float, list -> tuple)."""
    if hint is Any or hint is None:
        return value
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return coerce(name, option, value)
            except GenzooError:
                continue
        raise GenzooError(f"setting '{name}' got {value!r}, which is not a valid {hint}")
    if origin is typing.Literal:
        if value not in typing.get_args(hint):
            raise GenzooError(f"setting '{name}' must be one of {typing.get_args(hint)}, got {value!r}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            raise GenzooError(f"setting '{name}' expects a list like [1, 2], got {value!r}")
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        item = args[0] if args else Any
        converted = [coerce(name, item, v) for v in value]
        return tuple(converted) if origin is tuple else converted
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise GenzooError(f"setting '{name}' expects true or false, got {value!r}")
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint is int and isinstance(value, float) and value.is_integer():  # max_steps=1e5
        return int(value)
    if hint is str and isinstance(value, str):
        return value
    if isinstance(hint, type) and isinstance(value, hint):
        return value
    raise GenzooError(f"setting '{name}' expects {getattr(hint, '__name__', hint)}, got {value!r}")


def parse_duration(text: str) -> float:
    """'90s', '5m', '1.5h' or plain seconds -> seconds."""
    units = {"s": 1, "m": 60, "h": 3600}
    text = text.strip().lower()
    scale = units.get(text[-1:], None)
    number = text[:-1] if scale else text
    try:
        seconds = float(number) * (scale or 1)
    except ValueError:
        raise GenzooError(f"cannot read the duration '{text}'; write e.g. 90s, 5m or 1.5h") from None
    if seconds <= 0:
        raise GenzooError(f"the duration '{text}' must be positive")
    return seconds

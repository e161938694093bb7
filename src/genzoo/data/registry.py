"""Dataset registry: names to loaders, and paths to the loader that reads them."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path

from genzoo.data.base import Dataset
from genzoo.data.options import COMMON_OPTIONS, apply_common_options
from genzoo.errors import GenzooError, unknown_name

Loader = Callable[..., Dataset]
_LOADERS: dict[str, Loader] = {}
# (predicate on an existing path, loader name): first match wins, unless a caller prefers a modality.
_PATH_RULES: list[tuple[Callable[[Path], bool], str]] = []
# The modality a loader declares it yields, where it declares one: how a CSV that is both a table
# and a series goes to the loader a model can use (`prefer`).
_MODALITIES: dict[str, str] = {}


def register_dataset(name: str, *, reads: Callable[[Path], bool] | None = None, modality: str | None = None):
    """Register a loader under `name`; `reads(path)` says it can load a user's path, and `modality`
    the kind of data it yields (`DataInfo.modality`), for `load_dataset(..., prefer=...)`."""

    def wrap(fn: Loader) -> Loader:
        _LOADERS[name] = fn
        if reads is not None:
            _PATH_RULES.append((reads, name))
        if modality is not None:
            _MODALITIES[name] = modality
        return fn

    return wrap


def dataset_names() -> list[str]:
    return sorted(_LOADERS)


def dataset_options(name: str) -> dict[str, object]:
    """Keyword options a loader accepts, with their defaults (for `--set data.x=v`), and the options
    every dataset takes (genzoo.data.options)."""
    params = inspect.signature(_LOADERS[name]).parameters
    own = {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}
    return {**own, **COMMON_OPTIONS}


def dataset_modality(name: str) -> str | None:
    """The modality loader `name` declared when it was registered, or None."""
    return _MODALITIES.get(name)


def resolve(name_or_path: str | Path, prefer: str | tuple[str, ...] | None = None) -> tuple[str, Path | None]:
    """Which loader handles `name_or_path`, and the path it should read (None for a name).

    Of the loaders that can read a path, the first registered wins; with `prefer` (modalities, such
    as the ones a model takes), the first whose declared modality is preferred wins, so a CSV is a
    table by default and a series for a model of series.
    """
    key = str(name_or_path)
    if key in _LOADERS:
        return key, None
    path = Path(key).expanduser()
    if path.exists():
        wanted = (prefer,) if isinstance(prefer, str) else tuple(prefer or ())
        first = None  # the first reader, taken when no preferred one reads the path
        for reads, name in _PATH_RULES:
            is_preferred = _MODALITIES.get(name) in wanted
            # Predicates may open files: ask only those whose answer can still change the choice.
            if (is_preferred or first is None) and reads(path):
                if is_preferred or not wanted:
                    return name, path
                first = name
        if first is not None:
            return first, path
        readers = ", ".join(sorted({name for _, name in _PATH_RULES})) or "none"
        raise GenzooError(
            f"no dataset loader can read '{path}' (loaders that take paths: {readers}); "
            "give e.g. a folder of PNG/JPEG images or an MNIST idx file"
        )
    # Dataset names have no slashes or file suffixes, so such a key was meant as a path.
    if any(c in key for c in "/\\") or key.startswith((".", "~")) or path.suffix:
        raise GenzooError(f"data path '{key}' does not exist; check the path or use a dataset name")
    raise unknown_name("dataset", key, _LOADERS)


def load_dataset(
    name_or_path: str | Path, *, prefer: str | tuple[str, ...] | None = None, **options
) -> Dataset:
    """Load a registered dataset by name (`"digits"`) or any path a loader can read (`prefer`:
    modalities to choose among loaders that all read the path, as in `resolve`).

    >>> ds = load_dataset("digits")
    >>> ds.split("train").tensors[0].shape
    torch.Size([1000, 1, 8, 8])
    """
    name, path = resolve(name_or_path, prefer)
    accepted = dataset_options(name)
    for key in options:
        if key not in accepted:
            raise GenzooError(
                f"dataset '{name}' has no option '{key}'; it accepts: {', '.join(accepted) or 'none'}"
            )
    common = {k: options.pop(k) for k in COMMON_OPTIONS if k in options}
    dataset = _LOADERS[name](path, **options) if path is not None else _LOADERS[name](**options)
    return apply_common_options(dataset, **common)

"""Options every dataset takes, applied after its loader: `--set data.train_classes=3` trains a
one-class model (anomaly detection), `--set data.mutation=0.2` a background model for likelihood
ratios (Ren et al. 2019: the same data with a share of its values replaced by noise)."""

from __future__ import annotations

from typing import Any

import torch

from genzoo.data.base import Dataset
from genzoo.errors import GenzooError

COMMON_OPTIONS: dict[str, Any] = {"train_classes": None, "mutation": 0.0}
FITTED_SPLITS = ("train", "val")  # what the model learns from and is validated on; test stays whole
MUTATION_SEED = 0


def without_common(options: dict[str, Any], keep: tuple[str, ...] = ()) -> dict[str, Any]:
    """A run's data options minus the common ones (but `keep`): its data as they are, to score or code."""
    return {k: v for k, v in options.items() if k not in COMMON_OPTIONS or k in keep}


def parse_classes(value: Any) -> list[int]:
    """3, [3, 5] or "3,5" as a list of class indices."""
    items = (
        value.split(",") if isinstance(value, str) else value if isinstance(value, list | tuple) else [value]
    )
    try:
        classes = sorted({int(str(v).strip()) for v in items})
    except ValueError:
        raise GenzooError(f"train_classes must be class indices like 3 or 3,5; got {value!r}") from None
    if not classes:
        raise GenzooError("train_classes must name at least one class")
    return classes


def apply_common_options(dataset: Dataset, train_classes: Any = None, mutation: float = 0.0) -> Dataset:
    """`dataset` with the train and val splits cut to `train_classes` and/or mutated."""
    if train_classes is None and not mutation:
        return dataset
    info = dataset.info
    if info.modality not in ("image", "vector", "audio"):
        raise GenzooError(
            f"train_classes and mutation apply to image, vector and audio data, not {info.modality} data"
        )
    splits = {name: dataset.split(name).tensors for name in dataset.split_names}
    if train_classes is not None:
        classes = parse_classes(train_classes)
        if info.num_classes < 1:
            raise GenzooError(f"train_classes needs labelled data, and '{info.name}' has no labels")
        if classes[0] < 0 or classes[-1] >= info.num_classes:
            raise GenzooError(f"train_classes must be in 0..{info.num_classes - 1}, got {classes}")
        for name in FITTED_SPLITS:
            x, y = splits[name]
            keep = torch.isin(y, torch.tensor(classes))
            if not keep.any():
                raise GenzooError(f"the {name} split has no example of classes {classes}")
            splits[name] = (x[keep], y[keep])
    if mutation:
        if not 0 < float(mutation) < 1:
            raise GenzooError(f"mutation is the share of values replaced by noise, in (0, 1); got {mutation}")
        generator = torch.Generator().manual_seed(MUTATION_SEED)
        for name in FITTED_SPLITS:
            x, y = splits[name]
            splits[name] = (mutate(x, float(mutation), info.levels, info.low, info.high, generator), y)
    return Dataset(info, splits)


def mutate(
    x: torch.Tensor, rate: float, levels: int | None, low: float, high: float, generator: torch.Generator
) -> torch.Tensor:
    """Each value replaced, with probability `rate`, by a uniform draw over the data's range (one of
    its levels when the data are discrete)."""
    u = torch.rand(x.shape, generator=generator)
    if levels:
        noise = (
            torch.randint(levels, x.shape, generator=generator).float() * (high - low) / (levels - 1) + low
        )
    else:
        noise = low + (high - low) * torch.rand(x.shape, generator=generator)
    return torch.where(u < rate, noise, x)

"""Input checks shared by the sample-quality metrics: features in, (N, D) float tensors out."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from genzoo.errors import GenzooError

ArrayLike = Any  # a torch.Tensor or anything numpy.asarray understands


def as_matrix(x: ArrayLike, name: str, dtype: torch.dtype = torch.float64, min_rows: int = 1) -> torch.Tensor:
    """``x`` as a CPU (N, D) tensor of ``dtype``, with a clear error for a wrong shape or NaN/inf.

    Images (N, C, H, W) are *not* flattened silently: metrics compare feature vectors, and
    passing raw images by mistake is a common, silent source of meaningless numbers.
    """
    t = x.detach().cpu() if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))
    if t.ndim != 2:
        raise GenzooError(
            f"{name} must be a 2-d array of features (N, D), got shape {tuple(t.shape)}; "
            "extract features first (genzoo.metrics.features) or flatten with x.reshape(len(x), -1)"
        )
    if len(t) < min_rows:
        raise GenzooError(f"{name} needs at least {min_rows} rows, got {len(t)}")
    t = t.to(dtype)
    if not torch.isfinite(t).all():
        raise GenzooError(
            f"{name} contains NaN or infinite values; check the samples and the feature extractor"
        )
    return t


def same_width(a: torch.Tensor, b: torch.Tensor, names: tuple[str, str]) -> None:
    if a.shape[1] != b.shape[1]:
        raise GenzooError(
            f"{names[0]} has {a.shape[1]} features per row but {names[1]} has {b.shape[1]}; "
            "use the same feature extractor for both"
        )

"""Precision/recall (Kynkäänniemi et al. 2019) and density/coverage (Naeem et al. 2020) from k-NN balls.

FID mixes "are samples realistic?" and "is the data's variety covered?" into one number. These
metrics separate them by approximating each feature manifold with a union of balls: around
every point, a ball reaching its k-th nearest neighbour within the same set.

- precision: share of generated points inside some real ball (realism);
- recall: share of real points inside some generated ball (variety);
- density: how many real balls contain a generated point, on average, divided by k
  (about 1 when the distributions match; unlike precision it is not fooled by real outliers
  whose huge balls swallow everything);
- coverage: share of real points whose own ball contains at least one generated point
  (a recall that does not trust the generated set's own, possibly inflated, radii).

A point is inside a ball when its distance is <= the radius (ties count, as in Kynkäänniemi
et al.'s definition). Distances are computed with ``torch.cdist`` in float64 by default: its
fast path expands ``|a|^2 + |b|^2 - 2 a.b``, which in float32 can lose the small distances
these ball tests hinge on. Work is done in row chunks so memory is ``chunk x N``, not ``N x N``;
time is O(N^2 D).
"""

from __future__ import annotations

import torch

from genzoo.errors import GenzooError
from genzoo.metrics._arrays import ArrayLike, as_matrix, same_width

_CHUNK_ELEMENTS = 1 << 22  # distances held at once (32 MiB in float64)


def _chunk_rows(n_cols: int, chunk_size: int | None) -> int:
    return chunk_size if chunk_size else max(1, _CHUNK_ELEMENTS // max(n_cols, 1))


def knn_radii(
    feats: ArrayLike, k: int = 3, *, chunk_size: int | None = None, dtype=torch.float64
) -> torch.Tensor:
    """Distance from each row of ``feats`` to its k-th nearest *other* row (shape (N,)).

    Reuse it for a fixed real set across many models via ``precision_recall(..., real_radii=)``.
    """
    x = as_matrix(feats, "feats", dtype=dtype)
    if len(x) <= k:
        raise GenzooError(f"k-NN radii with k={k} need more than {k} points, got {len(x)}")
    radii = torch.empty(len(x), dtype=dtype)
    step = _chunk_rows(len(x), chunk_size)
    for start in range(0, len(x), step):
        d = torch.cdist(x[start : start + step], x)
        # The k+1 smallest include the point itself at distance 0.
        radii[start : start + step] = d.kthvalue(k + 1, dim=1).values
    return radii


def precision_recall(
    real: ArrayLike,
    fake: ArrayLike,
    *,
    k: int = 3,
    chunk_size: int | None = None,
    dtype: torch.dtype = torch.float64,
    real_radii: torch.Tensor | None = None,
) -> dict[str, float]:
    """``{"precision", "recall", "density", "coverage"}`` of generated features against real ones.

    ``k=3`` follows Kynkäänniemi et al.; Naeem et al. recommend k=5 for density and coverage,
    pass ``k=5`` to match their numbers. Reference values when both sets come from the same
    distribution: density about 1, coverage about ``1 - 2^-k`` (0.875 at k=3, 0.97 at k=5).
    Both sets should have the same size (the papers' protocol): precision and recall depend on
    N through the ball radii.
    """
    r = as_matrix(real, "real", dtype=dtype)
    f = as_matrix(fake, "fake", dtype=dtype)
    same_width(r, f, ("real", "fake"))
    if real_radii is None:
        real_radii = knn_radii(r, k, chunk_size=chunk_size, dtype=dtype)
    elif real_radii.shape != (len(r),):
        raise GenzooError(f"real_radii has shape {tuple(real_radii.shape)}, expected ({len(r)},)")
    real_radii = real_radii.to(dtype)
    fake_radii = knn_radii(f, k, chunk_size=chunk_size, dtype=dtype)

    in_real_ball = 0  # generated points inside at least one real ball
    real_balls_hit = 0.0  # sum over generated points of the number of real balls containing it
    nearest_fake = torch.full((len(r),), float("inf"), dtype=dtype)  # per real point
    real_in_fake_ball = torch.zeros(len(r), dtype=torch.bool)
    step = _chunk_rows(len(r), chunk_size)
    for start in range(0, len(f), step):
        d = torch.cdist(f[start : start + step], r)  # (chunk of fake, all real)
        inside = d <= real_radii[None, :]
        in_real_ball += int(inside.any(1).sum())
        real_balls_hit += float(inside.sum())
        nearest_fake = torch.minimum(nearest_fake, d.min(0).values)
        real_in_fake_ball |= (d <= fake_radii[start : start + step, None]).any(0)
    return {
        "precision": in_real_ball / len(f),
        "recall": float(real_in_fake_ball.double().mean()),
        "density": real_balls_hit / (k * len(f)),
        "coverage": float((nearest_fake <= real_radii).double().mean()),
    }

"""Two-dimensional toy distributions: the usual mode-collapse and density-fitting benchmarks.

- `toy2d-ring`: 8 Gaussians evenly spaced on a circle of radius 2, std 0.02.
- `toy2d-grid`: 25 Gaussians centred on {-4,-2,0,2,4}^2, std 0.05.
- `toy2d-moons`: two interleaving half circles with Gaussian noise, labels = moon.
- `toy2d-swissroll`: a 2-d spiral with Gaussian noise.
- `toy2d-checkerboard`: uniform on the 8 dark squares of a 4x4 board over [-4,4]^2.

Ring and grid are labelled with the mode index; `toy2d_modes` gives their centres and
std so metrics can count how many modes a model's samples cover.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from genzoo.data.base import DataInfo, Dataset
from genzoo.data.registry import register_dataset
from genzoo.errors import GenzooError

Sampler = Callable[[int, torch.Generator], tuple[torch.Tensor, torch.Tensor]]


def _ring_centers() -> torch.Tensor:
    angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    return (2.0 * torch.stack([angles.cos(), angles.sin()], 1)).float()


def _grid_centers() -> torch.Tensor:
    ticks = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])
    return torch.cartesian_prod(ticks, ticks)


_MODES = {"toy2d-ring": (_ring_centers, 0.02), "toy2d-grid": (_grid_centers, 0.05)}


def toy2d_modes(name: str) -> tuple[torch.Tensor, float] | None:
    """(centres [K, 2], std) of a Gaussian-mixture toy dataset, or None for the others."""
    if name not in _MODES:
        return None
    centers, std = _MODES[name]
    return centers(), std


def _mixture(name: str) -> Sampler:
    def sample(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        centers, std = toy2d_modes(name)  # type: ignore[misc]
        y = torch.randint(len(centers), (n,), generator=g)
        return centers[y] + std * torch.randn(n, 2, generator=g), y

    return sample


def _moons(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    # Upper moon: unit half circle; lower moon: the same flipped and shifted into its gap.
    y = torch.randint(2, (n,), generator=g)
    t = math.pi * torch.rand(n, generator=g)
    upper = torch.stack([t.cos(), t.sin()], 1)
    lower = torch.stack([1 - t.cos(), 0.5 - t.sin()], 1)
    x = torch.where(y[:, None] == 0, upper, lower) + 0.1 * torch.randn(n, 2, generator=g)
    # Centre on the origin and scale by 2, so the moons span about [-3, 3] x [-1.5, 1.5].
    return 2.0 * (x - torch.tensor([0.5, 0.25])), y


def _swissroll(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    # Arc-length parameter t in [1.5pi, 4.5pi], as in the classic 3-d swiss roll,
    # seen from the side; divided by 5 so it spans about [-3, 3]^2.
    t = 1.5 * math.pi * (1 + 2 * torch.rand(n, generator=g))
    x = torch.stack([t * t.cos(), t * t.sin()], 1) + torch.randn(n, 2, generator=g)
    return x / 5.0, torch.full((n,), -1, dtype=torch.long)


def _checkerboard(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    # A 4x4 board of 2x2 squares over [-4, 4]^2; keep the 8 squares where row + col is even.
    cells = torch.tensor(
        [(r, c) for r in range(4) for c in range(4) if (r + c) % 2 == 0], dtype=torch.float32
    )
    corner = cells[torch.randint(len(cells), (n,), generator=g)] * 2.0 - 4.0
    return corner + 2.0 * torch.rand(n, 2, generator=g), torch.full((n,), -1, dtype=torch.long)


# name -> (sampler, coordinate bound, number of classes). Bounds hold with margin: the
# Gaussian tails are clamped to them so DataInfo.low/high are true bounds.
_TOYS: dict[str, tuple[Sampler, float, int]] = {
    "toy2d-ring": (_mixture("toy2d-ring"), 2.5, 8),
    "toy2d-grid": (_mixture("toy2d-grid"), 4.5, 25),
    "toy2d-moons": (_moons, 4.0, 2),
    "toy2d-swissroll": (_swissroll, 4.0, 0),
    "toy2d-checkerboard": (_checkerboard, 4.0, 0),
}


def _make_loader(name: str) -> Callable[..., Dataset]:
    sampler, bound, num_classes = _TOYS[name]

    def load(n_train: int = 20000, n_val: int = 2000, n_test: int = 2000, seed: int = 0) -> Dataset:
        sizes = {"train": n_train, "val": n_val, "test": n_test}
        for split, n in sizes.items():
            if not isinstance(n, int) or n < 1:
                raise GenzooError(f"{name}: n_{split} must be a positive integer, got {n!r}")
        splits = {}
        for i, (split, n) in enumerate(sizes.items()):
            # A stream per split, so changing n_train leaves the val and test points as they were.
            x, y = sampler(n, torch.Generator().manual_seed(3 * seed + i))
            splits[split] = (x.clamp(-bound, bound), y)
        info = DataInfo(name, "vector", (2,), None, -bound, bound, num_classes)
        return Dataset(info, splits)

    load.__name__ = "load_" + name.replace("-", "_")
    load.__doc__ = f"The `{name}` toy distribution: 2-d points, seeded by `seed`."
    return load


for _name in _TOYS:
    register_dataset(_name)(_make_loader(_name))

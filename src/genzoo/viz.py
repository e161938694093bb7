"""Pictures of samples: image grids (Pillow); 2-d scatter plots, piano rolls and waveforms (matplotlib)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from genzoo.data.base import DataInfo


def image_grid(
    images: torch.Tensor, low: float, high: float, ncol: int | None = None, pad: int = 1
) -> np.ndarray:
    """(N, C, H, W) in [low, high] -> one uint8 array (rows*H, cols*W[, C]) with `pad` pixels between tiles."""
    n, c, h, w = images.shape
    ncol = ncol or math.ceil(math.sqrt(n))
    nrow = math.ceil(n / ncol)
    scaled = ((images.float() - low) / (high - low)).clamp(0, 1).mul(255).round().byte().numpy()
    grid = np.full((nrow * (h + pad) + pad, ncol * (w + pad) + pad, c), 128, dtype=np.uint8)
    for i in range(n):
        r, col = divmod(i, ncol)
        top, left = pad + r * (h + pad), pad + col * (w + pad)
        grid[top : top + h, left : left + w] = scaled[i].transpose(1, 2, 0)
    return grid[..., 0] if c == 1 else grid


def save_image_grid(
    images: torch.Tensor, path: str | Path, low: float, high: float, ncol: int | None = None, scale: int = 0
) -> None:
    """Write a PNG grid; small images (8x8 digits) are enlarged so a person can see them."""
    from PIL import Image

    grid = Image.fromarray(image_grid(images, low, high, ncol))
    scale = scale or max(1, round(320 / grid.width))
    if scale > 1:
        grid = grid.resize((grid.width * scale, grid.height * scale), Image.NEAREST)
    grid.save(path)


def save_scatter(points: torch.Tensor, path: str | Path, reference: torch.Tensor | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    if reference is not None:
        ax.scatter(*reference[:2000].T.numpy(), s=2, c="0.7", label="data")
    ax.scatter(*points.T.numpy(), s=2, c="C0", label="samples")
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def save_traces(samples: torch.Tensor, path: str | Path, kind: str, count: int = 4) -> None:
    """The first `count` samples one above the other: piano rolls (N, T, keys) as key-by-time
    images (`kind="music"`), or waveforms (N, 1, L) as lines (`kind="audio"`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = samples[:count].float()
    fig, axes = plt.subplots(len(shown), 1, figsize=(8, 1.6 * len(shown)), dpi=100, squeeze=False)
    for ax, sample in zip(axes[:, 0], shown, strict=True):
        if kind == "music":
            ax.imshow(sample.T.numpy(), origin="lower", aspect="auto", cmap="gray_r", interpolation="nearest")
            ax.set_ylabel("key")
        else:
            ax.plot(sample.flatten().numpy(), linewidth=0.5)
            ax.set_ylim(-1, 1)
    axes[-1, 0].set_xlabel("time step" if kind == "music" else "sample")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def save_samples(samples: torch.Tensor, info: DataInfo, path: str | Path) -> None:
    """A grid for images, a scatter plot for 2-d vectors, piano rolls for music, waveforms for
    audio; other data get no picture."""
    if info.modality == "image":
        save_image_grid(samples, path, info.low, info.high)
    elif info.modality == "vector" and info.shape == (2,):
        save_scatter(samples, path)
    elif info.modality in ("music", "audio"):
        save_traces(samples, path, info.modality)

"""Pictures of samples: image grids (Pillow); 2-d scatter plots, piano rolls and waveforms (matplotlib);
and of training: loss curves (matplotlib); forecasts as fan charts (matplotlib)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
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
    images (`kind="music"`), waveforms (N, 1, L) as lines (`kind="audio"`), or series windows
    (N, L, F) as one line per feature (`kind="series"`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = samples[:count].float()
    fig, axes = plt.subplots(len(shown), 1, figsize=(8, 1.6 * len(shown)), dpi=100, squeeze=False)
    for ax, sample in zip(axes[:, 0], shown, strict=True):
        if kind == "music":
            ax.imshow(sample.T.numpy(), origin="lower", aspect="auto", cmap="gray_r", interpolation="nearest")
            ax.set_ylabel("key")
        elif kind == "series":
            ax.plot(sample.numpy(), linewidth=1)
        else:
            ax.plot(sample.flatten().numpy(), linewidth=0.5)
            ax.set_ylim(-1, 1)
    axes[-1, 0].set_xlabel("sample" if kind == "audio" else "time step")
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
    elif info.modality in ("music", "audio", "series"):
        save_traces(samples, path, info.modality)


# Logged with every train record but not curves of the model: the x-axis, the clock and the schedule.
_NOT_CURVES = {"step", "time", "lr", "split"}
# Validation bookkeeping rather than a measurement.
_NOT_VAL_CURVES = {"val_examples", "val_best_step"}


def curve_panels(
    records: list[dict[str, Any]], max_panels: int = 6
) -> list[tuple[str, str | None, str | None]]:
    """Which curves to draw from metrics.jsonl records: `(title, train_key, val_key)` per panel.

    Each train key shares its panel with its validation twin (`val_loss` for `loss`, and for a
    phase's `gen/loss` too when no other key took it). The losses come first, then validation
    keys without a twin (the sample monitor's: modes, quality), then the other train keys, at most
    `max_panels` in all. A key whose curve repeats an earlier one (a GAN's `disc/d_loss` is its
    `disc/loss`) is left out.
    """
    train_keys = _curve_keys([r for r in records if r.get("split") != "val"])
    val_keys = _curve_keys([r for r in records if r.get("split") == "val"])
    twins: dict[str, str] = {}
    for k in train_keys:
        for candidate in (f"val_{k}", f"val_{k.split('/')[-1]}"):
            if candidate in val_keys and candidate not in twins.values():
                twins[k] = candidate
                break
    losses = [k for k in train_keys if k.split("/")[-1] == "loss"]
    panels = [(k, k, twins.get(k)) for k in losses]
    panels += [(k, None, k) for k in val_keys if k not in twins.values()]
    panels += [(k, k, twins.get(k)) for k in train_keys if k not in losses]
    return panels[:max_panels]


def _curve_keys(records: list[dict[str, Any]]) -> list[str]:
    """The numeric keys of `records` in logged order, less bookkeeping and repeated curves."""
    keys: list[str] = []
    for record in records:
        for k, v in record.items():
            if k not in keys and k not in _NOT_CURVES and k not in _NOT_VAL_CURVES and _number(v):
                keys.append(k)
    seen: set[tuple] = set()
    kept = []
    for k in keys:
        curve = tuple((r["step"], r.get(k)) for r in records if k in r)
        if curve not in seen:
            seen.add(curve)
            kept.append(k)
    return kept


def save_curves(
    records: list[dict[str, Any]], path: str | Path, title: str = "", max_panels: int = 6
) -> bool:
    """Training curves against step, one panel per logged key (train line, validation dots);
    written atomically. False (and no file) when the records hold nothing to draw."""
    panels = curve_panels(records, max_panels)
    if not panels:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [r for r in records if r.get("split") != "val"]
    val = [r for r in records if r.get("split") == "val"]
    ncol = min(3, len(panels))
    nrow = math.ceil(len(panels) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4 * ncol, 3 * nrow), dpi=100, squeeze=False)
    for ax, (name, train_key, val_key) in zip(axes.flat, panels, strict=False):
        for rows, key, style in (
            (train, train_key, {"linewidth": 1.0}),
            (val, val_key, {"marker": "o", "linewidth": 1.0}),
        ):
            if key is None:
                continue
            points = [(r["step"], r[key]) for r in rows if _finite(r.get(key))]
            if points:
                steps, values = zip(*points, strict=True)
                label = "val" if rows is val else "train"
                ax.plot(
                    steps, values, label=label, markersize=3, color="C1" if rows is val else "C0", **style
                )
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if train_key is not None and val_key is not None:
            ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    fig.savefig(tmp, format="png")
    plt.close(fig)
    tmp.replace(path)
    return True


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _finite(value: Any) -> bool:
    return _number(value) and math.isfinite(value)


def save_score_histogram(
    scores: np.ndarray, threshold: float, path: str | Path, kind: str, labels: np.ndarray | None = None
) -> None:
    """Histogram of anomaly scores with the threshold; normal and anomalous apart when labelled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    bins = np.histogram_bin_edges(scores, bins=min(60, max(10, len(scores) // 10)))
    if labels is None:
        ax.hist(scores, bins=bins, color="tab:blue", alpha=0.8, label="examples")
    else:
        ax.hist(scores[labels == 0], bins=bins, color="tab:blue", alpha=0.6, label="normal (label 0)")
        ax.hist(scores[labels == 1], bins=bins, color="tab:red", alpha=0.6, label="anomaly (label 1)")
    ax.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.4g}")
    ax.set_xlabel(f"{kind} score (higher = more anomalous)")
    ax.set_ylabel("examples")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def save_extremes(
    images: torch.Tensor, order: np.ndarray, path: str | Path, low: float, high: float, count: int
) -> None:
    """Two rows of images: the `count` most anomalous (top) and the `count` least (bottom)."""
    count = min(count, len(order) // 2) or len(order)
    most, least = order[:count], order[::-1][:count]
    picked = torch.cat([images[torch.as_tensor(most.copy())], images[torch.as_tensor(least.copy())]])
    save_image_grid(picked, path, low, high, ncol=count)


def save_anomaly_maps(
    images: torch.Tensor, maps: torch.Tensor, path: str | Path, low: float, high: float
) -> None:
    """Each image (top row) over its per-pixel anomaly map (bottom row, brighter = more anomalous)."""
    heat = maps.float().sum(1, keepdim=True)  # channels together
    flat = heat.flatten(1)
    lo, hi = flat.min(1).values.view(-1, 1, 1, 1), flat.max(1).values.view(-1, 1, 1, 1)
    scaled = (heat - lo) / (hi - lo).clamp(min=1e-12)
    gray = ((images.float() - low) / (high - low)).clamp(0, 1)
    if gray.shape[1] != 1:
        gray = gray.mean(1, keepdim=True)
    save_image_grid(torch.cat([gray, scaled]), path, 0.0, 1.0, ncol=len(images))


def save_fan_chart(
    history: dict[str, pd.DataFrame],
    paths: dict[str, np.ndarray],
    forecast: pd.DataFrame,
    path: str | Path,
    panels: int = 6,
) -> None:
    """Each series' recent history, then its forecast: the median path and the 50% and 80% central
    intervals of the sample paths (S, H, F) shaded, one panel per series and feature (the first `panels`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = [(name, j) for name in paths for j in range(paths[name].shape[2])][:panels]
    fig, axes = plt.subplots(len(cases), 1, figsize=(7, 2.6 * len(cases)), squeeze=False)
    for ax, (name, j) in zip(axes[:, 0], cases, strict=True):
        frame, drawn = history[name], paths[name][:, :, j]
        feature = frame.columns[j]
        shown = frame.iloc[-max(4 * drawn.shape[1], 60) :, j]
        times = forecast.loc[(forecast["series"] == name) & (forecast["feature"] == feature), "time"]
        ax.plot(shown.index, shown.to_numpy(), color="black", linewidth=1, label="history")
        for (lo, hi), alpha in (((0.1, 0.9), 0.25), ((0.25, 0.75), 0.45)):
            low, high = np.quantile(drawn, [lo, hi], axis=0)
            ax.fill_between(times, low, high, color="tab:blue", alpha=alpha, linewidth=0,
                            label=f"{round(100 * (hi - lo))}% interval")  # fmt: skip
        ax.plot(times, np.median(drawn, 0), color="tab:blue", linewidth=1.5, label="median")
        ax.set_title(f"{name}: {feature}" if len(paths) > 1 else str(feature), fontsize=9)
        ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)

"""The table part of the compare report: each column of a model's synthetic rows against the real rows
it learned from, and how the columns go together in each, as matplotlib figures (base64 PNGs).

Both tables are in `genzoo.data.tabular`'s encoding (one float per column: a number in its units with
NaN for missing, a category as its index in the schema's list, missing being a category of its own),
so the real rows come straight from the dataset and the synthetic ones from a run's CSV through the
same schema, and every category lines up.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from genzoo.data.tabular import TableSchema
from genzoo.metrics.tabular import cramers_v

MAX_COLUMNS = 15  # columns plotted; a wider table shows the ones the models match worst
TOP_CATEGORIES = 10  # bars per categorical column, the most frequent in the real rows
HISTOGRAM_BINS = 30
# A number meets a category through 10 equal-width bins, as the quality score's pair trends do.
PAIR_BINS = 10
PANELS_PER_ROW = 4


def read_synthetic(path: Path, schema: TableSchema) -> np.ndarray:
    """A run's synthetic CSV in the schema's encoding. Categories are read as the text they were
    written as, so that a category such as '01' is not read back as the number 1."""
    text = {c.name: str for c in schema.columns if not c.is_numeric}
    return schema.encode(pd.read_csv(path, dtype=text)).numpy()


def plotted_columns(schema: TableSchema, scores: list[dict[str, float | None]]) -> list[int]:
    """Indices of the columns to plot: all of a narrow table, else the MAX_COLUMNS whose column scores
    (one dict per model) are lowest on average, in the table's order."""
    if len(schema.columns) <= MAX_COLUMNS:
        return list(range(len(schema.columns)))

    def mean_score(j: int) -> float:
        values = [v for s in scores if (v := s.get(schema.columns[j].name)) is not None]
        return float(np.mean(values)) if values else 1.0

    worst = sorted(range(len(schema.columns)), key=mean_score)[:MAX_COLUMNS]
    return sorted(worst)


def _short(value: object, width: int = 12) -> str:
    text = "(missing)" if value is None else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def columns_figure(
    real: np.ndarray,
    synthetic: np.ndarray,
    schema: TableSchema,
    columns: list[int],
    scores: dict[str, float | None],
):
    """One panel per column: overlaid histograms of a number (density; missing shares in the title),
    grouped bars of a category's shares (its TOP_CATEGORIES most frequent real values). Each title
    carries the column's shape score (1 = the same distribution)."""
    import matplotlib.pyplot as plt

    cols = min(PANELS_PER_ROW, len(columns))
    rows = math.ceil(len(columns) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.5 * rows), squeeze=False)
    for ax in axes.flat[len(columns) :]:
        ax.axis("off")
    for ax, j in zip(axes.flat, columns, strict=False):
        column = schema.columns[j]
        r, s = real[:, j], synthetic[:, j]
        title = column.name
        if (score := scores.get(column.name)) is not None:
            title += f" ({score:.2f})"
        if column.is_numeric:
            present = np.concatenate([r[~np.isnan(r)], s[~np.isnan(s)]])
            edges = np.histogram_bin_edges(present, bins=HISTOGRAM_BINS) if len(present) else HISTOGRAM_BINS
            ax.hist(r[~np.isnan(r)], bins=edges, density=True, alpha=0.5, color="tab:blue", label="real")
            ax.hist(
                s[~np.isnan(s)], bins=edges, density=True, alpha=0.5, color="tab:orange", label="synthetic"
            )
            if np.isnan(r).any() or np.isnan(s).any():
                title += f"\nmissing {np.isnan(r).mean():.0%} real, {np.isnan(s).mean():.0%} synthetic"
            if column.kind == "datetime":
                ax.set_xlabel("days since 1970-01-01", fontsize=7)
        else:
            levels = len(column.categories or [])
            real_shares = np.bincount(r.astype(np.int64), minlength=levels) / len(r)
            synthetic_shares = np.bincount(s.astype(np.int64), minlength=levels) / len(s)
            top = np.argsort(-real_shares, kind="stable")[:TOP_CATEGORIES]
            x = np.arange(len(top))
            ax.bar(x - 0.2, real_shares[top], width=0.4, color="tab:blue", alpha=0.7, label="real")
            ax.bar(
                x + 0.2, synthetic_shares[top], width=0.4, color="tab:orange", alpha=0.7, label="synthetic"
            )
            ax.set_xticks(x, [_short((column.categories or [])[i]) for i in top], rotation=45, ha="right")
            ax.set_ylabel("share", fontsize=7)
            if levels > TOP_CATEGORIES:
                title += f"\ntop {TOP_CATEGORIES} of {levels} categories"
        ax.set_title(title, fontsize=8)
        ax.tick_params(labelsize=7)
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    return float(np.corrcoef(x, y)[0, 1])


def _codes(values: np.ndarray, numeric: bool) -> np.ndarray:
    """A category's indices as they are; a number's equal-width bin, missing in a bin of its own."""
    if not numeric:
        return values.astype(np.int64)
    edges = np.histogram_bin_edges(values[~np.isnan(values)], bins=PAIR_BINS)
    return np.digitize(values, edges)  # NaN lands past the last edge


def associations(rows: np.ndarray, schema: TableSchema, columns: list[int]) -> np.ndarray:
    """Pairwise association of `columns`: Pearson's r for two numbers (-1..1), Cramer's V otherwise
    (0..1); NaN on the diagonal and where a column is constant."""
    out = np.full((len(columns), len(columns)), np.nan)
    numeric = [schema.columns[j].is_numeric for j in columns]
    codes = [_codes(rows[:, j], is_numeric) for j, is_numeric in zip(columns, numeric, strict=True)]
    for a in range(len(columns)):
        for b in range(a + 1, len(columns)):
            if numeric[a] and numeric[b]:
                value = _pearson(rows[:, columns[a]], rows[:, columns[b]])
            else:
                width = int(codes[b].max()) + 1
                value = cramers_v(codes[a] * width + codes[b], width)
            out[a, b] = out[b, a] = value
    return out


def pairs_figure(real: np.ndarray, synthetic: np.ndarray, schema: TableSchema, columns: list[int]):
    """Three heatmaps: the real rows' associations, the synthetic rows', and their absolute difference
    (what the model got wrong about how columns go together). None for fewer than two columns."""
    import matplotlib.pyplot as plt

    if len(columns) < 2:
        return None
    first, second = associations(real, schema, columns), associations(synthetic, schema, columns)
    names = [_short(schema.columns[j].name, 14) for j in columns]
    size = 2.2 + 0.28 * len(columns)
    fig, axes = plt.subplots(1, 3, figsize=(3 * size, size))
    panels = (
        ("real", first, "coolwarm", -1.0),
        ("synthetic", second, "coolwarm", -1.0),
        ("|real - synthetic|", np.abs(first - second), "Reds", 0.0),
    )
    for ax, (title, matrix, cmap, low) in zip(axes, panels, strict=True):
        image = ax.imshow(matrix, cmap=cmap, vmin=low, vmax=1.0)
        ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
        ax.set_yticks(range(len(names)), names, fontsize=7)
        ax.set_title(title, fontsize=9)
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    return fig

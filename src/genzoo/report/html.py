"""The compare report as one self-contained HTML file: every picture is an inline base64 PNG drawn
with matplotlib (or Pillow for sample grids), so index.html opens from disk, mailed or archived,
without a server or the run directories next to it.

A table report draws, per model, each column of its synthetic rows against the real ones and the
columns' associations in both (report/tables.py), from the CSV each run saved.

A few lines of inline script record, on the <body>, how many images decoded and any script error
(`data-images-ok`, `data-errors`): the headless-browser test reads them.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genzoo.data.base import DataInfo
from genzoo.report.recommend import notes

# What each family is, in one line, for the per-family notes (this run's numbers follow it).
FAMILY_NOTES = {
    "vae": "Encoder-decoder trained on a likelihood bound: fast sampling, a likelihood estimate, samples often blurry.",
    "gan": "Generator trained against a discriminator: sharp samples in one forward pass, no likelihood, can drop modes.",
    "diffusion": "Learns to remove noise step by step: strong samples and a likelihood bound, but sampling takes many network calls.",
    "flow": "Invertible network: exact likelihood and one-pass sampling, usually weaker samples at equal size.",
    "autoregressive": "One pixel at a time with exact likelihood: the best NLLs, sampling is sequential (one pass per pixel).",
    "dbn": "Stacked RBMs trained greedily: a likelihood estimate by AIS, sampling by Gibbs chains.",
}
# The same families on tables, where what sets them apart is different.
TABLE_FAMILY_NOTES = {
    "vae": "Encoder-decoder on mode-normalized columns (TVAE): quick to train and sample, often smooths rare categories away.",
    "gan": "Conditional generator against a critic (CTGAN): samples rare categories on purpose, but needs many steps and can be unstable.",
    "diffusion": "Denoises numbers and categories step by step (TabDDPM): often the most faithful rows, sampling takes many network calls.",
    "copula": "Fitted marginals joined by one Gaussian correlation: nothing to train and instant, but only linear dependence between columns.",
}
# Columns of the results table: (summary key, header, decimals, unit the values are divided by).
SAMPLE_COLUMNS = (
    ("nll", "NLL (nats)", 2, 1),
    ("fid", "FID", 2, 1),
    ("kid", "KID", 3, 1),
    ("precision", "precision", 3, 1),
    ("recall", "recall", 3, 1),
    ("coverage", "coverage", 3, 1),
    ("classes_hit", "classes hit", 1, 1),
    ("memorized_share", "memorized", 3, 1),
)
TABLE_COLUMNS = (
    ("quality_score", "quality", 3, 1),
    ("column_shapes", "column shapes", 3, 1),
    ("column_pair_trends", "pair trends", 3, 1),
    ("detection_auc", "detection AUC", 3, 1),
    ("ml_efficacy", "ML efficacy", 3, 1),
    ("dcr_share", "DCR share", 3, 1),
    ("exact_copy_rate", "exact copies", 3, 1),
    ("mia_auc", "MIA AUC", 3, 1),
)
RUN_COLUMNS = (
    ("train_seconds", "train s", 0, 1),
    ("sample_seconds_per_100", "sample s / 100", 3, 1),
    ("params", "params (k)", 0, 1000),
    ("peak_memory_mb", "peak MB", 0, 1),
    ("steps_done", "steps", 0, 1),
)
COLUMNS = (*SAMPLE_COLUMNS, *RUN_COLUMNS)
TABLE_REPORT_COLUMNS = (*TABLE_COLUMNS, *RUN_COLUMNS)
CHECK_SCRIPT = """<script>
window.genzooErrors = [];
window.addEventListener('error', function (e) { window.genzooErrors.push(String(e.message || e.type)); }, true);
window.addEventListener('load', function () {
  var imgs = document.images, ok = 0;
  for (var i = 0; i < imgs.length; i++) { if (imgs[i].complete && imgs[i].naturalWidth > 0) ok++; }
  document.body.setAttribute('data-images', String(imgs.length));
  document.body.setAttribute('data-images-ok', String(ok));
  document.body.setAttribute('data-errors', window.genzooErrors.join(' | '));
});
</script>"""
STYLE = """<style>
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; font-size: 0.8em; display: block; overflow-x: auto; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
tr.failed td { color: #a00; }
.grids { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0; } figcaption { text-align: center; font-size: 0.9em; }
img.pixelated { image-rendering: pixelated; }
.pick { background: #eef7ee; padding: 0.6em 1em; border-left: 4px solid #4a4; }
</style>"""


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def sample_grid_png(samples: torch.Tensor, info: DataInfo) -> str | None:
    """Base64 PNG of samples: an image grid, a 2-d scatter plot, or None for other data."""
    if info.modality == "image":
        from PIL import Image

        from genzoo.viz import image_grid

        grid = Image.fromarray(image_grid(samples, info.low, info.high, ncol=8))
        scale = max(1, round(240 / grid.width))
        grid = grid.resize((grid.width * scale, grid.height * scale), Image.NEAREST)
        buffer = io.BytesIO()
        grid.save(buffer, format="PNG")
        return base64.b64encode(buffer.getvalue()).decode()
    if info.shape == (2,):
        plt = _pyplot()
        fig, ax = plt.subplots(figsize=(3, 3))
        ax.scatter(*samples.T.numpy(), s=3)
        ax.set_aspect("equal")
        return _png(fig)
    return None


def _curves(run_dir: Path) -> dict[str, list[tuple[float, float]]]:
    """(step, value) of every loss in metrics.jsonl: `loss` and `val_loss`, or one per optimizer
    phase for families with several (a GAN's `gen/loss` and `disc/loss`)."""
    curves: dict[str, list[tuple[float, float]]] = {}
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return curves
    for line in path.read_text().splitlines():
        record = json.loads(line)
        for key, value in record.items():
            is_loss = key in ("loss", "val_loss") or key.endswith("/loss")
            if is_loss and isinstance(value, int | float) and math.isfinite(value):
                curves.setdefault(key, []).append((record["step"], value))
    return curves


def curves_png(runs: dict[str, Path]) -> str | None:
    """One panel per model (their losses are on different scales): train and validation loss."""
    panels = {m: c for m, d in runs.items() if (c := _curves(d))}
    if not panels:
        return None
    plt = _pyplot()
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.8 * rows), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.axis("off")
    for ax, (model, curves) in zip(axes.flat, panels.items(), strict=False):
        for key, points in curves.items():
            style = "o-" if key.startswith("val_") else "-"
            ax.plot(*zip(*points, strict=True), style, markersize=3, label=key)
        ax.set_title(model)
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _png(fig)


def tradeoff_png(
    models: dict[str, dict[str, Any]], key: str = "fid", label: str = "FID (lower is better)"
) -> str | None:
    """A quality metric (FID, a table's quality score) against sampling time per 100 samples (log
    scale), with the spread over repeats."""
    points = {
        m: (s["metrics"]["sample_seconds_per_100"], s["metrics"][key])
        for m, s in models.items()
        if key in s["metrics"] and "sample_seconds_per_100" in s["metrics"]
    }
    if not points:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for model, (speed, fid) in points.items():
        ax.errorbar(speed["mean"], fid["mean"], xerr=speed["std"], yerr=fid["std"], fmt="o", capsize=3)
        ax.annotate(model, (speed["mean"], fid["mean"]), textcoords="offset points", xytext=(5, 5))
    ax.set_xscale("log")
    ax.set_xlabel("sampling time per 100 samples (s, log scale)")
    ax.set_ylabel(label)
    ax.set_title("quality against sampling speed")
    ax.grid(alpha=0.3)
    return _png(fig)


def _cell(entry: dict[str, Any] | None, decimals: int, unit: float) -> str:
    if entry is None:
        return "–"
    text = f"{entry['mean'] / unit:.{decimals}f}"
    if len(entry["values"]) > 1:
        text += f" ± {entry['std'] / unit:.{decimals}f}"
    return text


def table_html(models: dict[str, dict[str, Any]], columns: tuple = COLUMNS) -> str:
    head = "".join(f"<th>{html.escape(title)}</th>" for _, title, _, _ in columns)
    rows = []
    for name, s in models.items():
        status = s["status"] if s["status"] != "partial" else f"{s['repeats_ok']}/{s['repeats']} ok"
        kind = f" ({s['nll_kind']})" if s["nll_kind"] else ""
        cells = []
        for key, _, decimals, unit in columns:
            cell = _cell(s["metrics"].get(key), decimals, unit)
            cells.append(f"<td>{cell}{kind if key == 'nll' and cell != '–' else ''}</td>")
        css = ' class="failed"' if s["status"] == "failed" else ""
        rows.append(
            f'<tr{css} data-model="{html.escape(name)}"><td>{html.escape(name)}</td>'
            f"<td>{html.escape(s['family'])}</td><td>{html.escape(status)}</td>{''.join(cells)}</tr>"
        )
    return (
        '<table id="results"><thead><tr><th>model</th><th>family</th><th>status</th>'
        f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


SAMPLE_NOTE = (
    "<p>Mean ± standard deviation over repeats. NLL in nats per example on the test split (its kind "
    "in brackets); FID/KID/precision/recall/coverage in the features of <code>{features}</code>; "
    "memorized = share of samples closer to a training example than 95% of training examples are to "
    "each other. Timings vary between runs; the metrics repeat exactly for the same step counts and "
    "seeds.</p>"
)
TABLE_NOTE = (
    "<p>Mean ± standard deviation over repeats. quality = SDMetrics-style quality score, the mean of "
    "column shapes (how alike each column's distribution is) and pair trends (how alike the columns' "
    "correlations are), 1 is best; detection AUC = how well a classifier tells the training rows from "
    "as many synthetic ones (0.5 is best); ML efficacy = the score of a model trained on synthetic "
    "rows, as a share of one trained on the real training rows, both tested on the real {split} rows "
    "(1 is par); DCR share = share of synthetic rows closer to a training row than to a {split} row "
    "(0.5 is ideal, 1 = copying); exact copies = share of synthetic rows equal to a training row; MIA "
    "AUC = a distance-based membership-inference attack (0.5 = no leak). Timings vary between runs; "
    "the metrics repeat exactly for the same step counts and seeds.</p>"
)


def write_report(
    results: dict[str, Any], previews: dict[str, Any], path: Path, *, real_rows: np.ndarray | None = None
) -> None:
    """Write index.html from results.json's content and each run's preview (run_dir -> samples, or a
    table's first rows). `real_rows`: a table's training rows, encoded as the dataset holds them,
    against which each model's synthetic CSV is plotted column by column."""
    models, config, rec = results["models"], results["config"], results["recommendation"]
    data = {k: v for k, v in results["data"].items() if k != "split"}
    info = DataInfo(**{**data, "shape": tuple(data["shape"])})
    is_table = info.modality == "table"
    first_ok = {}
    for r in results["runs"]:
        if r["status"] == "ok" and r["model"] not in first_ok:
            first_ok[r["model"]] = r
    run_dirs = {m: Path(r["run_dir"]) for m, r in first_ok.items()}
    esc = html.escape
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>genzoo compare: {esc(config['data'])}</title>{STYLE}{CHECK_SCRIPT}</head><body>",
        f"<h1>genzoo compare on <code>{esc(config['data'])}</code></h1>",
        f"<p>{len(models)} models, {config['repeats']} repeat(s) from seed {config['seed']}, "
        + (
            f"{config['max_steps']} steps each"
            if config["max_steps"]
            else f"{config['time_budget']:.0f} s of training per run"
        )
        + f"; metrics on the {esc(config['split'])} split"
        + ("" if is_table else f" with {config['num_samples']} samples")
        + (f" (NLL on its first {config['nll_examples']} examples)" if config.get("nll_examples") else "")
        + "; "
        f"{results['total_seconds']:.0f} s in all.</p>",
        "<h2>Recommendation</h2>",
        f"<p class='pick' id='pick'>{esc(rec['summary'])}</p><ol id='ranking'>",
    ]
    for r in rec["ranking"]:
        parts.append(f"<li><b>{esc(r['model'])}</b>: {esc('; '.join(r['reasons']) or 'no notes')}</li>")
    parts += ["</ol>", "<h2>Results</h2>"]
    if is_table:
        parts += [table_html(models, TABLE_REPORT_COLUMNS), TABLE_NOTE.format(split=esc(config["split"]))]
        parts += _table_sections(first_ok, previews, info, real_rows)
        tradeoff = tradeoff_png(models, "quality_score", "quality score (higher is better)")
    else:
        parts += [table_html(models), SAMPLE_NOTE.format(features=esc(_feature_extractor(results)))]
        parts += _sample_section(run_dirs, previews, info)
        tradeoff = tradeoff_png(models)
    for title, png in (
        ("Training curves", curves_png(run_dirs)),
        ("Quality against sampling speed", tradeoff),
    ):
        if png:
            parts.append(f"<h2>{title}</h2><img alt='{title}' src='data:image/png;base64,{png}'>")
    parts.append("<h2>Per-family notes</h2><dl id='notes'>")
    family_notes = {**FAMILY_NOTES, **TABLE_FAMILY_NOTES} if is_table else FAMILY_NOTES
    for name, s in models.items():
        said = notes(name, models)
        if s.get("time_capped"):
            said.append("stopped at its time cap before the planned steps: its numbers depend on the machine")
        parts.append(
            f"<dt><b>{esc(name)}</b> ({esc(s['family'])})</dt><dd>{esc(family_notes.get(s['family'], ''))}"
            + "".join(f"<br>• {esc(n)}" for n in said)
            + "</dd>"
        )
    parts.append("</dl></body></html>")
    path.write_text("\n".join(parts))


def _sample_section(run_dirs: dict[str, Path], previews: dict[str, Any], info: DataInfo) -> list[str]:
    """A grid (or scatter plot) of each model's preview samples."""
    parts = ["<h2>Samples</h2><div class='grids' id='samples'>"]
    for model, run_dir in run_dirs.items():
        preview = previews.get(str(run_dir))
        png = sample_grid_png(torch.tensor(np.asarray(preview, dtype=np.float32)), info) if preview else None
        if png:
            parts.append(
                f"<figure class='sample-grid' data-model='{html.escape(model)}'><img class='pixelated' "
                f"alt='samples of {html.escape(model)}' src='data:image/png;base64,{png}'>"
                f"<figcaption>{html.escape(model)}</figcaption></figure>"
            )
    parts.append("</div>")
    return parts


def _table_sections(
    runs: dict[str, dict[str, Any]], previews: dict[str, Any], info: DataInfo, real_rows: np.ndarray | None
) -> list[str]:
    """Per model: its columns against the real ones, its column associations against theirs (from
    the run's synthetic CSV), and its first synthetic rows."""
    from genzoo.data.tabular import TableSchema
    from genzoo.report.tables import columns_figure, pairs_figure, plotted_columns, read_synthetic

    esc = html.escape
    schema = TableSchema.from_json(info.table or "")
    scores = {m: r.get("metrics", {}).get("column_scores") or {} for m, r in runs.items()}
    columns = plotted_columns(schema, list(scores.values()))
    which = "every column" if len(columns) == len(schema.columns) else "the columns matched worst"
    parts = [
        "<h2>Synthetic rows against real ones</h2>",
        f"<p>Per model, {which}: real training rows in blue, the model's synthetic rows in orange, with "
        "each column's shape score in brackets (1 = the same distribution). Then how the columns go "
        "together: Pearson's r for two numbers, Cramér's V otherwise, in the real rows, the synthetic "
        "ones and their absolute difference.</p><div id='tables'>",
    ]
    _pyplot()  # the Agg backend, before report.tables draws
    for model, run in runs.items():
        parts.append(f"<section class='table-model' data-model='{esc(model)}'><h3>{esc(model)}</h3>")
        if real_rows is not None and run.get("synthetic_csv"):
            synthetic = read_synthetic(Path(run["run_dir"]) / run["synthetic_csv"], schema)
            figures = {
                "table-columns": (
                    "columns",
                    columns_figure(real_rows, synthetic, schema, columns, scores[model]),
                ),
                "table-pairs": ("column associations", pairs_figure(real_rows, synthetic, schema, columns)),
            }
            for css, (what, fig) in figures.items():
                if fig is not None:
                    parts.append(
                        f"<figure class='{css}' data-model='{esc(model)}'><img alt='{what} of {esc(model)}' "
                        f"src='data:image/png;base64,{_png(fig)}'><figcaption>{what}: real against "
                        f"{esc(model)}</figcaption></figure>"
                    )
        rows = previews.get(run["run_dir"])
        if rows:
            parts.append(
                f"<details><summary>first {len(rows)} synthetic rows</summary>{_rows_html(rows)}</details>"
            )
        parts.append("</section>")
    return parts + ["</div>"]


def _rows_html(rows: list[dict[str, Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(k))}</th>" for k in rows[0])
    body = "".join(
        "<tr>"
        + "".join(f"<td>{'' if v is None else html.escape(str(v))}</td>" for v in row.values())
        + "</tr>"
        for row in rows
    )
    return f"<table class='rows'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _feature_extractor(results: dict[str, Any]) -> str:
    for r in results["runs"]:
        name = r.get("metrics", {}).get("feature_extractor")
        if name:
            return name
    return "none"

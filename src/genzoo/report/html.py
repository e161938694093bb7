"""The compare report as one self-contained HTML file: every picture is an inline base64 PNG drawn
with matplotlib (or Pillow for sample grids), so index.html opens from disk, mailed or archived,
without a server or the run directories next to it.

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
# Columns of the results table: (summary key, header, decimals, unit the values are divided by).
COLUMNS = (
    ("nll", "NLL (nats)", 2, 1),
    ("fid", "FID", 2, 1),
    ("kid", "KID", 3, 1),
    ("precision", "precision", 3, 1),
    ("recall", "recall", 3, 1),
    ("coverage", "coverage", 3, 1),
    ("classes_hit", "classes hit", 1, 1),
    ("memorized_share", "memorized", 3, 1),
    ("train_seconds", "train s", 0, 1),
    ("sample_seconds_per_100", "sample s / 100", 3, 1),
    ("params", "params (k)", 0, 1000),
    ("peak_memory_mb", "peak MB", 0, 1),
    ("steps_done", "steps", 0, 1),
)
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


def tradeoff_png(models: dict[str, dict[str, Any]]) -> str | None:
    """FID against sampling time per 100 samples (log scale), with the spread over repeats."""
    points = {
        m: (s["metrics"]["sample_seconds_per_100"], s["metrics"]["fid"])
        for m, s in models.items()
        if "fid" in s["metrics"] and "sample_seconds_per_100" in s["metrics"]
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
    ax.set_ylabel("FID (lower is better)")
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


def table_html(models: dict[str, dict[str, Any]]) -> str:
    head = "".join(f"<th>{html.escape(title)}</th>" for _, title, _, _ in COLUMNS)
    rows = []
    for name, s in models.items():
        status = s["status"] if s["status"] != "partial" else f"{s['repeats_ok']}/{s['repeats']} ok"
        kind = f" ({s['nll_kind']})" if s["nll_kind"] else ""
        cells = []
        for key, _, decimals, unit in COLUMNS:
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


def write_report(results: dict[str, Any], previews: dict[str, Any], path: Path) -> None:
    """Write index.html from results.json's content and each run's preview samples (run_dir -> list)."""
    models, config, rec = results["models"], results["config"], results["recommendation"]
    data = {k: v for k, v in results["data"].items() if k != "split"}
    info = DataInfo(**{**data, "shape": tuple(data["shape"])})
    first_ok = {}
    for r in results["runs"]:
        if r["status"] == "ok" and r["model"] not in first_ok:
            first_ok[r["model"]] = Path(r["run_dir"])
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
        + f"; metrics on the {esc(config['split'])} split with {config['num_samples']} samples"
        + (f" (NLL on its first {config['nll_examples']} examples)" if config.get("nll_examples") else "")
        + "; "
        f"{results['total_seconds']:.0f} s in all.</p>",
        "<h2>Recommendation</h2>",
        f"<p class='pick' id='pick'>{esc(rec['summary'])}</p><ol id='ranking'>",
    ]
    for r in rec["ranking"]:
        parts.append(f"<li><b>{esc(r['model'])}</b>: {esc('; '.join(r['reasons']) or 'no notes')}</li>")
    parts += ["</ol>", "<h2>Results</h2>", table_html(models)]
    parts.append(
        "<p>Mean ± standard deviation over repeats. NLL in nats per example on the test split (its kind "
        "in brackets); FID/KID/precision/recall/coverage in the features of "
        f"<code>{esc(_feature_extractor(results))}</code>; memorized = share of samples closer to a training "
        "example than 95% of training examples are to each other. Timings vary between runs; the metrics "
        "repeat exactly for the same step counts and seeds.</p>"
    )
    parts.append("<h2>Samples</h2><div class='grids' id='samples'>")
    for model, run_dir in first_ok.items():
        preview = previews.get(str(run_dir))
        png = sample_grid_png(torch.tensor(np.asarray(preview, dtype=np.float32)), info) if preview else None
        if png:
            parts.append(
                f"<figure class='sample-grid' data-model='{esc(model)}'><img class='pixelated' "
                f"alt='samples of {esc(model)}' src='data:image/png;base64,{png}'>"
                f"<figcaption>{esc(model)}</figcaption></figure>"
            )
    parts.append("</div>")
    for title, png in (
        ("Training curves", curves_png(first_ok)),
        ("Quality against sampling speed", tradeoff_png(models)),
    ):
        if png:
            parts.append(f"<h2>{title}</h2><img alt='{title}' src='data:image/png;base64,{png}'>")
    parts.append("<h2>Per-family notes</h2><dl id='notes'>")
    for name, s in models.items():
        said = notes(name, models)
        if s.get("time_capped"):
            said.append("stopped at its time cap before the planned steps: its numbers depend on the machine")
        parts.append(
            f"<dt><b>{esc(name)}</b> ({esc(s['family'])})</dt><dd>{esc(FAMILY_NOTES.get(s['family'], ''))}"
            + "".join(f"<br>• {esc(n)}" for n in said)
            + "</dd>"
        )
    parts.append("</dl></body></html>")
    path.write_text("\n".join(parts))


def _feature_extractor(results: dict[str, Any]) -> str:
    for r in results["runs"]:
        name = r.get("metrics", {}).get("feature_extractor")
        if name:
            return name
    return "none"

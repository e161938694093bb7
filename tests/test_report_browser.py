"""The compare report renders in headless Chromium: the table, every sample grid, no script errors.

Chromium comes from `make chromium` (tests/install_chromium.sh unpacks Debian's package into
.venv/chromium); if it is missing, this test runs that script once itself, and skips only when
Chromium truly cannot be installed here (no apt-get, no mirror), saying why.
"""

from __future__ import annotations

import json
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
import torch
from browser import find_chromium

from genzoo.report.compare import summarize
from genzoo.report.html import write_report
from genzoo.report.recommend import recommend


@pytest.fixture(scope="module")
def chromium() -> str:
    path, why = find_chromium()
    if path is None:
        pytest.skip(why)
    return path


def report(tmp_path: Path) -> Path:
    """A report of three models on digits, one failed, two repeats each: built without training."""
    records, previews = [], {}
    for model in ("vae", "dcgan", "realnvp"):
        for seed in (0, 1):
            run_dir = tmp_path / "runs" / model / f"seed{seed}"
            run_dir.mkdir(parents=True)
            if model == "realnvp":
                records.append({"model": model, "seed": seed, "status": "failed", "reason": "out of memory"})
                records[-1]["run_dir"] = str(run_dir)
                continue
            log = [{"step": s, "loss": 100.0 / s} for s in (10, 20, 30)] + [{"step": 30, "val_loss": 4.0}]
            (run_dir / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in log))
            gen = torch.Generator().manual_seed(seed)
            previews[str(run_dir)] = (torch.rand(64, 1, 8, 8, generator=gen) * 16).tolist()
            metrics = {
                "fid": 10.0 + seed + (model == "dcgan") * 5,
                "kid": 1.0,
                "recall": 0.5,
                "coverage": 0.4,
            }
            if model == "vae":
                metrics["nll"] = 90.0 - seed
            records.append(
                {
                    "model": model,
                    "seed": seed,
                    "status": "ok",
                    "run_dir": str(run_dir),
                    "train_seconds": 60.0,
                    "sample_seconds_per_100": 0.01 if model == "dcgan" else 0.2,
                    "metrics": {**metrics, "feature_extractor": "domain-classifier-digits"},
                }
            )
    models = summarize(records, num_classes=10)
    results = {
        "schema": "genzoo.compare/1",
        "config": {
            "data": "digits",
            "repeats": 2,
            "seed": 0,
            "max_steps": 0,
            "time_budget": 60.0,
            "split": "test",
            "num_samples": 1000,
        },
        "data": {
            "name": "digits",
            "modality": "image",
            "shape": [1, 8, 8],
            "levels": 17,
            "low": 0.0,
            "high": 16.0,
            "num_classes": 10,
            "split": "test",
        },  # fmt: skip
        "models": models,
        "runs": records,
        "recommendation": recommend(models, "quality"),
        "total_seconds": 1.0,
    }
    path = tmp_path / "index.html"
    write_report(results, previews, path)
    return path


class Page(HTMLParser):
    """What the test looks for in the DOM Chromium dumps."""

    def __init__(self):
        super().__init__()
        self.body: dict[str, str] = {}
        self.tables: list[str] = []
        self.rows: list[str] = []
        self.grids: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        if tag == "body":
            self.body = a
        elif tag == "table":
            self.tables.append(a.get("id", ""))
        elif tag == "tr" and "data-model" in a:
            self.rows.append(a["data-model"])
        elif tag == "figure" and "sample-grid" in a.get("class", ""):
            self.grids.append(a["data-model"])


def test_report_renders_in_headless_chromium(chromium, tmp_path):
    path = report(tmp_path)
    assert "http" not in re.sub(r"<a [^>]*>", "", path.read_text())  # nothing fetched from elsewhere
    done = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
         "--dump-dom", path.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    page = Page()
    page.feed(done.stdout)
    assert "results" in page.tables
    assert page.rows == ["vae", "dcgan", "realnvp"]
    assert page.grids == ["vae", "dcgan"]  # every model that trained; the failed one has none
    # The page's own check ran after load: every image decoded, no script error.
    images = int(page.body["data-images"])
    assert images == 2 + 2  # two sample grids, the training curves and the quality/speed plot
    assert page.body["data-images-ok"] == str(images)
    assert page.body["data-errors"] == ""
    assert "For quality, pick vae" in done.stdout and "failed: out of memory" in done.stdout

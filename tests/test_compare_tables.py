"""`genzoo compare` on a table: the table metrics per model in results.json, a recommendation argued
from them, a report with per-column plots and association heatmaps, and evaluation reused on rerun."""

from __future__ import annotations

import base64
import io
import json
import math
import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import genzoo
from genzoo.cli import main
from genzoo.data.base import DataInfo
from genzoo.models import get_model_class
from genzoo.report.compare import EVAL_MARKER, SYNTHETIC_ROWS, metric_names
from genzoo.report.recommend import rank, recommend

N_ROWS = 300
MODELS = ("gaussian-copula", "tvae")
FAST = dict(max_steps=30, threads=1, quiet=True, isolate=False, data_options={"target": "label"})


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> str:
    """Age and an income that grows with it (10% missing), a colour with a rare 'violet' (5% missing),
    a yes/no owner that follows age, and a label decided by income and colour."""
    rng = np.random.default_rng(0)
    age = rng.integers(18, 80, N_ROWS)
    income = np.round(20_000 + 800 * age + rng.normal(0, 8_000, N_ROWS), 2)
    income[rng.random(N_ROWS) < 0.1] = np.nan
    color = rng.choice(["red", "blue", "green", "violet"], N_ROWS, p=[0.5, 0.3, 0.15, 0.05]).astype(object)
    color[rng.random(N_ROWS) < 0.05] = None
    owner = np.where(age + rng.normal(0, 10, N_ROWS) > 45, "yes", "no")
    label = np.where((income > 55_000) | (color == "red"), "high", "low")
    frame = pd.DataFrame({"age": age, "income": income, "color": color, "owner": owner, "label": label})
    path = tmp_path_factory.mktemp("table") / "people.csv"
    frame.to_csv(path, index=False)
    return str(path)


@pytest.fixture(scope="module")
def compared(table, tmp_path_factory):
    out = tmp_path_factory.mktemp("compare") / "report"
    return out, genzoo.compare(table, ",".join(MODELS), out, **FAST)


def in_range(entry: dict, low: float, high: float) -> bool:
    return all(math.isfinite(v) and low <= v <= high for v in entry["values"])


def test_results_hold_the_table_metrics_of_every_model(compared):
    out, results = compared
    on_disk = json.loads((out / "results.json").read_text())
    assert set(on_disk["models"]) == set(MODELS)
    for name, summary in on_disk["models"].items():
        metrics = summary["metrics"]
        assert summary["status"] == "ok" and summary["output"] == "table", name
        assert not {"nll", "fid", "kid", "coverage"} & set(metrics), name
        for key in (
            "quality_score",
            "column_shapes",
            "column_pair_trends",
            "detection_auc",
            "detection_score",
        ):
            assert in_range(metrics[key], 0.0, 1.0), (name, key)
        for key in ("dcr_share", "exact_copy_rate", "mia_auc", "real_score", "synthetic_score"):
            assert in_range(metrics[key], 0.0, 1.0), (name, key)
        assert in_range(metrics["ml_efficacy"], 0.0, 2.0), name
        assert metrics["quality_score"]["std"] == 0.0 and len(metrics["quality_score"]["values"]) == 1
        assert summary["ml_metric"] == {"metric": "f1", "target": "label"}
    # The copula fits the marginals and correlations outright; 30 TVAE steps do not come close.
    copula, tvae = (on_disk["models"][m]["metrics"] for m in MODELS)
    assert copula["quality_score"]["mean"] > 0.85 and copula["detection_auc"]["mean"] < 0.7
    assert copula["quality_score"]["mean"] > tvae["quality_score"]["mean"]
    for run in on_disk["runs"]:
        assert set(run["metrics"]["column_scores"]) == {"age", "income", "color", "owner", "label"}
        synthetic = pd.read_csv(out / "runs" / run["model"] / "seed0" / run["synthetic_csv"])
        assert list(synthetic.columns) == ["age", "income", "color", "owner", "label"]
        assert len(synthetic) == SYNTHETIC_ROWS and synthetic["income"].isna().any()


def test_preview_rows_are_strict_json(compared):
    out, _ = compared

    def refuse(constant: str):
        raise AssertionError(f"{constant} in {EVAL_MARKER}")

    for model in MODELS:
        evaluated = json.loads(
            (out / "runs" / model / "seed0" / EVAL_MARKER).read_text(), parse_constant=refuse
        )
        rows = evaluated["preview"]
        assert len(rows) == 10 and set(rows[0]) == {"age", "income", "color", "owner", "label"}
        assert all(isinstance(r["owner"], bool) for r in rows)  # yes/no decoded as a boolean


def test_recommendation_argues_from_table_metrics(compared):
    _, results = compared
    rec = results["recommendation"]
    assert rec["pick"] == "gaussian-copula" and "quality score" in rec["summary"]
    for entry in rec["ranking"]:
        said = " ".join(entry["reasons"])
        assert "detection AUC" in said and "privacy" in said and "of the f1 on 'label'" in said, said


def test_report_embeds_column_plots_and_heatmaps(compared):
    out, _ = compared
    page = (out / "index.html").read_text()
    header = re.search(r'<table id="results">.*?</thead>', page).group(0)
    assert "quality" in header and "detection AUC" in header and "FID" not in header
    for model in MODELS:
        for css in ("table-columns", "table-pairs"):
            found = re.search(
                rf"<figure class='{css}' data-model='{model}'><img [^>]*src='data:image/png;base64,([^']+)'",
                page,
            )
            assert found, (css, model)
            image = Image.open(io.BytesIO(base64.b64decode(found.group(1))))
            assert image.width > 300 and image.height > 150, (css, model)
        assert f"<section class='table-model' data-model='{model}'>" in page
    assert "first 10 synthetic rows" in page and "Quality against sampling speed" in page


def test_rerun_reuses_the_evaluation_until_its_csv_is_gone(compared, table):
    out, first = compared
    marker = out / "runs" / "tvae" / "seed0" / EVAL_MARKER
    stamp = marker.stat().st_mtime_ns
    again = genzoo.compare(table, ",".join(MODELS), out, **FAST)
    assert marker.stat().st_mtime_ns == stamp
    assert (
        again["models"]["tvae"]["metrics"]["quality_score"]
        == first["models"]["tvae"]["metrics"]["quality_score"]
    )
    (out / "runs" / "tvae" / "seed0" / "synthetic.csv").unlink()
    third = genzoo.compare(table, ",".join(MODELS), out, **FAST)
    assert (out / "runs" / "tvae" / "seed0" / "synthetic.csv").is_file()
    # Evaluated again from the same seed: the same numbers.
    assert (
        third["models"]["tvae"]["metrics"]["quality_score"]
        == first["models"]["tvae"]["metrics"]["quality_score"]
    )


def test_cli_compares_a_csv_without_a_target(table, tmp_path, capsys):
    out = tmp_path / "cli"
    args = ["compare", "--data", table, "--models", "gaussian-copula", "--max-steps", "1", "--out", str(out)]
    assert main([*args, "--threads", "1", "--quiet"]) == 0
    assert "pick gaussian-copula" in capsys.readouterr().out
    summary = json.loads((out / "results.json").read_text())["models"]["gaussian-copula"]
    assert "quality_score" in summary["metrics"] and "ml_efficacy" not in summary["metrics"]
    assert "peak_memory_mb" in summary["metrics"]  # trained in a worker process of its own


def test_metric_names_follow_the_declared_output():
    image = DataInfo(
        name="digits", modality="image", shape=(1, 8, 8), levels=17, low=0, high=16, num_classes=10
    )
    assert metric_names(get_model_class("vae"), image)[0] == "nll"
    assert "classes" in metric_names(get_model_class("vae"), image)
    schema = '{"columns": [{"name": "a", "kind": "continuous"}], "target": %s}'
    table = DataInfo(
        name="t", modality="table", shape=(1,), levels=None, low=0, high=1, table=schema % "null"
    )
    assert metric_names(get_model_class("tvae"), table) == ["quality", "detection", "privacy"]
    targeted = DataInfo(**{**table.to_dict(), "table": schema % '"a"'})
    assert metric_names(get_model_class("ctgan"), targeted)[-1] == "ml_efficacy"


def summary(status="ok", **metrics):
    """A table model's summary as compare writes it; a metric given as (mean, std) has that spread."""
    entries = {}
    for key, value in metrics.items():
        mean, std = value if isinstance(value, tuple) else (value, 0.0)
        entries[key] = {"mean": mean, "std": std, "values": [mean] if std == 0 else [mean - std, mean + std]}
    return {"family": "x", "output": "table", "nll_kind": None, "status": status, "metrics": entries}


def test_table_ranking_rules():
    fair = dict(detection_auc=0.55, detection_score=0.9, dcr_share=0.5, exact_copy_rate=0.0, mia_auc=0.5)
    models = {
        "copier": summary(
            quality_score=0.9, column_shapes=0.8, **{**fair, "dcr_share": 0.9, "exact_copy_rate": 0.2}
        ),
        "tie": summary(quality_score=0.8, column_shapes=0.95, **{**fair, "detection_score": 0.5}),
        "fair": summary(
            quality_score=0.8,
            column_shapes=0.9,
            ml_efficacy=0.9,
            real_score=0.8,
            synthetic_score=0.72,
            **fair,
        ),  # fmt: skip
        "broken": summary(status="failed"),
    }
    ranked = rank(models, "quality")
    assert [r.model for r in ranked] == ["copier", "fair", "tie", "broken"]  # detection breaks the tie
    copier, fair_ranked = ranked[0].reasons, ranked[1].reasons
    assert copier[0].startswith("highest quality score: 0.9, against 0.8 for fair")
    assert any(r.startswith("privacy risk") and "90%" in r and "20.0%" in r for r in copier)
    assert any(r.startswith("privacy: its rows are no closer") for r in fair_ranked)
    assert any("reaches 90% of the score" in r for r in fair_ranked)
    assert any("hard to tell from real ones" in r for r in fair_ranked)
    assert [r.model for r in rank(models, "diversity")][0] == "tie"  # the best column shapes
    assert recommend(models, "likelihood")["pick"] is None  # no table model has a likelihood

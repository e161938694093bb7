"""`genzoo forecast`, series samples and the rolling-origin backtest: end to end on a small CSV, against
known answers, and every mistake a user can make as exit code 2 and one line."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from test_bad_inputs import assert_user_error

import genzoo
from genzoo.apps.forecast import backtest, parse_quantiles, rolling_origins, season_for
from genzoo.cli import main
from genzoo.data import load_dataset
from genzoo.errors import GenzooError

HORIZON = 6


def monthly_csv(path, months: int = 120, start: str = "2010-01-01"):
    """A seasonal series with a trend (level ~100, so units are not the scaled 0..1)."""
    rng = np.random.default_rng(0)
    t = np.arange(months)
    value = 100 + 0.5 * t + 10 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 1, months)
    dates = pd.date_range(start, periods=months, freq="MS")
    pd.DataFrame({"date": dates.strftime("%Y-%m-%d"), "sales": value}).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("forecast")
    csv = monthly_csv(folder / "sales.csv")
    out = folder / "run"
    settings = {"max_steps": 60, "eval_every": 60, "data.window": 24, "context": 18, "preview_samples": 0}
    genzoo.train("deepar", csv, out, settings, quiet=True)
    return out, csv


def test_forecast_writes_ordered_quantiles_in_the_series_units_and_a_fan_chart(run, tmp_path):
    out_dir, csv = run
    out = tmp_path / "fc.csv"
    assert main([
        "forecast", str(out_dir), "--data", str(csv), "--horizon", str(HORIZON), "--out", str(out),
        "--quantiles", "0.9,0.1,0.5", "--samples", "50", "--quiet",
    ]) == 0  # fmt: skip
    frame = pd.read_csv(out, parse_dates=["time"])
    assert len(frame) == HORIZON and list(frame.columns[-3:]) == ["q0.1", "q0.5", "q0.9"]
    assert (frame["q0.1"] <= frame["q0.5"]).all() and (frame["q0.5"] <= frame["q0.9"]).all()
    # The months after the last one in the file, in the file's units (the series ends near 160).
    assert frame["time"].iloc[0] == pd.Timestamp("2020-01-01")
    assert frame["time"].iloc[-1] == pd.Timestamp("2020-06-01")
    assert 100 < frame["q0.5"].mean() < 220
    assert (tmp_path / "fc_fan.png").stat().st_size > 1000


def test_forecast_is_seeded_and_json_lists_the_rows(run, capsys):
    out_dir, csv = run
    a = genzoo.forecast(out_dir, csv, horizon=3, samples=20, seed=1, quiet=True)
    b = genzoo.forecast(out_dir, csv, horizon=3, samples=20, seed=1, quiet=True)
    c = genzoo.forecast(out_dir, csv, horizon=3, samples=20, seed=2, quiet=True)
    assert a.frame.equals(b.frame) and not a.frame.equals(c.frame)
    assert a.paths["sales"].shape == (20, 3, 1)
    capsys.readouterr()
    assert main(["forecast", str(out_dir), "--horizon", "2", "--samples", "10", "--json", "--quiet"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["horizon"] == 2 and len(payload["forecast"]) == 2


def test_sample_writes_windows_in_the_series_units(run, tmp_path):
    out_dir, csv = run
    values = pd.read_csv(csv)["sales"]
    windows = genzoo.sample(out_dir, 8, out=tmp_path / "w.csv", quiet=True)
    assert windows.shape == (8, 24, 1)
    assert values.min() - 40 < float(windows.mean()) < values.max() + 40  # unscaled, not 0..1
    frame = pd.read_csv(tmp_path / "w.csv")
    assert list(frame.columns) == ["window", "step", "sales"] and len(frame) == 8 * 24
    genzoo.sample(out_dir, 8, out=tmp_path / "w.npy", quiet=True)
    assert np.allclose(np.load(tmp_path / "w.npy"), windows.numpy(), atol=1e-3)


def test_backtest_and_evaluate_score_the_test_part(run):
    out_dir, csv = run
    model = genzoo.load(out_dir)
    data = load_dataset(csv, prefer=("series",), window=24)
    report = backtest(model, data.series, data.test_start, horizon=HORIZON, samples=30)
    row = report["series"]["sales"]
    assert row["origins"] == len(rolling_origins(120, data.test_start["sales"], HORIZON)) == 7
    assert 0 <= row["coverage"] <= 1 and row["crps"] > 0 and report["season"] == 12
    result = genzoo.evaluate(out_dir, metrics=["crps", "coverage", "mase"], quiet=True)
    assert result["horizon"] == model.max_horizon() == 6 and result["crps"] > 0


def test_known_answers_of_the_helpers():
    assert season_for("MS") == 12 and season_for("QS-OCT") == 4 and season_for("YS-JAN") == 1
    assert season_for(None) == 1 and season_for("h") == 24
    assert parse_quantiles("0.9, 0.1,0.5,0.1") == (0.1, 0.5, 0.9)
    assert rolling_origins(20, 15, 3) == [15, 16, 17]
    with pytest.raises(GenzooError, match="fewer than the horizon"):
        rolling_origins(20, 18, 3)


# ---- mistakes: exit 2, one line, files untouched --------------------------------------------------
@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--horizon", "7"], "--horizon must be 1..6"),
        (["--horizon", "0"], "--horizon must be 1..6"),
        (["--horizon", "2", "--quantiles", "0.5,1.2"], "strictly between 0 and 1"),
        (["--horizon", "2", "--quantiles", "median"], "must be numbers"),
        (["--horizon", "2", "--samples", "1"], "--samples must be 2.."),
        (["--horizon", "2", "--out", "fc.png"], "must be a .csv file"),
    ],
)
def test_bad_options(run, capsys, extra, fragment):
    out_dir, csv = run
    assert_user_error(
        capsys, ["forecast", str(out_dir), "--data", str(csv), *extra], fragment, [out_dir, csv]
    )


def test_bad_series_files(run, capsys, tmp_path):
    out_dir, csv = run
    frame = pd.read_csv(csv)
    other = tmp_path / "other.csv"
    frame.rename(columns={"sales": "units"}).to_csv(other, index=False)
    assert_user_error(capsys, ["forecast", str(out_dir), "--data", str(other), "--horizon", "2"],
                      "has no column 'sales'", [out_dir, other])  # fmt: skip
    unsorted = tmp_path / "unsorted.csv"
    frame.iloc[::-1].to_csv(unsorted, index=False)
    assert_user_error(capsys, ["forecast", str(out_dir), "--data", str(unsorted), "--horizon", "2"],
                      "not sorted by time", [out_dir, unsorted])  # fmt: skip
    short = tmp_path / "short.csv"
    frame.iloc[:5].to_csv(short, index=False)
    assert_user_error(capsys, ["forecast", str(out_dir), "--data", str(short), "--horizon", "2"],
                      "needs at least 18", [out_dir, short])  # fmt: skip


def test_a_model_that_does_not_forecast_says_so(tmp_path, capsys):
    out = tmp_path / "vae"
    genzoo.train("vae", "toy2d-ring", out, {"max_steps": 2, "preview_samples": 0}, quiet=True)
    assert_user_error(capsys, ["forecast", str(out), "--horizon", "2"], "does not forecast", [out])


def test_series_models_refuse_other_data():
    with pytest.raises(GenzooError, match="handles time series"):
        genzoo.get_model_class("deepar").for_data(load_dataset("digits").info)

"""Probabilistic forecasts on rolling origins: genzoo's forecasters beside statsforecast's AutoETS,
AutoARIMA and SeasonalNaive, on the same series, origins and horizons, in one run.

    python benchmarks/forecasting.py [--series co2 sunspots nile elnino] [--steps N] [--reuse]
                                     [--work runs/bench-forecasting] [--quick]

The series (statsmodels.datasets, as `genzoo.data.series` registers them): `co2` (Mauna Loa,
monthly means, 526 months), `sunspots` (yearly, 309 years), `nile` (yearly flow, 100 years),
`elnino` (monthly sea temperature, 732 months). Each is split chronologically 80/10/10 (the scaler
and every model see only the first 90% at the first origin). The protocol (`genzoo.apps.forecast`):
from every origin t in the test part (the last 10%) that leaves a whole horizon, forecast steps
t..t+H-1 from steps 0..t-1; H = 12 for monthly series, 5 for yearly ones. Every model is refitted or
re-conditioned at each origin on the history up to it:

- genzoo `deepar` (trained once per series on windows of its training part: context + H steps) draws
  200 sample paths per origin;
- statsforecast's AutoETS, AutoARIMA (season 12 for monthly data) and SeasonalNaive are refitted at each
  origin; their predictive distribution is the Gaussian their 80% interval implies, drawn 2000 times
  so that one scoring function (`forecast_metrics`) scores every model alike.

Metrics per series (means over origins): MASE of the median, sMAPE, CRPS (series units), scaled CRPS
(CRPS over the in-sample seasonal-naive MAE) and 80% interval coverage; over series, the geometric
means of MASE and scaled CRPS. Goal (issue 26): genzoo's best forecaster at or below AutoETS's
geometric-mean scaled CRPS, coverage within 5 points of 80%.
Results: benchmarks/results/forecasting.json, and forecasting_co2.csv with its fan chart
forecasting_co2_fan.png (`genzoo forecast` a year past the end of co2).
"""

from __future__ import annotations

import argparse
import json
import math
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from common import RESULTS, logged_train_seconds, save, train_unless_reused

from genzoo.apps.forecast import backtest, forecast, geometric_mean, rolling_origins, season_for
from genzoo.data import load_dataset
from genzoo.metrics.timeseries import forecast_metrics
from genzoo.models import load
from genzoo.models.deepar import DeepAR

NAME = "forecasting"
SERIES = ("co2", "sunspots", "nile", "elnino")
HORIZON = {"MS": 12, "YS-JAN": 5}  # by frequency: a year ahead for monthly data, five years for yearly
# DeepAR's preset by frequency (`genzoo list --presets`): its window is the context read plus HORIZON.
PRESET = {"MS": "monthly", "YS-JAN": "yearly"}
PEERS = ("AutoETS", "AutoARIMA", "SeasonalNaive")
PEER_DRAWS = 2000
Z80 = 1.2815515655446004  # the standard normal's 90% quantile: an 80% central interval is mean +- Z80 sd


def peer_forecasts(name: str, values: np.ndarray, origins: list[int], horizon: int, season: int) -> list:
    """Per origin, `PEER_DRAWS` Gaussian draws (S, H, 1) of the model refitted on values[:t]."""
    from statsforecast.models import AutoARIMA, AutoETS, SeasonalNaive

    make = {"AutoETS": AutoETS, "AutoARIMA": AutoARIMA, "SeasonalNaive": SeasonalNaive}[name]
    rng = np.random.default_rng(0)
    draws = []
    for t in origins:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = make(season_length=season).forecast(y=values[:t, 0], h=horizon, level=[80])
        mean, high = np.asarray(fit["mean"], np.float64), np.asarray(fit["hi-80"], np.float64)
        sd = np.maximum((high - mean) / Z80, 1e-9)
        draws.append((mean + sd * rng.standard_normal((PEER_DRAWS, horizon)))[..., None])
    return draws


def score_peer(name: str, values: np.ndarray, origins: list[int], horizon: int, season: int) -> dict:
    start = time.perf_counter()
    draws = peer_forecasts(name, values, origins, horizon, season)
    scores = [
        forecast_metrics(d, values[t : t + horizon], values[:t], season=season)
        for d, t in zip(draws, origins, strict=True)
    ]
    result = {k: float(np.mean([s[k] for s in scores])) for k in scores[0]}
    return {**result, "origins": len(origins), "seconds": round(time.perf_counter() - start, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--series", nargs="+", default=list(SERIES))
    parser.add_argument("--steps", type=int, help="deepar training steps per series (default: the preset's)")
    parser.add_argument("--samples", type=int, default=200, help="genzoo sample paths per origin")
    parser.add_argument("--reuse", action="store_true", help="score runs already trained in --work")
    parser.add_argument("--reuse-peers", action="store_true", help="keep the peers' rows of the saved JSON")
    parser.add_argument("--quick", action="store_true", help="smoke test: few steps, two series, no ARIMA")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--work", type=Path, default=Path("runs/bench-forecasting"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = args.series[:2] if args.quick else args.series
    peers = ("AutoETS", "SeasonalNaive") if args.quick else PEERS
    results: dict = {}
    saved = RESULTS / f"{NAME}.json"
    previous = json.loads(saved.read_text()).get("series", {}) if saved.is_file() and not args.quick else {}
    for name in names:
        data = load_dataset(name)
        freq = data.schema.freq
        preset = DeepAR.preset(PRESET[freq]).settings
        horizon, window = HORIZON[freq], preset["data.window"]
        assert window - preset["context"] == horizon, "the preset's window is its context plus the horizon"
        frame = data.series[name]
        values = frame.to_numpy(np.float64)
        origins = rolling_origins(len(values), data.test_start[name], horizon)
        season = season_for(freq)
        run = args.work / ("quick" if args.quick else "") / f"deepar-{name}"
        steps = 100 if args.quick else args.steps
        settings = {"seed": 0, "preview_samples": 0, **({"max_steps": steps} if steps else {})}
        train_unless_reused("deepar", name, run, settings, args.reuse, preset=PRESET[freq])
        model = load(run)
        data = load_dataset(name, window=window)
        start = time.perf_counter()
        report = backtest(model, data.series, data.test_start, horizon=horizon, samples=args.samples)
        genzoo_row = {**report["series"][name], "seconds": round(time.perf_counter() - start, 1),
                      "train_seconds": logged_train_seconds(run)}  # fmt: skip
        row = {"length": len(values), "freq": freq, "season": season, "horizon": horizon,
               "window": window, "origins": len(origins), "models": {"genzoo deepar": genzoo_row}}  # fmt: skip
        earlier = previous.get(name, {})
        for peer in peers:
            same = (
                args.reuse_peers
                and earlier.get("origins") == len(origins)
                and earlier.get("horizon") == horizon
            )
            if same and peer in earlier.get("models", {}):
                row["models"][peer] = earlier["models"][peer]  # the same fits on the same origins
            else:
                row["models"][peer] = score_peer(peer, values, origins, horizon, season)
        results[name] = row
        if name == names[0]:  # the README's fan chart: the year past the end of the data
            forecast(run, horizon=horizon, out=RESULTS / f"{NAME}_{name}.csv", quiet=True)
        shown = ", ".join(f"{m} {r['scaled_crps']:.3f}/{r['coverage']:.2f}" for m, r in row["models"].items())
        print(f"{name}: scaled CRPS / coverage: {shown}", flush=True)
    models = list(next(iter(results.values()))["models"])
    summary = {
        m: {
            "geomean_scaled_crps": geometric_mean([r["models"][m]["scaled_crps"] for r in results.values()]),
            "geomean_mase": geometric_mean([r["models"][m]["mase"] for r in results.values()]),
            "mean_coverage": float(np.mean([r["models"][m]["coverage"] for r in results.values()])),
        }
        for m in models
    }
    best = min((m for m in models if m.startswith("genzoo")), key=lambda m: summary[m]["geomean_scaled_crps"])
    goal = {
        "best_genzoo": best,
        "crps_at_or_below_autoets": "AutoETS" in summary
        and summary[best]["geomean_scaled_crps"] <= summary["AutoETS"]["geomean_scaled_crps"],
        "coverage_within_5_points": math.isclose(summary[best]["mean_coverage"], 0.8, abs_tol=0.05),
    }
    save(NAME + ("_quick" if args.quick else ""), {
        "protocol": __doc__.split("\n\n")[2].replace("\n", " "),
        "command": "genzoo train deepar --data SERIES --preset monthly|yearly; backtest as "
        "`genzoo evaluate RUN --metrics mase,smape,crps,coverage`",
        "series": results, "summary": summary, "goal": goal,
    })  # fmt: skip


if __name__ == "__main__":
    main()

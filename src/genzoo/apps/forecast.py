"""Probabilistic forecasts from a trained series model, and their rolling-origin backtest.

    >>> fc = genzoo.forecast("runs/deepar-co2", horizon=12, out="co2.csv")  # doctest: +SKIP
    >>> fc.frame.head()     # series, time, feature, mean, q0.1, q0.5, q0.9  # doctest: +SKIP

`forecast` continues every series of the data (default: the run's own) from its last observation:
the model draws `samples` sample paths of `horizon` steps (`GenerativeModel.forecast`, in the scaled
units), which go back to the series' units with the run's schema and become a mean and quantiles per
step. `out` writes them as CSV, with a fan chart beside it (`<name>_fan.png`).

`backtest` measures a model on the test part of its series as forecasters are measured: from every
origin (each step of the test part that leaves a whole horizon after it), forecast the next `horizon`
steps from everything before, and score them against what happened (MASE, sMAPE, CRPS and interval
coverage, `genzoo.metrics.timeseries`), averaged over origins.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from genzoo.data.registry import load_dataset, resolve
from genzoo.data.series import SeriesSchema, read_series
from genzoo.errors import GenzooError
from genzoo.files import check_writable
from genzoo.metrics.timeseries import forecast_metrics
from genzoo.models.base import GenerativeModel, atomic_write_text
from genzoo.progress import reporting
from genzoo.train.run import RunSpec, load_run

QUANTILES = (0.1, 0.5, 0.9)
MAX_SAMPLES = 10_000  # sample paths per series: beyond this the quantiles barely move
# Seasonal period by frequency, for MASE's seasonal-naive scale (the M4 competition's choices).
SEASONS = {"Y": 1, "A": 1, "Q": 4, "M": 12, "W": 1, "D": 1, "B": 5, "H": 24, "h": 24}


@dataclass
class Forecast:
    """A forecast: the table of quantiles, the sample paths behind it, and what was done."""

    frame: pd.DataFrame  # series, time, feature, mean, one column per quantile ("q0.1", ...)
    paths: dict[str, np.ndarray] = field(repr=False)  # per series: (samples, horizon, features), its units
    summary: dict[str, Any] = field(default_factory=dict)


def season_for(freq: str | None) -> int:
    """The seasonal period of a pandas frequency alias ("MS" -> 12, "QS-OCT" -> 4); 1 when unknown."""
    if not freq:
        return 1
    base = freq.lstrip("0123456789").split("-")[0]
    return next((period for key, period in SEASONS.items() if base.startswith(key)), 1)


def parse_quantiles(quantiles: str | Sequence[float]) -> tuple[float, ...]:
    """ "0.1,0.5,0.9" or a sequence, as sorted distinct levels strictly between 0 and 1."""
    try:
        values = [float(q) for q in (quantiles.split(",") if isinstance(quantiles, str) else quantiles)]
    except ValueError:
        raise GenzooError(f"--quantiles must be numbers such as 0.1,0.5,0.9, got '{quantiles}'") from None
    if not values or any(not 0 < q < 1 for q in values):
        raise GenzooError(f"--quantiles must lie strictly between 0 and 1, got '{quantiles}'")
    return tuple(sorted(set(values)))


def check_forecast_options(model: GenerativeModel, name: str, horizon: int, samples: int) -> None:
    if not model.forecasts:
        raise GenzooError(f"model '{name}' does not forecast; train a forecaster such as deepar")
    if not 1 <= horizon <= model.max_horizon():
        raise GenzooError(
            f"--horizon must be 1..{model.max_horizon()} for this run (the horizon it was trained to roll); "
            "for longer ones retrain with a longer window, e.g. --set data.window=..."
        )
    if not 2 <= samples <= MAX_SAMPLES:
        raise GenzooError(f"--samples must be 2..{MAX_SAMPLES}, got {samples}")


def forecast(
    run: str | Path,
    data: str | Path | None = None,
    *,
    horizon: int,
    quantiles: str | Sequence[float] = QUANTILES,
    samples: int = 200,
    seed: int = 0,
    device: str = "auto",
    out: str | Path | None = None,
    quiet: bool = False,
) -> Forecast:
    """Forecast `horizon` steps past the end of every series in `data` (a series CSV, a registered
    name, or by default the run's own data) with the run's model: `samples` seeded sample paths per
    series, summarised as the mean and `quantiles` per step, in the series' units."""
    levels = parse_quantiles(quantiles)
    out = Path(out) if out is not None else None
    if out is not None:
        if out.suffix.lower() != ".csv":
            raise GenzooError(f"--out must be a .csv file, got '{out.name}'")
        if out.is_dir():
            raise GenzooError(f"--out '{out}' is a directory; give a file name such as forecast.csv")
        check_writable(out, "--out")
    model, spec = load_run(run, device=device)
    check_forecast_options(model, spec.model, horizon, samples)
    schema = model.schema  # type: ignore[attr-defined]
    frames = _series_for(spec, schema, data)
    generator = torch.Generator(device=model.device).manual_seed(seed)
    parts, paths = [], {}
    with reporting(f"forecast {spec.model}", quiet):
        for name, frame in frames.items():
            history = torch.as_tensor(schema.scale(frame.to_numpy(np.float64)), dtype=torch.float32)
            drawn = model.forecast(history[None].to(model.device), horizon, samples, generator=generator)
            paths[name] = schema.unscale(drawn[0].double().cpu().numpy())
            times = schema.future_index(frame.index[-1], horizon)
            parts.append(_quantile_frame(name, times, schema.features, paths[name], levels))
    table = pd.concat(parts, ignore_index=True)
    summary = {
        "model": spec.model,
        "data": str(data if data is not None else spec.data),
        "series": len(frames),
        "horizon": horizon,
        "samples": samples,
        "quantiles": list(levels),
        "seed": seed,
    }
    result = Forecast(table, paths, summary)
    if out is not None:
        summary["files"] = write_forecast(result, frames, out)
    return result


def _series_for(
    spec: RunSpec, schema: SeriesSchema | None, data: str | Path | None
) -> dict[str, pd.DataFrame]:
    """The series to continue, in their units, with the run's features in the run's order."""
    if schema is None:
        raise GenzooError("this run has no series schema (was it trained with genzoo train?); retrain it")
    if data is None:
        frames = spec.load_data().series
        source = spec.data
    elif resolve(data)[1] is None:  # a registered name
        frames = load_dataset(data, prefer=("series",)).series
        source = str(data)
    else:
        frames = read_series(
            Path(data), time_column=schema.time_column, id_column=schema.id_column, freq=schema.freq
        )
        source = str(data)
    if not frames:
        raise GenzooError(f"'{source}' holds windows, not whole series to continue; give a series CSV")
    for name, frame in frames.items():
        missing = [f for f in schema.features if f not in frame.columns]
        if missing:
            raise GenzooError(
                f"series '{name}' of '{source}' has no column '{missing[0]}'; the run was trained on "
                f"{', '.join(schema.features)}"
            )
        frames[name] = frame[list(schema.features)]
    return frames


def _quantile_frame(
    name: str, times: pd.Index, features: Sequence[str], paths: np.ndarray, levels: Sequence[float]
) -> pd.DataFrame:
    """One row per (step, feature): the mean and each quantile of the sample paths (S, H, F)."""
    horizon, count = paths.shape[1], paths.shape[2]
    columns: dict[str, Any] = {
        "series": name,
        "time": np.repeat(np.asarray(times), count),
        "feature": np.tile(np.asarray(features, dtype=object), horizon),
        "mean": paths.mean(0).reshape(-1),
    }
    for q in levels:
        columns[f"q{q:g}"] = np.quantile(paths, q, axis=0).reshape(-1)
    return pd.DataFrame(columns)


def write_forecast(result: Forecast, history: dict[str, pd.DataFrame], out: Path) -> list[str]:
    """The CSV and, beside it, a fan chart (`<stem>_fan.png`); returns the paths written."""
    from genzoo.viz import save_fan_chart

    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, result.frame.to_csv(index=False))
    chart = out.with_name(f"{out.stem}_fan.png")
    save_fan_chart(history, result.paths, result.frame, chart)
    return [str(out), str(chart)]


# ---- rolling-origin backtest ---------------------------------------------------------------------
def rolling_origins(length: int, test_start: int, horizon: int, step: int = 1) -> list[int]:
    """Origins t (forecast steps t..t+horizon-1 from steps 0..t-1) in the test part: every `step`
    from `test_start` while a whole horizon fits before `length`."""
    if length - test_start < horizon:
        raise GenzooError(
            f"the test part has {length - test_start} steps, fewer than the horizon {horizon}; "
            "use a shorter horizon or a longer series"
        )
    return list(range(test_start, length - horizon + 1, step))


def backtest(
    model: GenerativeModel,
    series: dict[str, pd.DataFrame],
    test_start: dict[str, int],
    *,
    horizon: int,
    samples: int = 200,
    step: int = 1,
    seed: int = 0,
    interval: float = 0.8,
) -> dict[str, Any]:
    """Rolling-origin forecasts over each series' test part, scored against what happened: per series
    the mean over origins of MASE, sMAPE, CRPS, scaled CRPS and `interval` coverage, and over series
    the geometric means of MASE and scaled CRPS (scale-free, so series of any units average)."""
    check_forecast_options(model, model.name, horizon, samples)
    schema: SeriesSchema = model.schema  # type: ignore[attr-defined]
    season = season_for(schema.freq)
    generator = torch.Generator(device=model.device).manual_seed(seed)
    per_series: dict[str, dict[str, float]] = {}
    for name, frame in series.items():
        values = frame[list(schema.features)].to_numpy(np.float64)
        origins = rolling_origins(len(values), test_start[name], horizon, step)
        # Every origin's history cut to the shortest one's length: the model reads the last steps only.
        span = origins[0]
        histories = np.stack([values[t - span : t] for t in origins])
        scaled = torch.as_tensor(schema.scale(histories), dtype=torch.float32).to(model.device)
        drawn = model.forecast(scaled, horizon, samples, generator=generator)
        paths = schema.unscale(drawn.double().cpu().numpy())  # (origins, S, H, F)
        scores = [
            forecast_metrics(paths[i], values[t : t + horizon], values[:t], season=season, interval=interval)
            for i, t in enumerate(origins)
        ]
        per_series[name] = {k: float(np.mean([s[k] for s in scores])) for k in scores[0]}
        per_series[name]["origins"] = len(origins)
    return {
        "horizon": horizon,
        "samples": samples,
        "season": season,
        "series": per_series,
        "mase": geometric_mean([s["mase"] for s in per_series.values()]),
        "scaled_crps": geometric_mean([s["scaled_crps"] for s in per_series.values()]),
        "coverage": float(np.mean([s["coverage"] for s in per_series.values()])),
    }


def geometric_mean(values: Sequence[float]) -> float:
    return math.exp(float(np.mean(np.log(np.maximum(values, 1e-12)))))

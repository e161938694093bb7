"""Time series: sliding windows of one or many series, min-max scaled per feature (TimeGAN's protocol).

One example is a window `(L, F)`: `window` consecutive time steps of F features, in the dataset's
units (each feature min-max scaled, 0..1 on the data the scaler was fitted on). `SeriesSchema` holds
the features, the frequency and the scaler, so whoever writes files turns values back with `unscale`.

Files (`.csv`, `.tsv`), read by `read_series`:
- wide: an optional time column (dates, whole years such as 1871, or integer steps) and one or more
  numeric columns: one series with those features, named after the file;
- long: an id column as well (`id`, `series`, `unique_id`, `item`, ... or `data.id_column`): one series
  per id, each with the same features.
Every series is checked: numbers only, nothing missing, time sorted, no duplicate and no gap for its
frequency (given as `data.freq`, or inferred).

Splits (`data.split`):
- "chronological" (files and the statsmodels series): per series, the first 80% of time steps are the
  training part, the next 10% validation, the last 10% test. A window belongs to the split its last
  step falls in, so a validation or test window may reach back into earlier parts for context, and
  the scaler is fitted on the training parts only (nothing of val or test leaks into it).
- "shuffled" (`stocks`, `sines`, as in TimeGAN): every window, split 80/10/10 by a seeded permutation
  (`data.split_seed`), with the scaler fitted on all the data, as the paper does.

Registered datasets:
- `stocks`: TimeGAN's daily Google stock prices (stock_data.csv in $GENZOO_DATA or ../shared/data:
  Open, High, Low, Close, Adj_Close, Volume; no dates, so time steps are integers). The file is
  oldest first and kept so; TimeGAN's loader reverses its rows (meant to make a newest-first download
  chronological), so its windows run backwards in time. Every one of the T - L + 1 windows is used
  (TimeGAN's loop stops one short).
- `sines`: TimeGAN's generator: `n` windows, each feature sin(f t + p) with f and p uniform in
  [0, 0.1) per feature and window, mapped to [0, 1] by (x + 1) / 2. The schema's range is the sine's
  -1..1, so `unscale` gives the sine back. There is no long series (`.series` is empty).
- statsmodels' series (`pip install 'genzoo[timeseries]'`): `co2` (Mauna Loa weekly CO2, resampled to
  monthly means, with the 5 months that have no measurement interpolated: 526 months, 1958-03 to
  2001-12), `sunspots` (yearly sunspot activity 1700-2008, 309 years), `nile` (yearly Nile volume
  1871-1970, 100 years), `elnino` (monthly sea surface temperature 1950-2010, 732 months), `macrodata`
  (quarterly US macro data 1959Q1-2009Q3, 203 quarters; `data.features` picks columns, realgdp by
  default).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from pandas.tseries.frequencies import to_offset

# Imported first so its CSV reader registers first: a CSV path is a table unless a caller prefers
# series (`load_dataset(path, prefer=("series",))`).
from genzoo.data import tabular  # noqa: F401
from genzoo.data.base import DataInfo, Dataset, find_shared_file
from genzoo.data.registry import register_dataset
from genzoo.errors import GenzooError, did_you_mean, first_line, unknown_name

SERIES_SUFFIXES = (".csv", ".tsv")
SPLITS = ("chronological", "shuffled")
SPLIT_FRACTIONS = (0.8, 0.1)  # train, val; test is the rest (of time steps, or of windows when shuffled)
MAX_ROWS = 1_000_000  # time steps in a file; beyond this it is refused up front
MAX_WINDOW_VALUES = 200_000_000  # windows x L x F held as float32 (800 MB); beyond this ask for a stride
WINDOW, STRIDE = 24, 1  # TimeGAN's sequence length
# Column names that say what a column is, compared lower-cased.
TIME_NAMES = tuple("time date datetime timestamp ds year quarter period month week day".split())
STEP_NAMES = ("t", "step", "index", "idx")  # integer time steps, never read as years
ID_NAMES = ("id", "series", "series_id", "unique_id", "item", "item_id", "ticker", "symbol")
_DATE_PARTS = ("quarter", "month", "week", "day")
# 2020-01-31, 31/01/2020, 2020-01 (a month), 2020-01-31 12:00 ... and 2020Q1 (a quarter).
_DATE_LIKE = re.compile(r"^\s*(\d{1,4}[-/.]\d{1,2}([-/.]\d{1,4})?([ T].*)?|\d{4}-?Q[1-4])\s*$")


@dataclass
class SeriesSchema:
    """The features of the windows, their frequency and the min-max scaler fitted on the training part."""

    features: list[str]
    time_column: str | None
    freq: str | None  # pandas offset alias; None when time steps are integers
    window: int
    stride: int
    low: list[float]
    high: list[float]
    id_column: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str, source: str = "the series schema") -> SeriesSchema:
        try:
            schema = cls(**json.loads(text))
            n = len(schema.features)
            if (
                not isinstance(schema.features, list)
                or not n
                or not all(isinstance(f, str) for f in schema.features)
            ):
                raise ValueError("features must be a non-empty list of names")
            if len(schema.low) != n or len(schema.high) != n:
                raise ValueError(f"low and high need one number per feature ({n})")
            schema.low = [float(v) for v in schema.low]
            schema.high = [float(v) for v in schema.high]
            for key in ("window", "stride"):
                value = getattr(schema, key)
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise ValueError(f"{key} must be a positive integer, not {value!r}")
            for key in ("time_column", "id_column", "freq"):
                if getattr(schema, key) is not None and not isinstance(getattr(schema, key), str):
                    raise ValueError(f"{key} must be a name or null")
            if schema.freq is not None:
                to_offset(schema.freq)
            return schema
        except (ValueError, KeyError, TypeError) as err:
            raise GenzooError(f"{source} is not a genzoo series schema ({first_line(err)})") from None

    # ---- values <-> the dataset's units ----------------------------------------------------------
    def scale(self, values: Any) -> Any:
        """Values (..., F) in the data's units -> the dataset's units (a constant feature -> 0)."""
        low, span = self._bounds(values)
        if isinstance(values, torch.Tensor):
            safe = torch.where(span > 0, span, torch.ones_like(span))
            return torch.where(span > 0, (values - low) / safe, torch.zeros_like(values))
        array = np.asarray(values)
        out = np.where(span > 0, (array - low) / np.where(span > 0, span, 1.0), 0.0)
        return out.astype(_float_dtype(array))

    def unscale(self, values: Any) -> Any:
        """The dataset's units -> the data's units; a constant feature comes back exactly."""
        low, span = self._bounds(values)
        if isinstance(values, torch.Tensor):
            return values * span + low
        array = np.asarray(values)
        return (array * span + low).astype(_float_dtype(array))

    def _bounds(self, values: Any) -> tuple[Any, Any]:
        if values.shape[-1] != len(self.features):
            raise GenzooError(
                f"values have {values.shape[-1]} features in their last dimension, the series has "
                f"{len(self.features)} ({', '.join(self.features)})"
            )
        low, high = np.asarray(self.low, np.float64), np.asarray(self.high, np.float64)
        if isinstance(values, torch.Tensor):
            dtype = values.dtype if values.is_floating_point() else torch.float32
            low_t, span_t = (torch.as_tensor(a, dtype=dtype, device=values.device) for a in (low, high - low))
            return low_t, span_t
        return low, high - low

    def future_index(self, last: Any, horizon: int) -> pd.Index:
        """The `horizon` timestamps after `last`: dates at `freq`, or the next integer steps."""
        if isinstance(horizon, bool) or not isinstance(horizon, int | np.integer) or horizon < 1:
            raise GenzooError(f"the horizon must be a positive number of time steps, got {horizon!r}")
        if self.freq is None:
            return pd.RangeIndex(int(last) + 1, int(last) + 1 + horizon)
        offset = to_offset(self.freq)
        return pd.date_range(start=pd.Timestamp(last) + offset, periods=horizon, freq=offset)


class SeriesDataset(Dataset):
    """Window splits (N, L, F) with the schema, each whole series in its original units, and where
    each series' test part begins (chronological splits; empty when windows were shuffled)."""

    def __init__(
        self,
        info: DataInfo,
        schema: SeriesSchema,
        windows: dict[str, np.ndarray],
        series: dict[str, pd.DataFrame],
        test_start: dict[str, int],
    ):
        splits = {
            k: (torch.from_numpy(np.ascontiguousarray(w, dtype=np.float32)), torch.full((len(w),), -1))
            for k, w in windows.items()
        }
        super().__init__(info, splits)
        self.schema = schema
        self.series = series
        self.test_start = test_start


# ---- reading ------------------------------------------------------------------------------------
def read_series(
    source: str | Path | pd.DataFrame,
    *,
    time_column: str | None = None,
    id_column: str | None = None,
    features: str | list[str] | None = None,
    freq: str | None = None,
) -> dict[str, pd.DataFrame]:
    """Validated series in their original units, by name: each a float frame indexed by time
    (a DatetimeIndex with its frequency, or a RangeIndex of steps), one column per feature.

    `source` is a .csv/.tsv path or a DataFrame (whose DatetimeIndex, if it has one, is its time).
    Every problem is a GenzooError naming the file, the line and what to do.
    """
    return _read_series(source, time_column, id_column, features, freq)[0]


def _read_series(
    source: str | Path | pd.DataFrame,
    time_column: Any,
    id_column: Any,
    features: Any,
    freq: Any,
    label: str = "the series frame",
) -> tuple[dict[str, pd.DataFrame], str | None, str | None]:
    """`read_series`, and the time and id columns it used (given or detected); `label` names a frame
    in messages."""
    if isinstance(source, pd.DataFrame):
        frame, where, stem, line = source, label, "series", (lambda i: f"row {i}")
        if isinstance(frame.index, pd.DatetimeIndex) and time_column is None:
            time_column = str(frame.index.name or "time")
            frame = frame.reset_index(names=time_column)
    else:
        path = Path(source).expanduser()
        frame, where, stem = _read_file(path), f"'{path}'", path.stem
        line = lambda i: f"line {i + 2}"  # noqa: E731 - the header is line 1
    frame = frame.rename(columns=str)
    if frame.shape[1] == 0 or len(frame) == 0:
        raise GenzooError(f"{where} has no data rows; a series needs a header and one row per time step")
    if len(frame) > MAX_ROWS:
        raise GenzooError(f"{where} has more than {MAX_ROWS:,} rows; resample or cut it first")
    if frame.columns.duplicated().any():
        raise GenzooError(f"{where} names a column twice: {frame.columns[frame.columns.duplicated()][0]}")
    if all(c.startswith("Unnamed:") or _is_number(c) for c in frame.columns):
        raise GenzooError(f"{where} has no header row; its first line must name the columns")

    ids = _id_column(frame, id_column, where)
    time = _time_column(frame, time_column, ids, where)
    values = _value_columns(frame, features, {time, ids}, where)
    if freq is not None and time is None:
        raise GenzooError(
            f"data.freq={freq} needs a time column, and {where} has none (its rows are steps); "
            "leave data.freq out or name the time column with data.time_column"
        )
    numbers = _numbers(frame, values, where, line)
    stamps = _timestamps(frame[time], time, where, line) if time is not None else None

    if ids is None:
        groups = {stem: np.arange(len(frame))}
    else:
        keys = frame[ids]
        if keys.isna().any():
            raise GenzooError(
                f"{where}: the id column '{ids}' is empty on {line(int(np.flatnonzero(keys.isna())[0]))}; "
                "give every row its series id"
            )
        keys = keys.astype(str)
        groups = {str(k): np.flatnonzero(keys.to_numpy() == k) for k in pd.unique(keys)}

    offset = _offset(freq) if freq is not None else None
    result: dict[str, pd.DataFrame] = {}
    for name, rows in groups.items():
        label = f"{where}, series '{name}'" if ids is not None else where
        if stamps is None:
            index: pd.Index = pd.RangeIndex(len(rows))
        elif isinstance(stamps, pd.Series):  # dates
            index, offset = _date_index(stamps.iloc[rows], rows, offset, freq, label, line)
        else:  # integer steps
            index = _step_index(stamps[rows], rows, label, line)
        result[name] = pd.DataFrame(numbers[rows], index=index.rename(time), columns=values)
    return result, time, ids


def _read_file(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if suffix not in SERIES_SUFFIXES:
        raise GenzooError(f"'{path}' is not a series file; give a {' or '.join(SERIES_SUFFIXES)} file")
    if not path.is_file():
        raise GenzooError(f"series file '{path}' does not exist; check the path")
    try:
        return pd.read_csv(
            path,
            sep="\t" if suffix == ".tsv" else ",",
            skipinitialspace=True,
            encoding="utf-8-sig",  # a byte-order mark is not part of the first column's name
            nrows=MAX_ROWS + 1,  # enough to tell a file over the cap without reading all of it
            low_memory=False,
        )
    except pd.errors.EmptyDataError:
        raise GenzooError(f"'{path}' is empty; give a header row and one row per time step") from None
    except UnicodeDecodeError as err:
        raise GenzooError(f"'{path}' is not UTF-8 text (byte {err.start}): not a CSV file?") from None
    except (pd.errors.ParserError, ValueError, OSError) as err:
        raise GenzooError(f"cannot read '{path}' as a series ({first_line(err)})") from None


def _id_column(frame: pd.DataFrame, given: str | None, where: str) -> str | None:
    if given is not None:
        if given not in frame.columns:
            raise GenzooError(f"data.id_column: {where} has no column '{given}'; its columns are: "
                              f"{', '.join(frame.columns)}")  # fmt: skip
        return given
    for name in frame.columns:
        column = frame[name]
        # A numeric `id` whose values never repeat numbers rows, not series (see _value_columns).
        if name.lower() in ID_NAMES and (not _is_numeric(column) or column.duplicated().any()):
            return name
    return None


def _time_column(frame: pd.DataFrame, given: str | None, ids: str | None, where: str) -> str | None:
    if given is not None:
        if given not in frame.columns:
            raise GenzooError(f"data.time_column: {where} has no column '{given}'; its columns are: "
                              f"{', '.join(frame.columns)}")  # fmt: skip
        return given
    candidates = [c for c in frame.columns if c != ids]
    for name in candidates:
        lower = name.lower()
        # A number named month, week or day is more often a part of a date than the time itself.
        if lower in TIME_NAMES + STEP_NAMES and not (lower in _DATE_PARTS and _is_numeric(frame[name])):
            return name
    for name in candidates:
        column = frame[name]
        if pd.api.types.is_datetime64_any_dtype(column) or (not _is_numeric(column) and _dates(column)):
            return name
    return None


def _value_columns(frame: pd.DataFrame, features: Any, taken: set, where: str) -> list[str]:
    if features is not None:
        chosen = _names(features, "data.features")
        free = [c for c in frame.columns if c not in taken]
        for name in chosen:
            if name not in free:
                raise GenzooError(
                    f"data.features: {where} has no value column '{name}'{did_you_mean(name, free)}; "
                    f"its value columns are: {', '.join(free) or 'none'}"
                )
        return chosen
    rows = len(frame)
    chosen = [
        c
        for c in frame.columns
        if c not in taken
        # Row numbers (a numeric `id` that never repeats, or the index pandas' to_csv writes) are not data.
        and not (_row_label(c) and _is_numeric(frame[c]) and frame[c].nunique() == rows > 1)
    ]
    if not chosen:
        kept = ", ".join(f"'{c}'" for c in taken if c is not None) or "nothing"
        raise GenzooError(
            f"{where} has no value column (besides {kept}); a series needs at least one numeric column"
        )
    return chosen


def _row_label(name: str) -> bool:
    return name.lower() in ID_NAMES or name.startswith("Unnamed:")


def _numbers(frame: pd.DataFrame, columns: list[str], where: str, line) -> np.ndarray:
    out = np.empty((len(frame), len(columns)), dtype=np.float64)
    for j, name in enumerate(columns):
        raw = frame[name]
        numbers = raw if _is_numeric(raw) else pd.to_numeric(raw, errors="coerce")
        bad = numbers.isna() & raw.notna()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            # A column of text is more likely the series' names than a column with a typo.
            names_series = numbers.notna().mean() < 0.5
            hint = f", or give data.id_column={name} if it names the series" if names_series else ""
            raise GenzooError(
                f"{where}: column '{name}' holds '{raw.iloc[i]}' on {line(i)}, not a number; fix it or "
                f"leave the column out with data.features{hint}"
            )
        x = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
        missing = ~np.isfinite(x)
        if missing.any():
            i = int(np.flatnonzero(missing)[0])
            what = "is missing a value" if np.isnan(x[i]) else f"holds {x[i]}"
            raise GenzooError(
                f"{where}: column '{name}' {what} on {line(i)}; fill it (e.g. interpolate) or drop the row"
            )
        out[:, j] = x
    return out


def _timestamps(column: pd.Series, name: str, where: str, line) -> pd.Series | np.ndarray:
    """Dates (a datetime Series, whole years as Jan 1) or integer steps (an int64 array)."""
    if column.isna().any():
        i = int(np.flatnonzero(column.isna())[0])
        raise GenzooError(f"{where}: the time column '{name}' is empty on {line(i)}; give every row its time")
    if _is_numeric(column) and not pd.api.types.is_bool_dtype(column):
        x = column.to_numpy(dtype=np.float64)
        fractional = np.mod(x, 1) != 0
        if fractional.any():
            i = int(np.flatnonzero(fractional)[0])
            raise GenzooError(
                f"{where}: the time column '{name}' holds {x[i]} on {line(i)}; give dates, whole years "
                "or integer steps (or name another time column with data.time_column)"
            )
        steps = x.astype(np.int64)
        if name.lower() not in STEP_NAMES and steps.min() >= 1000 and steps.max() < 3000:
            return pd.Series(pd.to_datetime(steps.astype(str), format="%Y"), index=column.index)
        return steps
    if pd.api.types.is_datetime64_any_dtype(column):
        stamps = column
    else:
        # UTC first, so mixed time zones compare; then naive, as frequencies and files want.
        stamps = pd.to_datetime(column.astype(str), format="mixed", errors="coerce", utc=True)
        bad = stamps.isna()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise GenzooError(
                f"{where}: the time column '{name}' holds '{column.iloc[i]}' on {line(i)}, not a date; "
                "fix it, or name the time column with data.time_column"
            )
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_convert(None)
    return stamps


def _order(diffs: np.ndarray, rows: np.ndarray, times: Any, label: str, line) -> None:
    """Unsorted or duplicated times, named by their lines."""
    bad = np.flatnonzero(diffs <= 0)
    if not len(bad):
        return
    k = int(bad[0])
    before, after = _show(times[k]), _show(times[k + 1])
    if diffs[k] == 0:
        raise GenzooError(
            f"{label} has the time {after} twice ({line(rows[k])} and {line(rows[k + 1])}); "
            "keep one row per time step"
        )
    raise GenzooError(
        f"{label} is not sorted by time: {after} on {line(rows[k + 1])} comes after {before}; "
        "sort the rows by time"
    )


def _show(time: Any) -> str:
    """A time as a person writes it: the date alone when it is midnight."""
    if isinstance(time, pd.Timestamp | np.datetime64):
        time = pd.Timestamp(time)
        return time.strftime("%Y-%m-%d") if time == time.normalize() else str(time)
    return str(time)


def _step_index(steps: np.ndarray, rows: np.ndarray, label: str, line) -> pd.RangeIndex:
    diffs = np.diff(steps)
    _order(diffs, rows, steps, label, line)
    if (diffs > 1).any():
        k = int(np.flatnonzero(diffs > 1)[0])
        missing = int((diffs - 1).sum())
        raise GenzooError(
            f"{label} is missing {missing} time steps (the first is {steps[k] + 1}); "
            "fill them (e.g. interpolate) so steps go up by 1"
        )
    return pd.RangeIndex(int(steps[0]), int(steps[0]) + len(steps))


def _date_index(
    stamps: pd.Series, rows: np.ndarray, offset, freq: str | None, label: str, line
) -> tuple[pd.DatetimeIndex, Any]:
    """The series' DatetimeIndex at its frequency (given, else the one found for an earlier series,
    else inferred), and that frequency."""
    index = pd.DatetimeIndex(stamps.to_numpy())
    diffs = np.diff(index.asi8)
    _order(diffs, rows, index, label, line)
    if offset is None:
        offset = _infer_offset(index, label)
    try:  # a fixed step (hours, days) much finer than the data would make a grid too big to build
        size = (index[-1] - index[0]) // pd.Timedelta(offset.nanos, "ns") + 1
    except ValueError:  # months, quarters, years: never more steps than days
        size = 0
    if size > 2 * MAX_ROWS:
        raise GenzooError(
            f"{label}: frequency {offset.freqstr} makes {size:,} time steps from {_show(index[0])} to "
            f"{_show(index[-1])}, more than {MAX_ROWS:,}; give the data's own frequency with data.freq"
        )
    grid = pd.date_range(index[0], index[-1], freq=offset)
    off_grid = ~index.isin(grid)
    if off_grid.any():
        i = int(np.flatnonzero(off_grid)[0])
        given = f"the frequency given, {freq}" if freq else f"the frequency inferred, {offset.freqstr}"
        raise GenzooError(
            f"{label}: the time {_show(index[i])} on {line(rows[i])} is off {given}; "
            "fix the time or give the right frequency with data.freq (e.g. D, W, MS, QS, YS, h)"
        )
    if len(grid) > len(index):
        gaps = grid[~grid.isin(index)]
        raise GenzooError(
            f"{label} is missing {len(gaps)} time steps for frequency {offset.freqstr} (the first is "
            f"{_show(gaps[0])}); fill them (e.g. interpolate) or give the right frequency with data.freq"
        )
    return pd.DatetimeIndex(index, freq=offset), offset


def _infer_offset(index: pd.DatetimeIndex, label: str):
    if len(index) < 3:
        raise GenzooError(
            f"{label} has {len(index)} time steps, too few to infer a frequency; give data.freq or more rows"
        )
    found = pd.infer_freq(index)
    if found is None:
        # Gaps defeat infer_freq. Runs of three consecutive times still say what the frequency may be
        # (trading days: D within a week, B across a weekend); of the frequencies that hold every time,
        # the one with the fewest missing steps is the data's, so the grid check can name the gaps.
        votes = [pd.infer_freq(index[i : i + 3]) for i in range(min(len(index) - 2, 500))]
        candidates = sorted({v for v in votes if v is not None}, key=votes.count, reverse=True)[:3]
        fits = []
        for alias in candidates:
            try:
                grid = pd.date_range(index[0], index[-1], freq=alias)
            except (ValueError, OverflowError):
                continue
            if len(grid) <= 2 * MAX_ROWS and index.isin(grid).all():
                fits.append((len(grid), alias))
        found = min(fits)[1] if fits else None
    if found is None:
        raise GenzooError(
            f"cannot infer the frequency of {label}: its times are irregular ({_show(index[0])}, "
            f"{_show(index[1])}, {_show(index[2])}, ...); give it with data.freq (a pandas alias "
            "such as D, W, MS, QS, YS, h)"
        )
    return to_offset(found)


def _offset(freq: Any):
    try:
        return to_offset(str(freq))
    except ValueError:
        raise GenzooError(
            f"data.freq={freq} is not a pandas frequency; give an alias such as D, B, W, MS, QS, YS or h"
        ) from None


def _names(value: Any, option: str) -> list[str]:
    items = value.split(",") if isinstance(value, str) else value if isinstance(value, list | tuple) else None
    names = [str(v).strip() for v in items or [] if str(v).strip()]
    if not names:
        raise GenzooError(f"{option} names columns, like a,b or [a, b]; got {value!r}")
    return list(dict.fromkeys(names))


def _dates(column: pd.Series) -> bool:
    sample = column.dropna().astype(str).head(200)
    if sample.empty or not sample.str.match(_DATE_LIKE).all():
        return False
    return bool(pd.to_datetime(sample, errors="coerce", format="mixed", utc=True).notna().all())


def _is_numeric(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _float_dtype(array: np.ndarray) -> np.dtype:
    return array.dtype if np.issubdtype(array.dtype, np.floating) else np.dtype(np.float64)


# ---- windows and splits ---------------------------------------------------------------------------
def _positive_int(value: Any, option: str, least: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer | float) or value != int(value):
        raise GenzooError(f"data.{option} must be a whole number, got {value!r}")
    if int(value) < least:
        raise GenzooError(f"data.{option} must be at least {least}, got {value}")
    return int(value)


def _cuts(length: int) -> tuple[int, int]:
    """Where the validation and test parts of a series of `length` steps begin."""
    n_train = int(round(SPLIT_FRACTIONS[0] * length))
    return n_train, n_train + int(round(SPLIT_FRACTIONS[1] * length))


def _windows(values: np.ndarray, window: int, stride: int) -> np.ndarray:
    """Windows (N, L, F) starting at 0, stride, 2 stride, ... while they fit."""
    views = np.lib.stride_tricks.sliding_window_view(values, window, axis=0)  # (T - L + 1, F, L)
    return views[::stride].transpose(0, 2, 1)


def series_dataset(
    series: dict[str, pd.DataFrame],
    name: str,
    *,
    window: int = WINDOW,
    stride: int = STRIDE,
    split: str = "chronological",
    split_seed: int = 0,
    time_column: str | None = None,
    id_column: str | None = None,
) -> SeriesDataset:
    """Windows of `series` (as `read_series` returns them) split as the module docstring says."""
    window = _positive_int(window, "window", least=2)
    stride = _positive_int(stride, "stride")
    if split not in SPLITS:
        raise unknown_name("data.split", str(split), SPLITS)
    arrays = {k: s.to_numpy(dtype=np.float64) for k, s in series.items()}
    features = [str(c) for c in next(iter(series.values())).columns]
    count = sum(max(0, (len(a) - window) // stride + 1) for a in arrays.values())
    if count * window * len(features) > MAX_WINDOW_VALUES:
        raise GenzooError(
            f"'{name}' makes {count:,} windows of {window} x {len(features)} values, too many to hold; "
            "raise data.stride or lower data.window"
        )
    fix = " or data.stride" if stride > 1 else ""

    # Which split each window goes to: by its last step (chronological), or all to one pool (shuffled).
    masks: dict[str, dict[str, np.ndarray]] = {}
    test_start: dict[str, int] = {}
    for key, values in arrays.items():
        n = max(0, (len(values) - window) // stride + 1)
        last = np.arange(n) * stride + window - 1  # each window's last step
        if split == "shuffled":
            masks[key] = {"pool": np.ones(n, dtype=bool)}
            continue
        val_start, test_begin = _cuts(len(values))
        masks[key] = {
            "train": last < val_start,
            "val": (last >= val_start) & (last < test_begin),
            "test": last >= test_begin,
        }
        if not all(m.any() for m in masks[key].values()):
            # With stride 1 every part has a window once the training part holds one.
            most = (
                f" (at most {val_start} here)" if test_begin > val_start and test_begin < len(values) else ""
            )
            raise GenzooError(
                f"'{name}': series '{key}' has {len(values)} time steps, too few for a window of {window} in "
                f"each of the train, val and test parts (80/10/10 of its time steps); lower data.window"
                f"{most}{fix}"
            )
        test_start[key] = test_begin

    # The scaler: the training parts only (chronological), or everything (shuffled, as TimeGAN).
    fitted = [a[: _cuts(len(a))[0]] if split == "chronological" else a for a in arrays.values()]
    stacked = np.concatenate(fitted)
    first = next(iter(series.values()))
    freq = first.index.freqstr if isinstance(first.index, pd.DatetimeIndex) else None
    schema = SeriesSchema(features, time_column, freq, window, stride,
                          stacked.min(axis=0).tolist(), stacked.max(axis=0).tolist(), id_column)  # fmt: skip

    pieces: dict[str, list[np.ndarray]] = {}
    for key, values in arrays.items():
        if len(values) >= window:  # a shorter series (only when shuffled) gives no window
            windows = _windows(schema.scale(values), window, stride)
            for part, mask in masks[key].items():
                pieces.setdefault(part, []).append(windows[mask])
    if split == "chronological":
        out = {part: np.concatenate(pieces[part]) for part in ("train", "val", "test")}
    else:
        pool = np.concatenate(pieces.get("pool", [np.empty((0, window, len(features)))]))
        order = np.random.default_rng(split_seed).permutation(len(pool))
        n_train = int(round(SPLIT_FRACTIONS[0] * len(pool)))
        n_val = int(round(SPLIT_FRACTIONS[1] * len(pool)))
        if n_val == 0 or n_train + n_val >= len(pool):
            longest = max(len(a) for a in arrays.values())
            raise GenzooError(
                f"'{name}' makes {len(pool)} windows of {window} (its longest series has {longest} time "
                f"steps), too few to split 80/10/10; lower data.window{fix}"
            )
        out = {"train": pool[order[:n_train]], "val": pool[order[n_train : n_train + n_val]],
               "test": pool[order[n_train + n_val :]]}  # fmt: skip
    return SeriesDataset(_info(name, schema), schema, out, series, test_start)


def _info(name: str, schema: SeriesSchema) -> DataInfo:
    return DataInfo(
        name=name,
        modality="series",
        shape=(schema.window, len(schema.features)),
        levels=None,
        low=0.0,
        high=1.0,
        series=schema.to_json(),
    )


# ---- the datasets -------------------------------------------------------------------------------
@register_dataset(
    "series-csv", reads=lambda p: p.is_file() and p.suffix.lower() in SERIES_SUFFIXES, modality="series"
)
def load_series_file(
    path: Path,
    window: int = WINDOW,
    stride: int = STRIDE,
    split: str = "chronological",
    split_seed: int = 0,
    time_column: str | None = None,
    id_column: str | None = None,
    features: str | list[str] | None = None,
    freq: str | None = None,
) -> SeriesDataset:
    series, time, ids = _read_series(path, time_column, id_column, features, freq)
    return series_dataset(series, path.stem, window=window, stride=stride, split=split,
                          split_seed=split_seed, time_column=time, id_column=ids)  # fmt: skip


@register_dataset("stocks", modality="series")
def load_stocks(
    window: int = WINDOW, stride: int = STRIDE, split: str = "shuffled", split_seed: int = 0
) -> SeriesDataset:
    found = find_shared_file("stock_data.csv")
    if found is None:
        raise GenzooError(
            "stock_data.csv not found in $GENZOO_DATA or ../shared/data; put TimeGAN's data/stock_data.csv "
            "(daily Google prices, oldest first) there, or give a series CSV as --data"
        )
    series = {"stocks": next(iter(read_series(found).values()))}  # kept oldest first: see the docstring
    return series_dataset(series, "stocks", window=window, stride=stride, split=split, split_seed=split_seed)


@register_dataset("sines", modality="series")
def load_sines(
    n: int = 10_000, window: int = WINDOW, features: int = 5, seed: int = 0, split_seed: int = 0
) -> SeriesDataset:
    n = _positive_int(n, "n", least=10)
    window = _positive_int(window, "window", least=2)
    count = _positive_int(features, "features")
    rng = np.random.default_rng(seed)
    freq = rng.uniform(0.0, 0.1, (n, 1, count))
    phase = rng.uniform(0.0, 0.1, (n, 1, count))
    steps = np.arange(window, dtype=np.float64)[None, :, None]
    waves = np.sin(freq * steps + phase)
    names = [f"sine_{k}" for k in range(count)]
    # The schema's -1..1 range makes the windows (x + 1) / 2, as TimeGAN's, and unscale the sine.
    schema = SeriesSchema(names, None, None, window, 1, [-1.0] * count, [1.0] * count)
    windows = schema.scale(waves)
    order = np.random.default_rng(split_seed).permutation(n)
    n_train, n_val = int(round(SPLIT_FRACTIONS[0] * n)), int(round(SPLIT_FRACTIONS[1] * n))
    out = {"train": windows[order[:n_train]], "val": windows[order[n_train : n_train + n_val]],
           "test": windows[order[n_train + n_val :]]}  # fmt: skip
    return SeriesDataset(_info("sines", schema), schema, out, {}, {})


# statsmodels' series, each as a frame indexed by time (and the frequency it has).
def _statsmodels_frame(name: str) -> tuple[pd.DataFrame, str]:
    try:
        from statsmodels import datasets
    except ImportError:
        raise GenzooError(
            f"dataset '{name}' comes from statsmodels: pip install 'genzoo[timeseries]'"
        ) from None
    data = getattr(datasets, name).load_pandas().data
    if name == "co2":
        # Weekly with missing weeks (NaN rows): monthly means, then the 5 months with none interpolated.
        return data.resample("MS").mean().interpolate(method="time").rename_axis("month"), "MS"
    if name in ("sunspots", "nile"):
        year, column = ("YEAR", "SUNACTIVITY") if name == "sunspots" else ("year", "volume")
        index = pd.to_datetime(data[year].astype(int).astype(str), format="%Y")
        return pd.DataFrame(
            {column: data[column].to_numpy()}, index=pd.DatetimeIndex(index, name="year")
        ), "YS"
    if name == "elnino":
        # One row per year with a column per month: one monthly series, read row by row.
        months = data.drop(columns="YEAR").to_numpy().reshape(-1)
        start = pd.Timestamp(year=int(data["YEAR"].iloc[0]), month=1, day=1)
        index = pd.date_range(start, periods=len(months), freq="MS", name="month")
        return pd.DataFrame({"temperature": months}, index=index), "MS"
    # macrodata: a year and a quarter column.
    stamps = [
        pd.Timestamp(year=int(y), month=3 * int(q) - 2, day=1)
        for y, q in zip(data["year"], data["quarter"], strict=True)
    ]
    frame = data.drop(columns=["year", "quarter"])
    return frame.set_index(pd.DatetimeIndex(stamps, name="quarter")), "QS"


def _load_statsmodels(
    name: str, window: Any, stride: Any, split: str, split_seed: int, features: Any = None
) -> SeriesDataset:
    frame, freq = _statsmodels_frame(name)
    found, time, _ = _read_series(frame, None, None, features, freq, label=f"dataset '{name}'")
    series = {name: next(iter(found.values()))}
    return series_dataset(series, name, window=window, stride=stride, split=split,
                          split_seed=split_seed, time_column=time)  # fmt: skip


def _statsmodels_loader(name: str):
    def load(
        window: int = WINDOW, stride: int = STRIDE, split: str = "chronological", split_seed: int = 0
    ) -> SeriesDataset:
        return _load_statsmodels(name, window, stride, split, split_seed)

    return load


for _name in ("co2", "sunspots", "nile", "elnino"):
    register_dataset(_name, modality="series")(_statsmodels_loader(_name))


@register_dataset("macrodata", modality="series")
def load_macrodata(
    window: int = WINDOW,
    stride: int = STRIDE,
    split: str = "chronological",
    split_seed: int = 0,
    features: str | list[str] = "realgdp",
) -> SeriesDataset:
    return _load_statsmodels("macrodata", window, stride, split, split_seed, features)

"""Time-series data: files read as series (wide and long), windows and their splits, the schema's
scaler and JSON, the registered datasets, and every bad input as one-line GenzooError."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from pandas.tseries.frequencies import to_offset

from genzoo.data import SeriesSchema, load_dataset, read_series
from genzoo.data import series as series_module
from genzoo.data.base import find_shared_file
from genzoo.data.registry import dataset_options, resolve
from genzoo.errors import GenzooError

needs_statsmodels = pytest.mark.skipif(
    importlib.util.find_spec("statsmodels") is None, reason="statsmodels is not installed"
)


def write(tmp: Path, name: str, content: str | bytes) -> Path:
    path = tmp / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def daily_csv(n: int = 100, *, start: str = "2020-01-01", columns: int = 2) -> str:
    days = pd.date_range(start, periods=n, freq="D")
    rows = "".join(f"{d.date()}," + ",".join(f"{i * (k + 1) + 0.5}" for k in range(columns)) + "\n"
                   for i, d in enumerate(days))  # fmt: skip
    return "date," + ",".join(f"v{k}" for k in range(columns)) + "\n" + rows


def steps_csv(n: int = 100) -> str:
    """One feature whose value is its own time step, so a window says where it lies."""
    return "value\n" + "".join(f"{i}\n" for i in range(n))


# ---- reading files ------------------------------------------------------------------------------
def test_a_wide_csv_is_one_multivariate_series(tmp_path):
    path = write(tmp_path, "energy.csv", daily_csv(30))
    series = read_series(path)
    assert list(series) == ["energy"]
    frame = series["energy"]
    assert list(frame.columns) == ["v0", "v1"] and len(frame) == 30
    assert isinstance(frame.index, pd.DatetimeIndex) and frame.index.freqstr == "D"
    assert frame.iloc[3].tolist() == [3.5, 6.5]
    assert list(read_series(path, features="v1")["energy"].columns) == ["v1"]


def test_a_long_csv_is_one_series_per_id(tmp_path):
    months = [str(m.date()) for m in pd.date_range("2021-01-01", periods=15, freq="MS")]
    rows = [(sid, t, i * 2, i + 0.5) for sid, n in (("a", 12), ("b", 15)) for i, t in enumerate(months[:n])]
    rows.sort(key=lambda r: (r[1], r[0]))  # the ids interleaved, as a database export writes them
    text = "unique_id,ds,sales,price\n" + "".join(",".join(map(str, r)) + "\n" for r in rows)
    series = read_series(write(tmp_path, "shops.csv", text))
    assert list(series) == ["a", "b"] and [len(s) for s in series.values()] == [12, 15]
    assert all(list(s.columns) == ["sales", "price"] for s in series.values())
    assert series["b"].index.freqstr == "MS" and series["b"]["sales"].iloc[-1] == 28
    data = load_dataset(tmp_path / "shops.csv", prefer=("series",), window=4)
    assert data.schema.id_column == "unique_id" and data.schema.time_column == "ds"
    assert data.test_start == {"a": 11, "b": 14} and data.info.shape == (4, 2)
    # A frame reads like a file; a series out of order is named.
    frame = pd.DataFrame(rows, columns=["series", "when", "sales", "price"])
    assert list(read_series(frame)) == ["a", "b"]
    frame.loc[[0, 2], "when"] = frame.loc[[2, 0], "when"].to_numpy()
    with pytest.raises(GenzooError, match=r"the series frame, series 'a' is not sorted by time: .* on row 2"):
        read_series(frame)


def test_integer_years_are_a_yearly_time_column(tmp_path):
    path = write(
        tmp_path, "flow.csv", "year,volume\n" + "".join(f"{1871 + i},{1000 + i}\n" for i in range(40))
    )
    schema = load_dataset(path, prefer=("series",), window=4).schema
    assert schema.time_column == "year" and to_offset(schema.freq) == to_offset("YS")
    assert list(schema.future_index(pd.Timestamp("1910-01-01"), 2).year) == [1911, 1912]


def test_no_time_column_is_integer_steps(tmp_path):
    frame = read_series(write(tmp_path, "s.csv", steps_csv(20)))["s"]
    assert isinstance(frame.index, pd.RangeIndex) and frame.index[-1] == 19
    data = load_dataset(tmp_path / "s.csv", prefer="series", window=4)
    assert data.schema.time_column is None and data.schema.freq is None
    assert list(data.schema.future_index(19, 3)) == [20, 21, 22]


def test_dates_are_found_by_their_values_and_time_zones_dropped(tmp_path):
    text = "when,x\n" + "".join(f"2020-01-{d:02d}T00:00:00+00:00,{d}\n" for d in range(1, 21))
    frame = read_series(write(tmp_path, "z.csv", text))["z"]
    assert frame.index.tz is None and frame.index.freqstr == "D" and frame.index.name == "when"


# ---- windows and splits -------------------------------------------------------------------------
def test_window_count_and_the_split_of_each_window(tmp_path):
    path = write(tmp_path, "steps.csv", steps_csv(100))
    window, stride = 10, 3
    data = load_dataset(path, prefer=("series",), window=window, stride=stride)
    sizes = {k: len(data.split(k)) for k in data.split_names}
    assert sum(sizes.values()) == (100 - window) // stride + 1  # 31 windows
    assert data.info.shape == (window, 1) and data.info.modality == "series"
    assert data.test_start == {"steps": 90}
    bounds = {"train": (0, 80), "val": (80, 90), "test": (90, 100)}
    for name, (lo, hi) in bounds.items():
        x = data.schema.unscale(data.split(name).tensors[0])
        last = x[:, -1, 0]
        assert ((last >= lo - 1e-3) & (last < hi)).all(), (name, last)
        assert torch.allclose(x[:, 1:, 0] - x[:, :-1, 0], torch.ones(1), atol=1e-3)  # consecutive steps
    shuffled = load_dataset(path, prefer=("series",), window=window, stride=stride, split="shuffled")
    assert sum(len(shuffled.split(k)) for k in shuffled.split_names) == 31
    assert shuffled.test_start == {}


def test_chronological_scaler_sees_only_the_training_part(tmp_path):
    path = write(tmp_path, "steps.csv", steps_csv(100))
    data = load_dataset(path, prefer=("series",), window=5)
    assert data.schema.low == [0.0] and data.schema.high == [79.0]  # the first 80 steps
    assert data.split("train").tensors[0].max() <= 1.0
    assert data.split("test").tensors[0].max() > 1.0  # later data leave 0..1: nothing leaked
    shuffled = load_dataset(path, prefer=("series",), window=5, split="shuffled")
    assert shuffled.schema.high == [99.0]  # TimeGAN's protocol: fitted on everything


def test_shuffled_split_is_seeded(tmp_path):
    path = write(tmp_path, "steps.csv", steps_csv(60))
    a, b, c = (
        load_dataset(path, prefer=("series",), window=4, split="shuffled", split_seed=s) for s in (0, 0, 1)
    )
    assert torch.equal(a.split("val").tensors[0], b.split("val").tensors[0])
    assert not torch.equal(a.split("val").tensors[0], c.split("val").tensors[0])


def test_sines_shape_range_and_determinism():
    data = load_dataset("sines", n=100, window=12, features=3)
    x = data.split("train").tensors[0]
    assert data.info.shape == (12, 3) and [len(data.split(k)) for k in data.split_names] == [80, 10, 10]
    assert x.min() >= 0.0 and x.max() <= 1.0 and data.series == {}
    again = load_dataset("sines", n=100, window=12, features=3)
    assert torch.equal(x, again.split("train").tensors[0])
    other = load_dataset("sines", n=100, window=12, features=3, seed=1)
    assert not torch.equal(x, other.split("train").tensors[0])
    # Unscaled, a window is sin(f t + p) with f, p in [0, 0.1): it starts at sin(p) < 0.1.
    waves = data.schema.unscale(x)
    assert (waves[:, 0] >= 0).all() and (waves[:, 0] < np.sin(0.1) + 1e-6).all()


# ---- the schema ---------------------------------------------------------------------------------
def test_scale_and_unscale_round_trip_with_a_constant_feature():
    schema = SeriesSchema(["a", "flat"], None, None, 4, 1, [10.0, 3.0], [20.0, 3.0])
    values = np.array([[[10.0, 3.0], [15.0, 3.0], [20.0, 3.0]]])
    scaled = schema.scale(values)
    assert np.allclose(scaled[..., 0], [0.0, 0.5, 1.0]) and (scaled[..., 1] == 0).all()
    assert np.array_equal(schema.unscale(scaled), values)
    tensor = torch.tensor(values, dtype=torch.float32)
    assert torch.allclose(schema.unscale(schema.scale(tensor)), tensor)
    assert schema.scale(tensor).dtype == torch.float32
    with pytest.raises(GenzooError, match=r"3 features .* the series has 2"):
        schema.scale(np.zeros((2, 3)))


def test_schema_json_round_trips_and_rejects_malformed_json():
    schema = SeriesSchema(["x", "y"], "date", "MS", 24, 2, [0.0, 1.0], [5.0, 9.0], "store")
    assert SeriesSchema.from_json(schema.to_json()) == schema
    good = json.loads(schema.to_json())
    bad = ["{not json", "[]", json.dumps({**good, "low": [0.0]}), json.dumps({**good, "freq": "every tuesday"}),
           json.dumps({**good, "window": 0}), json.dumps({k: v for k, v in good.items() if k != "features"})]  # fmt: skip
    for text in bad:
        with pytest.raises(GenzooError, match=r"^'run/series.json' is not a genzoo series schema \(.+\)$"):
            SeriesSchema.from_json(text, "'run/series.json'")


def test_future_index_continues_the_frequency():
    schema = SeriesSchema(["x"], "month", "MS", 24, 1, [0.0], [1.0])
    index = schema.future_index(pd.Timestamp("2001-12-01"), 3)
    assert list(index.strftime("%Y-%m")) == ["2002-01", "2002-02", "2002-03"] and index.freqstr == "MS"
    with pytest.raises(GenzooError, match="horizon"):
        schema.future_index(pd.Timestamp("2001-12-01"), 0)


# ---- which loader reads a CSV -------------------------------------------------------------------
def test_a_csv_is_a_table_by_default_and_a_series_when_preferred(tmp_path):
    path = write(tmp_path, "daily.csv", daily_csv(40))
    assert load_dataset(path).info.modality == "table"
    assert resolve(path) == ("table-file", path)
    assert resolve(path, prefer=("series",)) == ("series-csv", path)
    assert load_dataset(path, prefer=("image", "series"), window=4).info.modality == "series"
    assert load_dataset(path, prefer=("image",)).info.modality == "table"  # no match: as before
    assert {"window", "stride", "split", "split_seed", "time_column", "id_column", "features", "freq"} <= set(
        dataset_options("series-csv")
    )
    with pytest.raises(GenzooError, match="has no option 'windw'"):
        load_dataset(path, prefer=("series",), windw=4)


# ---- bad input: one line that names the file, the place and what to do ----------------------------
def days(n: int, skip: tuple[int, ...] = ()) -> list[str]:
    return [str(d.date()) for i, d in enumerate(pd.date_range("2020-01-01", periods=n)) if i not in skip]


def dated(stamps: list[str], values: list[str] | None = None) -> str:
    values = values or [str(i) for i in range(len(stamps))]
    return "date,x\n" + "".join(f"{t},{v}\n" for t, v in zip(stamps, values, strict=True))


BAD_FILES = [
    ("empty", "s.csv", "", {}, r"'.*s\.csv' is empty; give a header row"),
    ("header-only", "s.csv", "date,x\n", {}, r"has no data rows"),
    ("binary", "s.csv", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, {}, r"not UTF-8 text"),
    ("only-dates", "s.csv", "date\n" + "\n".join(days(30)) + "\n", {}, r"no value column \(besides 'date'\)"),
    ("text-values", "s.csv", dated(days(20), ["1"] * 19 + ["n/a!"]), {}, r"column 'x' holds 'n/a!' on line 21, not a number; fix it or leave the column out with data.features$"),
    ("text-column", "s.csv", "date,city\n" + "".join(f"{d},Paris\n" for d in days(20)), {}, r"'city' holds 'Paris' on line 2.*data.id_column=city"),
    ("missing-value", "s.csv", dated(days(20), ["1", "2", ""] + ["1"] * 17), {}, r"column 'x' is missing a value on line 4; fill it"),
    ("unsorted", "s.csv", dated(days(20)[:5] + [days(20)[6], days(20)[5]] + days(20)[7:]), {}, r"not sorted by time: 2020-01-06 on line 8 comes after 2020-01-07; sort"),
    ("duplicate", "s.csv", dated(days(20)[:5] + days(20)[4:]), {}, r"has the time 2020-01-05 twice \(line 6 and line 7\); keep one row"),
    ("gaps", "s.csv", dated(days(40, skip=(10, 11, 25))), {}, r"missing 3 time steps for frequency D \(the first is 2020-01-11\); fill them .* data.freq"),
    ("irregular", "s.csv", dated(["2020-01-01", "2020-01-03", "2020-01-04", "2020-01-09", "2020-01-20", "2020-02-03"]), {}, r"cannot infer the frequency .* irregular .* data.freq"),
    ("off-freq", "s.csv", dated(days(20)), {"freq": "MS"}, r"the time 2020-01-02 on line 3 is off the frequency given, MS"),
    ("bad-freq", "s.csv", dated(days(20)), {"freq": "fortnightly"}, r"data.freq=fortnightly is not a pandas frequency"),
    ("freq-without-time", "s.csv", steps_csv(20), {"freq": "D"}, r"data.freq=D needs a time column"),
    ("no-header", "s.csv", "".join(f"{i},{i * 2}\n" for i in range(20)), {}, r"no header row"),
    ("unknown-feature", "s.csv", dated(days(20)), {"features": "y"}, r"data.features: .* has no value column 'y'; its value columns are: x"),
    ("unknown-time-column", "s.csv", dated(days(20)), {"time_column": "when"}, r"data.time_column: .* has no column 'when'"),
    ("fractional-time", "s.csv", "t,x\n0,1\n0.5,2\n1,3\n", {}, r"time column 't' holds 0.5 on line 3"),
    ("step-gap", "s.csv", "step,x\n0,1\n1,2\n4,3\n", {}, r"missing 2 time steps \(the first is 2\)"),
    ("empty-id", "s.csv", "id,x\na,1\n,2\na,3\n", {}, r"id column 'id' is empty on line 3"),
    ("too-short", "s.csv", steps_csv(20), {"window": 24}, r"'s': series 's' has 20 time steps, too few for a window of 24 .* lower data.window \(at most 16 here\)"),
    ("window-1", "s.csv", steps_csv(20), {"window": 1}, r"data.window must be at least 2"),
    ("bad-split", "s.csv", steps_csv(40), {"split": "random"}, r"unknown data.split 'random'.*chronological, shuffled"),
]  # fmt: skip


@pytest.mark.parametrize("name,filename,content,options,pattern", BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_bad_series_file_is_one_line(tmp_path, name, filename, content, options, pattern):
    path = write(tmp_path, filename, content)
    with pytest.raises(GenzooError) as caught:
        load_dataset(path, prefer=("series",), **options)
    message = str(caught.value)
    assert "\n" not in message and re.search(pattern, message), message


def test_a_file_over_the_cap_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(series_module, "MAX_ROWS", 50)
    path = write(tmp_path, "big.csv", steps_csv(60))
    with pytest.raises(GenzooError, match=r"more than 50 rows; resample or cut it"):
        read_series(path)


def test_missing_statsmodels_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "statsmodels", None)  # as if it were not installed
    with pytest.raises(GenzooError, match=r"pip install 'genzoo\[timeseries\]'"):
        load_dataset("nile")


# ---- registered datasets ------------------------------------------------------------------------
@needs_statsmodels
@pytest.mark.parametrize(
    "name,length,freq,feature",
    [("co2", 526, "MS", "co2"), ("nile", 100, "YS", "volume"), ("elnino", 732, "MS", "temperature"),
     ("sunspots", 309, "YS", "SUNACTIVITY"), ("macrodata", 203, "QS", "realgdp")],
)  # fmt: skip
def test_statsmodels_series_load_with_their_length_and_frequency(name, length, freq, feature):
    data = load_dataset(name)
    frame = data.series[name]
    assert len(frame) == length and list(frame.columns) == [feature] and not frame.isna().any().any()
    assert to_offset(data.schema.freq) == to_offset(freq)
    assert data.info.shape == (24, 1) and data.test_start[name] == round(0.8 * length) + round(0.1 * length)
    assert SeriesSchema.from_json(data.info.series) == data.schema


@needs_statsmodels
def test_macrodata_features_pick_columns():
    data = load_dataset("macrodata", features="realgdp,cpi", window=8)
    assert data.schema.features == ["realgdp", "cpi"] and data.info.shape == (8, 2)
    with pytest.raises(
        GenzooError,
        match=r"data.features: dataset 'macrodata' has no value column 'gdp' \(did you mean 'realgdp'\?\)",
    ):
        load_dataset("macrodata", features="gdp")


def test_stocks_is_timegans_file_oldest_first():
    if find_shared_file("stock_data.csv") is None:
        pytest.skip("stock_data.csv is not in $GENZOO_DATA or ../shared/data")
    data = load_dataset("stocks")
    frame = data.series["stocks"]
    assert list(frame.columns) == ["Open", "High", "Low", "Close", "Adj_Close", "Volume"]
    assert frame["Close"].iloc[0] < frame["Close"].iloc[-1]  # Google's 2004 price first
    assert data.info.shape == (24, 6)
    assert sum(len(data.split(k)) for k in data.split_names) == len(frame) - 24 + 1


def test_stocks_without_the_file_says_where_to_put_it(monkeypatch):
    monkeypatch.setattr(series_module, "find_shared_file", lambda name: None)
    with pytest.raises(GenzooError, match=r"stock_data.csv not found .* put TimeGAN's"):
        load_dataset("stocks")

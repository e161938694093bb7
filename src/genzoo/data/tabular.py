"""Tables: a CSV (or Parquet) file as a dataset of rows, with each column's kind inferred or declared.

- `adult`: UCI Adult (../shared/data/adult.csv, 32,561 rows), `?` read as missing, target `income`.
- any `.csv`, `.tsv` or `.parquet` path (Parquet needs pyarrow).

Both are split 80/10/10 by a seeded permutation of the rows (`split_seed`, default 0).

Column kinds: `continuous`, `integer`, `datetime`, `categorical`, `boolean`, and `id` (a column
whose every value is different, such as a customer number: flagged and left out, since a model
can only copy it). Inferred from the values and overridable per column (`--set columns.age=integer`)
or by a metadata JSON (`--set metadata=table.json`), the same format `TableSchema.to_json` writes
and every run saves as `table.json`, so a schema round-trips.

In the `Dataset` a row is a float vector with one entry per modelled column, in the column's own
units: numbers as they are (datetimes as days since 1970-01-01), a category as its index in the
column's category list, and a missing number as NaN. A missing category is a category of its own
(the last one, shown as empty in a CSV), so missingness is modelled, not dropped. `TableSchema`
turns such rows back into a DataFrame with the original columns, dtypes and categories.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from genzoo.data.base import DataInfo, Dataset, find_shared_file
from genzoo.data.registry import register_dataset
from genzoo.errors import GenzooError, first_line, unknown_name

Kind = Literal["continuous", "integer", "datetime", "categorical", "boolean", "id"]
KINDS: tuple[str, ...] = ("continuous", "integer", "datetime", "categorical", "boolean", "id")
NUMERIC_KINDS = ("continuous", "integer", "datetime")
MISSING = None  # the category that stands for a missing value, last in a column's list
SPLIT_FRACTIONS = (0.8, 0.1)  # train, val; test is the rest
MAX_ROWS = 5_000_000  # beyond this a table is refused up front (rows are held in memory as float32)
TABLE_SUFFIXES = (".csv", ".tsv", ".parquet")
_EPOCH = pd.Timestamp("1970-01-01")


@dataclass
class Column:
    """One modelled column: its kind, and what a synthetic value of it may be."""

    name: str
    kind: Kind
    categories: list[Any] | None = None  # categorical, boolean: the values, MISSING last when present
    low: float | None = None  # numeric: the smallest and largest value seen in training
    high: float | None = None
    missing: bool = False  # numeric: some values are missing
    decimals: int | None = None  # continuous: the decimals the input was written with

    @property
    def is_numeric(self) -> bool:
        return self.kind in NUMERIC_KINDS


@dataclass
class TableSchema:
    """The columns of a table, in order, with the target column (if any) and the columns left out."""

    columns: list[Column]
    target: str | None = None
    dropped: list[str] = field(default_factory=list)  # `id` columns, kept out of the model

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise unknown_name("column", name, self.names)

    def kinds(self) -> dict[str, str]:
        return {c.name: c.kind for c in self.columns}

    def to_json(self) -> str:
        return json.dumps({"columns": [asdict(c) for c in self.columns], "target": self.target,
                           "dropped": self.dropped}, indent=1, default=_plain)  # fmt: skip

    @classmethod
    def from_json(cls, text: str, source: str = "the table schema") -> TableSchema:
        try:
            payload = json.loads(text)
            columns = [Column(**c) for c in payload["columns"]]
            for c in columns:
                if c.kind not in KINDS:
                    raise ValueError(f"column '{c.name}' has unknown kind '{c.kind}'")
            return cls(columns, payload.get("target"), list(payload.get("dropped", [])))
        except (ValueError, KeyError, TypeError) as err:
            raise GenzooError(f"{source} is not a genzoo table schema ({first_line(err)})") from None

    # ---- rows <-> frames ---------------------------------------------------------------
    def encode(self, frame: pd.DataFrame) -> torch.Tensor:
        """Rows of `frame` as a float tensor (N, columns), as the module docstring describes."""
        out = np.empty((len(frame), len(self.columns)), dtype=np.float64)
        for j, c in enumerate(self.columns):
            values = frame[c.name]
            if c.kind == "datetime":
                out[:, j] = _days(values)
            elif c.is_numeric:
                out[:, j] = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
            else:
                index = {_key(v): i for i, v in enumerate(c.categories or [])}
                if c.kind == "boolean":
                    values = values.map(lambda v: None if _is_missing(v) else _to_bool(v))
                keys = [_key(None if _is_missing(v) else v) for v in values]
                unseen = [k for k in keys if k not in index]
                if unseen:
                    raise GenzooError(
                        f"column '{c.name}' has the value '{unseen[0]}', which training never saw; "
                        f"its values are: {_shown(c.categories)}"
                    )
                out[:, j] = [index[k] for k in keys]
        return torch.from_numpy(out.astype(np.float32))

    def decode(self, rows: torch.Tensor) -> pd.DataFrame:
        """The DataFrame of rows (N, columns): numbers clipped to the training range and rounded
        as the input was written, categories looked up, missing values restored."""
        rows = rows.detach().cpu().double().numpy()
        data: dict[str, Any] = {}
        for j, c in enumerate(self.columns):
            x = rows[:, j]
            if c.is_numeric:
                x = np.clip(x, c.low, c.high)  # NaN stays NaN: a missing value
                if c.kind == "continuous":
                    x = np.round(x, c.decimals) if c.decimals is not None else x
                    data[c.name] = pd.Series(x, dtype="float64")
                elif c.kind == "integer":
                    data[c.name] = pd.Series(np.round(x), dtype="float64").astype("Int64")
                else:
                    data[c.name] = _EPOCH + pd.to_timedelta(x, unit="D")
            else:
                cats = c.categories or []
                index = np.clip(np.nan_to_num(x, nan=0.0).round().astype(np.int64), 0, len(cats) - 1)
                values = [cats[i] for i in index]
                if c.kind == "boolean":
                    data[c.name] = pd.Series(values, dtype="boolean")
                else:
                    data[c.name] = pd.Series(values, dtype="object")
        return pd.DataFrame(data)

    def where_codes(self, where: dict[str, Any] | str) -> dict[int, float]:
        """Conditions `{column: value}` (or "col=value,col=value") as {column index: row value};
        a condition on a number takes that number, on a category its index."""
        if isinstance(where, str):
            where = parse_where(where)
        codes: dict[int, float] = {}
        for name, value in where.items():
            if name not in self.names:
                raise GenzooError(
                    f"--where names the column '{name}', which the table does not model; "
                    f"its columns are: {_shown(self.names)}"
                )
            j = self.names.index(name)
            c = self.columns[j]
            if c.is_numeric:
                number = _days(pd.Series([value]))[0] if c.kind == "datetime" else _to_float(value)
                if number is None or not np.isfinite(number):
                    raise GenzooError(f"--where {name}={value}: '{name}' is {c.kind}; give a number")
                codes[j] = float(number)
            else:
                keys = [_key(v) for v in c.categories or []]
                if _key(_parse_value(value, c)) not in keys:
                    raise GenzooError(
                        f"--where {name}={value}: '{value}' is not a value of '{name}'; "
                        f"its values are: {_shown(c.categories)}"
                    )
                codes[j] = float(keys.index(_key(_parse_value(value, c))))
        return codes


class TableDataset(Dataset):
    """A table's splits as row tensors, with its schema and the original frames (for metrics)."""

    def __init__(self, info: DataInfo, schema: TableSchema, frames: dict[str, pd.DataFrame]):
        splits = {k: (schema.encode(f), torch.full((len(f),), -1)) for k, f in frames.items()}
        super().__init__(info, splits)
        self.schema = schema
        self.frames = frames


# ---- reading ----------------------------------------------------------------------------------
def read_table(path: Path, *, na_values: tuple[str, ...] = ()) -> pd.DataFrame:
    """A CSV/TSV/Parquet file as a DataFrame of strings and numbers; every failure a GenzooError."""
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise GenzooError(f"'{path}' is not a table file; give a {', '.join(TABLE_SUFFIXES)} file")
    try:
        if suffix == ".parquet":
            try:
                import pyarrow  # noqa: F401
            except ImportError:
                raise GenzooError("reading Parquet needs pyarrow: pip install pyarrow") from None
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(
                path,
                sep="\t" if suffix == ".tsv" else ",",
                skipinitialspace=True,
                na_values=list(na_values),
                encoding="utf-8",
                low_memory=False,
            )
    except GenzooError:
        raise
    except pd.errors.EmptyDataError:
        raise GenzooError(f"'{path}' is empty; give a table with a header row and data rows") from None
    except UnicodeDecodeError as err:
        raise GenzooError(f"'{path}' is not UTF-8 text (byte {err.start}): not a CSV file?") from None
    except (pd.errors.ParserError, ValueError, OSError) as err:
        raise GenzooError(f"cannot read '{path}' as a table ({first_line(err)})") from None
    if frame.shape[1] == 0 or len(frame) == 0:
        raise GenzooError(f"'{path}' has no data rows; a table needs a header and at least 10 rows")
    if len(frame) > MAX_ROWS:
        raise GenzooError(f"'{path}' has {len(frame):,} rows, more than {MAX_ROWS:,}; sample it down first")
    unnamed = [str(c) for c in frame.columns if str(c).startswith("Unnamed:")]
    if unnamed and len(unnamed) == frame.shape[1]:
        raise GenzooError(f"'{path}' has no header row; its first line must name the columns")
    if frame.columns.duplicated().any():
        raise GenzooError(f"'{path}' names a column twice: {frame.columns[frame.columns.duplicated()][0]}")
    return frame


def infer_schema(
    frame: pd.DataFrame, declared: dict[str, str] | None = None, target: str | None = None
) -> TableSchema:
    """Each column's kind (declared ones as given), categories and ranges, from `frame`."""
    declared = dict(declared or {})
    for name, kind in declared.items():
        if name not in frame.columns:
            raise GenzooError(f"columns.{name}: the table has no column '{name}'; its columns are: "
                              f"{_shown(list(frame.columns))}")  # fmt: skip
        if kind not in KINDS:
            raise unknown_name(f"kind for column '{name}'", kind, KINDS)
    if target is not None and target not in frame.columns:
        raise GenzooError(f"target column '{target}' is not in the table; its columns are: "
                          f"{_shown(list(frame.columns))}")  # fmt: skip
    columns, dropped = [], []
    for name in frame.columns:
        values = frame[name]
        if values.isna().all():
            raise GenzooError(f"column '{name}' has no values at all; drop it from the file or fill it")
        kind = declared.get(name) or _infer_kind(values, str(name))
        if kind == "id":
            dropped.append(str(name))
            continue
        columns.append(_describe(str(name), kind, values))
    if not columns:
        raise GenzooError(
            "every column of the table is an ID column; declare one with --set columns.NAME=KIND"
        )
    if target is not None and target in dropped:
        raise GenzooError(f"target column '{target}' looks like an ID (all values differ); declare its kind")
    return TableSchema(columns, target, dropped)


def _infer_kind(values: pd.Series, name: str) -> str:
    present = values.dropna()
    if pd.api.types.is_bool_dtype(values) or _is_boolean_text(present):
        return "boolean"
    if pd.api.types.is_datetime64_any_dtype(values):
        return "datetime"
    numbers = present if pd.api.types.is_numeric_dtype(values) else pd.to_numeric(present, errors="coerce")
    parsed = numbers.notna().mean() if len(present) else 0.0
    if parsed == 1.0:
        whole = bool(np.all(np.mod(numbers.to_numpy(dtype=np.float64), 1) == 0))
        if whole and present.nunique() == len(values) and len(values) >= 20:
            return "id"
        return "integer" if whole else "continuous"
    if parsed >= 0.5:
        bad = present[numbers.isna()].iloc[0]
        raise GenzooError(
            f"column '{name}' mixes numbers and text (e.g. '{bad}'); fix the file, or declare it "
            f"with --set columns.{name}=categorical"
        )
    if _looks_like_dates(present):
        return "datetime"
    if present.nunique() == len(values) and len(values) >= 20:
        return "id"
    return "categorical"


def _describe(name: str, kind: str, values: pd.Series) -> Column:
    if kind in ("categorical", "boolean"):
        present = values.dropna()
        if kind == "boolean":
            present = present.map(_to_bool)
            if present.isna().any():
                raise GenzooError(f"column '{name}' is declared boolean but has other values")
        else:
            present = present.astype(str)
        # Most frequent first (ties by value), so category indices read naturally.
        counts = present.value_counts()
        cats = sorted(counts.index, key=lambda v: (-counts[v], str(v)))
        cats = [bool(v) if kind == "boolean" else str(v) for v in cats]
        if values.isna().any():
            cats.append(MISSING)
        return Column(name, kind, categories=cats)
    if kind == "datetime":
        days = _days(values)
        if np.isnan(days).all():
            raise GenzooError(f"column '{name}' is declared datetime but no value reads as a date")
        return Column(name, kind, low=float(np.nanmin(days)), high=float(np.nanmax(days)),
                      missing=bool(np.isnan(days).any()))  # fmt: skip
    numbers = pd.to_numeric(values, errors="coerce")
    if numbers.notna().sum() < values.notna().sum():
        bad = values[numbers.isna() & values.notna()].iloc[0]
        raise GenzooError(f"column '{name}' is declared {kind} but has the value '{bad}'")
    x = numbers.to_numpy(dtype=np.float64)
    decimals = _decimals(values) if kind == "continuous" else None
    return Column(name, kind, low=float(np.nanmin(x)), high=float(np.nanmax(x)),
                  missing=bool(np.isnan(x).any()), decimals=decimals)  # fmt: skip


def _decimals(values: pd.Series) -> int | None:
    """The most decimals any value was written with (up to 6), so synthetic values look alike."""
    text = values.dropna().astype(str).head(10_000)
    if text.str.contains("e", case=False).any():
        return None
    places = text.str.split(".").str[1].str.len().fillna(0)
    return int(min(places.max(), 6))


def _is_boolean_text(present: pd.Series) -> bool:
    if present.empty or pd.api.types.is_numeric_dtype(present):
        return False
    return bool(present.map(_to_bool).notna().all())


def _to_bool(value: Any) -> bool | None:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    return {"true": True, "false": False, "yes": True, "no": False}.get(str(value).strip().lower())


def _looks_like_dates(present: pd.Series) -> bool:
    sample = present.astype(str).head(200)
    if not sample.str.contains(r"\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}", regex=True).all():
        return False
    return bool(pd.to_datetime(sample, errors="coerce", format="mixed").notna().all())


def _days(values: pd.Series) -> np.ndarray:
    stamps = pd.to_datetime(values, errors="coerce", format="mixed")
    return ((stamps - _EPOCH) / pd.Timedelta(days=1)).to_numpy(dtype=np.float64, na_value=np.nan)


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA


def _key(value: Any) -> str:
    return "\0missing" if value is None else str(value)


def _parse_value(value: Any, column: Column) -> Any:
    if column.kind == "boolean":
        return _to_bool(value)
    return None if value in ("", None) else str(value).strip()


def _to_float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _shown(values: list[Any] | None, limit: int = 12) -> str:
    shown = ["(missing)" if v is None else str(v) for v in (values or [])[:limit]]
    more = len(values or []) - limit
    return ", ".join(shown) + (f", ... ({more} more)" if more > 0 else "")


def parse_where(text: str) -> dict[str, str]:
    """ "sex=Female,income=>50K" -> {"sex": "Female", "income": ">50K"} (a value may hold '=')."""
    conditions: dict[str, str] = {}
    for part in (p for p in text.split(",") if p.strip()):
        name, eq, value = part.partition("=")
        if not eq or not name.strip():
            raise GenzooError(f"--where takes COLUMN=VALUE pairs separated by commas, got '{part}'")
        conditions[name.strip()] = value.strip()
    if not conditions:
        raise GenzooError("--where is empty; give COLUMN=VALUE pairs separated by commas")
    return conditions


# ---- the datasets -------------------------------------------------------------------------------
def table_dataset(
    frame: pd.DataFrame,
    name: str,
    *,
    columns: dict[str, str] | None = None,
    metadata: str | Path | None = None,
    target: str | None = None,
    split_seed: int = 0,
) -> TableDataset:
    """Split `frame` 80/10/10 by a seeded permutation and describe it (`columns` declares kinds,
    `metadata` is a schema JSON whose kinds and target are used as declared)."""
    if metadata is not None:
        path = Path(metadata).expanduser()
        if not path.is_file():
            raise GenzooError(f"metadata file '{path}' does not exist")
        given = TableSchema.from_json(path.read_text(encoding="utf-8", errors="replace"), f"'{path}'")
        columns = {**given.kinds(), **{n: "id" for n in given.dropped}, **(columns or {})}
        target = target or given.target
    if len(frame) < 10:
        raise GenzooError(f"the table has {len(frame)} rows; at least 10 are needed to split and train")
    # Kinds, ranges and categories from every row, so a value of val or test is never unseen.
    schema = infer_schema(frame, columns, target)
    order = np.random.default_rng(split_seed).permutation(len(frame))
    n_train = int(round(SPLIT_FRACTIONS[0] * len(frame)))
    n_val = int(round(SPLIT_FRACTIONS[1] * len(frame)))
    parts = {
        "train": order[:n_train],
        "val": order[n_train : n_train + n_val],
        "test": order[n_train + n_val :],
    }
    frames = {k: frame.iloc[idx][schema.names].reset_index(drop=True) for k, idx in parts.items()}
    info = DataInfo(
        name=name,
        modality="table",
        shape=(len(schema.columns),),
        levels=None,
        low=0.0,
        high=1.0,
        table=schema.to_json(),
    )
    return TableDataset(info, schema, frames)


@register_dataset("adult")
def load_adult(
    columns: dict[str, str] | None = None,
    metadata: str | None = None,
    target: str = "income",
    split_seed: int = 0,
) -> TableDataset:
    found = find_shared_file("adult.csv")
    if found is None:
        raise GenzooError(
            "adult.csv not found in $GENZOO_DATA or ../shared/data; download adult.data from the UCI "
            "repository (add its header row) or give the CSV's path as --data"
        )
    frame = read_table(found, na_values=("?",))
    return table_dataset(
        frame, "adult", columns=columns, metadata=metadata, target=target, split_seed=split_seed
    )


@register_dataset("table-file", reads=lambda p: p.is_file() and p.suffix.lower() in TABLE_SUFFIXES)
def load_table_file(
    path: Path,
    columns: dict[str, str] | None = None,
    metadata: str | None = None,
    target: str | None = None,
    split_seed: int = 0,
) -> TableDataset:
    frame = read_table(path)
    return table_dataset(
        frame, path.stem, columns=columns, metadata=metadata, target=target, split_seed=split_seed
    )

"""Tables a user can get wrong: each ends as exit code 2 and one line, with their files untouched;
and what a right table does: kinds inferred and overridden, a schema that round-trips, CSV out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_bad_inputs import assert_user_error

from genzoo.cli import main
from genzoo.data import load_dataset
from genzoo.data.tabular import TableSchema


def people(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sex = rng.choice(["Female", "Male"], n)
    age = rng.integers(18, 90, n)
    income = np.where(rng.random(n) < 0.3, ">50K", "<=50K")
    hours = np.round(rng.normal(40, 8, n), 1)
    hours[rng.random(n) < 0.1] = np.nan
    member_id = np.arange(1000, 1000 + n)
    return pd.DataFrame({"id": member_id, "sex": sex, "age": age, "hours": hours, "income": income})


@pytest.fixture(scope="module")
def table_run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("table")
    people().to_csv(folder / "people.csv", index=False)
    run = folder / "run"
    argv = [
        "train",
        "tvae",
        "--data",
        str(folder / "people.csv"),
        "--out",
        str(run),
        "--max-steps",
        "2",
        "--quiet",
    ]
    assert main(argv) == 0
    return run


def write(tmp: Path, name: str, content: str | bytes) -> Path:
    path = tmp / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def train_on(path: Path, tmp: Path, *extra: str) -> list[str]:
    return ["train", "tvae", "--data", str(path), "--out", str(tmp / "new"), "--max-steps", "1", *extra]


ALL_MISSING = "x,y\n" + "".join(f"{i},\n" for i in range(30))
GOOD = people().to_csv(index=False)
DATA_CASES = [
    ("empty-file", "t.csv", "", [], "is empty"),
    ("header-only", "t.csv", "a,b\n", [], "has no data rows"),
    ("one-row", "t.csv", "a,b\n1,x\n", [], "at least 10 are needed"),
    ("all-missing-column", "t.csv", ALL_MISSING, [], "column 'y' has no values at all"),
    (
        "mixed-types",
        "t.csv",
        "y,x\n" + "".join(f"a,{i}\n" for i in range(30)) + "b,oops\n",
        [],
        "mixes numbers",
    ),
    ("not-text", "t.csv", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, [], "not UTF-8"),
    (
        "target-missing",
        "t.csv",
        GOOD,
        ["--set", "target=salary"],
        "target column 'salary' is not in the table",
    ),
    ("declared-unknown-column", "t.csv", GOOD, ["--set", "columns.weight=integer"], "has no column 'weight'"),
    ("declared-unknown-kind", "t.csv", GOOD, ["--set", "columns.age=number"], "unknown kind"),
    (
        "declared-wrong-kind",
        "t.csv",
        GOOD,
        ["--set", "columns.sex=integer"],
        "declared integer but has the value",
    ),
    ("metadata-not-schema", "t.csv", GOOD, ["--set", "metadata={tmp}/t.csv"], "is not a genzoo table schema"),
]


@pytest.mark.parametrize(
    "name, content, extra, fragment", [c[1:] for c in DATA_CASES], ids=[c[0] for c in DATA_CASES]
)
def test_bad_table_is_one_line(tmp_path, capsys, name, content, extra, fragment):
    path = write(tmp_path, name, content)
    extra = [e.format(tmp=tmp_path) for e in extra]
    assert_user_error(capsys, train_on(path, tmp_path, *extra), fragment, [path])
    assert not (tmp_path / "new").exists()


def sample_argv(run: Path, tmp: Path, *extra: str) -> list[str]:
    return ["sample", str(run), "-n", "20", "--out", str(tmp / "s.csv"), *extra]


RUN_CASES = [
    ("where-unknown-column", lambda r, t: sample_argv(r, t, "--where", "colour=red"), "does not model"),
    (
        "where-unknown-value",
        lambda r, t: sample_argv(r, t, "--where", "sex=Martian"),
        "is not a value of 'sex'",
    ),
    ("where-number-not-number", lambda r, t: sample_argv(r, t, "--where", "age=old"), "give a number"),
    ("where-malformed", lambda r, t: sample_argv(r, t, "--where", "sex"), "COLUMN=VALUE"),
    ("where-dropped-id", lambda r, t: sample_argv(r, t, "--where", "id=1001"), "does not model"),
    (
        "out-not-csv",
        lambda r, t: ["sample", str(r), "-n", "5", "--out", str(t / "s.png")],
        "must end in .csv",
    ),
    (
        "evaluate-target-missing",
        lambda r, t: ["evaluate", str(r), "--metrics", "ml_efficacy", "--target", "nope"],
        "nope",
    ),
    ("evaluate-image-metric", lambda r, t: ["evaluate", str(r), "--metrics", "fid"], "tables use quality"),
]


@pytest.mark.parametrize("argv, fragment", [c[1:] for c in RUN_CASES], ids=[c[0] for c in RUN_CASES])
def test_bad_table_command_is_one_line(table_run, tmp_path, capsys, argv, fragment):
    line = assert_user_error(capsys, argv(table_run, tmp_path), fragment, [table_run])
    assert line
    assert not (tmp_path / "s.csv").exists()


# ---- what a right table gives --------------------------------------------------------------------


def test_kinds_are_inferred_and_the_id_left_out(tmp_path):
    path = write(tmp_path, "p.csv", GOOD)
    data = load_dataset(str(path))
    assert data.schema.kinds() == {"sex": "categorical", "age": "integer", "hours": "continuous",
                                   "income": "categorical"}  # fmt: skip
    assert data.schema.dropped == ["id"]
    assert data.schema.column("hours").missing and data.schema.column("hours").decimals == 1
    sizes = [len(data.frames[s]) for s in ("train", "val", "test")]
    assert sizes == [160, 20, 20]


def test_schema_round_trips_as_metadata(tmp_path):
    path = write(tmp_path, "p.csv", GOOD)
    declared = load_dataset(str(path), columns={"age": "categorical"}, target="income")
    meta = tmp_path / "table.json"
    meta.write_text(declared.schema.to_json())
    again = load_dataset(str(path), metadata=str(meta))
    assert again.schema == declared.schema
    assert TableSchema.from_json(meta.read_text()) == declared.schema


def test_rows_decode_to_the_input_values(tmp_path):
    path = write(tmp_path, "p.csv", GOOD)
    data = load_dataset(str(path))
    frame = data.frames["train"]
    decoded = data.schema.decode(data.split("train").tensors[0])
    for name in frame.columns:
        a, b = frame[name].astype(str).tolist(), decoded[name].astype(str).replace("<NA>", "nan").tolist()
        assert a == b, name


def test_sampled_csv_has_the_columns_types_and_conditions(table_run, tmp_path, capsys):
    out = tmp_path / "s.csv"
    assert main(sample_argv(table_run, tmp_path, "--where", "sex=Female,income=>50K", "--quiet")) == 0
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["sex", "age", "hours", "income"] and len(frame) == 20
    assert set(frame["sex"]) == {"Female"} and set(frame["income"]) == {">50K"}
    assert pd.api.types.is_integer_dtype(frame["age"])
    hours = frame["hours"].dropna()
    assert np.allclose(hours, hours.round(1))
    assert json.loads((table_run / "table.json").read_text())["dropped"] == ["id"]


def test_parquet_reads_like_csv(tmp_path):
    pytest.importorskip("pyarrow")
    people().to_parquet(tmp_path / "p.parquet", index=False)
    write(tmp_path, "p.csv", GOOD)
    a, b = load_dataset(str(tmp_path / "p.parquet")), load_dataset(str(tmp_path / "p.csv"))
    assert a.schema.kinds() == b.schema.kinds()


def test_parquet_without_pyarrow_says_how_to_get_it(tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if it were not installed
    path = write(tmp_path, "p.parquet", b"PAR1")
    assert_user_error(capsys, train_on(path, tmp_path), "pip install pyarrow", [path])


def test_a_tsv_table_loads_as_a_table_and_two_fields_as_pairs(tmp_path):
    from genzoo.data import load_dataset

    table = tmp_path / "people.tsv"
    table.write_text(
        "age\tcity\tscore\n" + "".join(f"{20 + i % 7}\t{'AB'[i % 2]}\t{i * 0.5}\n" for i in range(30))
    )
    data = load_dataset(table)
    assert data.info.modality == "table" and data.schema.names == ["age", "city", "score"]
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("".join(f"in {i}\tout {i}\n" for i in range(10)))
    assert load_dataset(pairs).info.modality == "text-pairs"

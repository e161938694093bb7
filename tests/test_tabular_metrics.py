"""Table metrics: quality against sdmetrics' own QualityReport, and detection, ML efficacy and
privacy on tables whose right answer is known (same distribution, shifted, copied, shuffled)."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_wine

from genzoo.errors import GenzooError
from genzoo.metrics.tabular import (
    TABLE_METRICS,
    detection_auc,
    ml_efficacy,
    privacy,
    quality_report,
    table_metrics,
)

ADULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "adult.csv"
SDTYPES = {
    "continuous": "numerical",
    "integer": "numerical",
    "datetime": "datetime",
    "categorical": "categorical",
    "boolean": "boolean",
    "id": "id",
}
KINDS = {
    "x": "continuous",
    "y": "continuous",
    "z": "continuous",
    "k": "integer",
    "when": "datetime",
    "cat": "categorical",
    "color": "categorical",
    "flag": "boolean",
    "label": "categorical",
    "const": "continuous",
}
# The same formulas in another order of float operations: agreement to ~1e-15, so 1e-9 is ample.
TOL = 1e-9


def _table(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    """A mixed table with missing values in every kind; `shift` moves most columns' distributions."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n) + shift
    y = 0.8 * x + 0.6 * rng.normal(size=n)
    z = rng.exponential(1.0 + shift, size=n)
    table = pd.DataFrame(
        {
            "x": x,
            "y": y,
            "z": z,
            "k": rng.poisson(3 + 2 * shift, size=n),
            "when": pd.Timestamp("2020-01-01")
            + pd.to_timedelta(rng.integers(0, 1000, n), unit="D")
            + pd.to_timedelta(10 * x, unit="h"),
            "cat": np.where(
                x + 0.3 * rng.normal(size=n) > 0, "hi", np.where(rng.random(n) < 0.5, "lo", "mid")
            ),
            "color": rng.choice(["red", "green", "blue", "teal"], size=n, p=[0.4, 0.3, 0.2, 0.1]),
            "flag": pd.array(x > 0.5, dtype="boolean"),
            "label": np.where(x + 0.5 * z + 0.5 * rng.normal(size=n) > 1.5, ">50K", "<=50K"),
            "const": np.full(n, 2.0),
        }
    )
    for column, share in (("x", 0.05), ("z", 0.1), ("cat", 0.07), ("flag", 0.05), ("when", 0.05)):
        table.loc[rng.random(n) < share, column] = None
    return table


def _perturbed(real: pd.DataFrame, seed: int) -> pd.DataFrame:
    """A noisy copy: jittered numbers, some categories swapped, a category the real table lacks."""
    rng = np.random.default_rng(seed)
    fake = real.copy()
    n = len(fake)
    for column in ("x", "y", "z"):
        fake[column] = fake[column] + 0.3 * rng.normal(size=n)
    fake["k"] = fake["k"] + rng.integers(-1, 2, size=n)
    fake["when"] = fake["when"] + pd.to_timedelta(rng.integers(-30, 30, n), unit="D")
    fake.loc[rng.random(n) < 0.2, "color"] = "purple"
    fake.loc[rng.random(n) < 0.1, "cat"] = None
    return fake


def _sdmetrics_report(real: pd.DataFrame, fake: pd.DataFrame, kinds: dict[str, str], thresholds: bool):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the single-table report is deprecated in favour of a unified one
        from sdmetrics.reports.single_table import QualityReport

        report = QualityReport()
        if not thresholds:
            report.real_correlation_threshold = 0
            report.real_association_threshold = 0
        metadata = {"columns": {c: {"sdtype": SDTYPES[kinds[c]]} for c in real.columns}}
        report.generate(real, fake, metadata, verbose=False)
    return report


def _same(mine: float | None, theirs: float) -> bool:
    """genzoo says None where sdmetrics says NaN (an undefined score)."""
    if mine is None:
        return math.isnan(theirs)
    return abs(mine - theirs) <= TOL


def _assert_matches_sdmetrics(
    real: pd.DataFrame, fake: pd.DataFrame, kinds: dict[str, str], thresholds: bool
):
    pytest.importorskip("sdmetrics")
    report = _sdmetrics_report(real, fake, kinds, thresholds)
    zero = {} if thresholds else {"correlation_threshold": 0, "association_threshold": 0}
    mine = quality_report(real, fake, kinds, **zero)
    json.dumps(mine, allow_nan=False)  # plain JSON, no NaN

    properties = report.get_properties().set_index("Property")["Score"]
    assert _same(mine["column_shapes"], properties["Column Shapes"])
    assert _same(mine["column_pair_trends"], properties["Column Pair Trends"])
    assert _same(mine["quality_score"], report.get_score())

    shapes = report.get_details("Column Shapes")
    assert list(shapes["Column"]) == list(mine["column_scores"])
    for column, score in zip(shapes["Column"], shapes["Score"], strict=True):
        assert _same(mine["column_scores"][column], score), column

    pairs = report.get_details("Column Pair Trends")
    keys = [f"{a}|{b}" for a, b in zip(pairs["Column 1"], pairs["Column 2"], strict=True)]
    assert keys == list(mine["pair_scores"])
    counted = pairs["Meets Threshold?"].fillna(False).astype(bool) & pairs["Score"].notna()
    assert [k for k, c in zip(keys, counted, strict=True) if c] == mine["pairs_counted"]
    for key, score, count in zip(keys, pairs["Score"], counted, strict=True):
        if count or not thresholds:  # below a threshold sdmetrics leaves the score out (NaN)
            assert _same(mine["pair_scores"][key], score), key
    return mine


@pytest.mark.parametrize("thresholds", [True, False], ids=["thresholds", "every-pair"])
def test_quality_matches_sdmetrics_on_mixed_table(thresholds):
    real = _table(1500, seed=0)
    mine = _assert_matches_sdmetrics(real, _perturbed(real, seed=1), KINDS, thresholds)
    # The case is not trivial: scores below 1, constant-column pairs left out, a trend counted.
    assert 0.5 < mine["quality_score"] < 0.99
    assert mine["pair_scores"]["x|const"] is None and "x|y" in mine["pairs_counted"]


def test_quality_matches_sdmetrics_on_independent_draw():
    _assert_matches_sdmetrics(_table(1200, seed=2), _table(900, seed=3, shift=0.4), KINDS, thresholds=True)


@pytest.mark.parametrize("thresholds", [True, False], ids=["thresholds", "every-pair"])
def test_quality_matches_sdmetrics_on_degenerate_columns(thresholds):
    real, fake = _table(600, seed=4), _table(500, seed=5, shift=0.3)
    real["cat"] = "hi"  # one category in the real table: no association to measure
    fake["z"] = np.nan  # a column the synthetic table never fills
    fake["color"] = "red"
    fake["k"] = 5  # constant in the synthetic table only
    mine = _assert_matches_sdmetrics(real, fake, KINDS, thresholds)
    assert mine["column_scores"]["z"] is None


def test_quality_matches_sdmetrics_on_wine():
    wine = load_wine(as_frame=True).frame
    wine["cultivar"] = wine.pop("target").map({0: "a", 1: "b", 2: "c"})
    wine["strong"] = np.where(wine["alcohol"] > 13, "yes", "no")
    wine.loc[::7, "strong"] = None
    kinds = {c: "continuous" for c in wine.columns} | {
        "magnesium": "integer",
        "cultivar": "categorical",
        "strong": "categorical",
    }
    rng = np.random.default_rng(0)
    fake = wine.sample(frac=1.0, replace=True, random_state=0).reset_index(drop=True)
    fake["alcohol"] += 0.2 * rng.normal(size=len(fake))
    fake["proline"] = fake["proline"].sample(frac=1.0, random_state=1).to_numpy()  # breaks its trends
    for thresholds in (True, False):
        _assert_matches_sdmetrics(wine, fake, kinds, thresholds)


def test_quality_matches_sdmetrics_on_adult():
    if not ADULT.exists():
        pytest.skip(f"{ADULT} is not there")
    adult = pd.read_csv(ADULT, skipinitialspace=True, nrows=3000)
    kinds = {
        c: "integer" if pd.api.types.is_numeric_dtype(adult[c]) else "categorical" for c in adult.columns
    }
    real, fake = adult.iloc[:1500].reset_index(drop=True), adult.iloc[1500:].reset_index(drop=True)
    fake["age"] += np.random.default_rng(0).integers(-3, 4, len(fake))
    fake.loc[::9, "occupation"] = None
    _assert_matches_sdmetrics(real, fake, kinds, thresholds=True)


def test_quality_of_a_copy_is_one_and_units_do_not_matter():
    real = _table(500, seed=4)
    real["when"] = real["when"].dt.floor("s")
    assert quality_report(real, real.copy(), KINDS)["quality_score"] == pytest.approx(1.0, abs=1e-12)
    # sdmetrics compares raw integers, so seconds against nanoseconds scores 0; genzoo converts.
    in_seconds = real.assign(when=real["when"].astype("datetime64[s]"))
    assert quality_report(real, in_seconds, KINDS)["column_scores"]["when"] == pytest.approx(1.0)


def test_quality_of_one_column_has_no_pair_trends():
    real, fake = _table(300, seed=5)[["color"]], _table(300, seed=6)[["color"]]
    result = quality_report(real, fake, {"color": "categorical"})
    assert result["column_pair_trends"] is None and result["pair_scores"] == {}
    assert result["quality_score"] == result["column_shapes"] == result["column_scores"]["color"]


def test_detection_auc_same_versus_shifted_distribution():
    real = _table(1000, seed=10)
    same = detection_auc(real, _table(1000, seed=11), KINDS)
    assert abs(same["detection_auc"] - 0.5) < 0.1
    assert same["detection_score"] > 0.8
    shifted = detection_auc(real, _table(1000, seed=12, shift=2.5), KINDS)
    assert shifted["detection_auc"] > 0.9
    assert shifted["detection_score"] == pytest.approx(1 - (2 * shifted["detection_auc"] - 1))


def test_ml_efficacy_fresh_data_versus_shuffled_labels():
    train, fresh, test = _table(1500, seed=20), _table(1500, seed=21), _table(1500, seed=22)
    good = ml_efficacy(train, fresh, test, KINDS, target="label")
    assert good["metric"] == "f1" and good["positive_class"] == ">50K"
    assert good["real_score"] > 0.6
    assert good["ml_efficacy"] == pytest.approx(1.0, abs=0.15)  # F1 on 1500 test rows moves by ~0.05
    shuffled = fresh.assign(label=fresh["label"].sample(frac=1.0, random_state=0).to_numpy())
    assert ml_efficacy(train, shuffled, test, KINDS, target="label")["ml_efficacy"] < 0.5

    regression = ml_efficacy(train, fresh, test, KINDS, target="y")
    assert regression["metric"] == "r2" and regression["ml_efficacy"] == pytest.approx(1.0, abs=0.15)
    assert ml_efficacy(train, fresh, test, KINDS, target="color")["metric"] == "macro_f1"


def test_ml_efficacy_single_class_synthetic_scores_zero():
    train, test = _table(400, seed=23), _table(400, seed=24)
    one_class = _table(400, seed=25).assign(label="<=50K")
    result = ml_efficacy(train, one_class, test, KINDS, target="label")
    assert result["synthetic_score"] == 0.0 and result["ml_efficacy"] == 0.0
    assert "1 class" in result["notes"][0]


def test_privacy_copies_versus_fresh_draw():
    train, holdout = _table(800, seed=30), _table(800, seed=31)
    copied = privacy(train, train.sample(frac=1.0, random_state=0), holdout, KINDS)
    assert copied["exact_copy_rate"] == 1.0
    assert copied["dcr_share"] > 0.95 and copied["dcr_train_median"] == 0.0
    assert copied["mia_auc"] > 0.9
    fresh = privacy(train, _table(800, seed=32), holdout, KINDS)
    assert fresh["exact_copy_rate"] == 0.0
    assert abs(fresh["dcr_share"] - 0.5) < 0.1 and abs(fresh["mia_auc"] - 0.5) < 0.1
    assert fresh["dcr_train_median"] > 0 and fresh["privacy_rows"] == {
        "train": 800,
        "holdout": 800,
        "synthetic": 800,
    }


def test_privacy_caps_rows():
    train, holdout = _table(300, seed=33), _table(200, seed=34)
    result = privacy(train, _table(250, seed=35), holdout, KINDS, max_rows=150)
    assert result["privacy_rows"] == {"train": 150, "holdout": 150, "synthetic": 150}


def test_table_metrics_gives_every_key():
    train, fake, test = _table(300, seed=40), _table(300, seed=41), _table(300, seed=42)
    result = table_metrics(",".join(TABLE_METRICS), train, fake, test, KINDS, target="label")
    for key in ("quality_score", "column_shapes", "column_pair_trends", "detection_auc", "ml_efficacy"):
        assert key in result
    for key in ("dcr_share", "mia_auc", "exact_copy_rate"):
        assert key in result
    json.dumps(result, allow_nan=False)


def test_table_metrics_bad_names():
    table = _table(50, seed=43)
    with pytest.raises(GenzooError, match="choose one of: detection, ml_efficacy, privacy, quality"):
        table_metrics(["quality", "fid"], table, table, table, KINDS)
    with pytest.raises(GenzooError, match="give --set target=COLUMN"):
        table_metrics(["ml_efficacy"], table, table, table, KINDS)


def test_bad_inputs_raise_clear_errors():
    real = _table(50, seed=44)
    with pytest.raises(GenzooError, match="synthetic table is empty"):
        quality_report(real, real.iloc[:0], KINDS)
    with pytest.raises(GenzooError, match="missing color, flag"):
        quality_report(real, real.drop(columns=["color", "flag"]), KINDS)
    with pytest.raises(GenzooError, match="has extra extra"):
        quality_report(real, real.assign(extra=1.0), KINDS)
    with pytest.raises(GenzooError, match="does not have: nope; its columns are: x, y"):
        quality_report(real, real, KINDS | {"nope": "continuous"})
    with pytest.raises(GenzooError, match="no kind for the columns: color"):
        quality_report(real, real, {c: k for c, k in KINDS.items() if c != "color"})
    with pytest.raises(GenzooError, match="unknown kind for column 'x' 'numbr'"):
        quality_report(real, real, KINDS | {"x": "numbr"})
    with pytest.raises(GenzooError, match="'color' of the real table is declared continuous"):
        quality_report(real, real, KINDS | {"color": "continuous"})
    with pytest.raises(
        GenzooError, match="'when' of the synthetic table is declared datetime.*pd.to_datetime"
    ):
        quality_report(real, real.assign(when=real["when"].astype(str)), KINDS)
    with pytest.raises(GenzooError, match="'z' of the holdout table holds infinite values"):
        privacy(real, real, real.assign(z=np.inf), KINDS)
    with pytest.raises(GenzooError, match="must be a pandas DataFrame"):
        detection_auc(real, real.to_numpy(), KINDS)
    with pytest.raises(GenzooError, match="target 'lable' is not a column \\(did you mean 'label'\\?\\)"):
        ml_efficacy(real, real, real, KINDS, target="lable")

"""Metrics for synthetic tables: quality, detection, machine-learning efficacy and privacy.

Every function takes pandas DataFrames and ``kinds``, a map from column name to one of
``continuous``, ``integer``, ``datetime`` (datetime64 values), ``categorical``, ``boolean`` or
``id`` (an identifier: left out of every metric, as SDMetrics leaves out its ``id`` columns).
Each returns a flat dict of floats and small dicts, ready for JSON, keyed as in DESIGN.md.

- `quality_report`: SDMetrics' single-table QualityReport (sdmetrics 0.32), recomputed with numpy
  so that a 26k-row, 15-column table takes well under a second.
- `detection_auc`: how well a classifier tells real rows from synthetic ones (0.5 is best).
- `ml_efficacy`: train on synthetic, test on real, against train on real, test on real.
- `privacy`: distance to closest record (DCR) against a holdout, exact copies, and a
  distance-based membership inference attack.
- `table_metrics`: the above by name, merged into one dict.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from genzoo.errors import GenzooError, did_you_mean, unknown_name

# scipy.sparse and scikit-learn are imported where they are used: `import genzoo` reaches this
# module, and sklearn alone would add about a second to every CLI start.
if TYPE_CHECKING:
    from scipy import sparse

KINDS = ("continuous", "integer", "datetime", "categorical", "boolean", "id")
NUMERIC_KINDS = ("continuous", "integer", "datetime")
TABLE_METRICS = ("quality", "detection", "ml_efficacy", "privacy")

# sdmetrics 0.32's QualityReport counts a column pair in "Column Pair Trends" only when the real
# data show a trend worth keeping: |Pearson r| > 0.5 for two numeric columns, Cramer's V > 0.3
# otherwise. Set both to 0 for the older definition (every pair counts).
CORRELATION_THRESHOLD = 0.5
ASSOCIATION_THRESHOLD = 0.3
# sdmetrics rounds numbers to sys.float_info.dig - 1 decimals before its KS test, so values that
# differ only by float noise (0.1 + 0.2 vs 0.3) are not counted as different.
KS_DECIMALS = 14
HISTOGRAM_BINS = 10  # numpy's default, which sdmetrics uses to discretise a numeric column in a pair
DETECTION_FOLDS = 3
MAX_DETECTION_ROWS = 50_000  # per table, a seeded sample: bounds the three fits' time on huge tables
MAX_PRIVACY_ROWS = 5_000  # per table; nearest neighbours are quadratic in the rows
MAX_DENSE_WIDTH = 1_000  # encoded privacy columns up to which neighbour search runs on dense arrays
MAX_TREE_CATEGORIES = 255  # HistGradientBoosting's limit on a categorical feature's codes


# ----------------------------------------------------------------------------- input checks


def _check_frames(kinds: dict[str, str], real: pd.DataFrame, others: dict[str, pd.DataFrame]) -> list[str]:
    """The columns the metrics use (every column whose kind is not `id`), in the real table's order."""
    for name, frame in {"real": real, **others}.items():
        if not isinstance(frame, pd.DataFrame):
            raise GenzooError(f"the {name} table must be a pandas DataFrame, got {type(frame).__name__}")
        if frame.shape[0] == 0 or frame.shape[1] == 0:
            raise GenzooError(
                f"the {name} table is empty ({frame.shape[0]} rows, {frame.shape[1]} columns); "
                "give a table with at least one row"
            )
    columns = list(real.columns)
    unknown = [c for c in kinds if c not in columns]
    if unknown:
        raise GenzooError(
            f"kinds names columns the real table does not have: {_names(unknown)}; "
            f"its columns are: {_names(columns)}"
        )
    untyped = [c for c in columns if c not in kinds]
    if untyped:
        raise GenzooError(f"kinds gives no kind for the columns: {_names(untyped)}; add them to kinds")
    for column, kind in kinds.items():
        if kind not in KINDS:
            raise unknown_name(f"kind for column '{column}'", kind, KINDS)
    used = [c for c in columns if kinds[c] != "id"]
    if not used:
        raise GenzooError("every column has kind 'id'; there is nothing to measure")
    for name, frame in others.items():
        missing = [c for c in used if c not in frame.columns]
        extra = [c for c in frame.columns if c not in kinds]
        if missing or extra:
            what = [f"missing {_names(missing)}"] if missing else []
            what += [f"has extra {_names(extra)}"] if extra else []
            raise GenzooError(
                f"the {name} table's columns differ from the real table's: {'; '.join(what)}; "
                "give it the real table's columns"
            )
    for name, frame in {"real": real, **others}.items():
        for column in used:
            _check_dtype(frame[column], kinds[column], name)
    return used


def _names(columns: Iterable[Any]) -> str:
    return ", ".join(str(c) for c in columns)


def _check_dtype(column: pd.Series, kind: str, where: str) -> None:
    if kind not in NUMERIC_KINDS or column.isna().all():
        return
    if kind == "datetime":
        if not pd.api.types.is_datetime64_any_dtype(column):
            raise GenzooError(
                f"column '{column.name}' of the {where} table is declared datetime but holds "
                f"{column.dtype} values; convert it with pd.to_datetime"
            )
    elif not (pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)):
        raise GenzooError(
            f"column '{column.name}' of the {where} table is declared {kind} but holds {column.dtype} "
            f"values (such as {column.dropna().iloc[0]!r}); give it kind 'categorical' or convert it to numbers"
        )
    elif np.isinf(column.to_numpy(dtype=np.float64, na_value=np.nan)).any():
        # Bins, correlations, trees and distances all break on them; better said once, here.
        raise GenzooError(
            f"column '{column.name}' of the {where} table holds infinite values; replace them "
            "(with NaN for missing) before measuring"
        )


def _numbers(column: pd.Series, kind: str) -> np.ndarray:
    """A numeric column as float64 with NaN for missing; datetimes as nanoseconds since 1970."""
    if column.isna().all():
        return np.full(len(column), np.nan)
    if kind == "datetime":
        if getattr(column.dt, "tz", None) is not None:
            column = column.dt.tz_convert("UTC").dt.tz_localize(None)
        # One unit for every table: pandas 2 keeps a column's own unit (s, ms, us, ns).
        values = column.astype("datetime64[ns]").to_numpy().view("int64").astype(np.float64)
        values[column.isna().to_numpy()] = np.nan
        return values
    return column.to_numpy(dtype=np.float64, na_value=np.nan)


def _codes(columns: list[pd.Series]) -> tuple[list[np.ndarray], int]:
    """Integer codes shared by several copies of a discrete column; missing is its own code, the last."""
    joined = pd.concat([c.astype(object) for c in columns], ignore_index=True)
    codes, levels = pd.factorize(joined, use_na_sentinel=True)
    codes = np.where(codes < 0, len(levels), codes)
    bounds = np.cumsum([0] + [len(c) for c in columns])
    return [codes[a:b] for a, b in itertools.pairwise(bounds)], len(levels) + 1


def _sample_rows(frame: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    if len(frame) <= n:
        return frame
    return frame.iloc[np.sort(rng.choice(len(frame), size=n, replace=False))]


# ----------------------------------------------------------------------------- quality


@dataclass
class _Column:
    """One column of the real and the synthetic table, encoded the same way."""

    continuous: bool
    real: np.ndarray  # floats (NaN = missing), or codes of a discrete column
    synthetic: np.ndarray
    levels: int = 0  # discrete: the number of codes
    real_bins: np.ndarray | None = None  # continuous: the histogram bin of each value
    synthetic_bins: np.ndarray | None = None
    constant: bool = False  # continuous: one distinct value in either table


def _bins(values: np.ndarray) -> np.ndarray:
    """Bin indices 0..11 as sdmetrics' ColumnPairTrends makes them: 10 equal-width bins over this
    table's own non-missing range (real and synthetic each get their own edges, as in sdmetrics),
    then np.digitize, which puts the maximum value and missing values together in the last index."""
    return np.digitize(values, np.histogram_bin_edges(values[~np.isnan(values)], bins=HISTOGRAM_BINS))


def _encode_quality(real: pd.DataFrame, synthetic: pd.DataFrame, column: str, kind: str) -> _Column:
    if kind in NUMERIC_KINDS:
        r, s = _numbers(real[column], kind), _numbers(synthetic[column], kind)
        constant = any(len(np.unique(v[~np.isnan(v)])) == 1 for v in (r, s))
        return _Column(True, r, s, real_bins=_bins(r), synthetic_bins=_bins(s), constant=constant)
    (r, s), levels = _codes([real[column], synthetic[column]])
    return _Column(False, r, s, levels=levels)


def _ks_complement(real: np.ndarray, synthetic: np.ndarray, rounded: bool) -> float | None:
    """1 - the two-sample Kolmogorov-Smirnov statistic on the non-missing values (SDMetrics' KSComplement)."""
    a, b = real[~np.isnan(real)], synthetic[~np.isnan(synthetic)]
    if len(a) == 0 or len(b) == 0:
        return None
    if rounded:  # datetimes are integers for sdmetrics, so they are not rounded
        a, b = np.round(a, KS_DECIMALS), np.round(b, KS_DECIMALS)
    a, b = np.sort(a), np.sort(b)
    pooled = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, pooled, side="right") / len(a)
    cdf_b = np.searchsorted(b, pooled, side="right") / len(b)
    return float(1.0 - np.abs(cdf_a - cdf_b).max())


def _tv_complement(real: np.ndarray, synthetic: np.ndarray, levels: int) -> float | None:
    """1 - total variation distance between the category shares, missing values left out (TVComplement)."""
    a, b = real[real < levels - 1], synthetic[synthetic < levels - 1]
    if len(a) == 0 or len(b) == 0:
        return None
    counts_real = np.bincount(a, minlength=levels).astype(np.float64)
    counts_synthetic = np.bincount(b, minlength=levels)
    # As sdmetrics does (it guards a ratio there): a category only the synthetic table has gets a
    # real count of 1e-6, which moves the score by about 1e-6 / len(real); kept so scores agree exactly.
    counts_real[(counts_real == 0) & (counts_synthetic > 0)] = 1e-6
    gap = counts_real / counts_real.sum() - counts_synthetic / len(b)
    return float(1.0 - 0.5 * np.abs(gap).sum())


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson's r over the rows where both are present; NaN where scipy's pearsonr gives none."""
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    x, y = x - x.mean(), y - y.mean()
    return float(np.clip(x @ y / math.sqrt((x @ x) * (y @ y)), -1.0, 1.0))


def cramers_v(joint: np.ndarray, levels_b: int) -> float:
    """Cramer's V of the contingency table of joint codes a * levels_b + b (as scipy's association
    computes it, without Yates' correction), over the levels present."""
    table = np.bincount(joint).astype(np.float64)
    table = np.pad(table, (0, (-len(table)) % levels_b)).reshape(-1, levels_b)
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]  # the levels the real table has
    if min(table.shape) < 2:
        return math.nan
    n = table.sum()
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / n
    chi2 = ((table - expected) ** 2 / expected).sum()
    return math.sqrt(chi2 / n / (min(table.shape) - 1))


def _contingency_similarity(real: np.ndarray, synthetic: np.ndarray) -> float:
    """1 - total variation distance between the shares of joint codes (missing is a level)."""
    size = int(max(real.max(), synthetic.max())) + 1
    shares_real = np.bincount(real, minlength=size) / len(real)
    shares_synthetic = np.bincount(synthetic, minlength=size) / len(synthetic)
    return float(1.0 - 0.5 * np.abs(shares_real - shares_synthetic).sum())


def _pair_trend(
    one: _Column, two: _Column, correlation_threshold: float, association_threshold: float
) -> tuple[float | None, bool]:
    """The pair's similarity score (None when undefined) and whether it counts in the average."""
    if one.continuous and two.continuous:
        # sdmetrics refuses a column that is constant in either table (before dropping missing rows).
        if one.constant or two.constant:
            return None, False
        r_real = _pearson(one.real, two.real)
        r_synthetic = _pearson(one.synthetic, two.synthetic)
        if math.isnan(r_real) or math.isnan(r_synthetic):
            return None, False
        counts = correlation_threshold <= 0 or abs(r_real) > correlation_threshold
        return 1.0 - abs(r_real - r_synthetic) / 2.0, counts
    # A continuous column in a pair with a discrete one is compared through its histogram bins.
    (real_a, synthetic_a), (real_b, synthetic_b) = (
        (c.real_bins, c.synthetic_bins) if c.continuous else (c.real, c.synthetic) for c in (one, two)
    )
    levels_b = int(max(real_b.max(), synthetic_b.max())) + 1
    score = _contingency_similarity(real_a * levels_b + real_b, synthetic_a * levels_b + synthetic_b)
    if association_threshold <= 0:
        return score, True
    association = cramers_v(real_a * levels_b + real_b, levels_b)
    return score, not math.isnan(association) and association > association_threshold


def _mean(scores: Iterable[float | None]) -> float | None:
    present = [s for s in scores if s is not None]
    return float(np.mean(present)) if present else None


def quality_report(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    kinds: dict[str, str],
    *,
    correlation_threshold: float = CORRELATION_THRESHOLD,
    association_threshold: float = ASSOCIATION_THRESHOLD,
) -> dict[str, Any]:
    """SDMetrics' single-table QualityReport (sdmetrics 0.32): 1 is best.

    - ``column_shapes``: mean over columns of KSComplement (numeric, datetime: 1 - the KS statistic
      on the non-missing values) or TVComplement (categorical, boolean: 1 - the total variation
      distance between category shares, missing left out).
    - ``column_pair_trends``: mean over the pairs that count of CorrelationSimilarity (two numeric
      columns: 1 - |r_real - r_synthetic| / 2, Pearson on rows where both are present) or
      ContingencySimilarity (1 - total variation distance between the joint shares, missing as a
      level; a numeric column binned into 10 equal-width bins over each table's own range). A pair
      counts when the real table shows a trend (|r| or Cramer's V above the thresholds) and its
      score is defined: not when a numeric column is constant in either table.
    - ``quality_score``: the mean of the two (the defined one, if only one is).

    Also ``column_scores`` ({column: score}), ``pair_scores`` ({"a|b": score} for every pair,
    counted or not; None where undefined) and ``pairs_counted`` (the keys that count). A property
    with no defined score (one column: no pairs) is None.

    Differences from sdmetrics: above 50,000 rows sdmetrics estimates a contingency score on a
    random, unseeded subsample; here every row is used. sdmetrics compares datetimes as raw integers
    in each column's own unit (seconds against nanoseconds scores 0); here both are nanoseconds.
    """
    for name, value in (
        ("correlation_threshold", correlation_threshold),
        ("association_threshold", association_threshold),
    ):
        if not 0 <= value <= 1:
            raise GenzooError(f"{name} must be between 0 and 1, got {value}")
    columns = _check_frames(kinds, real, {"synthetic": synthetic})
    encoded = {c: _encode_quality(real, synthetic, c, kinds[c]) for c in columns}
    column_scores = {
        c: _ks_complement(e.real, e.synthetic, kinds[c] != "datetime")
        if e.continuous
        else _tv_complement(e.real, e.synthetic, e.levels)
        for c, e in encoded.items()
    }
    pair_scores: dict[str, float | None] = {}
    counted: list[str] = []
    for a, b in itertools.combinations(columns, 2):
        score, counts = _pair_trend(encoded[a], encoded[b], correlation_threshold, association_threshold)
        pair_scores[f"{a}|{b}"] = score
        if counts:
            counted.append(f"{a}|{b}")
    shapes = _mean(column_scores.values())
    trends = _mean(pair_scores[k] for k in counted)
    return {
        "quality_score": _mean([shapes, trends]),
        "column_shapes": shapes,
        "column_pair_trends": trends,
        "column_scores": column_scores,
        "pair_scores": pair_scores,
        "pairs_counted": counted,
    }


# ----------------------------------------------------------------------------- classifiers


def _tree_features(
    frames: list[pd.DataFrame], columns: list[str], kinds: dict[str, str]
) -> tuple[list[np.ndarray], np.ndarray]:
    """Feature matrices for HistGradientBoosting, coded the same way in every frame, and the mask of
    categorical features. Numbers stay as they are (trees need no scaling) and missing stays NaN,
    which the trees route on their own. A category is its frequency rank, so that beyond the
    255 codes a feature may have, the rarest categories share the last code."""
    blocks: list[list[np.ndarray]] = [[] for _ in frames]
    categorical = []
    for column in columns:
        kind = kinds[column]
        if kind in NUMERIC_KINDS:
            for block, frame in zip(blocks, frames, strict=True):
                block.append(_numbers(frame[column], kind))
            categorical.append(False)
            continue
        codes, levels = _codes([frame[column] for frame in frames])
        counts = np.bincount(np.concatenate(codes), minlength=levels)[:-1]  # the last code is missing
        rank = np.empty(levels - 1)
        rank[np.argsort(-counts, kind="stable")] = np.minimum(np.arange(levels - 1), MAX_TREE_CATEGORIES - 1)
        rank = np.append(rank, np.nan)  # the missing code becomes NaN
        for block, code in zip(blocks, codes, strict=True):
            block.append(rank[code])
        categorical.append(True)
    return [np.column_stack(block) for block in blocks], np.array(categorical)


def detection_auc(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    kinds: dict[str, str],
    seed: int = 0,
    *,
    max_rows: int = MAX_DETECTION_ROWS,
) -> dict[str, float]:
    """How well a classifier tells real rows from synthetic ones: 0.5 is best, 1 is fully detected.

    ``detection_auc`` is the mean ROC AUC over stratified 3-fold cross-validation;
    ``detection_score`` is 1 - (max(AUC, 0.5) * 2 - 1), SDMetrics' LogisticDetection scale (1 is
    best). At most ``max_rows`` rows of each table are used (a seeded sample).

    The classifier is HistGradientBoosting rather than SDMetrics' logistic regression: a linear
    model only sees differences in the means of one-hot and scaled features, while trees also catch
    wrong interactions, multimodal shapes and out-of-range values, and handle missing values and
    categories natively. Held-out folds keep an overfitting classifier at 0.5, not above.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    columns = _check_frames(kinds, real, {"synthetic": synthetic})
    if min(len(real), len(synthetic), max_rows) < DETECTION_FOLDS:
        raise GenzooError(f"detection needs at least {DETECTION_FOLDS} rows in each table (and max_rows)")
    rng = np.random.default_rng(seed)
    real, synthetic = _sample_rows(real, max_rows, rng), _sample_rows(synthetic, max_rows, rng)
    (x_real, x_synthetic), categorical = _tree_features([real, synthetic], columns, kinds)
    x = np.concatenate([x_real, x_synthetic])
    y = np.concatenate([np.zeros(len(x_real)), np.ones(len(x_synthetic))])
    aucs = []
    for fit, held in StratifiedKFold(DETECTION_FOLDS, shuffle=True, random_state=seed).split(x, y):
        model = HistGradientBoostingClassifier(categorical_features=categorical, random_state=seed)
        model.fit(x[fit], y[fit])
        aucs.append(roc_auc_score(y[held], model.predict_proba(x[held])[:, 1]))
    auc = float(np.mean(aucs))
    return {"detection_auc": auc, "detection_score": 1.0 - (max(auc, 0.5) * 2.0 - 1.0)}


def _check_target(target: str, columns: list[str], kinds: dict[str, str]) -> None:
    if target not in columns:
        raise GenzooError(
            f"target '{target}' is not a column{did_you_mean(str(target), map(str, columns))}; "
            f"choose one of: {_names(columns)}"
        )
    if kinds[target] == "datetime":
        raise GenzooError(f"target '{target}' is a datetime; choose a categorical, boolean or numeric column")
    if len(columns) < 2:
        raise GenzooError(f"ml_efficacy needs at least one column besides the target '{target}'")


def ml_efficacy(
    train_real: pd.DataFrame,
    synthetic: pd.DataFrame,
    test_real: pd.DataFrame,
    kinds: dict[str, str],
    target: str,
    seed: int = 0,
) -> dict[str, Any]:
    """Train on synthetic, test on real (TSTR) against train on real, test on real.

    The same HistGradientBoosting model (categories as native categorical features) is fitted once
    on ``synthetic`` and once on ``train_real`` and scored on ``test_real``. The metric follows the
    CTGAN paper and SDGym: ``f1`` of the positive class for a binary target, taken to be the class
    rarer in ``train_real`` (``>50K`` in adult); ``macro_f1`` for more classes; ``r2`` for a
    continuous or integer target (regression). Rows with a missing target are left out.

    Returns ``real_score``, ``synthetic_score``, ``ml_efficacy`` (synthetic / real; None when the
    real score is not positive), ``metric``, ``target``, ``positive_class`` (binary only) and
    ``notes``. A synthetic table whose target has one class scores 0, with a note.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.metrics import f1_score, r2_score

    columns = _check_frames(kinds, train_real, {"synthetic": synthetic, "test": test_real})
    _check_target(target, columns, kinds)
    regression = kinds[target] in ("continuous", "integer")
    features = [c for c in columns if c != target]
    frames = [f[f[target].notna()] for f in (train_real, synthetic, test_real)]
    if len(frames[0]) == 0 or len(frames[2]) == 0:
        raise GenzooError(f"target '{target}' is missing in every row of the real train or test table")
    xs, categorical = _tree_features(frames, features, kinds)
    if regression:
        ys = [_numbers(f[target], kinds[target]) for f in frames]
    else:
        ys, _ = _codes([f[target] for f in frames])
    result: dict[str, Any] = {"target": target, "metric": "r2" if regression else "macro_f1", "notes": []}
    labels = None if regression else np.union1d(ys[0], ys[2])
    positive = None
    if not regression and len(np.unique(ys[0])) == 2:
        classes, counts = np.unique(ys[0], return_counts=True)
        positive = classes[np.argmin(counts)]
        result["metric"] = "f1"
        result["positive_class"] = _plain(frames[0][target].iloc[int(np.argmax(ys[0] == positive))])

    def score(x: np.ndarray, y: np.ndarray, source: str) -> float:
        if len(np.unique(y)) < 2 and not regression:
            result["notes"].append(
                f"the {source} target '{target}' has {len(np.unique(y))} class(es); no classifier can be "
                f"trained on it, so its score is 0"
            )
            return 0.0
        if len(y) < 2:
            result["notes"].append(f"the {source} table has fewer than 2 rows with a target; its score is 0")
            return 0.0
        model_class = HistGradientBoostingRegressor if regression else HistGradientBoostingClassifier
        model = model_class(categorical_features=categorical, random_state=seed).fit(x, y)
        predicted = model.predict(xs[2])
        if regression:
            return float(r2_score(ys[2], predicted))
        if positive is not None:
            return float(f1_score(ys[2] == positive, predicted == positive, zero_division=0.0))
        return float(f1_score(ys[2], predicted, labels=labels, average="macro", zero_division=0.0))

    result["real_score"] = score(xs[0], ys[0], "real train")
    result["synthetic_score"] = score(xs[1], ys[1], "synthetic")
    if result["real_score"] > 0:
        result["ml_efficacy"] = result["synthetic_score"] / result["real_score"]
    else:
        result["ml_efficacy"] = None
        result["notes"].append("the model trained on real data scores <= 0, so the ratio is undefined")
    return result


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value JSON can hold."""
    return value.item() if isinstance(value, np.generic) else value


# ----------------------------------------------------------------------------- privacy


def _distance_space(
    frames: list[pd.DataFrame], columns: list[str], kinds: dict[str, str]
) -> list[sparse.csr_matrix]:
    """Rows in one numeric space for distances, the first frame (train) setting the scales.

    A number is min-max scaled by its train range, a missing number is 0 plus a missing flag, and a
    category (missing included) is one-hot scaled by 1/sqrt(2), so that a different category costs
    a distance of 1, as much as a number at the other end of its range. Sparse, because an
    identifier-like category would otherwise make a very wide dense matrix.
    """
    from scipy import sparse

    blocks: list[list[sparse.csr_matrix]] = [[] for _ in frames]
    for column in columns:
        kind = kinds[column]
        if kind in NUMERIC_KINDS:
            values = [_numbers(f[column], kind) for f in frames]
            train = values[0][~np.isnan(values[0])]
            low, span = (train.min(), np.ptp(train)) if len(train) else (0.0, 0.0)
            span = span if span > 0 else 1.0
            missing = any(np.isnan(v).any() for v in values)
            for block, v in zip(blocks, values, strict=True):
                absent = np.isnan(v)
                parts = [np.where(absent, 0.0, (v - low) / span)] + (
                    [absent.astype(np.float64)] if missing else []
                )
                block.append(sparse.csr_matrix(np.column_stack(parts)))
            continue
        codes, levels = _codes([f[column] for f in frames])
        for block, code in zip(blocks, codes, strict=True):
            ones = np.full(len(code), 1.0 / math.sqrt(2.0))
            block.append(sparse.csr_matrix((ones, (np.arange(len(code)), code)), shape=(len(code), levels)))
    return [sparse.hstack(block, format="csr") for block in blocks]


def _nearest(reference: sparse.csr_matrix, queries: sparse.csr_matrix) -> np.ndarray:
    """Each query's Euclidean distance to its nearest reference row. The search's fast formula
    (|x|^2 + |y|^2 - 2xy) leaves ~1e-8 of noise, so the distance to the neighbour it finds is
    recomputed directly: an exact copy is then at distance 0 and ties are real ties."""
    from scipy import sparse
    from sklearn.neighbors import NearestNeighbors

    if reference.shape[1] <= MAX_DENSE_WIDTH:  # dense search is several times faster (BLAS)
        reference, queries = reference.toarray(), queries.toarray()
    index = NearestNeighbors(n_neighbors=1, algorithm="brute").fit(reference)
    found = index.kneighbors(queries, return_distance=False)[:, 0]
    gap = queries - reference[found]
    squares = gap.multiply(gap).sum(axis=1) if sparse.issparse(gap) else (gap * gap).sum(axis=1)
    return np.sqrt(np.asarray(squares).ravel())


def _row_keys(rows: sparse.csr_matrix) -> list[tuple[bytes, bytes]]:
    """A hashable key per row, equal exactly for equal rows (read from the sparse form, never densified)."""
    rows = rows.copy()
    rows.eliminate_zeros()  # a stored 0 (or -0.0) and an absent entry are the same value
    rows.sort_indices()
    ends = rows.indptr
    return [(rows.indices[a:b].tobytes(), rows.data[a:b].tobytes()) for a, b in itertools.pairwise(ends)]


def privacy(
    train_real: pd.DataFrame,
    synthetic: pd.DataFrame,
    holdout_real: pd.DataFrame,
    kinds: dict[str, str],
    seed: int = 0,
    *,
    max_rows: int = MAX_PRIVACY_ROWS,
) -> dict[str, Any]:
    """Does the synthetic table sit closer to the rows it was trained on than to unseen real rows?

    Rows are compared in `_distance_space`, by Euclidean distance. The train and holdout tables
    are sampled to the same size, min(their sizes, ``max_rows``), and the synthetic table to at
    most ``max_rows`` rows (seeded), which keeps the neighbour searches to seconds on two cores.

    - ``dcr_share``: share of synthetic rows closer to their nearest train row than to their
      nearest holdout row (ties count half). 0.5 is ideal; 1 means it copies its training rows.
    - ``dcr_train_median``, ``dcr_holdout_median``: the median of those two distances.
    - ``exact_copy_rate``: share of (all) synthetic rows equal to some (any) train row.
    - ``mia_auc``: a membership inference attack that calls a record a member the closer it is to a
      synthetic row; ROC AUC over train (members) and holdout (non-members) rows. 0.5 = no leak.
    - ``privacy_rows``: the rows used from each table.
    """
    from sklearn.metrics import roc_auc_score

    columns = _check_frames(kinds, train_real, {"synthetic": synthetic, "holdout": holdout_real})
    if max_rows < 1:
        raise GenzooError(f"max_rows must be at least 1, got {max_rows}")
    train, fake, holdout = _distance_space([train_real, synthetic, holdout_real], columns, kinds)
    train_keys = set(_row_keys(train))
    exact_copy_rate = float(np.mean([key in train_keys for key in _row_keys(fake)]))

    rng = np.random.default_rng(seed)
    n = min(train.shape[0], holdout.shape[0], max_rows)
    train = train[np.sort(rng.choice(train.shape[0], size=n, replace=False))]
    holdout = holdout[np.sort(rng.choice(holdout.shape[0], size=n, replace=False))]
    if fake.shape[0] > max_rows:
        fake = fake[np.sort(rng.choice(fake.shape[0], size=max_rows, replace=False))]

    to_train, to_holdout = _nearest(train, fake), _nearest(holdout, fake)
    ties = np.isclose(to_train, to_holdout, rtol=1e-9, atol=1e-12)
    dcr_share = float(np.mean((to_train < to_holdout) & ~ties) + 0.5 * np.mean(ties))
    members, outsiders = _nearest(fake, train), _nearest(fake, holdout)
    mia_auc = roc_auc_score(np.r_[np.ones(n), np.zeros(n)], -np.r_[members, outsiders])
    return {
        "dcr_share": dcr_share,
        "dcr_train_median": float(np.median(to_train)),
        "dcr_holdout_median": float(np.median(to_holdout)),
        "exact_copy_rate": exact_copy_rate,
        "mia_auc": float(mia_auc),
        "privacy_rows": {"train": n, "holdout": n, "synthetic": int(fake.shape[0])},
    }


# ----------------------------------------------------------------------------- by name


def table_metrics(
    names: str | Iterable[str],
    train_real: pd.DataFrame,
    synthetic: pd.DataFrame,
    test_real: pd.DataFrame,
    kinds: dict[str, str],
    target: str | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """The table metrics named in ``names`` (a list, or one comma-separated string), merged.

    ``quality`` and ``detection`` compare ``synthetic`` with ``train_real``, the data it imitates;
    ``ml_efficacy`` tests on ``test_real``; ``privacy`` uses ``test_real`` as the holdout.
    """
    wanted = [n.strip() for n in names.split(",")] if isinstance(names, str) else [str(n) for n in names]
    for name in wanted:
        if name not in TABLE_METRICS:
            raise unknown_name("table metric", name, TABLE_METRICS)
    if "ml_efficacy" in wanted and target is None:
        raise GenzooError("ml_efficacy needs a target column: give --set target=COLUMN")
    result: dict[str, Any] = {}
    for name in dict.fromkeys(wanted):
        if name == "quality":
            result.update(quality_report(train_real, synthetic, kinds))
        elif name == "detection":
            result.update(detection_auc(train_real, synthetic, kinds, seed=seed))
        elif name == "ml_efficacy":
            assert target is not None  # checked above, before any metric ran
            result.update(ml_efficacy(train_real, synthetic, test_real, kinds, target, seed=seed))
        else:
            result.update(privacy(train_real, synthetic, test_real, kinds, seed=seed))
    return result

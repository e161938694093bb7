"""Which family to pick, and why: the ranking rules of `genzoo compare`, in one place.

Input is the per-model summary `compare` writes into results.json (`"models"`: name -> means over
repeats, see report/schema.md); output is a ranking for one priority with reasons quoted from those
numbers. Every rule is a small function of the summaries, so a test can build results by hand and
check what is said. The rules:

- quality: lowest FID first (KID breaks ties); say how far ahead the winner is.
- likelihood: lowest test NLL first, among models that have one; say its kind (an exact likelihood
  is an anomaly score as it stands; a bound or estimate is approximate); models without come last.
- speed: fastest sampling first (seconds per 100 samples); training time breaks ties.
- diversity: highest coverage first (recall breaks ties); classes hit are quoted.

Tables (models that declare `output == "table"`) have no FID or coverage; their own metrics stand in:

- quality: highest quality score first (SDMetrics-style, 1 is best); the detection score breaks ties
  (1 - how far above 0.5 a classifier tells real rows from synthetic ones).
- diversity: highest column-shapes score first: a generator that drops categories or narrows a
  number's range loses it, as an image model that drops modes loses coverage.
- likelihood and speed as above.

Whatever the priority, each model's notes also flag: sampling 10x or more slower than the fastest,
classes its samples never reach, near-copies of training examples, a spread across repeats as large
as the gap to the next model, and failures with their reason. A table model's notes say how well
its rows pass for real ones (detection AUC), what a model trained on them predicts (ML efficacy),
and whether they sit closer to the training rows than to unseen ones (privacy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

PRIORITIES = ("quality", "likelihood", "speed", "diversity")
SLOW_FACTOR = 10.0  # sampling this many times slower than the fastest family is worth saying
MEMORIZED_SHARE = 0.10  # memorization's baseline is ~0.05 for fresh data (5th-percentile threshold)
# Tables: a detection AUC up to HARD_TO_DETECT says real and synthetic rows are hard to tell apart,
# from EASY_TO_DETECT on a classifier tells them apart easily (0.5 is chance).
HARD_TO_DETECT, EASY_TO_DETECT = 0.6, 0.8
# Privacy: beyond these, a table's rows lean towards their training rows. dcr_share and mia_auc are
# 0.5 for rows no closer to the training rows than to unseen ones; an exact copy is worth saying.
DCR_LEANING, MIA_LEANING, COPY_RATE = 0.6, 0.6, 0.01

# priority -> (metric, lower is better, tie-break metric, its direction), all keys of a summary
ORDER: dict[str, tuple[str, bool, str, bool]] = {
    "quality": ("fid", True, "kid", True),
    "likelihood": ("nll", True, "fid", True),
    "speed": ("sample_seconds_per_100", True, "train_seconds", True),
    "diversity": ("coverage", False, "recall", False),
}
TABLE_ORDER: dict[str, tuple[str, bool, str, bool]] = {
    **ORDER,
    "quality": ("quality_score", False, "detection_score", False),
    "likelihood": ("nll", True, "quality_score", False),
    "diversity": ("column_shapes", False, "quality_score", False),
}
LABELS = {
    "fid": "FID",
    "kid": "KID",
    "nll": "test NLL",
    "coverage": "coverage",
    "recall": "recall",
    "sample_seconds_per_100": "sampling time per 100 samples",
    "train_seconds": "training time",
    "quality_score": "quality score",
    "column_shapes": "column-shapes score",
}


@dataclass
class Ranked:
    model: str
    rank: int  # 1 = pick this; failed and unmeasured models share the last ranks
    value: float | None  # the priority's metric (mean over repeats), None when not measured
    reasons: list[str] = field(default_factory=list)


def _mean(summary: dict[str, Any], key: str) -> float | None:
    entry = summary.get("metrics", {}).get(key)
    if entry is None or entry.get("mean") is None or not math.isfinite(entry["mean"]):
        return None
    return float(entry["mean"])


def _std(summary: dict[str, Any], key: str) -> float:
    entry = summary.get("metrics", {}).get(key) or {}
    return float(entry.get("std") or 0.0)


def _fmt(value: float) -> str:
    return f"{value:.4g}" if value == 0 or 0.01 <= abs(value) < 10_000 else f"{value:.2e}"


def _seconds(value: float) -> str:
    return f"{value:.2g} s" if value < 10 else f"{value:.0f} s"


def orders(models: dict[str, dict[str, Any]]) -> dict[str, tuple[str, bool, str, bool]]:
    """The ranking metrics for these models: the table ones when they model tables (compare runs
    every model on the same data, so they all do or none does)."""
    return TABLE_ORDER if any(s.get("output") == "table" for s in models.values()) else ORDER


def rank(models: dict[str, dict[str, Any]], priority: str) -> list[Ranked]:
    """Order the models for `priority`: measured models by the metric, then unmeasured, then failed."""
    if priority not in PRIORITIES:
        raise ValueError(f"priority must be one of {PRIORITIES}, got {priority!r}")
    key, lower, tie_key, tie_lower = orders(models)[priority]

    def sort_key(name: str) -> tuple:
        s = models[name]
        ok = s.get("status") != "failed"
        value, tie = _mean(s, key), _mean(s, tie_key)
        signed = (value if lower else -value) if value is not None else math.inf
        tie_signed = (tie if tie_lower else -tie) if tie is not None else math.inf
        return (not ok, value is None, signed, tie_signed, name)

    order = sorted(models, key=sort_key)
    ranked = [Ranked(name, i + 1, _mean(models[name], key)) for i, name in enumerate(order)]
    for r in ranked:
        r.reasons = _headline(r, ranked, models, priority) + notes(r.model, models)
    return ranked


def _headline(r: Ranked, ranked: list[Ranked], models: dict[str, dict], priority: str) -> list[str]:
    """The sentence about the priority's own metric."""
    key, lower, _, _ = orders(models)[priority]
    s = models[r.model]
    if s.get("status") == "failed":
        return []
    if r.value is None:
        if priority == "likelihood":
            return ["has no likelihood, so it cannot score how probable an input is"]
        return [f"{LABELS[key]} was not measured"]
    measured = [x for x in ranked if x.value is not None and models[x.model].get("status") != "failed"]
    best = "lowest" if lower else "highest"
    if priority == "speed":
        best = "fastest"
    shown = _seconds(r.value) if key.endswith("seconds_per_100") else _fmt(r.value)
    kind = f" ({s.get('nll_kind')})" if priority == "likelihood" and s.get("nll_kind") else ""
    if r is measured[0]:
        if len(measured) == 1:
            return [f"the only model with a measured {LABELS[key]}: {shown}{kind}"]
        runner = measured[1]
        runner_shown = _seconds(runner.value) if key.endswith("seconds_per_100") else _fmt(runner.value)
        text = f"{best} {LABELS[key]}: {shown}{kind}, against {runner_shown} for {runner.model}, the next"
        gap = abs(r.value - runner.value)
        spread = max(_std(s, key), _std(models[runner.model], key))
        if spread > 0 and gap <= spread:
            text += (
                f"; the gap is within the spread across repeats (std {_fmt(spread)}), so it is no clear win"
            )
        return [text]
    return [f"{LABELS[key]} {shown}{kind} (rank {r.rank})"]


def notes(name: str, models: dict[str, dict[str, Any]]) -> list[str]:
    """What is worth knowing about one model whatever the priority, from this run's numbers."""
    s = models[name]
    if s.get("status") == "failed":
        return [f"failed: {s.get('reason') or 'no reason recorded'}"]
    out: list[str] = []
    speeds = {
        m: v
        for m in models
        if models[m].get("status") != "failed" and (v := _mean(models[m], "sample_seconds_per_100"))
    }
    mine = speeds.get(name)
    if mine and len(speeds) > 1:
        fastest = min(speeds, key=speeds.get)
        factor = mine / speeds[fastest]
        if fastest != name and factor >= SLOW_FACTOR:
            out.append(
                f"samples {factor:.0f}x slower than {fastest} "
                f"({_seconds(mine)} against {_seconds(speeds[fastest])} per 100)"
            )
    kind = s.get("nll_kind")
    nll = _mean(s, "nll")
    if kind == "exact" and nll is not None:
        out.append(
            f"gives exact likelihoods ({_fmt(nll)} nats on test): usable as anomaly scores as they are"
        )
    elif kind in ("bound", "estimate") and nll is not None:
        out.append(f"gives a likelihood {kind} ({_fmt(nll)} nats), not the exact value")
    num_classes = s.get("num_classes") or 0
    hit = _mean(s, "classes_hit")
    if num_classes >= 2 and hit is not None and hit < num_classes:
        missing = s.get("missing_classes") or []
        which = f" ({', '.join(str(c) for c in missing)})" if missing else ""
        out.append(f"missed {num_classes - hit:.3g} of {num_classes} classes{which}")
    copied = _mean(s, "memorized_share")
    if copied is not None and copied > MEMORIZED_SHARE:
        out.append(f"{copied:.0%} of its samples are near-copies of training examples")
    out += table_notes(s)
    if s.get("failures"):
        out.append(f"{len(s['failures'])} of its repeats failed: {s['failures'][0]}")
    return out


def table_notes(s: dict[str, Any]) -> list[str]:
    """A table model's detection, ML efficacy and privacy, each as one sentence (where measured)."""
    out: list[str] = []
    auc = _mean(s, "detection_auc")
    if auc is not None:
        if auc <= HARD_TO_DETECT:
            verdict = "its rows are hard to tell from real ones"
        elif auc < EASY_TO_DETECT:
            verdict = "a classifier tells its rows from real ones fairly often"
        else:
            verdict = "a classifier tells its rows from real ones easily"
        out.append(f"{verdict} (detection AUC {auc:.2f}; 0.5 is indistinguishable)")
    efficacy, real, synthetic = (_mean(s, k) for k in ("ml_efficacy", "real_score", "synthetic_score"))
    if efficacy is not None and real is not None and synthetic is not None:
        scored = s.get("ml_metric") or {}
        what = f"{scored.get('metric', 'score')} on '{scored['target']}'" if scored.get("target") else "score"
        out.append(
            f"a model trained on its rows reaches {efficacy:.0%} of the {what} of one trained on the real "
            f"rows ({_fmt(synthetic)} against {_fmt(real)}, tested on held-out real rows)"
        )
    dcr, copies, mia = (_mean(s, k) for k in ("dcr_share", "exact_copy_rate", "mia_auc"))
    if dcr is None or copies is None or mia is None:
        return out
    risks = []
    if dcr > DCR_LEANING:
        risks.append(
            f"{dcr:.0%} of its rows are closer to a training row than to an unseen one (50% is ideal)"
        )
    if copies >= COPY_RATE:
        risks.append(f"{copies:.1%} of its rows copy a training row exactly")
    if mia > MIA_LEANING:
        risks.append(f"a membership-inference attack reaches AUC {mia:.2f} (0.5: no leak)")
    if risks:
        out.append("privacy risk: " + "; ".join(risks))
    else:
        out.append(
            f"privacy: its rows are no closer to the training rows than to unseen ones (DCR share {dcr:.2f}, "
            f"0.5 is ideal; {copies:.1%} exact copies; membership-inference AUC {mia:.2f})"
        )
    return out


def recommend(models: dict[str, dict[str, Any]], priority: str) -> dict[str, Any]:
    """The JSON-ready recommendation: the pick, one summary sentence, and the ranking with reasons."""
    ranked = rank(models, priority)
    top = ranked[0] if ranked and models[ranked[0].model].get("status") != "failed" else None
    if top is None or top.value is None:
        summary = f"no model was measured for '{priority}'; see the notes for why"
        pick = None
    else:
        pick = top.model
        summary = f"For {priority}, pick {pick}: {top.reasons[0]}."
    return {
        "priority": priority,
        "pick": pick,
        "summary": summary,
        "ranking": [r.__dict__ for r in ranked],
    }

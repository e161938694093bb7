"""All sample-quality metrics from one feature extractor, as flat JSON-ready keys (DESIGN.md's table)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from genzoo.errors import GenzooError, unknown_name
from genzoo.metrics.fid import frechet_distance
from genzoo.metrics.inception_score import inception_score
from genzoo.metrics.kid import kernel_inception_distance
from genzoo.metrics.precision_recall import precision_recall

QUALITY_METRICS = ("fid", "kid", "is", "precision", "recall", "density", "coverage")


def sample_quality(
    real: torch.Tensor,
    fake: torch.Tensor,
    extractor: Any,
    metrics: Sequence[str] = ("fid", "kid", "precision", "recall"),
    *,
    seed: int = 0,
    k: int = 3,
    kid_subset_size: int = 1000,
    kid_subsets: int = 100,
    is_splits: int = 10,
    batch_size: int = 256,
) -> dict[str, Any]:
    """Compare generated examples ``fake`` with real ones, both in dataset units.

    Features are extracted once per set. Returns the requested keys plus ``feature_extractor``
    (the extractor's ``name``), ``kid_std`` and ``is_std`` when those are asked for, and
    ``n_real``/``n_fake``. ``"is"`` needs an extractor with ``probs`` (a classifier).
    """
    for name in metrics:
        if name not in QUALITY_METRICS:
            raise unknown_name("sample-quality metric", name, QUALITY_METRICS)
    out: dict[str, Any] = {"feature_extractor": extractor.name, "n_real": len(real), "n_fake": len(fake)}
    needs_features = any(m != "is" for m in metrics)
    if needs_features:
        fr = extractor.features(real, batch_size=batch_size)
        ff = extractor.features(fake, batch_size=batch_size)
    if "fid" in metrics:
        out["fid"] = frechet_distance(fr, ff)
    if "kid" in metrics:
        out["kid"], out["kid_std"] = kernel_inception_distance(
            fr, ff, subset_size=kid_subset_size, n_subsets=kid_subsets, seed=seed
        )
    if "is" in metrics:
        if not hasattr(extractor, "probs"):
            raise GenzooError(
                f"'is' needs class probabilities, and the feature extractor '{extractor.name}' gives none; "
                "use a DomainClassifier"
            )
        out["is"], out["is_std"] = inception_score(
            extractor.probs(fake, batch_size=batch_size), splits=is_splits
        )
    if any(m in metrics for m in ("precision", "recall", "density", "coverage")):
        prdc = precision_recall(fr, ff, k=k)
        out.update({m: prdc[m] for m in ("precision", "recall", "density", "coverage") if m in metrics})
    return out

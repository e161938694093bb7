"""How well anomaly scores separate labelled anomalies (1) from normal examples (0)."""

from __future__ import annotations

from typing import Any

import numpy as np

from genzoo.errors import GenzooError


def detection_metrics(
    scores: np.ndarray, labels: np.ndarray, flags: np.ndarray | None = None
) -> dict[str, Any]:
    """`auroc` and `auprc` (average precision) of the scores, and where `flags` are given the
    `precision` and `recall` of those flags, with the number of `anomalies` among the labels."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    scores, labels = np.asarray(scores, dtype=float), np.asarray(labels).astype(int)
    if scores.shape != labels.shape:
        raise GenzooError(f"{len(labels)} labels for {len(scores)} scores; give one label per example")
    anomalies = int(labels.sum())
    if anomalies in (0, len(labels)):
        raise GenzooError("AUROC needs both normal (0) and anomalous (1) examples among the labels")
    result: dict[str, Any] = {
        "auroc": float(roc_auc_score(labels, scores)),
        "auprc": float(average_precision_score(labels, scores)),
        "anomalies": anomalies,
    }
    if flags is not None:
        flags = np.asarray(flags).astype(bool)
        hits = int((flags & (labels == 1)).sum())
        result["precision"] = hits / int(flags.sum()) if flags.any() else 0.0
        result["recall"] = hits / anomalies
    return result

"""Inception Score (Salimans et al. 2016) from class probabilities.

``IS = exp(E_x KL(p(y|x) || p(y)))``: high when each sample is confidently one class (sharp
p(y|x)) and the classes are used evenly (flat marginal p(y)). It lies in [1, K] for K classes:
1 for uniform predictions, K for confident predictions spread evenly over all K classes.

The probabilities can come from any classifier; published numbers use Inception-v3 on
ImageNet classes, on genzoo's small datasets a `DomainClassifier` is the meaningful choice
(report its name with the score). As in the original code, the samples are cut into
``splits`` consecutive chunks and the score's mean and std over chunks is returned.
"""

from __future__ import annotations

import torch

from genzoo.errors import GenzooError
from genzoo.metrics._arrays import ArrayLike, as_matrix


def inception_score(probs: ArrayLike, splits: int = 10) -> tuple[float, float]:
    """(mean, std) of the Inception Score over ``splits`` chunks of ``probs`` (N, K), rows summing to 1."""
    p = as_matrix(probs, "probs")
    if (p < 0).any() or not torch.allclose(p.sum(1), torch.ones(len(p), dtype=p.dtype), atol=1e-4):
        raise GenzooError(
            "probs must be class probabilities: non-negative rows that sum to 1 (apply softmax)"
        )
    if not 1 <= splits <= len(p):
        raise GenzooError(f"splits must be between 1 and the number of samples ({len(p)}), got {splits}")
    scores = []
    for chunk in p.tensor_split(splits):  # exactly `splits` near-equal chunks
        marginal = chunk.mean(0, keepdim=True)
        # xlogy gives 0 * log 0 = 0: classes a sample rules out contribute nothing.
        kl = (torch.xlogy(chunk, chunk) - torch.xlogy(chunk, marginal)).sum(1)
        scores.append(torch.exp(kl.mean()))
    values = torch.stack(scores)
    std = float(values.std(unbiased=False)) if len(values) > 1 else 0.0
    return float(values.mean()), std

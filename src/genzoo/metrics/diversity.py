"""Diversity diagnostics: which classes and modes the samples reach, and whether they copy the training set.

These answer the questions a single FID cannot: *did the GAN drop digits 3 and 8?* (class
coverage), *how many of the 25 grid modes does it hit?* (modes covered), *is it just replaying
training examples?* (memorization).
"""

from __future__ import annotations

import math

import torch

from genzoo.errors import GenzooError
from genzoo.metrics._arrays import ArrayLike, as_matrix, same_width

_CHUNK_ELEMENTS = 1 << 22


def _labels(x: ArrayLike, name: str, num_classes: int) -> torch.Tensor:
    t = x.detach().cpu() if isinstance(x, torch.Tensor) else torch.as_tensor(x)
    t = t.reshape(-1).long()
    if len(t) == 0:
        raise GenzooError(f"{name} is empty")
    if (t < 0).any() or (t >= num_classes).any():
        raise GenzooError(f"{name} must hold class indices in 0..{num_classes - 1}")
    return t


def class_coverage(
    sample_labels: ArrayLike,
    num_classes: int,
    *,
    data_labels: ArrayLike | None = None,
    smoothing: float = 1.0,
) -> dict[str, object]:
    """How the samples' predicted classes spread over ``num_classes``.

    Returns ``{"classes_hit", "class_kl", "class_shares"}``:

    - ``classes_hit``: number of classes predicted for at least one sample;
    - ``class_kl``: KL(data class mix || sample class mix) in nats, 0 when the mixes match. The
      data mix comes from ``data_labels`` (uniform when not given). The sample mix is smoothed,
      ``(count + smoothing) / (n + smoothing * K)``, so a dropped class gives a large but finite
      value instead of infinity; with thousands of samples the smoothing changes little else;
    - ``class_shares``: each class's share of the samples (unsmoothed), a list of K floats.
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be positive, got {num_classes}")
    if smoothing < 0:
        raise ValueError(f"smoothing must be >= 0, got {smoothing}")
    labels = _labels(sample_labels, "sample_labels", num_classes)
    counts = torch.bincount(labels, minlength=num_classes).double()
    if data_labels is None:
        p = torch.full((num_classes,), 1.0 / num_classes, dtype=torch.float64)
    else:
        ref = torch.bincount(_labels(data_labels, "data_labels", num_classes), minlength=num_classes).double()
        p = ref / ref.sum()
    q = (counts + smoothing) / (counts.sum() + smoothing * num_classes)
    kl = float((torch.xlogy(p, p) - torch.xlogy(p, q)).sum())
    return {
        "classes_hit": int((counts > 0).sum()),
        "class_kl": kl,
        "class_shares": (counts / counts.sum()).tolist(),
    }


def _nearest_distances(x: torch.Tensor, ref: torch.Tensor, exclude_self: bool) -> torch.Tensor:
    """Distance from each row of x to its nearest row of ref (skipping the same index when x is ref).

    The neighbour is found with cdist's fast matrix-product path, then its distance is recomputed
    directly: the fast path's cancellation turns an exact copy's 0 into ~1e-8, which would hide
    copies from ``exact_copy_share``.
    """
    out = torch.empty(len(x), dtype=x.dtype)
    step = max(1, _CHUNK_ELEMENTS // len(ref))
    for start in range(0, len(x), step):
        chunk = x[start : start + step]
        d = torch.cdist(chunk, ref)
        if exclude_self:
            rows = torch.arange(d.shape[0])
            d[rows, rows + start] = float("inf")
        nearest = d.argmin(1)
        out[start : start + step] = (chunk - ref[nearest]).norm(dim=1)
    return out


def memorization(
    samples: ArrayLike,
    train: ArrayLike,
    *,
    percentile: float = 5.0,
    holdout: ArrayLike | None = None,
) -> dict[str, float]:
    """Share of samples suspiciously close to a training example.

    Precisely: let ``t_i`` be the Euclidean distance from training example i to its nearest
    *other* training example, and ``threshold`` the ``percentile``-th percentile of the ``t_i``
    (linear interpolation, ``torch.quantile``). A sample is flagged when the distance to its
    nearest training example is strictly below ``threshold``: it sits closer to the training
    set than all but ``percentile`` % of training examples sit to each other.

    Returns ``{"memorized_share", "exact_copy_share", "threshold"}`` and, when ``holdout`` (real
    data not used for training) is given, ``"holdout_share"``: the same share for fresh real
    data, the baseline to compare with (about ``percentile`` / 100 for data of the training
    distribution). A share well above the baseline means copying. ``exact_copy_share`` counts
    samples at distance 0 — flagged separately because a dataset with duplicates has
    threshold 0, and strict "< 0" would then flag nothing.

    Inputs are feature vectors (N, D) — raw flattened pixels work for small images. Cost is
    O((N_train + N_samples) * N_train * D).
    """
    if not 0.0 < percentile < 100.0:
        raise ValueError(f"percentile must be in (0, 100), got {percentile}")
    tr = as_matrix(train, "train", min_rows=2)
    s = as_matrix(samples, "samples")
    same_width(s, tr, ("samples", "train"))
    train_nn = _nearest_distances(tr, tr, exclude_self=True)
    threshold = float(torch.quantile(train_nn, percentile / 100.0))
    sample_nn = _nearest_distances(s, tr, exclude_self=False)
    result = {
        "memorized_share": float((sample_nn < threshold).double().mean()),
        "exact_copy_share": float((sample_nn == 0).double().mean()),
        "threshold": threshold,
    }
    if holdout is not None:
        h = as_matrix(holdout, "holdout")
        same_width(h, tr, ("holdout", "train"))
        result["holdout_share"] = float(
            (_nearest_distances(h, tr, exclude_self=False) < threshold).double().mean()
        )
    return result


def modes_covered(
    samples: ArrayLike,
    centers: ArrayLike,
    std: float,
    *,
    n_std: float = 3.0,
    min_count: int = 1,
) -> dict[str, object]:
    """Mode coverage on a mixture of isotropic Gaussians (toy2d ring/grid), as in VEEGAN/PacGAN.

    A sample is *high quality* when it lies within ``n_std * std`` (Euclidean) of its nearest
    centre. A mode is *covered* when at least ``min_count`` high-quality samples belong to it.

    Returns ``{"modes", "num_modes", "high_quality_share", "mode_counts"}``: modes covered,
    modes in total, share of samples that are high quality, and per-mode counts of
    high-quality samples. In 2-d a true sample falls within 3 std with probability
    ``1 - exp(-9/2) = 0.989``, so a perfect model scores about 0.99, not 1.
    """
    if std <= 0 or n_std <= 0:
        raise ValueError(f"std and n_std must be positive, got {std} and {n_std}")
    if min_count < 1:
        raise ValueError(f"min_count must be >= 1, got {min_count}")
    s = as_matrix(samples, "samples")
    c = as_matrix(centers, "centers")
    same_width(s, c, ("samples", "centers"))
    d = torch.cdist(s, c, compute_mode="donot_use_mm_for_euclid_dist")
    nearest, which = d.min(1)
    good = nearest <= n_std * std
    counts = torch.bincount(which[good], minlength=len(c))
    return {
        "modes": int((counts >= min_count).sum()),
        "num_modes": len(c),
        "high_quality_share": float(good.double().mean()),
        "mode_counts": counts.tolist(),
    }


def expected_high_quality_share(dim: int, n_std: float = 3.0) -> float:
    """P(|z| <= n_std) for z ~ N(0, I_dim), dim 1 or 2: what a perfect sampler scores on `modes_covered`."""
    if dim == 2:
        return 1.0 - math.exp(-(n_std**2) / 2)
    if dim == 1:
        return math.erf(n_std / math.sqrt(2))
    raise ValueError("only dim 1 and 2 have a closed form here")

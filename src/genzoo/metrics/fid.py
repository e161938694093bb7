"""Fréchet distance between two sets of features (FID when the features are Inception's).

Heusel et al. 2017 fit a Gaussian to each set of features and report the Fréchet (2-Wasserstein)
distance between the two Gaussians::

    d^2 = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1^1/2 S2 S1^1/2)^1/2)

Two numerical choices make it trustworthy:

- statistics are accumulated in float64 with Chan et al.'s pairwise update (batch mean and
  centred scatter, merged), so streaming over batches equals the one-shot result and large
  feature means do not cancel the covariance away as ``E[xx^T] - mu mu^T`` can;
- the trace term uses the symmetric PSD matrix ``S1^1/2 S2 S1^1/2`` (same eigenvalues as
  ``S1 S2``) and symmetric eigen-decompositions, clipping the tiny negative eigenvalues that
  rounding leaves on rank-deficient covariances (N < D), instead of a general ``sqrtm`` that can
  return complex parts.

Covariances are unbiased (divide by N - 1), as pytorch-fid's ``np.cov`` and torchmetrics do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from genzoo.errors import GenzooError, first_line
from genzoo.files import use_umask
from genzoo.metrics._arrays import ArrayLike, as_matrix, same_width


class GaussianStats:
    """Streaming mean and covariance of feature vectors, float64, O(D^2) memory.

    >>> stats = GaussianStats()
    >>> for batch in feature_batches:  # doctest: +SKIP
    ...     stats.update(batch)
    >>> stats.mean, stats.cov  # doctest: +SKIP
    """

    def __init__(self, dim: int | None = None):
        self.n = 0
        self._mean: torch.Tensor | None = None if dim is None else torch.zeros(dim, dtype=torch.float64)
        self._scatter: torch.Tensor | None = (
            None if dim is None else torch.zeros(dim, dim, dtype=torch.float64)
        )  # sum of (x - mean)(x - mean)^T

    def update(self, feats: ArrayLike) -> GaussianStats:
        """Add a batch of features (B, D); returns self so calls chain."""
        x = as_matrix(feats, "features")
        if self._mean is None:
            d = x.shape[1]
            self._mean = torch.zeros(d, dtype=torch.float64)
            self._scatter = torch.zeros(d, d, dtype=torch.float64)
        if x.shape[1] != self._mean.shape[0]:
            raise GenzooError(
                f"features have {x.shape[1]} columns, earlier batches had {self._mean.shape[0]}"
            )
        nb = len(x)
        batch_mean = x.mean(0)
        centred = x - batch_mean
        batch_scatter = centred.T @ centred
        total = self.n + nb
        delta = batch_mean - self._mean
        # Chan, Golub & LeVeque: merge two (count, mean, scatter) summaries exactly.
        self._scatter += batch_scatter + torch.outer(delta, delta) * (self.n * nb / total)
        self._mean += delta * (nb / total)
        self.n = total
        return self

    @property
    def dim(self) -> int:
        return 0 if self._mean is None else int(self._mean.shape[0])

    @property
    def mean(self) -> torch.Tensor:
        self._require(1)
        return self._mean.clone()

    @property
    def cov(self) -> torch.Tensor:
        """Unbiased covariance (divides by N - 1)."""
        self._require(2)
        return self._scatter / (self.n - 1)

    def _require(self, n: int) -> None:
        if self.n < n:
            raise GenzooError(f"need at least {n} feature vectors, got {self.n}")

    @classmethod
    def from_features(cls, feats: ArrayLike, batch_size: int | None = None) -> GaussianStats:
        stats = cls()
        x = as_matrix(feats, "features")
        for batch in [x] if batch_size is None else x.split(batch_size):
            stats.update(batch)
        return stats

    # Reference statistics (e.g. of a whole training set) are worth caching between runs.
    def save(self, path: str | Path) -> None:
        self._require(2)
        save_file(
            {"mean": self._mean, "scatter": self._scatter, "n": torch.tensor([self.n], dtype=torch.int64)},
            str(path),
        )
        use_umask(path)  # safetensors writes 0600; cached statistics are for everyone who may read them

    @classmethod
    def load(cls, path: str | Path) -> GaussianStats:
        if not Path(path).is_file():
            raise GenzooError(f"no feature statistics at '{path}'; compute them with GaussianStats.save")
        try:
            state = load_file(str(path))
            stats = cls()
            stats._mean, stats._scatter, stats.n = state["mean"], state["scatter"], int(state["n"][0])
        except Exception as err:  # safetensors' own errors, missing keys, empty tensors
            raise GenzooError(
                f"'{path}' holds no valid feature statistics ({first_line(err)}); delete it and compute them again"
            ) from err
        return stats


def _sqrt_psd(s: np.ndarray) -> np.ndarray:
    """Square root of a symmetric PSD matrix; rounding's tiny negative eigenvalues become 0."""
    w, v = np.linalg.eigh((s + s.T) / 2)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance_from_stats(mu1: ArrayLike, s1: ArrayLike, mu2: ArrayLike, s2: ArrayLike) -> float:
    """Fréchet distance between N(mu1, s1) and N(mu2, s2), computed in float64.

    ``tr((S1 S2)^1/2)`` is the sum of square roots of the eigenvalues of ``S1 S2``; those equal
    the eigenvalues of the symmetric PSD matrix ``S1^1/2 S2 S1^1/2``, which ``eigh`` handles
    robustly. Results that rounding pushes below 0 are returned as 0.
    """
    mu1, mu2 = (np.asarray(_np(m), dtype=np.float64).reshape(-1) for m in (mu1, mu2))
    s1, s2 = (np.asarray(_np(s), dtype=np.float64) for s in (s1, s2))
    d = mu1.shape[0]
    if mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise GenzooError(
            f"inconsistent statistics: means {mu1.shape}, {mu2.shape}, covariances {s1.shape}, {s2.shape}"
        )
    if not all(np.isfinite(a).all() for a in (mu1, mu2, s1, s2)):
        raise GenzooError("feature statistics contain NaN or infinite values")
    root1 = _sqrt_psd(s1)
    middle = root1 @ s2 @ root1
    eig = np.linalg.eigvalsh((middle + middle.T) / 2)
    tr_covmean = float(np.sqrt(np.clip(eig, 0.0, None)).sum())
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)
    return max(value, 0.0)


def frechet_distance(feats_a: ArrayLike, feats_b: ArrayLike) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets of shape (N, D).

    FID proper when the features are `InceptionV3FID`'s 2048-d pool features; with any other
    extractor report its name beside the number (the ``feature_extractor`` key). The estimate is
    biased upwards for small N (it depends on N), so compare numbers at equal sample sizes.
    """
    a = as_matrix(feats_a, "feats_a", min_rows=2)
    b = as_matrix(feats_b, "feats_b", min_rows=2)
    same_width(a, b, ("feats_a", "feats_b"))
    sa, sb = GaussianStats.from_features(a), GaussianStats.from_features(b)
    return frechet_distance_from_stats(sa.mean, sa.cov, sb.mean, sb.cov)


def _np(x: ArrayLike) -> np.ndarray:
    return x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)

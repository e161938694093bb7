"""Gaussian copula: the fast baseline of synthetic tables (the model of SDV's GaussianCopulaSynthesizer,
Patki et al. 2016; Sklar's theorem says any joint distribution is its marginals plus a copula).

Each column j gets a marginal CDF F_j and a normal score z_j = Phi^-1(F_j(x_j)); the scores of a row
are modelled as N(0, R), R a correlation matrix. The marginals are reproduced as fitted, and the
dependence is what a Gaussian on the scores can express: pairwise and monotone, no interactions.

- A numeric column's F_j is its empirical quantile function on a grid of `quantiles` probabilities,
  linear between grid points. A value on a run of equal grid points (a spike, such as capital-gain's
  zeros) gets the run's middle, so a spike has one score and maps back to its value. Missing values
  are drawn at the training rate, independently of the rest (SDV's default too).
- A categorical column's categories, in the schema's order (most frequent first), split (0, 1) into
  intervals as long as their frequencies. Fitting scores a category by its interval's mid-point (as
  SDV does); a sampled score falls in exactly one interval, which is the category drawn.

Everything is fitted in `prepare`: quantile grids, missing rates, category frequencies and R (over
the rows where both columns are present, corrected for the coarseness of a category's one score per
interval, which alone would shrink its correlations, then made positive definite). Nothing is trained by gradient
(`phases` is empty), so a run trains 0 steps. `loss` is the negative log copula density of the numeric
scores: 0 when the columns are independent, lower the more dependence R explains in held-out rows.

Conditions are exact: a number fixes its score, a category confines its score to its interval (a
truncated normal, given the fixed scores; Gibbs sweeps when several scores are confined), and the
other scores are drawn from the Gaussian conditioned on those.

The quantile functions here (`fit_quantiles`, `grid_cdf`, `grid_quantile`) are also TabDDPM's
quantile transform to normal scores (`genzoo.models.tabddpm`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.special import ndtr, ndtri

from genzoo.errors import GenzooError
from genzoo.models.base import Phase, split_batch
from genzoo.models.registry import register_model
from genzoo.models.tabular import TableModel, TableModelConfig
from genzoo.nn.likelihoods import normal, uniform

UNSEEN_COUNT = 1e-3  # pseudo-count per category: one training never saw still has an interval to condition on
MIN_EIGENVALUE = 1e-6  # floor on R's eigenvalues: pairwise estimates need not be positive definite
MAX_SCORE = 8.0  # |z| beyond this has probability < 1e-15: a bound that keeps tail arithmetic finite


# ---- quantile functions on a grid (shared with TabDDPM) -------------------------------------------
def fit_quantiles(values: torch.Tensor, size: int) -> torch.Tensor:
    """(C, size) float64: each column's empirical quantiles of its present (non-NaN) values in `values`
    (N, C), at `size` probabilities evenly spaced from 0 to 1; a column with no value gets zeros."""
    x = values.detach().double().cpu().numpy()
    grid = np.zeros((x.shape[1], size))
    for j in range(x.shape[1]):
        present = x[~np.isnan(x[:, j]), j]
        if len(present):
            grid[j] = np.quantile(present, np.linspace(0.0, 1.0, size))
    return torch.from_numpy(grid)


def grid_cdf(grid: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """F(x) per column for `grid` (C, G) of quantiles and `x` (N, C): linear between grid points, the
    middle of a run of equal points for a value on it; kept half a grid step inside (0, 1) so that its
    normal score is finite. NaN stays NaN."""
    last = grid.shape[1] - 1
    xt = x.double().T.contiguous()
    lo = torch.searchsorted(grid, xt, side="left")  # first grid point >= x
    hi = torch.searchsorted(grid, xt, side="right")  # first grid point > x
    below = grid.gather(1, (lo - 1).clamp(0, last))
    above = grid.gather(1, lo.clamp(0, last))
    between = (lo - 1 + ((xt - below) / (above - below)).clamp(0, 1)) / last
    on_grid = (lo + hi - 1) / (2 * last)
    u = torch.where(hi > lo, on_grid, between).clamp(0.5 / last, 1 - 0.5 / last)
    return torch.where(torch.isnan(xt), xt, u).T


def grid_quantile(grid: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """The inverse of `grid_cdf`: values (N, C) at probabilities `u` (N, C), linear between grid points."""
    last = grid.shape[1] - 1
    position = u.double().T.clamp(0, 1) * last
    i = position.floor().long().clamp(0, last - 1)
    w = position - i
    return (grid.gather(1, i) * (1 - w) + grid.gather(1, i + 1) * w).T


# ---- Gaussian pieces --------------------------------------------------------------------------------
def latent_correlation(s: torch.Tensor, mean: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """R from the scores `s` (N, d) (NaN where missing): each pair's mean product of centred scores
    over the rows where both are present, divided by scale_i scale_j; then made positive definite by
    flooring its eigenvalues, with the unit diagonal restored.

    A score that is a function g(z) of a latent N(0, 1) score z (a category's mid-point) has
    E[z' g(z)] = rho E[z g(z)] for any z' correlated rho with z, so scale = E[z g(z)] undoes the
    coarsening exactly against a number, and to first order in rho between two categories."""
    present = (~torch.isnan(s)).double()
    centred = torch.nan_to_num(s - mean, nan=0.0)
    r = (centred.T @ centred) / (present.T @ present).clamp(min=1) / scale[:, None] / scale[None, :]
    r = torch.nan_to_num(r, nan=0.0, posinf=0.0, neginf=0.0).clamp(-1, 1)  # 0 for a constant column
    r.fill_diagonal_(1.0)
    values, vectors = torch.linalg.eigh(r)
    r = (vectors * values.clamp(min=MIN_EIGENVALUE)) @ vectors.T
    d = r.diagonal().sqrt()
    return r / d[:, None] / d[None, :]


def truncated_normal(
    mean: torch.Tensor, sd: torch.Tensor, low: torch.Tensor, high: torch.Tensor, v: torch.Tensor
) -> torch.Tensor:
    """mean + sd * x, x ~ N(0, 1) truncated to [(low - mean) / sd, (high - mean) / sd], from uniforms `v`
    by inverting the CDF. An interval above the mean is inverted mirrored, in the lower tail, where
    Phi is accurate to 1e-300 instead of rounding to 1."""
    a, b = (low - mean) / sd, (high - mean) / sd
    flip = a > 0
    a, b = torch.where(flip, -b, a), torch.where(flip, -a, b)
    lo, hi = ndtr(a), ndtr(b)
    x = ndtri(lo + (hi - lo) * v)
    x = torch.where(torch.isfinite(x), x, b)  # all of it beyond 1e-300: the edge nearest the mean
    x = torch.where(flip, -x, x)
    return torch.minimum(torch.maximum(mean + sd * x, low), high)


def _root(cov: torch.Tensor) -> torch.Tensor:
    """A square root S of a covariance (S S^T = cov), also for a singular one (conditioning on
    scores that determine others)."""
    values, vectors = torch.linalg.eigh(cov)
    return vectors * values.clamp(min=0).sqrt()


@dataclass
class GaussianCopulaConfig(TableModelConfig):
    quantiles: int = 513  # points of each numeric column's quantile grid (its fitted marginal)
    gibbs_sweeps: int = 20  # sweeps over the confined scores when two or more categories are asked for


@register_model
class GaussianCopula(TableModel):
    """Gaussian copula: fitted marginals and one correlation of normal scores; nothing to train."""

    Config = GaussianCopulaConfig
    name = "gaussian-copula"
    family = "copula"
    native_conditions = True
    anomaly_scores = ("mahalanobis",)
    # No optimizer steps (see `phases`); the batch size is validation's.
    train_defaults = {"batch_size": 1024}

    def __init__(self, config: GaussianCopulaConfig):
        super().__init__(config)
        if config.quantiles < 2:
            raise GenzooError(f"quantiles must be >= 2, got {config.quantiles}")
        if config.gibbs_sweeps < 1:
            raise GenzooError(f"gibbs_sweeps must be >= 1, got {config.gibbs_sweeps}")
        columns = self.schema.columns
        self.numeric = [j for j, c in enumerate(columns) if c.is_numeric]
        self.categorical = [j for j, c in enumerate(columns) if not c.is_numeric]
        self.sizes = [len(columns[j].categories or []) for j in self.categorical]
        self.offsets = np.cumsum([0, *self.sizes]).tolist()
        f64 = torch.float64
        self.register_buffer("quantile_grid", torch.zeros(len(self.numeric), config.quantiles, dtype=f64))
        self.register_buffer("missing_rate", torch.zeros(len(self.numeric), dtype=f64))
        self.register_buffer("category_probs", torch.zeros(sum(self.sizes), dtype=f64))
        self.register_buffer("correlation", torch.eye(len(columns), dtype=f64))

    @property
    def device(self) -> torch.device:
        return self.correlation.device  # no parameters: the buffers say where the model lives

    def phases(self) -> list[Phase]:
        return []  # everything is fitted in `prepare`

    # ---- fitting ----------------------------------------------------------------------------------
    def prepare(self, train: torch.Tensor) -> None:
        rows = train.to(self.device, torch.float64)
        values = rows[:, self.numeric]
        self.quantile_grid.copy_(fit_quantiles(values, self.config.quantiles))
        self.missing_rate.copy_(torch.isnan(values).double().mean(0))
        for i, j in enumerate(self.categorical):
            counts = torch.bincount(rows[:, j].long(), minlength=self.sizes[i]).double() + UNSEEN_COUNT
            self.category_probs[self.offsets[i] : self.offsets[i + 1]] = counts / counts.sum()
        s = self.scores(rows)
        # A number's score is its latent one (mean 0 by construction), scaled by its root mean square.
        # A category's mid-point score has the mean and the covariance with its latent score that its
        # intervals imply.
        mean = torch.zeros(s.shape[1], dtype=torch.float64, device=self.device)
        scale = torch.nan_to_num(s.pow(2), nan=0.0).sum(0).div((~torch.isnan(s)).sum(0).clamp(min=1)).sqrt()
        for i, j in enumerate(self.categorical):
            edges = self._edges(i)
            mid = ndtri((edges[:-1] + edges[1:]) / 2)
            density = torch.exp(-0.5 * ndtri(edges) ** 2) / math.sqrt(2 * math.pi)  # 0 at -inf and inf
            mean[j] = ((edges[1:] - edges[:-1]) * mid).sum()
            scale[j] = (mid * (density[:-1] - density[1:])).sum()  # E[z g(z)], g(z) the mid-point score
        self.correlation.copy_(latent_correlation(s, mean, scale))

    def _edges(self, i: int) -> torch.Tensor:
        """The interval edges 0 = e_0 < ... < e_K = 1 of categorical column number `i`."""
        probs = self.category_probs[self.offsets[i] : self.offsets[i + 1]]
        edges = torch.cat([probs.new_zeros(1), probs.cumsum(0)])
        edges[-1] = 1.0  # not 1 - 1e-16 from rounding: the last interval reaches 1
        return edges

    def scores(self, rows: torch.Tensor) -> torch.Tensor:
        """Normal scores (N, columns), float64: NaN for a missing number, a category's mid-point score."""
        rows = rows.to(self.device, torch.float64)
        z = torch.empty(rows.shape, dtype=torch.float64, device=self.device)
        z[:, self.numeric] = ndtri(grid_cdf(self.quantile_grid, rows[:, self.numeric]))
        for i, j in enumerate(self.categorical):
            edges = self._edges(i)
            z[:, j] = ndtri((edges[:-1] + edges[1:]) / 2)[rows[:, j].long()]
        return z

    # ---- the loss: held-out fit of the dependence ------------------------------------------------
    def loss(self, batch: Any, phase: str = "main") -> dict[str, torch.Tensor]:
        """Mean negative log copula density of the numeric scores, -log N(z; 0, R) + sum log N(z_j; 0, 1),
        a row's missing numbers marginalised out (R's sub-matrix of the present ones)."""
        if not self.numeric:
            return {"loss": torch.zeros((), device=self.device)}
        z = self.scores(split_batch(batch)[0])[:, self.numeric]
        return {"loss": self._gaussian_nll(z, self.numeric, copula=True).mean().float()}

    def _gaussian_nll(self, z: torch.Tensor, columns: list[int], *, copula: bool) -> torch.Tensor:
        """-log N(z; 0, R) per row over `columns` (missing scores marginalised out), up to a constant;
        `copula` subtracts the independent normals' part, leaving the dependence alone."""
        r = self.correlation[columns][:, columns]
        present = ~torch.isnan(z)
        nll = torch.zeros(len(z), dtype=torch.float64, device=self.device)
        for pattern in torch.unique(present, dim=0):
            rows = (present == pattern).all(1)
            keep = pattern.nonzero().flatten()
            if len(keep) == 0:
                continue
            sub, zs = r[keep][:, keep], z[rows][:, keep]
            quadratic = (zs @ torch.linalg.inv(sub) * zs).sum(1) - (zs**2).sum(1) * copula
            nll[rows] = 0.5 * (quadratic + torch.linalg.slogdet(sub)[1])
        return nll

    @torch.no_grad()
    def anomaly_score(self, x: torch.Tensor, kind: str) -> torch.Tensor:
        """ "mahalanobis": half the squared Mahalanobis distance of a row's normal scores under R (plus
        log det R / 2): large for a value far in its column's tail and for columns that disagree."""
        if kind != "mahalanobis":
            return super().anomaly_score(x, kind)
        if x.dim() != 2 or x.shape[1] != len(self.schema.columns):
            raise GenzooError(
                f"gaussian-copula expects rows of {len(self.schema.columns)} columns, got shape {tuple(x.shape)}"
            )
        columns = list(range(len(self.schema.columns)))
        return self._gaussian_nll(self.scores(x), columns, copula=False).float()

    # ---- sampling ---------------------------------------------------------------------------------
    def sample_rows(
        self, n: int, generator: torch.Generator | None, conditions: dict[int, float], **options: Any
    ) -> torch.Tensor:
        if options:
            raise GenzooError(f"gaussian-copula takes no sampling options, got: {', '.join(options)}")
        if n < 0:
            raise GenzooError(f"number of samples must be >= 0, got {n}")
        device, d = self.device, len(self.schema.columns)
        z = torch.zeros(n, d, dtype=torch.float64, device=device)
        fixed = [j for j in conditions if j in self.numeric]
        confined = [j for j in conditions if j in self.categorical]
        for j in fixed:
            i = self.numeric.index(j)
            value = torch.tensor([[conditions[j]]], dtype=torch.float64, device=device)
            z[:, j] = ndtri(grid_cdf(self.quantile_grid[i : i + 1], value))[0, 0]
        if confined:
            self._draw_confined(z, fixed, {j: int(conditions[j]) for j in confined}, generator)
        given = fixed + confined
        free = [j for j in range(d) if j not in conditions]
        r = self.correlation
        if given:
            # z_free | z_given ~ N(K z_given, R_ff - K R_gf), K = R_fg R_gg^-1
            k = torch.linalg.solve(r[given][:, given], r[given][:, free]).T
            mean, cov = z[:, given] @ k.T, r[free][:, free] - k @ r[given][:, free]
        else:
            mean, cov = torch.zeros(n, d, dtype=torch.float64, device=device), r
        eps = normal((n, len(free)), generator, device).double()
        z[:, free] = mean + eps @ _root(cov).T
        return self._values(z.clamp(-MAX_SCORE, MAX_SCORE), conditions, generator)

    def _draw_confined(
        self, z: torch.Tensor, fixed: list[int], confined: dict[int, int], generator: torch.Generator | None
    ) -> None:
        """Draw the scores of the conditioned categories into `z`, each within its category's interval,
        given the fixed scores: one exact draw for one category, Gibbs sweeps (each score from its
        truncated conditional given all the others) for several."""
        given = fixed + list(confined)
        precision = torch.linalg.inv(self.correlation[given][:, given])
        zg = z[:, given]
        bounds = {}
        for j, category in confined.items():
            edges = ndtri(self._edges(self.categorical.index(j))).clamp(-MAX_SCORE, MAX_SCORE)
            bounds[j] = (edges[category], edges[category + 1])
            zg[:, given.index(j)] = (bounds[j][0] + bounds[j][1]) / 2  # the start of the sweeps
        for _ in range(1 if len(confined) == 1 else self.config.gibbs_sweeps):
            for j, (low, high) in bounds.items():
                k = given.index(j)
                # N(mean, 1 / P_kk) given the rest, mean = -sum_{l != k} P_kl z_l / P_kk
                others = zg @ precision[k] - precision[k, k] * zg[:, k]
                mean, sd = -others / precision[k, k], precision[k, k].rsqrt()
                v = uniform((len(z),), generator, z.device).double()
                zg[:, k] = truncated_normal(mean, sd.expand_as(mean), low, high, v)
        z[:, given] = zg

    def _values(
        self, z: torch.Tensor, conditions: dict[int, float], generator: torch.Generator | None
    ) -> torch.Tensor:
        """Rows in the schema's encoding from scores: the quantile functions, the category intervals,
        missing numbers at their rates (never in a column given a value)."""
        u = ndtr(z)
        rows = torch.empty(z.shape, dtype=torch.float64, device=z.device)
        rows[:, self.numeric] = grid_quantile(self.quantile_grid, u[:, self.numeric])
        missing = uniform((len(z), len(self.numeric)), generator, z.device).double() < self.missing_rate
        for i, j in enumerate(self.numeric):
            if j not in conditions:
                rows[:, j] = torch.where(missing[:, i], float("nan"), rows[:, j])
        for i, j in enumerate(self.categorical):
            inner = self._edges(i)[1:-1].contiguous()
            rows[:, j] = torch.searchsorted(inner, u[:, j].contiguous(), side="right").double()
        for j, value in conditions.items():
            rows[:, j] = value
        return rows.float()

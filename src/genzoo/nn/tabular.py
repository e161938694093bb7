"""Table rows to network inputs and back: mode-specific normalisation (Xu et al. 2019, CTGAN/TVAE).

A numeric column is described by a Bayesian Gaussian mixture fitted to its training values (at most
`max_modes` components; the Dirichlet-process prior switches off the ones the data do not need). A
value becomes the one-hot of its most likely component and a scalar `alpha = (x - mu) / (4 sigma)`
in [-1, 1]; a column with missing values adds a 2-way one-hot "missing?". A category becomes its
one-hot. So multi-modal and heavy-tailed columns (capital-gain: 92% zeros and a long tail) turn into
something a tanh output can reach, which a plain min-max scaling would squash into a corner.

The layout (which slice of the encoded row is which column's value, mode, category or missing flag)
depends only on the schema, so a network can be sized before any data is seen; the mixtures are
buffers filled by `fit` and saved with the weights.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genzoo.data.tabular import TableSchema

SpanKind = Literal["value", "mode", "category", "missing"]
MAX_FIT_ROWS = 10_000  # the mixtures are fitted on at most this many values per column (seeded subsample)


@dataclass(frozen=True)
class Span:
    """A slice `[start, start + width)` of the encoded row: `kind` of the schema's column `column`."""

    column: int
    start: int
    width: int
    kind: SpanKind

    @property
    def stop(self) -> int:
        return self.start + self.width


class ModeNormalizer(nn.Module):
    """Encode raw table rows (N, columns) to (N, width) and decode them back (see the module doc)."""

    def __init__(self, schema: TableSchema, max_modes: int = 10):
        super().__init__()
        self.schema, self.max_modes = schema, max_modes
        spans: list[Span] = []
        start = 0
        for j, c in enumerate(schema.columns):
            parts: list[tuple[SpanKind, int]]
            if c.is_numeric:
                parts = [("value", 1), ("mode", max_modes)] + ([("missing", 2)] if c.missing else [])
            else:
                parts = [("category", len(c.categories or []))]
            for kind, width in parts:
                spans.append(Span(j, start, width, kind))
                start += width
        self.spans: tuple[Span, ...] = tuple(spans)
        self.width = start
        self.numeric = [j for j, c in enumerate(schema.columns) if c.is_numeric]
        k = len(self.numeric)
        self.register_buffer("means", torch.zeros(k, max_modes))
        self.register_buffer("stds", torch.ones(k, max_modes))
        self.register_buffer("active", torch.ones(k, max_modes, dtype=torch.bool))

    @property
    def discrete_spans(self) -> list[Span]:
        """Spans that are one-hots of a categorical column: what CTGAN's conditional vector picks from."""
        return [s for s in self.spans if s.kind == "category"]

    def fit(self, rows: torch.Tensor, seed: int = 0) -> ModeNormalizer:
        """Fit each numeric column's mixture on the non-missing training values."""
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.mixture import BayesianGaussianMixture

        rng = np.random.default_rng(seed)
        for i, j in enumerate(self.numeric):
            x = rows[:, j].double().numpy()
            x = x[~np.isnan(x)]
            if len(x) > MAX_FIT_ROWS:
                x = rng.choice(x, MAX_FIT_ROWS, replace=False)
            modes = min(self.max_modes, max(1, len(np.unique(x))))
            mixture = BayesianGaussianMixture(
                n_components=modes,
                weight_concentration_prior_type="dirichlet_process",
                weight_concentration_prior=1e-3,
                max_iter=100,
                random_state=seed,
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                mixture.fit(x.reshape(-1, 1))
            means = np.zeros(self.max_modes)
            stds = np.ones(self.max_modes)
            active = np.zeros(self.max_modes, dtype=bool)
            means[:modes] = mixture.means_[:, 0]
            # A floor on sigma: a mode on a single value (all the zeros of capital-gain) has ~0 width.
            spread = max(float(np.std(x)), 1e-6)
            stds[:modes] = np.maximum(np.sqrt(mixture.covariances_.reshape(-1)), 1e-3 * spread)
            # A component is used when it is the likeliest for some training value: then every value
            # has a mode that holds it (a weight threshold, as CTGAN uses, strands rare values).
            active[np.unique(mixture.predict(x.reshape(-1, 1)))] = True
            self.means[i] = torch.from_numpy(means)
            self.stds[i] = torch.from_numpy(stds)
            self.active[i] = torch.from_numpy(active)
        return self

    def encode(self, rows: torch.Tensor) -> torch.Tensor:
        """(N, columns) raw rows -> (N, width) network rows."""
        rows = rows.to(self.means.device)
        out = torch.zeros(len(rows), self.width, device=rows.device)
        numeric_index = {j: i for i, j in enumerate(self.numeric)}
        for span in self.spans:
            x = rows[:, span.column]
            missing = torch.isnan(x)
            if span.kind == "category":
                out[:, span.start : span.stop] = F.one_hot(x.long(), span.width).float()
            elif span.kind == "missing":
                out[:, span.start : span.stop] = F.one_hot(missing.long(), 2).float()
            else:
                i = numeric_index[span.column]
                mode, alpha = self._assign(torch.nan_to_num(x, nan=0.0), i)
                if span.kind == "value":
                    out[:, span.start] = torch.where(missing, torch.zeros_like(alpha), alpha)
                else:
                    out[:, span.start : span.stop] = F.one_hot(mode, span.width).float()
        return out

    def _assign(self, x: torch.Tensor, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Each value's most likely active component, and its normalised offset in it."""
        mu, sigma = self.means[i], self.stds[i]
        log_density = -0.5 * ((x[:, None] - mu) / sigma) ** 2 - torch.log(sigma)
        # Among active modes, those whose alpha needs no clipping, when a value has any.
        inside = self.active[i] & ((x[:, None] - mu).abs() <= 3.96 * sigma)
        allowed = torch.where(inside.any(1, keepdim=True), inside, self.active[i].expand_as(inside))
        mode = log_density.masked_fill(~allowed, float("-inf")).argmax(1)
        alpha = ((x - mu[mode]) / (4 * sigma[mode])).clamp(-0.99, 0.99)
        return mode, alpha

    def decode(self, encoded: torch.Tensor) -> torch.Tensor:
        """(N, width) network rows (activated: tanh values, one-hots or probabilities) -> raw rows;
        a one-hot part is read by its largest entry."""
        encoded = encoded.to(self.means.device)
        rows = torch.zeros(len(encoded), len(self.schema.columns), device=encoded.device)
        numeric_index = {j: i for i, j in enumerate(self.numeric)}
        alpha: dict[int, torch.Tensor] = {}
        for span in self.spans:
            part = encoded[:, span.start : span.stop]
            if span.kind == "category":
                rows[:, span.column] = part.argmax(1).float()
            elif span.kind == "value":
                alpha[span.column] = part[:, 0].clamp(-1, 1)
            elif span.kind == "mode":
                i = numeric_index[span.column]
                mode = part.masked_fill(~self.active[i], float("-inf")).argmax(1)
                rows[:, span.column] = alpha[span.column] * 4 * self.stds[i][mode] + self.means[i][mode]
            else:  # missing: the column's value is dropped when "missing" wins
                rows[:, span.column] = torch.where(
                    part.argmax(1) == 1,
                    torch.full_like(rows[:, span.column], float("nan")),
                    rows[:, span.column],
                )
        return rows

    def activate(self, logits: torch.Tensor, tau: float | None = None) -> torch.Tensor:
        """Network outputs to encoded rows: tanh on values, softmax on one-hot parts (Gumbel-softmax
        with temperature `tau` when given, as CTGAN's generator does while training)."""
        parts = []
        for span in self.spans:
            x = logits[:, span.start : span.stop]
            if span.kind == "value":
                parts.append(torch.tanh(x))
            elif tau is not None:
                parts.append(F.gumbel_softmax(x, tau=tau))
            else:
                parts.append(torch.softmax(x, dim=1))
        return torch.cat(parts, dim=1)

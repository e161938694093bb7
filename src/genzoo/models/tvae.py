"""TVAE: the tabular variational autoencoder of Xu et al. 2019 ("Modeling Tabular Data using Conditional GAN").

Rows are encoded as CTGAN encodes them (`ModeNormalizer`: per numeric column a value in [-1, 1],
a one-hot mode and a missing flag; per categorical column a one-hot). Then

    q(z|r)   = N(mu(r), diag(exp(logvar(r))))        encoder MLP (128, 128), latent 128
    p(z)     = N(0, I)
    p(r|z)   = per value:    N(tanh(out), sigma_j^2)  sigma_j learned, one per numeric column
               per one-hot:  Categorical(softmax(out))  decoder MLP (128, 128)

    loss = loss_factor * (Gaussian NLL + cross-entropy) + KL(q(z|r) || p(z))

with loss_factor 2, as the paper's reference, which weighs the reconstruction above the prior.
A missing number's value and mode carry no information, so they are left out of its row's terms.
The bound is on the encoded row r, not on the data (r's values live in a mode-dependent scale and
the one-hots are a relaxation), so TVAE claims no likelihood (`log_prob_kind = None`).

Sampling draws z from the prior and then r from p(r|z) (Gumbel-max for the one-hots), all noise
from the caller's generator; `encode` gives the posterior mean of rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from genzoo.errors import GenzooError
from genzoo.models.base import Preset, split_batch
from genzoo.models.registry import register_model
from genzoo.models.tabular import TableModel, TableModelConfig
from genzoo.nn.blocks import mlp
from genzoo.nn.likelihoods import normal, uniform
from genzoo.nn.tabular import ModeNormalizer, Span

SIGMA_RANGE = (0.01, 1.0)  # the reference clamps sigma to this after every step
SIGMA_INIT = 0.1


@dataclass
class TVAEConfig(TableModelConfig):
    compress_dims: tuple[int, ...] = (128, 128)  # encoder widths
    decompress_dims: tuple[int, ...] = (128, 128)  # decoder widths
    latent_dim: int = 128
    loss_factor: float = 2.0  # weight of the reconstruction terms against the KL
    max_modes: int = 10  # mixture components per numeric column


@register_model
class TVAE(TableModel):
    """TVAE: a VAE on mode-normalised table rows (Gaussian values, categorical one-hots)."""

    Config = TVAEConfig
    name = "tvae"
    family = "vae"
    log_prob_kind = None
    latent_space = True
    anomaly_scores = ("reconstruction",)
    # Adam at 1e-3 with weight decay 1e-5 and batch 500, as the paper's reference; a constant rate.
    # A step at batch 500 on adult took 0.012 s on 2 CPU cores (measured, OMP_NUM_THREADS=2; 0.022 s
    # on one thread): the default 6000 steps (about 115 epochs) take 1 to 2 minutes.
    train_defaults = {
        "lr": 1e-3,
        "weight_decay": 1e-5,
        "batch_size": 500,
        "max_steps": 6000,
        "lr_schedule": "constant",
        "eval_every": 500,
        "eval_batches": 4,
    }
    compare_settings = {"max_steps": 1000}
    # SDV's sizes are the defaults; its 100 epochs of adult at batch 500 are 5300 steps.
    presets = {
        "adult": Preset(
            "adult",
            {"max_steps": 5300},
            "quality 0.901, ML efficacy 0.903 beside SDV's TVAE (README, Results: Synthetic tables beside SDV)",
        )
    }

    def __init__(self, config: TVAEConfig):
        super().__init__(config)
        c = config
        if c.latent_dim < 1 or c.max_modes < 1:
            raise GenzooError("latent_dim and max_modes must be >= 1")
        if c.loss_factor <= 0:
            raise GenzooError(f"loss_factor must be > 0, got {c.loss_factor}")
        self.normalizer = ModeNormalizer(self.schema, c.max_modes)
        width = self.normalizer.width
        self.encoder = mlp(width, c.compress_dims, 2 * c.latent_dim, act="relu")
        self.decoder = mlp(c.latent_dim, c.decompress_dims, width, act="relu")
        self.values = [s for s in self.normalizer.spans if s.kind == "value"]
        self.onehots = [s for s in self.normalizer.spans if s.kind != "value"]
        # Each numeric column's "missing?" flag, where it has one: its value and mode then say nothing.
        self.missing_flag = {s.column: s.start + 1 for s in self.normalizer.spans if s.kind == "missing"}
        # sigma = low + (high - low) * sigmoid(s): kept in the reference's range, with a gradient
        # everywhere (a clamp would freeze a sigma that reached a bound).
        low, high = SIGMA_RANGE
        start = torch.logit(torch.tensor((SIGMA_INIT - low) / (high - low)))
        self.sigma_logit = nn.Parameter(torch.full((len(self.values),), float(start)))
        self.register_buffer(
            "value_index", torch.tensor([s.start for s in self.values], dtype=torch.long), persistent=False
        )

    def prepare(self, train: torch.Tensor) -> None:
        self.normalizer.fit(train)

    def sigma(self) -> torch.Tensor:
        """Each numeric column's standard deviation of its value (in the encoded [-1, 1] scale)."""
        low, high = SIGMA_RANGE
        return low + (high - low) * torch.sigmoid(self.sigma_logit)

    def _rows(self, rows: torch.Tensor) -> torch.Tensor:
        if rows.dim() != 2 or rows.shape[1] != len(self.schema.columns):
            raise GenzooError(
                f"TVAE expects rows of {len(self.schema.columns)} columns, got shape {tuple(rows.shape)}"
            )
        return rows.to(self.device, torch.float32)

    def _present(self, r: torch.Tensor, span: Span) -> torch.Tensor | float:
        """1 where the span's column has a value, 0 where it is missing (1 for columns never missing)."""
        flag = self.missing_flag.get(span.column)
        return 1.0 if flag is None else 1 - r[:, flag]

    def _reconstruction(self, r: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """-log p(r|z) per row, up to a constant: Gaussian values, categorical one-hots."""
        sigma = self.sigma()
        reconstruction = r.new_zeros(len(r))
        for i, span in enumerate(self.values):
            error = r[:, span.start] - torch.tanh(out[:, span.start])
            nll = error**2 / (2 * sigma[i] ** 2) + torch.log(sigma[i])
            reconstruction = reconstruction + nll * self._present(r, span)
        for span in self.onehots:
            target = r[:, span.start : span.stop].argmax(1)
            ce = F.cross_entropy(out[:, span.start : span.stop], target, reduction="none")
            reconstruction = reconstruction + (ce * self._present(r, span) if span.kind == "mode" else ce)
        return reconstruction

    @torch.no_grad()
    def anomaly_score(self, x: torch.Tensor, kind: str) -> torch.Tensor:
        """ "reconstruction": -log p(row | z = posterior mean), the training loss's reconstruction term."""
        if kind != "reconstruction":
            return super().anomaly_score(x, kind)
        with self.inference():
            r = self.normalizer.encode(self._rows(x))
            mu = self.encoder(r).chunk(2, dim=1)[0]
            return self._reconstruction(r, self.decoder(mu))

    # ---- the contract ------------------------------------------------------------------------
    def loss(self, batch: Any, phase: str = "main") -> dict[str, torch.Tensor]:
        rows, _ = split_batch(batch)
        r = self.normalizer.encode(self._rows(rows))
        mu, logvar = self.encoder(r).chunk(2, dim=1)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        reconstruction = self._reconstruction(r, self.decoder(z))
        kl = -0.5 * (1 + logvar - mu**2 - logvar.exp()).sum(1)
        loss = (self.config.loss_factor * reconstruction + kl).mean()
        return {"loss": loss, "reconstruction": reconstruction.mean().detach(), "kl": kl.mean().detach()}

    def sample_rows(
        self, n: int, generator: torch.Generator | None, conditions: dict[int, float], **options: Any
    ) -> torch.Tensor:
        """`n` rows from the prior through p(r|z); conditions are the base's (by rejection)."""
        if options:
            raise GenzooError(f"tvae takes no sampling options, got: {', '.join(options)}")
        z = normal((n, self.config.latent_dim), generator, self.device)
        out = self.decoder(z)
        # One-hots: Gumbel-max, a draw from softmax(out); values: tanh(out) + sigma * noise.
        u = uniform(tuple(out.shape), generator, self.device)
        r = out - torch.log(-torch.log(u))
        noise = normal((n, len(self.values)), generator, self.device)
        r[:, self.value_index] = torch.tanh(out[:, self.value_index]) + self.sigma() * noise
        return self.normalizer.decode(r)

    @torch.no_grad()
    def encode(self, rows: torch.Tensor) -> torch.Tensor:
        """The posterior mean of q(z|r) for raw rows (N, columns): (N, latent_dim)."""
        with self.inference():
            return self.encoder(self.normalizer.encode(self._rows(rows))).chunk(2, dim=1)[0]


__all__ = ["TVAE", "TVAEConfig"]

"""CTGAN: the conditional tabular GAN of Xu et al. 2019 ("Modeling Tabular Data using Conditional GAN").

    row     -> mode-specific normalisation (`ModeNormalizer`): per numeric column a value in [-1, 1]
               and a one-hot mode (plus a missing flag), per categorical column a one-hot
    c          the conditional vector: a one-hot over the categories of every categorical column,
               with exactly one category of one column set
    G(z, c)    residual blocks (Linear -> BatchNorm -> ReLU, the input concatenated to the output),
               then a Linear to the encoded width; tanh on values, Gumbel-softmax (tau 0.2) on one-hots
    D(x, c)    PacGAN (Lin et al. 2018): `pac` rows side by side are scored together, through
               Linear -> LeakyReLU(0.2) -> Dropout(0.5) layers; a WGAN-GP critic (Gulrajani et al. 2017)

Training by sampling: each example of a batch picks a categorical column uniformly, then one of its
categories with probability proportional to log(1 + its training count); the critic compares real
rows of that category with rows generated for it, and the generator also pays the cross-entropy
between its output on that column and the category, so that it learns to obey c. Rare categories
are thus seen far more often than their frequency, which is what lets `where` ask for them.

The Trainer hands the model uniform batches, so the real rows are drawn from the batch (with
replacement), each with weight p(category) / (its category's count in the batch): the chosen
categories then follow the log-frequency law over the categories the batch holds (one that a batch
lacks waits for the next batch). The batch is rounded to whole packs of `pac` rows on the way.

Sampling draws c from the training frequencies (a column uniformly, then a category by its
frequency), so unconditioned rows follow the data; `where` on a category sets c to it. Categories
are read by the Gumbel-max trick with the caller's generator, the draw that Gumbel-softmax at a low
temperature approximates in training. GANs have no likelihood (`log_prob_kind = None`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from genzoo.errors import GenzooError
from genzoo.models.base import Phase, Preset, split_batch
from genzoo.models.gan import gradient_penalty
from genzoo.models.registry import register_model
from genzoo.models.tabular import REJECTION_ROUNDS, TableModel, TableModelConfig
from genzoo.nn.likelihoods import normal, uniform
from genzoo.nn.tabular import ModeNormalizer

EXACT_KINDS = ("continuous", "datetime")  # conditions no draw meets exactly: the base sets them


@dataclass
class CTGANConfig(TableModelConfig):
    embedding_dim: int = 128  # noise z fed to the generator with the conditional vector
    generator_dim: tuple[int, ...] = (256, 256)  # widths of the residual blocks
    discriminator_dim: tuple[int, ...] = (256, 256)
    pac: int = 10  # rows per pack the critic scores together
    gp_weight: float = 10.0  # WGAN-GP's lambda
    tau: float = 0.2  # Gumbel-softmax temperature of the generator's one-hots in training
    n_critic: int = 1  # critic steps per generator step (1, as the reference implementation)
    max_modes: int = 10  # mixture components per numeric column


class Residual(nn.Module):
    """Linear -> BatchNorm -> ReLU, with the input passed on beside the output."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.fc = nn.Linear(in_features, out_features)
        self.bn = nn.BatchNorm1d(out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.relu(self.bn(self.fc(x))), x], 1)


class Generator(nn.Module):
    """(z, c) (B, in_features) -> logits of the encoded row (B, width)."""

    def __init__(self, in_features: int, hidden: tuple[int, ...], width: int):
        super().__init__()
        blocks: list[nn.Module] = []
        for h in hidden:
            blocks.append(Residual(in_features, h))
            in_features += h
        self.net = nn.Sequential(*blocks, nn.Linear(in_features, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Critic(nn.Module):
    """(encoded row, c) (B, in_features) -> one score per pack of `pac` rows (B / pac,)."""

    def __init__(self, in_features: int, hidden: tuple[int, ...], pac: int):
        super().__init__()
        self.pac = pac
        layers: list[nn.Module] = []
        width = in_features * pac
        for h in hidden:
            layers += [nn.Linear(width, h), nn.LeakyReLU(0.2), nn.Dropout(0.5)]
            width = h
        self.net = nn.Sequential(*layers, nn.Linear(width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.reshape(len(x) // self.pac, -1)).squeeze(1)


@register_model
class CTGAN(TableModel):
    """CTGAN: conditional tabular GAN (mode-specific normalisation, training by sampling, PacGAN, WGAN-GP)."""

    Config = CTGANConfig
    name = "ctgan"
    family = "gan"
    log_prob_kind = None
    native_conditions = True
    anomaly_scores = ("critic",)
    # Adam as in the paper (lr 2e-4, betas (0.5, 0.9), weight decay 1e-6), a constant rate, batch 500.
    # The paper trains 300 epochs (15,600 steps on adult); on 2 CPU cores a step at batch 500 on adult
    # took 0.06 s (measured, OMP_NUM_THREADS=2; 0.09 s on one thread), so the default 3000 steps
    # (about 58 epochs) take 3 to 4.5 minutes.
    train_defaults = {
        "lr": 2e-4,
        "betas": (0.5, 0.9),
        "weight_decay": 1e-6,
        "batch_size": 500,
        "max_steps": 3000,
        "lr_schedule": "constant",
        "eval_every": 500,
        "eval_batches": 4,
    }
    compare_settings = {"max_steps": 600}
    # SDV's sizes are the defaults; its 100 epochs of adult at batch 500 are 5300 steps of one critic
    # and one generator update each.
    presets = {
        "adult": Preset(
            "adult",
            {"max_steps": 5300},
            "quality 0.875, ML efficacy 0.844 beside SDV's CTGAN (README, Results: Synthetic tables beside SDV)",
        )
    }

    def __init__(self, config: CTGANConfig):
        super().__init__(config)
        c = config
        if c.embedding_dim < 1 or c.pac < 1 or c.n_critic < 1 or c.max_modes < 1:
            raise GenzooError("embedding_dim, pac, n_critic and max_modes must be >= 1")
        if c.tau <= 0 or c.gp_weight < 0:
            raise GenzooError(f"tau must be > 0 and gp_weight >= 0, got tau={c.tau}, gp_weight={c.gp_weight}")
        self.normalizer = ModeNormalizer(self.schema, c.max_modes)
        self.discrete = self.normalizer.discrete_spans
        # Where each categorical column's categories start in the conditional vector.
        self.cond_starts = [sum(s.width for s in self.discrete[:d]) for d in range(len(self.discrete))]
        self.cond_width = sum(s.width for s in self.discrete)
        self.register_buffer("category_counts", torch.zeros(self.cond_width))  # training counts, by prepare
        # 1 on the encoded row's one-hot parts: where the Gumbel-max noise goes when sampling.
        onehot = torch.ones(self.normalizer.width)
        for span in self.normalizer.spans:
            if span.kind == "value":
                onehot[span.start] = 0.0
        self.register_buffer("onehot_mask", onehot, persistent=False)
        self.generator = Generator(c.embedding_dim + self.cond_width, c.generator_dim, self.normalizer.width)
        self.critic = Critic(self.normalizer.width + self.cond_width, c.discriminator_dim, c.pac)

    def prepare(self, train: torch.Tensor) -> None:
        self.normalizer.fit(train)
        for span, start in zip(self.discrete, self.cond_starts, strict=True):
            counts = torch.bincount(train[:, span.column].long(), minlength=span.width)
            self.category_counts[start : start + span.width] = counts.float()

    def phases(self) -> list[Phase]:
        return [
            Phase("disc", list(self.critic.parameters()), repeats=self.config.n_critic),
            Phase("gen", list(self.generator.parameters())),
        ]

    # ---- training ---------------------------------------------------------------------------
    def _training_conditions(
        self, rows: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Training by sampling within the batch: the real rows to use (indices into `rows`, whole
        packs), their conditional vectors, and the column (index into `discrete`) and category each
        one chose (None without categorical columns)."""
        pac, n = self.config.pac, len(rows)
        m = max(pac, round(n / pac) * pac)
        if not self.discrete:
            pick = torch.randint(n, (m,), device=rows.device)
            return pick, rows.new_zeros(m, 0), None, None
        categories = torch.stack([rows[:, s.column].long() for s in self.discrete])  # (D, n)
        weights = torch.empty(len(self.discrete), n, device=rows.device)
        for d, (span, start) in enumerate(zip(self.discrete, self.cond_starts, strict=True)):
            log_frequency = torch.log1p(self.category_counts[start : start + span.width])
            in_batch = torch.bincount(categories[d], minlength=span.width).float()
            weights[d] = log_frequency[categories[d]] / in_batch[categories[d]]
        # A validation batch may hold only categories training never saw (weight 0): draw it uniformly.
        weights[weights.sum(1) == 0] = 1.0
        column = torch.randint(len(self.discrete), (m,), device=rows.device)
        pick = torch.empty(m, dtype=torch.long, device=rows.device)
        for d in range(len(self.discrete)):
            chosen = column == d
            if chosen.any():
                pick[chosen] = torch.multinomial(weights[d], int(chosen.sum()), replacement=True)
        category = categories[column, pick]
        starts = torch.tensor(self.cond_starts, device=rows.device)
        cond = F.one_hot(starts[column] + category, self.cond_width).float()
        return pick, cond, column, category

    def _condition_penalty(
        self, logits: torch.Tensor, column: torch.Tensor | None, category: torch.Tensor | None
    ) -> torch.Tensor:
        """Mean cross-entropy between the generator's logits on each example's chosen column and
        the chosen category."""
        if column is None or category is None:
            return logits.new_zeros(())
        total = logits.new_zeros(())
        for d, span in enumerate(self.discrete):
            chosen = column == d
            total = total + F.cross_entropy(
                logits[chosen, span.start : span.stop], category[chosen], reduction="sum"
            )
        return total / len(logits)

    def _fake_logits(self, cond: torch.Tensor) -> torch.Tensor:
        z = torch.randn(len(cond), self.config.embedding_dim, device=cond.device)
        return self.generator(torch.cat([z, cond], 1))

    def loss(self, batch: Any, phase: str = "main") -> dict[str, torch.Tensor]:
        """ "disc": critic loss + gradient penalty; "gen": generator loss + the condition's
        cross-entropy; "main": both without penalty, for logging."""
        if phase not in ("disc", "gen", "main"):
            raise GenzooError(f"unknown CTGAN phase '{phase}'; the phases are 'disc' and 'gen'")
        c = self.config
        rows, _ = split_batch(batch)
        if rows.dim() != 2 or rows.shape[1] != len(self.schema.columns):
            raise GenzooError(
                f"CTGAN expects rows of {len(self.schema.columns)} columns, got shape {tuple(rows.shape)}"
            )
        rows = rows.to(self.device, torch.float32)
        pick, cond, column, category = self._training_conditions(rows)
        if phase == "gen":
            logits = self._fake_logits(cond)
            fake = self.normalizer.activate(logits, tau=c.tau)
            g_loss = -self.critic(torch.cat([fake, cond], 1)).mean()
            penalty = self._condition_penalty(logits, column, category)
            return {"loss": g_loss + penalty, "g_loss": g_loss.detach(), "cond_ce": penalty.detach()}
        real = torch.cat([self.normalizer.encode(rows[pick]), cond], 1)
        with torch.no_grad():
            fake = torch.cat([self.normalizer.activate(self._fake_logits(cond), tau=c.tau), cond], 1)
        real_score, fake_score = self.critic(real), self.critic(fake)
        d_loss = fake_score.mean() - real_score.mean()
        out = {"d_loss": d_loss.detach(), "w_distance": -d_loss.detach()}
        if phase == "main":  # validation: no penalty (it needs gradients)
            return {"loss": d_loss.detach(), "g_loss": -fake_score.mean().detach(), **out}
        # One mixing point per pack: the critic's input is the pack (as PacGAN's reference does).
        alpha = torch.rand(len(real) // c.pac, device=real.device).repeat_interleave(c.pac)
        gp = gradient_penalty(self.critic, real, fake, alpha)
        return {"loss": d_loss + c.gp_weight * gp, "gp": gp.detach(), **out}

    @torch.no_grad()
    def anomaly_score(self, x: torch.Tensor, kind: str) -> torch.Tensor:
        """ "critic": minus the critic's mean score over the conditional vectors the row itself
        satisfies (one per categorical column), each row filling a whole pack alone."""
        if kind != "critic":
            return super().anomaly_score(x, kind)
        rows = x.to(self.device, torch.float32)
        if rows.dim() != 2 or rows.shape[1] != len(self.schema.columns):
            raise GenzooError(
                f"CTGAN expects rows of {len(self.schema.columns)} columns, got shape {tuple(rows.shape)}"
            )
        with self.inference():
            encoded = self.normalizer.encode(rows)
            conds = [
                F.one_hot(start + rows[:, span.column].long(), self.cond_width).float()
                for span, start in zip(self.discrete, self.cond_starts, strict=True)
            ] or [rows.new_zeros(len(rows), 0)]
            scores = [
                self.critic(torch.cat([encoded, cond], 1).repeat_interleave(self.config.pac, dim=0))
                for cond in conds
            ]
            return -torch.stack(scores).mean(0)

    # ---- sampling ---------------------------------------------------------------------------
    def sample_rows(
        self, n: int, generator: torch.Generator | None, conditions: dict[int, float], **options: Any
    ) -> torch.Tensor:
        """`n` rows; a condition on a category is met through the conditional vector (the rarest
        one's, when several are asked), the other whole-valued conditions by rejection."""
        if options:
            raise GenzooError(f"ctgan takes no sampling options, got: {', '.join(options)}")
        discrete = {j: v for j, v in conditions.items() if self.schema.columns[j].kind not in EXACT_KINDS}
        if not discrete:
            return self._draw(n, generator, None)
        asked = [
            (self.cond_starts[d] + int(discrete[span.column]))
            for d, span in enumerate(self.discrete)
            if span.column in discrete
        ]
        fixed = min(asked, key=lambda i: float(self.category_counts[i])) if asked else None
        kept: list[torch.Tensor] = []
        have, drawn, size = 0, 0, n
        for _ in range(REJECTION_ROUNDS):
            rows = self._draw(size, generator, fixed)
            ok = ~self._misses(rows, discrete)
            kept.append(rows[ok])
            have, drawn = have + int(ok.sum()), drawn + size
            if have >= n:
                break
            # A rare combination: draw more per round, up to 64 n rows.
            size = min(64 * n, math.ceil((n - have) * drawn / max(have, 1) * 1.2))
        rows = torch.cat(kept)[:n]
        if len(rows) < n:  # the rest as drawn; `sample` sets their asked values
            rows = torch.cat([rows, self._draw(n - len(rows), generator, fixed)])
        return rows

    def _draw(self, n: int, generator: torch.Generator | None, fixed: int | None) -> torch.Tensor:
        """`n` raw rows generated for conditional vectors set at entry `fixed` (or drawn from the
        training frequencies when None)."""
        z = normal((n, self.config.embedding_dim), generator, self.device)
        cond = self._sampling_conditions(n, generator, fixed)
        logits = self.generator(torch.cat([z, cond], 1))
        gumbel = -torch.log(-torch.log(uniform(tuple(logits.shape), generator, self.device)))
        return self.normalizer.decode(self.normalizer.activate(logits + gumbel * self.onehot_mask))

    def _sampling_conditions(
        self, n: int, generator: torch.Generator | None, fixed: int | None
    ) -> torch.Tensor:
        if fixed is not None:
            index = torch.full((n,), fixed, device=self.device)
        elif self.discrete:
            # A column uniformly, then a category by its frequency: one law over the vector's entries.
            counts = self.category_counts
            law = torch.cat(
                [
                    counts[a : a + s.width] / counts[a : a + s.width].sum()
                    for s, a in zip(self.discrete, self.cond_starts, strict=True)
                ]
            )
            cdf = torch.cumsum(law / len(self.discrete), 0)
            index = torch.searchsorted(cdf, uniform((n,), generator, self.device)).clamp(
                max=self.cond_width - 1
            )
        else:
            return torch.zeros(n, 0, device=self.device)
        return F.one_hot(index, self.cond_width).float()


__all__ = ["CTGAN", "CTGANConfig"]

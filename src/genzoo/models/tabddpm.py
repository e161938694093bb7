"""TabDDPM (Kotelnikov et al. 2023): diffusion for tables, Gaussian on the numbers, multinomial on the
categories, one MLP denoising both.

    numbers       a quantile transform to N(0, 1) scores (fitted in `prepare`), then Gaussian
                  diffusion as in DDPM (Ho et al. 2020, `genzoo.samplers.NoiseSchedule`):
                  eps prediction, mean squared error
    categories    one-hot, multinomial diffusion (Hoogeboom et al. 2021), K categories:
                      q(x_t | x_{t-1})      = Cat((1 - beta_t) x_{t-1} + beta_t / K)
                      q(x_t | x_0)          = Cat(abar_t x_0 + (1 - abar_t) / K)
                      q(x_{t-1} | x_t, x_0) ∝ [alpha_t x_t + (1 - alpha_t) / K] * [abar_{t-1} x_0 + (1 - abar_{t-1}) / K]
                  p(x_{t-1} | x_t) = q(x_{t-1} | x_t, x0_hat), x0_hat the network's softmax; the loss
                  KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t)), all in log space. At t = 1 (abar_0 = 1)
                  the posterior is x_0 itself, so the same KL is the decoder's -log p(x_0 | x_1).
    network       an MLP on [numbers at t, one-hots at t] plus a sinusoidal embedding of t (the
                  paper's MLPDiffusion); it outputs eps for the numbers and x_0 logits per category
    loss          L_simple + sum of the categorical KLs / number of categorical columns (the paper's)

Both processes share one schedule (cosine by default, T = 1000 as in the paper). Sampling runs the
joint reverse chain; fewer `steps` respace both (abar_t / abar_prev replaces alpha_t in either
process). A number's missing value becomes a category of its own ("present", "missing") diffused with
the others, and the number itself its median (score 0), which the indicator turns back into NaN.

Conditions (`where`) are by replacement (RePaint, Lugmayr et al. 2022): before each reverse step the
known columns are set to a fresh draw of q(x_t | x_0) at their values, and to the values at the end,
so any subset of columns can be fixed, without rejection. (The paper conditions on a classification
target through a label embedding; here the target is a column like any other.)

`log_prob_kind` is None: a mixed discrete/continuous row has no density in its units to report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn
from torch.special import ndtr, ndtri

from genzoo.errors import GenzooError
from genzoo.models.base import split_batch
from genzoo.models.copula import fit_quantiles, grid_cdf, grid_quantile
from genzoo.models.registry import register_model
from genzoo.models.tabular import TableModel, TableModelConfig
from genzoo.nn.blocks import mlp
from genzoo.nn.embeddings import TimestepEmbedding
from genzoo.nn.likelihoods import normal, uniform
from genzoo.progress import track
from genzoo.samplers import DENOISING_LEVELS, NoiseSchedule, ddim_coefficients

TINY = 1e-30  # log(0) stand-in for a one-hot's zeros: finite, so 0 * log 0 terms stay 0, not NaN
SAMPLE_CHUNK = 8192  # rows per network call while sampling: bounds the activations' memory


# ---- log-probabilities over one-hot segments (a row holds one segment per categorical column) ---------
def segment_sum(x: torch.Tensor, segment: torch.Tensor, count: int) -> torch.Tensor:
    """(B, D) -> (B, count): the sum of each segment's entries (`segment[d]` is entry d's segment)."""
    return x.new_zeros(len(x), count).index_add(1, segment, x)


def segment_max(x: torch.Tensor, segment: torch.Tensor, count: int) -> torch.Tensor:
    return x.new_full((len(x), count), float("-inf")).scatter_reduce(1, segment.expand_as(x), x, "amax")


def segment_log_softmax(x: torch.Tensor, segment: torch.Tensor, count: int) -> torch.Tensor:
    """Log-softmax within each segment of (B, D) logits."""
    top = segment_max(x.detach(), segment, count).index_select(1, segment)  # a shift that cancels
    return x - top - torch.log(segment_sum(torch.exp(x - top), segment, count)).index_select(1, segment)


@dataclass
class TabDDPMConfig(TableModelConfig):
    num_steps: int = 1000  # T, shared by the Gaussian and the multinomial process
    schedule: Literal["linear", "cosine"] = "cosine"  # beta schedule: Ho et al.'s or Nichol & Dhariwal's
    # The MLP's hidden widths. The paper tunes 2-8 layers of 128-1024 per data set; three of 256 is
    # in that range and trains the default run on adult in minutes on 2 CPU cores.
    d_layers: tuple[int, ...] = (256, 256, 256)
    dim_t: int = 128  # width of the timestep embedding and of the projected input (the paper's)
    dropout: float = 0.0
    quantiles: int = 1001  # points of each number's quantile grid (scikit-learn's transform uses 1000)
    sample_steps: int = 0  # reverse steps when sampling; 0 = all T, fewer respace both processes


@register_model
class TabDDPM(TableModel):
    """TabDDPM: Gaussian diffusion on quantile-normalised numbers, multinomial diffusion on categories."""

    Config = TabDDPMConfig
    name = "tabddpm"
    family = "diffusion"
    anomaly_scores = ("denoising",)
    native_conditions = True
    # AdamW at lr 2e-3 (near the top of the paper's search range, for a short run), batches of 1024
    # rows (between the paper's 256 and 4096), 6,000 steps (the paper: 5,000-30,000): a few minutes
    # on 2 CPU cores on adult.
    train_defaults = {
        "lr": 2e-3,
        "batch_size": 1024,
        "max_steps": 6000,
        "lr_decay_steps": 6000,
        "eval_every": 1000,
        "eval_batches": 4,
        "checkpoint_every": 2000,
    }
    # `evaluate` draws as many rows as the training split has: all T = 1000 reverse steps take minutes
    # on a CPU, 200 respaced steps a fifth of that, at about the same quality on adult.
    compare_settings = {"sample_steps": 200}

    def __init__(self, config: TabDDPMConfig):
        super().__init__(config)
        c = config
        if not c.d_layers or min(c.d_layers) < 1 or c.dim_t < 2:
            raise GenzooError("d_layers must be one or more positive widths and dim_t >= 2")
        if not 0 <= c.dropout < 1:
            raise GenzooError(f"dropout must be in [0, 1), got {c.dropout}")
        if c.quantiles < 2:
            raise GenzooError(f"quantiles must be >= 2, got {c.quantiles}")
        if not 0 <= c.sample_steps <= c.num_steps:
            raise GenzooError(f"sample_steps must be in 0..num_steps ({c.num_steps}), got {c.sample_steps}")
        self.schedule = NoiseSchedule.make(c.schedule, c.num_steps)
        columns = self.schema.columns
        self.numeric = [j for j, col in enumerate(columns) if col.is_numeric]
        # One one-hot segment per categorical column, then one ("present", "missing") per number with gaps.
        self.blocks: list[tuple[int, str, int]] = [
            (j, "category", len(col.categories or [])) for j, col in enumerate(columns) if not col.is_numeric
        ]
        self.blocks += [(j, "missing", 2) for j, col in enumerate(columns) if col.is_numeric and col.missing]
        sizes = torch.tensor([k for _, _, k in self.blocks], dtype=torch.long)
        starts = torch.cat([torch.zeros(1, dtype=torch.long), sizes.cumsum(0)[:-1]])
        segment = torch.repeat_interleave(torch.arange(len(sizes)), sizes)
        # Fixed by the schema: rebuilt here, not saved.
        self.register_buffer("segment", segment, persistent=False)
        self.register_buffer("starts", starts, persistent=False)
        self.register_buffer(
            "local", (torch.arange(len(segment)) - starts[segment]).float(), persistent=False
        )
        self.register_buffer("log_k", sizes[segment].float().log(), persistent=False)
        self.register_buffer(
            "quantile_grid", torch.zeros(len(self.numeric), c.quantiles, dtype=torch.float64)
        )
        self.n_num, self.n_cat = len(self.numeric), len(segment)
        width = self.n_num + self.n_cat
        self.project = nn.Linear(width, c.dim_t)
        self.time = TimestepEmbedding(c.dim_t, c.dim_t)
        self.net = mlp(c.dim_t, c.d_layers, width, act="relu", dropout=c.dropout)

    def prepare(self, train: torch.Tensor) -> None:
        self.quantile_grid.copy_(fit_quantiles(train[:, self.numeric], self.config.quantiles))

    # ---- rows <-> diffusion space -----------------------------------------------------------------
    def encode(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows -> (normal scores (B, numbers), one-hots (B, one-hot width))."""
        rows = rows.to(self.device)
        values = rows[:, self.numeric]
        scores = ndtri(grid_cdf(self.quantile_grid, values)).float()
        codes = [torch.isnan(rows[:, j]) if kind == "missing" else rows[:, j] for j, kind, _ in self.blocks]
        onehot = rows.new_zeros(len(rows), self.n_cat)
        if codes:
            onehot.scatter_(1, self.starts + torch.stack(codes, 1).long(), 1.0)
        return torch.nan_to_num(scores, nan=0.0), onehot  # a missing number: its median's score, 0

    def decode(self, scores: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
        rows = torch.empty(len(scores), len(self.schema.columns), device=scores.device)
        rows[:, self.numeric] = grid_quantile(self.quantile_grid, ndtr(scores.double())).float()
        codes = segment_sum(onehot * self.local, self.segment, len(self.blocks)).round()
        for b, (j, kind, _) in enumerate(self.blocks):
            if kind == "missing":
                rows[:, j] = torch.where(codes[:, b] == 1, float("nan"), rows[:, j])
            else:
                rows[:, j] = codes[:, b]
        return rows

    # ---- the two processes ------------------------------------------------------------------------
    def _log_mix(self, log_x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """log(a x + (1 - a) / K) per entry, for x given as log x and a in (0, 1] (float64)."""
        return torch.logaddexp(log_x + a.log().float(), torch.log1p(-a).float() - self.log_k)

    def log_posterior(
        self, log_x0: torch.Tensor, log_xt: torch.Tensor, abar_t: torch.Tensor, abar_prev: torch.Tensor
    ) -> torch.Tensor:
        """log q(x_prev | x_t, x_0) per one-hot entry, normalised in each segment; x_0 may be a
        distribution (the network's x0_hat). `abar_prev` = 1 is x_0; for a step of the full chain
        abar_t / abar_prev is alpha_t, for a respaced one the product of the alphas in between."""
        log_theta = self._log_mix(log_xt, abar_t / abar_prev) + self._log_mix(log_x0, abar_prev)
        return segment_log_softmax(log_theta, self.segment, len(self.blocks))

    def _draw(self, log_p: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """A one-hot per segment drawn from log-probabilities `log_p` (Gumbel-max)."""
        gumbel = log_p - torch.log(-torch.log(uniform(tuple(log_p.shape), generator, log_p.device)))
        top = segment_max(gumbel, self.segment, len(self.blocks)).index_select(1, self.segment)
        return (gumbel == top).float()

    def _abar(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """abar_t and abar_{t-1} for (B,) indices, as (B, 1) float64 on the model's device."""
        s = self.schedule
        return (
            s.alphas_cumprod.to(self.device)[index][:, None],
            s.alphas_cumprod_prev.to(self.device)[index][:, None],
        )

    def denoise(
        self, scores: torch.Tensor, onehot: torch.Tensor, index: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The network: (predicted noise of the numbers, x_0 logits of the one-hots) at step `index`."""
        out = self.net(self.project(torch.cat([scores, onehot], 1)) + self.time(index))
        return out[:, : self.n_num], out[:, self.n_num :]

    # ---- training ---------------------------------------------------------------------------------
    def loss(self, batch: Any, phase: str = "main") -> dict[str, torch.Tensor]:
        x0, onehot = self.encode(split_batch(batch)[0])
        n = len(x0)
        index = torch.randint(self.config.num_steps, (n,), device=self.device)
        noise = torch.randn_like(x0)
        x_t = self.schedule.q_sample(x0, index, noise)
        abar_t, abar_prev = self._abar(index)
        log_x0 = torch.log(onehot.clamp(min=TINY))
        x_t_cat = self._draw(self._log_mix(log_x0, abar_t), None)
        log_xt = torch.log(x_t_cat.clamp(min=TINY))
        eps, logits = self.denoise(x_t, x_t_cat, index)
        mse = ((eps - noise) ** 2).mean() if self.n_num else x0.new_zeros(())
        kl = x0.new_zeros(())
        if self.blocks:
            true = self.log_posterior(log_x0, log_xt, abar_t, abar_prev)
            log_x0_hat = segment_log_softmax(logits, self.segment, len(self.blocks))
            model = self.log_posterior(log_x0_hat, log_xt, abar_t, abar_prev)
            kl = (true.exp() * (true - model)).sum(1).mean() / len(self.blocks)
        return {"loss": mse + kl, "mse": mse.detach(), "kl": kl.detach()}

    @torch.no_grad()
    def anomaly_score(self, x: torch.Tensor, kind: str) -> torch.Tensor:
        """ "denoising": over `DENOISING_LEVELS`, the squared error of the numbers' predicted noise
        plus the cross-entropy of each category's predicted x_0, with seeded noise."""
        if kind != "denoising":
            return super().anomaly_score(x, kind)
        x0, onehot = self.encode(x.float())
        generator = self.evaluation_generator()
        log_x0 = torch.log(onehot.clamp(min=TINY))
        total = x0.new_zeros(len(x0))
        with self.inference():
            for fraction in DENOISING_LEVELS:
                index = torch.full((len(x0),), int(fraction * self.config.num_steps), device=self.device)
                noise = normal(tuple(x0.shape), generator, self.device)
                x_t_cat = self._draw(self._log_mix(log_x0, self._abar(index)[0]), generator)
                eps, logits = self.denoise(self.schedule.q_sample(x0, index, noise), x_t_cat, index)
                total += ((eps - noise) ** 2).sum(1)
                if self.blocks:
                    log_x0_hat = segment_log_softmax(logits, self.segment, len(self.blocks))
                    total -= (log_x0_hat * onehot).sum(1)
        return total / len(DENOISING_LEVELS)

    # ---- sampling ---------------------------------------------------------------------------------
    def _known(self, n: int, conditions: dict[int, float]) -> tuple[torch.Tensor, ...]:
        """The asked values in diffusion space, and masks of the entries they fix."""
        rows = torch.zeros(n, len(self.schema.columns), device=self.device)
        for j, value in conditions.items():
            rows[:, j] = value
        scores, onehot = self.encode(rows)
        keep_num = torch.tensor([j in conditions for j in self.numeric], device=self.device, dtype=torch.bool)
        # A number given a value is present, so its missing indicator is fixed too.
        keep_cat = torch.tensor(
            [j in conditions for j, _, _ in self.blocks], device=self.device, dtype=torch.bool
        )
        return scores, onehot, keep_num.expand_as(scores), keep_cat[self.segment].expand_as(onehot)

    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        where: dict[str, Any] | str | None = None,
        steps: int | None = None,
    ) -> torch.Tensor:
        """`n` rows (see `TableModel.sample`); `steps` reverse steps (default `sample_steps`, else all T),
        fewer respacing both processes. Declared here so that `genzoo sample --steps` is accepted."""
        return super().sample(n, generator=generator, where=where, steps=steps)

    @torch.no_grad()
    def sample_rows(
        self,
        n: int,
        generator: torch.Generator | None,
        conditions: dict[int, float],
        steps: int | None = None,
    ) -> torch.Tensor:
        """`n` rows by the reverse chain, with `steps` reverse steps (default `sample_steps`, else T)."""
        if n < 0:
            raise GenzooError(f"number of samples must be >= 0, got {n}")
        indices = self.schedule.timesteps(steps or self.config.sample_steps or None)
        device = self.device
        known_num, known_cat, keep_num, keep_cat = self._known(n, conditions)
        bound = float(ndtri(torch.tensor(1 - 0.5 / (self.config.quantiles - 1))))  # grid_cdf's largest score
        x = normal((n, self.n_num), generator, device)
        onehot = self._draw(-self.log_k.expand(n, -1), generator)  # x_T: uniform categories
        for i in track(reversed(range(len(indices))), total=len(indices)):
            index, prev = indices[i], (indices[i - 1] if i > 0 else None)
            abar_t = self.schedule.alphas_cumprod[index].to(device)
            abar_prev = (
                self.schedule.alphas_cumprod[prev].to(device) if prev is not None else abar_t.new_ones(())
            )
            t = torch.full((n,), index, device=device, dtype=torch.long)
            if conditions:  # RePaint: the known columns as a draw of q(x_t | x_0) at their values
                x_known = self.schedule.q_sample(known_num, t, normal(tuple(x.shape), generator, device))
                x = torch.where(keep_num, x_known, x)
                drawn = self._draw(self._log_mix(torch.log(known_cat.clamp(min=TINY)), abar_t), generator)
                onehot = torch.where(keep_cat, drawn, onehot)
            parts = [
                self.denoise(xs, hs, t[: len(xs)])
                for xs, hs in zip(x.split(SAMPLE_CHUNK), onehot.split(SAMPLE_CHUNK), strict=True)
            ]
            eps, logits = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
            # x0_hat kept within the scores' range, as DDPM clips images to [-1, 1]: at t = T it is
            # eps_hat's error times 1 / sqrt(abar_T) ~ 2e4 (cosine schedule), which a respaced step,
            # weighting x0_hat by sqrt(abar_prev) >> sqrt(abar_T), would carry into x.
            x0 = self.schedule.predict_x0(x, t, eps).clamp(-bound, bound)
            eps = (x - abar_t.sqrt().float() * x0) / (1 - abar_t).sqrt().float()
            # DDIM with eta = 1 is the ancestral DDPM step (variance betatilde), respaced or not.
            a, b, sigma = ddim_coefficients(self.schedule, index, prev, eta=1.0)
            x = a * x0 + b * eps
            if prev is not None:
                x = x + sigma * normal(tuple(x.shape), generator, device)
            log_x0_hat = segment_log_softmax(logits, self.segment, len(self.blocks))
            log_p = self.log_posterior(log_x0_hat, torch.log(onehot.clamp(min=TINY)), abar_t, abar_prev)
            onehot = self._draw(log_p, generator)
        x = torch.where(keep_num, known_num, x)
        onehot = torch.where(keep_cat, known_cat, onehot)
        return self.decode(x, onehot)

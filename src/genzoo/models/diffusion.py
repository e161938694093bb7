"""Denoising diffusion probabilistic models (Ho et al. 2020), with the improvements people use:
the cosine schedule (Nichol & Dhariwal 2021), DDIM sampling (Song et al. 2021), classifier-free
guidance (Ho & Salimans 2021) and RePaint-style inpainting (Lugmayr et al. 2022).

    forward   q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I)          (genzoo.samplers.NoiseSchedule)
    network   eps_theta(x_t, t, y): predicts the noise in x_t             (genzoo.nn.unet.UNet)
    training  E_{t, x_0, eps} |eps - eps_theta(sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, t)|^2

The reverse process p(x_{t-1} | x_t) = N(mu_theta(x_t, t), sigma_t^2 I) uses the posterior mean
at x0_hat = (x_t - sqrt(1 - abar_t) eps_theta) / sqrt(abar_t) and a fixed variance (betatilde_t
"small" or beta_t "large"). `log_prob` is the variational bound (kind "bound"), in nats per example:

    -log p(x_0) <= KL(q(x_T|x_0) || N(0, I)) + sum_{t>=2} KL(q(x_{t-1}|x_t,x_0) || p(x_{t-1}|x_t))
                   - log p(x_0 | x_1)

with a discretized Gaussian decoder p(x_0 | x_1) over the data's levels, so the number is a
bound on the probability *mass* of the discrete data and compares with any other model's nll.

With labelled data the network gets a class embedding; labels are dropped (replaced by a "no
label" token) with probability `label_dropout` in training, so one network gives both
eps(x, t, y) and eps(x, t). Sampling with `label=k, guidance=w` uses
(1 + w) eps(x, t, k) - w eps(x, t): w = 0 is the plain conditional model, no label is unconditional.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from genzoo.errors import GenzooError
from genzoo.models.base import GenerativeModel, ModelConfig, Preset, class_indices, split_batch
from genzoo.models.registry import register_model
from genzoo.nn.likelihoods import Rescale, level_values, normal, to_index
from genzoo.nn.unet import UNet
from genzoo.progress import track
from genzoo.samplers import DENOISING_LEVELS, NoiseSchedule, reconstruction_guided, sampler_spec

_LOG_2PI = math.log(2 * math.pi)


@dataclass
class DDPMConfig(ModelConfig):
    num_steps: int = 1000  # T
    schedule: str = "cosine"  # "linear" (Ho et al.) or "cosine" (Nichol & Dhariwal)
    channels: int = 32  # UNet width at full resolution
    channel_mults: tuple[int, ...] = (1, 2)  # width multiplier per resolution level
    num_res_blocks: int = 1
    attention_levels: tuple[int, ...] = (1,)  # levels (0 = full resolution) with self-attention
    dropout: float = 0.1
    conditional: bool = True  # class embedding for labelled data (enables --label and guidance)
    label_dropout: float = 0.1  # P(label -> "no label") in training, for classifier-free guidance
    variance: str = "small"  # reverse-process variance: "small" (betatilde_t) or "large" (beta_t)
    clip_denoised: bool = True  # clip x0_hat to the data range when sampling and in the bound
    sampler: str = "ddpm"  # default sampler, a name in genzoo.samplers.SAMPLERS: ddpm, ddim, dpm-solver++
    sample_steps: int = 0  # default sampler steps; 0 = its own: ddpm all T, ddim 50, dpm-solver++ 20


def discretized_gaussian_log_prob(
    x: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor, levels: int
) -> torch.Tensor:
    """log P(x) per element, for x on the grid of `levels` values in [-1, 1]: the N(mean, var) mass
    of x's bin [x - h, x + h], h = 1 / (levels - 1), with the edge bins extended to -inf / +inf."""
    half_bin = 1.0 / (levels - 1)
    inv_std = torch.exp(-0.5 * log_var)
    upper = (x - mean + half_bin) * inv_std
    lower = (x - mean - half_bin) * inv_std
    log_cdf_upper = torch.special.log_ndtr(upper)
    log_sf_lower = torch.special.log_ndtr(-lower)  # log(1 - Phi(lower))
    # log(Phi(u) - Phi(l)), computed on the side of 0 where the difference does not cancel.
    left = log_cdf_upper + torch.log1p(
        -torch.exp(torch.special.log_ndtr(lower) - log_cdf_upper).clamp(max=1 - 1e-12)
    )
    right = log_sf_lower + torch.log1p(
        -torch.exp(torch.special.log_ndtr(-upper) - log_sf_lower).clamp(max=1 - 1e-12)
    )
    middle = torch.where(lower > 0, right, left)
    return torch.where(x < -1 + half_bin, log_cdf_upper, torch.where(x > 1 - half_bin, log_sf_lower, middle))


def gaussian_kl(
    mean1: torch.Tensor, log_var1: torch.Tensor, mean2: torch.Tensor, log_var2: torch.Tensor
) -> torch.Tensor:
    """KL(N(mean1, var1) || N(mean2, var2)) per element, in nats."""
    return 0.5 * (
        log_var2 - log_var1 + torch.exp(log_var1 - log_var2) + (mean1 - mean2) ** 2 * torch.exp(-log_var2) - 1
    )


@register_model
class DDPM(GenerativeModel):
    """DDPM (epsilon prediction) with DDIM sampling, classifier-free guidance and inpainting."""

    supports_labels = True
    can_inpaint = True
    anomaly_scores = ("denoising",)
    has_anomaly_map = True
    # 1000 ancestral steps would take ~16 min for FID's 1000 digits on a CPU.
    compare_settings = {"sampler": "ddim", "sample_steps": 50}

    Config = DDPMConfig
    name = "ddpm"
    family = "diffusion"
    modalities = ("image",)
    log_prob_kind = "bound"
    train_defaults = {
        "lr": 1e-3,
        "batch_size": 64,
        "max_steps": 3000,
        "lr_decay_steps": 3000,
        "warmup_steps": 200,
        "grad_clip": 1.0,
        "ema_decay": 0.999,
        "eval_every": 1000,
        "eval_batches": 4,
    }
    # A narrower UNet without attention: 8000 steps take 104 minutes on one core at 28x28.
    presets = {
        "mnist10k": Preset(
            "mnist",
            {"channels": 16, "channel_mults": [1, 2, 2], "attention_levels": [], "max_steps": 8000,
             "lr_decay_steps": 8000, "ema_decay": 0.998},
            "unconditional samples hit every class at 7.5% .. 14.2% of 1000, FID 42.9 (README, Results: MNIST-10k)",
        )
    }  # fmt: skip

    def __init__(self, config: DDPMConfig):
        super().__init__(config)
        c = config
        self.shape = tuple(c.data_shape)
        if len(self.shape) != 3:
            raise GenzooError(f"ddpm models images (C, H, W); got data of shape {self.shape}")
        if c.variance not in ("small", "large"):
            raise GenzooError(f"variance must be 'small' or 'large', got '{c.variance}'")
        sampler_spec(c.sampler)  # an unknown default sampler fails here, not at the first sample
        if not 0 <= c.label_dropout <= 1:
            raise GenzooError(f"label_dropout must be in [0, 1], got {c.label_dropout}")
        self.schedule = NoiseSchedule.make(c.schedule, c.num_steps)
        self.rescale = Rescale(c.data_low, c.data_high, c.data_levels)
        self.conditional = c.conditional and c.num_classes > 0
        self.net = UNet(
            self.shape[0],
            self.shape[0],
            channels=c.channels,
            channel_mults=c.channel_mults,
            num_res_blocks=c.num_res_blocks,
            attention_levels=c.attention_levels,
            num_classes=c.num_classes if self.conditional else 0,
            dropout=c.dropout,
        )

    # ---- the network ------------------------------------------------------------------
    def _null(self, n: int) -> torch.Tensor | None:
        if not self.conditional:
            return None
        return torch.full((n,), self.config.num_classes, device=self.device, dtype=torch.long)

    def eps(self, x_t: torch.Tensor, index: torch.Tensor, label: torch.Tensor | None = None) -> torch.Tensor:
        """eps_theta(x_t, t, y); `label=None` (or entries equal to num_classes) is unconditional."""
        y = label if label is not None else self._null(len(x_t))
        return self.net(x_t, index, y)

    def guided_eps(
        self, x_t: torch.Tensor, index: torch.Tensor, label: torch.Tensor | None, guidance: float
    ) -> torch.Tensor:
        """Classifier-free guidance: (1 + w) eps(x, t, y) - w eps(x, t); w = 0 skips the second pass."""
        if label is None or guidance == 0:
            return self.eps(x_t, index, label)
        both = self.net(
            torch.cat([x_t, x_t]), torch.cat([index, index]), torch.cat([label, self._null(len(x_t))])
        )
        cond, uncond = both.chunk(2)
        return (1 + guidance) * cond - guidance * uncond

    def _internal(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[1:]) != self.shape:
            raise GenzooError(
                f"DDPM expects data of shape (N, {', '.join(map(str, self.shape))}), got {tuple(x.shape)}"
            )
        x = self.rescale.to_internal(x.to(self.device, torch.float32))
        if self.config.data_levels:  # snap to the grid: the bound is a probability mass on it
            x = level_values(self.config.data_levels, x.device)[to_index(x, self.config.data_levels)]
        return x

    # ---- training ---------------------------------------------------------------------
    def loss(self, batch: Any, phase: str = "main") -> dict[str, torch.Tensor]:
        """Ho et al.'s simple loss: mean squared error of the predicted noise at a uniform random t."""
        x, y = split_batch(batch)
        x0 = self._internal(x)
        n = len(x0)
        index = torch.randint(self.config.num_steps, (n,), device=self.device)
        noise = torch.randn_like(x0)
        x_t = self.schedule.q_sample(x0, index, noise)
        label = None
        if self.conditional and y is not None:
            label = y.to(self.device).long()
            drop = (torch.rand(n, device=self.device) < self.config.label_dropout) | (label < 0)
            label = torch.where(drop, self.config.num_classes, label)
        mse = ((self.eps(x_t, index, label) - noise) ** 2).flatten(1).mean(1).mean()
        return {"loss": mse, "mse": mse}

    # ---- anomaly scores -----------------------------------------------------------------
    @torch.no_grad()
    def anomaly_map(self, x: torch.Tensor) -> torch.Tensor:
        """The squared error of the predicted noise per pixel, averaged over `DENOISING_LEVELS`
        (unconditional). Each level's noise is one seeded draw shared by every example, so a score
        does not depend on the batch it was computed in."""
        x0 = self._internal(x)
        generator = self.evaluation_generator()
        error = torch.zeros_like(x0)
        with self.inference():
            for fraction in DENOISING_LEVELS:
                noise = normal(x0.shape[1:], generator, self.device).expand_as(x0)
                index = torch.full((len(x0),), int(fraction * self.config.num_steps), device=self.device)
                x_t = self.schedule.q_sample(x0, index, noise)
                error += (self.eps(x_t, index) - noise) ** 2
        return error / len(DENOISING_LEVELS)

    def anomaly_score(self, x: torch.Tensor, kind: str) -> torch.Tensor:
        if kind == "denoising":
            return self.anomaly_map(x).flatten(1).sum(1)
        return super().anomaly_score(x, kind)

    # ---- sampling -----------------------------------------------------------------------
    def _labels(self, n: int, label: Any) -> torch.Tensor | None:
        if label is None:
            return None
        if not self.conditional:
            raise GenzooError("this DDPM is unconditional (no labels, or conditional=false); drop label")
        return class_indices(label, n, self.config.num_classes, self.device)

    def _run_sampler(
        self,
        x_T: torch.Tensor,
        generator: torch.Generator | None,
        sampler: str | None,
        steps: int | None,
        guidance: float,
        label: torch.Tensor | None,
        options: dict[str, Any],
        defaults: dict[str, Any] | None = None,
        reconstruction: float = 0.0,
    ) -> torch.Tensor:
        """Look the sampler up in the table and call it. `options` are the sampler options asked for
        (None = not asked: each must be one the sampler takes); `defaults` the model's own, passed
        where the sampler takes them."""
        c = self.config
        spec = sampler_spec(sampler or c.sampler)
        given = {k: v for k, v in options.items() if v is not None}
        chosen = spec.options_for(given, {"variance": c.variance, **(defaults or {})})
        if guidance < 0:
            raise GenzooError(f"guidance must be >= 0, got {guidance}")
        steps = steps or c.sample_steps or spec.steps_for(c.num_steps)
        known = given.get("known")

        def eps_fn(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
            return self.guided_eps(x, index, label, guidance)

        if reconstruction < 0:
            raise GenzooError(f"reconstruction must be >= 0, got {reconstruction}")
        if reconstruction > 0 and known is not None:
            eps_fn = reconstruction_guided(eps_fn, self.schedule, known, reconstruction)

        return spec.fn(
            eps_fn, self.schedule, x_T, generator=generator, steps=steps, clip=c.clip_denoised, **chosen
        )

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        sampler: str | None = None,
        steps: int | None = None,
        eta: float | None = None,
        guidance: float = 0.0,
        label: int | torch.Tensor | None = None,
        batch_size: int = 1000,
    ) -> torch.Tensor:
        """`n` samples in dataset units. `sampler` names an entry of `genzoo.samplers.SAMPLERS`:
        "ddpm" (ancestral, all T steps unless `steps`), "ddim" (`steps`, default 50; `eta`, default
        0 = deterministic) or "dpm-solver++" (deterministic, `steps` default 20); `label` (int or n
        ints) with `guidance` w >= 0 samples classes of a conditional model."""
        if n < 0:
            raise GenzooError(f"number of samples must be >= 0, got {n}")
        y = self._labels(n, label)
        with self.inference():
            x_T = normal((n, *self.shape), generator, self.device)
            parts = []
            for start in range(0, n, batch_size):
                rows = slice(start, start + batch_size)
                parts.append(
                    self._run_sampler(
                        x_T[rows],
                        generator,
                        sampler,
                        steps,
                        guidance,
                        None if y is None else y[rows],
                        {"eta": eta},
                    )
                )
            x0 = torch.cat(parts) if parts else x_T
            return self.rescale.to_data(x0)

    @torch.no_grad()
    def inpaint(
        self,
        x: torch.Tensor,
        mask: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        sampler: str | None = None,
        steps: int | None = None,
        eta: float | None = None,
        resample: int | None = None,
        reconstruction: float = 20.0,
        guidance: float = 0.0,
        label: int | torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Fill the pixels where `mask` is True (1) and keep the others of `x` (dataset units).

        `mask` broadcasts against `x` (e.g. (H, W) or (N, 1, H, W)). At every reverse step the
        known pixels are replaced by a draw of q(x_{t-1} | x_0) ("replacement"); `resample > 1`
        re-noises and redoes each step that many times so the fill harmonises (RePaint);
        `reconstruction > 0` adds reconstruction guidance of that weight (see `samplers`). Only
        samplers whose table entry takes `known` inpaint (ddpm, ddim; `eta` defaults to 1 here).
        The defaults (DDIM eta 1, reconstruction 20, no resampling) fill the bottom half of
        digits so that a classifier names the true digit 86% of the time, against 71% for
        RePaint with 10 resamplings (benchmarks/diffusion_digits.py).
        """
        x = x.to(self.device, torch.float32)
        single = tuple(x.shape) == self.shape
        if single:
            x = x.unsqueeze(0)
        x0 = self._internal(x)
        fill = torch.as_tensor(mask, device=self.device).bool()
        try:
            fill = fill.expand_as(x0)
        except RuntimeError as err:
            raise GenzooError(
                f"mask of shape {tuple(fill.shape)} does not match images of shape {tuple(x.shape)}"
            ) from err
        y = self._labels(len(x0), label)
        with self.inference():
            x_T = normal(tuple(x0.shape), generator, self.device)
            out = self._run_sampler(
                x_T,
                generator,
                sampler,
                steps,
                guidance,
                y,
                {"known": (x0, ~fill), "eta": eta, "resample": resample},
                defaults={"eta": 1.0},
                reconstruction=reconstruction,
            )
        out = torch.where(fill, self.rescale.to_data(out), x)
        return out[0] if single else out

    # ---- likelihood -----------------------------------------------------------------------
    def _p_mean_log_var(self, x_t: torch.Tensor, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of p(x_{t-1} | x_t) (unconditional)."""
        eps = self.eps(x_t, index)
        x0 = self.schedule.predict_x0(x_t, index, eps)
        if self.config.clip_denoised:
            x0 = x0.clamp(-1, 1)
        mean, _, post_log_var = self.schedule.q_posterior(x0, x_t, index)
        if self.config.variance == "large":
            betas = self.schedule.betas.clone()
            betas[0] = self.schedule.posterior_variance[1] if len(betas) > 1 else betas[0]
            log_var = self.schedule._at(betas.log(), index, x_t).expand_as(x_t)
        else:
            log_var = post_log_var
        return mean, log_var

    @torch.no_grad()
    def vlb_terms(
        self, x: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """The terms of the bound per example (nats): "prior" L_T, "diffusion" (B, T-1) the KLs
        for t = 2..T, and "decoder" -log p(x_0 | x_1). Their sum is -log_prob."""
        x0 = self._internal(x)
        n, T = len(x0), self.config.num_steps
        generator = generator or self.evaluation_generator()
        last = torch.full((n,), T - 1, device=self.device, dtype=torch.long)
        q_mean, q_var = self.schedule.q_mean_var(x0, last)
        prior = (
            gaussian_kl(q_mean, q_var.log(), torch.zeros_like(q_mean), torch.zeros_like(q_mean))
            .flatten(1)
            .sum(1)
        )
        kls = torch.zeros(n, max(T - 1, 0), device=self.device)
        decoder = torch.zeros(n, device=self.device)
        for t in track(range(T)):
            index = torch.full((n,), t, device=self.device, dtype=torch.long)
            x_t = self.schedule.q_sample(x0, index, normal(tuple(x0.shape), generator, self.device))
            mean, log_var = self._p_mean_log_var(x_t, index)
            if t == 0:
                decoder = -self._decoder_log_prob(x0, mean, log_var)
            else:
                q_mean, _, q_log_var = self.schedule.q_posterior(x0, x_t, index)
                kls[:, t - 1] = gaussian_kl(q_mean, q_log_var, mean, log_var).flatten(1).sum(1)
        return {"prior": prior, "diffusion": kls, "decoder": decoder}

    def _decoder_log_prob(self, x0: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
        levels = self.config.data_levels
        if levels:
            return discretized_gaussian_log_prob(x0, mean, log_var, levels).flatten(1).sum(1)
        ll = -0.5 * ((x0 - mean) ** 2 * torch.exp(-log_var) + log_var + _LOG_2PI)
        return ll.flatten(1).sum(1) + self.rescale.log_det(x0[0].numel())

    @torch.no_grad()
    def log_prob(
        self, x: torch.Tensor, *, generator: torch.Generator | None = None, batch_size: int = 512
    ) -> torch.Tensor:
        """The variational lower bound on log p(x) per example, in nats (all T terms, one draw of
        x_t each; seeded, so repeated evaluations agree)."""
        with self.inference():
            out = []
            for start in range(0, len(x), batch_size):
                terms = self.vlb_terms(x[start : start + batch_size], generator=generator)
                out.append(-(terms["prior"] + terms["diffusion"].sum(1) + terms["decoder"]))
            return torch.cat(out)


__all__ = ["DDPM", "DDPMConfig", "discretized_gaussian_log_prob", "gaussian_kl"]

"""Diffusion-TS (Yuan & Qiao, ICLR 2024): a diffusion model of whole time-series windows, whose
Transformer denoiser predicts the clean window x_0 directly.

    forward   q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I), x_0 a window (L, F) mapped to [-1, 1]
    network   x0_theta(x_t, t): a Transformer over the L steps (`SeriesDenoiser`)
    training  E_{t, x_0, eps} w_t [ |x0_theta - x_0|^2 + fourier_weight * |FFT(x0_theta - x_0)|_1 ]

The Fourier term is the paper's: an L1 on the real and imaginary parts of the error's spectrum
(orthonormal DFT over time), which pulls every frequency's error to zero, the small high ones
included. It is off by default (`fourier_weight` 0): an L1 is minimised by a median, not by the
posterior mean E[x_0 | x_t] that every sampler's update assumes, and the bias shows in the samples'
distribution. On sines (issue 26) the L1 term put too few windows at the highest frequencies: the
discriminative score was 0.017 with it and 0.004 without it and with the `covariance` preconditioning
below (a fresh draw of the true sines: 0.006).
What the term was there for, smooth samples, comes from the `covariance` preconditioning below.
w_t is min-SNR-gamma (Hang et al. 2023), w_t ∝ min(SNR_t, snr_gamma), scaled to mean 1 over t: at
high noise the x_0 error is large and mostly irreducible (the posterior is wide), and unweighted it
swamps the gradient of the steps that shape the details.

x0_theta is preconditioned as in Karras et al. (2022): x0_theta = c_skip x_t + c_out F(c_in x_t, t),
with c_skip x_t the best linear guess of x_0 for data of std `sigma_data` and c_out the std of what
that guess misses, so the network F only adds the correction, at unit scale at every noise level,
instead of rebuilding a nearly clean x_t through its layers. With `covariance`, the same is done
per principal direction of each feature's windows over time (the eigenvectors of their second
moment, fitted on the training split): c_skip is then the Wiener filter, which drops x_t's noise
along the directions the data has no power in. Smooth series have none in their rough directions,
so the network no longer has to cancel that noise exactly at low noise levels, which with one
scalar skip it does imperfectly: on sines, trained without the Fourier term, the mean |second
difference| of the samples is 0.013 with the scalar skip and 0.0013 with this one (the data's 0.0011).

F: a convolution embeds each step's features with its neighbours, a learned position embedding says
where in the window it is, and `n_layers` Transformer blocks mix the steps, each steered by the
timestep through adaptive LayerNorm (`genzoo.nn.sequence.ConditionedBlock`). Its output is, as in
the paper's decoder, a sum of interpretable parts: a polynomial trend of degree `trend_degree` and
`harmonics` Fourier terms over the window, whose coefficients per feature are read from all steps,
plus a residual per step.

Sampling runs any sampler of `genzoo.samplers.SAMPLERS` on the noise prediction that the x_0
prediction implies, eps = (x_t - sqrt(abar_t) x0_theta) / sqrt(1 - abar_t), which is exactly what
the samplers' `NoiseSchedule.predict_x0` inverts; they clip x0_theta to the data's range.

`log_prob_kind` is None: the variational bound needs a decoder over the data's units, not written.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from genzoo.errors import GenzooError
from genzoo.models.base import split_batch
from genzoo.models.registry import register_model
from genzoo.models.series import SeriesModel, SeriesModelConfig
from genzoo.nn.embeddings import TimestepEmbedding
from genzoo.nn.likelihoods import Rescale, normal
from genzoo.nn.sequence import ConditionedBlock
from genzoo.progress import track
from genzoo.samplers import DENOISING_LEVELS, NoiseSchedule, sampler_spec

SAMPLE_CHUNK = 1000  # windows per network call while sampling: bounds the activations' memory
POWER_FLOOR = 1e-6  # least power per direction (internal units): keeps c_out > 0 along every one


@dataclass
class DiffusionTSConfig(SeriesModelConfig):
    # A series window (L, F) in min-max scaled units; `for_data` fills these from the data.
    data_shape: tuple[int, ...] = (24, 5)
    data_levels: int | None = None
    data_low: float = 0.0
    data_high: float = 1.0
    num_steps: int = 500  # T (the paper's for windows of 24)
    schedule: Literal["linear", "cosine"] = "cosine"
    d_model: int = 64  # Transformer width
    n_heads: int = 4
    n_layers: int = 3
    dropout: float = 0.0
    trend_degree: int = 3  # polynomial degree of the trend part; -1 = none
    harmonics: int = 2  # Fourier terms (cos and sin of k cycles per window, k = 1..harmonics); 0 = none
    # x0_theta = c_skip x_t + c_out F(c_in x_t, t) (Karras et al. 2022) for data of std `sigma_data`:
    # the network adds a correction to the best linear guess instead of rebuilding x_t through its layers.
    preconditioning: bool = True
    sigma_data: float = 0.5
    # Precondition per principal direction of each feature's windows over time, their second moment
    # fitted on the training split (`prepare`), instead of one sigma_data for every direction.
    covariance: bool = True
    # Weight of an L1 loss on the error's spectrum (the paper's); 0, the default, keeps the x_0 loss an
    # L2, whose minimiser is the posterior mean the samplers assume (see the module's docstring).
    fourier_weight: float = 0.0
    snr_gamma: float = 5.0  # w_t ∝ min(SNR_t, snr_gamma), see the module's docstring; 0 = uniform
    clip_denoised: bool = True  # clip x0_theta to the data's range while sampling
    sampler: str = "dpm-solver++"  # default sampler, a name in genzoo.samplers.SAMPLERS
    sample_steps: int = 50  # default sampler steps; 0 = the sampler's own default
    saved_before: ClassVar[dict[str, Any]] = {"covariance": False}


def basis(length: int, trend_degree: int, harmonics: int) -> torch.Tensor:
    """(L, K) columns: 1, u, ..., u^degree for u evenly spaced in [-1, 1] (the trend), then
    cos(2 pi k s / L), sin(2 pi k s / L) for k = 1..harmonics (the seasons)."""
    steps = torch.arange(length, dtype=torch.float64)
    u = 2 * steps / max(length - 1, 1) - 1
    columns = [u**p for p in range(trend_degree + 1)]
    for k in range(1, harmonics + 1):
        angle = 2 * math.pi * k * steps / length
        columns += [angle.cos(), angle.sin()]
    if not columns:
        return torch.zeros(length, 0)
    return torch.stack(columns, 1).float()


def preconditioning_scales(
    abar: torch.Tensor, power: torch.Tensor, second_moment: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Karras et al.'s c_skip, c_out and c_in at abar_t for data of `power` along each direction
    (one number: every direction alike) and `second_moment` per value: c_skip x_t is the best linear
    guess of x_0, c_out the std of what it misses, c_in scales x_t to unit variance."""
    noise = 1 - abar
    total = abar * power + noise  # the power of x_t along each direction
    return abar.sqrt() * power / total, (noise * power / total).sqrt(), (abar * second_moment + noise).rsqrt()


class SeriesDenoiser(nn.Module):
    """x0_theta(x_t, t): (B, L, F) windows and (B,) step indices -> (B, L, F) predicted clean windows."""

    def __init__(self, c: DiffusionTSConfig):
        super().__init__()
        length, features = c.data_shape
        d = c.d_model
        self.embed = nn.Conv1d(features, d, kernel_size=3, padding=1)
        self.position = nn.Parameter(0.02 * torch.randn(length, d))
        self.time = TimestepEmbedding(d, d)
        self.blocks = nn.ModuleList(ConditionedBlock(d, c.n_heads, d, c.dropout) for _ in range(c.n_layers))
        self.ln_out = nn.LayerNorm(d, elementwise_affine=False)
        self.out_modulation = nn.Sequential(nn.SiLU(), nn.Linear(d, 2 * d))
        nn.init.zeros_(self.out_modulation[1].weight)
        nn.init.zeros_(self.out_modulation[1].bias)
        self.residual = nn.Linear(d, features)
        # Fixed by the config: rebuilt here, not saved.
        self.register_buffer("basis", basis(length, c.trend_degree, c.harmonics), persistent=False)
        k = self.basis.shape[1]
        # Each basis function's coefficient per feature: a learned read-out over the steps, then features.
        self.pool = nn.Linear(length, k) if k else None
        self.coefficients = nn.Linear(d, features) if k else None

    def forward(self, x_t: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        cond = self.time(index)
        h = self.embed(x_t.transpose(1, 2)).transpose(1, 2) + self.position
        for block in self.blocks:
            h = block(h, cond)
        shift, scale = self.out_modulation(cond)[:, None].chunk(2, dim=-1)
        h = self.ln_out(h) * (1 + scale) + shift
        out = self.residual(h)
        if self.pool is not None:
            coefficients = self.coefficients(self.pool(h.transpose(1, 2)).transpose(1, 2))  # (B, K, F)
            out = out + self.basis @ coefficients
        return out


@register_model
class DiffusionTS(SeriesModel):
    """Diffusion-TS: x_0-predicting Transformer diffusion over whole series windows."""

    Config = DiffusionTSConfig
    name = "diffusion-ts"
    family = "diffusion"
    modalities = ("series",)
    log_prob_kind = None
    anomaly_scores = ("denoising",)
    # Measured on sines (TimeGAN's 10,000 windows of 24 x 5) on one CPU thread: see the report of
    # issue 26; batches of 128 as the paper, a short cosine decay and an EMA of the weights.
    train_defaults = {
        "lr": 1e-3,
        "batch_size": 128,
        "max_steps": 6000,
        "lr_decay_steps": 6000,
        "warmup_steps": 200,
        "grad_clip": 1.0,
        "ema_decay": 0.999,
        "eval_every": 1000,
        "eval_batches": 4,
    }

    def __init__(self, config: DiffusionTSConfig):
        super().__init__(config)
        c = config
        self.shape = tuple(c.data_shape)
        if len(self.shape) != 2 or min(self.shape) < 1:
            raise GenzooError(f"diffusion-ts models series windows (L, F); got data of shape {self.shape}")
        if c.d_model < 2 or c.n_heads < 1 or c.d_model % c.n_heads:
            raise GenzooError(f"d_model ({c.d_model}) must be a positive multiple of n_heads ({c.n_heads})")
        if c.n_layers < 1:
            raise GenzooError(f"n_layers must be >= 1, got {c.n_layers}")
        if not 0 <= c.dropout < 1:
            raise GenzooError(f"dropout must be in [0, 1), got {c.dropout}")
        if c.trend_degree < -1 or c.harmonics < 0:
            raise GenzooError("trend_degree must be >= -1 (-1 = no trend) and harmonics >= 0")
        if c.sigma_data <= 0:
            raise GenzooError(f"sigma_data must be > 0, got {c.sigma_data}")
        if c.fourier_weight < 0:
            raise GenzooError(f"fourier_weight must be >= 0, got {c.fourier_weight}")
        if c.snr_gamma < 0:
            raise GenzooError(f"snr_gamma must be >= 0 (0 = uniform weights), got {c.snr_gamma}")
        sampler_spec(c.sampler)  # an unknown default sampler fails here, not at the first sample
        if not 0 <= c.sample_steps <= c.num_steps:
            raise GenzooError(f"sample_steps must be in 0..num_steps ({c.num_steps}), got {c.sample_steps}")
        self.schedule = NoiseSchedule.make(c.schedule, c.num_steps)
        self.rescale = Rescale(c.data_low, c.data_high, None)
        self.net = SeriesDenoiser(c)
        length, features = self.shape
        # Each feature's principal directions over time and their power, fitted by `prepare`; until
        # then the identity and sigma_data^2, which is the scalar preconditioning.
        if c.covariance:
            self.register_buffer("components", torch.eye(length).repeat(features, 1, 1))  # (F, L, L)
            self.register_buffer("power", torch.full((length, features), c.sigma_data**2))
        snr = self.schedule.alphas_cumprod / (1 - self.schedule.alphas_cumprod)
        weight = snr.clamp(max=c.snr_gamma) if c.snr_gamma > 0 else torch.ones_like(snr)
        weight = weight / weight.mean()  # mean 1 over t: the loss's scale does not depend on gamma
        self.register_buffer("loss_weight", weight.float(), persistent=False)

    # ---- the network ------------------------------------------------------------------------
    def _internal(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[1:]) != self.shape or x.dim() != 3:
            raise GenzooError(
                f"diffusion-ts expects windows of shape (N, {', '.join(map(str, self.shape))}), "
                f"got {tuple(x.shape)}"
            )
        return self.rescale.to_internal(x.to(self.device, torch.float32))

    def prepare(self, train: torch.Tensor) -> None:
        """Fit the second moment E[x x^T] of each feature's windows over time and keep its eigenvectors
        and eigenvalues (see `_covariance_denoise`)."""
        if not self.config.covariance:
            return
        total = torch.zeros(self.shape[1], self.shape[0], self.shape[0], dtype=torch.float64)
        for chunk in train.split(SAMPLE_CHUNK):
            x = self._internal(chunk).double().cpu()
            total += torch.einsum("nif,njf->fij", x, x)
        power, components = torch.linalg.eigh(total / max(len(train), 1))
        self.power.copy_(power.T.clamp(min=POWER_FLOOR))
        self.components.copy_(components)

    def denoise(self, x_t: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """x0_theta(x_t, t) in internal units."""
        if not self.config.preconditioning:
            return self.net(x_t, index)
        abar = self.schedule._at(self.schedule.alphas_cumprod, index, x_t)
        if self.config.covariance:
            return self._covariance_denoise(x_t, index, abar)
        var = torch.tensor(self.config.sigma_data**2, device=x_t.device)
        c_skip, c_out, c_in = preconditioning_scales(abar, var, var)
        return c_skip * x_t + c_out * self.net(c_in * x_t, index)

    def _covariance_denoise(self, x_t: torch.Tensor, index: torch.Tensor, abar: torch.Tensor) -> torch.Tensor:
        """The same preconditioning per principal direction of the data: along a direction of power
        lambda_k, the best linear guess of x_0 is c_skip_k x_t, and c_out_k scales what it misses
        (together, the Wiener filter for data of that second moment). Where the data has no power
        (the rough directions of smooth series) both vanish, so x_t's noise there never enters
        x0_theta and the network need not cancel it."""
        second_moment = self.power.sum(0).mean() / self.shape[0]  # per value
        c_skip, c_out, c_in = preconditioning_scales(abar, self.power, second_moment)
        out = self.net(c_in * x_t, index)
        along = lambda x: torch.einsum("blf,flk->bkf", x, self.components)  # noqa: E731
        mixed = c_skip * along(x_t) + c_out * along(out)
        return torch.einsum("bkf,flk->blf", mixed, self.components)

    def eps_from_x0(self, x_t: torch.Tensor, index: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        """The noise that x_0 implies in x_t: the inverse of `NoiseSchedule.predict_x0`."""
        abar = self.schedule._at(self.schedule.alphas_cumprod, index, x_t)
        return (x_t - abar.sqrt() * x0) / (1 - abar).sqrt()

    # ---- training -----------------------------------------------------------------------------
    def loss(self, batch: Any, phase: str = "main") -> dict[str, torch.Tensor]:
        x0 = self._internal(split_batch(batch)[0])
        index = torch.randint(self.config.num_steps, (len(x0),), device=self.device)
        x_t = self.schedule.q_sample(x0, index, torch.randn_like(x0))
        error = self.denoise(x_t, index) - x0
        mse = error.pow(2).mean((1, 2))
        spectrum = torch.fft.rfft(error, dim=1, norm="ortho")
        fourier = (spectrum.real.abs() + spectrum.imag.abs()).mean((1, 2))
        loss = (self.loss_weight[index] * (mse + self.config.fourier_weight * fourier)).mean()
        return {"loss": loss, "mse": mse.mean().detach(), "fourier": fourier.mean().detach()}

    # ---- anomaly scores -------------------------------------------------------------------------
    @torch.no_grad()
    def anomaly_score(self, x: torch.Tensor, kind: str) -> torch.Tensor:
        """ "denoising": the squared error of the predicted clean window, summed over the window and
        averaged over `DENOISING_LEVELS`. Each level's noise is one seeded draw shared by every
        example, so a score does not depend on the batch it was computed in."""
        if kind != "denoising":
            return super().anomaly_score(x, kind)
        x0 = self._internal(x)
        generator = self.evaluation_generator()
        total = x0.new_zeros(len(x0))
        with self.inference():
            for fraction in DENOISING_LEVELS:
                noise = normal(self.shape, generator, self.device).expand_as(x0)
                index = torch.full((len(x0),), int(fraction * self.config.num_steps), device=self.device)
                x_t = self.schedule.q_sample(x0, index, noise)
                total += (self.denoise(x_t, index) - x0).pow(2).flatten(1).sum(1)
        return total / len(DENOISING_LEVELS)

    # ---- sampling -------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        sampler: str | None = None,
        steps: int | None = None,
    ) -> torch.Tensor:
        """`n` windows (n, L, F) in dataset units. `sampler` names an entry of
        `genzoo.samplers.SAMPLERS` (default `config.sampler`), `steps` its network calls (default
        `config.sample_steps`, else the sampler's own)."""
        c = self.config
        if n < 0:
            raise GenzooError(f"number of samples must be >= 0, got {n}")
        spec = sampler_spec(sampler or c.sampler)
        if steps is not None and not 1 <= steps <= c.num_steps:
            raise GenzooError(f"steps must be in 1..num_steps ({c.num_steps}), got {steps}")
        steps = steps or c.sample_steps or spec.steps_for(c.num_steps)
        options = spec.options_for({}, {"variance": "small"})

        def eps_fn(x_t: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
            return self.eps_from_x0(x_t, index, self.denoise(x_t, index))

        with self.inference():
            x_T = normal((n, *self.shape), generator, self.device)
            chunks = x_T.split(SAMPLE_CHUNK)
            # Progress: the sampler's steps when one chunk, else the chunks (only the outer loop reports).
            parts = [
                spec.fn(
                    eps_fn,
                    self.schedule,
                    chunk,
                    generator=generator,
                    steps=steps,
                    clip=c.clip_denoised,
                    **options,
                )
                for chunk in (track(chunks, unit="chunk") if len(chunks) > 1 else chunks)
            ]
            x0 = torch.cat(parts) if parts else x_T
        return self.rescale.to_data(x0)


__all__ = ["DiffusionTS", "DiffusionTSConfig", "SeriesDenoiser", "basis"]

"""Normalizing flows: RealNVP (Dinh et al. 2017), Glow (Kingma & Dhariwal 2018) and MAF
(Papamakarios et al. 2017).

A flow is an invertible map f from data to a latent z ~ N(0, I), so the density is exact:

    log p(x) = log N(f(x); 0, I) + log |det df/dx|

The layers live in `genzoo.nn.flow_layers` (each with a forward log-determinant and an inverse):

- RealNVP: per scale, 3 affine couplings with checkerboard masks, a squeeze, 3 with channel
  masks, then half the channels are factored out to the prior (multi-scale); the last scale
  has 4 checkerboard couplings. ActNorm after each coupling stands in for batch norm.
- Glow: per level, a squeeze, then K steps of ActNorm (data-dependent init), an invertible
  1x1 convolution in LU form and an affine coupling; half the channels are factored out
  after every level but the last.
- MAF: a stack of MADE-based autoregressive layers (alternating orders) on vectors; images
  are flattened.

Units. Data arrive in the dataset's units. Discrete data (L levels) are dequantized with
uniform noise, v = (k + u) / L in [0, 1) (k the level index), and image flows model
logit(alpha + (1 - 2 alpha) v). The density of v bounds the discrete probability of x:

    log P(x) >= E_u[log p(v)] + D log(1/L)          (Jensen; bin width 1/L)

`log_prob` returns this bound for discrete data, the standard number reported for flows
(via `metrics.likelihood.discrete_nll_from_density`), estimated with one noise draw per pixel
from a fixed-seed generator so that evaluation is deterministic. So for discrete data it is a
*variational lower bound* on the discrete log-likelihood (the density itself is exact); for
continuous data it is the exact log-density in dataset units. `log_prob_kind` stays "exact",
as flows are classed (DESIGN.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from genzoo.errors import GenzooError
from genzoo.metrics.likelihood import discrete_nll_from_density
from genzoo.models.base import GenerativeModel, ModelConfig, Preset, split_batch
from genzoo.models.registry import register_model
from genzoo.nn.blocks import ActivationName
from genzoo.nn.flow_layers import (
    ActNorm,
    AffineCoupling,
    FlowLayer,
    InvConv1x1,
    LogitTransform,
    MAFLayer,
    Squeeze,
)
from genzoo.nn.likelihoods import Rescale, normal, uniform

_LOG_2PI = math.log(2 * math.pi)


@dataclass
class FlowConfig(ModelConfig):
    logit_alpha: float = 0.05  # image flows model logit(alpha + (1 - 2 alpha) v), v in [0, 1]
    eval_seed: int = 0  # seed of the dequantization noise in `log_prob` (deterministic evaluation)


class _Flow(GenerativeModel):
    """What every flow shares: dequantization, the multi-scale pass, likelihood, sampling.

    Subclasses fill `self.stages` (lists of `FlowLayer`) and `self.splits` (factor out half the
    channels after that stage?) and set `self._image` (work on (C, H, W), or flatten to (D,)).
    """

    latent_space = True

    family = "flow"
    log_prob_kind = "exact"
    _image = True
    # The image flows' defaults; MAF sets its own.
    train_defaults = {
        "lr": 1e-3,
        "batch_size": 64,
        # On the 1000 training digits both Glow and RealNVP reach their best validation NLL near
        # step 500 and overfit after; bigger data wants more steps (`--max-steps`).
        "max_steps": 1000,
        "lr_decay_steps": 1000,
        "warmup_steps": 100,
        "weight_decay": 5e-5,
        "grad_clip": 10.0,
        "eval_every": 250,
        "keep_best": True,  # small data overfit: keep the best validation's weights
    }

    def __init__(self, config: FlowConfig):
        super().__init__(config)
        c = config
        self.shape = tuple(c.data_shape)
        self.numel = math.prod(self.shape)
        self.discrete = bool(c.data_levels)
        self.rescale = Rescale(c.data_low, c.data_high, c.data_levels)
        bounded = math.isfinite(c.data_low) and math.isfinite(c.data_high) and c.data_high > c.data_low
        # Logit space for images and for dequantized data; vectors of reals are modelled as they are.
        self.use_logit = bounded and (self._image or self.discrete)
        self.logit = LogitTransform(c.logit_alpha)
        self.stages = nn.ModuleList()
        self.splits: list[bool] = []

    def _finish(self) -> None:
        """Record the shapes of the latent parts (one dry pass in eval mode, so ActNorm stays uninitialised)."""
        with self.inference(), torch.no_grad():
            parts, _ = self._forward_parts(torch.zeros(1, *self._flow_shape()))
        self.latent_shapes = [tuple(p.shape[1:]) for p in parts]

    def _flow_shape(self) -> tuple[int, ...]:
        return self.shape if self._image else (self.numel,)

    # ---- the invertible pass ------------------------------------------------------------------
    def _forward_parts(self, h: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        logdet = h.new_zeros(h.shape[0])
        parts = []
        for stage, split in zip(self.stages, self.splits, strict=True):
            for layer in stage:
                h, ld = layer(h)
                logdet = logdet + ld
            if split:  # factor out: half the channels go straight to the prior
                half = h.shape[1] // 2
                parts.append(h[:, :half])
                h = h[:, half:]
        parts.append(h)
        return parts, logdet

    def _inverse_parts(self, parts: list[torch.Tensor]) -> torch.Tensor:
        h, k = parts[-1], len(parts) - 2
        for stage, split in zip(reversed(self.stages), reversed(self.splits), strict=True):
            if split:
                h = torch.cat([parts[k], h], dim=1)
                k -= 1
            for layer in reversed(stage):
                h = layer.inverse(h)
        return h

    def _flatten(self, parts: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat([p.flatten(1) for p in parts], dim=1)

    def _unflatten(self, z: torch.Tensor) -> list[torch.Tensor]:
        sizes = [math.prod(s) for s in self.latent_shapes]
        return [p.reshape(len(z), *s) for p, s in zip(z.split(sizes, dim=1), self.latent_shapes, strict=True)]

    # ---- units -----------------------------------------------------------------------------------
    def _check(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[1:]) != self.shape:
            raise GenzooError(
                f"{type(self).__name__} expects data of shape (N, {', '.join(map(str, self.shape))}), "
                f"got {tuple(x.shape)}"
            )
        return x.to(self.device, next(self.parameters()).dtype)  # float64 when the model is (tests)

    def _to_unit(self, x: torch.Tensor, u: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | float]:
        """Dataset units -> the flow's input space v, and log |dv/dx| (0 for dequantized data).

        Discrete: v = (k + u) / L with u the dequantization noise. Continuous: v in [0, 1]
        (logit flows) or [-1, 1] (vector flows).
        """
        c = self.config
        if self.discrete:
            levels = int(c.data_levels)
            k = ((x - c.data_low) / (c.data_high - c.data_low) * (levels - 1)).round().clamp(0, levels - 1)
            return (k + u) / levels, 0.0
        if self.use_logit:
            return (x - c.data_low) / (c.data_high - c.data_low), -self.numel * math.log(
                c.data_high - c.data_low
            )
        return self.rescale.to_internal(x), self.rescale.log_det(self.numel)

    def _from_unit(self, v: torch.Tensor) -> torch.Tensor:
        c = self.config
        if self.discrete:
            levels = int(c.data_levels)
            k = torch.floor(v * levels).clamp(0, levels - 1)
            return c.data_low + k * (c.data_high - c.data_low) / (levels - 1)
        if self.use_logit:
            return c.data_low + v.clamp(0, 1) * (c.data_high - c.data_low)
        return self.rescale.to_data(v)

    def _log_density_unit(self, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """log p(v) per example and the latent z (flat), for v in the flow's input space."""
        v = v.reshape(len(v), *self._flow_shape())
        logdet = v.new_zeros(len(v))
        if self.use_logit:
            v, logdet = self.logit(v)
        parts, ld = self._forward_parts(v)
        z = self._flatten(parts)
        log_pz = -0.5 * (z * z + _LOG_2PI).sum(1)
        return log_pz + logdet + ld, z

    def _log_prob_with_noise(self, x: torch.Tensor, u: torch.Tensor | None) -> torch.Tensor:
        v, log_jac = self._to_unit(x, u)
        log_pv, _ = self._log_density_unit(v)
        if self.discrete:
            return -discrete_nll_from_density(log_pv, self.numel, 1.0 / int(self.config.data_levels))
        return log_pv + log_jac

    # ---- the contract ---------------------------------------------------------------------------
    def loss(self, batch: Any, phase: str = "main") -> dict[str, torch.Tensor]:
        """Mean NLL per example in nats (the dequantization bound for discrete data), with bpd.

        Dequantization noise comes from the global RNG (the Trainer checkpoints it).
        """
        x, _ = split_batch(batch)
        x = self._check(x)
        u = torch.rand_like(x) if self.discrete else None
        nll = -self._log_prob_with_noise(x, u).mean()
        return {"loss": nll, "nll": nll.detach(), "bpd": nll.detach() / (self.numel * math.log(2))}

    def log_prob(self, x: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """log p(x) per example in nats: exact for continuous data; for discrete data the uniform
        dequantization bound E_u log p((k + u)/L) + D log(1/L) <= log P(x), one noise draw from
        `generator` (default: seeded by `config.eval_seed`, so repeated evaluations agree)."""
        x = self._check(x)
        u = None
        if self.discrete:
            if generator is None:
                generator = torch.Generator(device="cpu").manual_seed(self.config.eval_seed)
            u = uniform(tuple(x.shape), generator, self.device).to(x.dtype)
        with self.inference():
            return self._log_prob_with_noise(x, u)

    @torch.no_grad()
    def anomaly_score(self, x: torch.Tensor, kind: str) -> torch.Tensor:
        """ "nll" with discrete data at their bins' centres (u = 1/2) instead of one noise draw: the
        noise of `log_prob` is drawn per batch, which would tie an example's score to its batch."""
        if kind != "nll" or not self.discrete:
            return super().anomaly_score(x, kind)
        x = self._check(x)
        with self.inference():
            return -self._log_prob_with_noise(x, torch.full_like(x, 0.5))

    @torch.no_grad()
    def sample(
        self, n: int, *, generator: torch.Generator | None = None, temperature: float = 1.0
    ) -> torch.Tensor:
        """`n` samples in dataset units from z ~ N(0, temperature^2 I); discrete data snap to levels."""
        if n < 0:
            raise GenzooError(f"number of samples must be >= 0, got {n}")
        if temperature <= 0:
            raise GenzooError(f"temperature must be > 0, got {temperature}")
        z = normal((n, self.numel), generator, self.device).to(next(self.parameters()).dtype) * temperature
        return self.decode(z)

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Data (N, *data_shape) -> latents (N, D), all scales concatenated; discrete data at bin centres."""
        x = self._check(x)
        u = torch.full_like(x, 0.5) if self.discrete else None
        with self.inference():
            return self._log_density_unit(self._to_unit(x, u)[0])[1]

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latents (N, D) -> data in dataset units (the inverse of `encode`, up to the level grid)."""
        if z.dim() != 2 or z.shape[1] != self.numel:
            raise GenzooError(f"latents must have shape (N, {self.numel}), got {tuple(z.shape)}")
        z = z.to(self.device, next(self.parameters()).dtype)
        with self.inference():
            h = self._inverse_parts(self._unflatten(z))
            if self.use_logit:
                h = self.logit.inverse(h)
            x = self._from_unit(h.reshape(len(z), *self.shape))
        return x.float()


def _check_image(shape: tuple[int, ...], squeezes: int, name: str) -> None:
    if len(shape) != 3:
        raise GenzooError(f"{name} needs image data (C, H, W), got shape {shape}; use 'maf' for vectors")
    _, h, w = shape
    if h % (2**squeezes) or w % (2**squeezes):
        raise GenzooError(
            f"{name} with {squeezes} squeeze(s) needs height and width divisible by {2**squeezes}, "
            f"got {h}x{w}; lower the number of scales/levels"
        )


@dataclass
class RealNVPConfig(FlowConfig):
    n_scales: int = 2  # multi-scale levels (each but the last squeezes and factors out half)
    couplings: int = 3  # checkerboard (and channel) couplings per scale; the last scale has couplings + 1
    hidden: int = 64  # channels of each coupling network
    depth: int = 2  # residual blocks per coupling network
    actnorm: bool = True  # ActNorm after every coupling (RealNVP used batch norm)


@register_model
class RealNVP(_Flow):
    """RealNVP: multi-scale affine couplings with checkerboard and channel masks."""

    Config = RealNVPConfig
    name = "realnvp"
    modalities = ("image",)

    def __init__(self, config: RealNVPConfig):
        super().__init__(config)
        c = config
        if c.n_scales < 1 or c.couplings < 1:
            raise GenzooError("n_scales and couplings must be >= 1")
        _check_image(self.shape, c.n_scales - 1, "realnvp")
        ch, h, w = self.shape

        def coupling(channels: int, mask: str, parity: int, size: tuple[int, int]) -> list[FlowLayer]:
            layer = AffineCoupling(channels, mask, parity, c.hidden, c.depth, size=size)
            return [layer, ActNorm(channels)] if c.actnorm else [layer]

        for scale in range(c.n_scales):
            stage: list[FlowLayer] = []
            last = scale == c.n_scales - 1
            for i in range(c.couplings + (1 if last else 0)):
                stage += coupling(ch, "checkerboard", i % 2, (h, w))
            if not last:
                stage.append(Squeeze())
                ch, h, w = 4 * ch, h // 2, w // 2
                for i in range(c.couplings):
                    stage += coupling(ch, "channel", i % 2, (h, w))
                ch //= 2
            self.stages.append(nn.ModuleList(stage))
            self.splits.append(not last)
        self._finish()


@dataclass
class GlowConfig(FlowConfig):
    n_levels: int = 2  # each squeezes; all but the last factor out half the channels
    steps: int = 8  # flow steps (ActNorm, 1x1 conv, coupling) per level
    hidden: int = 64  # channels of each coupling network
    depth: int = 1  # residual blocks per coupling network


@register_model
class Glow(_Flow):
    """Glow: ActNorm, invertible 1x1 convolution (LU) and affine coupling, multi-scale."""

    Config = GlowConfig
    name = "glow"
    modalities = ("image",)
    presets = {
        "binarized-mnist": Preset(
            "mnist-binary",
            {"steps": 4, "max_steps": 1000, "lr_decay_steps": 1000},
            "test NLL 144.0 nats per image (README, Results: Binarized MNIST-10k)",
        )
    }

    def __init__(self, config: GlowConfig):
        super().__init__(config)
        c = config
        if c.n_levels < 1 or c.steps < 1:
            raise GenzooError("n_levels and steps must be >= 1")
        _check_image(self.shape, c.n_levels, "glow")
        ch, h, w = self.shape
        # The 1x1 convs start as random rotations: seed them so a config builds the same model.
        generator = torch.Generator().manual_seed(0)
        for level in range(c.n_levels):
            ch, h, w = 4 * ch, h // 2, w // 2
            stage: list[FlowLayer] = [Squeeze()]
            for i in range(c.steps):
                stage += [
                    ActNorm(ch),
                    InvConv1x1(ch, generator=generator),
                    AffineCoupling(ch, "channel", i % 2, c.hidden, c.depth),
                ]
            last = level == c.n_levels - 1
            if not last:
                ch //= 2
            self.stages.append(nn.ModuleList(stage))
            self.splits.append(not last)
        self._finish()


@dataclass
class MAFConfig(FlowConfig):
    n_layers: int = 5  # MADE layers, orders alternating between natural and reversed
    hidden: tuple[int, ...] = (128, 128)  # MADE hidden widths
    activation: ActivationName = "relu"
    actnorm: bool = True  # ActNorm between MADE layers
    # Each layer's scale: "sigmoid" bounds it to (1e-3, 2) (see MAFLayer); "exp-tanh" is the
    # earlier exp(4 tanh(a/4)), which overfits small data (digits: 109.1 against 105.5 nats).
    scale_form: Literal["sigmoid", "exp-tanh"] = "sigmoid"
    saved_before: ClassVar[dict[str, Any]] = {"scale_form": "exp-tanh"}


@register_model
class MAF(_Flow):
    """Masked autoregressive flow (MADE layers) for vectors; images are flattened."""

    Config = MAFConfig
    name = "maf"
    modalities = ("vector", "image")
    _image = False
    train_defaults = {
        "lr": 1e-3,
        "batch_size": 128,
        "max_steps": 3000,
        "lr_decay_steps": 3000,
        "warmup_steps": 100,
        "weight_decay": 1e-5,
        "grad_clip": 10.0,
        "eval_every": 500,
        "keep_best": True,  # small data overfit: keep the best validation's weights
    }

    def __init__(self, config: MAFConfig):
        super().__init__(config)
        c = config
        if c.n_layers < 1:
            raise GenzooError(f"n_layers must be >= 1, got {c.n_layers}")
        d = self.numel
        layers: list[FlowLayer] = []
        for i in range(c.n_layers):
            order = torch.arange(d) if i % 2 == 0 else torch.arange(d).flip(0)
            layers.append(
                MAFLayer(d, tuple(c.hidden), order=order, act=c.activation, scale_form=c.scale_form)
            )
            if c.actnorm and i < c.n_layers - 1:
                layers.append(ActNorm(d))
        self.stages.append(nn.ModuleList(layers))
        self.splits.append(False)
        self._finish()

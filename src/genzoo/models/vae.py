"""Variational autoencoder (Kingma & Welling 2014), with the importance-weighted bound of
Burda et al. (2016) for evaluation (and, optionally, training).

    q(z|x) = N(mu(x), diag(exp(logvar(x))))      encoder
    p(z)   = N(0, I)  (or a learned mixture of Gaussians)
    p(x|z) = a factorised likelihood over pixels  decoder (genzoo.nn.likelihoods)

    ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) || p(z))  <=  log p(x)
    IWAE_k(x) = E[log 1/k sum_i p(x, z_i) / q(z_i|x)],  z_i ~ q(z|x); it rises to log p(x) as k grows.

`log_prob` is the IWAE estimate (`log_prob_kind = "estimate"`) with `config.iwae_k` samples.
Data arrive in the dataset's units and are mapped to [-1, 1] inside (`Rescale`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from genzoo.errors import GenzooError
from genzoo.models.base import GenerativeModel, ModelConfig, split_batch
from genzoo.models.registry import register_model
from genzoo.nn.blocks import ConvDecoder, ConvEncoder, mlp
from genzoo.nn.likelihoods import Rescale, make_likelihood, normal, resolve_likelihood

_LOG_2PI = math.log(2 * math.pi)


@dataclass
class VAEConfig(ModelConfig):
    architecture: str = "mlp"  # "mlp" (any data) or "conv" (images)
    hidden: tuple[int, ...] = (256, 256)  # MLP widths, encoder order (the decoder mirrors them)
    channels: tuple[int, ...] = (32, 64)  # conv widths, one stride-2 stage each
    activation: str = "gelu"
    latent_dim: int = 16
    dropout: float = 0.1  # on the hidden layers (1000 digits overfit fast without it)
    likelihood: str = "auto"  # auto (see resolve_likelihood) | logistic | categorical | bernoulli | gaussian
    logistic_mixtures: int = 1  # components of the discretized logistic
    gaussian_std: float = 0.0  # fixed std of a Gaussian likelihood (internal units); 0 = learned
    prior: str = "normal"  # "normal" N(0, I), or "mog": a learned mixture of Gaussians
    prior_components: int = 16  # mixture components when prior = "mog"
    beta: float = 1.0  # weight of the KL term (beta-VAE); 1 = the true ELBO
    free_bits: float = 0.0  # nats per latent dim below which the (batch-mean) KL is not penalised
    kl_warmup_steps: int = 1000  # beta ramps linearly from 0 over this many training steps
    train_k: int = 1  # importance samples in the training objective: 1 = ELBO, > 1 = IWAE bound
    iwae_k: int = 1000  # importance samples for `log_prob`
    eval_rows: int = 8192  # decoder rows per forward pass in `log_prob` (bounds its memory)


@register_model
class VAE(GenerativeModel):
    """Variational autoencoder (MLP or conv) with an IWAE log-likelihood estimate."""

    Config = VAEConfig
    name = "vae"
    family = "vae"
    modalities = ("image", "vector")
    log_prob_kind = "estimate"
    train_defaults = {
        "lr": 1e-3,
        "batch_size": 64,
        "max_steps": 4000,
        "lr_decay_steps": 4000,  # fixed, so a shorter --max-steps run is a prefix of a longer one
        "warmup_steps": 200,
        "weight_decay": 0.0,
        "eval_every": 500,
    }

    def __init__(self, config: VAEConfig):
        super().__init__(config)
        c = config
        self.shape = tuple(c.data_shape)
        self.numel = math.prod(self.shape)
        self.rescale = Rescale(c.data_low, c.data_high, c.data_levels)
        self.likelihood = make_likelihood(
            c.likelihood, c.data_levels, mixtures=c.logistic_mixtures, gaussian_std=c.gaussian_std or None
        )
        self.likelihood_name = resolve_likelihood(c.likelihood, c.data_levels)
        if c.latent_dim < 1:
            raise GenzooError(f"latent_dim must be >= 1, got {c.latent_dim}")
        if c.train_k < 1 or c.iwae_k < 1:
            raise GenzooError("train_k and iwae_k must be >= 1")
        p = self.likelihood.params_per_dim
        if c.architecture == "mlp":
            self.encoder = mlp(self.numel, c.hidden, 2 * c.latent_dim, act=c.activation, dropout=c.dropout)
            self.decoder = mlp(
                c.latent_dim, c.hidden[::-1], p * self.numel, act=c.activation, dropout=c.dropout
            )
        elif c.architecture == "conv":
            if len(self.shape) != 3:
                raise GenzooError(
                    f"architecture 'conv' needs image data (C, H, W), got shape {self.shape}; use 'mlp'"
                )
            ch, h, w = self.shape
            self.encoder = ConvEncoder(
                ch, (h, w), c.channels, 2 * c.latent_dim, act=c.activation, dropout=c.dropout
            )
            self.decoder = ConvDecoder(c.latent_dim, p * ch, (h, w), c.channels, act=c.activation)
        else:
            raise GenzooError(f"unknown architecture '{c.architecture}'; choose 'mlp' or 'conv'")
        if c.prior == "mog":
            k = c.prior_components
            self.prior_means = nn.Parameter(torch.randn(k, c.latent_dim) * 0.5)
            self.prior_logvars = nn.Parameter(torch.zeros(k, c.latent_dim))
            self.prior_logits = nn.Parameter(torch.zeros(k))
        elif c.prior != "normal":
            raise GenzooError(f"unknown prior '{c.prior}'; choose 'normal' or 'mog'")
        # Training steps seen, for the KL warm-up (a buffer, so it is checkpointed with the weights).
        self.register_buffer("steps_seen", torch.zeros((), dtype=torch.long))

    # ---- networks ---------------------------------------------------------------------
    def _check(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[1:]) != self.shape:
            raise GenzooError(
                f"VAE expects data of shape (N, {', '.join(map(str, self.shape))}), got {tuple(x.shape)}"
            )
        return x.to(self.device, torch.float32)

    def _posterior(self, x_int: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z|x) for internal-unit data: (mean, log-variance), each (B, latent_dim)."""
        inp = x_int.flatten(1) if self.config.architecture == "mlp" else x_int
        mu, logvar = self.encoder(inp).chunk(2, dim=1)
        return mu, logvar.clamp(-12.0, 8.0)

    def _decode_params(self, z: torch.Tensor) -> torch.Tensor:
        """Likelihood parameters (B, P, *data_shape) for latents (B, latent_dim)."""
        return self.decoder(z).view(z.shape[0], self.likelihood.params_per_dim, *self.shape)

    def _log_px(self, params: torch.Tensor, x_int: torch.Tensor) -> torch.Tensor:
        """log p(x|z) per example in dataset units (densities get the rescaling's Jacobian)."""
        ll = self.likelihood.log_prob(params, x_int)
        if not self.likelihood.discrete:
            ll = ll + self.rescale.log_det(self.numel)
        return ll

    def _prior_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        if self.config.prior == "normal":
            return -0.5 * (z * z + _LOG_2PI).sum(-1)
        diff = z.unsqueeze(-2) - self.prior_means  # (..., K, D)
        comp = -0.5 * (diff * diff * torch.exp(-self.prior_logvars) + self.prior_logvars + _LOG_2PI).sum(-1)
        return torch.logsumexp(comp + torch.log_softmax(self.prior_logits, 0), dim=-1)

    def _prior_sample(self, n: int, generator: torch.Generator | None, temperature: float) -> torch.Tensor:
        eps = normal((n, self.config.latent_dim), generator, self.device) * temperature
        if self.config.prior == "normal":
            return eps
        u = torch.rand(
            (n, self.config.prior_components), generator=generator, device=_gen_device(generator, self)
        )
        pick = (
            torch.log_softmax(self.prior_logits, 0) - torch.log(-torch.log(u.to(self.device).clamp(1e-10, 1)))
        ).argmax(1)
        return self.prior_means[pick] + torch.exp(0.5 * self.prior_logvars[pick]) * eps

    @staticmethod
    def _posterior_log_prob(eps: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """log q(z|x) at z = mu + sigma * eps."""
        return -0.5 * (eps * eps + logvar + _LOG_2PI).sum(-1)

    def _kl_per_dim(
        self, mu: torch.Tensor, logvar: torch.Tensor, z: torch.Tensor, eps: torch.Tensor
    ) -> torch.Tensor:
        """KL(q || p) per latent dim (B, D): exact for N(0, I), one-sample estimate for the mixture."""
        if self.config.prior == "normal":
            return 0.5 * (mu * mu + logvar.exp() - 1 - logvar)
        kl = self._posterior_log_prob(eps, logvar) - self._prior_log_prob(z)
        return kl.unsqueeze(1).expand(-1, mu.shape[1]) / mu.shape[1]

    # ---- training ---------------------------------------------------------------------
    def loss(self, batch: Any, phase: str = "main") -> dict[str, torch.Tensor]:
        """Negative ELBO per example (KL weighted by beta), averaged over the batch.

        Reparameterisation noise comes from the global RNG (the Trainer checkpoints it).
        """
        x, _ = split_batch(batch)
        x_int = self.rescale.to_internal(self._check(x))
        mu, logvar = self._posterior(x_int)
        c = self.config
        beta = c.beta
        if self.training and torch.is_grad_enabled():
            if c.kl_warmup_steps > 0:
                beta = beta * min(1.0, (int(self.steps_seen) + 1) / c.kl_warmup_steps)
            self.steps_seen += 1
        if c.train_k == 1:
            eps = torch.randn_like(mu)
            z = mu + torch.exp(0.5 * logvar) * eps
            rec = self._log_px(self._decode_params(z), x_int)  # (B,)
            kl_dims = self._kl_per_dim(mu, logvar, z, eps)  # (B, D)
            kl = kl_dims.sum(1)
            if c.free_bits > 0:
                kl_term = kl_dims.mean(0).clamp(min=c.free_bits).sum()
            else:
                kl_term = kl.mean()
            loss = -rec.mean() + beta * kl_term
        else:
            # IWAE bound: the importance weights are normalised within each example.
            k, b = c.train_k, x.shape[0]
            eps = torch.randn(k, *mu.shape, device=mu.device)
            z = mu + torch.exp(0.5 * logvar) * eps  # (k, B, D)
            params = self._decode_params(z.flatten(0, 1))
            rec = self._log_px(params, x_int.expand(k, *x_int.shape).flatten(0, 1)).view(k, b)
            kl_mc = self._posterior_log_prob(eps, logvar) - self._prior_log_prob(z)
            log_w = rec - beta * kl_mc
            loss = -(torch.logsumexp(log_w, 0) - math.log(k)).mean()
            rec, kl = rec.mean(0), kl_mc.mean(0)
        return {"loss": loss, "rec": -rec.mean(), "kl": kl.mean(), "elbo": (rec - kl).mean()}

    # ---- likelihood ---------------------------------------------------------------------
    def _log_weights(
        self, x: torch.Tensor, k: int, generator: torch.Generator | None
    ) -> Iterator[tuple[slice, torch.Tensor]]:
        """log p(x, z_i) - log q(z_i|x) for k posterior samples: yields (rows, (k, b)) per block of x."""
        x = self._check(x)
        # Bound the decoder output held at once to ~2^24 numbers (and eval_rows rows).
        per_output = self.numel * self.likelihood.params_per_dim
        rows = max(1, min(self.config.eval_rows, 2**24 // per_output))
        per_block = max(1, min(len(x), 256, rows))
        chunk = max(1, rows // per_block)
        for start in range(0, len(x), per_block):
            x_int = self.rescale.to_internal(x[start : start + per_block])
            b = len(x_int)
            mu, logvar = self._posterior(x_int)
            parts = []
            for done in range(0, k, chunk):
                c = min(chunk, k - done)
                eps = normal((c, b, self.config.latent_dim), generator, self.device)
                z = mu + torch.exp(0.5 * logvar) * eps
                ll = self._log_px(
                    self._decode_params(z.flatten(0, 1)), x_int.repeat(c, *[1] * (x_int.dim() - 1))
                ).view(c, b)
                parts.append(ll + self._prior_log_prob(z) - self._posterior_log_prob(eps, logvar))
            yield slice(start, start + b), torch.cat(parts)

    @torch.no_grad()
    def log_prob(
        self, x: torch.Tensor, *, k: int | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """IWAE estimate of log p(x) per example, in nats, with `k` (default `config.iwae_k`) samples.

        A lower bound in expectation that tightens as k grows. Without a `generator` the
        noise comes from a fixed seed, so repeated evaluations agree and the global RNG is untouched.
        """
        k = k or self.config.iwae_k
        generator = generator or _default_generator(self)
        out = torch.empty(len(x), device=self.device)
        with self.inference():
            for rows, log_w in self._log_weights(x, k, generator):
                out[rows] = torch.logsumexp(log_w, 0) - math.log(k)
        return out

    @torch.no_grad()
    def elbo(
        self, x: torch.Tensor, *, samples: int = 1, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Evidence lower bound per example, in nats (Monte Carlo over `samples` posterior draws)."""
        generator = generator or _default_generator(self)
        out = torch.empty(len(x), device=self.device)
        with self.inference():
            for rows, log_w in self._log_weights(x, samples, generator):
                out[rows] = log_w.mean(0)
        return out

    # ---- sampling and the latent space -----------------------------------------------
    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        mean: bool = False,
        temperature: float = 1.0,
    ) -> torch.Tensor:
        """`n` samples (n, *data_shape) in dataset units; `mean=True` gives E[x|z] instead of a draw."""
        if n < 0:
            raise GenzooError(f"number of samples must be >= 0, got {n}")
        if temperature <= 0:
            raise GenzooError(f"temperature must be > 0, got {temperature}")
        with self.inference():
            z = self._prior_sample(n, generator, temperature)
            return self._decode(z, mean=mean, generator=generator)

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior q(z|x): (mean, log-variance), each (N, latent_dim)."""
        with self.inference():
            return self._posterior(self.rescale.to_internal(self._check(x)))

    @torch.no_grad()
    def decode(
        self, z: torch.Tensor, *, mean: bool = True, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Latents (N, latent_dim) -> data (N, *data_shape) in dataset units (the mean, or a draw)."""
        with self.inference():
            return self._decode(z.to(self.device, torch.float32), mean=mean, generator=generator)

    def _decode(self, z: torch.Tensor, *, mean: bool, generator: torch.Generator | None) -> torch.Tensor:
        params = self._decode_params(z)
        if mean:
            return self.rescale.mean_to_data(self.likelihood.mean(params))
        return self.rescale.to_data(self.likelihood.sample(params, generator))

    @torch.no_grad()
    def reconstruct(
        self, x: torch.Tensor, *, mean: bool = True, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Decode the posterior mean of each example."""
        return self.decode(self.encode(x)[0], mean=mean, generator=generator)

    @torch.no_grad()
    def interpolate(self, x1: torch.Tensor, x2: torch.Tensor, steps: int = 8) -> torch.Tensor:
        """Decoded means along the straight line between the posterior means of x1 and x2.

        x1, x2: one example (*data_shape) -> (steps, *data_shape); or a batch (N, ...) -> (steps, N, ...).
        """
        single = tuple(x1.shape) == self.shape
        x1, x2 = (x1.unsqueeze(0), x2.unsqueeze(0)) if single else (x1, x2)
        z1, z2 = self.encode(x1)[0], self.encode(x2)[0]
        t = torch.linspace(0, 1, steps, device=self.device).view(-1, 1, 1)
        z = (1 - t) * z1 + t * z2  # (steps, N, D)
        out = self.decode(z.flatten(0, 1)).view(steps, len(z1), *self.shape)
        return out[:, 0] if single else out


def _gen_device(generator: torch.Generator | None, model: nn.Module) -> torch.device:
    return generator.device if generator is not None else next(model.parameters()).device


def _default_generator(model: GenerativeModel) -> torch.Generator:
    device = model.device if model.device.type == "cuda" else torch.device("cpu")
    return torch.Generator(device=device).manual_seed(0)

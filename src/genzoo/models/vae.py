"""Variational autoencoder (Kingma & Welling 2014), its importance-weighted bound (IWAE,
Burda et al. 2016) as evaluation and training objective, and the conditional VAE (Sohn et al. 2015).

    q(z|x) = N(mu(x), diag(exp(logvar(x))))      encoder
    p(z)   = N(0, I)  (or a learned mixture of Gaussians)
    p(x|z) = a factorised likelihood over pixels  decoder (genzoo.nn.likelihoods)

    w_i = p(x|z_i) p(z_i) / q(z_i|x),  z_i ~ q(z|x)     importance weights
    ELBO(x)   = E[log w]                              <=  log p(x)
    IWAE_k(x) = E[log 1/k sum_i w_i]                  rises from the ELBO (k = 1) to log p(x) as k grows

`objective="iwae"` trains on IWAE_k with `train_samples` = k (registered on its own as `iwae`);
`log_prob` is IWAE_k with `config.iwae_k` samples (`log_prob_kind = "estimate"`). Both use the
same weights (`_importance_terms`).

`conditional=True` (labelled data) feeds a class embedding to encoder and decoder:
q(z|x, y), p(x|z, y). Without labels, `log_prob(x)` marginalises over a uniform label
prior, log p(x) = log 1/C sum_y p(x|y), so `genzoo evaluate` compares it with unconditional
models; `log_prob(x, label=y)` gives log p(x|y).
Data arrive in the dataset's units and are mapped to [-1, 1] inside (`Rescale`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from genzoo.errors import GenzooError
from genzoo.models.base import (
    GenerativeModel,
    ModelConfig,
    Preset,
    class_indices,
    split_batch,
    uniform_class_indices,
)
from genzoo.models.registry import register_model
from genzoo.nn.blocks import ActivationName, ConvDecoder, ConvEncoder, mlp
from genzoo.nn.likelihoods import Rescale, make_likelihood, normal, resolve_likelihood

_LOG_2PI = math.log(2 * math.pi)


OBJECTIVES = ("elbo", "iwae")


Objective = Literal["elbo", "iwae"]


@dataclass
class VAEConfig(ModelConfig):
    architecture: Literal["mlp", "conv"] = "mlp"  # "mlp" (any data) or "conv" (images)
    hidden: tuple[int, ...] = (256, 256)  # MLP widths, encoder order (the decoder mirrors them)
    channels: tuple[int, ...] = (32, 64)  # conv widths, one stride-2 stage each
    activation: ActivationName = "gelu"
    latent_dim: int = 16
    dropout: float = 0.1  # on the hidden layers (1000 digits overfit fast without it)
    likelihood: Literal["auto", "logistic", "categorical", "bernoulli", "gaussian"] = (
        "auto"  # auto (see resolve_likelihood) | logistic | categorical | bernoulli | gaussian
    )
    logistic_mixtures: int = 1  # components of the discretized logistic
    gaussian_std: float = 0.0  # fixed std of a Gaussian likelihood (internal units); 0 = learned
    prior: Literal["normal", "mog"] = "normal"  # "normal" N(0, I), or "mog": a learned mixture of Gaussians
    prior_components: int = 16  # mixture components when prior = "mog"
    conditional: bool = False  # class embedding into encoder and decoder (needs labelled data)
    embed_dim: int = 16  # width of that class embedding
    objective: Objective = "elbo"  # "elbo", or "iwae": the importance-weighted bound with train_samples
    train_samples: int = 1  # posterior samples per example in training (elbo: averaged; iwae: k)
    # iwae: the doubly reparameterized gradient for the encoder (Tucker et al. 2019), whose signal
    # does not fade as k grows (Rainforth et al. 2018); the decoder's gradient is unchanged. On
    # digits it made no difference (test nll 86.7 against 86.5 at k = 5): the 1000 training
    # images overfit first.
    dreg: bool = False
    beta: float = 1.0  # weight of the KL term (beta-VAE); 1 = the true ELBO
    free_bits: float = 0.0  # elbo only: nats per latent dim below which the (batch-mean) KL is free
    kl_warmup_steps: int = 1000  # beta ramps linearly from 0 over this many training steps
    iwae_k: int = 1000  # importance samples for `log_prob`
    eval_rows: int = 8192  # decoder rows per forward pass in `log_prob` (bounds its memory)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelConfig:
        # Configs saved before `objective` existed say `train_k`, where k > 1 meant the IWAE bound.
        if "train_k" in values:
            values = dict(values)
            k = values.pop("train_k")
            values.setdefault("train_samples", k)
            values.setdefault("objective", "iwae" if k > 1 else "elbo")
        return super().from_dict(values)


@register_model
class VAE(GenerativeModel):
    """Variational autoencoder (MLP or conv; ELBO or IWAE objective; optionally class-conditional)."""

    supports_labels = True
    latent_space = True
    reports_bound = True
    anomaly_scores = ("reconstruction",)
    has_anomaly_map = True
    # Lossless coding with bits-back ANS (`genzoo.apps.bitsback`): `latent_posterior` and
    # `observation_probs` give the coder q(z|x) and p(x|z). Only an unconditional VAE with the
    # normal prior and a discrete likelihood can; others raise GenzooError from both methods.
    bits_back = True

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
        "keep_best": True,  # small data overfit: keep the best validation's weights
    }
    presets = {
        "binarized-mnist": Preset(
            "mnist-binary",
            {"max_steps": 5000, "lr_decay_steps": 5000},
            "test NLL 97.3 nats per image, IWAE estimate (README, Results: Binarized MNIST-10k)",
        )
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
        if c.train_samples < 1 or c.iwae_k < 1:
            raise GenzooError("train_samples and iwae_k must be >= 1")
        if c.objective not in OBJECTIVES:
            raise GenzooError(f"unknown objective '{c.objective}'; choose one of: {', '.join(OBJECTIVES)}")
        if c.objective == "iwae" and c.free_bits > 0:
            raise GenzooError(
                "free_bits applies to the elbo objective only; set free_bits=0 or objective=elbo"
            )
        if c.conditional and (c.num_classes < 1 or c.embed_dim < 1):
            raise GenzooError(
                "conditional=True needs labelled data (num_classes > 0) and embed_dim >= 1; "
                "set conditional=false"
            )
        self.conditional = c.conditional
        e = c.embed_dim if c.conditional else 0
        p = self.likelihood.params_per_dim
        if c.architecture == "mlp":
            self.encoder = mlp(
                self.numel + e, c.hidden, 2 * c.latent_dim, act=c.activation, dropout=c.dropout
            )
            self.decoder = mlp(
                c.latent_dim + e, c.hidden[::-1], p * self.numel, act=c.activation, dropout=c.dropout
            )
        elif c.architecture == "conv":
            if len(self.shape) != 3:
                raise GenzooError(
                    f"architecture 'conv' needs image data (C, H, W), got shape {self.shape}; use 'mlp'"
                )
            ch, h, w = self.shape
            # The class embedding enters the conv encoder as e constant extra channels.
            self.encoder = ConvEncoder(
                ch + e, (h, w), c.channels, 2 * c.latent_dim, act=c.activation, dropout=c.dropout
            )
            self.decoder = ConvDecoder(c.latent_dim + e, p * ch, (h, w), c.channels, act=c.activation)
        else:
            raise GenzooError(f"unknown architecture '{c.architecture}'; choose 'mlp' or 'conv'")
        if c.conditional:
            # One embedding for both networks: q(z|x, y) and p(x|z, y) see the same class code.
            self.label_embed = nn.Embedding(c.num_classes, c.embed_dim)
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

    def _labels(self, n: int, label: int | torch.Tensor | None) -> torch.Tensor | None:
        """`label` (an int, or n of them) as (n,) class indices; None stays None."""
        if label is None:
            return None
        if not self.conditional:
            raise GenzooError("this VAE is unconditional; train with conditional=true to use labels")
        return class_indices(label, n, self.config.num_classes, self.device)

    def _required_labels(self, n: int, label: int | torch.Tensor | None) -> torch.Tensor | None:
        y = self._labels(n, label)
        if self.conditional and y is None:
            raise GenzooError("a conditional VAE needs label= (an int, or one per example)")
        return y

    def _posterior(self, x_int: torch.Tensor, y: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z|x[, y]) for internal-unit data: (mean, log-variance), each (B, latent_dim)."""
        inp = x_int.flatten(1) if self.config.architecture == "mlp" else x_int
        if y is not None:
            emb = self.label_embed(y)
            if inp.dim() == 4:
                emb = emb[:, :, None, None].expand(-1, -1, *inp.shape[2:])
            inp = torch.cat([inp, emb], 1)
        mu, logvar = self.encoder(inp).chunk(2, dim=1)
        return mu, logvar.clamp(-12.0, 8.0)

    def _decode_params(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """Likelihood parameters (B, P, *data_shape) for latents (B, latent_dim) [and labels (B,)]."""
        if y is not None:
            z = torch.cat([z, self.label_embed(y)], 1)
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

    def _importance_terms(
        self,
        x_int: torch.Tensor,
        y: torch.Tensor | None,
        mu: torch.Tensor,
        logvar: torch.Tensor,
        eps: torch.Tensor,
        *,
        fixed_q: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """log p(x|z_i), log q(z_i|x) - log p(z_i), and z_i = mu + sigma * eps_i; (k, B) and (k, B, D).

        eps is (k, B, latent_dim); the log importance weight is the first minus the second.
        Training (ELBO and IWAE) and `log_prob` / `elbo` all take their weights from here.
        `fixed_q` evaluates log q with mu and sigma detached, so the encoder's gradient reaches the
        weights only through z (the doubly reparameterized estimator needs that).
        """
        k, b = eps.shape[:2]
        z = mu + torch.exp(0.5 * logvar) * eps
        x_rep = x_int.expand(k, *x_int.shape).flatten(0, 1)  # row i * B + j is example j
        y_rep = None if y is None else y.expand(k, b).flatten()
        rec = self._log_px(self._decode_params(z.flatten(0, 1), y_rep), x_rep).view(k, b)
        if fixed_q:
            fixed_eps = (z - mu.detach()) * torch.exp(-0.5 * logvar.detach())  # equals eps, with z's gradient
            log_q = self._posterior_log_prob(fixed_eps, logvar.detach())
        else:
            log_q = self._posterior_log_prob(eps, logvar)
        return rec, log_q - self._prior_log_prob(z), z

    def _kl_per_dim(self, mu: torch.Tensor, logvar: torch.Tensor, kl_mc: torch.Tensor) -> torch.Tensor:
        """KL(q || p) per latent dim (B, D): exact for N(0, I), else the Monte Carlo mean of `kl_mc` (k, B)."""
        if self.config.prior == "normal":
            return 0.5 * (mu * mu + logvar.exp() - 1 - logvar)
        return kl_mc.mean(0).unsqueeze(1).expand(-1, mu.shape[1]) / mu.shape[1]

    # ---- training ---------------------------------------------------------------------
    def note_step(self, step: int) -> None:
        self.steps_seen.fill_(step)  # the loss counts on from here (its own count when called directly)

    def loss(self, batch: Any, phase: str = "main") -> dict[str, torch.Tensor]:
        """The negative training objective per example, averaged over the batch.

        elbo: -(mean over train_samples of log p(x|z)) + beta * KL (analytic for the normal prior).
        iwae: -log 1/k sum_i w_i with k = train_samples, beta tempering log p(z)/q(z|x) in each w_i.
        Reparameterisation noise comes from the global RNG (the Trainer checkpoints it).
        """
        x, y = split_batch(batch)
        x_int = self.rescale.to_internal(self._check(x))
        if self.conditional:
            if y is None or (y < 0).any():
                raise GenzooError("a conditional VAE needs labels in every batch")
            y = self._labels(len(x), y)
        else:
            y = None
        mu, logvar = self._posterior(x_int, y)
        c = self.config
        beta = c.beta
        if self.training and torch.is_grad_enabled():
            if c.kl_warmup_steps > 0:
                beta = beta * min(1.0, (int(self.steps_seen) + 1) / c.kl_warmup_steps)
            self.steps_seen += 1
        k = c.train_samples
        eps = torch.randn(k, *mu.shape, device=mu.device)
        dreg = c.objective == "iwae" and c.dreg and torch.is_grad_enabled()
        rec, kl_mc, z = self._importance_terms(x_int, y, mu, logvar, eps, fixed_q=dreg)  # (k, B) each
        if c.objective == "iwae":
            # The importance weights are normalised within each example (over dim 0).
            log_w = rec - beta * kl_mc
            if dreg:
                # Tucker et al. (2019): the decoder's gradient is sum_i w~_i grad log w_i (as for the
                # IWAE bound); the encoder's, through z only, is sum_i w~_i^2 d log w_i / dz_i dz_i.
                # The hook adds the second factor w~_i on the way into z.
                weights = log_w.detach().softmax(0)
                z.register_hook(lambda grad: grad * weights.unsqueeze(-1))
                loss = -(weights * log_w).sum(0).mean()
            else:
                loss = -(torch.logsumexp(log_w, 0) - math.log(k)).mean()
            kl = kl_mc.mean(0)
        else:
            kl_dims = self._kl_per_dim(mu, logvar, kl_mc)  # (B, D)
            kl = kl_dims.sum(1)
            if c.free_bits > 0:
                kl_term = kl_dims.mean(0).clamp(min=c.free_bits).sum()
            else:
                kl_term = kl.mean()
            loss = -rec.mean() + beta * kl_term
        rec = rec.mean(0)
        return {"loss": loss, "rec": -rec.mean(), "kl": kl.mean(), "elbo": (rec - kl).mean()}

    # ---- likelihood ---------------------------------------------------------------------
    def _log_weights(
        self, x: torch.Tensor, k: int, generator: torch.Generator | None, label: int | torch.Tensor | None
    ) -> Iterator[tuple[slice, torch.Tensor]]:
        """Log importance weights for k posterior samples: yields (rows, (C, k, b)) per block of x.

        C = num_classes for a conditional model given no labels (one set of weights per class,
        for the uniform label prior), else 1.
        """
        x = self._check(x)
        y_all = self._labels(len(x), label)
        # Bound the decoder output held at once to ~2^24 numbers (and eval_rows rows).
        per_output = self.numel * self.likelihood.params_per_dim
        rows = max(1, min(self.config.eval_rows, 2**24 // per_output))
        per_block = max(1, min(len(x), 256, rows))
        chunk = max(1, rows // per_block)
        for start in range(0, len(x), per_block):
            x_int = self.rescale.to_internal(x[start : start + per_block])
            b = len(x_int)
            if y_all is not None:
                choices = [y_all[start : start + b]]
            elif self.conditional:
                choices = [torch.full((b,), y, device=self.device) for y in range(self.config.num_classes)]
            else:
                choices = [None]
            per_label = []
            for y in choices:
                mu, logvar = self._posterior(x_int, y)
                parts = []
                for done in range(0, k, chunk):
                    eps = normal((min(chunk, k - done), b, self.config.latent_dim), generator, self.device)
                    rec, kl, _ = self._importance_terms(x_int, y, mu, logvar, eps)
                    parts.append(rec - kl)
                per_label.append(torch.cat(parts))
            yield slice(start, start + b), torch.stack(per_label)

    @torch.no_grad()
    def log_prob(
        self,
        x: torch.Tensor,
        *,
        k: int | None = None,
        generator: torch.Generator | None = None,
        label: int | torch.Tensor | None = None,
    ) -> torch.Tensor:
        """IWAE estimate of log p(x) per example, in nats, with `k` (default `config.iwae_k`) samples.

        A lower bound in expectation that tightens as k grows. Without a `generator` the
        noise comes from a fixed seed, so repeated evaluations agree and the global RNG is untouched.
        Conditional models: `label` (an int or one per example) gives log p(x|y); without it,
        log 1/C sum_y p(x|y) from k samples per class (C times the cost).
        """
        k = k or self.config.iwae_k
        generator = generator or self.evaluation_generator()
        out = torch.empty(len(x), device=self.device)
        with self.inference():
            for rows, log_w in self._log_weights(x, k, generator, label):
                # Averaging all C * k weights is the mean over classes of the per-class estimates.
                out[rows] = torch.logsumexp(log_w.flatten(0, 1), 0) - math.log(log_w.shape[0] * k)
        return out

    @torch.no_grad()
    def elbo(
        self,
        x: torch.Tensor,
        *,
        samples: int = 1,
        generator: torch.Generator | None = None,
        label: int | torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Evidence lower bound per example, in nats (Monte Carlo over `samples` posterior draws).

        Conditional models without `label`: log 1/C sum_y exp(ELBO(x|y)), still a bound on log p(x)
        since every p(x|y) >= exp(ELBO(x|y)).
        """
        generator = generator or self.evaluation_generator()
        out = torch.empty(len(x), device=self.device)
        with self.inference():
            for rows, log_w in self._log_weights(x, samples, generator, label):
                out[rows] = torch.logsumexp(log_w.mean(1), 0) - math.log(log_w.shape[0])
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
        label: int | torch.Tensor | None = None,
    ) -> torch.Tensor:
        """`n` samples (n, *data_shape) in dataset units; `mean=True` gives E[x|z] instead of a draw.

        `label` (an int or n of them) picks the classes of a conditional model; random
        (uniform) classes when None.
        """
        if n < 0:
            raise GenzooError(f"number of samples must be >= 0, got {n}")
        if temperature <= 0:
            raise GenzooError(f"temperature must be > 0, got {temperature}")
        y = self._labels(n, label)
        with self.inference():
            z = self._prior_sample(n, generator, temperature)
            if self.conditional and y is None:
                y = uniform_class_indices(n, self.config.num_classes, generator, self.device)
            return self._decode(z, y, mean=mean, generator=generator)

    @torch.no_grad()
    def encode(
        self, x: torch.Tensor, *, label: int | torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior q(z|x[, y]): (mean, log-variance), each (N, latent_dim)."""
        x = self._check(x)
        y = self._required_labels(len(x), label)
        with self.inference():
            return self._posterior(self.rescale.to_internal(x), y)

    # ---- bits-back coding -----------------------------------------------------------------
    def _check_bits_back(self) -> None:
        if self.conditional:
            raise GenzooError(
                "bits-back coding needs an unconditional VAE (this one is conditional=true): the "
                "decoder would need each example's label"
            )
        if not self.likelihood.discrete:
            raise GenzooError(
                f"bits-back coding needs discrete data and likelihood; this VAE's is '{self.likelihood_name}'"
            )
        if self.config.prior != "normal":
            raise GenzooError(
                f"bits-back coding needs the normal prior N(0, I); this VAE's prior is '{self.config.prior}'"
            )

    @torch.no_grad()
    def latent_posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z|x) for data (N, *data_shape) in dataset units: (mean, std), each (N, latent_dim), float32.

        What bits-back coding pops latents with; GenzooError where it cannot code (see `bits_back`).
        """
        self._check_bits_back()
        mu, logvar = self.encode(x)
        return mu, torch.exp(0.5 * logvar)

    @torch.no_grad()
    def observation_probs(self, z: torch.Tensor) -> torch.Tensor:
        """p(x_d = level | z) for latents (N, latent_dim): (N, D, levels) float32, dimension d in the
        flattened data order, the levels low..high; what bits-back coding pushes data with."""
        self._check_bits_back()
        with self.inference():
            params = self._decode_params(z.to(self.device, torch.float32), None)
            if self.likelihood.name == "bernoulli":
                logit = params[:, 0]
                probs = torch.stack([torch.sigmoid(-logit), torch.sigmoid(logit)], 1)
            else:  # categorical and discretized logistic: (N, levels, *data_shape)
                probs = self.likelihood.probs(params)
        return probs.flatten(2).transpose(1, 2).contiguous()

    @torch.no_grad()
    def decode(
        self,
        z: torch.Tensor,
        *,
        mean: bool = True,
        generator: torch.Generator | None = None,
        label: int | torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Latents (N, latent_dim) -> data (N, *data_shape) in dataset units (the mean, or a draw)."""
        y = self._required_labels(len(z), label)
        with self.inference():
            return self._decode(z.to(self.device, torch.float32), y, mean=mean, generator=generator)

    def _decode(
        self, z: torch.Tensor, y: torch.Tensor | None, *, mean: bool, generator: torch.Generator | None
    ) -> torch.Tensor:
        params = self._decode_params(z, y)
        if mean:
            return self.rescale.mean_to_data(self.likelihood.mean(params))
        return self.rescale.to_data(self.likelihood.sample(params, generator))

    @torch.no_grad()
    def reconstruct(
        self,
        x: torch.Tensor,
        *,
        mean: bool = True,
        generator: torch.Generator | None = None,
        label: int | torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Decode the posterior mean of each example."""
        z = self.encode(x, label=label)[0]
        return self.decode(z, mean=mean, generator=generator, label=label)

    # ---- anomaly scores -------------------------------------------------------------------
    @torch.no_grad()
    def anomaly_map(self, x: torch.Tensor) -> torch.Tensor:
        """-log p(x_d | z = posterior mean) per dimension, in nats: the reconstruction error in the
        model's own likelihood. A conditional model is read with the class that explains x best."""
        x_int = self.rescale.to_internal(self._check(x))
        per_dim_jacobian = self.rescale.log_det(1) if not self.likelihood.discrete else 0.0
        labels = range(self.config.num_classes) if self.conditional else [None]
        best = None
        with self.inference():
            for label in labels:
                y = None if label is None else torch.full((len(x),), label, device=self.device)
                params = self._decode_params(self._posterior(x_int, y)[0], y)
                nll = -(self.likelihood.log_prob_per_dim(params, x_int) + per_dim_jacobian)
                if best is None:
                    best = nll
                else:  # keep each example's map under the class whose total is lowest
                    better = nll.flatten(1).sum(1) < best.flatten(1).sum(1)
                    best = torch.where(better.view(-1, *[1] * (nll.dim() - 1)), nll, best)
        return best

    def anomaly_score(self, x: torch.Tensor, kind: str) -> torch.Tensor:
        if kind == "reconstruction":
            return self.anomaly_map(x).flatten(1).sum(1)
        return super().anomaly_score(x, kind)

    @torch.no_grad()
    def interpolate(
        self, x1: torch.Tensor, x2: torch.Tensor, steps: int = 8, *, label: int | torch.Tensor | None = None
    ) -> torch.Tensor:
        """Decoded means along the straight line between the posterior means of x1 and x2.

        x1, x2: one example (*data_shape) -> (steps, *data_shape); or a batch (N, ...) -> (steps, N, ...).
        A conditional model encodes both ends and decodes the path with `label`.
        """
        single = tuple(x1.shape) == self.shape
        x1, x2 = (x1.unsqueeze(0), x2.unsqueeze(0)) if single else (x1, x2)
        y = self._required_labels(len(x1), label)
        z1, z2 = self.encode(x1, label=y)[0], self.encode(x2, label=y)[0]
        t = torch.linspace(0, 1, steps, device=self.device).view(-1, 1, 1)
        z = (1 - t) * z1 + t * z2  # (steps, N, D)
        path_labels = None if y is None else y.repeat(steps)  # row s * N + j decodes example j
        out = self.decode(z.flatten(0, 1), label=path_labels).view(steps, len(z1), *self.shape)
        return out[:, 0] if single else out


@dataclass
class IWAEConfig(VAEConfig):
    objective: Objective = "iwae"
    train_samples: int = 5  # Burda et al. report k = 5 and 50; k multiplies the decoder's cost


@register_model
class IWAE(VAE):
    """Importance-weighted autoencoder (Burda et al. 2016): the VAE trained on the k-sample IWAE bound."""

    Config = IWAEConfig
    name = "iwae"
    presets = {
        "binarized-mnist": Preset(
            "mnist-binary",
            {"max_steps": 5000, "lr_decay_steps": 5000},
            "test NLL 93.1 nats per image, IWAE estimate (README, Results: Binarized MNIST-10k)",
        )
    }


def _gen_device(generator: torch.Generator | None, model: nn.Module) -> torch.device:
    return generator.device if generator is not None else next(model.parameters()).device

"""Deep belief networks (Hinton, Osindero & Teh 2006): restricted Boltzmann machines stacked and
trained greedily, with log-likelihoods from annealed importance sampling (Salakhutdinov & Murray 2008).

RBM. Visible units v (V of them), binary hidden units h (H), weights W, biases b (visible), c (hidden):

    binomial visibles, N trials (N = 1: Bernoulli)  E(v, h) = -b.v - c.h - v.W.h - sum_i log C(N, v_i)
    categorical (softmax) visibles, one-hot v_i     E(v, h) = -b.v - c.h - v.W.h   (W: V * L rows)
    Gaussian visibles, unit variance                E(v, h) = |v - b|^2 / 2 - c.h - v.W.h

    p(h_j = 1 | v) = sigmoid(c_j + (v W)_j);  v_i | h: Binomial(N, sigmoid(.)), softmax(.) or N(., 1)
    of the field b_i + (W h)_i;  F(v) = -log(visible factor) - sum_j softplus(c_j + (v W)_j), p(v) = exp(-F(v)) / Z

Training: CD-k (Hinton 2002) or PCD (Tieleman 2008). d log p(v) / d theta = -dF(v)/d theta + E_model[dF/d theta];
the model expectation is replaced by negatives v-: k Gibbs steps from the data (CD-k) or from persistent
chains that carry on across updates (PCD). The surrogate loss

    mean F(v_data) - mean F(v-.detach())

has exactly that gradient (negated), so the ordinary Trainer and optimizers drive it. Its value is not a
likelihood; `pseudo_nll` (discrete visibles: exact at validation, a cheap random-subset estimate
during training) and `recon` are logged beside it for monitoring.

DBN. RBM l models the hidden activity of RBM l-1 (binary samples, or probabilities with
`propagate="mean"`). The generative model is the top RBM, then directed sigmoid layers down to the
data; sampling runs a Gibbs chain in the top RBM (`sample_steps`, `--steps`) and one down pass.

Greedy training goes through the normal Trainer with one optimizer over all weights: a step counter
(a buffer, so it is checkpointed and resumes exactly) picks the layer. Layer l trains on steps
[l * layer_steps, (l + 1) * layer_steps); the top layer on every step after that. Only the active
layer gets gradients, and torch optimizers skip parameters whose gradient is None, so the layers
below stay frozen. `train_defaults` set max_steps = layers * layer_steps (an even split); a longer
run trains the top RBM longer, a shorter one leaves upper layers untrained (the `layer` log says
which is training). `phases()` would not do: the Trainer steps every phase on every step.

Data. `visible="auto"` picks, by the data's number of levels L: Bernoulli units for binary data;
categorical (softmax) units for 3..32 levels (Salakhutdinov, Mnih & Hinton 2007), so each digits
pixel is a 17-way unit; binomial units with N = L - 1 beyond (8-bit images; Teh & Hinton 2001);
Gaussian units for continuous data. Discrete units make p(x) a distribution over the data's own
levels, so `nll` compares with the other families' (binarizing would measure another data set).
Binomial units fit digits badly: one binomial per pixel cannot be both "mostly 0" and "else 5..16"
given h (about 175 nats per test image against about 94 for softmax units, at equal training).
Gaussian units see standardised data (mean and std of the first training batch); densities are
reported in dataset units, and on discrete data (`visible="gaussian"` on digits) the inputs are
dequantized with uniform noise over a level's bin and `log_prob` is the Jensen bound
E_u log p(x + u) + D log(bin width), as for the flows.

Likelihood (`log_prob_kind = "estimate"`). log Z of the top RBM comes from AIS: a base-rate model
(W = 0, visible biases from the training data's marginals, tracked while the layer trains), a linear
schedule of `ais_betas` inverse temperatures, `ais_chains` chains, log Z = log Z_A + log mean exp(log w);
it is cached until the weights change. One layer (an RBM): log p(v) = -F(v) - log Z, exact given Z.
Deeper: with h ~ q(h|v) (the recognition weights, bottom-up) and the top RBM's free energy,

    log w = sum_l [log p(x_l | x_l+1) - log q(x_l+1 | x_l)] - F_top(x_top-1) - log Z_top,

`elbo` averages log w (the variational bound of Salakhutdinov & Murray 2008, sec. 4); `log_prob`
is the importance-weighted log mean exp over `eval_samples` draws, a tighter bound that converges to
log p(v). AIS's log Z tends to come out low (Jensen), so all these estimates lean optimistic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from genzoo.errors import GenzooError
from genzoo.models.base import GenerativeModel, ModelConfig, Preset, split_batch
from genzoo.models.registry import register_model
from genzoo.nn.likelihoods import Rescale, normal, uniform
from genzoo.progress import track

_LOG_2PI = math.log(2 * math.pi)
UNIT_TYPES = ("binomial", "categorical", "gaussian")  # what an RBM's visible units can be
VISIBLE_TYPES = ("auto", "bernoulli", *UNIT_TYPES)  # what the config accepts
MAX_CATEGORICAL_LEVELS = 32  # "auto" uses binomial units beyond (softmax units need V * L * H weights)


@dataclass
class DBNConfig(ModelConfig):
    hidden: tuple[int, ...] = (256, 256)  # hidden units per layer, bottom to top; one entry = an RBM
    visible: Literal["auto", "bernoulli", "categorical", "binomial", "gaussian"] = (
        "auto"  # auto | bernoulli (2 levels) | categorical | binomial (discrete) | gaussian
    )
    cd_k: int = 1  # Gibbs steps per negative sample
    # PCD: negatives from persistent chains, not from the data. CD-1 measured better on digits in
    # equal steps (93.4 vs 96.0 nats with a cosine schedule; PCD at a constant lr: 102 for one RBM).
    persistent: bool = False
    pcd_chains: int = 100  # persistent chains per layer
    propagate: Literal["sample", "mean"] = (
        "sample"  # what layer l + 1 trains on: "sample" (binary h) or "mean" (p(h|v))
    )
    layer_steps: int = 2000  # optimizer steps of each layer below the top (the top trains on the rest)
    init_std: float = 0.01  # initial weight std (Hinton 2010, "A practical guide", sec. 8)
    sample_steps: int = 1000  # Gibbs steps in the top RBM per sample
    # AIS: intermediate distributions (linear schedule, endpoints included). On trained digits models
    # 2000 and 8000 agreed within 0.1 nats; S&M used 14,500 for 784 x 500 RBMs.
    ais_betas: int = 5000
    ais_chains: int = 100
    eval_samples: int = 100  # posterior draws per example in log_prob / elbo of a DBN with >= 2 layers


class AISResult(NamedTuple):
    log_z: float
    log_weights: torch.Tensor  # (chains,) float64: log Z = log Z_base + log mean exp(log_weights)


# ---- noise (all of it from `generator`, so sampling is seeded and leaves the global RNG alone) ----
def _bernoulli(p: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    return (uniform(p.shape, generator, p.device) < p).to(p.dtype)


def _binomial(trials: int, p: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    if trials == 1:
        return _bernoulli(p, generator)
    source = generator.device if generator is not None else p.device
    count = torch.full(p.shape, float(trials), device=source)
    return torch.binomial(count, p.to(source), generator=generator).to(p.device)


def _log_binom(trials: int, k: torch.Tensor) -> torch.Tensor:
    """log C(N, k), elementwise."""
    n = torch.tensor(float(trials + 1), dtype=k.dtype, device=k.device)
    return torch.lgamma(n) - torch.lgamma(k + 1) - torch.lgamma(n - k)


def _all_states(n_units: int, base: int, start: int, stop: int) -> torch.Tensor:
    """Configurations start..stop-1 of `n_units` units with values 0..base-1 (mixed-radix digits)."""
    index = torch.arange(start, stop, dtype=torch.long).unsqueeze(1)
    powers = base ** torch.arange(n_units, dtype=torch.long)
    return ((index // powers) % base).double()


# ---- one RBM ---------------------------------------------------------------------------------
class RBM(nn.Module):
    """An RBM with binary hidden units and one kind of visible unit, each taking `levels` values:

    - "binomial": counts 0..levels-1 (N = levels - 1 trials; levels = 2 is the Bernoulli RBM);
    - "categorical": a softmax unit per variable, fed as one-hot vectors (W has V * levels rows);
    - "gaussian": real values, unit variance (`levels` unused).

    `width` is the length of the vectors the RBM sees (V, or V * levels for categorical units).
    Buffers: `data_mean`/`data_count` track the training data's marginals (AIS base rates; a count of
    0 means the layer has not trained yet); `chains` are the PCD chains (empty for CD-k).
    """

    def __init__(
        self,
        n_visible: int,
        n_hidden: int,
        *,
        visible: str = "binomial",
        levels: int = 2,
        chains: int = 0,
        init_std: float = 0.01,
    ):
        super().__init__()
        if visible not in UNIT_TYPES:
            raise GenzooError(f"RBM visible units must be one of {', '.join(UNIT_TYPES)}, got '{visible}'")
        if n_visible < 1 or n_hidden < 1 or (visible != "gaussian" and levels < 2):
            raise GenzooError("an RBM needs n_visible, n_hidden >= 1 and discrete units with >= 2 levels")
        self.visible, self.n_visible = visible, n_visible
        self.levels = levels if visible != "gaussian" else 0
        width = n_visible * levels if visible == "categorical" else n_visible
        self.weight = nn.Parameter(torch.randn(width, n_hidden) * init_std)
        self.visible_bias = nn.Parameter(torch.zeros(width))
        self.hidden_bias = nn.Parameter(torch.zeros(n_hidden))
        self.register_buffer("data_mean", torch.zeros(width))
        self.register_buffer("data_count", torch.zeros((), dtype=torch.long))
        self.register_buffer("chains", torch.zeros(chains, width))

    @property
    def width(self) -> int:
        return self.weight.shape[0]

    @property
    def n_hidden(self) -> int:
        return self.weight.shape[1]

    @property
    def trials(self) -> int:
        return self.levels - 1

    def _grouped(self, t: torch.Tensor) -> torch.Tensor:
        """(..., V * K) -> (..., V, K) for categorical units."""
        return t.unflatten(-1, (self.n_visible, self.levels))

    # ---- energy and conditionals -------------------------------------------------------------
    def _visible_log_factor(self, v: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """log of the visible part of exp(-E) per row: b.v (+ log C(N, v)), or -|v - b|^2 / 2."""
        if self.visible == "gaussian":
            return -0.5 * (v - bias).pow(2).sum(1)
        out = v @ bias
        if self.visible == "binomial" and self.trials > 1:
            out = out + _log_binom(self.trials, v).sum(1)
        return out

    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        """F(v) per row: p(v) = exp(-F(v)) / Z."""
        hidden = F.softplus(v @ self.weight + self.hidden_bias).sum(1)
        return -(self._visible_log_factor(v, self.visible_bias) + hidden)

    def hidden_probs(self, v: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(v @ self.weight + self.hidden_bias)

    def visible_field(self, h: torch.Tensor) -> torch.Tensor:
        """b + W h: the logits (binomial, categorical) or means (Gaussian) of v given h."""
        return self.visible_bias + h @ self.weight.T

    def visible_mean(self, field: torch.Tensor) -> torch.Tensor:
        if self.visible == "gaussian":
            return field
        if self.visible == "categorical":
            return self._grouped(field).softmax(-1).flatten(-2)
        return self.trials * torch.sigmoid(field)

    def sample_visible(self, field: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if self.visible == "gaussian":
            return field + normal(field.shape, generator, field.device)
        if self.visible == "categorical":  # inverse CDF: one uniform per variable
            cdf = self._grouped(field).softmax(-1).cumsum(-1)
            u = uniform((*cdf.shape[:-1], 1), generator, field.device)
            k = (cdf < u).sum(-1).clamp(max=self.levels - 1)
            return F.one_hot(k, self.levels).flatten(-2).to(field.dtype)
        return _binomial(self.trials, torch.sigmoid(field), generator)

    def visible_log_prob(self, v: torch.Tensor, field: torch.Tensor) -> torch.Tensor:
        """log p(v | h) per row, given field = b + W h."""
        if self.visible == "gaussian":
            return -0.5 * ((v - field).pow(2) + _LOG_2PI).sum(1)
        if self.visible == "categorical":
            return (v * self._grouped(field).log_softmax(-1).flatten(-2)).sum(1)
        out = (v * field - self.trials * F.softplus(field)).sum(1)
        return out if self.trials == 1 else out + _log_binom(self.trials, v).sum(1)

    def gibbs(self, v: torch.Tensor, steps: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """`steps` rounds of h ~ p(h|v), v ~ p(v|h)."""
        for _ in range(steps):
            h = _bernoulli(self.hidden_probs(v), generator)
            v = self.sample_visible(self.visible_field(h), generator)
        return v

    # ---- training --------------------------------------------------------------------------------
    def contrastive_loss(self, v_data: torch.Tensor, v_model: torch.Tensor) -> torch.Tensor:
        """Its gradient is minus the CD/PCD gradient: -(<-dF/dtheta>_data - <-dF/dtheta>_model)."""
        return self.free_energy(v_data).mean() - self.free_energy(v_model.detach()).mean()

    @torch.no_grad()
    def negatives(self, v_data: torch.Tensor, k: int, *, persistent: bool) -> torch.Tensor:
        """k Gibbs steps from the persistent chains (advancing them) or, for CD-k, from the data."""
        if persistent and len(self.chains):
            self.chains.copy_(self.gibbs(self.chains, k))
            return self.chains.clone()
        return self.gibbs(v_data, k)

    @torch.no_grad()
    def observe(self, v: torch.Tensor) -> None:
        """Add a training batch to the tracked marginals. The first batch also sets the visible biases
        to the data's marginals (Hinton 2010, sec. 8) and seeds the persistent chains from them."""
        mean = v.mean(0)
        if int(self.data_count) == 0:
            self.visible_bias.copy_(self._bias_for_mean(mean))
            if len(self.chains):
                self.chains.copy_(self.sample_visible(self.visible_bias.expand_as(self.chains)))
        self.data_count += len(v)
        self.data_mean += (mean - self.data_mean) * (len(v) / float(self.data_count))

    def _bias_for_mean(self, mean: torch.Tensor) -> torch.Tensor:
        """Visible biases of the independent model (W = 0) with these means, kept off the boundary."""
        eps = 1e-3
        if self.visible == "gaussian":
            return mean.clone()
        if self.visible == "categorical":
            return self._grouped(mean).clamp(min=eps).log().flatten(-2)
        return torch.logit((mean / self.trials).clamp(eps, 1 - eps))

    def base_rate_bias(self) -> torch.Tensor:
        """AIS base model: the training data's marginals, or this RBM's own biases before training."""
        if int(self.data_count) == 0:
            return self.visible_bias.detach().clone()
        return self._bias_for_mean(self.data_mean)

    # ---- monitoring ----------------------------------------------------------------------------
    @torch.no_grad()
    def reconstruction_error(self, v: torch.Tensor) -> torch.Tensor:
        """Mean squared error per variable of the mean-field reconstruction (binomial counts as
        fractions of N; categorical units as one-hot vectors, the Brier score)."""
        rec = self.visible_mean(self.visible_field(self.hidden_probs(v)))
        scale = float(self.trials) if self.visible == "binomial" else 1.0
        return ((v - rec) / scale).pow(2).sum(1).mean() / self.n_visible

    @torch.no_grad()
    def pseudo_log_likelihood(self, v: torch.Tensor, variables: torch.Tensor | None = None) -> torch.Tensor:
        """sum_i log p(v_i | v_-i) per row, over the visible variables (discrete units only).

        With `variables`, only those are scored and the sum scaled by V / len(variables): an unbiased
        estimate at a fraction of the cost. Each conditional is exact, over all `levels` values of v_i.
        """
        if self.visible == "gaussian":
            raise GenzooError("the pseudo-likelihood is defined here for discrete visible units only")
        if variables is None:
            variables = torch.arange(self.n_visible, device=v.device)
        pre = v @ self.weight + self.hidden_bias  # (B, H)
        k = torch.arange(self.levels, dtype=v.dtype, device=v.device)  # the values each v_i can take
        total = torch.zeros(len(v), dtype=v.dtype, device=v.device)
        chunk = max(1, 2**22 // (len(v) * self.levels * self.n_hidden))  # bounds the (B, D, K, H) tensor
        for part in variables.split(chunk):
            if self.visible == "categorical":
                w = self._grouped(self.weight.T).permute(1, 2, 0)[part]  # (D, K, H)
                b = self._grouped(self.visible_bias)[part]  # (D, K)
                current = self._grouped(v)[:, part].argmax(-1)  # (B, D)
                w_now = w[torch.arange(len(part), device=v.device), current]  # (B, D, H)
                pre_k = (pre[:, None, :] - w_now).unsqueeze(2) + w  # (B, D, K, H): v_i set to each k
                score = b + F.softplus(pre_k).sum(-1)
            else:
                current = v[:, part].round()
                delta = k - current.unsqueeze(-1)  # (B, D, K)
                pre_k = pre[:, None, None, :] + delta.unsqueeze(-1) * self.weight[part][None, :, None, :]
                score = _log_binom(self.trials, k) + self.visible_bias[part].unsqueeze(-1) * k
                score = score + F.softplus(pre_k).sum(-1)
            index = current.long().unsqueeze(-1)
            total += score.log_softmax(-1).gather(-1, index).squeeze(-1).sum(1)
        return total * (self.n_visible / len(variables))

    # ---- the partition function -------------------------------------------------------------------
    def _log_visible_sum(self, field: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """log sum_v exp(visible log factor(v, bias) + v.(field - bias)) per row, in closed form."""
        if self.visible == "gaussian":
            return 0.5 * self.n_visible * _LOG_2PI + 0.5 * (field.pow(2).sum(-1) - bias.pow(2).sum(-1))
        if self.visible == "categorical":
            return torch.logsumexp(self._grouped(field), -1).sum(-1)
        return self.trials * F.softplus(field).sum(-1)

    @torch.no_grad()
    def ais_log_partition(
        self, betas: int = 10000, chains: int = 100, *, generator: torch.Generator | None = None
    ) -> AISResult:
        """AIS estimate of log Z (Salakhutdinov & Murray 2008, sec. 3; Neal 2001).

        p_beta(v) ~ p_A(v)^(1 - beta) * sum_h exp(-beta E(v, h)): beta = 0 is the base-rate model,
        beta = 1 this RBM. Each chain starts with an exact draw from p_A and collects
        log p*_beta_k(v_k) - log p*_beta_k-1(v_k), moving v by one Gibbs sweep that leaves p_beta_k invariant.
        """
        if betas < 2 or chains < 1:
            raise GenzooError(f"AIS needs betas >= 2 and chains >= 1, got {betas} and {chains}")
        base = self.base_rate_bias()
        b, w, c = self.visible_bias, self.weight, self.hidden_bias
        v = self.sample_visible(base.expand(chains, -1), generator)
        log_w = torch.zeros(chains, dtype=torch.float64, device=w.device)
        schedule = torch.linspace(0.0, 1.0, betas, dtype=torch.float64).tolist()
        for k in range(1, betas):
            before, beta = schedule[k - 1], schedule[k]
            pre = v @ w + c
            visible = self._visible_log_factor(v, b) - self._visible_log_factor(v, base)
            hidden = (F.softplus(beta * pre) - F.softplus(before * pre)).sum(1)
            log_w += ((beta - before) * visible + hidden).double()
            if k < betas - 1:  # the transition at beta_k, for the next increment
                h = _bernoulli(torch.sigmoid(beta * pre), generator)
                v = self.sample_visible((1 - beta) * base + beta * (b + h @ w.T), generator)
        log_z_base = float(self._log_visible_sum(base.double(), base.double())) + self.n_hidden * math.log(2)
        log_mean_w = float(torch.logsumexp(log_w, 0)) - math.log(chains)
        return AISResult(log_z_base + log_mean_w, log_w)

    @torch.no_grad()
    def exact_log_partition(self, max_states: int = 2**22) -> float:
        """log Z by enumerating the smaller layer (in float64): 2^H hidden or levels^V visible states."""
        w, b, c = self.weight.double(), self.visible_bias.double(), self.hidden_bias.double()
        hidden_states = 2**self.n_hidden
        visible_states = math.inf if self.visible == "gaussian" else self.levels**self.n_visible
        if min(hidden_states, visible_states) > max_states:
            raise GenzooError(
                f"an RBM with {self.n_visible} visible and {self.n_hidden} hidden units is too large to "
                f"enumerate (more than {max_states} states); use ais_log_partition"
            )
        parts = []
        if hidden_states <= visible_states:  # sum over v in closed form for each h
            for start in range(0, hidden_states, 2**16):
                h = _all_states(self.n_hidden, 2, start, min(start + 2**16, hidden_states)).to(w.device)
                parts.append(torch.logsumexp(h @ c + self._log_visible_sum(b + h @ w.T, b), 0))
        else:  # sum over h in closed form for each v: -F(v)
            for start in range(0, visible_states, 2**16):
                v = _all_states(self.n_visible, self.levels, start, min(start + 2**16, visible_states))
                if self.visible == "categorical":
                    v = F.one_hot(v.long(), self.levels).flatten(1).double()
                v = v.to(w.device)
                log_factor = self._visible_log_factor(v, b)
                parts.append(torch.logsumexp(log_factor + F.softplus(v @ w + c).sum(1), 0))
        return float(torch.logsumexp(torch.stack(parts), 0))


# ---- the model ---------------------------------------------------------------------------------
def resolve_visible(visible: str, levels: int | None) -> str:
    """The layer-0 unit type (one of UNIT_TYPES) for the config's `visible` and the data's levels."""
    if visible not in VISIBLE_TYPES:
        raise GenzooError(f"unknown visible type '{visible}'; choose one of: {', '.join(VISIBLE_TYPES)}")
    if visible == "auto":
        if levels is None:
            return "gaussian"
        return "categorical" if 2 < levels <= MAX_CATEGORICAL_LEVELS else "binomial"
    if visible == "gaussian":
        return visible
    if levels is None or levels < 2:
        raise GenzooError(
            f"visible='{visible}' needs discrete data; use visible='gaussian' for continuous data"
        )
    if visible == "bernoulli":
        if levels != 2:
            raise GenzooError(
                f"visible='bernoulli' needs 2-level data, these have {levels}; use 'categorical' or "
                "'binomial' (or 'auto'), or binarized data such as mnist-binary"
            )
        return "binomial"
    return visible


def _weights_key(module: nn.Module) -> tuple:
    """Changes whenever a parameter or buffer is replaced or modified in place (optimizer steps included)."""
    return tuple((t.data_ptr(), t._version) for t in (*module.parameters(), *module.buffers()))


BINARIZED_MNIST_AIS = {"ais_betas": 20000, "ais_chains": 100}


@register_model
class DBN(GenerativeModel):
    """Deep belief network: RBMs stacked greedily (CD-k / PCD), log-likelihood by AIS."""

    reports_bound = True

    Config = DBNConfig
    name = "dbn"
    family = "dbn"
    modalities = ("image", "vector")
    log_prob_kind = "estimate"
    train_defaults = {
        "lr": 1e-3,
        "batch_size": 64,
        "max_steps": 4000,  # = len(hidden) * layer_steps: an even split between the two layers
        # Constant: a run-long cosine would give the top layer only the small learning rates
        # (measured on digits: 94.6 nats against 93.4).
        "lr_schedule": "constant",
        "eval_every": 500,
    }
    # The binarized MNIST figures estimate log Z with 20,000 AIS temperatures (Salakhutdinov &
    # Murray used 14,500) over 100 chains.
    presets = {
        "binarized-mnist": Preset(
            "mnist-binary",
            {"hidden": [500, 1000], "layer_steps": 10000, "max_steps": 20000, **BINARIZED_MNIST_AIS},
            "test NLL 92.6 nats per image, AIS (README, Results: Binarized MNIST-10k)",
        ),
        "rbm": Preset(
            "mnist-binary",
            {"hidden": [500], "layer_steps": 10000, "max_steps": 10000, **BINARIZED_MNIST_AIS},
            "one RBM of 500 hidden units: test NLL 131.0 nats per image, AIS (README, Results: Binarized MNIST-10k)",
        ),
    }

    @classmethod
    def settings_for_steps(cls, steps: int, settings: dict[str, Any]) -> dict[str, Any]:
        """An even split between the layers, as the defaults have: else the upper layers never train."""
        layers = len(settings.get("hidden", cls.Config().hidden))
        return {"layer_steps": max(1, steps // layers)}

    def __init__(self, config: DBNConfig):
        super().__init__(config)
        c = config
        if not c.hidden or min(c.hidden) < 1:
            raise GenzooError(f"hidden must list at least one layer size >= 1, got {c.hidden}")
        if c.cd_k < 1 or c.pcd_chains < 1 or c.layer_steps < 1:
            raise GenzooError("cd_k, pcd_chains and layer_steps must be >= 1")
        if c.propagate not in ("sample", "mean"):
            raise GenzooError(f"propagate must be 'sample' or 'mean', got '{c.propagate}'")
        if c.sample_steps < 0 or c.ais_betas < 2 or c.ais_chains < 1 or c.eval_samples < 1:
            raise GenzooError("need sample_steps >= 0, ais_betas >= 2, ais_chains >= 1 and eval_samples >= 1")
        self.shape = tuple(c.data_shape)
        self.numel = math.prod(self.shape)
        self.visible = resolve_visible(c.visible, c.data_levels)
        sizes = (self.numel, *c.hidden)
        self.rbms = nn.ModuleList(
            RBM(
                sizes[i],
                sizes[i + 1],
                visible=self.visible if i == 0 else "binomial",
                levels=(c.data_levels or 0) if i == 0 else 2,
                chains=c.pcd_chains if c.persistent else 0,
                init_std=c.init_std,
            )
            for i in range(len(c.hidden))
        )
        # Gaussian visibles see (x - shift) / scale, set from the first training batch.
        self.register_buffer("shift", torch.zeros(self.numel))
        self.register_buffer("scale", torch.ones(self.numel))
        self.register_buffer("steps_seen", torch.zeros((), dtype=torch.long))
        self._log_z_cache: dict[tuple, float] = {}

    # ---- data <-> layer-0 units -------------------------------------------------------------------
    def _check(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[1:]) != self.shape:
            raise GenzooError(
                f"DBN expects data of shape (N, {', '.join(map(str, self.shape))}), got {tuple(x.shape)}"
            )
        return x.to(self.device, torch.float32).flatten(1)

    def _bin_width(self) -> float | None:
        c = self.config
        return (c.data_high - c.data_low) / (c.data_levels - 1) if c.data_levels else None

    def _to_units(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Flat data -> layer-0 units: level k as a count or one-hot, or standardised (dequantized) values."""
        c = self.config
        if self.visible != "gaussian":
            top = c.data_levels - 1
            k = ((x - c.data_low) * (top / (c.data_high - c.data_low))).round().clamp(0, top)
            if self.visible == "categorical":
                return F.one_hot(k.long(), c.data_levels).flatten(1).float()
            return k
        if noise is not None:  # U(-1/2, 1/2) bins: dequantized discrete data
            x = x + noise * self._bin_width()
        return (x - self.shift) / self.scale

    def _to_data(self, v: torch.Tensor, *, snap: bool) -> torch.Tensor:
        """Layer-0 units (a draw, or a mean when not `snap`) -> data units."""
        c = self.config
        if self.visible == "categorical":  # level index, or its expectation for a mean
            levels = torch.arange(c.data_levels, dtype=v.dtype, device=v.device)
            v = (self.rbms[0]._grouped(v) * levels).sum(-1)
        if self.visible != "gaussian":
            x = c.data_low + v * ((c.data_high - c.data_low) / (c.data_levels - 1))
        else:
            x = v * self.scale + self.shift
            if snap and c.data_levels:
                rescale = Rescale(c.data_low, c.data_high, c.data_levels)
                x = rescale.to_data(rescale.to_internal(x))
        return x.view(len(v), *self.shape)

    def _dequantization_noise(
        self, x: torch.Tensor, generator: torch.Generator | None
    ) -> torch.Tensor | None:
        if self.visible == "gaussian" and self.config.data_levels:
            return uniform(x.shape, generator, x.device) - 0.5
        return None

    def _log_det(self) -> float:
        """log |dv/dx| of the map into layer-0 units, plus D log(bin width) for dequantized data."""
        if self.visible != "gaussian":
            return 0.0  # discrete units are the data's levels, one to one
        log_det = -float(self.scale.double().log().sum())
        if self.config.data_levels:  # each level owns a bin of this width (metrics.likelihood)
            log_det += self.numel * math.log(self._bin_width())
        return log_det

    # ---- training ------------------------------------------------------------------------------------
    @property
    def current_layer(self) -> int:
        """The layer the next training step trains (see the module docstring)."""
        return min(int(self.steps_seen) // self.config.layer_steps, len(self.rbms) - 1)

    def note_step(self, step: int) -> None:
        self.steps_seen.fill_(step)  # the loss counts on from here (its own count when called directly)

    def loss(self, batch: Any, phase: str = "main") -> dict[str, torch.Tensor]:
        """Contrastive-divergence surrogate for the current layer; `pseudo_nll`/`recon` for monitoring.

        Training noise comes from the global RNG (the Trainer checkpoints it). Validation (eval mode or
        no grad) uses CD-k from the data and leaves chains, counters and tracked marginals alone.
        """
        c = self.config
        x, _ = split_batch(batch)
        x = self._check(x)
        training = self.training and torch.is_grad_enabled()
        layer = self.current_layer
        rbm = self.rbms[layer]
        with torch.no_grad():
            noise = self._dequantization_noise(x, None)
            if training and self.visible == "gaussian" and int(self.rbms[0].data_count) == 0:
                x_seen = x if noise is None else x + noise * self._bin_width()
                self.shift.copy_(x_seen.mean(0))
                self.scale.copy_(x_seen.std(0).clamp(min=1e-3) if len(x) > 1 else torch.ones_like(self.scale))
            v = self._to_units(x, noise)
            for below in self.rbms[:layer]:
                p = below.hidden_probs(v)
                v = _bernoulli(p) if c.propagate == "sample" else p
        if training:
            rbm.observe(v)
            self.steps_seen += 1
        v_model = rbm.negatives(v, c.cd_k, persistent=c.persistent and training)
        out = {
            "loss": rbm.contrastive_loss(v, v_model),
            "recon": rbm.reconstruction_error(v),
            "layer": torch.tensor(float(layer)),
        }
        if rbm.visible != "gaussian" and (layer == 0 or c.propagate == "sample"):
            if training:  # every step: an unbiased estimate from 8 rows and 8 variables (cheap)
                chosen = torch.randperm(rbm.n_visible, device=v.device)[:8]
                out["pseudo_nll"] = -rbm.pseudo_log_likelihood(v[:8], chosen).mean()
            else:  # validation: exact
                out["pseudo_nll"] = -rbm.pseudo_log_likelihood(v).mean()
        return out

    # ---- sampling ---------------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        steps: int | None = None,
        mean: bool = False,
    ) -> torch.Tensor:
        """`n` samples in dataset units: `steps` (default `sample_steps`) Gibbs sweeps in the top RBM from
        its base-rate model, then a down pass; `mean=True` gives E[x | h_1] at the last step instead of a draw."""
        if n < 0:
            raise GenzooError(f"number of samples must be >= 0, got {n}")
        steps = self.config.sample_steps if steps is None else steps
        if steps < 0:
            raise GenzooError(f"steps must be >= 0, got {steps}")
        with self.inference():
            top = self.rbms[-1]
            field = top.base_rate_bias().expand(n, -1)
            v = top.sample_visible(field, generator)
            for _ in track(range(steps), unit="Gibbs step"):
                field = top.visible_field(_bernoulli(top.hidden_probs(v), generator))
                v = top.sample_visible(field, generator)
            for rbm in reversed(self.rbms[:-1]):
                field = rbm.visible_field(v)
                v = rbm.sample_visible(field, generator)
            if mean:
                v = self.rbms[0].visible_mean(field)
            return self._to_data(v, snap=not mean)

    # ---- likelihood ---------------------------------------------------------------------------------------
    @torch.no_grad()
    def log_partition(
        self,
        *,
        exact: bool = False,
        betas: int | None = None,
        chains: int | None = None,
        generator: torch.Generator | None = None,
    ) -> float:
        """log Z of the top RBM: AIS (config's betas and chains, fixed seed; cached until the weights
        change), or enumeration with `exact=True` (small RBMs only)."""
        top = self.rbms[-1]
        if exact:
            return top.exact_log_partition()
        betas, chains = betas or self.config.ais_betas, chains or self.config.ais_chains
        key = (betas, chains, _weights_key(top))
        if generator is None and key in self._log_z_cache:
            return self._log_z_cache[key]
        log_z = top.ais_log_partition(betas, chains, generator=generator or self.evaluation_generator()).log_z
        if generator is None:
            self._log_z_cache = {key: log_z}
        return log_z

    def _log_weights(
        self, x: torch.Tensor, samples: int, generator: torch.Generator | None, log_z: float | None
    ) -> torch.Tensor:
        """(k, B) importance log-weights of log p(x) (k = 1, exact given Z, for a single RBM)."""
        x = self._check(x)
        generator = generator or self.evaluation_generator()
        log_z = self.log_partition() if log_z is None else log_z
        v = self._to_units(x, self._dequantization_noise(x, generator))
        const = self._log_det() - log_z
        if len(self.rbms) == 1:
            return (const - self.rbms[0].free_energy(v)).unsqueeze(0)
        parts = []
        per_chunk = max(1, 4096 // len(v))
        for done in range(0, samples, per_chunk):
            k = min(per_chunk, samples - done)
            state = v.repeat(k, 1)
            log_w = torch.zeros(len(state), device=v.device)
            for rbm in self.rbms[:-1]:  # h ~ q(h | x) up the recognition path, scored both ways
                logits = state @ rbm.weight + rbm.hidden_bias
                h = _bernoulli(torch.sigmoid(logits), generator)
                log_q = -F.binary_cross_entropy_with_logits(logits, h, reduction="none").sum(1)
                log_w += rbm.visible_log_prob(state, rbm.visible_field(h)) - log_q
                state = h
            log_w -= self.rbms[-1].free_energy(state)
            parts.append(log_w.view(k, len(v)))
        return torch.cat(parts) + const

    @torch.no_grad()
    def log_prob(
        self,
        x: torch.Tensor,
        *,
        samples: int | None = None,
        log_z: float | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """log p(x) per example, nats: -F(v) - log Z for one layer; for deeper DBNs the importance-weighted
        estimate over `samples` (default `eval_samples`) recognition draws. `log_z` overrides AIS (e.g. an
        exact value); without a `generator` the noise has a fixed seed, so evaluations repeat."""
        with self.inference():
            log_w = self._log_weights(x, samples or self.config.eval_samples, generator, log_z)
            return torch.logsumexp(log_w, 0) - math.log(len(log_w))

    @torch.no_grad()
    def elbo(
        self,
        x: torch.Tensor,
        *,
        samples: int | None = None,
        log_z: float | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """The variational lower bound of Salakhutdinov & Murray (2008, sec. 4), averaged over `samples`
        draws (equal to `log_prob` for a single RBM)."""
        with self.inference():
            return self._log_weights(x, samples or self.config.eval_samples, generator, log_z).mean(0)


__all__ = ["DBN", "RBM", "AISResult", "DBNConfig", "resolve_visible"]

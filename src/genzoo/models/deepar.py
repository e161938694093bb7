"""DeepAR (Salinas, Flunkert, Gasthaus & Januschowski 2020): probabilistic forecasts from an
autoregressive recurrent network.

    p(x_c, ..., x_{L-1} | x_0, ..., x_{c-1}) = prod_{t >= c} prod_f p(x_{t,f} | x_<t)
    x_{t,f} = loc_f + scale_f * z_{t,f},   z_{t,f} | x_<t ~ StudentT(nu_{t,f}, mu_{t,f}, sigma_{t,f}),
    (mu_t, sigma_t, nu_t) = f(h_t),   h_t = GRU(h_{t-1}, z_{t-1})

A window (L, F) is split into a context of c steps (config `context`, half the window by default)
and the L - c steps after it, which the model learns to forecast. Each window is normalised by a
location and scale computed from its context alone, per feature: its mean, and its standard
deviation floored at `min_scale`. Mean and std rather than DeepAR's mean absolute value: the data
are min-max scaled (values near 0 make a mean-abs scale meaningless), and subtracting the mean
makes the model translation-equivariant, so a series that has drifted past the range it was
trained on is forecast as the same shape at its new level (DeepAR's scale-only normaliser would
squash a trend as the level grows). Because loc and scale read only the context, the scored steps'
density is an exact conditional density; `log_prob` adds -log(scale) per value for the change of
units, so it is a density of x in the dataset's units.

A GRU (or LSTM) reads, at each step, the previous normalised value of every feature and the
window's log-scale (DeepAR feeds its scale too: the size of a window tells how much of it is
noise), and gives each feature's next-step Student-t (default, robust to outliers) or Gaussian.
The mean is predicted as a change from the previous value, so an untrained network starts near the
naive last-value forecast, the strongest simple baseline on persistent series. The level
itself is not an input (that keeps the translation-equivariance above), nor is the position in the
window: windows start anywhere in a series, and how much of the window has been read is in the
state already. No lags either: a window of a few dozen steps is read whole by the recurrent state.

`forecast` conditions on the last c steps of a history, exactly as training did (more steps would
put the state somewhere training never took it), and rolls the horizon forward, sampling each step
and feeding it back, for many sample paths at once.

`sample` draws whole windows. The network only ever forecasts, so the first c steps come from
elsewhere: `prepare` keeps the contexts of up to `bank` training windows (evenly spread over the
split), and by default (`start="gaussian"`) a sample's context is drawn from the Gaussian with
their mean and covariance, then the network rolls the other L - c steps after it: no training value
is returned, so sample-quality and privacy measures judge the model alone. `start="data"` takes a
kept training context itself instead: more realistic windows, but their first c steps are training
data as they are. Rolling a chain past a kept context until a whole window is generated would also
return only the model's values, but shifts every window later in time: wrong for data made of
independent windows that all start alike (TimeGAN's sines start near phase 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from genzoo.errors import GenzooError
from genzoo.models.base import Preset, split_batch
from genzoo.models.registry import register_model
from genzoo.models.series import SeriesModel, SeriesModelConfig
from genzoo.nn.likelihoods import normal, uniform

MIN_SIGMA = 1e-3  # floor of a step's scale, in normalised units (keeps the density finite on flat data)


@dataclass
class DeepARConfig(SeriesModelConfig):
    data_shape: tuple[int, ...] = (24, 5)  # one window: (steps, features), as TimeGAN's sines
    context: int = 0  # steps given before the forecast starts; 0 = half the window (L // 2)
    cell: Literal["gru", "lstm"] = "gru"
    hidden: int = 64  # recurrent state size
    layers: int = 2
    dropout: float = 0.1  # between recurrent layers and before the output layer (DeepAR's 0.1)
    distribution: Literal["student-t", "gaussian"] = "student-t"  # each step's law, per feature
    min_scale: float = 0.01  # floor of a window's std, in the dataset's (min-max scaled) units
    bank: int = 1024  # training contexts kept to start samples from (see `sample`)


@register_model
class DeepAR(SeriesModel):
    """Autoregressive RNN forecaster with a Student-t per step (exact conditional NLL after the context)."""

    Config = DeepARConfig
    name = "deepar"
    family = "autoregressive"
    log_prob_kind = "exact"
    forecasts = True
    # GluonTS's DeepAR: Adam at 1e-3, gradients clipped at norm 10.
    train_defaults = {
        "lr": 1e-3,
        "batch_size": 64,
        "max_steps": 3000,
        "grad_clip": 10.0,
        "eval_every": 250,
        "keep_best": True,  # a few thousand windows overfit: keep the best validation's weights
    }
    compare_settings = {"max_steps": 1500}
    # Short series (a few hundred windows): one GRU layer of 16 units, since the default 2 x 64 was
    # overconfident (80% intervals covering 33% on nile). Chosen from three sizes tried on nile and
    # sunspots. Windows: three years of months or fifteen years read, a year or five forecast.
    presets = {
        "monthly": Preset(
            "co2",
            {"data.window": 48, "context": 36, "hidden": 16, "layers": 1, "max_steps": 1000},
            "co2 and elnino rows of the rolling-origin forecasts (README, Time series: forecasts)",
        ),
        "yearly": Preset(
            "sunspots",
            {"data.window": 20, "context": 15, "hidden": 16, "layers": 1, "max_steps": 1000},
            "sunspots and nile rows of the rolling-origin forecasts (README, Time series: forecasts)",
        ),
    }

    def __init__(self, config: DeepARConfig):
        super().__init__(config)
        c = config
        if len(c.data_shape) != 2 or c.data_shape[0] < 2 or c.data_shape[1] < 1:
            raise GenzooError(
                f"deepar needs windows of a series (steps >= 2, features >= 1), got data of shape {c.data_shape}"
            )
        self.length, self.features = c.data_shape
        self.context = c.context or self.length // 2
        checks = [
            (1 <= self.context < self.length, f"context must be in 1..{self.length - 1} (the window has "
             f"{self.length} steps), got {c.context}; or 0 for half the window"),
            (c.hidden >= 1 and c.layers >= 1, f"hidden and layers must be >= 1, got {c.hidden} and {c.layers}"),
            (0 <= c.dropout < 1, f"dropout must be in [0, 1), got {c.dropout}"),
            (c.min_scale > 0, f"min_scale must be > 0, got {c.min_scale}"),
            (c.bank >= 1, f"bank must be >= 1, got {c.bank}"),
        ]  # fmt: skip
        for ok, message in checks:
            if not ok:
                raise GenzooError(message)
        self.param_count = 3 if c.distribution == "student-t" else 2  # (mu, sigma[, nu]) per feature
        rnn = nn.GRU if c.cell == "gru" else nn.LSTM
        self.rnn = rnn(
            2 * self.features,  # previous normalised value and log-scale, per feature
            c.hidden,
            c.layers,
            batch_first=True,
            dropout=c.dropout if c.layers > 1 else 0.0,
        )
        self.drop = nn.Dropout(c.dropout)
        self.head = nn.Linear(c.hidden, self.param_count * self.features)
        self.register_buffer("bank_contexts", torch.zeros(c.bank, self.context, self.features))
        self.register_buffer("bank_size", torch.zeros((), dtype=torch.long))

    def max_horizon(self) -> int:
        return self.length - self.context

    def prepare(self, train: torch.Tensor) -> None:
        """Keep the contexts of up to `bank` training windows, evenly spread over the split (chronological
        for a long series, so every period of it is represented)."""
        train = self._check(train)[:, : self.context]
        train = train[torch.isfinite(train).flatten(1).all(1)]
        k = min(self.config.bank, len(train))
        pick = torch.linspace(0, len(train) - 1, k, device=train.device).round().long()
        self.bank_contexts[:k] = train[pick]
        self.bank_size.fill_(k)

    # ---- the network ------------------------------------------------------------------
    def _normaliser(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """loc and scale (N, 1, F) of each window from its context steps (N, c, F) alone."""
        loc = context.mean(1, keepdim=True)
        scale = context.std(1, correction=0, keepdim=True).clamp(min=self.config.min_scale)
        return loc, scale

    def _step(
        self, z: torch.Tensor, log_scale: torch.Tensor, state: Any = None
    ) -> tuple[tuple[torch.Tensor, ...], Any]:
        """Read normalised values z (N, T, F) and give the law of each next value: (mu, sigma[, nu]),
        each (N, T, F), in normalised units, and the recurrent state after the last step."""
        inputs = torch.cat([z, log_scale.expand_as(z)], -1)
        h, state = self.rnn(inputs, state)
        out = self.head(self.drop(h)).unflatten(-1, (self.param_count, self.features))
        mu = z + out[..., 0, :]  # a change from the last value: untrained, the naive forecast
        sigma = F.softplus(out[..., 1, :]) + MIN_SIGMA
        if self.param_count == 2:
            return (mu, sigma), state
        nu = 2.0 + F.softplus(out[..., 2, :])  # > 2: finite variance, so rolled paths stay tame
        return (mu, sigma, nu), state

    def step_distributions(
        self, x: torch.Tensor
    ) -> tuple[tuple[torch.Tensor, ...], torch.Tensor, torch.Tensor]:
        """The law of every scored step (c..L-1) given the steps before it: ((mu, sigma[, nu]) each
        (N, L - c, F) in normalised units, loc, scale (N, 1, F)); x_t = loc + scale * z_t."""
        x = self._check(x)
        loc, scale = self._normaliser(x[:, : self.context])
        z = (x - loc) / scale
        params, _ = self._step(z[:, :-1], scale.log())  # step t reads x_{t-1}: predicts x_1 .. x_{L-1}
        return tuple(p[:, self.context - 1 :] for p in params), loc, scale

    def _check(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or tuple(x.shape[1:]) != (self.length, self.features):
            raise GenzooError(
                f"deepar expects windows (N, {self.length}, {self.features}), got {tuple(x.shape)}"
            )
        return x.to(self.device, torch.float32)

    # ---- training and likelihood --------------------------------------------------------
    def value_log_probs(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x_{t,f} | x_<t) in the dataset's units for every scored value: (N, L - c, F)."""
        params, loc, scale = self.step_distributions(x)
        z = (self._check(x)[:, self.context :] - loc) / scale
        return log_density(params, z) - scale.log()  # the change of units x = loc + scale * z

    def loss(self, batch: Any, phase: str = "main") -> dict[str, torch.Tensor]:
        """Mean NLL per forecast value (nats), teacher-forced over steps c..L-1 of each window."""
        x, _ = split_batch(batch)
        nll = -self.value_log_probs(x).mean()
        return {"loss": nll}

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log p(x_c..x_{L-1} | x_0..x_{c-1}) in nats, (N,): the context is given, not scored."""
        return self.value_log_probs(x).sum((1, 2))

    def scored_dims(self, shape: tuple[int, ...]) -> int:
        return (shape[0] - self.context) * shape[1]

    # ---- forecasting and sampling ---------------------------------------------------------
    def _roll(self, context: torch.Tensor, horizon: int, generator: torch.Generator | None) -> torch.Tensor:
        """Sample paths (B, horizon, F) after `context` (B, c, F), each step drawn and fed back."""
        loc, scale = self._normaliser(context)
        log_scale = scale.log()
        params, state = self._step((context - loc) / scale, log_scale)  # warm the state on the context
        params = tuple(p[:, -1:] for p in params)
        steps = []
        for t in range(horizon):
            z = draw(params, generator)
            steps.append(z)
            if t + 1 < horizon:
                params, state = self._step(z, log_scale, state)
        return torch.cat(steps, 1) * scale + loc

    @torch.no_grad()
    def forecast(
        self,
        history: torch.Tensor,
        horizon: int,
        num_samples: int,
        *,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """`num_samples` paths of the `horizon` steps after each history (N, T, F): (N, S, H, F),
        from its last `context` steps (T may be longer; earlier steps are not read)."""
        limit = self.max_horizon()
        if not 1 <= horizon <= limit:
            shorter = (
                f" or a shorter context (--set context={self.length - horizon})"
                if horizon < self.length
                else ""
            )
            raise GenzooError(
                f"horizon must be in 1..{limit}, got {horizon}: deepar forecasts the {limit} steps after a "
                f"context of {self.context} in windows of {self.length}; retrain with a longer window "
                f"(--set data.window={self.context + horizon}){shorter}"
            )
        if num_samples < 1:
            raise GenzooError(f"num_samples must be >= 1, got {num_samples}")
        history = torch.as_tensor(history)
        if history.dim() != 3 or history.shape[2] != self.features:
            raise GenzooError(
                f"a history must be (N, T, {self.features}): series of {self.features} features, "
                f"got {tuple(history.shape)}"
            )
        if history.shape[1] < self.context:
            raise GenzooError(
                f"a history of {history.shape[1]} steps is too short: deepar needs at least {self.context} "
                "(its context); give a longer history"
            )
        context = history[:, -self.context :].to(self.device, torch.float32)
        if not torch.isfinite(context).all():
            raise GenzooError(
                f"the last {self.context} steps of a history hold missing or infinite values; fill them first"
            )
        n = len(context)
        if n == 0:
            return context.new_zeros(0, num_samples, horizon, self.features)
        with self.inference():
            paths = self._roll(context.repeat_interleave(num_samples, 0), horizon, generator)
        return paths.view(n, num_samples, horizon, self.features)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        start: Literal["gaussian", "data"] = "gaussian",
    ) -> torch.Tensor:
        """`n` windows (n, L, F): a context (drawn as `start` says, see the module's docstring), then
        the L - c steps the network rolls after it."""
        if n < 0:
            raise GenzooError(f"number of samples must be >= 0, got {n}")
        if start not in ("gaussian", "data"):
            raise GenzooError(f"start must be 'gaussian' or 'data', got {start!r}")
        if n == 0:
            return torch.zeros(0, self.length, self.features, device=self.device)
        kept = self.bank_contexts[: int(self.bank_size)]
        if len(kept) == 0:
            raise GenzooError(
                "this deepar has no training contexts to start samples from; train it (`genzoo train`)"
            )
        source = generator.device if generator is not None else self.device
        if start == "data":
            context = kept[torch.randint(len(kept), (n,), generator=generator, device=source).to(self.device)]
        else:
            # mean + sum_k w_k (c_k - mean) / sqrt(K - 1), w ~ N(0, I): exactly the Gaussian with the
            # kept contexts' mean and covariance, without factorising a (c F)^2 matrix.
            flat = kept.flatten(1)
            mean = flat.mean(0)
            w = normal((n, len(kept)), generator, self.device) / math.sqrt(max(len(kept) - 1, 1))
            context = (mean + w @ (flat - mean)).view(n, self.context, self.features)
        with self.inference():
            rest = self._roll(context, self.length - self.context, generator)
        return torch.cat([context, rest], 1)


# ---- the per-step law, in normalised units ------------------------------------------------
def log_density(params: tuple[torch.Tensor, ...], z: torch.Tensor) -> torch.Tensor:
    """log p(z) under Gaussian (mu, sigma) or Student-t (mu, sigma, nu) parameters, elementwise."""
    mu, sigma = params[0], params[1]
    u = (z - mu) / sigma
    if len(params) == 2:
        return -0.5 * u * u - sigma.log() - 0.5 * math.log(2 * math.pi)
    nu = params[2]
    return (
        torch.lgamma((nu + 1) / 2)
        - torch.lgamma(nu / 2)
        - 0.5 * torch.log(nu * math.pi)
        - sigma.log()
        - (nu + 1) / 2 * torch.log1p(u * u / nu)
    )


def draw(params: tuple[torch.Tensor, ...], generator: torch.Generator | None) -> torch.Tensor:
    """One draw from the per-step law, all noise from `generator`."""
    mu, sigma = params[0], params[1]
    if len(params) == 2:
        return mu + sigma * normal(mu.shape, generator, mu.device)
    return mu + sigma * student_t(params[2], generator)


def student_t(nu: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Standard Student-t draws with `nu` degrees of freedom, by Bailey's (1994) polar method.

    (U, V) uniform in the unit disc, W = U^2 + V^2: U / sqrt(W) * sqrt(nu (W^(-2/nu) - 1)) is t(nu).
    Rejection sampling, but which draws are accepted depends on the uniforms alone, never on nu, so
    a seeded generator gives the same values; torch's own StudentT draws from the global RNG.
    """
    flat_nu = nu.reshape(-1)
    out = torch.empty_like(flat_nu)
    todo = torch.arange(len(flat_nu), device=nu.device)
    while len(todo):
        u, v = uniform((2, len(todo)), generator, nu.device) * 2 - 1
        w = u * u + v * v
        ok = (w < 1) & (w > 0)
        take, u, w = todo[ok], u[ok], w[ok]
        df = flat_nu[take]
        out[take] = u * torch.sqrt(df * torch.expm1(-2 / df * torch.log(w)) / w)
        todo = todo[~ok]
    return out.view_as(nu)

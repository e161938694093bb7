"""Diffusion noise schedules and samplers, kept apart from the network (as diffusers does), so a
sampler swaps without touching the model.

Forward process (Ho et al. 2020), t = 1..T, with abar_t = prod_{s<=t} (1 - beta_s):

    q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I)
    q(x_t | x_0)     = N(sqrt(abar_t) x_0, (1 - abar_t) I)
    q(x_{t-1} | x_t, x_0) = N(c0_t x_0 + ct_t x_t, betatilde_t I),
        c0_t = beta_t sqrt(abar_{t-1}) / (1 - abar_t),  ct_t = (1 - abar_{t-1}) sqrt(1 - beta_t) / (1 - abar_t),
        betatilde_t = beta_t (1 - abar_{t-1}) / (1 - abar_t)

Arrays are indexed by t - 1 (index 0 is t = 1); the network sees the index. Every sampler has one
signature (`Sampler`): `eps_fn(x_t, index) -> predicted noise`, the schedule, x_T, and keywords
`generator` (all its noise comes from it), `steps`, `clip`, plus the options its `SAMPLERS` entry
declares. `SAMPLERS` maps a name to a `SamplerSpec`; `sampler_spec` looks one up and
`SamplerSpec.options_for` validates the options once, so a model never branches on the name and a
new sampler is one function plus one entry:

- "ddpm", `ddpm_sample`: ancestral sampling, p(x_{t-1}|x_t) = N(posterior mean at x0_hat, sigma_t^2),
  with sigma_t^2 = betatilde_t ("small") or beta_t ("large"); fewer than T steps respace the schedule.
- "ddim", `ddim_sample`: DDIM (Song et al. 2021) on any increasing subsequence of timesteps; eta = 0
  is deterministic, eta = 1 on all T steps is the DDPM sampler with sigma_t^2 = betatilde_t.
- "dpm-solver++", `dpm_solver_pp_sample`: DPM-Solver++(2M) (Lu et al. 2022), a second-order
  multistep solver of the probability-flow ODE in its data-prediction form; deterministic, and
  far more accurate than DDIM eta = 0 (first order, the same ODE) for the same network calls.

ddpm and ddim take `known=(x0, keep)` for inpainting: after every step the kept pixels are replaced
by a draw of q(x_{t_prev} | x_0), and `resample > 1` re-noises and repeats each step (RePaint).
`reconstruction_guided` wraps an eps_fn so that the predicted x_0 is also pulled towards the
kept pixels through the network's gradient (Ho et al. 2022), which replacement alone cannot do.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

import torch

from genzoo.errors import GenzooError
from genzoo.nn.likelihoods import normal
from genzoo.progress import track

EpsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
SCHEDULES = ("linear", "cosine")


# Where on the noise schedule a "denoising" anomaly score asks a diffusion model for the noise back
# (fractions of T): low levels test fine detail, high ones the overall shape.
DENOISING_LEVELS = (0.05, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75)


class NoiseSchedule:
    """The betas of a diffusion process and every quantity derived from them (float64)."""

    def __init__(self, betas: torch.Tensor):
        betas = betas.double()
        if betas.dim() != 1 or len(betas) < 1 or (betas <= 0).any() or (betas >= 1).any():
            raise GenzooError("betas must be a non-empty 1-d tensor with values in (0, 1)")
        self.betas = betas
        self.num_steps = len(betas)
        self.alphas = 1.0 - betas
        self.alphas_cumprod = torch.cumprod(self.alphas, 0)
        self.alphas_cumprod_prev = torch.cat([torch.ones(1, dtype=torch.float64), self.alphas_cumprod[:-1]])
        self.posterior_variance = betas * (1 - self.alphas_cumprod_prev) / (1 - self.alphas_cumprod)
        # betatilde_1 = 0: log-variance clipped to betatilde_2 as in Ho et al.'s code for the t = 1 term.
        self.posterior_log_variance = torch.log(
            torch.cat([self.posterior_variance[1:2], self.posterior_variance[1:]])
            if self.num_steps > 1
            else betas
        )
        self.posterior_coef_x0 = betas * self.alphas_cumprod_prev.sqrt() / (1 - self.alphas_cumprod)
        self.posterior_coef_xt = (
            (1 - self.alphas_cumprod_prev) * self.alphas.sqrt() / (1 - self.alphas_cumprod)
        )

    @classmethod
    def make(cls, kind: str, num_steps: int) -> NoiseSchedule:
        if num_steps < 1:
            raise GenzooError(f"the number of diffusion steps must be >= 1, got {num_steps}")
        if kind == "linear":
            # Ho et al.: 1e-4 .. 0.02 for T = 1000; scaled so other T keep the same total noise.
            scale = 1000 / num_steps
            return cls(torch.linspace(scale * 1e-4, min(scale * 0.02, 0.999), num_steps, dtype=torch.float64))
        if kind == "cosine":
            # Nichol & Dhariwal 2021: abar(t) = f(t) / f(0), f(t) = cos^2((t/T + s) / (1 + s) * pi/2).
            s = 0.008
            t = torch.arange(num_steps + 1, dtype=torch.float64) / num_steps
            f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
            abar = f / f[0]
            return cls((1 - abar[1:] / abar[:-1]).clamp(max=0.999))
        raise GenzooError(f"unknown noise schedule '{kind}'; choose one of: {', '.join(SCHEDULES)}")

    @staticmethod
    def _at(values: torch.Tensor, index: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """values[index] as float32 on `like`'s device, shaped to broadcast over an example."""
        out = values.to(like.device)[index.to(like.device)].float()
        return out.view(-1, *[1] * (like.dim() - 1))

    # ---- forward process ------------------------------------------------------------
    def q_mean_var(self, x0: torch.Tensor, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance of q(x_t | x_0)."""
        abar = self._at(self.alphas_cumprod, index, x0)
        return abar.sqrt() * x0, (1 - abar).expand_as(x0)

    def q_sample(self, x0: torch.Tensor, index: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        abar = self._at(self.alphas_cumprod, index, x0)
        return abar.sqrt() * x0 + (1 - abar).sqrt() * noise

    def q_posterior(
        self, x0: torch.Tensor, xt: torch.Tensor, index: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mean, variance and (clipped) log-variance of q(x_{t-1} | x_t, x_0)."""
        mean = (
            self._at(self.posterior_coef_x0, index, xt) * x0
            + self._at(self.posterior_coef_xt, index, xt) * xt
        )
        var = self._at(self.posterior_variance, index, xt).expand_as(xt)
        log_var = self._at(self.posterior_log_variance, index, xt).expand_as(xt)
        return mean, var, log_var

    def predict_x0(self, xt: torch.Tensor, index: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        abar = self._at(self.alphas_cumprod, index, xt)
        return (xt - (1 - abar).sqrt() * eps) / abar.sqrt()

    @property
    def log_snr(self) -> torch.Tensor:
        """lambda_t = log(alpha_t / sigma_t) = log(abar_t / (1 - abar_t)) / 2, decreasing in t (float64)."""
        return 0.5 * (self.alphas_cumprod.log() - torch.log1p(-self.alphas_cumprod))

    def log_snr_timesteps(self, steps: int | None, lowest: float = -5.0) -> list[int]:
        """`steps` distinct indices from 0 to T-1 spread evenly in log-SNR, from lambda at index 0 to
        max(lambda_{T-1}, `lowest`); the noisiest is always T-1, where x_T is drawn.

        Below lambda = -5, x_t is noise to within 1% (alpha_t < 0.007): Ho et al.'s linear schedule
        ends about there, and DPM-Solver truncates the cosine one there (t = 0.9946, lambda ~ -4.8),
        whose last clipped beta would otherwise put lambda_{T-1} near -10 and spend steps on noise.
        """
        steps = self.num_steps if steps is None else steps
        if not 1 <= steps <= self.num_steps:
            raise GenzooError(f"steps must be in 1..{self.num_steps}, got {steps}")
        lam = self.log_snr
        targets = torch.linspace(float(lam[0]), max(float(lam[-1]), lowest), steps, dtype=torch.float64)
        indices = (lam[None, :] - targets[:, None]).abs().argmin(1).tolist()
        # Nearest indices can coincide where lambda moves fast: push them apart, keeping both ends.
        for k in range(1, steps):
            indices[k] = max(indices[k], indices[k - 1] + 1)
        indices[-1] = self.num_steps - 1
        for k in reversed(range(steps - 1)):
            indices[k] = min(indices[k], indices[k + 1] - 1)
        return indices

    def timesteps(self, steps: int | None) -> list[int]:
        """`steps` indices spread evenly over 0..T-1, always ending at T-1 (the noisiest)."""
        steps = self.num_steps if steps is None else steps
        if not 1 <= steps <= self.num_steps:
            raise GenzooError(f"steps must be in 1..{self.num_steps}, got {steps}")
        if steps == self.num_steps:
            return list(range(self.num_steps))
        return (
            sorted({round(i * (self.num_steps - 1) / (steps - 1)) for i in range(steps)})
            if steps > 1
            else [self.num_steps - 1]
        )


def reconstruction_guided(
    eps_fn: EpsFn, schedule: NoiseSchedule, known: tuple[torch.Tensor, torch.Tensor], weight: float
) -> EpsFn:
    """Reconstruction guidance (Ho et al. 2022, "Video Diffusion Models", eq. 7):

        x0_guided = x0_hat - (weight * sqrt(abar_t) / 2) * grad_{x_t} |keep * (x0 - x0_hat(x_t))|^2

    returned as the noise prediction that implies x0_guided, so any sampler can use it. Replacing
    the kept pixels only tells the fill what they are after the network has spoken; the gradient
    makes the fill agree with them now. Costs one backward pass per step.
    """
    x0_known, keep = known
    mask = keep.to(x0_known.dtype)

    def guided(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            x_in = x.detach().requires_grad_(True)
            eps = eps_fn(x_in, index)
            x0 = schedule.predict_x0(x_in, index, eps)
            error = ((x0 - x0_known) * mask).pow(2).sum()
            (grad,) = torch.autograd.grad(error, x_in)
        abar = schedule._at(schedule.alphas_cumprod, index, x).to(x.dtype)
        x0_guided = x0.detach() - weight * abar.sqrt() / 2 * grad
        return (x - abar.sqrt() * x0_guided) / (1 - abar).sqrt()

    return guided


def ddim_coefficients(
    schedule: NoiseSchedule, index: int, prev: int | None, eta: float
) -> tuple[float, float, float]:
    """DDIM update x_prev = a * x0_hat + b * eps_hat + sigma * z: returns (a, b, sigma).

    sigma^2 = eta^2 (1 - abar_prev)/(1 - abar_t) (1 - abar_t/abar_prev); `prev=None` means x_0.
    """
    abar_t = float(schedule.alphas_cumprod[index])
    abar_prev = float(schedule.alphas_cumprod[prev]) if prev is not None else 1.0
    var = eta**2 * (1 - abar_prev) / (1 - abar_t) * (1 - abar_t / abar_prev)
    return math.sqrt(abar_prev), math.sqrt(max(1 - abar_prev - var, 0.0)), math.sqrt(var)


def _full(index: int, x: torch.Tensor) -> torch.Tensor:
    return torch.full((len(x),), index, device=x.device, dtype=torch.long)


def _x0_hat(
    schedule: NoiseSchedule, x: torch.Tensor, index: int, eps: torch.Tensor, clip: bool
) -> torch.Tensor:
    x0 = schedule.predict_x0(x, _full(index, x), eps)
    return x0.clamp(-1, 1) if clip else x0


def _replace_known(
    schedule: NoiseSchedule,
    x: torch.Tensor,
    prev: int | None,
    known: tuple[torch.Tensor, torch.Tensor] | None,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """Put a draw of q(x_prev | x_0) on the kept pixels (x_0 itself when prev is None)."""
    if known is None:
        return x
    x0, keep = known
    if prev is None:
        target = x0
    else:
        target = schedule.q_sample(x0, _full(prev, x0), normal(tuple(x0.shape), generator, x0.device))
    return torch.where(keep, target, x)


def _renoise(
    schedule: NoiseSchedule,
    x_prev: torch.Tensor,
    index: int,
    prev: int | None,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """Draw x_t ~ q(x_t | x_prev): back up one (possibly respaced) step, for RePaint resampling."""
    abar_prev = float(schedule.alphas_cumprod[prev]) if prev is not None else 1.0
    ratio = float(schedule.alphas_cumprod[index]) / abar_prev
    noise = normal(tuple(x_prev.shape), generator, x_prev.device)
    return math.sqrt(ratio) * x_prev + math.sqrt(1 - ratio) * noise


def _loop(
    step: Callable[[torch.Tensor, int, int | None], torch.Tensor],
    schedule: NoiseSchedule,
    x: torch.Tensor,
    indices: list[int],
    generator: torch.Generator | None,
    known: tuple[torch.Tensor, torch.Tensor] | None,
    resample: int,
) -> torch.Tensor:
    if resample < 1:
        raise GenzooError(f"resample must be >= 1, got {resample}")
    for i in track(reversed(range(len(indices))), total=len(indices)):
        index, prev = indices[i], (indices[i - 1] if i > 0 else None)
        for r in range(resample):
            x_prev = _replace_known(schedule, step(x, index, prev), prev, known, generator)
            if r < resample - 1 and prev is not None:
                x = _renoise(schedule, x_prev, index, prev, generator)
            else:
                break
        x = x_prev
    return x


def ddpm_sample(
    eps_fn: EpsFn,
    schedule: NoiseSchedule,
    x_T: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    steps: int | None = None,
    variance: str = "small",
    clip: bool = True,
    known: tuple[torch.Tensor, torch.Tensor] | None = None,
    resample: int = 1,
) -> torch.Tensor:
    """Ancestral sampling from x_T; returns x_0 (internal units, not snapped).

    With `steps < T` the process is respaced (Nichol & Dhariwal): the betas between chosen
    steps are 1 - abar_t / abar_prev, and the same posterior formulas apply.
    """
    if variance not in ("small", "large"):
        raise GenzooError(f"variance must be 'small' or 'large', got '{variance}'")
    indices = schedule.timesteps(steps)

    def step(x: torch.Tensor, index: int, prev: int | None) -> torch.Tensor:
        eps = eps_fn(x, _full(index, x))
        x0 = _x0_hat(schedule, x, index, eps, clip)
        abar_t = float(schedule.alphas_cumprod[index])
        abar_prev = float(schedule.alphas_cumprod[prev]) if prev is not None else 1.0
        beta = 1 - abar_t / abar_prev
        mean = (beta * math.sqrt(abar_prev) * x0 + (1 - abar_prev) * math.sqrt(1 - beta) * x) / (1 - abar_t)
        if prev is None:
            return mean
        var = beta * (1 - abar_prev) / (1 - abar_t) if variance == "small" else beta
        return mean + math.sqrt(var) * normal(tuple(x.shape), generator, x.device)

    return _loop(step, schedule, x_T, indices, generator, known, resample)


def ddim_sample(
    eps_fn: EpsFn,
    schedule: NoiseSchedule,
    x_T: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    steps: int | None = 50,
    eta: float = 0.0,
    clip: bool = True,
    known: tuple[torch.Tensor, torch.Tensor] | None = None,
    resample: int = 1,
) -> torch.Tensor:
    """DDIM sampling on `steps` evenly spaced timesteps; returns x_0 (internal units)."""
    if eta < 0:
        raise GenzooError(f"eta must be >= 0, got {eta}")
    indices = schedule.timesteps(steps)

    def step(x: torch.Tensor, index: int, prev: int | None) -> torch.Tensor:
        eps = eps_fn(x, _full(index, x))
        x0 = _x0_hat(schedule, x, index, eps, clip)
        if clip:  # keep eps consistent with the clipped x0, so the update stays on the data's range
            abar = float(schedule.alphas_cumprod[index])
            eps = (x - math.sqrt(abar) * x0) / math.sqrt(1 - abar)
        a, b, sigma = ddim_coefficients(schedule, index, prev, eta)
        out = a * x0 + b * eps
        if sigma > 0:
            out = out + sigma * normal(tuple(x.shape), generator, x.device)
        return out

    return _loop(step, schedule, x_T, indices, generator, known, resample)


def dpm_solver_pp_sample(
    eps_fn: EpsFn,
    schedule: NoiseSchedule,
    x_T: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    steps: int | None = 20,
    clip: bool = True,
    spacing: str = "log-snr",
    stochastic: bool = False,
) -> torch.Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2) on `steps` timesteps; deterministic unless
    `stochastic` (the generator is then the noise's), returns x_0 (internal units).

    With alpha_t = sqrt(abar_t), sigma_t = sqrt(1 - abar_t), lambda_t = log(alpha_t / sigma_t) and
    the data prediction x0_hat(x_t, t), the probability-flow ODE from s to t (h = lambda_t - lambda_s)
    is exactly x_t = (sigma_t / sigma_s) x_s + alpha_t int_{lambda_s}^{lambda_t} e^{-(lambda_t - l)}
    x0_hat dl. Holding x0_hat constant gives the first-order step (DDIM with eta = 0):

        x_t = (sigma_t / sigma_s) x_s + alpha_t (1 - e^{-h}) D,   D = x0_hat(x_s)

    and the multistep second-order step extrapolates x0_hat linearly in lambda through the previous
    step's prediction (r = h_prev / h), at no extra network call:

        D = (1 + 1 / (2 r)) x0_hat(x_s) - (1 / (2 r)) x0_hat(x_prev)

    The first step has no previous prediction and the last one goes to sigma = 0 (lambda = inf,
    where the step is x0_hat itself): both are first order. `spacing` "log-snr" spreads the steps
    evenly in lambda (`NoiseSchedule.log_snr_timesteps`, as Lu et al. do for small images), so h is
    about constant and r about 1, where the extrapolation is most accurate; "time" takes DDIM's grid,
    uniform in the index, whose last step on the cosine schedule is several times longer in lambda
    than the one before (r << 1), which undoes the second order's gain (tests/test_diffusion.py,
    benchmarks/diffusion_samplers.py). `clip` clamps x0_hat to the data range (the paper's
    thresholding, natural in the data-prediction form).

    `stochastic` solves the reverse SDE instead (SDE-DPM-Solver++(2M), Lu et al. 2022, section 5):
    the same D, with the exact Gaussian transition of the linear part, which injects fresh noise
    and so corrects errors of earlier steps instead of carrying them (the ODE cannot):

        x_t = (sigma_t / sigma_s) e^{-h} x_s + alpha_t (1 - e^{-2h}) D + sigma_t sqrt(1 - e^{-2h}) z
    """
    if spacing not in ("log-snr", "time"):
        raise GenzooError(f"spacing must be 'log-snr' or 'time', got '{spacing}'")
    grid = schedule.log_snr_timesteps(steps) if spacing == "log-snr" else schedule.timesteps(steps)
    indices, lam = grid[::-1], schedule.log_snr  # the noisiest first
    x, previous = x_T, None  # previous: (x0_hat, h) of the last step taken
    for i, index in track(enumerate(indices), total=len(indices)):
        x0 = _x0_hat(schedule, x, index, eps_fn(x, _full(index, x)), clip)
        if i == len(indices) - 1:
            return x0
        nxt = indices[i + 1]
        abar_s, abar_t = float(schedule.alphas_cumprod[index]), float(schedule.alphas_cumprod[nxt])
        h = float(lam[nxt] - lam[index])
        d = x0
        if previous is not None:
            x0_prev, h_prev = previous
            r = h_prev / h
            d = (1 + 0.5 / r) * x0 - (0.5 / r) * x0_prev
        ratio = math.sqrt((1 - abar_t) / (1 - abar_s))  # sigma_t / sigma_s
        if stochastic:
            keep = -math.expm1(-2 * h)  # 1 - e^{-2h}
            noise = normal(tuple(x.shape), generator, x.device).to(x.dtype)
            x = ratio * math.exp(-h) * x + math.sqrt(abar_t) * keep * d
            x = x + math.sqrt((1 - abar_t) * keep) * noise
        else:
            x = ratio * x + math.sqrt(abar_t) * -math.expm1(-h) * d
        previous = (x0, h)
    return x


class Sampler(Protocol):
    """The one signature of a sampler: x_0 (internal units, not snapped) from x_T. Each also takes,
    as keywords with defaults, the options its `SAMPLERS` entry declares."""

    def __call__(
        self,
        eps_fn: EpsFn,
        schedule: NoiseSchedule,
        x_T: torch.Tensor,
        *,
        generator: torch.Generator | None,
        steps: int | None,
        clip: bool,
    ) -> torch.Tensor: ...


@dataclass(frozen=True)
class SamplerSpec:
    """A sampler and what it accepts: the table entry a model looks up by name."""

    name: str
    fn: Sampler
    options: tuple[str, ...]  # keyword options beyond generator, steps, clip; "known": it inpaints
    default_steps: int | None  # when no steps are asked for; None = all T
    # Values of options it does not take that are dropped rather than refused, because callers
    # written before the table pass them (ddpm once ignored eta 0 and 1).
    tolerated: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)

    def steps_for(self, num_steps: int) -> int | None:
        return None if self.default_steps is None else min(self.default_steps, num_steps)

    def options_for(
        self, given: Mapping[str, Any], defaults: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """The keyword options to call `fn` with: `given` (asked for by the caller: each must be one
        this sampler takes) over `defaults` (supplied by the model: kept where it takes them)."""
        for key, value in given.items():
            if key in self.options or value in self.tolerated.get(key, ()):
                continue
            others = [s.name for s in SAMPLERS.values() if key in s.options]
            if key == "known":
                raise GenzooError(f"the {self.name} sampler cannot inpaint; use one of: {', '.join(others)}")
            shown = f"{key}={value}" if isinstance(value, int | float | str) else key
            where = f" ({key} applies to: {', '.join(others)})" if others else ""
            raise GenzooError(f"the {self.name} sampler does not take {shown}{where}")
        chosen = {k: v for k, v in (defaults or {}).items() if k in self.options}
        chosen.update((k, v) for k, v in given.items() if k in self.options)
        return chosen


SAMPLERS: dict[str, SamplerSpec] = {
    spec.name: spec
    for spec in (
        SamplerSpec(
            "ddpm",
            ddpm_sample,
            options=("variance", "known", "resample"),
            default_steps=None,
            tolerated={"eta": (0.0, 1.0)},
        ),
        SamplerSpec("ddim", ddim_sample, options=("eta", "known", "resample"), default_steps=50),
        SamplerSpec("dpm-solver++", dpm_solver_pp_sample, options=(), default_steps=20),
        SamplerSpec(
            "sde-dpm-solver++", partial(dpm_solver_pp_sample, stochastic=True), options=(), default_steps=20
        ),
    )
}


def sampler_spec(name: str) -> SamplerSpec:
    """The `SAMPLERS` entry called `name`, or an error that lists them."""
    if name not in SAMPLERS:
        raise GenzooError(f"unknown sampler '{name}'; choose one of: {', '.join(SAMPLERS)}")
    return SAMPLERS[name]

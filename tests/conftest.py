"""Shared fixtures: a tiny exact-likelihood model that exercises the Trainer without any real family."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
import torch

from genzoo.models import GenerativeModel, ModelConfig
from genzoo.models import registry as model_registry


@dataclass
class GaussianConfig(ModelConfig):
    noisy_loss: bool = True  # draw from the global RNG in loss(), as VAEs and diffusion do
    nan_after: int = -1  # loss becomes NaN from this many calls on (testing the guard)


class DiagonalGaussian(GenerativeModel):
    """Independent Gaussian per dimension: log_prob has a closed form to check against."""

    Config = GaussianConfig
    name = "test-gaussian"
    family = "test"
    modalities = ("image", "vector")
    log_prob_kind = "exact"

    def __init__(self, config: GaussianConfig):
        super().__init__(config)
        dim = math.prod(config.data_shape)
        self.mean = torch.nn.Parameter(torch.zeros(dim))
        self.log_std = torch.nn.Parameter(torch.zeros(dim))
        self.mix = torch.nn.Linear(dim, dim)  # a 2-d weight, so weight decay has something to act on
        self.calls = 0

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        log_std = self.log_std.clamp(min=-2.0)  # digits have constant-zero pixels; keep them finite
        z = (x - self.mean) / log_std.exp()
        return (-0.5 * z**2 - log_std - 0.5 * math.log(2 * math.pi)).sum(1)

    def loss(self, batch, phase: str = "main"):
        x = batch[0]
        self.calls += 1
        nll = -self.log_prob(x).mean() + 1e-3 * self.mix.weight.pow(2).sum()
        if self.config.noisy_loss:
            nll = nll + 1e-3 * torch.randn(()) * nll.detach()
        if 0 <= self.config.nan_after <= self.calls:
            nll = nll * float("nan")
        return {"loss": nll, "nll": nll.detach()}

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None, temperature: float = 1.0):
        eps = torch.randn(n, self.mean.numel(), generator=generator, device=self.mean.device)
        return (self.mean + temperature * eps * self.log_std.exp()).view(n, *self.config.data_shape)


@pytest.fixture
def gaussian_model():
    """The tiny model class, registered for the duration of one test."""
    model_registry.register_model(DiagonalGaussian)
    yield DiagonalGaussian
    model_registry._MODELS.pop(DiagonalGaussian.name, None)


@pytest.fixture
def one_thread():
    """One torch thread for the test: many tiny ops run faster, and far faster on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def ddpm_run(tmp_path_factory):
    """A tiny trained DDPM run (10 diffusion steps, a few updates): enough to exercise the commands."""
    from genzoo.cli import main

    run = tmp_path_factory.mktemp("ddpm") / "run"
    code = main(
        ["train", "ddpm", "--data", "digits", "--out", str(run), "--max-steps", "3", "--quiet"]
        + ["--set", "num_steps=10", "--set", "channels=8", "--set", "eval_every=0"]
    )
    assert code == 0
    return run

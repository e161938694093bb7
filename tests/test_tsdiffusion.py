"""Diffusion-TS on tiny sines: the loss learns, sampling is seeded and leaves the global RNG alone, the
x_0 -> noise conversion is the schedule's own inverse, saving round-trips, bad options are user errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genzoo.data.base import DataInfo
from genzoo.errors import GenzooError
from genzoo.models import get_model_class, load
from genzoo.models.tsdiffusion import DiffusionTS, DiffusionTSConfig, basis

TINY = {"d_model": 16, "n_heads": 2, "n_layers": 1, "num_steps": 50, "sample_steps": 5}
INFO = DataInfo(name="tiny-sines", modality="series", shape=(12, 3), levels=None, low=0.0, high=1.0)


def tiny_sines(n: int, length: int = 12, features: int = 3, seed: int = 0) -> torch.Tensor:
    """TimeGAN's sines: sin(f t + phase), f and phase ~ U[0, 0.1) per feature, mapped to [0, 1]."""
    rng = np.random.default_rng(seed)
    f, phase = rng.uniform(0, 0.1, (2, n, 1, features))
    t = np.arange(length)[None, :, None]
    return torch.from_numpy((np.sin(f * t + phase) + 1) / 2).float()


def tiny(**overrides) -> DiffusionTS:
    torch.manual_seed(0)
    return get_model_class("diffusion-ts").for_data(INFO, **{**TINY, **overrides})


def test_registered_as_a_series_diffusion_model():
    cls = get_model_class("diffusion-ts")
    assert cls is DiffusionTS and cls.family == "diffusion" and cls.modalities == ("series",)
    assert cls.log_prob_kind is None and cls.score_kinds() == ("denoising",)


def test_loss_is_finite_and_decreases():
    model = tiny()
    x = tiny_sines(256)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(60):
        out = model.loss((x[torch.randint(len(x), (64,), generator=generator)], None))
        assert torch.isfinite(out["loss"]) and set(out) == {"loss", "mse", "fourier"}
        optimizer.zero_grad()
        out["loss"].backward()
        optimizer.step()
        losses.append(float(out["loss"].detach()))
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:10])


@pytest.mark.parametrize("sampler", ["dpm-solver++", "ddim", "ddpm"])
def test_sample_shape_determinism_and_global_rng(sampler):
    model = tiny()
    model.train()
    state = torch.get_rng_state()
    a = model.sample(4, generator=torch.Generator().manual_seed(1), sampler=sampler, steps=4)
    b = model.sample(4, generator=torch.Generator().manual_seed(1), sampler=sampler, steps=4)
    c = model.sample(4, generator=torch.Generator().manual_seed(2), sampler=sampler, steps=4)
    assert torch.equal(torch.get_rng_state(), state), "sampling must not touch the global RNG"
    assert model.training, "sampling must restore the training mode"
    assert a.shape == (4, 12, 3) and torch.equal(a, b) and not torch.equal(a, c)
    # x0 is clipped to the data's range at every step, and the last step returns it.
    assert a.min() >= 0.0 and a.max() <= 1.0
    assert model.sample(0, generator=torch.Generator().manual_seed(1)).shape == (0, 12, 3)


def test_x0_to_noise_is_the_inverse_of_predict_x0():
    model = tiny()
    schedule = model.schedule
    generator = torch.Generator().manual_seed(0)
    x0 = torch.rand(50, 12, 3, generator=generator) * 2 - 1
    x_t = torch.randn(50, 12, 3, generator=generator)
    index = torch.arange(50)
    eps = model.eps_from_x0(x_t, index, x0)
    back = schedule.predict_x0(x_t, index, eps)
    # float32: the inverse divides by sqrt(abar_t), which grows the rounding error at the noisiest steps.
    tolerance = 1e-5 / schedule.alphas_cumprod.sqrt().float().view(-1, 1, 1)
    assert ((back - x0).abs() <= tolerance).all()
    # And x_t is consistent: sqrt(abar) x0 + sqrt(1 - abar) eps gives it back.
    assert torch.allclose(schedule.q_sample(x0, index, eps), x_t, atol=1e-5)


def test_basis_holds_the_trend_and_the_seasons():
    b = basis(12, trend_degree=2, harmonics=1)
    assert b.shape == (12, 5)
    assert torch.allclose(b[:, 0], torch.ones(12)) and b[0, 1] == -1 and b[-1, 1] == 1
    assert torch.allclose(b[:, 3], torch.cos(2 * math.pi * torch.arange(12) / 12), atol=1e-6)
    assert basis(12, trend_degree=-1, harmonics=0).shape == (12, 0)
    model = tiny(trend_degree=-1, harmonics=0)  # the residual alone still works
    assert torch.isfinite(model.loss((tiny_sines(8), None))["loss"])


def test_save_and_load_round_trip(tmp_path):
    model = tiny()
    model.save_pretrained(tmp_path)
    loaded = load(tmp_path)
    assert isinstance(loaded, DiffusionTS) and loaded.config == model.config
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k
    a = model.sample(3, generator=torch.Generator().manual_seed(0))
    b = loaded.sample(3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)


def test_denoising_anomaly_score_is_seeded_and_per_window():
    model = tiny()
    model.train()
    x = tiny_sines(6)
    first, second = model.anomaly_score(x, "denoising"), model.anomaly_score(x, "denoising")
    assert first.shape == (6,) and torch.isfinite(first).all() and torch.equal(first, second)
    assert torch.allclose(model.anomaly_score(x[:3], "denoising"), first[:3])  # not batch-dependent
    assert model.training
    with pytest.raises(GenzooError, match="offers"):
        model.anomaly_score(x, "nll")


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"sampler": "euler"}, "unknown sampler"),
        ({"steps": 0}, "steps must be in"),
        ({"steps": 51}, "steps must be in"),
        ({"steps": -3}, "steps must be in"),
    ],
)
def test_bad_sample_options_are_user_errors(options, match):
    with pytest.raises(GenzooError, match=match):
        tiny().sample(2, generator=torch.Generator().manual_seed(0), **options)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"d_model": 10, "n_heads": 4}, "multiple of n_heads"),
        ({"sampler": "euler"}, "unknown sampler"),
        ({"sample_steps": 60}, "sample_steps"),
        ({"fourier_weight": -1.0}, "fourier_weight"),
        ({"schedule": "sigmoid"}, "schedule"),
        ({"snr_gamma": -1.0}, "snr_gamma"),
    ],
)
def test_bad_configs_are_user_errors(overrides, match):
    with pytest.raises(GenzooError, match=match):
        tiny(**overrides)


def test_wrong_shapes_and_modalities_are_user_errors():
    model = tiny()
    with pytest.raises(GenzooError, match="windows of shape"):
        model.loss((torch.rand(4, 10, 3), None))
    with pytest.raises(GenzooError, match="series windows"):
        DiffusionTS(DiffusionTSConfig(data_shape=(1, 8, 8)))
    image = DataInfo(name="digits", modality="image", shape=(1, 8, 8), levels=17, low=0.0, high=16.0)
    with pytest.raises(GenzooError, match="handles time series"):
        DiffusionTS.for_data(image)

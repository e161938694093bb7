"""Diffusion-TS on tiny sines: the loss learns, sampling is seeded and leaves the global RNG alone, the
x_0 -> noise conversion is the schedule's own inverse, saving round-trips, bad options are user errors."""

from __future__ import annotations

import json
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


def test_unfitted_covariance_preconditioning_is_the_scalar_one():
    # Before `prepare` the directions are the identity and every power sigma_data^2.
    fitted, scalar = tiny(covariance=True), tiny(covariance=False)
    scalar.load_state_dict(fitted.state_dict(), strict=False)
    x_t, index = torch.randn(8, 12, 3), torch.arange(0, 48, 6)
    with torch.no_grad():
        assert torch.allclose(fitted.denoise(x_t, index), scalar.denoise(x_t, index), atol=1e-6)


def test_covariance_preconditioning_is_the_wiener_filter():
    """With the network's output zeroed, x0_theta is the best linear guess of x_0 from x_t for data
    of second moment S (per feature): sqrt(abar) S (abar S + (1 - abar) I)^-1 x_t."""
    model = tiny(covariance=True)
    generator = torch.Generator().manual_seed(0)
    steps = torch.arange(12.0)
    smooth = torch.exp(-((steps[:, None] - steps[None]) ** 2) / 8) + 0.05 * torch.eye(12)  # (L, L)
    z = torch.einsum(
        "ij,njf->nif", torch.linalg.cholesky(smooth), torch.randn(4000, 12, 3, generator=generator)
    )
    model.prepare((z + 1) / 2)  # internal units are 2x - 1 for data in [0, 1]
    second = torch.einsum("nif,njf->fij", z.double(), z.double()) / len(z)  # (F, L, L)
    fitted = model.components @ torch.diag_embed(model.power.T) @ model.components.transpose(1, 2)
    assert torch.allclose(fitted.double(), second, atol=1e-4)
    for layer in (model.net.residual, model.net.coefficients):
        torch.nn.init.zeros_(layer.weight)
        torch.nn.init.zeros_(layer.bias)
    x_t, index = torch.randn(6, 12, 3, generator=generator), torch.tensor([0, 1, 5, 20, 35, 49])
    with torch.no_grad():
        got = model.denoise(x_t, index)
    abar = model.schedule.alphas_cumprod[index].double()
    for b in range(len(index)):
        for f in range(3):
            system = abar[b] * second[f] + (1 - abar[b]) * torch.eye(12, dtype=torch.float64)
            want = abar[b].sqrt() * second[f] @ torch.linalg.solve(system, x_t[b, :, f].double())
            assert torch.allclose(got[b, :, f].double(), want, atol=1e-4), (b, f)


def test_covariance_preconditioning_keeps_noise_out_of_smooth_series():
    # At low noise the scalar skip passes x_t's rough noise on and leaves the network to cancel it;
    # the fitted one passes only the directions the sines have power in.
    x0 = tiny_sines(2000)
    fitted, scalar = tiny(covariance=True), tiny(covariance=False)
    fitted.prepare(x0)
    for model in (fitted, scalar):
        for layer in (model.net.residual, model.net.coefficients):
            torch.nn.init.zeros_(layer.weight)
            torch.nn.init.zeros_(layer.bias)
    clean = fitted._internal(x0)
    index = torch.full((len(x0),), 1)
    x_t = fitted.schedule.q_sample(
        clean, index, torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    )
    with torch.no_grad():
        errors = [(model.denoise(x_t, index) - clean).pow(2).mean() for model in (fitted, scalar)]
    assert errors[0] < 0.2 * errors[1]


def test_runs_saved_before_covariance_load_with_the_scalar_preconditioning(tmp_path):
    model = tiny(covariance=False)
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    del saved["config"]["covariance"]
    (tmp_path / "config.json").write_text(json.dumps(saved))
    loaded = load(tmp_path)
    assert loaded.config.covariance is False
    x = torch.rand(2, 12, 3)
    assert torch.equal(model.anomaly_score(x, "denoising"), loaded.anomaly_score(x, "denoising"))

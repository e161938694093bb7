"""DeepAR: its density against torch.distributions and by integration, training, forecasts, sampling."""

from __future__ import annotations

import math

import pytest
import torch
from torch import distributions as D

from genzoo.data.base import DataInfo
from genzoo.errors import GenzooError
from genzoo.models import get_model_class, load
from genzoo.models.deepar import DeepAR, student_t

SMALL = {"hidden": 32, "layers": 1, "dropout": 0.0}


def tiny(shape: tuple[int, int] = (24, 2), **overrides) -> DeepAR:
    info = DataInfo(name="t", modality="series", shape=shape, levels=None, low=0.0, high=1.0)
    torch.manual_seed(0)
    return get_model_class("deepar").for_data(info, **{**SMALL, **overrides})  # type: ignore[return-value]


def sines(n: int, length: int = 24, features: int = 2, noise: float = 0.05, seed: int = 0) -> torch.Tensor:
    """Noisy sines of random frequency and phase, min-max scaled to about 0..1 (TimeGAN's sines)."""
    g = torch.Generator().manual_seed(seed)
    freq = torch.rand(n, 1, features, generator=g) * 0.4 + 0.1
    phase = torch.rand(n, 1, features, generator=g) * 2 * math.pi
    t = torch.arange(length).view(1, -1, 1)
    x = (torch.sin(freq * t + phase) + 1) / 2
    return x + noise * torch.randn(x.shape, generator=g)


def trending_walks(n: int, length: int = 24, features: int = 2, seed: int = 0) -> torch.Tensor:
    """Random walks with a drift per window, starting anywhere in 0..1 (they leave it)."""
    g = torch.Generator().manual_seed(seed)
    drift = (torch.rand(n, 1, features, generator=g) - 0.5) * 0.1
    steps = drift + 0.02 * torch.randn(n, length, features, generator=g)
    return torch.rand(n, 1, features, generator=g) + steps.cumsum(1)


def fit(model: DeepAR, x: torch.Tensor, steps: int, lr: float = 1e-2, batch: int = 64) -> list[float]:
    """Adam on random batches of x; the losses of the steps."""
    model.prepare(x)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr)
    g = torch.Generator().manual_seed(1)
    losses = []
    for _ in range(steps):
        loss = model.loss((x[torch.randint(len(x), (batch,), generator=g)],))["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("data", [sines, trending_walks])
@pytest.mark.parametrize("distribution", ["student-t", "gaussian"])
def test_loss_decreases(data, distribution):
    losses = fit(tiny(distribution=distribution), data(512), steps=100)
    assert all(math.isfinite(v) for v in losses)
    assert sum(losses[-10:]) / 10 < sum(losses[:10]) / 10 - 0.3


@pytest.mark.parametrize("distribution", ["student-t", "gaussian"])
def test_log_prob_is_the_hand_computed_conditional_density(distribution):
    """One scored step (L = 4, context 3): the law of the normalised value minus log(scale)."""
    model = tiny((4, 2), context=3, distribution=distribution).eval()
    x = sines(5, length=4)
    loc = x[:, :3].mean(1)
    scale = x[:, :3].std(1, correction=0).clamp(min=model.config.min_scale)
    params, model_loc, model_scale = model.step_distributions(x)
    assert torch.allclose(model_loc[:, 0], loc) and torch.allclose(model_scale[:, 0], scale)
    mu, sigma = params[0][:, 0], params[1][:, 0]
    law = D.StudentT(params[2][:, 0], mu, sigma) if distribution == "student-t" else D.Normal(mu, sigma)
    expected = (law.log_prob((x[:, 3] - loc) / scale) - scale.log()).sum(1)
    assert torch.allclose(model.log_prob(x), expected, atol=1e-5)
    assert model.scored_dims((4, 2)) == 2
    # The scored step's law reads only the steps before it.
    changed = x.clone()
    changed[:, 3] += 1.0
    assert all(torch.equal(a, b) for a, b in zip(params, model.step_distributions(changed)[0], strict=True))


@pytest.mark.parametrize("distribution", ["student-t", "gaussian"])
def test_density_integrates_to_one_in_the_datasets_units(distribution):
    model = tiny((4, 1), context=3, distribution=distribution).eval()
    x = sines(1, length=4, features=1)
    with torch.no_grad():
        (mu, sigma, *_), loc, scale = model.step_distributions(x)
    centre, width = float(loc + scale * mu), float(scale * sigma)
    grid = torch.linspace(centre - 2000 * width, centre + 2000 * width, 200_001)
    windows = x.repeat(len(grid), 1, 1)
    windows[:, 3, 0] = grid
    with torch.no_grad():
        density = model.log_prob(windows).double().exp()
    assert float(torch.trapezoid(density, grid.double())) == pytest.approx(1.0, abs=2e-3)


def test_translation_equivariance():
    """A series shifted to another level (a trend past the training range) gets the same forecast, shifted."""
    model = tiny().eval()
    x = trending_walks(4)
    assert torch.allclose(model.log_prob(x + 3.0), model.log_prob(x), atol=1e-4)
    a = model.forecast(x, 6, 5, generator=torch.Generator().manual_seed(0))
    b = model.forecast(x + 3.0, 6, 5, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(b, a + 3.0, atol=1e-4)


def test_forecast_shapes_determinism_and_global_rng():
    model = tiny()
    model.prepare(sines(64))
    model.train()
    history = sines(3, length=30)
    state = torch.get_rng_state()
    a = model.forecast(history, 5, 7, generator=torch.Generator().manual_seed(3))
    b = model.forecast(history, 5, 7, generator=torch.Generator().manual_seed(3))
    c = model.forecast(history, 5, 7, generator=torch.Generator().manual_seed(4))
    assert torch.equal(torch.get_rng_state(), state)
    assert model.training
    assert a.shape == (3, 7, 5, 2) and torch.isfinite(a).all()
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert not torch.equal(a[:, 0], a[:, 1])  # the sample paths differ
    # Only the last `context` steps are read: an older prefix changes nothing.
    longer = torch.cat([torch.zeros(3, 9, 2), history], 1)
    assert torch.equal(model.forecast(longer, 5, 7, generator=torch.Generator().manual_seed(3)), a)


@pytest.mark.parametrize("start", ["gaussian", "data"])
def test_sample_shapes_determinism_and_global_rng(start):
    model = tiny()
    train = sines(64)
    model.prepare(train)
    model.train()
    state = torch.get_rng_state()
    a = model.sample(6, generator=torch.Generator().manual_seed(0), start=start)
    b = model.sample(6, generator=torch.Generator().manual_seed(0), start=start)
    c = model.sample(6, generator=torch.Generator().manual_seed(1), start=start)
    assert torch.equal(torch.get_rng_state(), state)
    assert model.training
    assert a.shape == (6, 24, 2) and torch.isfinite(a).all()
    assert torch.equal(a, b) and not torch.equal(a, c)
    contexts = train[:, :12]
    if start == "data":  # a training window's context, then the network's continuation
        assert all((contexts == window[:12]).all((1, 2)).any() for window in a)
        assert not torch.isin(a[:, 12:], train).any()
    else:  # no training value at all
        assert not torch.isin(a, train).any()
    assert model.sample(0).shape == (0, 24, 2)
    assert model.forecast(torch.zeros(0, 12, 2), 3, 4).shape == (0, 4, 3, 2)


def test_gaussian_contexts_match_the_kept_ones():
    model = tiny()
    train = sines(256)
    model.prepare(train)
    drawn = model.sample(4000, generator=torch.Generator().manual_seed(0))[:, :12].flatten(1)
    kept = train[:, :12].flatten(1)
    assert torch.allclose(drawn.mean(0), kept.mean(0), atol=0.02)
    assert torch.allclose(drawn.T.cov(), kept.T.cov(), atol=0.025)  # entries up to 0.14


def test_student_t_draws_follow_the_law():
    from scipy import stats

    draws = student_t(torch.full((40_000,), 3.0, dtype=torch.float64), torch.Generator().manual_seed(0))
    assert stats.kstest(draws.numpy(), "t", args=(3.0,)).pvalue > 1e-3


def test_errors_name_the_limits():
    model = tiny()
    with pytest.raises(GenzooError, match=r"1\.\.12.*data\.window=25.*context=11"):
        model.forecast(sines(2), 13, 4)
    with pytest.raises(GenzooError, match="horizon must be"):
        model.forecast(sines(2), 0, 4)
    with pytest.raises(GenzooError, match="at least 12"):
        model.forecast(sines(2, length=11), 3, 4)
    with pytest.raises(GenzooError, match="2 features"):
        model.forecast(sines(2, features=3), 3, 4)
    with pytest.raises(GenzooError, match="no training contexts"):
        model.sample(2)
    with pytest.raises(GenzooError, match="start must be"):
        model.sample(2, start="chain")
    with pytest.raises(GenzooError, match="context must be in 1..23"):
        tiny(context=24)
    with pytest.raises(GenzooError, match="windows"):
        model.log_prob(torch.zeros(2, 20, 2))
    assert model.max_horizon() == 12 and tiny(context=20).max_horizon() == 4


def test_models_without_forecasts_say_so():
    cls = get_model_class("vae")
    assert cls.capabilities()["forecasts"] is False and DeepAR.capabilities()["forecasts"] is True
    info = DataInfo(name="t", modality="vector", shape=(2,), levels=None, low=-1.0, high=1.0)
    with pytest.raises(GenzooError, match="does not forecast"):
        cls.for_data(info).forecast(torch.zeros(1, 4, 2), 2, 3)


def test_trained_median_forecast_beats_the_last_value():
    """A pure sine: a few hundred steps make the median path better than repeating the last value."""
    train, test = sines(1024, features=1, noise=0.0), sines(128, features=1, noise=0.0, seed=1)
    model = tiny(shape=(24, 1))
    fit(model, train, steps=300)
    history, future = test[:, :12], test[:, 12:]
    median = model.forecast(history, 12, 50, generator=torch.Generator().manual_seed(0)).median(1).values
    naive = history[:, -1:].expand_as(future)
    model_error, naive_error = (median - future).abs().mean(), (naive - future).abs().mean()
    assert model_error < 0.5 * naive_error, (model_error, naive_error)


def test_save_and_load_round_trip(tmp_path):
    model = tiny(cell="lstm")
    model.prepare(sines(40))
    model.save_pretrained(tmp_path)
    loaded = load(tmp_path)
    assert isinstance(loaded, DeepAR) and loaded.config == model.config
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k
    model.eval()
    seed = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    assert torch.equal(model.sample(3, generator=seed()), loaded.sample(3, generator=seed()))
    history = sines(2)
    assert torch.equal(
        model.forecast(history, 4, 3, generator=seed()), loaded.forecast(history, 4, 3, generator=seed())
    )

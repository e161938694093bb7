"""Time-series metrics: forecast scores against properscoring and hand-computed values, and TimeGAN's
discriminative and predictive scores on data whose right answer is known (same distribution vs
clearly different; a learnable target vs noise)."""

from __future__ import annotations

import numpy as np
import properscoring
import pytest
import torch
from torch import nn

from genzoo.errors import GenzooError
from genzoo.metrics import timeseries
from genzoo.metrics.timeseries import (
    _SideBySide,
    coverage,
    crps_from_samples,
    discriminative_score,
    forecast_metrics,
    mase,
    predictive_score,
    smape,
)


def _sines(n: int, length: int = 16, features: int = 3, seed: int = 0, noise: float = 0.05) -> np.ndarray:
    """TimeGAN-like sines in 0..1: each feature with its own random frequency and phase, plus noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(length)[None, :, None]
    freq = rng.uniform(0.1, 0.5, (n, 1, features))
    phase = rng.uniform(0, 2 * np.pi, (n, 1, features))
    x = 0.5 + 0.4 * np.sin(freq * t + phase) + noise * rng.normal(size=(n, length, features))
    return x.astype(np.float32)


def _shared_sines(n: int, length: int = 16, features: int = 3, seed: int = 0) -> np.ndarray:
    """Sines whose features share one frequency and phase (shifted per feature), so the last feature's
    next value can be read from the other features: a predictable target."""
    rng = np.random.default_rng(seed)
    t = np.arange(length)[None, :, None]
    freq = rng.uniform(0.2, 0.6, (n, 1, 1))
    phase = rng.uniform(0, 2 * np.pi, (n, 1, 1))
    shift = 0.4 * np.arange(features)[None, None, :]
    return (0.5 + 0.4 * np.sin(freq * t + phase + shift)).astype(np.float32)


# ----------------------------------------------------------------------------- CRPS


@pytest.mark.parametrize("shape", [(7,), (5, 3)])
def test_crps_equals_properscoring(shape):
    rng = np.random.default_rng(0)
    samples = rng.normal(size=(50, *shape)) * 2 + 1
    samples[:10] = np.round(samples[:10])  # ties between samples
    truth = rng.normal(size=shape)
    ours = crps_from_samples(samples, truth)
    reference = properscoring.crps_ensemble(truth, np.moveaxis(samples, 0, -1))
    assert ours.shape == shape
    np.testing.assert_allclose(ours, reference, atol=1e-6, rtol=0)


def test_crps_of_two_samples_by_hand():
    # X uniform on {0, 2}, y = 0.5: E|X - y| = (0.5 + 1.5) / 2 = 1, E|X - X'| = 2 * 2 / 4 = 1.
    assert crps_from_samples(np.array([[2.0], [0.0]]), np.array([0.5]))[0] == pytest.approx(0.5)


def test_crps_approaches_the_gaussian_closed_form():
    mu, sigma = 1.0, 2.0
    truth = np.array([-3.0, 0.0, 1.0, 2.5, 6.0])
    exact = properscoring.crps_gaussian(truth, mu, sigma)
    rng = np.random.default_rng(1)
    errors = []
    for count in (20, 200_000):
        samples = rng.normal(mu, sigma, size=(count, len(truth)))
        errors.append(np.abs(crps_from_samples(samples, truth) - exact).max())
    assert errors[1] < 0.01 * sigma
    assert errors[1] < errors[0]


# ----------------------------------------------------------------------------- MASE, sMAPE, coverage


def test_mase_of_perfect_and_naive_forecasts():
    rng = np.random.default_rng(2)
    history = rng.normal(size=40).cumsum()
    truth = rng.normal(size=6)
    assert mase(truth, truth, history) == 0.0
    # The naive forecast over the history itself scores exactly 1, for any season.
    for season in (1, 4):
        assert mase(history[season:], history[:-season], history, season=season) == pytest.approx(1.0)


def test_mase_scales_each_feature_by_its_own_naive_error():
    rng = np.random.default_rng(3)
    history = rng.normal(size=(30, 2)).cumsum(axis=0)
    truth, pred = rng.normal(size=(5, 2)), rng.normal(size=(5, 2))
    scaled = np.array([1.0, 1000.0])  # the second feature in other units
    assert mase(truth * scaled, pred * scaled, history * scaled) == pytest.approx(mase(truth, pred, history))
    by_feature = [mase(truth[:, f], pred[:, f], history[:, f]) for f in range(2)]
    assert mase(truth, pred, history) == pytest.approx(np.mean(by_feature))


def test_smape_known_values_and_zero_over_zero():
    assert smape([1.0, 2.0], [1.0, 4.0]) == pytest.approx((0 + 200 * 2 / 6) / 2)
    assert smape([0.0, 3.0], [0.0, 3.0]) == 0.0  # 0/0 is a perfect forecast
    assert smape([0.0], [5.0]) == pytest.approx(200.0)
    assert smape([-1.0], [1.0]) == pytest.approx(200.0)


def test_coverage_counts_the_closed_interval():
    truth = np.array([0.0, 1.0, 2.0, 3.0])
    assert coverage([0.0, 0.0, 2.5, 3.0], [1.0, 0.5, 3.0, 3.0], truth) == 0.5


def test_forecast_metrics_of_a_sampled_forecast():
    rng = np.random.default_rng(4)
    history = rng.normal(size=(50, 2)).cumsum(axis=0)
    truth = history[-1] + rng.normal(size=(8, 2))
    samples = truth + rng.normal(size=(4000, 8, 2))  # centred on the truth, sd 1
    result = forecast_metrics(samples, truth, history, interval=0.8)
    assert set(result) == {"mase", "smape", "crps", "scaled_crps", "coverage", "interval"}
    scale = np.abs(np.diff(history, axis=0)).mean(axis=0)
    crps = crps_from_samples(samples, truth)
    assert result["crps"] == pytest.approx(crps.mean())
    assert result["scaled_crps"] == pytest.approx((crps / scale).mean())
    assert result["coverage"] == 1.0  # the truth is the centre of every interval
    assert result["mase"] < 0.1  # the median is within sampling noise of the truth
    as_tensors = forecast_metrics(
        torch.from_numpy(samples), torch.from_numpy(truth), torch.from_numpy(history)
    )
    assert as_tensors == pytest.approx(result)
    # A forecast centred elsewhere covers nothing and scores worse everywhere.
    shifted = forecast_metrics(samples + 10, truth, history)
    assert shifted["coverage"] == 0.0
    assert shifted["crps"] > result["crps"] + 5 and shifted["mase"] > result["mase"]


# ----------------------------------------------------------------------------- TimeGAN's scores


def test_side_by_side_networks_equal_separate_ones():
    generators = [torch.Generator().manual_seed(s) for s in (1, 2, 3)]
    model = _SideBySide(2, 4, 2, generators)
    x = torch.randn(6, 5, 3 * 2)
    out = model.last(x)
    out.sum().backward()
    model.keep_apart()
    for c in range(3):
        alone = _SideBySide(2, 4, 2, [torch.Generator().manual_seed(c + 1)])
        gru, head = nn.GRU(2, 4, num_layers=2, batch_first=True), nn.Linear(4, 1)
        with torch.no_grad():  # copy c's blocks of the side-by-side weights
            for (name, p), (_, q) in zip(model.named_parameters(), alone.named_parameters(), strict=True):
                gates = 3 if name.startswith("rnn.") else 1
                blocks = p.view(gates, 3, -1, *p.shape[1:])
                own = blocks.view(*blocks.shape[:3], 3, -1)[:, c, :, c] if p.ndim == 2 else blocks[:, c]
                np.testing.assert_array_equal(own.reshape(q.shape), q)  # drawn as one network draws them
                target = (gru if name.startswith("rnn.") else head).get_parameter(name.split(".", 1)[1])
                target.copy_(q)
        _, state = gru(x[:, :, 2 * c : 2 * c + 2])
        single = head(state[-1]).squeeze(-1)
        torch.testing.assert_close(out[:, c], single, atol=1e-6, rtol=1e-5)
        single.sum().backward()
        grad = model.rnn.weight_hh_l1.grad.view(3, 3, 4, 3, 4)[:, c, :, c]
        torch.testing.assert_close(grad.reshape(12, 4), gru.weight_hh_l1.grad, atol=1e-6, rtol=1e-5)
    # The blocks between copies get no gradient, so Adam never connects them.
    between = model.rnn.weight_ih_l0.grad.view(3, 3, 4, 3, 2)
    assert between[:, 0, :, 1].abs().max() == 0 and between[:, 2, :, 0].abs().max() == 0


def test_discriminative_score_same_distribution_is_near_zero():
    real, other = _sines(500, seed=0), _sines(500, seed=1)
    result = discriminative_score(real, other, repeats=1, iterations=200, batch_size=64)
    assert set(result) == {"discriminative_score", "discriminative_score_std", "repeats"}
    assert result["repeats"] == 1 and result["discriminative_score_std"] == 0.0
    assert result["discriminative_score"] < 0.1


def test_discriminative_score_clearly_different_is_near_half():
    real = _sines(500, seed=0)
    constant = np.full_like(real, 0.2)
    result = discriminative_score(real, constant, repeats=1, iterations=200, batch_size=64)
    assert result["discriminative_score"] > 0.4


def test_discriminative_score_papers_classifier_is_one_layer_of_half_the_features():
    real, other = _sines(60, seed=0), _sines(60, seed=1)
    seen = []
    original = timeseries._SideBySide.__init__

    def spy(self, inputs, hidden, layers, generators):
        seen.append((hidden, layers))
        original(self, inputs, hidden, layers, generators)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(timeseries._SideBySide, "__init__", spy)
        papers = discriminative_score(real, other, repeats=1, iterations=5, layers=1, hidden_size=1)
        ours = discriminative_score(real, other, repeats=1, iterations=5)
    assert seen == [(1, 1), (4, 2)]  # 3 features: the paper's 3 // 2 = 1 unit; ours 2 layers of 4
    assert 0 <= papers["discriminative_score"] <= 0.5 and 0 <= ours["discriminative_score"] <= 0.5


def test_discriminative_score_repeats_seeds_and_progress(monkeypatch):
    real, other = _sines(60, seed=0), _sines(80, seed=1)  # unequal sizes: 60 of each are used
    calls = []
    state = torch.get_rng_state()
    first = discriminative_score(
        real, other, repeats=3, iterations=5, seed=7, progress=lambda d, t: calls.append((d, t))
    )
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is left alone
    assert first == discriminative_score(real, other, repeats=3, iterations=5, seed=7)
    assert first["repeats"] == 3 and first["discriminative_score_std"] >= 0
    assert calls[-1] == (5, 5)  # three repeats side by side share their 5 steps
    # Each repeat trained alone gives the same scores as the three side by side.
    monkeypatch.setattr(timeseries, "SIDE_BY_SIDE_UNITS", 1)
    calls.clear()
    alone = discriminative_score(
        real, other, repeats=3, iterations=5, seed=7, progress=lambda d, t: calls.append((d, t))
    )
    assert alone == pytest.approx(first, abs=1e-12)
    assert calls[-1] == (15, 15)


def test_predictive_score_real_on_real_beats_noise():
    real = _shared_sines(400, length=12, seed=0)
    fresh = _shared_sines(400, length=12, seed=1)
    noise = np.random.default_rng(2).uniform(size=real.shape).astype(np.float32)
    options = {"repeats": 1, "iterations": 600, "batch_size": 32}
    on_real = predictive_score(real, fresh, **options)["predictive_score"]
    on_noise = predictive_score(real, noise, **options)["predictive_score"]
    assert on_real < 0.6 * on_noise


def test_predictive_score_univariate_is_one_step_ahead():
    real = _shared_sines(200, features=1)
    result = predictive_score(real, real, repeats=2, iterations=20, batch_size=32)
    assert result["repeats"] == 2 and 0 < result["predictive_score"] < 1


# ----------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda w: discriminative_score(w, w[:, :, :2], iterations=1), "shape"),
        (lambda w: predictive_score(w, w[:, :10], iterations=1), "shape"),
        (lambda w: discriminative_score(w, np.where(w > 0.9, np.nan, w), iterations=1), "NaN"),
        (lambda w: discriminative_score(w[:5], w, iterations=1), "at least 10"),
        (lambda w: predictive_score(w[:, :1], w[:, :1], iterations=1), "at least 2 time steps"),
        (lambda w: discriminative_score(w[0], w[0], iterations=1), "(N, L, F)"),
        (lambda w: discriminative_score(w, w, repeats=0), "repeats"),
        (lambda w: predictive_score(w, w, iterations=1, hidden_size=0), "hidden_size"),
        (lambda w: discriminative_score(w, w, iterations=1, layers=0), "layers"),
    ],
)
def test_bad_windows_raise(call, message):
    with pytest.raises(GenzooError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call(_sines(20))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: crps_from_samples(np.zeros((1, 4)), np.zeros(4)), "at least 2"),
        (lambda: crps_from_samples(np.zeros((5, 4)), np.zeros(3)), "shape"),
        (lambda: crps_from_samples(np.zeros((5, 4)), np.array([0, 1, np.nan, 2])), "NaN"),
        (lambda: mase(np.zeros(3), np.zeros(4), np.arange(10.0)), "shape"),
        (lambda: mase(np.zeros(3), np.zeros(3), np.arange(2.0), season=2), "at least 3"),
        (lambda: mase(np.zeros(3), np.ones(3), np.ones(10)), "divides by zero"),
        (lambda: mase(np.zeros((3, 2)), np.ones((3, 2)), np.arange(10.0)), r"\(T, 2\)"),
        (lambda: mase(np.zeros(3), np.ones(3), np.arange(10.0), season=0), "season"),
        (lambda: smape(np.zeros((2, 2, 2)), np.zeros((2, 2, 2))), "one forecast"),
        (lambda: coverage(np.ones(2), np.zeros(2), np.zeros(2)), "lower bounds"),
        (lambda: forecast_metrics(np.zeros((1, 3)), np.zeros(3), np.arange(9.0)), "at least 2"),
        (lambda: forecast_metrics(np.zeros((4, 3)), np.zeros(3), np.arange(9.0), interval=80), "interval"),
    ],
)
def test_bad_forecasts_raise(call, message):
    with pytest.raises(GenzooError, match=message):
        call()

"""The Gaussian copula and TabDDPM on a small synthetic table: what each must reproduce, conditions,
the multinomial posterior against Bayes' rule, and seeded sampling."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

import genzoo
from genzoo.data import load_dataset
from genzoo.data.tabular import Column, TableSchema
from genzoo.models import get_model_class, load
from genzoo.models.copula import grid_cdf, grid_quantile
from genzoo.models.tabddpm import TabDDPM, TabDDPMConfig


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """2,000 rows: a, b correlated numbers (rho 0.8, b 10% missing); c a category cut from a latent
    score correlated 0.9 with a (lo 67%, hi 31%, rare 2%: a Gaussian copula's own model); k a small
    whole number, independent."""
    rng = np.random.default_rng(0)
    n = 2000
    x, e, latent = rng.standard_normal((3, n))
    a = np.round(50 + 10 * x, 3)
    b = np.round(20 + 5 * (0.8 * x + 0.6 * e), 3)
    b[rng.random(n) < 0.1] = np.nan
    latent = 0.9 * x + math.sqrt(1 - 0.81) * latent
    c = np.select([latent < 0.44, latent < 2.054], ["lo", "hi"], "rare").astype(object)
    k = rng.integers(0, 5, n)
    path = tmp_path_factory.mktemp("table") / "t.csv"
    pd.DataFrame({"a": a, "b": b, "c": c, "k": k}).to_csv(path, index=False)
    return path, load_dataset(str(path))


@pytest.fixture(scope="module")
def copula(table):
    _, data = table
    model = get_model_class("gaussian-copula").for_data(data.info)
    model.prepare(data.split("train").tensors[0])
    return model


def frame(model, rows: torch.Tensor) -> pd.DataFrame:
    return model.schema.decode(rows)


# ---- the Gaussian copula ---------------------------------------------------------------------------
def test_copula_reproduces_correlation_marginals_and_rates(copula, table):
    _, data = table
    real = data.frames["train"]
    fake = frame(copula, copula.sample(6000, generator=torch.Generator().manual_seed(0)))
    assert fake["a"].corr(fake["b"]) == pytest.approx(real["a"].corr(real["b"]), abs=0.1)
    for q in (0.1, 0.5, 0.9):
        assert fake["a"].quantile(q) == pytest.approx(real["a"].quantile(q), abs=1.0)  # a's sd is 10
        assert fake["b"].quantile(q) == pytest.approx(real["b"].quantile(q), abs=0.5)  # b's sd is 5
    assert fake["b"].isna().mean() == pytest.approx(real["b"].isna().mean(), abs=0.02)
    assert (fake["c"] == "rare").mean() == pytest.approx((real["c"] == "rare").mean(), abs=0.01)
    assert set(fake["k"].unique()) <= set(range(5))


def test_copula_condition_on_a_category_shifts_the_correlated_number(copula, table):
    _, data = table
    real = data.frames["train"]
    rows = copula.sample(4000, generator=torch.Generator().manual_seed(1), where={"c": "hi"})
    fake = frame(copula, rows)
    assert (fake["c"] == "hi").all() and copula.last_where_report["rows_set_directly"] == 0
    expected = real.loc[real["c"] == "hi", "a"].mean()
    assert expected - real["a"].mean() > 5  # the condition moves a by more than half its sd (10)
    assert fake["a"].mean() == pytest.approx(expected, abs=1.0)


def test_copula_conditions_on_a_number_and_two_categories(copula):
    rows = copula.sample(500, generator=torch.Generator().manual_seed(2), where={"c": "lo", "k": 3, "a": 60})
    fake = frame(copula, rows)
    assert (fake["c"] == "lo").all() and (fake["k"] == 3).all() and (fake["a"] == 60).all()
    # Given a = 60 (x = 1), b's conditional mean is 20 + 5 * 0.8 = 24 under the data's model.
    assert fake["b"].mean() == pytest.approx(24, abs=1.0)


def test_quantile_functions_invert_and_handle_ties():
    grid = torch.tensor([[0.0, 0.0, 0.0, 1.0, 2.0]], dtype=torch.float64)  # a spike at 0
    u = grid_cdf(grid, torch.tensor([[0.0], [1.5], [float("nan")]]))
    assert u[0, 0] == pytest.approx(0.25)  # the middle of the run of zeros (grid steps of 1/4)
    assert u[1, 0] == pytest.approx(0.875) and torch.isnan(u[2, 0])
    back = grid_quantile(grid, u[:2])
    assert back[:, 0].tolist() == pytest.approx([0.0, 1.5])


def test_copula_trains_zero_steps_and_writes_a_run(table, tmp_path):
    path, _ = table
    model, metrics = genzoo.train("gaussian-copula", str(path), tmp_path / "run", quiet=True)
    run = tmp_path / "run"
    for name in ("config.json", "model.safetensors", "trainer_state.pt", "metrics.jsonl", "README.md"):
        assert (run / name).is_file(), name
    assert "val_loss" in metrics and math.isfinite(metrics["val_loss"])
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [0]
    a = load(run).sample(50, generator=torch.Generator().manual_seed(5))
    b = model.sample(50, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a.nan_to_num(-1), b.nan_to_num(-1))  # NaN: a missing b


# ---- TabDDPM --------------------------------------------------------------------------------------
def test_tabddpm_trains_and_obeys_two_conditions(table, tmp_path):
    path, _ = table
    settings = {"max_steps": 30, "batch_size": 256, "d_layers": [64, 64], "num_steps": 100, "eval_every": 0}
    model, metrics = genzoo.train("tabddpm", str(path), tmp_path / "run", settings, quiet=True)
    assert math.isfinite(metrics["loss"]) and math.isfinite(metrics["val_loss"])
    rows = model.sample(40, generator=torch.Generator().manual_seed(0), where={"c": "rare", "k": 3})
    fake = frame(model, rows)
    assert (fake["c"] == "rare").all() and (fake["k"] == 3).all()
    assert model.last_where_report == {"conditions": 2, "rows_set_directly": 0}

    state = torch.get_rng_state()
    a = model.sample(20, generator=torch.Generator().manual_seed(7), steps=20)
    b = model.sample(20, generator=torch.Generator().manual_seed(7), steps=20)
    c = model.sample(20, generator=torch.Generator().manual_seed(8), steps=20)
    assert torch.equal(torch.get_rng_state(), state), "sampling must not touch the global RNG"
    assert torch.equal(a.nan_to_num(-1), b.nan_to_num(-1)) and not torch.equal(
        a.nan_to_num(-1), c.nan_to_num(-1)
    )


def tiny_tabddpm(k: int, num_steps: int = 6) -> TabDDPM:
    schema = TableSchema([Column("c", "categorical", categories=[str(i) for i in range(k)])])
    return TabDDPM(TabDDPMConfig(table=schema.to_json(), num_steps=num_steps, schedule="linear"))


def brute_force_posterior(betas: np.ndarray, k: int, t: int, s: int, x0: np.ndarray, xt: int) -> np.ndarray:
    """q(x_s | x_t, x_0) for steps s < t (1-based, s = 0 is x_0) by Bayes' rule on transition matrices:
    q(x_t | x_s) q(x_s | x_0) / q(x_t | x_0), x_0 a distribution over the K categories."""

    def transition(first: int, last: int) -> np.ndarray:  # q(x_last | x_first) as a K x K matrix
        m = np.eye(k)
        for step in range(first + 1, last + 1):
            m = m @ ((1 - betas[step - 1]) * np.eye(k) + betas[step - 1] / k)
        return m

    prior = x0 @ transition(0, s)  # q(x_s | x_0)
    joint = prior * transition(s, t)[:, xt]
    return joint / joint.sum()


@pytest.mark.parametrize("k", [2, 3, 5])
def test_multinomial_posterior_is_bayes_rule(k):
    model = tiny_tabddpm(k)
    schedule = model.schedule
    betas = schedule.betas.numpy()
    abar = torch.cat([torch.ones(1, dtype=torch.float64), schedule.alphas_cumprod])  # abar[t], t = 0..T
    soft = np.random.default_rng(k).dirichlet(np.ones(k))
    for x0 in [np.eye(k)[k - 1], soft]:
        for t, s in [(1, 0), (2, 1), (4, 3), (6, 5), (5, 2), (6, 0)]:  # (5, 2), (6, 0): respaced steps
            for xt in range(k):
                log_x0 = torch.log(torch.tensor(x0, dtype=torch.float32).clamp(min=1e-30))[None]
                log_xt = torch.log(torch.eye(k)[xt].clamp(min=1e-30))[None]
                got = model.log_posterior(log_x0, log_xt, abar[t], abar[s]).exp()[0].double()
                assert float(got.sum()) == pytest.approx(1.0, abs=1e-6)
                expected = brute_force_posterior(betas, k, t, s, x0, xt)
                np.testing.assert_allclose(got.numpy(), expected, atol=1e-5)


def test_multinomial_loss_at_t1_is_the_decoder_nll():
    """At t = 1 the true posterior is x_0 itself, so the KL is -log p(x_0 | x_1)."""
    model = tiny_tabddpm(3)
    s = model.schedule
    log_x0 = torch.log(torch.eye(3)[[0]].clamp(min=1e-30))
    log_x1 = torch.log(torch.eye(3)[[1]].clamp(min=1e-30))
    log_x0_hat = torch.log_softmax(torch.tensor([[0.3, -1.0, 2.0]]), 1)
    one = torch.ones((), dtype=torch.float64)
    true = model.log_posterior(log_x0, log_x1, s.alphas_cumprod[0], one)
    pred = model.log_posterior(log_x0_hat, log_x1, s.alphas_cumprod[0], one)
    kl = float((true.exp() * (true - pred)).sum())
    assert kl == pytest.approx(-float(pred[0, 0]), rel=1e-5)


@pytest.mark.parametrize("name", ["gaussian-copula", "tabddpm"])
@pytest.mark.parametrize("kinds", ["numbers", "categories"])
def test_tables_of_one_kind(name, kinds, tmp_path):
    """A table of numbers only, or of categories only: the empty half must not break loss or sampling."""
    rng = np.random.default_rng(0)
    if kinds == "numbers":
        df = pd.DataFrame({"u": rng.normal(size=60).round(3), "v": rng.integers(0, 9, 60)})
    else:
        df = pd.DataFrame({"u": rng.choice(["x", "y"], 60), "v": rng.choice(["p", "q", "r"], 60)})
    df.to_csv(tmp_path / "t.csv", index=False)
    data = load_dataset(str(tmp_path / "t.csv"))
    cls = get_model_class(name)
    model = cls.for_data(data.info, **({"num_steps": 10} if name == "tabddpm" else {}))
    x = data.split("train").tensors[0]
    model.prepare(x)
    assert torch.isfinite(model.loss((x,))["loss"])
    rows = model.sample(8, generator=torch.Generator().manual_seed(0), where={"v": df["v"].iloc[0]})
    assert rows.shape == (8, 2) and torch.isfinite(rows).all()

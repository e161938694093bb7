"""CTGAN and TVAE on a small seeded table: decoded samples look like the table, `where` holds
(a rare category, two conditions at once), sampling repeats for a seed, CTGAN's training by
sampling follows its laws, and a short TVAE training moves the samples towards the data."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from genzoo import train
from genzoo.data import load_dataset
from genzoo.errors import GenzooError
from genzoo.models import get_model_class

N_ROWS = 600
SETTINGS = {"max_steps": 40, "batch_size": 100, "eval_every": 0, "checkpoint_every": 1000}


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> str:
    """A bimodal number with missing values (70% near -5, 30% near 5), a whole number, a colour
    with a rare 'violet' (3%) and a boolean."""
    rng = np.random.default_rng(0)
    high = rng.random(N_ROWS) < 0.3
    x = np.round(np.where(high, rng.normal(5, 0.5, N_ROWS), rng.normal(-5, 1, N_ROWS)), 3)
    x[rng.random(N_ROWS) < 0.1] = np.nan
    count = rng.poisson(3, N_ROWS)
    color = rng.choice(["red", "blue", "violet"], N_ROWS, p=[0.6, 0.37, 0.03])
    flag = np.where(rng.random(N_ROWS) < 0.4, "yes", "no")
    path = tmp_path_factory.mktemp("table") / "table.csv"
    pd.DataFrame({"x": x, "count": count, "color": color, "flag": flag}).to_csv(path, index=False)
    return str(path)


@pytest.fixture(scope="module")
def trained(table, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("runs")
    return {m: train(m, table, out / m, SETTINGS, quiet=True)[0] for m in ("ctgan", "tvae")}


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("name", ["ctgan", "tvae"])
def test_samples_decode_to_the_tables_columns(name, trained, table):
    model = trained[name]
    data = load_dataset(table)
    real = data.schema.decode(data.split("train").tensors[0])
    fake = model.schema.decode(model.sample(200, generator=seeded(0)))
    assert list(fake.columns) == ["x", "count", "color", "flag"]
    assert fake.dtypes.to_dict() == real.dtypes.to_dict()
    assert set(fake["color"]) <= {"red", "blue", "violet"}
    assert set(fake["flag"].dropna()) <= {True, False}
    present = fake["x"].dropna()
    assert present.between(real["x"].min(), real["x"].max()).all()
    assert fake["count"].dropna().between(real["count"].min(), real["count"].max()).all()


@pytest.mark.parametrize("name", ["ctgan", "tvae"])
def test_a_rare_category_can_be_asked_for(name, trained):
    model = trained[name]
    rows = model.schema.decode(model.sample(30, generator=seeded(1), where={"color": "violet"}))
    assert (rows["color"] == "violet").all()
    assert model.last_where_report["conditions"] == 1


@pytest.mark.parametrize("name", ["ctgan", "tvae"])
def test_two_conditions_hold_together(name, trained):
    model = trained[name]
    rows = model.schema.decode(model.sample(40, generator=seeded(2), where="color=blue,flag=true"))
    assert len(rows) == 40
    assert (rows["color"] == "blue").all() and (rows["flag"] == True).all()  # noqa: E712


@pytest.mark.parametrize("name", ["ctgan", "tvae"])
def test_sampling_repeats_for_a_seed_and_leaves_the_global_rng(name, trained):
    model = trained[name]
    state = torch.get_rng_state()
    a = model.sample(50, generator=seeded(3), where={"color": "red"})
    b = model.sample(50, generator=seeded(3), where={"color": "red"})
    c = model.sample(50, generator=seeded(4), where={"color": "red"})
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a.nan_to_num(-1), b.nan_to_num(-1)) and not torch.equal(
        a.nan_to_num(-1), c.nan_to_num(-1)
    )


def test_sampling_refuses_unknown_options(trained):
    for model in trained.values():
        with pytest.raises(GenzooError, match="no sampling options"):
            model.sample(3, generator=seeded(0), temperature=0.5)


def test_ctgan_training_by_sampling_follows_the_log_frequency_law(trained, table):
    model = trained["ctgan"]
    rows = load_dataset(table).split("train").tensors[0][:97]  # not a whole number of packs
    j = model.schema.names.index("color")
    d = next(i for i, s in enumerate(model.discrete) if s.column == j)
    start, width = model.cond_starts[d], model.discrete[d].width
    torch.manual_seed(0)
    chosen = []
    for _ in range(200):
        pick, cond, column, category = model._training_conditions(rows)
        assert len(pick) == 100 and cond.shape == (100, model.cond_width)
        # Each real row has the category its conditional vector names.
        for e, s in enumerate(model.discrete):
            mine = column == e
            assert torch.equal(rows[pick[mine], s.column].long(), category[mine])
        chosen.append(category[column == d])
    seen = torch.bincount(torch.cat(chosen), minlength=width).double()
    law = torch.log1p(model.category_counts[start : start + width].double())
    present = torch.bincount(rows[:, j].long(), minlength=width) > 0
    law = law * present / (law * present).sum()
    assert torch.allclose(seen / seen.sum(), law, atol=0.02)


def test_ctgan_unconditioned_vectors_follow_the_training_frequencies(trained):
    model = trained["ctgan"]
    cond = model._sampling_conditions(40_000, seeded(0), None)
    counts = model.category_counts
    expected = torch.cat(
        [
            counts[a : a + s.width] / counts[a : a + s.width].sum()
            for s, a in zip(model.discrete, model.cond_starts, strict=True)
        ]
    ) / len(model.discrete)
    assert torch.allclose(cond.mean(0), expected, atol=0.01)


def test_tvae_training_moves_samples_towards_the_data(table, tmp_path):
    """The distance from the data's statistics (the number's mean in standard deviations, the colour's
    and the flag's total variation) shrinks with training."""
    data = load_dataset(table)
    real = data.schema.decode(data.split("train").tensors[0])

    def distance(model) -> float:
        fake = model.schema.decode(model.sample(2000, generator=seeded(0)))
        gap = abs(fake["x"].mean() - real["x"].mean()) / real["x"].std()
        for col in ("color", "flag"):
            p = real[col].value_counts(normalize=True)
            q = fake[col].value_counts(normalize=True).reindex(p.index, fill_value=0.0)
            gap += 0.5 * float((p - q).abs().sum() + (1 - q.sum()))
        return float(gap)

    torch.manual_seed(0)
    untrained = get_model_class("tvae").for_data(data.info)
    untrained.prepare(data.split("train").tensors[0])
    model, _ = train("tvae", table, tmp_path / "run", {**SETTINGS, "max_steps": 150}, quiet=True)
    before, after = distance(untrained), distance(model)
    assert math.isfinite(after) and after < 0.5 * before, (before, after)


def test_ctgan_learns_to_obey_its_conditional_vector(table, tmp_path):
    """Rows generated for each colour's conditional vector have that colour far more often after a
    short training (the cross-entropy penalty's work) than at initialisation."""
    data = load_dataset(table)
    j = data.schema.names.index("color")

    def obeyed(model) -> float:
        d = next(i for i, s in enumerate(model.discrete) if s.column == j)
        rates = []
        with torch.no_grad(), model.inference():
            for k in range(model.discrete[d].width):
                rows = model._draw(1000, seeded(0), model.cond_starts[d] + k)
                rates.append(float((rows[:, j] == k).float().mean()))
        return sum(rates) / len(rates)

    torch.manual_seed(0)
    untrained = get_model_class("ctgan").for_data(data.info)
    untrained.prepare(data.split("train").tensors[0])
    model, _ = train("ctgan", table, tmp_path / "run", {**SETTINGS, "max_steps": 60, "lr": 2e-3}, quiet=True)
    before, after = obeyed(untrained), obeyed(model)
    assert after > before + 0.25, (before, after)


def test_tvae_encodes_rows_to_their_posterior_mean(trained, table):
    model = trained["tvae"]
    rows = load_dataset(table).split("val").tensors[0]
    z = model.encode(rows)
    assert z.shape == (len(rows), model.config.latent_dim) and torch.isfinite(z).all()
    assert torch.equal(z, model.encode(rows))


def test_ctgan_takes_batches_smaller_than_a_pack(trained, table):
    data = load_dataset(table)
    rows = data.split("train").tensors[0]
    model = trained["ctgan"]
    model.train()
    for phase in ("disc", "gen"):
        assert torch.isfinite(model.loss((rows[:3],), phase=phase)["loss"])  # drawn up to one pack
    single = get_model_class("ctgan").for_data(data.info, pac=1)
    single.prepare(rows)
    pick, cond, column, _ = single._training_conditions(rows[:1])  # one column chosen, one left empty
    assert len(pick) == 1 and cond.sum() == 1

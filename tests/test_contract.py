"""The model contract (DESIGN.md), checked for every registered model the day it is registered."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.io import savemat

from genzoo.data import load_dataset
from genzoo.errors import GenzooError
from genzoo.models import GenerativeModel, get_model_class, load, model_names

# One small dataset per modality, embedded or written here, so each model is checked on data it
# declares without needing ../shared/data.
DATA_FOR_MODALITY = {
    "image": "digits",
    "vector": "toy2d-ring",
    "text-pairs": "dates",
    "audio": "notes",
    "series": "sines",
}
_load = functools.lru_cache(maxsize=None)(load_dataset)  # text data take seconds to tokenize

# A slice of real outputs per model (a seeded sample, log_prob of fixed data), so a refactor that
# changes results fails here. A new model, or a change meant to alter results: regenerate with
# `GENZOO_UPDATE_PINS=1 pytest tests/test_contract.py` and say why in the commit message.
PINS = Path(__file__).with_name("pinned_outputs.json")


def summary(values) -> dict | list:
    """Strings as they are; a tensor as its float64 sum (of the values that are not NaN: a table's
    missing numbers) and first four values."""
    if isinstance(values, list):
        return values[:2]
    flat = values.detach().double().flatten()
    return {"sum": float(flat.nansum()), "first": [float(v) for v in flat[:4]]}


def same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal, NaN where the other is NaN (table rows hold missing numbers as NaN)."""
    return (
        a.shape == b.shape
        and torch.equal(a.isnan(), b.isnan())
        and torch.equal(a.nan_to_num(), b.nan_to_num())
    )


def check_pinned(model: str, key: str, value: dict | list) -> None:
    pins = json.loads(PINS.read_text()) if PINS.is_file() else {}
    if os.environ.get("GENZOO_UPDATE_PINS") == "1":
        pins.setdefault(model, {})[key] = value
        PINS.write_text(json.dumps(pins, indent=1, sort_keys=True) + "\n")
        return
    assert key in pins.get(model, {}), f"no pinned {key} for '{model}'; see PINS in {__file__}"
    expected = pins[model][key]
    if isinstance(expected, list):
        assert value == expected
    else:
        assert value["sum"] == pytest.approx(expected["sum"], rel=1e-4, abs=1e-6)
        assert value["first"] == pytest.approx(expected["first"], rel=1e-4, abs=1e-6, nan_ok=True)


@pytest.fixture(scope="session")
def data_for_modality(tmp_path_factory) -> dict[str, str]:
    """The embedded datasets, plus a small text file and a small piano-roll .mat written for the session."""
    folder = tmp_path_factory.mktemp("contract-data")
    rng = np.random.default_rng(0)
    words = ["the", "king", "of", "night", "speaks", "and", "we", "hear", "a", "song", "my", "lord"]
    text = folder / "words.txt"
    text.write_text(" ".join(rng.choice(words, 8000)) + "\n")
    rolls = np.empty((1, 6), dtype=object)
    for i in range(6):
        rolls[0, i] = (rng.random((24, 88)) < 0.05).astype(np.float64)
    mat = folder / "rolls.mat"
    savemat(mat, {"traindata": rolls, "validdata": rolls[:, :2], "testdata": rolls[:, 2:4]})
    return {**DATA_FOR_MODALITY, "text": str(text), "music": str(mat), "table": str(small_table(folder))}


def small_table(folder: Path) -> Path:
    """300 rows of every column kind, with missing values and a rare category."""
    rng = np.random.default_rng(0)
    n = 300
    age = rng.integers(18, 80, n)
    income = np.round(rng.lognormal(10, 0.5, n) + 500 * age, 2)
    income[rng.random(n) < 0.1] = np.nan
    city = rng.choice(["Paris", "Lyon", "Nice"], n, p=[0.6, 0.35, 0.05]).astype(object)
    city[rng.random(n) < 0.05] = None
    city[7] = "Brest"  # seen once
    joined = np.datetime64("2020-01-01") + rng.integers(0, 1000, n).astype("timedelta64[D]")
    member = rng.random(n) < 0.3
    path = folder / "people.csv"
    pd.DataFrame({"age": age, "income": income, "city": city, "joined": joined, "member": member}).to_csv(
        path, index=False
    )
    return path


@pytest.fixture(params=model_names())
def case(request, data_for_modality):
    cls = get_model_class(request.param)
    modality = next(m for m in cls.modalities if m in data_for_modality)
    data = _load(data_for_modality[modality])
    torch.manual_seed(0)
    model = cls.for_data(data.info)
    x, y = data.split("train").tensors
    model.prepare(x)
    return model, (x[:16], y[:16]), data.info


def test_loss_is_finite_and_backpropagates(case):
    model, batch, _ = case
    model.train()
    for phase in model.phases():
        out = model.loss(batch, phase=phase.name)
        assert out["loss"].dim() == 0 and torch.isfinite(out["loss"])
        model.zero_grad()
        out["loss"].backward()
        grads = [p.grad for p in phase.parameters if p.grad is not None]
        assert grads and any(g.abs().sum() > 0 for g in grads)


def test_sample_shape_range_and_determinism(case):
    model, _, info = case
    model.train()  # sampling switches to eval mode by itself and back
    state = torch.get_rng_state()
    a = model.sample(5, generator=torch.Generator().manual_seed(3))
    b = model.sample(5, generator=torch.Generator().manual_seed(3))
    c = model.sample(5, generator=torch.Generator().manual_seed(4))
    assert torch.equal(torch.get_rng_state(), state), (
        "sampling with a generator must not touch the global RNG"
    )
    assert model.training
    check_pinned(model.name, "sample", summary(a))
    if isinstance(a, list):  # text models return decoded strings
        assert len(a) == 5 and all(isinstance(s, str) for s in a)
        assert a == b and a != c
        return
    assert a.shape == (5, *info.shape)
    assert same(a, b) and not same(a, c)
    if info.levels is not None:  # discrete data: samples are valid levels in dataset units
        assert a.min() >= info.low and a.max() <= info.high
        step = (info.high - info.low) / (info.levels - 1)
        assert torch.allclose((a - info.low) / step, ((a - info.low) / step).round())


def test_log_prob_kind_and_values(case):
    model, batch, _ = case
    assert model.log_prob_kind in ("exact", "bound", "estimate", None)
    if model.log_prob_kind is None:
        return
    model.eval()
    torch.manual_seed(0)
    lp = model.log_prob(batch[0])
    assert lp.shape == (len(batch[0]),) and torch.isfinite(lp).all()
    check_pinned(model.name, "log_prob", summary(lp))


def test_save_load_round_trip(case, tmp_path):
    model, batch, _ = case
    model.eval()
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model"] == model.name
    loaded = load(tmp_path)
    assert loaded.config == model.config
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k
    a = model.sample(4, generator=torch.Generator().manual_seed(0))
    b = loaded.sample(4, generator=torch.Generator().manual_seed(0))
    assert a == b if isinstance(a, list) else same(a, b)


def test_config_round_trips_through_json(case):
    model, _, _ = case
    restored = type(model).Config.from_dict(json.loads(json.dumps(model.config.to_dict())))
    assert restored == model.config


def test_registry_is_not_empty():
    assert "vae" in model_names()


def test_every_model_has_its_outputs_pinned():
    if os.environ.get("GENZOO_UPDATE_PINS") == "1":
        pytest.skip(
            "GENZOO_UPDATE_PINS=1: this run writes the pins, so there is nothing to check them against"
        )
    pins = json.loads(PINS.read_text())
    for name in model_names():
        kind = get_model_class(name).log_prob_kind
        assert "sample" in pins[name] and ("log_prob" in pins[name]) == (kind is not None), name


@pytest.mark.parametrize("name", model_names())
def test_declared_capabilities_are_true(name):
    """The commands trust these declarations instead of probing with hasattr: keep them honest."""
    import inspect

    cls = get_model_class(name)
    sample = inspect.signature(cls.sample).parameters
    assert cls.supports_labels == ("label" in sample)
    assert cls.can_inpaint == hasattr(cls, "inpaint")
    assert cls.reports_bound == hasattr(cls, "elbo")
    assert cls.takes_inputs == ("inputs" in sample)
    assert cls.can_complete == (hasattr(cls, "complete") or "prompt" in sample or "primer" in sample)
    assert not cls.latent_space or hasattr(cls, "encode")
    overrides = lambda name: getattr(cls, name) is not getattr(GenerativeModel, name)  # noqa: E731
    assert cls.codes_exactly == overrides("conditional_probs") == overrides("conditional_steps")
    assert cls.bits_back == overrides("observation_probs") == overrides("latent_posterior")
    assert cls.has_anomaly_map == overrides("anomaly_map")
    assert not cls.anomaly_scores or overrides("anomaly_score")
    assert (cls.output == "text") == any(m.startswith("text") for m in cls.modalities)
    assert (cls.output == "audio") == ("audio" in cls.modalities)
    assert (cls.output == "piano-roll") == ("music" in cls.modalities)


def test_anomaly_scores_and_maps(case):
    """Every score a family declares: one finite value per example, the same on a second call, and
    an unknown kind is a GenzooError naming those it offers."""
    model, batch, _ = case
    x = batch[0]
    assert set(model.score_kinds()) >= ({"nll"} if model.log_prob_kind else set())
    model.train()
    for kind in model.score_kinds():
        if kind == "nll":
            continue  # -log_prob: test_log_prob_kind_and_values covers it
        first, second = model.anomaly_score(x, kind), model.anomaly_score(x, kind)
        assert first.shape == (len(x),) and torch.isfinite(first).all(), kind
        assert torch.equal(first, second), kind
    assert model.training, "scoring must restore the training mode"
    if model.has_anomaly_map:
        heat = model.anomaly_map(x[:4])
        assert heat.shape == x[:4].shape and torch.isfinite(heat).all()
    else:
        with pytest.raises(GenzooError, match="per-pixel"):
            model.anomaly_map(x[:4])
    with pytest.raises(GenzooError, match="offers"):
        model.anomaly_score(x, "no-such-score")


def test_conditionals_read_only_earlier_dimensions(case):
    """What `genzoo compress` codes with: entry d of `conditional_probs` is a distribution that does
    not move when dimension d or any later one changes."""
    model, batch, info = case
    if not model.codes_exactly:
        with pytest.raises(GenzooError, match="conditionals"):
            model.conditional_probs(batch[0][:2])
        with pytest.raises(GenzooError, match="conditionals"):
            model.conditional_steps(2)
        return
    x = batch[0][:4].clone()
    probs = model.conditional_probs(x)
    dims = x[0].numel()
    assert probs.shape == (4, dims, info.levels)
    assert torch.allclose(probs.sum(-1), torch.ones(4, dims), atol=1e-5)
    d = dims // 2
    changed = x.reshape(4, -1).clone()
    changed[:, d:] = info.high - changed[:, d:] + info.low  # every later value mirrored
    after = model.conditional_probs(changed.view_as(x))
    assert torch.allclose(after[:, : d + 1], probs[:, : d + 1], atol=1e-6)
    assert not torch.allclose(after[:, d + 1 :], probs[:, d + 1 :], atol=1e-6)
    steps, flat = model.conditional_steps(4), x.reshape(4, -1)
    for k in range(dims):  # known one dimension at a time: the same distributions, however computed
        assert torch.allclose(steps.probs(), probs[:, k], atol=1e-5), k
        steps.fix(flat[:, k])

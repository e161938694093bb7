"""The model contract (DESIGN.md), checked for every registered model the day it is registered."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest
import torch
from scipy.io import savemat

from genzoo.data import load_dataset
from genzoo.models import get_model_class, load, model_names

# One small dataset per modality, embedded or written here, so each model is checked on data it
# declares without needing ../shared/data.
DATA_FOR_MODALITY = {"image": "digits", "vector": "toy2d-ring", "text-pairs": "dates", "audio": "notes"}
_load = functools.lru_cache(maxsize=None)(load_dataset)  # text data take seconds to tokenize


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
    return {**DATA_FOR_MODALITY, "text": str(text), "music": str(mat)}


@pytest.fixture(params=model_names())
def case(request, data_for_modality):
    cls = get_model_class(request.param)
    modality = next(m for m in cls.modalities if m in data_for_modality)
    data = _load(data_for_modality[modality])
    torch.manual_seed(0)
    model = cls.for_data(data.info)
    x, y = data.split("train").tensors
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
    if isinstance(a, list):  # text models return decoded strings
        assert len(a) == 5 and all(isinstance(s, str) for s in a)
        assert a == b and a != c
        return
    assert a.shape == (5, *info.shape)
    assert torch.equal(a, b) and not torch.equal(a, c)
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
    assert a == b if isinstance(a, list) else torch.equal(a, b)


def test_config_round_trips_through_json(case):
    model, _, _ = case
    restored = type(model).Config.from_dict(json.loads(json.dumps(model.config.to_dict())))
    assert restored == model.config


def test_registry_is_not_empty():
    assert "vae" in model_names()

"""Bits-back ANS with a VAE: bit-exact round trips, a size at the model's -ELBO, files coded in
another process, and a GenzooError for every VAE it cannot code with."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch

import genzoo
from genzoo.apps import bitsback
from genzoo.data import load_dataset
from genzoo.errors import GenzooError
from genzoo.models import get_model_class
from genzoo.train.run import load_run

TINY = {"max_steps": 200, "hidden": (64, 64), "latent_dim": 8, "eval_every": 0, "batch_size": 64}


@pytest.fixture(scope="module")
def digits() -> torch.Tensor:
    return load_dataset("digits").split("test").tensors[0][:16]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny VAE trained for 200 steps on digits (a few seconds)."""
    out = tmp_path_factory.mktemp("bitsback") / "vae"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        genzoo.train("vae", "digits", out, dict(TINY), device="cpu", quiet=True)
    finally:
        torch.set_num_threads(threads)
    return out


def test_round_trip_is_bit_exact_and_costs_the_elbo(run, digits):
    model, _ = load_run(run, device="cpu")
    words, stats = bitsback.encode(model, digits)
    assert words.dtype == np.uint32
    assert torch.equal(bitsback.decode(model, words, len(digits)), digits)  # also checks the initial bits
    # The ANS coder itself: within a word per batch and 24-bit quantisation of the probabilities.
    assert abs(stats["net_bits"] - stats["ideal_bits"]) <= 1e-3 * stats["ideal_bits"] + 64
    assert stats["total_bits"] == 32 * len(words) >= stats["net_bits"] + stats["initial_bits"] - 32
    # Each example costs -log p(x|z) - log p(z) + log q(z|x) at one z drawn (by the coder) from q:
    # a one-sample ELBO estimate, so against the model's -ELBO (200 samples) it differs by Monte
    # Carlo noise (a few nats per image, ~1% over 16 images) and by the latent buckets
    # (2^10 per dimension: well under 1%). 4% covers both with margin.
    neg_elbo_bits = float(-model.elbo(digits, samples=200).double().sum()) / math.log(2)
    assert stats["net_bits"] == pytest.approx(neg_elbo_bits, rel=0.04)


@pytest.mark.parametrize(("latent_bits", "batch"), [(6, 4), (12, 5)])
def test_other_buckets_and_batches_round_trip(run, digits, latent_bits, batch):
    model, _ = load_run(run, device="cpu")
    words, stats = bitsback.encode(model, digits, latent_bits=latent_bits, batch=batch, initial_seed=7)
    assert stats["initial_bits"] > 24 * 8 * batch  # the worst case of one batch's latents
    decoded = bitsback.decode(model, words, len(digits), latent_bits=latent_bits, batch=batch, initial_seed=7)
    assert torch.equal(decoded, digits)
    with pytest.raises(GenzooError, match="initial bits"):  # another seed: the check at the end fails
        bitsback.decode(model, words, len(digits), latent_bits=latent_bits, batch=batch, initial_seed=8)


def test_a_file_coded_in_another_process_decodes_here(run, digits, tmp_path):
    np.save(tmp_path / "x.npy", digits.numpy())
    script = (
        "import numpy, torch\n"
        "from genzoo.apps import bitsback\n"
        "from genzoo.train.run import load_run\n"
        f"model, _ = load_run(r'{run}', device='cpu')\n"
        f"x = torch.from_numpy(numpy.load(r'{tmp_path / 'x.npy'}'))\n"
        "words, _ = bitsback.encode(model, x, latent_bits=8)\n"
        f"numpy.save(r'{tmp_path / 'words.npy'}', words)\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, env={"OMP_NUM_THREADS": "2", "PATH": ""})
    model, _ = load_run(run, device="cpu")
    words = np.load(tmp_path / "words.npy")
    assert torch.equal(bitsback.decode(model, words, len(digits), latent_bits=8), digits)


@pytest.mark.parametrize(
    "overrides",
    [
        {"likelihood": "categorical"},
        {"likelihood": "bernoulli", "data_levels": 2, "data_low": 0.0, "data_high": 1.0},
        {"likelihood": "logistic", "logistic_mixtures": 3},
    ],
    ids=["categorical", "bernoulli", "logistic-mixture"],
)
def test_observation_probs_are_the_likelihood(overrides):
    torch.manual_seed(0)
    info = load_dataset("digits").info
    model = get_model_class("vae").for_data(info, hidden=(32,), latent_dim=4, **overrides).eval()
    levels = model.config.data_levels
    x = (
        torch.randint(0, levels, (3, *info.shape)).float()
        * (model.config.data_high - model.config.data_low)
        / (levels - 1)
        + model.config.data_low
    )
    z = torch.randn(3, 4)
    probs = model.observation_probs(z)
    assert probs.shape == (3, x[0].numel(), levels) and probs.dtype == torch.float32
    assert torch.allclose(probs.sum(-1), torch.ones(3, x[0].numel()), atol=1e-5)
    index = (
        (x.flatten(1) - model.config.data_low)
        / (model.config.data_high - model.config.data_low)
        * (levels - 1)
    )
    picked = probs.gather(2, index.round().long().unsqueeze(-1)).squeeze(-1).log().sum(1)
    with torch.no_grad():
        expected = model._log_px(model._decode_params(z, None), model.rescale.to_internal(x))
    assert torch.allclose(picked, expected, atol=1e-3)
    words, _ = bitsback.encode(model, x, latent_bits=6)  # and these likelihoods code too
    assert torch.equal(bitsback.decode(model, words, len(x), latent_bits=6), x)


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"conditional": True}, "unconditional"),
        ({"likelihood": "gaussian"}, "discrete"),
        ({"prior": "mog"}, "normal prior"),
    ],
    ids=["conditional", "gaussian", "mog"],
)
def test_vaes_it_cannot_code_are_refused(digits, overrides, fragment):
    model = get_model_class("vae").for_data(load_dataset("digits").info, hidden=(16,), **overrides)
    with pytest.raises(GenzooError, match=fragment):
        bitsback.encode(model, digits[:2])


def test_bad_inputs_are_refused(digits):
    info = load_dataset("digits").info
    vae = get_model_class("vae").for_data(info, hidden=(16,))
    with pytest.raises(GenzooError, match="latent_bits"):
        bitsback.encode(vae, digits[:2], latent_bits=20)
    with pytest.raises(GenzooError, match="between"):
        bitsback.encode(vae, digits[:2] + 0.5)
    with pytest.raises(GenzooError, match="bits-back"):
        bitsback.encode(get_model_class("pixelcnn").for_data(info), digits[:2])

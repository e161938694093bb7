"""Deep belief networks: RBM algebra against brute-force enumeration, AIS, the CD/PCD surrogate's
gradient, greedy layer-wise training, and the contract (sampling, likelihood units, save/load, CLI)."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from genzoo.cli import main
from genzoo.errors import GenzooError
from genzoo.models import describe_models, get_model_class, load
from genzoo.models.dbn import DBN, RBM, DBNConfig, resolve_visible

DIGITS = {"data_shape": (1, 8, 8), "data_levels": 17, "data_low": 0.0, "data_high": 16.0}
FAST = {"sample_steps": 20, "ais_betas": 300, "ais_chains": 50, "eval_samples": 20, "pcd_chains": 20}


@pytest.fixture(autouse=True)
def one_thread():
    """Small matrices: one thread is faster, and the CPU is shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def random_rbm(n_visible: int, n_hidden: int, visible: str, levels: int, std: float, seed: int = 0) -> RBM:
    torch.manual_seed(seed)
    rbm = RBM(n_visible, n_hidden, visible=visible, levels=levels)
    with torch.no_grad():
        rbm.weight.normal_(0, std)
        rbm.visible_bias.normal_(0, 1)
        rbm.hidden_bias.normal_(0, 1)
    return rbm


def all_visible(rbm: RBM) -> torch.Tensor:
    """Every visible configuration, as the RBM sees it (counts or one-hot), float64."""
    v = torch.tensor(list(itertools.product(range(rbm.levels), repeat=rbm.n_visible)), dtype=torch.float64)
    return F.one_hot(v.long(), rbm.levels).flatten(1).double() if rbm.visible == "categorical" else v


def all_hidden(n: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product((0.0, 1.0), repeat=n)), dtype=torch.float64)


def tiny_dbn(**overrides) -> DBN:
    torch.manual_seed(0)
    return DBN(DBNConfig(**{**DIGITS, "hidden": (16, 8), **FAST, **overrides}))


def digits_like(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 17, (n, 1, 8, 8), generator=g).float()


def two_patterns(n: int = 300, dims: int = 16, flip: float = 0.05, seed: int = 0) -> torch.Tensor:
    """A pattern or its complement, with a few bits flipped: every marginal is 1/2, so only a model of
    the correlations beats 16 log 2 nats."""
    g = torch.Generator().manual_seed(seed)
    pattern = (torch.arange(dims) % 3 == 0).float()
    which = torch.randint(0, 2, (n, 1), generator=g).float()
    x = which * pattern + (1 - which) * (1 - pattern)
    noise = (torch.rand(n, dims, generator=g) < flip).float()
    return (x + noise) % 2


# ---- registry and configuration ----------------------------------------------------------------


def test_registered_and_listed():
    cls = get_model_class("dbn")
    assert cls is DBN
    assert (cls.family, cls.log_prob_kind, set(cls.modalities)) == ("dbn", "estimate", {"image", "vector"})
    assert any(row["name"] == "dbn" for row in describe_models())


def test_visible_unit_choice():
    assert resolve_visible("auto", None) == "gaussian"
    assert resolve_visible("auto", 2) == "binomial"  # Bernoulli
    assert resolve_visible("auto", 17) == "categorical"
    assert resolve_visible("auto", 256) == "binomial"
    assert resolve_visible("gaussian", 17) == "gaussian"
    for visible, levels in [("bernoulli", 17), ("binomial", None), ("softmax", 17)]:
        with pytest.raises(GenzooError):
            resolve_visible(visible, levels)


def test_bad_settings_and_input_are_user_errors():
    for bad in ({"hidden": ()}, {"propagate": "both"}, {"cd_k": 0}, {"visible": "bernoulli"}):
        with pytest.raises(GenzooError):
            tiny_dbn(**bad)
    with pytest.raises(GenzooError):
        tiny_dbn().loss((torch.zeros(2, 1, 7, 7), None))
    with pytest.raises(GenzooError):
        tiny_dbn().sample(2, steps=-1)


# ---- the partition function: enumeration, AIS, and exact log-likelihoods -------------------------


@pytest.mark.parametrize("visible, levels", [("binomial", 2), ("binomial", 4), ("categorical", 3)])
def test_exact_log_z_matches_brute_force(visible, levels):
    """exact_log_partition sums v out in closed form per hidden state; brute force sums exp(-F(v))."""
    rbm = random_rbm(5, 4, visible, levels, std=1.0).double()
    brute = float(torch.logsumexp(-rbm.free_energy(all_visible(rbm)).detach(), 0))
    assert rbm.exact_log_partition() == pytest.approx(brute, abs=1e-9)


def test_exact_log_z_of_gaussian_visibles_matches_numerical_integration():
    rbm = random_rbm(2, 3, "gaussian", 0, std=0.7).double()
    grid = torch.linspace(-12, 12, 801, dtype=torch.float64)
    v = torch.cartesian_prod(grid, grid)
    density = torch.exp(-rbm.free_energy(v)).detach().view(801, 801)
    integral = torch.trapezoid(torch.trapezoid(density, grid, dim=1), grid)
    assert rbm.exact_log_partition() == pytest.approx(math.log(float(integral)), abs=1e-6)


@pytest.mark.parametrize(
    "visible, levels, n_visible, std",
    [("binomial", 2, 12, 2.0), ("categorical", 3, 8, 1.5), ("gaussian", 0, 12, 0.3)],
)
def test_ais_log_z_within_a_tenth_of_a_nat_of_enumeration(visible, levels, n_visible, std):
    """10 hidden units: exact by enumeration. Base rates from the model's exact marginals, as if from data."""
    rbm = random_rbm(n_visible, 10, visible, levels, std=std, seed=1)
    exact = rbm.exact_log_partition()
    if visible != "gaussian":
        v = all_visible(rbm)
        log_p = -rbm.double().free_energy(v) - exact
        rbm.float()
        rbm.data_mean.copy_((log_p.exp().unsqueeze(1) * v).sum(0).float())
        rbm.data_count.fill_(1)
    ais = rbm.ais_log_partition(betas=1000, chains=100, generator=torch.Generator().manual_seed(0))
    assert abs(ais.log_z - exact) < 0.1, (ais.log_z, exact)
    assert ais.log_weights.shape == (100,) and torch.isfinite(ais.log_weights).all()


@pytest.mark.parametrize(
    "data, visible",
    [
        ({"data_shape": (1, 2, 3), "data_levels": 2, "data_low": 0.0, "data_high": 1.0}, "auto"),
        ({"data_shape": (4,), "data_levels": 3, "data_low": -1.0, "data_high": 1.0}, "categorical"),
        ({"data_shape": (4,), "data_levels": 3, "data_low": -1.0, "data_high": 1.0}, "binomial"),
    ],
)
def test_exact_log_prob_sums_to_one(data, visible):
    torch.manual_seed(0)
    model = DBN(DBNConfig(**data, hidden=(5,), visible=visible, ais_betas=1000))
    for p in model.parameters():
        torch.nn.init.normal_(p, 0, 1)
    levels, dims = data["data_levels"], math.prod(data["data_shape"])
    k = torch.tensor(list(itertools.product(range(levels), repeat=dims)), dtype=torch.float32)
    x = data["data_low"] + k * (data["data_high"] - data["data_low"]) / (levels - 1)
    log_p = model.log_prob(x.view(-1, *data["data_shape"]), log_z=model.log_partition(exact=True))
    assert float(torch.logsumexp(log_p.double(), 0)) == pytest.approx(0.0, abs=1e-4)
    # AIS's log Z gives nearly the same numbers
    assert torch.allclose(model.log_prob(x.view(-1, *data["data_shape"])), log_p, atol=0.05)


def test_two_layer_estimate_converges_to_the_exact_marginal():
    """p(x) = sum_h1 p(x | h1) p_top(h1), enumerated; the importance-weighted estimate approaches it,
    and the variational bound (elbo) stays below it."""
    torch.manual_seed(0)
    model = DBN(DBNConfig(data_shape=(4,), data_levels=2, data_low=0.0, data_high=1.0, hidden=(3, 2)))
    for p in model.parameters():
        torch.nn.init.normal_(p, 0, 1)
    bottom, top = model.rbms[0].double().requires_grad_(False), model.rbms[1].double().requires_grad_(False)
    x, h1 = all_visible(bottom), all_hidden(3)
    log_top = -top.free_energy(h1) - top.exact_log_partition()  # (8,)
    log_given = torch.stack(
        [bottom.visible_log_prob(x, bottom.visible_field(h).expand(16, -1)) for h in h1], 1
    )
    exact = torch.logsumexp(log_given + log_top, 1)
    assert float(torch.logsumexp(exact, 0)) == pytest.approx(0.0, abs=1e-9)
    model.float()
    log_z = model.log_partition(exact=True)
    estimate = model.log_prob(x.float(), samples=20000, log_z=log_z).double()
    torch.testing.assert_close(estimate, exact, atol=0.05, rtol=0)  # Monte Carlo error: ~0.03 here
    bound = model.elbo(x.float(), samples=20000, log_z=log_z).double()
    assert (bound < exact + 1e-3).all() and (bound < estimate).all()


# ---- training: the surrogate's gradient, CD/PCD, greedy layers -----------------------------------


@pytest.mark.parametrize(
    "visible, levels", [("binomial", 2), ("binomial", 5), ("categorical", 3), ("gaussian", 0)]
)
def test_surrogate_gradient_is_the_cd_gradient(visible, levels):
    """d/dtheta [mean F(v_data) - mean F(v_model)] = -(<v h^T>_data - <v h^T>_model) (and likewise for
    the biases), with E[h | v] computed by enumerating h rather than by the sigmoid formula."""
    rbm = random_rbm(5, 4, visible, levels, std=0.5)
    g = torch.Generator().manual_seed(2)
    v_data = rbm.sample_visible(torch.randn(8, rbm.width, generator=g), g)
    v_model = rbm.sample_visible(torch.randn(6, rbm.width, generator=g), g)
    rbm.zero_grad()
    rbm.contrastive_loss(v_data, v_model).backward()

    h = all_hidden(4).float()

    def hidden_mean(v):  # E[h | v] = sum_h h exp(h.(c + W^T v)) / normaliser
        weights = torch.softmax((v @ rbm.weight + rbm.hidden_bias).detach() @ h.T, dim=1)
        return weights @ h

    hd, hm = hidden_mean(v_data), hidden_mean(v_model)
    cd_w = v_data.T @ hd / len(v_data) - v_model.T @ hm / len(v_model)
    cd_b = v_data.mean(0) - v_model.mean(0)
    cd_c = hd.mean(0) - hm.mean(0)
    torch.testing.assert_close(rbm.weight.grad, -cd_w, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(rbm.visible_bias.grad, -cd_b, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(rbm.hidden_bias.grad, -cd_c, atol=1e-5, rtol=1e-4)


def test_negatives_come_from_persistent_chains_or_from_the_data():
    rbm = random_rbm(6, 4, "binomial", 2, std=1.0)
    rbm.register_buffer("chains", torch.ones(10, 6))
    data = torch.zeros(3, 6)
    torch.manual_seed(5)
    pcd = rbm.negatives(data, 2, persistent=True)
    torch.manual_seed(5)
    assert torch.equal(pcd, rbm.gibbs(torch.ones(10, 6), 2)) and torch.equal(rbm.chains, pcd)
    torch.manual_seed(5)
    again = rbm.negatives(data, 2, persistent=True)  # carries on from where the chains stopped
    torch.manual_seed(5)
    assert torch.equal(again, rbm.gibbs(pcd, 2))
    torch.manual_seed(5)
    cd = rbm.negatives(data, 2, persistent=False)
    torch.manual_seed(5)
    assert torch.equal(cd, rbm.gibbs(data, 2)) and torch.equal(rbm.chains, again)


def test_pseudo_likelihood_matches_scikit_learn():
    """scikit-learn's BernoulliRBM.score_samples flips one random pixel per row and scales by V: an
    unbiased estimate of the pseudo-likelihood that genzoo computes exactly. Over 20,000 copies of
    each row the two agree within 0.5 nats (the estimate's standard error is about 0.1)."""
    from sklearn.neural_network import BernoulliRBM

    rbm = random_rbm(20, 8, "binomial", 2, std=1.0)
    x = two_patterns(n=5, dims=20)
    reference = BernoulliRBM(n_components=8, random_state=0)
    reference.components_ = rbm.weight.detach().double().T.numpy()
    reference.intercept_visible_ = rbm.visible_bias.detach().double().numpy()
    reference.intercept_hidden_ = rbm.hidden_bias.detach().double().numpy()
    repeats = 20000
    estimate = reference.score_samples(x.double().repeat(repeats, 1).numpy()).reshape(repeats, 5).mean(0)
    exact = rbm.pseudo_log_likelihood(x).double().numpy()
    np.testing.assert_allclose(estimate, exact, atol=0.5)
    # Not a trivial agreement: these rows score far from a uniform model's -20 log 2.
    assert np.abs(exact + 20 * math.log(2)).max() > 2


@pytest.mark.parametrize("persistent", [False, True], ids=["cd1", "pcd"])
def test_training_raises_the_pseudo_likelihood(persistent):
    x = two_patterns()
    torch.manual_seed(0)
    model = DBN(
        DBNConfig(
            data_shape=(16,), data_levels=2, data_low=0.0, data_high=1.0, hidden=(8,), persistent=persistent
        )
    )
    rbm = model.rbms[0]
    independent = -16 * math.log(2)  # what the best model without correlations gets here
    before = rbm.pseudo_log_likelihood(x).mean().item()
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    for step in range(150):
        out = model.loss((x[(step * 50) % 300 :][:50], None))
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    after = rbm.pseudo_log_likelihood(x).mean().item()
    assert before < independent + 0.5 and after > independent + 4, (before, after)
    assert {"loss", "recon", "pseudo_nll", "layer"} <= set(out)


def test_layers_train_greedily_in_turn():
    """layer_steps=5: layer 0 trains on steps 0-4, then stays frozen while layer 1 trains."""
    x = two_patterns()
    model = DBN(
        DBNConfig(data_shape=(16,), data_levels=2, data_low=0.0, data_high=1.0, hidden=(8, 6), layer_steps=5)
    )
    opt = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.01)
    layers, frozen = [], None
    for step in range(12):
        if step == 5:
            frozen = {k: v.clone() for k, v in model.rbms[0].state_dict().items()}
            top = model.rbms[1].weight.detach().clone()
        out = model.loss((x[step * 20 :][:20], None))
        layers.append(int(out["layer"]))
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        opt.step()
    assert layers == [0] * 5 + [1] * 7 and int(model.steps_seen) == 12
    for k, v in model.rbms[0].state_dict().items():
        assert torch.equal(v, frozen[k]), k
    assert not torch.equal(model.rbms[1].weight, top)
    assert int(model.rbms[1].data_count) == 7 * 20
    # validation changes nothing
    state = {k: v.clone() for k, v in model.state_dict().items()}
    model.eval()
    with torch.no_grad():
        model.loss((x[:20], None))
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


# ---- sampling, units, persistence, CLI -------------------------------------------------------------


def test_mean_samples_and_every_visible_type_stay_in_dataset_units():
    # Seeding, the global RNG and the training mode are the contract's (test_contract.py).
    model = tiny_dbn()
    model.train()
    model.loss((digits_like(32), None))  # visible biases from data, chains seeded
    a = model.sample(16, generator=torch.Generator().manual_seed(7))
    assert a.shape == (16, 1, 8, 8) and a.min() >= 0 and a.max() <= 16 and torch.equal(a, a.round())
    m = model.sample(4, generator=torch.Generator().manual_seed(7), mean=True, steps=3)
    assert m.shape == (4, 1, 8, 8) and m.min() >= 0 and m.max() <= 16
    for visible in ("binomial", "gaussian"):
        s = tiny_dbn(visible=visible).sample(5, generator=torch.Generator().manual_seed(0))
        assert s.shape == (5, 1, 8, 8) and s.min() >= 0 and s.max() <= 16 and torch.equal(s, s.round())


def test_gaussian_densities_are_in_dataset_units():
    """Standardisation comes from the first batch: data stretched by 2 give the same internal values
    and lose log 2 nats per dimension."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 2, generator=g) * torch.tensor([1.0, 3.0]) + 5
    log_p = []
    for scale in (1.0, 2.0):
        torch.manual_seed(0)
        model = DBN(DBNConfig(data_shape=(2,), data_levels=None, data_low=-9.0, data_high=9.0, hidden=(3,)))
        model.train()
        model.loss((scale * x, None))  # sets the standardisation and biases (no optimizer step)
        log_p.append(model.log_prob(scale * x[:8], log_z=model.log_partition(exact=True)))
    torch.testing.assert_close(log_p[1], log_p[0] - 2 * math.log(2), atol=1e-4, rtol=0)
    s = model.sample(10, generator=torch.Generator().manual_seed(0))
    assert s.shape == (10, 2) and torch.isfinite(s).all()


def test_save_load_round_trip(tmp_path):
    model = tiny_dbn(layer_steps=2, persistent=True)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(3):  # both layers trained, chains and counters moved
        loss = model.loss((digits_like(16), None))["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    model.save_pretrained(tmp_path)
    loaded = load(tmp_path)
    assert isinstance(loaded, DBN) and loaded.config == model.config
    for (k1, v1), (k2, v2) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert k1 == k2 and torch.equal(v1, v2), k1
    x = digits_like(4)
    model.eval()
    assert torch.equal(model.log_prob(x), loaded.log_prob(x))
    gen = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    assert torch.equal(model.sample(5, generator=gen()), loaded.sample(5, generator=gen()))


def test_cli_train_resume_sample_evaluate(tmp_path, capsys):
    """Stopping inside layer 0 and resuming past the layer switch ends bit-identical to a straight run."""
    common = ["--data", "digits", "--quiet", "--set", "hidden=[16,8]", "--set", "layer_steps=6"]
    common += ["--set", "persistent=true"]  # the PCD chains must resume too
    fast = [f"--set={k}={v}" for k, v in FAST.items()]
    assert main(["train", "dbn", "--out", str(tmp_path / "a"), "--max-steps", "12", *common, *fast]) == 0
    assert main(["train", "dbn", "--out", str(tmp_path / "b"), "--max-steps", "4", *common, *fast]) == 0
    assert (
        main(["train", "dbn", "--out", str(tmp_path / "b"), "--max-steps", "12", "--resume", *common[:3]])
        == 0
    )
    a = (tmp_path / "a" / "model.safetensors").read_bytes()
    assert a == (tmp_path / "b" / "model.safetensors").read_bytes()
    assert (
        main(["sample", str(tmp_path / "a"), "-n", "6", "--steps", "5", "--out", str(tmp_path / "s.npy")])
        == 0
    )
    s = np.load(tmp_path / "s.npy")
    assert s.shape == (6, 1, 8, 8) and s.min() >= 0 and s.max() <= 16
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "a"), "--metrics", "nll", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["model"] == "dbn" and result["nll_kind"] == "estimate" and result["n"] == 447
    # a bound below the estimate, both above the 17-level uniform's 64 log 17 = 181 nats (untrained)
    assert 0 < result["nll"] <= result["nll_bound"] and result["nll"] < 64 * math.log(17) + 1

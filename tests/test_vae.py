"""VAE family and the shared pixel likelihoods: known answers, the contract, and round trips."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from torch import distributions as D

from genzoo.errors import GenzooError
from genzoo.models import get_model_class, load
from genzoo.models.vae import IWAE, VAE, VAEConfig
from genzoo.nn.likelihoods import (
    Bernoulli,
    Categorical,
    DiscretizedLogistic,
    Gaussian,
    Rescale,
    level_values,
    make_likelihood,
    resolve_likelihood,
)

torch.set_num_threads(2)

DIGITS = {"data_shape": (1, 8, 8), "data_levels": 17, "data_low": 0.0, "data_high": 16.0}
SMALL = {"hidden": (32,), "latent_dim": 4, "channels": (4, 8), "iwae_k": 16}


def digits_like(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 17, (n, 1, 8, 8), generator=g).float()


def tiny_vae(name: str = "vae", **overrides) -> VAE:
    cls = get_model_class(name)
    torch.manual_seed(0)
    return cls(cls.Config(**{**DIGITS, **SMALL, **overrides}))


# ---- likelihoods against reference implementations -----------------------------------------


def test_bernoulli_matches_torch():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 1, 3, 4, generator=g)
    bits = torch.randint(0, 2, (5, 3, 4), generator=g).float()
    ours = Bernoulli().log_prob(logits, 2 * bits - 1)  # internal units are {-1, 1}
    ref = D.Bernoulli(logits=logits[:, 0]).log_prob(bits).sum((1, 2))
    torch.testing.assert_close(ours, ref)


def test_categorical_matches_torch():
    g = torch.Generator().manual_seed(1)
    levels = 17
    logits = torch.randn(6, levels, 2, 3, generator=g)
    k = torch.randint(0, levels, (6, 2, 3), generator=g)
    ours = Categorical(levels).log_prob(logits, level_values(levels)[k])
    ref = D.Categorical(logits=logits.movedim(1, -1)).log_prob(k).sum((1, 2))
    torch.testing.assert_close(ours, ref)


@pytest.mark.parametrize("std", [None, 0.3])
def test_gaussian_matches_torch(std):
    g = torch.Generator().manual_seed(2)
    lik = Gaussian(std)
    params = torch.randn(4, lik.params_per_dim, 5, generator=g)
    x = torch.randn(4, 5, generator=g)
    scale = params[:, 1].exp() if std is None else torch.full_like(x, std)
    ref = D.Normal(params[:, 0], scale).log_prob(x).sum(1)
    torch.testing.assert_close(lik.log_prob(params, x), ref)


def test_discretized_logistic_matches_scipy():
    g = torch.Generator().manual_seed(3)
    levels = 17
    loc = torch.rand(200, generator=g) * 2.4 - 1.2
    log_scale = torch.randn(200, generator=g) - 2
    k = torch.randint(0, levels, (200,), generator=g)
    x = level_values(levels)[k]
    ours = DiscretizedLogistic(levels).log_prob(
        torch.stack([loc, log_scale], 1).view(200, 2, 1), x.view(200, 1)
    )

    half = 1 / (levels - 1)
    xs, mu, s = x.double().numpy(), loc.double().numpy(), log_scale.double().exp().numpy()
    hi = np.where(k.numpy() == levels - 1, np.inf, xs + half)
    lo = np.where(k.numpy() == 0, -np.inf, xs - half)
    # Mass of [lo, hi]; from the survival function right of the mean, to avoid 1 - 1 cancellation.
    mass = np.where(
        xs > mu,
        stats.logistic.sf(lo, mu, s) - stats.logistic.sf(hi, mu, s),
        stats.logistic.cdf(hi, mu, s) - stats.logistic.cdf(lo, mu, s),
    )
    ref = torch.from_numpy(np.log(mass)).float()
    assert torch.isfinite(ref).all()
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mixtures", [1, 3])
def test_discretized_logistic_sums_to_one(mixtures):
    g = torch.Generator().manual_seed(4)
    levels = 17
    lik = DiscretizedLogistic(levels, mixtures)
    params = torch.randn(3, lik.params_per_dim, 4, generator=g) * 2
    probs = lik.probs(params)  # (B, L, event)
    torch.testing.assert_close(probs.sum(1), torch.ones(3, 4))
    # and log_prob of each level agrees with the table
    for k in (0, 5, levels - 1):
        x = torch.full((3, 4), level_values(levels)[k].item())
        torch.testing.assert_close(
            lik.log_prob(params, x), lik.level_log_probs(params)[:, k].sum(1), rtol=1e-4, atol=1e-4
        )


@pytest.mark.parametrize(
    "lik",
    [
        Bernoulli(),
        Categorical(5),
        Gaussian(),
        Gaussian(0.5),
        DiscretizedLogistic(9),
        DiscretizedLogistic(9, 2),
    ],
    ids=repr,
)
def test_likelihood_sample_is_seeded_and_matches_mean(lik):
    g = torch.Generator().manual_seed(5)
    params = torch.randn(1, lik.params_per_dim, 3, generator=g).expand(4000, -1, -1).contiguous()
    a = lik.sample(params, generator=torch.Generator().manual_seed(0))
    b = lik.sample(params, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and a.shape == (4000, 3)
    standard_error = a.std(0) / math.sqrt(len(a))
    assert ((a.mean(0) - lik.mean(params)[0]).abs() <= 5 * standard_error + 1e-3).all()


def test_auto_likelihood_and_rescale():
    assert resolve_likelihood("auto", 2) == "bernoulli"
    assert resolve_likelihood("auto", 17) == "logistic"
    assert resolve_likelihood("auto", 256) == "logistic"
    assert resolve_likelihood("auto", None) == "gaussian"
    assert isinstance(make_likelihood("categorical", 17), Categorical)
    with pytest.raises(GenzooError):
        resolve_likelihood("categorical", None)
    with pytest.raises(GenzooError):
        resolve_likelihood("poisson", 17)
    r = Rescale(0.0, 16.0, 17)
    levels = torch.arange(17.0)
    torch.testing.assert_close(r.to_internal(levels), level_values(17))
    assert torch.equal(r.to_data(r.to_internal(levels)), levels)


# ---- the VAE -------------------------------------------------------------------------------


def test_registered():
    cls = get_model_class("vae")
    assert cls is VAE
    assert (cls.family, cls.log_prob_kind) == ("vae", "estimate")
    assert set(cls.modalities) == {"image", "vector"}


@pytest.mark.parametrize("architecture", ["mlp", "conv"])
@pytest.mark.parametrize("likelihood", ["auto", "categorical"])
def test_loss_sample_log_prob_run(architecture, likelihood):
    model = tiny_vae(architecture=architecture, likelihood=likelihood)
    x = digits_like(8)
    out = model.loss((x, torch.full((8,), -1)))
    assert {"loss", "rec", "kl", "elbo"} <= set(out)
    assert all(torch.isfinite(v) for v in out.values())
    out["loss"].backward()
    assert all(p.grad is not None for p in model.parameters())
    assert model.log_prob(x).shape == (8,)
    assert model.sample(3, generator=torch.Generator().manual_seed(0)).shape == (3, 1, 8, 8)


@pytest.mark.parametrize(
    "overrides",
    [
        {"prior": "mog", "prior_components": 3},
        {"objective": "iwae", "train_samples": 3},
        {"train_samples": 3},
        {"free_bits": 0.5, "beta": 0.5},
        {"conditional": True, "num_classes": 10},
        {"conditional": True, "num_classes": 10, "architecture": "conv"},
    ],
    ids=str,
)
def test_options_run(overrides):
    model = tiny_vae(**overrides)
    x = digits_like(6)
    out = model.loss((x, torch.arange(6)))  # labels matter to conditional models only
    out["loss"].backward()
    assert all(torch.isfinite(v) for v in out.values())
    assert torch.isfinite(model.log_prob(x)).all()
    s = model.sample(4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(s, model.sample(4, generator=torch.Generator().manual_seed(0)))


def test_kl_warmup_counts_training_steps_only():
    model = tiny_vae(kl_warmup_steps=10)
    x = digits_like(4)
    model.loss((x, None))["loss"].backward()
    with torch.no_grad():
        model.loss((x, None))
    model.eval()
    model.loss((x, None))
    assert int(model.steps_seen) == 1


def test_conv_on_mnist_sized_images():
    model = tiny_vae(architecture="conv", data_shape=(1, 28, 28), data_levels=256, data_high=255.0)
    x = torch.randint(0, 256, (2, 1, 28, 28)).float()
    assert torch.isfinite(model.loss((x, None))["loss"])
    assert model.reconstruct(x).shape == (2, 1, 28, 28)


def test_samples_are_seeded_and_in_dataset_units():
    model = tiny_vae(dropout=0.5)  # dropout must not leak randomness into sampling
    model.train()
    state = torch.get_rng_state()
    a = model.sample(16, generator=torch.Generator().manual_seed(7))
    b = model.sample(16, generator=torch.Generator().manual_seed(7))
    c = model.sample(16, generator=torch.Generator().manual_seed(8))
    assert torch.equal(torch.get_rng_state(), state), "sampling must not touch the global RNG"
    assert model.training
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == (16, 1, 8, 8) and a.min() >= 0 and a.max() <= 16
    assert torch.equal(a, a.round())
    m = model.sample(4, generator=torch.Generator().manual_seed(7), mean=True)
    assert m.shape == (4, 1, 8, 8) and m.min() >= 0 and m.max() <= 16


def test_iwae_k1_averages_to_elbo_and_grows_with_k():
    model = tiny_vae().eval()
    x = digits_like(4).repeat(500, 1, 1, 1)
    torch.manual_seed(0)
    with torch.no_grad():
        elbo = model.loss((x, None))["elbo"]  # analytic KL: an independent estimate of the ELBO
    iwae1 = model.log_prob(x, k=1).mean()
    assert abs(float(iwae1 - elbo)) < 0.02 * abs(float(elbo))
    x = digits_like(16)
    bounds = [model.log_prob(x, k=k).mean().item() for k in (1, 10, 100)]
    assert bounds[0] < bounds[1] < bounds[2]
    assert model.elbo(x, samples=50).mean().item() < bounds[2]


def test_log_prob_and_iwae_loss_are_exact_when_the_decoder_ignores_z():
    # Decoder output = its last bias (no z dependence); encoder output 0, so q(z|x) = p(z):
    # every importance weight is then exactly p(x), and the estimate is exact for any k.
    model = tiny_vae("iwae", likelihood="categorical", eval_rows=64, train_samples=7).eval()
    with torch.no_grad():
        model.decoder[-1].weight.zero_()
        model.decoder[-1].bias.normal_()
        model.encoder[-1].weight.zero_()
        model.encoder[-1].bias.zero_()
    x = digits_like(10)
    logits = model.decoder[-1].bias.view(17, 64).T  # (pixels, levels)
    exact = D.Categorical(logits=logits).log_prob(x.view(10, 64).long()).sum(1)
    torch.testing.assert_close(model.log_prob(x, k=37), exact, rtol=1e-5, atol=1e-3)
    # The training objective shares the weights: -log 1/k sum_i w_i = -log p(x) exactly.
    torch.testing.assert_close(model.loss((x, None))["loss"], -exact.mean(), rtol=1e-5, atol=1e-3)


def test_log_prob_is_deterministic_and_chunking_invariant():
    model = tiny_vae()
    x = digits_like(5)
    a = model.log_prob(x, k=20)
    assert torch.equal(a, model.log_prob(x, k=20))  # fixed default noise: repeatable evaluations
    g = torch.Generator().manual_seed(1)
    assert not torch.equal(a, model.log_prob(x, k=20, generator=g))
    # Tiny chunks draw the noise in another order: the estimates agree in distribution only.
    small = tiny_vae(eval_rows=16)  # same seed, so same weights
    b = small.log_prob(x, k=300).mean()
    c = model.log_prob(x, k=300).mean()
    assert abs(float(b - c)) < 1.0


@pytest.mark.parametrize(
    ("name", "overrides"),
    [
        ("vae", {"architecture": "conv"}),
        ("iwae", {"train_samples": 3}),
        ("vae", {"conditional": True, "num_classes": 10, "embed_dim": 3}),
    ],
    ids=["vae-conv", "iwae", "cvae"],
)
def test_save_load_round_trip(tmp_path, name, overrides):
    model = tiny_vae(name, **overrides)
    model.loss((digits_like(4), torch.arange(4)))  # moves the warm-up counter off 0
    model.save_pretrained(tmp_path)
    loaded = load(tmp_path)
    assert type(loaded) is type(model) and loaded.config == model.config
    for (k1, v1), (k2, v2) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert k1 == k2 and torch.equal(v1, v2)
    x = digits_like(3)
    assert torch.equal(model.log_prob(x), loaded.log_prob(x))
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    assert torch.equal(model.sample(5, generator=g()), loaded.sample(5, generator=g()))
    if model.conditional:
        assert torch.equal(model.log_prob(x, label=2), loaded.log_prob(x, label=2))
        assert torch.equal(model.sample(5, generator=g(), label=4), loaded.sample(5, generator=g(), label=4))


def test_configs_saved_with_train_k_still_load():
    old = {**DIGITS, **SMALL, "train_k": 3}  # the field's name before `objective` existed
    assert VAEConfig.from_dict(old) == VAEConfig(**DIGITS, **SMALL, objective="iwae", train_samples=3)
    assert VAEConfig.from_dict({**old, "train_k": 1}).objective == "elbo"


def test_encode_decode_reconstruct_interpolate():
    model = tiny_vae()
    x = digits_like(3)
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (3, 4)
    assert model.decode(mu).shape == (3, 1, 8, 8)
    assert model.reconstruct(x).shape == (3, 1, 8, 8)
    path = model.interpolate(x[0], x[1], steps=5)
    assert path.shape == (5, 1, 8, 8)
    torch.testing.assert_close(path[0], model.decode(mu[:1])[0])
    assert model.interpolate(x[:2], x[1:], steps=4).shape == (4, 2, 1, 8, 8)


def test_bad_input_is_a_user_error():
    with pytest.raises(GenzooError):
        tiny_vae().loss((torch.zeros(2, 1, 7, 7), None))
    with pytest.raises(GenzooError):
        VAE(VAEConfig(data_shape=(2,), data_levels=None, architecture="conv"))
    with pytest.raises(GenzooError):
        tiny_vae(architecture="transformer")


def test_vector_data_with_gaussian_likelihood():
    cfg = VAEConfig(data_shape=(2,), data_levels=None, data_low=-3.0, data_high=3.0, **SMALL)
    torch.manual_seed(0)
    model = VAE(cfg)
    assert model.likelihood_name == "gaussian"
    angle = torch.rand(512) * 2 * math.pi
    x = torch.stack([2 * angle.cos(), 2 * angle.sin()], 1) + 0.05 * torch.randn(512, 2)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for step in range(150):
        loss = model.loss((x[(step * 64) % 512 :][:64], None))["loss"]
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first
    s = model.sample(10, generator=torch.Generator().manual_seed(0))
    assert s.shape == (10, 2) and torch.isfinite(s).all()
    lp = model.log_prob(x[:8])
    assert lp.shape == (8,) and torch.isfinite(lp).all()
    # Densities are in dataset units: the same model on data stretched by 2 (and a range
    # stretched by 2) sees identical internal inputs, and loses log 2 per dimension.
    wide = VAE(VAEConfig(**{**cfg.to_dict(), "data_low": -6.0, "data_high": 6.0}))
    wide.load_state_dict(model.state_dict())
    torch.testing.assert_close(wide.log_prob(2 * x[:8]), lp - 2 * math.log(2), rtol=0, atol=1e-4)


# ---- the IWAE objective ----------------------------------------------------------------------


def test_iwae_is_registered_with_its_own_defaults():
    assert get_model_class("iwae") is IWAE and issubclass(IWAE, VAE)
    assert (IWAE.family, IWAE.log_prob_kind) == ("vae", "estimate")
    assert (IWAE.Config().objective, IWAE.Config().train_samples) == ("iwae", 5)
    assert (VAEConfig().objective, VAEConfig().train_samples) == ("elbo", 1)
    for bad in ({"objective": "wake-sleep"}, {"train_samples": 0}, {"objective": "iwae", "free_bits": 1.0}):
        with pytest.raises(GenzooError):
            tiny_vae(**bad)


def _evaluated(model: VAE, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """`model.loss` in eval mode (beta = 1, no dropout) with the same reparameterisation noise every call."""
    model.eval()
    torch.manual_seed(1)
    with torch.no_grad():
        return model.loss((x, y))


@pytest.mark.parametrize("prior", ["normal", "mog"])
def test_iwae_loss_with_one_sample_is_the_elbo_loss(prior):
    x = digits_like(8)
    elbo = _evaluated(tiny_vae(prior=prior, prior_components=3), x)
    iwae = _evaluated(tiny_vae("iwae", prior=prior, prior_components=3, train_samples=1), x)
    torch.testing.assert_close(iwae["rec"], elbo["rec"])  # same noise, same weights: same decoder term
    if prior == "mog":  # both estimate the KL from the same single sample: the same number
        torch.testing.assert_close(iwae["loss"], elbo["loss"])
    else:  # the ELBO's KL is analytic, the IWAE's its one-sample estimate: equal in expectation
        x = x.repeat(250, 1, 1, 1)
        elbo = _evaluated(tiny_vae(), x)["loss"]
        iwae = _evaluated(tiny_vae("iwae", train_samples=1), x)["loss"]
        assert abs(float(iwae - elbo)) < 0.1


def test_iwae_bound_is_above_the_elbo_and_grows_with_k():
    # One fixed model and fixed noise over 320 examples: the gaps (about 1.2 nats from k = 1 to 5,
    # 0.3 from 5 to 50) are several times the spread of the estimates (< 0.1 nats), and the
    # margins below fail a k-sample ELBO (the mean of the log weights), which does not grow with k.
    x = digits_like(16).repeat(20, 1, 1, 1)
    elbo = -_evaluated(tiny_vae(), x)["loss"].item()
    bounds = [-_evaluated(tiny_vae("iwae", train_samples=k), x)["loss"].item() for k in (1, 5, 50)]
    assert bounds[1] > bounds[0] + 0.5 and bounds[2] > bounds[1] + 0.15, bounds
    assert bounds[1] > elbo + 0.5, (elbo, bounds)


def test_dreg_gradients_follow_tucker_et_al():
    # With the same noise, the DReG loss must give the decoder the IWAE bound's own gradient,
    # sum_i w~_i grad log w_i, and the encoder sum_i w~_i^2 (d log w_i / d z_i)(d z_i / d phi),
    # computed here one sample at a time with plain autograd.
    model = tiny_vae("iwae", train_samples=4, dreg=True, dropout=0.0, kl_warmup_steps=0)
    model.train()
    x = digits_like(3)
    torch.manual_seed(5)
    model.loss((x, None))["loss"].backward()
    got = {name: p.grad.clone() for name, p in model.named_parameters()}

    torch.manual_seed(5)
    x_int = model.rescale.to_internal(x)
    mu, logvar = model._posterior(x_int, None)
    eps = torch.randn(4, *mu.shape)
    rec, kl, z = model._importance_terms(x_int, None, mu, logvar, eps, fixed_q=True)
    log_w = rec - kl
    weights = log_w.detach().softmax(0)
    decoder = list(model.decoder.parameters())
    encoder = list(model.encoder.parameters())
    want_decoder = torch.autograd.grad(-(weights * log_w).sum() / 3, decoder, retain_graph=True)
    # d log w_i / d z_i, each sample on its own, then pushed back through z = mu + sigma * eps.
    dz = torch.autograd.grad(log_w.sum(), z, retain_graph=True)[0]
    want_encoder = torch.autograd.grad(z, encoder, grad_outputs=-(weights**2).unsqueeze(-1) * dz / 3)
    names = dict(model.named_parameters())
    for p, want in zip(decoder + encoder, want_decoder + want_encoder, strict=True):
        name = next(n for n, q in names.items() if q is p)
        torch.testing.assert_close(got[name], want, msg=name)


# ---- the conditional VAE ---------------------------------------------------------------------


def test_conditional_needs_labels_and_feeds_them_to_both_networks():
    with pytest.raises(GenzooError):
        tiny_vae(conditional=True)  # num_classes = 0: unlabelled data
    with pytest.raises(GenzooError):
        tiny_vae().sample(2, label=1)
    model = tiny_vae(conditional=True, num_classes=10)
    x = digits_like(4)
    for bad_labels in (None, torch.tensor([0, 1, -1, 2])):  # -1: an unlabelled example
        with pytest.raises(GenzooError):
            model.loss((x, bad_labels))
    with pytest.raises(GenzooError):
        model.sample(2, label=10)
    with pytest.raises(GenzooError):
        model.encode(x)  # q(z|x, y) needs y
    assert not torch.equal(model.encode(x, label=1)[0], model.encode(x, label=2)[0])
    z = torch.zeros(1, 4)
    assert not torch.equal(model.decode(z, label=1), model.decode(z, label=2))
    assert model.reconstruct(x, label=torch.arange(4)).shape == (4, 1, 8, 8)
    assert model.interpolate(x[0], x[1], steps=3, label=5).shape == (3, 1, 8, 8)
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    assert torch.equal(
        model.sample(3, generator=g(), label=7), model.sample(3, generator=g(), label=[7, 7, 7])
    )


@pytest.fixture(scope="module")
def digits_cvae():
    """A small conditional VAE trained briefly (200 steps, ~1 s) on the digits training split."""
    from genzoo.data import load_dataset

    data = load_dataset("digits")
    x, y = data.split("train").tensors
    torch.manual_seed(0)
    model = VAE.for_data(
        data.info, conditional=True, hidden=(64,), latent_dim=4, dropout=0.0, kl_warmup_steps=100, iwae_k=32
    )
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(200):
        idx = torch.randint(len(x), (64,))
        loss = model.loss((x[idx], y[idx]))["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval(), data


def test_conditional_samples_show_their_label(digits_cvae):
    # A nearest-class-mean classifier (87% right on real test digits) reads the asked-for class
    # off the samples; a decoder that ignored the label would score about 10%.
    model, data = digits_cvae
    x, y = data.split("train").tensors
    centroids = torch.stack([x[y == c].flatten(1).mean(0) for c in range(10)])

    def classify(images: torch.Tensor) -> torch.Tensor:
        return torch.cdist(images.flatten(1), centroids).argmin(1)

    labels = torch.arange(10).repeat_interleave(20)
    samples = model.sample(200, label=labels, generator=torch.Generator().manual_seed(0))
    assert (classify(samples) == labels).float().mean() > 0.8
    # No label: a uniformly random class per sample, drawn from the generator like z.
    free = model.sample(200, generator=torch.Generator().manual_seed(0))
    assert len(classify(free).unique()) == 10
    assert torch.equal(free, model.sample(200, generator=torch.Generator().manual_seed(0)))


def test_conditional_log_prob_marginalises_the_label(digits_cvae):
    model, data = digits_cvae
    x, y = data.split("test").tensors
    per_label = torch.stack([model.log_prob(x, label=c) for c in range(10)], 1)  # log p(x|y)
    # Bayes' rule picks the true class of most test digits: the likelihood depends on the label.
    assert (per_label.argmax(1) == y).float().mean() > 0.8
    # Without a label, log p(x) = log 1/10 sum_y p(x|y); the two estimates use different noise.
    marginal = model.log_prob(x)
    assert abs(float((marginal - (torch.logsumexp(per_label, 1) - math.log(10))).mean())) < 0.2
    assert model.elbo(x).mean() < marginal.mean()  # the marginal ELBO is a looser bound


def test_training_lowers_the_loss():
    model = tiny_vae(hidden=(64,), latent_dim=8)
    x = digits_like(64)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        loss = model.loss((x, None))["loss"]
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 5


@pytest.mark.slow
def test_digits_quality(tmp_path):
    """The README number: default config + train_defaults on digits, IWAE test NLL <= 95 nats."""
    from genzoo.data import load_dataset
    from genzoo.train.config import TrainConfig
    from genzoo.train.trainer import Trainer

    data = load_dataset("digits")
    torch.manual_seed(0)
    model = VAE.for_data(data.info)
    Trainer(model, data, TrainConfig(**VAE.train_defaults), tmp_path, device="cpu", quiet=True).fit()
    model.eval()
    x = data.split("test").tensors[0]
    nll = -model.log_prob(x).mean().item()
    assert nll <= 95.0, nll

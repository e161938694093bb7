"""GANs: losses against hand-computed values, the penalties against their definitions,
spectral norm, the phases the Trainer sees, conditioning, and a short training run."""

from __future__ import annotations

import json
import math

import pytest
import torch

from genzoo.data import load_dataset
from genzoo.errors import GenzooError
from genzoo.models import get_model_class
from genzoo.models.gan import discriminator_loss, generator_loss, gradient_penalty, r1_penalty
from genzoo.train import train

REAL = torch.tensor([0.0, 1.0])
FAKE = torch.tensor([-1.0, 2.0])


def sp(a: float) -> float:
    return math.log1p(math.exp(a))


def test_discriminator_losses_match_hand_computed_values():
    ns = (sp(-0.0) + sp(-1.0)) / 2 + (sp(-1.0) + sp(2.0)) / 2
    assert discriminator_loss("ns", REAL, FAKE).item() == pytest.approx(ns, rel=1e-6)
    # hinge: relu(1 - [0, 1]) = [1, 0]; relu(1 + [-1, 2]) = [0, 3]
    assert discriminator_loss("hinge", REAL, FAKE).item() == pytest.approx(0.5 + 1.5)
    assert discriminator_loss("wgan", REAL, FAKE).item() == pytest.approx(0.5 - 0.5)
    assert discriminator_loss("wgan", torch.tensor([3.0]), torch.tensor([1.0])).item() == pytest.approx(-2.0)


def test_generator_losses_match_hand_computed_values():
    assert generator_loss("ns", FAKE).item() == pytest.approx((sp(1.0) + sp(-2.0)) / 2, rel=1e-6)
    assert generator_loss("hinge", FAKE).item() == pytest.approx(-0.5)
    assert generator_loss("wgan", FAKE).item() == pytest.approx(-0.5)
    with pytest.raises(GenzooError):
        generator_loss("nope", FAKE)


def test_gradient_penalty_of_a_linear_critic():
    w = torch.tensor([3.0, 4.0])  # |grad| = 5 everywhere -> (5 - 1)^2 = 16
    critic = lambda x: x @ w  # noqa: E731
    real, fake = torch.randn(6, 2), torch.randn(6, 2)
    assert gradient_penalty(critic, real, fake, torch.rand(6)).item() == pytest.approx(16.0)
    assert r1_penalty(critic, real).item() == pytest.approx(25.0)


def test_gradient_penalty_equals_its_definition():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    critic = lambda x: net(x).squeeze(1)  # noqa: E731
    real, fake, alpha = torch.randn(5, 3), torch.randn(5, 3), torch.rand(5)
    expected = []
    for i in range(5):
        x_hat = (alpha[i] * real[i] + (1 - alpha[i]) * fake[i]).requires_grad_(True)
        (g,) = torch.autograd.grad(critic(x_hat[None]).sum(), x_hat)
        expected.append((g.norm() - 1) ** 2)
    gp = gradient_penalty(critic, real, fake, alpha)
    assert gp.item() == pytest.approx(torch.stack(expected).mean().item(), rel=1e-5)
    gp.backward()  # differentiable w.r.t. the critic (create_graph=True)
    assert net[0].weight.grad is not None and net[0].weight.grad.abs().sum() > 0


def _model(name: str, data: str = "toy2d-ring", **overrides):
    torch.manual_seed(0)
    info = load_dataset(data).info
    return get_model_class(name).for_data(info, **overrides), info


def test_spectral_norm_makes_every_layer_1_lipschitz():
    model, _ = _model("sngan", "digits", d_channels=(8, 16), hidden=(32,))
    model.train()
    x = torch.randn(4, 1, 8, 8)
    for _ in range(30):  # each training forward runs one power iteration
        model.discriminator(x)
    model.eval()
    checked = 0
    for module in model.discriminator.modules():
        if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)):
            w = module.weight.detach().flatten(1)
            assert torch.linalg.matrix_norm(w, ord=2).item() == pytest.approx(1.0, abs=0.02)
            checked += 1
    assert checked >= 4


@pytest.mark.parametrize(
    "name, repeats, loss",
    [("dcgan", 1, "ns"), ("wgan-gp", 5, "wgan"), ("sngan", 2, "hinge")],
)
def test_phases_are_declared_for_the_trainer(name, repeats, loss):
    model, _ = _model(name)
    assert model.family == "gan" and model.log_prob_kind is None and model.config.loss == loss
    disc, gen = model.phases()
    assert (disc.name, gen.name) == ("disc", "gen")
    assert disc.repeats == repeats and gen.repeats == 1
    assert disc.lr_scale == model.config.d_lr_scale and gen.lr_scale == model.config.g_lr_scale
    d_ids, g_ids = {id(p) for p in disc.parameters}, {id(p) for p in gen.parameters}
    assert not d_ids & g_ids and d_ids | g_ids == {id(p) for p in model.parameters()}


def test_each_phase_only_moves_its_own_network():
    model, _ = _model("wgan-gp")
    data = load_dataset("toy2d-ring").split("train").tensors
    batch = (data[0][:8], data[1][:8])
    disc, gen = model.phases()
    out = model.loss(batch, phase="disc")
    assert set(out) >= {"loss", "gp", "w_distance"}
    out["loss"].backward()
    assert all(p.grad is None for p in gen.parameters)  # fakes are detached in the critic phase
    model.zero_grad(set_to_none=True)
    model.loss(batch, phase="gen")["loss"].backward()
    assert all(p.grad is not None for p in gen.parameters)


def test_validation_phase_main_logs_both_losses_without_gradients():
    model, _ = _model("dcgan", r1_weight=1.0)
    data = load_dataset("toy2d-ring").split("val").tensors
    model.eval()
    with torch.no_grad():
        out = model.loss((data[0][:16], data[1][:16]))
    assert set(out) >= {"loss", "d_loss", "g_loss", "d_real", "d_fake"}
    assert all(torch.isfinite(v) for v in out.values())


def test_conditional_generator_and_projection_discriminator():
    model, info = _model(
        "dcgan", "digits", conditional=True, g_channels=(8, 16), d_channels=(8, 16), hidden=(32,)
    )
    model.eval()
    g = torch.Generator().manual_seed(0)
    s = model.sample(6, generator=g, label=3)
    assert s.shape == (6, *info.shape)
    z = torch.randn(2, model.config.latent_dim)
    a = model.generator(z, torch.tensor([0, 0]))
    b = model.generator(z, torch.tensor([1, 1]))
    assert not torch.allclose(a, b)  # the label changes the image
    x = torch.randn(2, 1, 8, 8)
    # Projection: D(x, y) - D(x, y') = <e_y - e_y', h(x)>
    h = model.discriminator.act(model.discriminator.body(x))
    e = model.discriminator.project.weight
    diff = model.discriminator(x, torch.tensor([0, 0])) - model.discriminator(x, torch.tensor([1, 1]))
    assert torch.allclose(diff, h @ (e[0] - e[1]), atol=1e-5)
    with pytest.raises(GenzooError):
        model.sample(2, label=10)
    unconditional, _ = _model("dcgan", "digits")
    with pytest.raises(GenzooError):
        unconditional.sample(2, label=1)


def test_packed_discriminator_scores_packs_and_penalises_per_pack():
    model, _ = _model("dcgan", pack=2, hidden=(16,))
    d = model.discriminator
    x = torch.randn(6, 2)
    scores = d(x)
    assert scores.shape == (3,)
    # A pack is its members side by side: the same as scoring the concatenated rows.
    pairs = x.reshape(3, 4)
    assert torch.allclose(scores, d.head(d.act(d.body(pairs))).squeeze(1), atol=1e-6)
    # Penalties take the gradient norm over a whole pack, the discriminator's real input.
    real, fake, alpha = torch.randn(6, 2), torch.randn(6, 2), torch.rand(6)
    x_hat = (alpha[:, None] * real + (1 - alpha[:, None]) * fake).requires_grad_(True)
    (g,) = torch.autograd.grad(d(x_hat).sum(), x_hat)
    expected = ((g.reshape(3, 4).norm(dim=1) - 1) ** 2).mean()
    assert gradient_penalty(d, real, fake, alpha).item() == pytest.approx(expected.item(), rel=1e-5)
    # An odd batch drops its last example rather than splitting a pack.
    losses = model.loss(torch.randn(7, 2), phase="disc")
    assert torch.isfinite(losses["loss"])
    with pytest.raises(GenzooError):
        _model("dcgan", "digits", pack=2, conditional=True)


def test_config_validation():
    with pytest.raises(GenzooError):
        _model("dcgan", loss="square")
    with pytest.raises(GenzooError):
        _model("dcgan", "toy2d-swissroll", conditional=True)  # no labels
    with pytest.raises(GenzooError):
        _model("dcgan", architecture="conv")  # vectors are not images
    with pytest.raises(GenzooError):
        _model("dcgan", pack=0)


def test_short_training_run_logs_both_phases(tmp_path):
    settings = {"max_steps": 20, "log_every": 10, "eval_every": 0, "hidden": (32, 32), "n_critic": 2}
    model, metrics = train("wgan-gp", "toy2d-ring", tmp_path / "run", settings, quiet=True)
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    train_lines = [r for r in lines if "split" not in r]
    assert {"disc/loss", "disc/gp", "gen/loss"} <= set(train_lines[-1])
    assert "val_g_loss" in metrics and math.isfinite(metrics["val_loss"])
    # The collapse diagnostic (GANs draw 1000 samples at each validation) is in the curves.
    assert 0 <= metrics["val_modes"] <= 8 and 0 <= metrics["val_high_quality_share"] <= 1
    assert any("val_modes" in r for r in lines)
    samples = model.sample(10, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (10, 2) and torch.isfinite(samples).all()


def test_gans_choose_their_settings_for_the_data_and_the_user_still_wins(tmp_path):
    from genzoo.train.run import RunSpec

    run = tmp_path / "ring"
    train("dcgan", "toy2d-ring", run, {"max_steps": 3, "lr": 5e-4, "eval_every": 3}, device="cpu", quiet=True)
    spec = RunSpec.read(run)
    # Chosen for 2-d points: R1, batch 512, the long decay; the run's length and lr were given.
    assert spec.data_defaults == {
        "model": {"r1_weight": 0.1},
        "train": {"batch_size": 512, "min_lr_ratio": 0.01},
    }
    assert spec.train_settings["lr"] == 5e-4 and spec.train_settings["max_steps"] == 3
    assert spec.model_settings["r1_weight"] == 0.1
    card = (run / "README.md").read_text()
    assert "| model | `r1_weight` | `0.1` | `0` | chosen by dcgan for this data |" in card
    assert "## Warnings during training" in card  # 3 steps cannot cover 8 modes, and the card says so

    digits = tmp_path / "digits"
    train(
        "dcgan",
        "digits",
        digits,
        {"max_steps": 2, "r1_weight": 0.0, "conditional": True},
        device="cpu",
        quiet=True,
    )
    spec = RunSpec.read(digits)
    assert (
        spec.model_settings["r1_weight"] == 0.0 and "pack" not in spec.model_settings
    )  # conditional: no packing
    assert spec.model_settings["g_channels"] == [32, 64] and spec.train_settings["batch_size"] == 64
    assert "max_steps" not in spec.data_defaults.get("train", {})  # the user set the length
    assert RunSpec.read(digits).data_defaults["train"]["ema_decay"] == 0.999

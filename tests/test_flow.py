"""Normalizing flows: every layer inverts exactly and its log-determinant matches autograd."""

from __future__ import annotations

import math

import pytest
import torch

from genzoo.data import load_dataset
from genzoo.errors import GenzooError
from genzoo.models.flow import MAF, Glow, GlowConfig, MAFConfig, RealNVP, RealNVPConfig
from genzoo.nn.flow_layers import (
    ActNorm,
    AffineCoupling,
    InvConv1x1,
    LogitTransform,
    MAFLayer,
    Reverse,
    Squeeze,
)


def _perturb(module: torch.nn.Module, seed: int = 0, scale: float = 0.3) -> torch.nn.Module:
    """Move every parameter off its (often identity) initialisation, so the checks mean something."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return module


def _check_layer(layer, x: torch.Tensor) -> None:
    """x -> y -> x within 1e-5, and logdet == log|det J| from autograd, per example."""
    layer = layer.double().eval()
    x = x.double()
    y, logdet = layer(x)
    assert logdet.shape == (len(x),)
    assert torch.allclose(layer.inverse(y), x, atol=1e-5), "inverse does not undo forward"
    for i in range(len(x)):
        xi = x[i : i + 1]
        jac = torch.autograd.functional.jacobian(
            lambda t, xi=xi: layer(t.view_as(xi))[0].flatten(), xi.flatten(), vectorize=True
        )
        sign, logabs = torch.linalg.slogdet(jac)
        assert sign != 0
        assert torch.allclose(logabs, logdet[i], atol=1e-6), (float(logabs), float(logdet[i]))


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


IMAGE_LAYERS = {
    "checkerboard-even": lambda: AffineCoupling(1, "checkerboard", 0, hidden=8, depth=1, size=(4, 4)),
    "checkerboard-odd": lambda: AffineCoupling(2, "checkerboard", 1, hidden=8, depth=2, size=(4, 4)),
    "channel-even": lambda: AffineCoupling(4, "channel", 0, hidden=8, depth=1),
    "channel-odd": lambda: AffineCoupling(3, "channel", 1, hidden=8, depth=1),
    "invconv1x1": lambda: InvConv1x1(4, generator=_gen(1)),
    "squeeze": Squeeze,
}


@pytest.mark.parametrize("name", sorted(IMAGE_LAYERS))
def test_image_layer_inverse_and_logdet(name):
    layer = _perturb(IMAGE_LAYERS[name]())
    channels = {"checkerboard-even": 1, "checkerboard-odd": 2, "channel-odd": 3}.get(name, 4)
    x = torch.randn(3, channels, 4, 4, generator=_gen(2))
    _check_layer(layer, x)


@pytest.mark.parametrize("shape", [(3, 4, 2, 2), (5, 3)])
def test_actnorm_data_dependent_init_and_logdet(shape):
    layer = ActNorm(shape[1]).double()
    x = torch.randn(*shape, generator=_gen(3), dtype=torch.float64) * 3 + 1.5
    layer.train()
    y, _ = layer(x)
    dims = [0] + list(range(2, x.dim()))
    assert torch.allclose(y.mean(dims), torch.zeros(shape[1], dtype=torch.float64), atol=1e-10)
    assert torch.allclose(y.std(dims), torch.ones(shape[1], dtype=torch.float64), atol=1e-6)
    assert bool(layer.initialized)
    _check_layer(_perturb(layer), x)


def test_invconv_lu_weight_is_invertible_and_logdet_is_sum_log_s():
    layer = _perturb(InvConv1x1(6, generator=_gen(4))).double()
    w = layer.weight()
    assert torch.allclose(torch.linalg.slogdet(w)[1], layer.log_s.sum())


def test_logit_transform_inverse_and_logdet():
    x = torch.rand(3, 1, 3, 3, generator=_gen(5)) * 0.98 + 0.01
    _check_layer(LogitTransform(0.05), x)


@pytest.mark.parametrize("scale_form", ["sigmoid", "exp-tanh"])
@pytest.mark.parametrize("reverse", [False, True])
def test_maf_layer_inverse_and_logdet(reverse, scale_form):
    d = 5
    order = torch.arange(d).flip(0) if reverse else torch.arange(d)
    layer = _perturb(MAFLayer(d, (16, 16), order=order, scale_form=scale_form))
    _check_layer(layer, torch.randn(4, d, generator=_gen(6)))


def test_maf_jacobian_is_triangular_in_its_order():
    d = 4
    layer = _perturb(MAFLayer(d, (12,), order=torch.arange(d).flip(0))).double()
    x = torch.randn(1, d, dtype=torch.float64, generator=_gen(7))
    jac = torch.autograd.functional.jacobian(lambda t: layer(t.view(1, d))[0].flatten(), x.flatten())
    # Reversed order: output d depends on inputs d..D-1 only (upper triangular).
    assert torch.allclose(jac, torch.triu(jac))


def test_maf_layer_starts_as_identity_and_bounds_its_scale():
    d = 3
    layer = MAFLayer(d, (8,)).double()
    x = torch.randn(4, d, dtype=torch.float64, generator=_gen(9))
    y, logdet = layer(x)
    assert torch.allclose(y, x, atol=1e-12) and torch.allclose(logdet, torch.zeros_like(logdet), atol=1e-12)
    # Huge raw outputs: the scale saturates inside (1e-3, 2) and stays finite and invertible.
    with torch.no_grad():
        layer.made.out.bias.copy_(torch.tensor([0.0] * d + [-1e4, 0.0, 1e4]))
    y, logdet = layer(x)
    scale = torch.tensor([1e-3, 1.0, 2 - 1e-3], dtype=torch.float64)
    assert torch.allclose(y / x, scale)
    assert torch.allclose(logdet, scale.log().sum().expand(4))
    assert torch.allclose(layer.inverse(y), x)


def test_a_maf_saved_before_the_bounded_scale_loads_with_its_own(tmp_path):
    import json

    from genzoo.models import load

    model = _tiny(MAF, MAFConfig, n_layers=3, hidden=(24,), scale_form="exp-tanh").float()
    model.save_pretrained(tmp_path / "old")
    config_file = tmp_path / "old" / "config.json"
    saved = json.loads(config_file.read_text())
    del saved["config"]["scale_form"]  # as config.json was written before the field existed
    config_file.write_text(json.dumps(saved))
    loaded = load(tmp_path / "old")
    x = torch.rand(6, 1, 4, 4, generator=_gen(11)) * 4
    assert loaded.config.scale_form == "exp-tanh"
    assert torch.allclose(loaded.log_prob(x), model.log_prob(x))
    # The same weights under the new form are another density: the field is what keeps it.
    fresh = MAF(MAFConfig.from_dict({**loaded.config.to_dict(), "scale_form": "sigmoid"}))
    fresh.load_state_dict(loaded.state_dict())
    assert not torch.allclose(fresh.eval().log_prob(x), model.log_prob(x))


def test_reverse_inverse_and_logdet():
    _check_layer(Reverse(), torch.randn(2, 3, generator=_gen(8)))


# ---- whole models --------------------------------------------------------------------------
def _tiny(cls, config_cls, **kw):
    config = config_cls(data_shape=(1, 4, 4), data_levels=5, data_low=0.0, data_high=4.0, **kw)
    torch.manual_seed(0)
    return _perturb(cls(config), scale=0.05).double().eval()


TINY_MODELS = {
    "realnvp": lambda: _tiny(RealNVP, RealNVPConfig, n_scales=2, couplings=2, hidden=8, depth=1),
    "glow": lambda: _tiny(Glow, GlowConfig, n_levels=2, steps=2, hidden=8),
    "maf": lambda: _tiny(MAF, MAFConfig, n_layers=3, hidden=(24,)),
}


@pytest.mark.parametrize("name", sorted(TINY_MODELS))
def test_whole_flow_inverts_and_logdet_matches_autograd(name):
    model = TINY_MODELS[name]()
    shape = model._flow_shape()
    x = torch.randn(2, *shape, generator=_gen(9), dtype=torch.float64)
    parts, logdet = model._forward_parts(x)
    z = model._flatten(parts)
    assert z.shape == (2, 16)
    assert torch.allclose(model._inverse_parts(model._unflatten(z)).reshape_as(x), x, atol=1e-5)
    xi = x[:1]
    jac = torch.autograd.functional.jacobian(
        lambda t: model._flatten(model._forward_parts(t.view_as(xi))[0]).flatten(),
        xi.flatten(),
        vectorize=True,
    )
    assert torch.allclose(torch.linalg.slogdet(jac)[1], logdet[0], atol=1e-6)


@pytest.mark.parametrize("name", sorted(TINY_MODELS))
def test_encode_decode_round_trip_on_levels(name):
    model = TINY_MODELS[name]()
    x = torch.randint(0, 5, (6, 1, 4, 4), generator=_gen(10)).double()
    assert torch.equal(model.decode(model.encode(x)).double(), x)


def test_maf_density_integrates_to_one_on_a_2d_grid():
    config = MAFConfig(
        data_shape=(2,), data_levels=None, data_low=-1.0, data_high=1.0, n_layers=4, hidden=(32,)
    )
    torch.manual_seed(0)
    model = _perturb(MAF(config), scale=0.05).double().eval()
    step = 0.05
    ticks = torch.arange(-12, 12, step, dtype=torch.float64) + step / 2
    grid = torch.cartesian_prod(ticks, ticks)
    with torch.no_grad():
        mass = model.log_prob(grid).exp().sum() * step * step
    assert abs(float(mass) - 1) < 2e-3, float(mass)


def test_discrete_log_prob_is_the_dequantization_bound_and_deterministic():
    model = TINY_MODELS["realnvp"]()
    x = torch.randint(0, 5, (4, 1, 4, 4), generator=_gen(11)).double()
    a, b = model.log_prob(x), model.log_prob(x)
    assert torch.equal(a, b)
    # log_prob draws U(0, 1) in float32 from the generator (clamped away from 0 and 1).
    u = torch.rand(x.shape, generator=torch.Generator().manual_seed(3)).clamp(1e-6, 1 - 1e-6).double()
    with torch.no_grad():
        log_pv, _ = model._log_density_unit((x + u) / 5)
    expected = log_pv + 16 * math.log(1 / 5)
    assert torch.allclose(model.log_prob(x, generator=torch.Generator().manual_seed(3)), expected)
    # The probability of a discrete image cannot exceed 1.
    assert (a < 0).all()


def test_sampling_temperature_and_determinism():
    data = load_dataset("digits")
    model = RealNVP.for_data(data.info).eval()
    a = model.sample(4, generator=_gen(1), temperature=0.7)
    assert torch.equal(a, model.sample(4, generator=_gen(1), temperature=0.7))
    assert a.shape == (4, 1, 8, 8) and a.min() >= 0 and a.max() <= 16
    assert torch.equal(a, a.round())
    with pytest.raises(GenzooError):
        model.sample(2, temperature=0.0)


def test_bad_shapes_are_user_errors():
    with pytest.raises(GenzooError):
        Glow(GlowConfig(data_shape=(1, 6, 6), n_levels=2))
    with pytest.raises(GenzooError):
        RealNVP(RealNVPConfig(data_shape=(2,)))

"""PixelCNN: causal receptive field without a blind spot, a normalised exact likelihood, sampling."""

from __future__ import annotations

import itertools

import pytest
import torch

from genzoo.errors import GenzooError
from genzoo.models.pixelcnn import PixelCNN, PixelCNNConfig


def _model(size: int = 5, levels: int = 4, **kw) -> PixelCNN:
    defaults = {"channels": 8, "n_layers": 4, "head_channels": 16}
    config = PixelCNNConfig(
        data_shape=(1, size, size),
        data_levels=levels,
        data_low=0.0,
        data_high=levels - 1.0,
        **{**defaults, **kw},
    )
    torch.manual_seed(0)
    model = PixelCNN(config).eval()
    with torch.no_grad():  # class biases start at zero: give them values so conditioning matters
        for name, p in model.named_parameters():
            if "class_bias" in name:
                p.normal_(0, 0.5)
    return model


def _influence(model: PixelCNN, of: str = "logits") -> torch.Tensor:
    """(P, P) matrix: [i, j] = |d output at pixel i / d input pixel j| summed (raster order).

    `of="features"`: the last layer's feature maps (the head on top is 1x1, so it adds no
    spatial dependence, but a small random head can have dead ReLUs that hide some).
    """
    model = model.double()
    _, _, h, w = (1, *model.shape)
    x = torch.rand(1, 1, h, w, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2 - 1
    rows = []
    for i in range(h * w):
        x_ = x.clone().requires_grad_(True)
        out = model.logits(x_) if of == "logits" else model.features(x_)
        out[..., i // w, i % w].sum().backward()
        rows.append(x_.grad.abs().flatten())
    return torch.stack(rows)


@pytest.mark.parametrize("architecture", ["gated", "plain"])
def test_receptive_field_is_causal(architecture):
    model = _model(architecture=architecture)
    for of in ("logits", "features"):
        influence = _influence(model, of)
        # Pixel i never sees itself or any later pixel.
        assert torch.all(torch.triu(influence) == 0)


def test_gated_pixelcnn_has_no_blind_spot():
    influence = _influence(_model(n_layers=4), of="features")
    # ... and with enough layers it sees *every* earlier pixel (strictly lower triangle all non-zero).
    lower = torch.tril(torch.ones_like(influence, dtype=torch.bool), -1)
    assert torch.all(influence[lower] > 0)


def test_plain_pixelcnn_has_the_blind_spot():
    influence = _influence(_model(architecture="plain", n_layers=4), of="features")
    lower = torch.tril(torch.ones_like(influence, dtype=torch.bool), -1)
    assert torch.any(influence[lower] == 0)  # the reason the gated version exists


def test_probabilities_sum_to_one_and_log_prob_is_the_sum_of_log_softmax():
    model = _model()
    x = torch.randint(0, 4, (3, 1, 5, 5), generator=torch.Generator().manual_seed(1)).float()
    probs = model.probs(x)
    assert probs.shape == (3, 4, 1, 5, 5)
    assert torch.allclose(probs.sum(1), torch.ones(3, 1, 5, 5), atol=1e-6)
    logp = torch.log_softmax(model.logits(model.rescale.to_internal(x)), dim=1)
    manual = logp.gather(1, x.long().unsqueeze(1)).flatten(1).sum(1)
    assert torch.allclose(model.log_prob(x), manual, atol=1e-5)


@pytest.mark.parametrize("conditional", [False, True])
def test_likelihood_is_normalised_over_every_image(conditional):
    # 2x2 images with 3 levels: 81 images whose probabilities must sum to exactly 1.
    model = _model(size=2, levels=3, n_layers=2, first_kernel_size=3, conditional=conditional, num_classes=3)
    images = torch.tensor(list(itertools.product(range(3), repeat=4)), dtype=torch.float32).view(-1, 1, 2, 2)
    with torch.no_grad():
        total = model.log_prob(images).double().exp().sum()
        assert abs(float(total) - 1) < 1e-5
        if conditional:  # p(x|y) is normalised for each class too, and the marginal averages them
            per_class = torch.stack([model.log_prob(images, y=torch.full((81,), c)) for c in range(3)])
            assert torch.allclose(
                per_class.double().exp().sum(1), torch.ones(3, dtype=torch.float64), atol=1e-5
            )
            marginal = torch.logsumexp(per_class, 0) - torch.log(torch.tensor(3.0))
            assert torch.allclose(model.log_prob(images), marginal, atol=1e-5)


def test_sampling_is_deterministic_and_on_the_levels():
    model = _model(conditional=True, num_classes=3)
    a = model.sample(4, generator=torch.Generator().manual_seed(0), temperature=0.8, label=1)
    b = model.sample(4, generator=torch.Generator().manual_seed(0), temperature=0.8, label=1)
    c = model.sample(4, generator=torch.Generator().manual_seed(0), temperature=0.8, label=2)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == (4, 1, 5, 5) and torch.equal(a, a.round()) and a.min() >= 0 and a.max() <= 3
    with pytest.raises(GenzooError):
        model.sample(2, temperature=0)


def test_completion_keeps_the_given_pixels():
    model = _model()
    x = torch.randint(0, 4, (6, 1, 5, 5), generator=torch.Generator().manual_seed(2)).float()
    known = torch.zeros(5, 5, dtype=torch.bool)
    known[:2] = True  # top rows given
    out = model.complete(x, known, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out[..., :2, :], x[..., :2, :])
    assert not torch.equal(out, x)
    again = model.complete(x, known, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, again)


@pytest.mark.parametrize("conditional", [False, True])
def test_row_cached_steps_give_the_whole_image_logits(conditional):
    """What sampling, completion and compression step through: each pixel's logits from the cached
    rows equal one pass over the whole image, also after whole rows are fixed without being asked
    (given rows in a completion) and with class biases."""
    from genzoo.models.pixelcnn import _GatedRows

    model = _model(size=6, n_layers=3, kernel_size=5, conditional=conditional, num_classes=3)
    x = torch.randint(0, 4, (5, 1, 6, 6), generator=torch.Generator().manual_seed(3)).float()
    label = torch.tensor([0, 1, 2, 1, 0]) if conditional else None
    with torch.no_grad():
        whole = model.logits(model.rescale.to_internal(x), label).flatten(2)  # (N, L, 36)
    steps = _GatedRows(model, 5, label)
    for d, value in enumerate(x.flatten(1).T):
        if d >= 12:  # the first two rows fixed unasked
            assert torch.allclose(steps.logits(), whole[:, :, d], atol=1e-5), d
        steps.fix(value)


def _sharp_conditional_2x2() -> PixelCNN:
    """2x2 images, 3 levels, 3 classes, weights scaled up: sharper conditionals and classes
    further apart, so what the label is drawn from shows in the completions."""
    model = _model(size=2, levels=3, n_layers=2, first_kernel_size=3, conditional=True, num_classes=3)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)
    return model


def test_conditional_completion_without_a_label_samples_the_marginal_conditional():
    # 2x2 images, 3 levels, top row given: a label-free completion must follow p(bottom | top) of
    # the mixture sum_y p(y) p(x | y), i.e. draw the label from p(y | top), not from the prior.
    model = _sharp_conditional_2x2()
    bottoms = torch.tensor(list(itertools.product(range(3), repeat=2)), dtype=torch.float32)
    images = torch.cat([torch.zeros(9, 2), bottoms], 1).view(9, 1, 2, 2)  # top row (0, 0)
    with torch.no_grad():
        per_class = torch.stack([model.log_prob(images, y=torch.full((9,), c)) for c in range(3)])
    exact = torch.logsumexp(per_class, 0).softmax(0)
    label_from_prior = per_class.softmax(1).mean(0)  # what a label ignoring the top row gives
    assert (exact - label_from_prior).abs().max() > 0.05  # so the check below can tell them apart
    known = torch.tensor([[True, True], [False, False]])
    draws = model.complete(
        images[:1].expand(20000, -1, -1, -1), known, generator=torch.Generator().manual_seed(0)
    )
    observed = torch.bincount((draws[:, 0, 1, 0] * 3 + draws[:, 0, 1, 1]).long(), minlength=9) / 20000
    assert (observed - exact).abs().max() < 0.015, (observed, exact)


def test_label_posterior_given_the_top_row_matches_enumeration():
    model = _sharp_conditional_2x2()
    images = torch.tensor(list(itertools.product(range(3), repeat=4)), dtype=torch.float32).view(81, 1, 2, 2)
    with torch.no_grad():
        per_class = torch.stack([model.log_prob(images, y=torch.full((81,), c)) for c in range(3)])
    # p(top | y) sums p(x | y) over the 9 bottoms of each top; images are ordered top-major.
    exact = torch.logsumexp(per_class.view(3, 9, 9), 2).T.softmax(1)  # (9 tops, 3 labels)
    known = torch.tensor([[True, True], [False, False]])
    posterior = model.label_posterior(images[::9], known)
    assert torch.allclose(posterior, exact, atol=1e-5)
    assert torch.allclose(
        model.label_posterior(images[:2], torch.zeros(2, 2, dtype=torch.bool)), torch.full((2, 3), 1 / 3)
    )
    with pytest.raises(GenzooError, match="conditional"):
        _model().label_posterior(images[:1], known)


def test_most_probable_of_k_completions_is_the_best_scored_draw():
    model = _model()
    x = torch.randint(0, 4, (3, 1, 5, 5), generator=torch.Generator().manual_seed(2)).float()
    known = torch.zeros(5, 5, dtype=torch.bool)
    known[:2] = True
    best = model.complete(x, known, generator=torch.Generator().manual_seed(0), candidates=4)
    draws = model.complete(x.repeat_interleave(4, 0), known, generator=torch.Generator().manual_seed(0))
    scores = model.log_prob(draws).view(3, 4)
    assert torch.equal(best, draws.view(3, 4, 1, 5, 5)[torch.arange(3), scores.argmax(1)])
    assert torch.equal(best[..., :2, :], x[..., :2, :])
    assert (model.log_prob(best) >= scores.median(1).values).all()
    with pytest.raises(GenzooError):
        model.complete(x, known, candidates=0)


def test_loss_uses_labels_when_conditional():
    model = _model(conditional=True, num_classes=3).train()
    x = torch.randint(0, 4, (4, 1, 5, 5), generator=torch.Generator().manual_seed(3)).float()
    a = model.loss((x, torch.tensor([0, 1, 2, -1])))["loss"]
    b = model.loss((x, torch.tensor([2, 2, 2, -1])))["loss"]
    assert torch.isfinite(a) and not torch.allclose(a, b)


def test_bad_inputs_are_user_errors():
    with pytest.raises(GenzooError):
        _model(architecture="wavenet")
    with pytest.raises(GenzooError):
        PixelCNN(PixelCNNConfig(data_shape=(1, 8, 8), data_levels=None))
    with pytest.raises(GenzooError):
        _model(conditional=True, num_classes=0)

"""genzoo.metrics: each metric against a closed form, an independent implementation, or a constructed case."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from genzoo.data.base import find_shared_file
from genzoo.errors import GenzooError
from genzoo.metrics import (
    DomainClassifier,
    GaussianStats,
    InceptionV3FID,
    ModuleFeatures,
    bits_per_char,
    bits_per_dim,
    class_coverage,
    discrete_nll_from_density,
    evaluate_nll,
    frechet_distance,
    frechet_distance_from_stats,
    inception_score,
    kernel_inception_distance,
    knn_radii,
    memorization,
    mmd2_unbiased,
    modes_covered,
    precision_recall,
    sample_quality,
    train_domain_classifier,
)
from genzoo.metrics.diversity import expected_high_quality_share


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def random_rotation(d: int, seed: int) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(d, d, generator=gen(seed), dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))


def moment_matched(n: int, mean: torch.Tensor, cov_root: torch.Tensor, seed: int) -> torch.Tensor:
    """n samples whose sample mean and (N-1) covariance equal `mean` and `cov_root cov_root^T` exactly."""
    z = torch.randn(n, len(mean), generator=gen(seed), dtype=torch.float64)
    z = z - z.mean(0)
    chol = torch.linalg.cholesky(z.T @ z / (n - 1))
    z = torch.linalg.solve_triangular(chol, z.T, upper=False).T  # whitened: covariance exactly I
    return z @ cov_root.T + mean


# ---- likelihood -------------------------------------------------------------------------------


def test_bits_per_dim_and_bpc():
    assert bits_per_dim(64 * math.log(2), 64) == pytest.approx(1.0)
    # A character-level model: tokens == chars, bpc = loss / ln 2.
    assert bits_per_char(math.log(2), 1000, 1000) == pytest.approx(1.0)
    # A subword model with 4 characters per token spreads each token's nats over 4 characters.
    assert bits_per_char(4 * math.log(2), 250, 1000) == pytest.approx(1.0)


def test_discrete_nll_sign_uniform_density():
    """Uniform density on [0,1]^D with (x+u)/L dequantization is exactly the uniform categorical: D log L."""
    d, levels = 64, 17
    assert discrete_nll_from_density(0.0, d, 1.0 / levels) == pytest.approx(d * math.log(levels))
    # The same data seen on [-1, 1] (bin width 2/(L-1)) under the uniform density 2^-D.
    log_p = -d * math.log(2.0)
    nll = discrete_nll_from_density(log_p, d, 2.0 / (levels - 1))
    assert nll == pytest.approx(d * math.log(levels - 1))
    assert nll > -log_p  # the discrete NLL exceeds the continuous one when bins are narrower than 1


class _UniformCategorical(nn.Module):
    """17 levels per pixel, all equally likely: log p(x) = -D log 17 exactly."""

    log_prob_kind = "exact"
    name = "uniform"

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))
        self.dropout = nn.Dropout(0.5)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        assert not self.training, "evaluate_nll must evaluate in eval mode"
        return self.dropout(torch.zeros(len(x))) - x[0].numel() * math.log(17)


def test_evaluate_nll_exact_value_and_batch_invariance():
    model = _UniformCategorical().train()
    x = torch.randint(0, 17, (37, 1, 8, 8)).float()
    a = evaluate_nll(model, x, batch_size=5)
    b = evaluate_nll(model, x, batch_size=1000)
    assert a["nll"] == pytest.approx(64 * math.log(17))
    assert a["bpd"] == pytest.approx(math.log2(17))
    assert a["nll_kind"] == "exact"
    assert a == b
    assert model.training  # mode restored


def test_evaluate_nll_errors():
    model = _UniformCategorical()
    model.log_prob_kind = None
    with pytest.raises(GenzooError, match="no log-likelihood"):
        evaluate_nll(model, torch.zeros(3, 4))
    model = _UniformCategorical()
    model.log_prob = lambda x: torch.full((len(x),), -math.inf)
    with pytest.raises(GenzooError, match="non-finite"):
        evaluate_nll(model, torch.zeros(3, 4))


# ---- Fréchet distance -------------------------------------------------------------------------

D_FD, N_FD = 16, 20_000


def _fd_setup():
    """N(0, I) against N(mu, R diag(lam) R^T): FD = |mu|^2 + D + sum(lam) - 2 sum(sqrt(lam)) in closed form."""
    lam = torch.linspace(0.25, 9.0, D_FD, dtype=torch.float64)
    root2 = (
        random_rotation(D_FD, 1) * lam.sqrt()
    )  # non-diagonal covariance: S1 and S2 do not share axes trivially
    mu = torch.linspace(-1.0, 1.0, D_FD, dtype=torch.float64)
    closed = float(mu @ mu + D_FD + lam.sum() - 2 * lam.sqrt().sum())
    return mu, root2, closed


def test_frechet_distance_matches_closed_form():
    """With samples whose moments equal the population's, the estimate must equal the closed form."""
    mu, root2, closed = _fd_setup()
    a = moment_matched(N_FD, torch.zeros(D_FD, dtype=torch.float64), torch.eye(D_FD, dtype=torch.float64), 2)
    b = moment_matched(N_FD, mu, root2, 3)
    assert closed > 20
    assert frechet_distance(a, b) == pytest.approx(closed, rel=1e-3)
    assert frechet_distance(a, b) == pytest.approx(closed, rel=1e-9)  # in fact to float64 rounding


def test_frechet_distance_random_samples_near_closed_form():
    """Plain Gaussian samples: the estimate is off by sampling noise only (std about 0.4% here)."""
    mu, root2, closed = _fd_setup()
    a = torch.randn(N_FD, D_FD, generator=gen(4), dtype=torch.float64)
    b = torch.randn(N_FD, D_FD, generator=gen(5), dtype=torch.float64) @ root2.T + mu
    assert frechet_distance(a, b) == pytest.approx(closed, rel=0.02)


def test_frechet_distance_from_stats_commuting_case_and_symmetry():
    alpha = torch.tensor([1.0, 4.0, 0.5], dtype=torch.float64)
    lam = torch.tensor([9.0, 1.0, 2.0], dtype=torch.float64)
    r = random_rotation(3, 7)
    s1, s2 = r @ torch.diag(alpha) @ r.T, r @ torch.diag(lam) @ r.T
    mu1, mu2 = torch.zeros(3), torch.tensor([1.0, 2.0, 0.0])
    expected = 5.0 + float(((alpha.sqrt() - lam.sqrt()) ** 2).sum())
    assert frechet_distance_from_stats(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-10)
    assert frechet_distance_from_stats(mu2, s2, mu1, s1) == pytest.approx(expected, rel=1e-10)
    # numpy inputs work too
    assert frechet_distance_from_stats(mu1.numpy(), s1.numpy(), mu2.numpy(), s2.numpy()) == pytest.approx(
        expected
    )


def test_frechet_distance_identical_and_rank_deficient():
    x = torch.randn(50, 8, generator=gen(0))
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)
    # N < D: singular covariances; the eigen-route stays real, finite and non-negative.
    a, b = torch.randn(10, 64, generator=gen(1)), torch.randn(12, 64, generator=gen(2))
    value = frechet_distance(a, b)
    assert math.isfinite(value) and value > 0


def test_frechet_distance_matches_torchmetrics():
    tm_fid = pytest.importorskip("torchmetrics.image.fid")

    class Identity(nn.Module):
        num_features = 16

        def forward(self, x):
            return x

    a = torch.randn(3000, 16, generator=gen(0), dtype=torch.float64)
    b = torch.randn(2500, 16, generator=gen(1), dtype=torch.float64) @ random_rotation(16, 2) * 1.5 + 0.3
    metric = tm_fid.FrechetInceptionDistance(feature=Identity())
    metric.update(a, real=True)
    metric.update(b, real=False)
    theirs = float(metric.compute())
    assert frechet_distance(a, b) == pytest.approx(theirs, rel=1e-4)


def test_streaming_stats_equal_one_shot():
    # A large common offset: the naive E[xx^T] - mu mu^T would lose digits here.
    x = torch.randn(1001, 12, generator=gen(3), dtype=torch.float64) * 0.01 + 1e4
    one_shot = GaussianStats.from_features(x)
    streamed = GaussianStats()
    for batch in x.split(37):
        streamed.update(batch)
    reference = torch.cov(x.T)
    assert streamed.n == one_shot.n == 1001
    torch.testing.assert_close(streamed.mean, x.mean(0), rtol=1e-12, atol=1e-9)
    torch.testing.assert_close(streamed.cov, reference, rtol=1e-7, atol=1e-12)
    torch.testing.assert_close(streamed.cov, one_shot.cov, rtol=1e-7, atol=1e-12)


def test_stats_save_load_roundtrip(tmp_path):
    x = torch.randn(100, 5, generator=gen(0))
    stats = GaussianStats.from_features(x, batch_size=30)
    stats.save(tmp_path / "ref.safetensors")
    again = GaussianStats.load(tmp_path / "ref.safetensors")
    assert again.n == 100
    torch.testing.assert_close(again.cov, stats.cov)
    with pytest.raises(GenzooError):
        GaussianStats.load(tmp_path / "missing.safetensors")


def test_bad_feature_shapes_are_user_errors():
    with pytest.raises(GenzooError, match="2-d"):
        frechet_distance(torch.zeros(5, 1, 8, 8), torch.zeros(5, 1, 8, 8))
    with pytest.raises(GenzooError, match="same feature extractor"):
        frechet_distance(torch.randn(5, 3), torch.randn(5, 4))
    with pytest.raises(GenzooError, match="NaN"):
        frechet_distance(torch.full((5, 3), math.nan), torch.randn(5, 3))


# ---- KID ----------------------------------------------------------------------------------------


def test_kid_unbiased_same_distribution_and_positive_otherwise():
    a = torch.randn(2000, 32, generator=gen(0))
    b = torch.randn(2000, 32, generator=gen(1))
    c = torch.randn(2000, 32, generator=gen(2)) * 1.2 + 0.2
    mean, std = kernel_inception_distance(a, b, subset_size=500, n_subsets=50)
    assert abs(mean) < 2 * std
    mean_diff, std_diff = kernel_inception_distance(a, c, subset_size=500, n_subsets=50)
    assert mean_diff > 10 * std_diff and mean_diff > 10 * abs(mean)


def test_kid_deterministic_for_a_seed():
    a, b = torch.randn(300, 8, generator=gen(0)), torch.randn(300, 8, generator=gen(1)) + 0.1
    assert kernel_inception_distance(
        a, b, subset_size=100, n_subsets=10, seed=3
    ) == kernel_inception_distance(a, b, subset_size=100, n_subsets=10, seed=3)
    assert kernel_inception_distance(
        a, b, subset_size=100, n_subsets=10, seed=4
    ) != kernel_inception_distance(a, b, subset_size=100, n_subsets=10, seed=3)


def test_mmd2_matches_explicit_double_sum():
    x = torch.randn(7, 3, generator=gen(0), dtype=torch.float64)
    y = torch.randn(7, 3, generator=gen(1), dtype=torch.float64) + 0.5

    def k(u, v):
        return (float(u @ v) / 3 + 1) ** 3

    m = len(x)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    assert mmd2_unbiased(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-12)


@pytest.mark.filterwarnings("ignore::UserWarning")  # torchmetrics: feature buffers, std of one split
def test_kid_matches_torchmetrics_on_full_sets():
    """With one subset holding every row, the random subset choice is irrelevant: compare exactly."""
    tm_kid = pytest.importorskip("torchmetrics.image.kid")

    class Identity(nn.Module):
        num_features = 8

        def forward(self, x):
            return x

    a = torch.randn(200, 8, generator=gen(0), dtype=torch.float64)
    b = torch.randn(200, 8, generator=gen(1), dtype=torch.float64) * 1.3
    metric = tm_kid.KernelInceptionDistance(feature=Identity(), subsets=1, subset_size=200)
    metric.update(a, real=True)
    metric.update(b, real=False)
    theirs, _ = metric.compute()
    ours, _ = kernel_inception_distance(a, b, subset_size=200, n_subsets=1)
    assert ours == pytest.approx(float(theirs), rel=1e-6)


# ---- Inception Score ----------------------------------------------------------------------------


def test_inception_score_bounds():
    k = 10
    uniform = torch.full((100, k), 1.0 / k)
    assert inception_score(uniform, splits=5) == pytest.approx((1.0, 0.0))
    one_hot = torch.eye(k).repeat(20, 1)  # every split holds each class equally often
    mean, std = inception_score(one_hot, splits=4)
    assert mean == pytest.approx(k) and std == pytest.approx(0.0, abs=1e-9)
    collapsed = torch.eye(k)[torch.zeros(100, dtype=torch.long)]  # confident but always class 0
    assert inception_score(collapsed, splits=1)[0] == pytest.approx(1.0)
    with pytest.raises(GenzooError, match="probabilities"):
        inception_score(torch.randn(10, 3))


@pytest.mark.filterwarnings("ignore::UserWarning")  # torchmetrics: feature buffers, std of one split
def test_inception_score_matches_torchmetrics_single_split():
    tm_is = pytest.importorskip("torchmetrics.image.inception")

    class Identity(nn.Module):
        num_features = 6

        def forward(self, x):
            return x

    logits = torch.randn(500, 6, generator=gen(0), dtype=torch.float64) * 2
    metric = tm_is.InceptionScore(feature=Identity(), splits=1)
    metric.update(logits)
    theirs, _ = metric.compute()
    ours, _ = inception_score(torch.softmax(logits, 1), splits=1)
    assert ours == pytest.approx(float(theirs), rel=1e-6)


# ---- precision / recall / density / coverage ----------------------------------------------------


def test_precision_recall_on_a_subset_of_real_data():
    """A mode-collapsed generator: it replays real points, but only from one region (x0 > 1, about 14%)."""
    real = torch.randn(2000, 8, generator=gen(0))
    corner = real[real[:, 0] > 1.0]
    out = precision_recall(real, corner, chunk_size=256)
    assert out["precision"] == 1.0  # every sample is a real point, inside its own ball
    assert out["coverage"] < 0.3
    # At equal set sizes (the papers' protocol) recall is the share of the data the region holds.
    # (With the small subset itself, its sparse points have big balls and recall reads ~0.4:
    # recall depends on N, so compare sets of equal size.)
    g = gen(1)
    fake = corner[torch.randint(0, len(corner), (2000,), generator=g)] + 0.01 * torch.randn(
        2000, 8, generator=g
    )
    out = precision_recall(real, fake)
    share = float((real[:, 0] > 1.0).double().mean())
    assert out["precision"] > 0.99
    assert out["recall"] == pytest.approx(share, abs=0.05)
    assert out["recall"] < 0.2


def test_precision_recall_same_distribution_and_far_away():
    real = torch.randn(1500, 8, generator=gen(0))
    fresh = torch.randn(1500, 8, generator=gen(1))
    same = precision_recall(real, fresh)
    assert same["precision"] > 0.6 and same["recall"] > 0.6
    # Naeem et al.: for identical distributions E[density] = 1 and E[coverage] ~ 1 - 2^-k (0.875 at k=3).
    assert same["density"] == pytest.approx(1.0, abs=0.15)
    assert same["coverage"] == pytest.approx(0.875, abs=0.05)
    far = precision_recall(real, fresh + 10.0)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_precision_recall_chunking_and_precomputed_radii_do_not_change_results():
    real, fake = torch.randn(300, 5, generator=gen(0)), torch.randn(250, 5, generator=gen(1)) * 1.3
    full = precision_recall(real, fake)
    assert precision_recall(real, fake, chunk_size=7) == full
    assert precision_recall(real, fake, real_radii=knn_radii(real, 3)) == full


def test_knn_radii_against_brute_force():
    x = torch.randn(40, 3, generator=gen(0), dtype=torch.float64)
    d = torch.cdist(x, x, compute_mode="donot_use_mm_for_euclid_dist")
    expected = d.sort(1).values[:, 3]  # index 0 is the point itself
    torch.testing.assert_close(knn_radii(x, 3, chunk_size=6), expected)


# ---- diversity -----------------------------------------------------------------------------------


def test_class_coverage():
    balanced = torch.arange(10).repeat(30)
    out = class_coverage(balanced, 10)
    assert out["classes_hit"] == 10
    assert out["class_kl"] == pytest.approx(0.0, abs=1e-12)
    assert out["class_shares"] == pytest.approx([0.1] * 10)
    dropped = torch.arange(8).repeat(30)  # classes 8 and 9 never generated
    out = class_coverage(dropped, 10)
    assert out["classes_hit"] == 8
    assert out["class_kl"] > 0.2 and math.isfinite(out["class_kl"])
    # Against a data mix that itself lacks classes 8 and 9, the same samples match well.
    assert class_coverage(dropped, 10, data_labels=torch.arange(8))["class_kl"] < 0.01
    with pytest.raises(GenzooError):
        class_coverage(torch.tensor([10]), 10)


def test_modes_covered_on_ring():
    angles = torch.arange(8) * (2 * math.pi / 8)
    centers = torch.stack([2 * angles.cos(), 2 * angles.sin()], 1)
    std = 0.02
    g = gen(0)
    idx = torch.randint(0, 6, (3000,), generator=g)  # only 6 of 8 modes
    samples = centers[idx] + std * torch.randn(3000, 2, generator=g)
    samples[:300] = torch.zeros(300, 2)  # 10% junk in the middle of the ring
    out = modes_covered(samples, centers, std)
    assert out["modes"] == 6 and out["num_modes"] == 8
    assert out["high_quality_share"] == pytest.approx(0.9 * expected_high_quality_share(2), abs=0.01)
    assert sum(out["mode_counts"]) == round(out["high_quality_share"] * 3000)
    # min_count: a mode hit by a single stray sample is not "covered".
    stray = torch.cat([samples[300:], centers[6:7]])
    assert modes_covered(stray, centers, std)["modes"] == 7
    assert modes_covered(stray, centers, std, min_count=10)["modes"] == 6


def test_memorization_flags_copies_not_fresh_samples():
    train = torch.randn(800, 6, generator=gen(0))
    copies = train[:200].clone()
    fresh = torch.randn(400, 6, generator=gen(1))
    out = memorization(copies, train, holdout=fresh)
    assert out["memorized_share"] == 1.0 and out["exact_copy_share"] == 1.0
    assert out["holdout_share"] < 0.15  # about percentile / 100 for data of the same distribution
    fresh_out = memorization(fresh, train)
    assert fresh_out["memorized_share"] < 0.15 and fresh_out["exact_copy_share"] == 0.0
    near = copies + 1e-4 * torch.randn(200, 6, generator=gen(2))  # near-copies are caught too
    assert memorization(near, train)["memorized_share"] == 1.0


# ---- feature extractors ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (5,)])
def test_domain_classifier_shapes(shape):
    from genzoo.metrics.features import ClassifierConfig

    torch.manual_seed(0)
    model = DomainClassifier(ClassifierConfig(input_shape=shape, num_classes=4, data_low=0, data_high=255))
    x = torch.rand(6, *shape) * 255
    assert model.features(x, batch_size=4).shape == (6, 128)
    probs = model.probs(x)
    assert probs.shape == (6, 4)
    torch.testing.assert_close(probs.sum(1), torch.ones(6))
    with pytest.raises(GenzooError, match="expects examples of shape"):
        model.features(torch.zeros(2, 3, 8, 8))


def _digits():
    from genzoo.data import load_dataset

    data = load_dataset("digits")
    return [t for split in ("train", "val", "test") for t in data.split(split).tensors]


def test_quick_digits_classifier_trains_caches_and_reloads(tmp_path):
    x_tr, y_tr, x_va, y_va, x_te, y_te = _digits()
    model = train_domain_classifier(
        x_tr, y_tr, x_va, y_va, data_range=(0.0, 16.0), dataset="digits", x_test=x_te, y_test=y_te, epochs=3
    )
    assert model.name == "domain-classifier-digits"
    assert model.config.info["test_accuracy"] > 0.85

    model.save(tmp_path / "clf")
    meta = json.loads((tmp_path / "clf" / "classifier.json").read_text())
    assert meta["dataset"] == "digits" and meta["info"]["test_accuracy"] == model.config.info["test_accuracy"]
    assert (meta["data_low"], meta["data_high"]) == (0.0, 16.0)
    loaded = DomainClassifier.load(tmp_path / "clf")
    torch.testing.assert_close(loaded.features(x_te), model.features(x_te))
    assert loaded.config.info == model.config.info
    with pytest.raises(GenzooError, match="no domain classifier"):
        DomainClassifier.load(tmp_path / "nothing")


def test_classifier_training_is_seeded():
    x_tr, y_tr, x_va, y_va, x_te, _ = _digits()
    runs = [
        train_domain_classifier(x_tr[:200], y_tr[:200], x_va, y_va, data_range=(0, 16), epochs=1, seed=s)
        for s in (5, 5, 6)
    ]
    a, b, c = (m.features(x_te[:50]) for m in runs)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(a, c)


def test_domain_classifier_for_dataset_uses_cache(tmp_path):
    from genzoo.data import load_dataset
    from genzoo.metrics import domain_classifier_for

    data = load_dataset("digits")
    first = domain_classifier_for(data, tmp_path, epochs=1)
    assert (tmp_path / "digits" / "classifier.safetensors").is_file()
    assert "test_accuracy" in first.config.info
    cached = domain_classifier_for(data, tmp_path, epochs=50)  # read from cache, not retrained
    assert cached.config.info == first.config.info


def test_module_features_and_sample_quality():
    extractor = ModuleFeatures(nn.Flatten(), name="pixels")
    real = torch.randn(300, 1, 4, 4, generator=gen(0))
    fake = torch.randn(300, 1, 4, 4, generator=gen(1)) + 0.5
    assert extractor.features(real, batch_size=64).shape == (300, 16)
    out = sample_quality(real, fake, extractor, metrics=("fid", "kid", "precision", "recall"), kid_subsets=5)
    assert out["feature_extractor"] == "pixels"
    assert set(out) >= {"fid", "kid", "kid_std", "precision", "recall", "n_real", "n_fake"}
    assert out["fid"] == pytest.approx(frechet_distance(real.flatten(1), fake.flatten(1)))
    with pytest.raises(GenzooError, match="class probabilities"):
        sample_quality(real, fake, extractor, metrics=("is",))
    with pytest.raises(GenzooError, match="unknown"):
        sample_quality(real, fake, extractor, metrics=("fdi",))


def test_inception_forward_shape_with_random_weights():
    torch.manual_seed(0)
    model = InceptionV3FID(data_range=(0.0, 255.0))
    x = torch.rand(2, 1, 28, 28) * 255  # grey images are repeated to RGB and resized to 299x299
    feats = model.features(x)
    assert feats.shape == (2, 2048)
    assert torch.isfinite(feats).all() and (feats >= 0).all()  # post-ReLU average pool


def test_inception_weights_missing_or_wrong(tmp_path):
    with pytest.raises(GenzooError, match="pt_inception-2015-12-05-6726825d.pth"):
        InceptionV3FID.from_weights(tmp_path / "nope.pth")
    bad = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    torch.save({"fc.weight": torch.zeros(3, 3)}, bad)
    with pytest.raises(GenzooError, match="not the FID Inception checkpoint"):
        InceptionV3FID.from_weights(bad)
    with pytest.raises(GenzooError, match="does not match"):
        InceptionV3FID.from_weights(bad, check_hash=False)


def test_inception_state_dict_roundtrip_layout(tmp_path):
    """The parameter names must be exactly those of pytorch-fid's checkpoint (torchvision's Inception3 names)."""
    model = InceptionV3FID()
    keys = set(model.state_dict())
    for name in (
        "Conv2d_1a_3x3.conv.weight",
        "Conv2d_4a_3x3.bn.running_var",
        "Mixed_5b.branch_pool.conv.weight",
        "Mixed_6e.branch7x7dbl_5.bn.bias",
        "Mixed_7a.branch7x7x3_4.conv.weight",
        "Mixed_7c.branch3x3dbl_3b.bn.running_mean",
        "fc.weight",
    ):
        assert name in keys
    n_params = sum(p.numel() for p in model.parameters())
    # torchvision's Inception-v3 has 27,161,264 with the aux head (3,326,696) and 1000 classes (+8 * 2049 here)
    assert n_params == 23_850_960
    path = tmp_path / "w.pth"
    torch.save({k: v for k, v in model.state_dict().items() if "num_batches" not in k}, path)
    loaded = InceptionV3FID.from_weights(path, check_hash=False)
    torch.testing.assert_close(
        loaded.Mixed_7c.branch_pool.conv.weight, model.Mixed_7c.branch_pool.conv.weight
    )


# ---- slow quality checks ---------------------------------------------------------------------------


@pytest.mark.slow
def test_digits_classifier_reaches_97_percent():
    x_tr, y_tr, x_va, y_va, x_te, y_te = _digits()
    model = train_domain_classifier(
        x_tr, y_tr, x_va, y_va, data_range=(0.0, 16.0), dataset="digits", x_test=x_te, y_test=y_te, seed=0
    )
    assert model.config.info["test_accuracy"] >= 0.97


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path) as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


@pytest.mark.slow
def test_mnist_10k_classifier_reaches_98_percent():
    images, labels = (
        find_shared_file(f"mnist-t10k-{kind}-idx{d}-ubyte.gz") for kind, d in (("images", 3), ("labels", 1))
    )
    if images is None or labels is None:
        pytest.skip("needs the MNIST t10k idx files in ../shared/data or $GENZOO_DATA (offline copy)")
    x = torch.tensor(_read_idx(images), dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(_read_idx(labels), dtype=torch.long)
    # The offline 10k set split 8000 / 1000 / 1000.
    model = train_domain_classifier(
        x[:8000],
        y[:8000],
        x[8000:9000],
        y[8000:9000],
        data_range=(0.0, 255.0),
        dataset="mnist",
        x_test=x[9000:],
        y_test=y[9000:],
        seed=0,
    )
    assert model.config.info["test_accuracy"] >= 0.98

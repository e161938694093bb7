"""`genzoo evaluate` wiring: every metric through one call, seeded, with the DESIGN.md keys."""

from __future__ import annotations

import pytest
import torch

from genzoo.data import load_dataset
from genzoo.errors import GenzooError
from genzoo.evaluation import ALL_METRICS, evaluate_model, evaluate_run
from genzoo.metrics import frechet_distance
from genzoo.train import train

SAMPLE_METRICS = ["fid", "kid", "is", "precision", "recall", "density", "coverage", "classes", "memorization"]


@pytest.fixture(scope="module", autouse=True)
def classifier_cache(tmp_path_factory):
    """One domain classifier for the module, in a throwaway cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENZOO_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "vae"
    train("vae", "digits", run, {"max_steps": 150, "eval_every": 0}, quiet=True)
    return run


def test_all_sample_metrics_have_the_design_keys(vae_run):
    result = evaluate_run(vae_run, split="test", metrics=["nll", *SAMPLE_METRICS], num_samples=300)
    for key in (
        "model",
        "data",
        "split",
        "n",
        "nll",
        "nll_kind",
        "bpd",
        "fid",
        "kid",
        "is",
        "precision",
        "recall",
        "coverage",
        "density",
        "feature_extractor",
        "classes_hit",
        "memorized_share",
    ):
        assert key in result, key
    assert result["model"] == "vae" and result["split"] == "test" and result["n"] == 447
    assert result["n_samples"] == 300 and result["nll_kind"] == "estimate"
    assert result["feature_extractor"] == "domain-classifier-digits"
    assert 0 <= result["precision"] <= 1 and 0 <= result["recall"] <= 1 and 1 <= result["is"] <= 10
    assert result["nll_bound"] >= result["nll"] - 1e-3  # -ELBO bounds the IWAE estimate from above


def test_same_seed_same_numbers(vae_run):
    a = evaluate_run(vae_run, metrics=["nll", "fid", "kid", "precision"], num_samples=200, seed=3)
    b = evaluate_run(vae_run, metrics=["nll", "fid", "kid", "precision"], num_samples=200, seed=3)
    c = evaluate_run(vae_run, metrics=["fid"], num_samples=200, seed=4)
    assert a == b
    assert c["fid"] != a["fid"]


def test_real_data_scores_better_than_an_undertrained_model(vae_run):
    from genzoo.metrics import classifier_cache_dir, domain_classifier_for

    data = load_dataset("digits")
    clf = domain_classifier_for(data, classifier_cache_dir())
    train_x, test_x = data.split("train").tensors[0], data.split("test").tensors[0]
    fid_real = frechet_distance(clf.features(train_x), clf.features(test_x))
    fid_model = evaluate_run(vae_run, metrics=["fid"], num_samples=447)["fid"]
    assert fid_real < 0.5 * fid_model


def test_modes_on_toy2d(gaussian_model):
    data = load_dataset("toy2d-ring")
    model = gaussian_model.for_data(data.info)
    with torch.no_grad():  # a single broad Gaussian covers no mode tightly
        model.log_std.fill_(0.0)
    result = evaluate_model(model, data, metrics=["modes", "precision"], num_samples=500)
    assert result["num_modes"] == 8 and result["high_quality_share"] < 0.2
    assert result["feature_extractor"] == "raw-values"


def test_metric_errors(gaussian_model):
    data = load_dataset("toy2d-swissroll")
    model = gaussian_model.for_data(data.info)
    with pytest.raises(GenzooError, match="toy2d-ring and toy2d-grid"):
        evaluate_model(model, data, metrics=["modes"], num_samples=10)
    with pytest.raises(GenzooError, match="labelled data"):
        evaluate_model(model, data, metrics=["classes"], num_samples=10)
    with pytest.raises(GenzooError, match="unknown metric"):
        evaluate_model(model, data, metrics=["fidd"])
    assert "fid" in ALL_METRICS

"""The recommendation rules on results built by hand: who wins each priority, and what is said why."""

from __future__ import annotations

import pytest

from genzoo.report.recommend import PRIORITIES, rank, recommend


def summary(family, kind=None, status="ok", reason=None, missing=(), num_classes=10, **metrics):
    """A model summary as compare writes it; a metric given as (mean, std) has that spread."""
    entries = {}
    for key, value in metrics.items():
        mean, std = value if isinstance(value, tuple) else (value, 0.0)
        entries[key] = {"mean": mean, "std": std, "values": [mean] if std == 0 else [mean - std, mean + std]}
    return {
        "family": family,
        "nll_kind": kind,
        "status": status,
        "reason": reason,
        "num_classes": num_classes,
        "missing_classes": list(missing),
        "metrics": entries,
    }


@pytest.fixture
def zoo():
    return {
        "dcgan": summary(
            "gan",
            fid=25.0,
            kid=2.0,
            coverage=0.5,
            recall=0.4,
            sample_seconds_per_100=0.01,
            classes_hit=8,
            missing=(3, 8),
        ),  # fmt: skip
        "ddpm": summary(
            "diffusion",
            "bound",
            fid=12.0,
            kid=1.0,
            nll=150.0,
            coverage=0.8,
            recall=0.7,
            sample_seconds_per_100=2.0,
            classes_hit=10,
        ),  # fmt: skip
        "pixelcnn": summary(
            "autoregressive",
            "exact",
            fid=40.0,
            kid=3.0,
            nll=82.0,
            coverage=0.6,
            recall=0.6,
            sample_seconds_per_100=0.3,
            classes_hit=10,
        ),  # fmt: skip
        "realnvp": summary("flow", status="failed", reason="the loss was non-finite for 20 steps"),
    }


def test_quality_ranks_by_fid_and_says_why(zoo):
    ranked = rank(zoo, "quality")
    assert [r.model for r in ranked] == ["ddpm", "dcgan", "pixelcnn", "realnvp"]
    ddpm = ranked[0].reasons
    assert ddpm[0] == "lowest FID: 12, against 25 for dcgan, the next"
    assert "samples 200x slower than dcgan (2 s against 0.01 s per 100)" in ddpm
    assert any("likelihood bound (150 nats)" in r for r in ddpm)
    assert "missed 2 of 10 classes (3, 8)" in ranked[1].reasons
    assert ranked[-1].reasons == ["failed: the loss was non-finite for 20 steps"]
    result = recommend(zoo, "quality")
    assert result["pick"] == "ddpm" and result["summary"].startswith("For quality, pick ddpm: lowest FID: 12")


def test_likelihood_puts_models_without_one_after_and_calls_exact_an_anomaly_score(zoo):
    ranked = rank(zoo, "likelihood")
    assert [r.model for r in ranked] == ["pixelcnn", "ddpm", "dcgan", "realnvp"]
    assert ranked[0].reasons[0] == "lowest test NLL: 82 (exact), against 150 for ddpm, the next"
    assert any("exact likelihoods" in r and "anomaly" in r for r in ranked[0].reasons)
    assert ranked[2].reasons[0] == "has no likelihood, so it cannot score how probable an input is"


def test_speed_and_diversity_orders(zoo):
    assert [r.model for r in rank(zoo, "speed")][:3] == ["dcgan", "pixelcnn", "ddpm"]
    assert [r.model for r in rank(zoo, "diversity")][:3] == ["ddpm", "pixelcnn", "dcgan"]  # higher is better
    assert rank(zoo, "speed")[0].reasons[0].startswith("fastest sampling time per 100 samples: 0.01 s")


def test_a_gap_within_the_spread_over_repeats_is_no_clear_win():
    models = {
        "a": summary("vae", fid=(20.0, 3.0), sample_seconds_per_100=1.0),
        "b": summary("gan", fid=(22.0, 1.0), sample_seconds_per_100=1.0),
    }
    assert "no clear win" in rank(models, "quality")[0].reasons[0]
    models["b"] = summary("gan", fid=(30.0, 1.0), sample_seconds_per_100=1.0)
    assert "no clear win" not in rank(models, "quality")[0].reasons[0]


def test_memorization_and_a_tie_break():
    models = {
        "copycat": summary("gan", fid=10.0, kid=5.0, memorized_share=0.4),
        "honest": summary("vae", fid=10.0, kid=1.0, memorized_share=0.05),
    }
    ranked = rank(models, "quality")
    assert [r.model for r in ranked] == ["honest", "copycat"]  # equal FID: KID decides
    assert "40% of its samples are near-copies of training examples" in ranked[1].reasons
    assert not any("near-copies" in r for r in ranked[0].reasons)


def test_every_model_failed_gives_no_pick():
    models = {"x": summary("gan", status="failed", reason="out of memory")}
    for priority in PRIORITIES:
        result = recommend(models, priority)
        assert result["pick"] is None and result["ranking"][0]["reasons"] == ["failed: out of memory"]
    with pytest.raises(ValueError):
        rank(models, "beauty")

"""The benchmarks' `--reuse`: a finished run is kept only when it was trained with the settings asked
for, recorded in run.json or left at a default of that value; anything else is trained again."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import genzoo

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
from common import _trained_with  # noqa: E402


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("reuse") / "vae"
    genzoo.train("vae", "digits", out, {"max_steps": 2, "preview_samples": 0}, device="cpu", quiet=True)
    return out


@pytest.mark.parametrize(
    ("model", "data", "settings", "kept"),
    [
        ("vae", "digits", {"max_steps": 2}, True),
        ("vae", "digits", {"max_steps": 2, "seed": 0}, True),  # the default seed, not recorded
        ("vae", "digits", {"max_steps": 2, "train.seed": 0}, True),
        ("vae", "digits", {"max_steps": 2, "seed": 1}, False),
        ("vae", "digits", {"max_steps": 3}, False),
        ("vae", "digits", {"latent_dim": 999}, False),
        ("iwae", "digits", {"max_steps": 2}, False),
        ("vae", "mnist-binary", {"max_steps": 2}, False),
    ],
)
def test_a_run_is_reused_only_with_the_settings_asked_for(run, model, data, settings, kept):
    assert _trained_with(run, model, data, settings) is kept


def test_a_run_with_a_broken_record_is_trained_again(run, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("run.json", "config.json"):
        (broken / name).write_text((run / name).read_text()[:20])
    assert not _trained_with(broken, "vae", "digits", {"max_steps": 2})

"""The side-by-side table's quality over seeds (benchmarks/peers/sidebyside.py): the mean and sample
standard deviation of each side, every seed's value, and the table cell that shows them."""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks" / "peers"))
from sidebyside import over_seeds, quality_text  # noqa: E402


def test_over_seeds_runs_every_further_seed_once_and_summarises_each_side():
    asked = []

    def again(seed: int) -> tuple[float, float]:
        asked.append(seed)
        return 2.0 + seed, 3.0 - seed

    quality = over_seeds((1.5, 3.5), again, seeds=3)
    assert asked == [1, 2]
    assert quality["genzoo_by_seed"] == [1.5, 3.0, 4.0]
    assert quality["peer_by_seed"] == [3.5, 2.0, 1.0]
    assert quality["genzoo"] == pytest.approx(statistics.fmean([1.5, 3.0, 4.0]), abs=1e-4)
    assert quality["peer_sd"] == pytest.approx(statistics.stdev([3.5, 2.0, 1.0]), abs=1e-4)
    assert quality["seeds"] == 3


def test_one_seed_has_no_spread_and_the_cell_says_so():
    quality = over_seeds((107.871, 108.135), lambda seed: pytest.fail("no further seed"), seeds=1)
    assert "genzoo_sd" not in quality and "peer_by_seed" not in quality
    cell = quality_text({"metric": "test NLL", "better": "lower", **quality})
    assert cell == "test NLL 107.9 vs 108.1 (lower is better)"


def test_the_cell_shows_mean_and_spread_over_seeds():
    quality = over_seeds((2.80, 2.65), lambda seed: (2.80 + 0.02 * seed, 2.65 - 0.01 * seed), seeds=3)
    cell = quality_text({"metric": "NLL", "better": "lower", **quality})
    assert cell == "NLL 2.82 ± 0.02 vs 2.64 ± 0.01 (lower is better, 3 seeds)"

"""The collapse monitor: seeded, leaves the training RNG alone, and fires on a collapsed model."""

from __future__ import annotations

import torch

from genzoo.data import load_dataset
from genzoo.data.toy2d import toy2d_modes
from genzoo.models.base import GenerativeModel, ModelConfig
from genzoo.train.monitor import collapse_monitor


class PointsModel(GenerativeModel):
    """Samples uniformly among given 2-d points plus tiny noise: a stand-in for a (collapsed) GAN."""

    modalities = ("vector",)

    def __init__(self, points: torch.Tensor):
        super().__init__(ModelConfig(data_shape=(2,), data_levels=None))
        self.points = points
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def sample(self, n, *, generator=None, **options):
        index = torch.randint(len(self.points), (n,), generator=generator)
        return self.points[index] + 0.01 * torch.randn(n, 2, generator=generator)


def test_monitor_sees_full_coverage_and_collapse():
    data = load_dataset("toy2d-ring")
    centers, _ = toy2d_modes("toy2d-ring")
    monitor = collapse_monitor(data, num_samples=500)
    healthy = monitor(PointsModel(centers.float()))
    collapsed = monitor(PointsModel(centers[:2].float()))
    assert healthy["modes"] == 8 and healthy["high_quality_share"] > 0.95
    assert collapsed["modes"] == 2


def test_monitor_is_seeded_and_leaves_the_global_rng_alone():
    data = load_dataset("toy2d-ring")
    centers, _ = toy2d_modes("toy2d-ring")
    model = PointsModel(centers[:5].float())
    monitor = collapse_monitor(data, num_samples=50)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    first = monitor(model)
    assert torch.equal(torch.rand(3), expected)
    assert monitor(model) == first


def test_no_monitor_for_unlabelled_data_without_modes():
    assert collapse_monitor(load_dataset("toy2d-swissroll"), num_samples=10) is None


def test_monitor_warns_on_a_drop_and_on_an_incomplete_end_not_on_a_slow_start():
    data = load_dataset("toy2d-ring")
    centers, _ = toy2d_modes("toy2d-ring")
    monitor = collapse_monitor(data, num_samples=200)
    readings = [monitor(PointsModel(centers[:k].float())) for k in (2, 8, 3)]
    assert monitor.warning(readings[0], final=False) is None  # early: few modes yet, no alarm
    assert monitor.warning(readings[1], final=False) is None
    assert "3 of 8 modes, down from 8" in monitor.warning(readings[2], final=False)
    assert monitor.warning(readings[1], final=True) is None
    fresh = collapse_monitor(data, num_samples=200)
    assert "ends with samples covering 3 of 8 modes" in fresh.warning(readings[2], final=True)

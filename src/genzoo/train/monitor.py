"""Sample diagnostics logged during training, so a collapsing run shows it in its curves.

A monitor draws a fixed, seeded set of samples at every validation and scores how they spread:
on the toy2d Gaussian mixtures the modes covered and the share of samples near a mode, on
labelled data the classes the dataset's domain classifier sees and the KL to the data's class
mix. The Trainer logs the result beside the validation loss (`val_modes`, `val_classes_hit`, ...)
and, when a mode or class is missing, a warning line on stderr and in metrics.jsonl, which the
model card lists.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from genzoo.data.base import Dataset
from genzoo.data.toy2d import toy2d_modes
from genzoo.metrics import class_coverage, classifier_cache_dir, domain_classifier_for, modes_covered
from genzoo.models.base import GenerativeModel


@dataclass
class SampleMonitor:
    """Scores a model's samples (`monitor(model)` -> {"modes": 8.0, ...}); `count` names the score
    that should reach `full` (every mode, every class), which `warning` watches."""

    score: Callable[[GenerativeModel], dict[str, float]]
    count: str  # "modes" or "classes_hit"
    full: int
    what: str  # "modes" or "classes", for the warning
    best: int = 0  # the most seen at a validation so far

    def __call__(self, model: GenerativeModel) -> dict[str, float]:
        return self.score(model)

    def warning(self, result: dict[str, float], final: bool) -> str | None:
        """A line for the log when the samples lose modes or classes they had covered, or end the
        run without all of them; else None (an early validation that covers few is no alarm)."""
        got, before = int(result[self.count]), self.best
        self.best = max(self.best, got)
        if got < before:
            return (
                f"the samples cover {got} of {self.full} {self.what}, down from {before}: the model is "
                "collapsing; see the model card for the settings this data may need"
            )
        if final and got < self.full:
            return f"the run ends with samples covering {got} of {self.full} {self.what}"
        return None


def collapse_monitor(data: Dataset, num_samples: int, seed: int = 0) -> SampleMonitor | None:
    """A monitor for `data`, or None when the data have neither known modes nor labels."""
    modes = toy2d_modes(data.info.name)
    if modes is not None:
        centers, std = modes

        def score_modes(model: GenerativeModel) -> dict[str, float]:
            result = modes_covered(_draw(model, num_samples, seed), centers, std)
            return {"modes": result["modes"], "high_quality_share": result["high_quality_share"]}

        return SampleMonitor(score_modes, "modes", len(centers), "modes")
    if data.info.num_classes < 2:
        return None
    classifier = domain_classifier_for(data, classifier_cache_dir())
    data_labels = data.split("train").tensors[1]

    def score_classes(model: GenerativeModel) -> dict[str, float]:
        predicted = classifier.predict(_draw(model, num_samples, seed))
        result = class_coverage(predicted, data.info.num_classes, data_labels=data_labels)
        return {"classes_hit": result["classes_hit"], "class_kl": result["class_kl"]}

    return SampleMonitor(score_classes, "classes_hit", data.info.num_classes, "classes")


def _draw(model: GenerativeModel, n: int, seed: int) -> torch.Tensor:
    # fork_rng: the monitor must not shift the training random stream (or resume breaks).
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        generator = torch.Generator(device=model.device).manual_seed(seed)
        return model.sample(n, generator=generator).cpu()

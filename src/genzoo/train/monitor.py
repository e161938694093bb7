"""Sample diagnostics logged during training, so a collapsing run shows it in its curves.

A monitor draws a fixed, seeded set of samples at every validation and scores how they spread:
on the toy2d Gaussian mixtures the modes covered and the share of samples near a mode, on
labelled data the classes the dataset's domain classifier sees and the KL to the data's class
mix. The Trainer logs the result beside the validation loss (`val_modes`, `val_classes_hit`, ...).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from genzoo.data.base import Dataset
from genzoo.data.toy2d import toy2d_modes
from genzoo.metrics import class_coverage, classifier_cache_dir, domain_classifier_for, modes_covered
from genzoo.models.base import GenerativeModel

SampleMonitor = Callable[[GenerativeModel], dict[str, float]]


def collapse_monitor(data: Dataset, num_samples: int, seed: int = 0) -> SampleMonitor | None:
    """A monitor for `data`, or None when the data have neither known modes nor labels."""
    modes = toy2d_modes(data.info.name)
    if modes is not None:
        centers, std = modes

        def score_modes(model: GenerativeModel) -> dict[str, float]:
            result = modes_covered(_draw(model, num_samples, seed), centers, std)
            return {"modes": result["modes"], "high_quality_share": result["high_quality_share"]}

        return score_modes
    if data.info.num_classes < 2:
        return None
    classifier = domain_classifier_for(data, classifier_cache_dir())
    data_labels = data.split("train").tensors[1]

    def score_classes(model: GenerativeModel) -> dict[str, float]:
        predicted = classifier.predict(_draw(model, num_samples, seed))
        result = class_coverage(predicted, data.info.num_classes, data_labels=data_labels)
        return {"classes_hit": result["classes_hit"], "class_kl": result["class_kl"]}

    return score_classes


def _draw(model: GenerativeModel, n: int, seed: int) -> torch.Tensor:
    # fork_rng: the monitor must not shift the training random stream (or resume breaks).
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        generator = torch.Generator(device=model.device).manual_seed(seed)
        return model.sample(n, generator=generator).cpu()

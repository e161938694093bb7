"""`genzoo evaluate`: the metrics asked for, on one split, as one flat dict (keys as in DESIGN.md)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from genzoo.data.base import Dataset
from genzoo.errors import GenzooError, unknown_name
from genzoo.metrics.likelihood import evaluate_nll
from genzoo.models.base import GenerativeModel
from genzoo.train.run import load_run


def _nll(model: GenerativeModel, data: Dataset, split: str, options: dict[str, Any]) -> dict[str, Any]:
    if model.log_prob_kind is None:
        raise GenzooError(f"model '{model.name}' has no likelihood, so 'nll' is not defined; ask for other metrics")
    x = data.split(split).tensors[0]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(options["seed"])  # importance samples are random: fix them
        result = evaluate_nll(model, x, batch_size=options["batch_size"])
        if hasattr(model, "elbo"):  # a bound beside an estimate shows how tight the estimate is
            elbo = torch.cat([model.elbo(b.to(model.device)).cpu() for b in x.split(options["batch_size"])])
            result["nll_bound"] = float(-elbo.mean())
    return result


# name -> function(model, dataset, split, options) -> dict of result keys
METRICS: dict[str, Callable[[GenerativeModel, Dataset, str, dict[str, Any]], dict[str, Any]]] = {"nll": _nll}


def evaluate_run(
    run_dir: str | Path,
    *,
    split: str = "test",
    metrics: list[str] | tuple[str, ...] = ("nll",),
    seed: int = 0,
    batch_size: int = 256,
    device: str = "cpu",
) -> dict[str, Any]:
    """Evaluate a training run: `{"model", "data", "split", "n", <metric keys>...}`."""
    for name in metrics:
        if name not in METRICS:
            raise unknown_name("metric", name, METRICS)
    model, spec = load_run(run_dir, device=device)
    data = spec.load_data()
    result: dict[str, Any] = {"model": spec.model, "data": spec.data, "split": split, "n": len(data.split(split))}
    options = {"seed": seed, "batch_size": batch_size}
    with torch.no_grad():
        for name in metrics:
            result.update(METRICS[name](model, data, split, options))
    return result

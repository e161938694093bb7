"""`genzoo evaluate`: the metrics asked for, on one split, as one flat dict (keys as in DESIGN.md).

Likelihood metrics read the split; sample metrics draw `num_samples` samples once (seeded) and
compare them with the split through one feature extractor, named in the result:
the genzoo domain classifier for labelled images, the raw values for vectors.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from genzoo.data.base import Dataset
from genzoo.data.music import frame_mask
from genzoo.data.toy2d import toy2d_modes
from genzoo.errors import GenzooError, unknown_name
from genzoo.metrics import (
    QUALITY_METRICS,
    ModuleFeatures,
    class_coverage,
    classifier_cache_dir,
    domain_classifier_for,
    evaluate_nll,
    memorization,
    modes_covered,
    sample_quality,
)
from genzoo.metrics.likelihood import bits_per_char, loss_per_token
from genzoo.metrics.tabular import TABLE_METRICS, table_metrics
from genzoo.metrics.text import bleu, chrf, exact_match
from genzoo.metrics.timeseries import discriminative_score, predictive_score
from genzoo.models.base import GenerativeModel
from genzoo.progress import reporting
from genzoo.train.run import load_run


class Evaluation:
    """What the metrics share: the model, the split, one seeded sample set, one feature extractor."""

    def __init__(
        self,
        model: GenerativeModel,
        data: Dataset,
        split: str,
        *,
        seed: int,
        num_samples: int,
        batch_size: int,
        target: str | None = None,
    ):
        self.model, self.data, self.split, self.seed = model, data, split, seed
        self.num_samples, self.batch_size = num_samples, batch_size
        self.target = target
        self.x, self.y = data.split(split).tensors

    @cached_property
    def samples(self) -> torch.Tensor:
        generator = torch.Generator(device=self.model.device).manual_seed(self.seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            return self.model.sample(self.num_samples, generator=generator).cpu()

    @cached_property
    def synthetic_table(self):
        """As many synthetic rows as the training split has (SDGym's protocol), as a DataFrame."""
        n = len(self.data.frames["train"])
        generator = torch.Generator(device=self.model.device).manual_seed(self.seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            return self.data.schema.decode(self.model.sample(n, generator=generator).cpu())

    @cached_property
    def real_tables(self):
        """The training and evaluated split's rows, decoded as the synthetic ones are, so that a value
        meets itself: a file's 'yes' is True in both, a category written as 1 is '1' in both."""
        return tuple(self.data.schema.decode(self.data.split(s).tensors[0]) for s in ("train", self.split))

    @cached_property
    def classifier(self):
        return domain_classifier_for(self.data, classifier_cache_dir())

    @cached_property
    def text_likelihood(self) -> dict[str, Any]:
        """loss_per_token, bpc and perplexity share one pass over the split."""
        with self.model.inference():
            batches = self.x.split(self.batch_size)
            nll = -sum(float(self.model.log_prob(b.to(self.model.device)).sum()) for b in batches)
        tokens = self.x.shape[0] * (
            self.x.shape[1] - 1
        )  # the first token of each row is given, not predicted
        chars = sum(len(self.model.tokenizer.decode(row[1:].long().tolist())) for row in self.x)
        per_token = loss_per_token(nll, tokens)
        return {
            "loss_per_token": per_token,
            "bpc": bits_per_char(per_token, tokens, chars),
            "perplexity": math.exp(per_token),
            "tokens": tokens,
        }

    @cached_property
    def forecast_scores(self) -> dict[str, Any]:
        """mase, smape, crps and (interval) coverage at the model's longest horizon, with the backtest."""
        from genzoo.apps.forecast import backtest  # the forecast app, only when a forecaster is evaluated

        series, starts = getattr(self.data, "series", None), getattr(self.data, "test_start", None)
        if not series or not starts:
            raise GenzooError(
                f"'{self.data.info.name}' has no whole series with a test part to forecast; use a series "
                "CSV or a named series (co2, nile, ...) with data.split=chronological"
            )
        report = backtest(self.model, series, starts, horizon=self.model.max_horizon(), seed=self.seed)
        per_series = report["series"].values()
        means = {k: float(np.mean([s[k] for s in per_series])) for k in ("smape", "crps")}
        return {**means, "mase": report["mase"], "scaled_crps": report["scaled_crps"],
                "coverage": report["coverage"], "horizon": report["horizon"], "forecast": report}  # fmt: skip

    @cached_property
    def translation(self) -> dict[str, Any]:
        """exact_match, chrf and bleu share one decoding of the split's sources."""
        sources, references = zip(*self.data.pairs[self.split], strict=True)
        outputs: list[str] = []
        for i in range(0, len(sources), self.batch_size):
            outputs += self.model.sample(1, inputs=list(sources[i : i + self.batch_size]))
        references = list(references)
        return {
            "exact_match": exact_match(outputs, references),
            "chrf": chrf(outputs, references),
            "bleu": bleu(outputs, references),
        }

    @cached_property
    def extractor(self):
        info = self.data.info
        if info.modality == "image" and info.num_classes >= 2:
            return self.classifier
        return ModuleFeatures(nn.Flatten(), name="raw-values")


def _nll(ev: Evaluation) -> dict[str, Any]:
    model = ev.model
    if model.log_prob_kind is None:
        raise GenzooError(
            f"model '{model.name}' has no likelihood, so 'nll' is not defined; ask for other metrics"
        )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(ev.seed)  # importance and dequantization noise: fix it
        result = evaluate_nll(model, ev.x, batch_size=ev.batch_size)
        if model.reports_bound:  # a bound beside an estimate shows how tight the estimate is
            elbo = torch.cat([model.elbo(b.to(model.device)).cpu() for b in ev.x.split(ev.batch_size)])
            result["nll_bound"] = float(-elbo.mean())
    if ev.data.info.modality == "music":  # piano rolls: per real frame (padding excluded), as published
        frames = int(frame_mask(ev.x).sum())
        result["nll_per_frame"] = result["nll"] * len(ev.x) / frames
        result["frames"] = frames
        result.pop("bpd")  # would count the padding rows as dimensions
    return result


def _classes(ev: Evaluation) -> dict[str, Any]:
    if ev.data.info.num_classes < 2:
        raise GenzooError(f"'classes' needs labelled data, and '{ev.data.info.name}' has no labels")
    predicted = ev.classifier.predict(ev.samples)
    result = class_coverage(predicted, ev.data.info.num_classes, data_labels=ev.y)
    return {**result, "classifier": ev.classifier.name}


def _memorization(ev: Evaluation) -> dict[str, Any]:
    train_x = ev.data.split("train").tensors[0]
    result = memorization(ev.samples.flatten(1), train_x.flatten(1))
    return {f"memorization_{k}" if not k.startswith("memorized") else k: v for k, v in result.items()}


def _modes(ev: Evaluation) -> dict[str, Any]:
    modes = toy2d_modes(ev.data.info.name)
    if modes is None:
        raise GenzooError("'modes' is defined for the Gaussian-mixture data toy2d-ring and toy2d-grid only")
    centers, std = modes
    result = modes_covered(ev.samples, centers, std)
    return {
        "modes": result["modes"],
        "num_modes": result["num_modes"],
        "high_quality_share": result["high_quality_share"],
    }


def _text_likelihood(ev: Evaluation) -> dict[str, Any]:
    """A language model's loss per token (nats), bits per character and perplexity on the split."""
    if ev.data.info.modality != "text" or getattr(ev.model, "tokenizer", None) is None:
        raise GenzooError("loss_per_token, bpc and perplexity are for language models (gpt) on text data")
    return ev.text_likelihood


def _translation(ev: Evaluation) -> dict[str, Any]:
    """Greedy outputs of a sequence-to-sequence model for the split's sources, against its targets."""
    if getattr(ev.data, "pairs", {}).get(ev.split) is None or not ev.model.takes_inputs:
        raise GenzooError("exact_match, chrf and bleu are for sequence-to-sequence models on pair data")
    return ev.translation


def _table_metric(name: str) -> Callable[[Evaluation], dict[str, Any]]:
    """A table metric (genzoo.metrics.tabular) of the model's rows against the real ones: quality
    and detection against the training rows, ML efficacy and privacy with the split as held out."""

    def measure(ev: Evaluation) -> dict[str, Any]:
        schema = getattr(ev.data, "schema", None)
        if schema is None or ev.model.output != "table":
            raise GenzooError(f"'{name}' is a table metric; evaluate a table model (ctgan, tvae, ...)")
        target = ev.target or schema.target
        train, held = ev.real_tables
        return table_metrics([name], train, ev.synthetic_table, held, schema.kinds(), target=target,
                             seed=ev.seed)  # fmt: skip

    return measure


def _series_generation(name: str) -> Callable[[Evaluation], dict[str, Any]]:
    """TimeGAN's post-hoc score of the model's windows against the split's (genzoo.metrics.timeseries)."""

    def measure(ev: Evaluation) -> dict[str, Any]:
        if ev.model.output != "series":
            raise GenzooError(
                f"'{name}' measures series windows; evaluate a series model (diffusion-ts, deepar)"
            )
        score = discriminative_score if name == "discriminative_score" else predictive_score
        return score(ev.x, ev.samples, seed=ev.seed)

    return measure


def _forecasts(ev: Evaluation) -> dict[str, Any]:
    """Rolling-origin forecasts over the test part of the data's series (one backtest for all four keys)."""
    if not ev.model.forecasts:
        raise GenzooError("mase, smape and crps measure forecasts; evaluate a forecaster (deepar)")
    return ev.forecast_scores


# name -> function(evaluation) -> dict of result keys; the sample-quality names share one pass.
METRICS: dict[str, Callable[[Evaluation], dict[str, Any]]] = {
    "nll": _nll,
    "classes": _classes,
    "memorization": _memorization,
    "modes": _modes,
    "loss_per_token": _text_likelihood,
    "bpc": _text_likelihood,
    "perplexity": _text_likelihood,
    "exact_match": _translation,
    "chrf": _translation,
    "bleu": _translation,
    **{name: _table_metric(name) for name in TABLE_METRICS},
    **{name: _series_generation(name) for name in ("discriminative_score", "predictive_score")},
    **{name: _forecasts for name in ("mase", "smape", "crps")},
}
# "coverage" of a forecaster is its interval's coverage; of any other model, sample coverage.
FORECAST_COVERAGE = "coverage"
ALL_METRICS = (*METRICS, *QUALITY_METRICS)


def evaluate_model(
    model: GenerativeModel,
    data: Dataset,
    *,
    split: str | None = None,
    metrics: list[str] | tuple[str, ...] = ("nll",),
    seed: int = 0,
    num_samples: int = 1000,
    batch_size: int = 256,
    target: str | None = None,
) -> dict[str, Any]:
    """Evaluate a model on a split of `data` (default: `default_split`); returns the metric keys
    (plus `split`, `n`, and `n_samples` when samples were drawn). `target`: the column a table's
    ML-efficacy metric predicts (default: the data's target, `income` for adult)."""
    for name in metrics:
        if name not in ALL_METRICS:
            raise unknown_name("metric", name, ALL_METRICS)
    if num_samples <= 0:
        raise GenzooError("--num-samples must be positive")
    split = split or default_split(data)
    ev = Evaluation(
        model, data, split, seed=seed, num_samples=num_samples, batch_size=batch_size, target=target
    )
    result: dict[str, Any] = {"split": split, "n": len(ev.x)}
    forecasting = model.forecasts and FORECAST_COVERAGE in metrics
    quality = [m for m in metrics if m in QUALITY_METRICS and not (forecasting and m == FORECAST_COVERAGE)]
    if quality and model.output == "table":
        raise GenzooError(
            f"'{quality[0]}' measures images and vectors; tables use quality, detection, ml_efficacy, privacy"
        )
    if quality:
        scores = sample_quality(ev.x, ev.samples, ev.extractor, quality, seed=seed, batch_size=batch_size)
        result.update({k: v for k, v in scores.items() if k != "n_real"})
    for name in metrics:
        if name in METRICS:
            result.update(METRICS[name](ev))
    if forecasting:
        result.update(ev.forecast_scores)
    if "samples" in ev.__dict__:
        result["n_samples"] = len(ev.samples)
    result.pop("n_fake", None)
    return result


def default_split(data: Dataset) -> str:
    """test, or the held-out split the data has when it has none (a text file: val), said on stderr."""
    for split in ("test", "val", "train"):
        if split in data.split_names:
            if split != "test":
                print(f"genzoo: '{data.info.name}' has no test split; evaluating on {split}", file=sys.stderr)
            return split
    raise GenzooError(f"dataset '{data.info.name}' has no split to evaluate")


def evaluate_run(
    run_dir: str | Path, *, device: str = "auto", quiet: bool = False, **options: Any
) -> dict[str, Any]:
    """Evaluate a training run: `{"model", "data", "split", "n", <metric keys>...}` (options as
    `evaluate_model`); long loops (a diffusion bound, sampling) show progress unless `quiet`."""
    model, spec = load_run(run_dir, device=device)
    with reporting(f"evaluate {spec.model}", quiet):
        result = evaluate_model(model, spec.load_data(), **options)
    return {"model": spec.model, "data": spec.data, **result}

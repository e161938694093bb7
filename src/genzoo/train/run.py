"""A training run on disk: what `genzoo train` does, as one Python call.

RUN_DIR/
  run.json            model name, data name or path, settings as given, genzoo version
  config.json         model config (with the data fields filled in)
  model.safetensors   weights to sample/evaluate with (EMA weights when EMA is on)
  trainer_state.pt    everything needed to resume (weights, optimizers, RNG, step)
  metrics.jsonl       one JSON object per log line (train and val)
  samples.png         a preview at the end: image grid, 2-d scatter plot, piano rolls or waveforms
  samples.txt         a few samples at the end (text data)
  tokenizer.json      the tokenizer (text models)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from genzoo.data import Dataset, dataset_options, load_dataset
from genzoo.data.registry import resolve
from genzoo.errors import GenzooError
from genzoo.models import GenerativeModel, get_model_class
from genzoo.models.base import load
from genzoo.settings import dataclass_hints, route
from genzoo.train.config import TrainConfig
from genzoo.train.monitor import collapse_monitor
from genzoo.train.trainer import STATE_FILE, Trainer

RUN_FILE = "run.json"
PREVIEW_FILE = "samples.png"
PREVIEW_TEXT_FILE = "samples.txt"  # text models


@dataclass
class RunSpec:
    """What a run was asked to do; saved as run.json so evaluate and resume can rebuild it."""

    model: str
    data: str
    data_options: dict[str, Any] = field(default_factory=dict)
    model_settings: dict[str, Any] = field(default_factory=dict)
    train_settings: dict[str, Any] = field(default_factory=dict)

    def train_config(self) -> TrainConfig:
        defaults = get_model_class(self.model).train_defaults
        return TrainConfig.from_dict({**defaults, **self.train_settings})

    def load_data(self) -> Dataset:
        return load_dataset(self.data, **self.data_options)

    def save(self, run_dir: Path) -> None:
        from genzoo import __version__

        payload = {**self.__dict__, "genzoo_version": __version__}
        (run_dir / RUN_FILE).write_text(json.dumps(payload, indent=2))

    @classmethod
    def read(cls, run_dir: str | Path) -> RunSpec:
        path = Path(run_dir) / RUN_FILE
        if not path.is_file():
            raise GenzooError(
                f"'{run_dir}' is not a genzoo run (no {RUN_FILE}); train one with `genzoo train`"
            )
        try:
            payload = json.loads(path.read_text())
            return cls(**{k: payload[k] for k in cls.__dataclass_fields__})
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise GenzooError(f"'{path}' is corrupt ({err}); retrain the run") from err


def setting_fields(model: str, data: str) -> dict[str, dict[str, Any]]:
    """Field names and types per scope, for routing `--set` keys."""
    data_name, _ = resolve(data)
    data_hints = {k: (type(v) if v is not None else Any) for k, v in dataset_options(data_name).items()}
    return {
        "model": dataclass_hints(get_model_class(model).Config),
        "train": dataclass_hints(TrainConfig),
        "data": data_hints,
    }


def train(
    model: str,
    data: str | Path,
    out: str | Path,
    settings: dict[str, Any] | None = None,
    *,
    resume: bool = False,
    device: str = "auto",
    quiet: bool = False,
) -> tuple[GenerativeModel, dict[str, float]]:
    """Train `model` on `data` into the run directory `out`; returns the model (with the
    inference weights model.safetensors holds) and the last metrics.

    >>> model, metrics = train("vae", "digits", "runs/vae", {"max_steps": 200})  # doctest: +SKIP
    """
    out = Path(out)
    get_model_class(model)  # fail early on an unknown name
    routed = route(settings or {}, setting_fields(model, str(data)))
    if resume:
        spec = RunSpec.read(out)
        if spec.model != model:
            raise GenzooError(f"'{out}' is a run of '{spec.model}', not '{model}'")
        if routed["model"] or routed["data"]:
            raise GenzooError(
                "a resumed run keeps its model and data settings; only training settings may change"
            )
        spec.train_settings.update(routed["train"])
    else:
        if (out / STATE_FILE).exists() or (out / RUN_FILE).exists():
            raise GenzooError(
                f"'{out}' already holds a run; pass --resume to continue it or choose another --out"
            )
        spec = RunSpec(model, str(data), routed["data"], routed["model"], routed["train"])
    config = spec.train_config()
    dataset = spec.load_data()
    torch.manual_seed(config.seed)  # the model's initial weights
    instance = get_model_class(model).for_data(dataset.info, **spec.model_settings)
    monitor = (
        collapse_monitor(dataset, config.monitor_samples, config.seed) if config.monitor_samples else None
    )
    trainer = Trainer(instance, dataset, config, out, device=device, quiet=quiet, monitor=monitor)
    out.mkdir(parents=True, exist_ok=True)
    spec.save(out)
    metrics = trainer.fit(resume=resume)
    instance.load_state_dict(trainer.inference_state())  # what model.safetensors holds (EMA, best)
    write_preview(instance, dataset, out / PREVIEW_FILE, config.seed)
    return instance, metrics


def load_run(run_dir: str | Path, device: str = "cpu") -> tuple[GenerativeModel, RunSpec]:
    """The trained model (inference weights) and its spec."""
    spec = RunSpec.read(run_dir)
    return load(run_dir, device=device), spec


def write_preview(model: GenerativeModel, dataset: Dataset, path: Path, seed: int) -> None:
    from genzoo.viz import save_samples

    generator = torch.Generator(device=model.device).manual_seed(seed)
    model.eval()
    text = dataset.info.modality.startswith("text")
    with torch.random.fork_rng(devices=[]):
        samples = model.sample(4 if text else 64, generator=generator)
    if text:  # decoded strings: a few, as text beside the run
        path.with_name(PREVIEW_TEXT_FILE).write_text("\n\n----\n\n".join(samples) + "\n")
        return
    save_samples(samples.cpu(), dataset.info, path)

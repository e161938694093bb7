"""How `genzoo compare` turns a time budget into step counts: time the real configuration for a few
seconds on a throw-away model, then give each family the settings a run of that length needs."""

from __future__ import annotations

import tempfile
from typing import Any

import torch


def steps_settings(model: str, steps: int) -> dict[str, Any]:
    """Settings that make `model` train `steps` steps with its whole schedule inside them.

    The cosine decay is shortened to the run (the families fix `lr_decay_steps` at their default
    length, which a short budget would never reach); the DBN splits the steps evenly between its
    layers as its defaults do (it would otherwise leave the upper layers untrained).
    """
    from genzoo.models import get_model_class

    cls = get_model_class(model)
    out: dict[str, Any] = {"train.max_steps": steps}
    if "lr_decay_steps" in cls.train_defaults:
        out["train.lr_decay_steps"] = steps
    out.update({f"model.{k}": v for k, v in cls.settings_for_steps(steps, {}).items()})
    return out


def calibrate(model: str, data: str, settings: dict[str, Any], seconds: float, device: str) -> dict[str, Any]:
    """Seconds per step of the real configuration, timed for about `seconds` on a throw-away model,
    and the steps a run with these settings would train on this data (`planned_steps`: the cap)."""
    from genzoo.models import get_model_class
    from genzoo.train.run import build_model, new_run_spec
    from genzoo.train.trainer import Trainer

    spec, dataset = new_run_spec(model, data, settings)  # what `train` will build for this data
    config = spec.train_config()
    with tempfile.TemporaryDirectory() as scratch, torch.random.fork_rng(devices=[]):
        instance = build_model(get_model_class(model), dataset, spec.model_settings, config.seed)
        trainer = Trainer(instance, dataset, config, scratch, device=device, quiet=True)
        per_step, _ = trainer.measure_seconds(seconds)
    return {"seconds_per_step": round(per_step, 6), "planned_steps": config.max_steps}

"""A training run on disk: what `genzoo train` does, as one Python call.

RUN_DIR/
  run.json            model name, data name or path, settings as given, genzoo version
  config.json         model config (with the data fields filled in)
  model.safetensors   weights to sample/evaluate with (EMA weights when EMA is on)
  trainer_state.pt    everything needed to resume (weights, optimizers, RNG, step)
  metrics.jsonl       one JSON object per log line (train and val)
  samples.png         a preview at the end: image grid, 2-d scatter plot, piano rolls or waveforms
  samples.txt         a few samples at the end (text data)
  curves.png          the training and validation curves at the end
  README.md           the model card: YAML front matter (model, data, steps, metrics, versions ...)
                      and how to load, sample and reproduce the run (genzoo.train.card)
  tokenizer.json      the tokenizer (text models)
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml

from genzoo.data import Dataset, dataset_options, load_dataset
from genzoo.data.registry import resolve
from genzoo.errors import GenzooError, first_line
from genzoo.files import check_writable
from genzoo.memory import FLOAT_BYTES, TRAINING_COPIES, check_fits, parameter_count
from genzoo.models import GenerativeModel, ModelConfig, get_model_class
from genzoo.models.base import atomic_write_text
from genzoo.models.pretrained import load
from genzoo.settings import dataclass_hints, route
from genzoo.train.card import CURVES_FILE, write_card
from genzoo.train.config import TrainConfig
from genzoo.train.device import resolve_device
from genzoo.train.distributed import World, barrier, device_for, join, leave
from genzoo.train.lock import RunLock
from genzoo.train.monitor import collapse_monitor
from genzoo.train.trainer import METRICS_FILE, STATE_FILE, Trainer, read_metrics, read_state
from genzoo.version import __version__

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
    # How a time budget became max_steps (and what it fixed), when the run was given one.
    budget_plan: dict[str, Any] | None = None
    # The settings the family chose for this data (`defaults_for_data`) and the user left alone, by
    # scope; they are in model_settings / train_settings too, this says where they came from.
    data_defaults: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The family's preset the run started from (`--preset`); its settings are in the two dicts above.
    preset: str | None = None

    def train_config(self) -> TrainConfig:
        defaults = get_model_class(self.model).train_defaults
        return TrainConfig.from_dict({**defaults, **self.train_settings})

    def load_data(self) -> Dataset:
        return load_dataset(self.data, prefer=self.data_modalities(), **self.data_options)

    def data_modalities(self) -> tuple[str, ...]:
        """The modalities the model reads: a path two loaders read (a CSV: table or series) goes to its."""
        return get_model_class(self.model).modalities

    def save(self, run_dir: Path) -> None:
        payload = {**self.__dict__, "genzoo_version": __version__}
        atomic_write_text(run_dir / RUN_FILE, json.dumps(payload, indent=2))

    @classmethod
    def read(cls, run_dir: str | Path) -> RunSpec:
        path = Path(run_dir) / RUN_FILE
        if not path.is_file():
            raise GenzooError(
                f"'{run_dir}' is not a genzoo run (no {RUN_FILE}); train one with `genzoo train`"
            )
        try:
            payload = json.loads(path.read_text())
            fields = {k: payload[k] for k in cls.__dataclass_fields__ if k in payload}
            return cls(**fields)
        except (ValueError, KeyError, TypeError) as err:
            raise GenzooError(f"'{path}' is corrupt ({err}); retrain the run") from err


def setting_fields(model: str, data: str) -> dict[str, dict[str, Any]]:
    """Field names and types per scope, for routing `--set` keys."""
    data_name, _ = resolve(data, prefer=get_model_class(model).modalities)
    data_hints = {k: (type(v) if v is not None else Any) for k, v in dataset_options(data_name).items()}
    return {
        "model": dataclass_hints(get_model_class(model).Config),
        "train": dataclass_hints(TrainConfig),
        "data": data_hints,
    }


def default_settings(model: str) -> dict[str, dict[str, Any]]:
    """Every model and training setting of `model` with its default, `{"model": {...}, "train": {...}}`.

    The data fields of the model config (shape, levels, classes) are left out: they come from the data.
    """
    cls = get_model_class(model)
    data_fields = {f.name for f in dataclasses.fields(ModelConfig)}
    model_defaults = {k: v for k, v in cls.Config().to_dict().items() if k not in data_fields}
    return {"model": model_defaults, "train": TrainConfig.from_dict(dict(cls.train_defaults)).to_dict()}


def default_settings_yaml(model: str) -> str:
    """`default_settings` as YAML that `--config` reads."""
    # JSON first: YAML has no tuples, and --config reads lists back into them.
    groups = json.loads(json.dumps(default_settings(model)))
    header = f"# genzoo config {model}: every setting and its default; edit, then train with --config FILE\n"
    return header + yaml.safe_dump(groups, sort_keys=False)


def train(
    model: str,
    data: str | Path,
    out: str | Path,
    settings: dict[str, Any] | None = None,
    *,
    resume: bool = False,
    device: str = "auto",
    quiet: bool = False,
    preset: str | None = None,
) -> tuple[GenerativeModel, dict[str, float]]:
    """Train `model` on `data` into the run directory `out`; returns the model (with the
    inference weights model.safetensors holds) and the last metrics.

    `preset` names settings of the family's that reproduce a README figure (`genzoo list --presets`);
    `settings` override them, and they override what the family picks for the data.

    Every input is checked before anything is written; the run directory is locked for the
    whole call (a second writer gets a GenzooError naming the first); a run that stopped before
    its first checkpoint starts again from step 0 (with or without `resume`).

    Under torchrun (or `genzoo train --nproc N`) every process calls this; they share each step's
    batch and average their gradients (genzoo.train.distributed), and only rank 0 writes the run.

    >>> model, metrics = train("vae", "digits", "runs/vae", {"max_steps": 200})  # doctest: +SKIP
    """
    out = Path(out)
    cls = get_model_class(model)  # fail early on an unknown name
    if preset:
        cls.preset(preset)
    if out.exists() and not out.is_dir():
        raise GenzooError(f"--out '{out}' is a file; give a directory for the run")
    check_writable(out, "--out")
    if resume:
        spec = _spec_to_resume(
            out, model, data, route(settings or {}, setting_fields(model, str(data))), preset
        )
        dataset = spec.load_data()
    else:
        spec, dataset = new_run_spec(model, data, settings, preset)
    config = spec.train_config()
    instance = build_model(cls, dataset, spec.model_settings, config.seed)
    world = join(resolve_device(device))
    try:
        return _train_in(out, spec, cls, dataset, instance, config, world, resume, device, quiet)
    finally:
        leave(world)


def new_run_spec(
    model: str, data: str | Path, settings: dict[str, Any] | None = None, preset: str | None = None
) -> tuple[RunSpec, Dataset]:
    """What a new run of `model` on `data` is asked to do, and its data: the preset's settings, the
    user's over them, and the family's choices for the data under both; a length the user gives
    (`LENGTH_SETTINGS`) replaces the preset's and the family's length and schedule horizon. `train`
    starts from this; `compare` and the UI read the planned length from it."""
    cls = get_model_class(model)
    fields = setting_fields(model, str(data))
    routed = route(settings or {}, fields)
    if preset:
        chosen = route(dict(cls.preset(preset).settings), fields)
        if any(
            k in routed["train"] for k in LENGTH_SETTINGS
        ):  # the user's length wins, as over data defaults
            for key in ("max_steps", "lr_decay_steps"):
                chosen["train"].pop(key, None)
        routed = {scope: {**chosen[scope], **routed[scope]} for scope in routed}
    spec = RunSpec(model, str(data), routed["data"], routed["model"], routed["train"], preset=preset)
    dataset = spec.load_data()
    choose_for_data(spec, cls, dataset.info)
    return spec, dataset


# Any of these given means the user chose the run's length: the family's chosen length (and the
# schedule horizon tied to it) gives way, so a time budget or epochs plan the run as they would.
LENGTH_SETTINGS = ("max_steps", "epochs", "time_budget")


def choose_for_data(spec: RunSpec, cls: type[GenerativeModel], info: Any) -> None:
    """Put the family's settings for this data (`defaults_for_data`) under the ones the user gave."""
    chosen = route(
        cls.defaults_for_data(info, dict(spec.model_settings)), setting_fields(spec.model, spec.data)
    )
    if any(k in spec.train_settings for k in LENGTH_SETTINGS):
        for key in ("max_steps", "lr_decay_steps"):
            chosen["train"].pop(key, None)
    given = {"model": spec.model_settings, "train": spec.train_settings}
    kept = {scope: {k: v for k, v in chosen[scope].items() if k not in given[scope]} for scope in given}
    spec.model_settings = {**kept["model"], **spec.model_settings}
    spec.train_settings = {**kept["train"], **spec.train_settings}
    spec.data_defaults = {scope: values for scope, values in kept.items() if values}


def _train_in(
    out: Path,
    spec: RunSpec,
    cls: type[GenerativeModel],
    dataset: Dataset,
    instance: GenerativeModel,
    config: TrainConfig,
    world: World,
    resume: bool,
    device: str,
    quiet: bool,
) -> tuple[GenerativeModel, dict[str, float]]:
    device = str(device_for(world, resolve_device(device)))
    if world.main:
        out.mkdir(parents=True, exist_ok=True)
    with RunLock(out) if world.main else nullcontext():
        if world.main:
            for leftover in out.glob("*.tmp"):  # a write that a kill cut short; the real file is intact
                leftover.unlink()
        has_checkpoint = (out / STATE_FILE).is_file()
        if has_checkpoint and not resume:
            raise GenzooError(
                f"'{out}' already holds a run; pass --resume to continue it or choose another --out"
            )
        if (out / RUN_FILE).is_file() and not has_checkpoint and world.main:
            _say(f"'{out}' holds a run stopped before its first checkpoint; starting it from step 0")
            _clear_attempt(out)
        barrier(world)  # the others start once rank 0 has cleared what a stopped attempt left
        previous_spec = (out / RUN_FILE).read_bytes() if (out / RUN_FILE).is_file() else None
        monitor = (
            collapse_monitor(dataset, config.monitor_samples, config.seed) if config.monitor_samples else None
        )
        trainer = Trainer(
            instance, dataset, config, out, device=device, quiet=quiet, monitor=monitor, world=world
        )
        if has_checkpoint:
            trainer.load_checkpoint()  # before run.json is rewritten: a bad checkpoint changes nothing
        elif config.time_budget:
            instance, trainer = _plan_budget(trainer, spec, cls, dataset, device)
        if world.main:
            spec.save(out)
        try:
            metrics = trainer.fit(resume=has_checkpoint)
        except GenzooError:  # diverged: the checkpoint is untouched, and so is what run.json said
            if previous_spec is not None and world.main:
                atomic_write_text(out / RUN_FILE, previous_spec.decode())
            raise
        instance.load_state_dict(trainer.inference_state())  # what model.safetensors holds (EMA, best)
        if not world.main:
            return instance, metrics
        if trainer.config.preview_samples:
            write_preview(
                instance, dataset, out / PREVIEW_FILE, trainer.config.seed, trainer.config.preview_samples
            )
        write_curves(out, f"{spec.model} on {spec.data}")
        write_card(
            out,
            spec,
            instance,
            dataset.info,
            steps=trainer.step,
            planned_steps=trainer.total_steps,
            seconds=trainer.elapsed,
            seed=trainer.config.seed,
        )
    return instance, metrics


def _spec_to_resume(
    out: Path, model: str, data: str | Path, routed: dict[str, dict], preset: str | None
) -> RunSpec:
    """The run's own spec, with the training settings changed as asked; refuses any other change."""
    spec = RunSpec.read(out)
    if spec.model != model:
        raise GenzooError(f"'{out}' is a run of '{spec.model}', not '{model}'")
    if preset and preset != spec.preset:
        started = f"preset '{spec.preset}'" if spec.preset else "no preset"
        raise GenzooError(f"'{out}' was started with {started}; resume it without --preset {preset}")
    if not _same_data(spec.data, str(data)):
        raise GenzooError(
            f"'{out}' was trained on '{spec.data}', not '{data}'; resume it with --data {spec.data}"
        )
    if routed["model"] or routed["data"]:
        raise GenzooError(
            "a resumed run keeps its model and data settings; only training settings may change"
        )
    spec.train_settings.update(routed["train"])
    return spec


def _same_data(a: str, b: str) -> bool:
    if a == b:
        return True
    pa, pb = Path(a).expanduser(), Path(b).expanduser()
    return pa.exists() and pb.exists() and pa.resolve() == pb.resolve()


def _clear_attempt(out: Path) -> None:
    """What a run that never checkpointed logged: it describes steps that no longer exist."""
    (out / METRICS_FILE).unlink(missing_ok=True)
    shutil.rmtree(out / "tb", ignore_errors=True)


def build_model(cls: type[GenerativeModel], dataset: Dataset, settings: dict[str, Any], seed: int):
    """The model with its seeded initial weights; refused up front when training it cannot fit in memory."""
    try:
        count = parameter_count(lambda: cls.for_data(dataset.info, **settings))
    except (RuntimeError, NotImplementedError):  # families that compute on tensors while building
        count = None
    if count is not None:
        check_fits(
            count * FLOAT_BYTES * TRAINING_COPIES,
            f"training this {count:,}-parameter model",
            "lower the size settings (--set ...)",
        )
    torch.manual_seed(seed)  # the model's initial weights
    try:
        model = cls.for_data(dataset.info, **settings)
        model.prepare(dataset.split("train").tensors[0])
        return model
    except (MemoryError, RuntimeError) as err:
        if not isinstance(err, MemoryError) and "memory" not in str(err):
            raise
        raise GenzooError(
            f"the model does not fit in memory ({first_line(err)}); lower the size settings"
        ) from None


def _plan_budget(
    trainer: Trainer, spec: RunSpec, cls: type[GenerativeModel], dataset: Dataset, device: str
) -> tuple[GenerativeModel, Trainer]:
    """Turn the time budget into a step count: time a few steps (and a validation) on a copy, plan
    the steps that fit in what is left, fix the schedule's horizon (and the family's step-dependent
    settings) to them, and record the plan in run.json. The run is then exactly `--max-steps N`
    with the recorded settings, on any machine, however busy."""
    config = trainer.config
    started = time.perf_counter()
    per_step, per_validation = trainer.measure_seconds(min(20.0, max(1.0, 0.03 * config.time_budget)))
    left = config.time_budget - (time.perf_counter() - started)
    cost = per_step + (per_validation / config.eval_every if config.eval_every else 0.0)
    steps = max(1, math.floor(left / cost))
    given = set(spec.train_settings)
    spec.train_settings.pop("time_budget")
    spec.train_settings["max_steps"] = steps
    fixed = {}
    if "lr_decay_steps" not in given and config.lr_decay_steps:
        fixed["lr_decay_steps"] = steps  # the family's fixed horizon would cut the schedule short
    spec.train_settings.update(fixed)
    model_fixed = {
        k: v
        for k, v in cls.settings_for_steps(steps, spec.model_settings).items()
        if k not in spec.model_settings
    }
    spec.model_settings.update(model_fixed)
    spec.budget_plan = {
        "time_budget": config.time_budget,
        "seconds_per_step": round(per_step, 6),
        "seconds_per_validation": round(per_validation, 6),
        "max_steps": steps,
        "reproduce": " ".join(
            [f"--max-steps {steps}", *(f"--set {k}={v}" for k, v in {**fixed, **model_fixed}.items())]
        ),
    }
    (_say if trainer.world.main else lambda _: None)(
        f"planned {steps} steps for the {config.time_budget:g} s budget ({per_step:.4g} s a step); "
        f"`{spec.budget_plan['reproduce']}` reproduces this run",
    )
    config = spec.train_config()
    instance = build_model(cls, dataset, spec.model_settings, config.seed)
    fresh = Trainer(
        instance,
        dataset,
        config,
        trainer.out_dir,
        device=device,
        quiet=trainer.quiet,
        monitor=trainer.monitor,
        world=trainer.world,
    )
    return instance, fresh


def _say(text: str) -> None:
    """A notice the user must see, progress bar or not: what genzoo decided on their behalf."""
    print(f"genzoo: {text}", file=sys.stderr)


def load_run(run_dir: str | Path, device: str = "auto") -> tuple[GenerativeModel, RunSpec]:
    """The trained model (inference weights) and its spec."""
    spec = RunSpec.read(run_dir)
    return load(run_dir, device=resolve_device(device)), spec


def run_progress(run_dir: str | Path) -> dict[str, Any] | None:
    """Where a run's last checkpoint stands, `{"step", "elapsed", "seed"}`; None before the first."""
    path = Path(run_dir) / STATE_FILE
    if not path.is_file():
        return None
    state = read_state(path)
    try:
        seed = state.get("train_config", {}).get("seed")
        return {"step": int(state["step"]), "elapsed": float(state["elapsed"]), "seed": seed}
    except (AttributeError, KeyError, TypeError, ValueError) as err:
        raise GenzooError(
            f"'{path}' is not a genzoo checkpoint ({first_line(err)}); retrain the run"
        ) from None


def write_curves(run_dir: Path, title: str = "") -> None:
    """curves.png from metrics.jsonl: the loss and the other logged values against step."""
    from genzoo.viz import save_curves

    save_curves(read_metrics(run_dir / METRICS_FILE), run_dir / CURVES_FILE, title)


def write_preview(model: GenerativeModel, dataset: Dataset, path: Path, seed: int, n: int = 64) -> None:
    from genzoo.viz import save_samples

    generator = torch.Generator(device=model.device).manual_seed(seed)
    model.eval()
    text = dataset.info.modality.startswith("text")
    with torch.random.fork_rng(devices=[]):
        samples = model.sample(min(n, 4) if text else n, generator=generator)
    if text:  # decoded strings: a few, as text beside the run
        path.with_name(PREVIEW_TEXT_FILE).write_text("\n\n----\n\n".join(samples) + "\n")
        return
    save_samples(samples.cpu(), dataset.info, path)

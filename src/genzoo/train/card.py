"""The model card: a run directory's README.md, for people and for tools.

YAML front matter (as Hugging Face model cards have) says what the run is in fields a script
can read with `yaml.safe_load`: model, family, data, modality, parameters, seed, steps trained
and planned, training seconds, the last train and val metrics, the `log_prob` kind, the
versions and the date. The Markdown body says the same for a person, plus how to load and
sample the run, the settings that differ from the defaults, the time-budget plan and the curves.

`genzoo.train.run.train` writes it at the end of every training call (a resume rewrites it).
"""

from __future__ import annotations

import json
import platform
import shlex
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
import yaml

from genzoo.data.base import DataInfo
from genzoo.data.registry import dataset_options, resolve
from genzoo.models.base import GenerativeModel, atomic_write_text
from genzoo.train.config import TrainConfig
from genzoo.train.trainer import METRICS_FILE, read_metrics

CARD_FILE = "README.md"
CURVES_FILE = "curves.png"

# What each `log_prob_kind` means, in the card's words.
LOG_PROB_MEANING = {
    "exact": "the exact log-likelihood, in nats per example",
    "bound": "a lower bound on the log-likelihood (ELBO or variational bound), in nats per example",
    "estimate": "an estimate of the log-likelihood (importance-sampled), in nats per example",
    None: "this family has no likelihood, so it is judged by its samples (FID, KID, ...)",
}
# Logged with each record, but not a measurement of the model.
_NOT_METRICS = {"split", "time", "lr", "warning"}


def model_card(
    run_dir: str | Path,
    spec: Any,
    model: GenerativeModel,
    info: DataInfo,
    *,
    steps: int,
    planned_steps: int,
    seconds: float,
    seed: int,
    records: list[dict[str, Any]] | None = None,
    date: datetime | None = None,
) -> str:
    """The card's text for the run `spec` (a `RunSpec`) in `run_dir`; `records` are its metrics.jsonl
    records (read from the run when not given)."""
    from genzoo.version import __version__

    run_dir = Path(run_dir)
    if records is None:
        records = read_metrics(run_dir / METRICS_FILE)
    last_train = _last(records, val=False)
    last_val = _last(records, val=True)
    date = date or datetime.now(timezone.utc)
    meta: dict[str, Any] = {
        "library_name": "genzoo",
        "tags": [t for t in ("genzoo", model.family, info.modality) if t],
        "model": model.name,
        "family": model.family,
        "data": spec.data,
        **({"data_options": _plain(spec.data_options)} if spec.data_options else {}),
        "modality": info.modality,
        "parameters": sum(p.numel() for p in model.parameters()),
        "seed": int(seed),
        "steps": int(steps),
        "planned_steps": int(planned_steps),
        "training_seconds": float(f"{float(seconds):.3g}"),  # 3 significant digits: a short run is not 0
        "metrics": {"train": last_train, "val": last_val},
        "log_prob": model.log_prob_kind,
        "versions": {
            "genzoo": __version__,
            "torch": str(torch.__version__),
            "python": platform.python_version(),
        },
        "date": date.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    warnings = [f"step {r['step']}: {r['warning']}" for r in records if r.get("warning")]
    if warnings:
        meta["warnings"] = warnings
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)
    body = _body(run_dir, spec, model, info, meta, last_train, last_val)
    if warnings:  # the collapse monitor's: modes or classes the samples missed during training
        body += "\n## Warnings during training\n\n" + "\n".join(f"- {w}" for w in warnings) + "\n"
    return f"---\n{front}---\n\n{body}"


def write_card(
    run_dir: str | Path, spec: Any, model: GenerativeModel, info: DataInfo, **progress: Any
) -> Path:
    """Write `run_dir/README.md` atomically (see `model_card` for the arguments); returns its path."""
    path = Path(run_dir) / CARD_FILE
    atomic_write_text(path, model_card(run_dir, spec, model, info, **progress))
    return path


# ---- the Markdown body ----------------------------------------------------------------
def _body(
    run_dir: Path,
    spec: Any,
    model: GenerativeModel,
    info: DataInfo,
    meta: dict[str, Any],
    last_train: dict[str, Any],
    last_val: dict[str, Any],
) -> str:
    run, data = str(run_dir), spec.data
    steps, planned = meta["steps"], meta["planned_steps"]
    stopped = "" if steps >= planned else " (stopped before the plan: `--resume` continues it)"
    lines = [
        f"# {model.name} on {data}",
        "",
        f"A `{model.name}` model (family `{model.family}`, {meta['parameters']:,} parameters) trained by "
        f"genzoo on `{data}` ({info.modality} data): {steps:,} of {planned:,} planned steps{stopped}, "
        f"{meta['training_seconds']:g} s of training, seed {meta['seed']}.",
        "",
        f"`log_prob` kind: {meta['log_prob'] or 'none'}; {LOG_PROB_MEANING.get(meta['log_prob'], '')}.",
        "",
        "## Use it",
        "",
        "```python",
        "import genzoo",
        "",
        f"model = genzoo.load({json.dumps(run)})",
        "samples = model.sample(16)",
        "```",
        "",
        "```bash",
        f"genzoo sample {shlex.quote(run)} -n 16 --out s.png",
        f"genzoo evaluate {shlex.quote(run)} --split test",
        f"genzoo train {model.name} --data {shlex.quote(data)} --out {shlex.quote(run)} --resume "
        f"--max-steps {max(2 * steps, planned + 1)}  # train on",
        "```",
        "",
        "## Last metrics",
        "",
        *_metrics_table(last_train, last_val),
        "",
        f"![training curves]({CURVES_FILE})",
        "",
        f"`{CURVES_FILE}` plots the training curves against step (`{METRICS_FILE}` holds every logged value).",
        "",
        "## Settings",
        "",
        *_settings_table(spec, model),
    ]
    if spec.budget_plan:
        lines += ["", "## Time budget", "", *_budget_lines(spec, model, run)]
    return "\n".join(lines) + "\n"


def _metrics_table(last_train: dict[str, Any], last_val: dict[str, Any]) -> list[str]:
    if not last_train and not last_val:
        return ["Nothing was logged."]
    rows = ["| split | step | metric | value |", "|---|---|---|---|"]
    for split, record in (("train", last_train), ("val", last_val)):
        step = record.get("step", "")
        rows += [f"| {split} | {step} | `{k}` | {_show(v)} |" for k, v in record.items() if k != "step"]
    return rows


def _settings_table(spec: Any, model: GenerativeModel) -> list[str]:
    """The settings the run was given (`--set`, `--config`, `--max-steps`, a budget plan), each
    beside its default; everything else is the default that `genzoo config MODEL` prints."""
    defaults = _defaults(spec, model)
    given = [
        (scope, k, v)
        for scope, values in (
            ("model", spec.model_settings),
            ("train", spec.train_settings),
            ("data", spec.data_options),
        )
        for k, v in values.items()
    ]
    note = f"Every other setting is the default (`genzoo config {model.name}` lists them)."
    if not given:
        return [f"All settings are the defaults (`genzoo config {model.name}` lists them)."]
    chosen = getattr(spec, "data_defaults", None) or {}
    preset_name = getattr(spec, "preset", None)
    preset = type(model).presets[preset_name].settings if preset_name in type(model).presets else {}
    rows = ["| scope | setting | value | default | from |", "|---|---|---|---|---|"]
    for scope, k, v in given:
        default = f"`{_show(defaults[scope][k])}`" if k in defaults[scope] else ""
        source = "given"
        if k in chosen.get(scope, {}):
            source = f"chosen by {model.name} for this data"
        elif any(name in preset and _show(preset[name]) == _show(v) for name in (k, f"{scope}.{k}")):
            source = f"preset `{preset_name}`"
        rows.append(f"| {scope} | `{k}` | `{_show(v)}` | {default} | {source} |")
    if chosen:
        note += f" Settings chosen for this data come from `{type(model).__name__}.defaults_for_data`; `--set` overrides any."
    if preset:
        figure = type(model).presets[preset_name].figure
        note += f" Preset `{preset_name}` (`genzoo list --presets`) reproduces: {figure}."
    return [*rows, "", note]


def _defaults(spec: Any, model: GenerativeModel) -> dict[str, dict[str, Any]]:
    cls = type(model)
    try:
        model_defaults = cls.Config().to_dict()
    except Exception:  # a Config with a required field: no defaults to show, the card still is written
        model_defaults = {}
    train_defaults = TrainConfig.from_dict(dict(cls.train_defaults)).to_dict()
    try:
        data_defaults = dataset_options(resolve(spec.data, prefer=spec.data_modalities())[0])
    except Exception:  # the data moved since training: the settings stand without their defaults
        data_defaults = {}
    return {"model": model_defaults, "train": train_defaults, "data": data_defaults}


def _budget_lines(spec: Any, model: GenerativeModel, run: str) -> list[str]:
    plan = spec.budget_plan
    per_validation = plan.get("seconds_per_validation") or 0
    validation = f" (and {per_validation:.4g} s a validation)" if per_validation else ""
    command = (
        f"genzoo train {model.name} --data {shlex.quote(spec.data)} --out {shlex.quote(run)} "
        f"{plan.get('reproduce', '')}"
    ).strip()
    return [
        f"The run was given a time budget of {plan.get('time_budget', 0):g} s. genzoo timed "
        f"{plan.get('seconds_per_step', 0):.4g} s a step{validation} and planned "
        f"{plan.get('max_steps', 0):,} steps; this command reproduces the run exactly, on any machine:",
        "",
        "```bash",
        command,
        "```",
    ]


# ---- values ---------------------------------------------------------------------------
def _last(records: list[dict[str, Any]], val: bool) -> dict[str, Any]:
    """The last train (or val) record, its measurements rounded to 6 significant digits."""
    for record in reversed(records):
        if (record.get("split") == "val") == val:
            return {k: _round(v) for k, v in record.items() if k not in _NOT_METRICS}
    return {}


def _round(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.6g}")
    return value


def _plain(value: Any) -> Any:
    """JSON types only (tuples become lists), so yaml.safe_dump takes it."""
    return json.loads(json.dumps(value, default=str))


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return f"{value:.6g}"
    return json.dumps(value, default=str)

"""The model card (README.md) and curves.png that every run directory gets."""

from __future__ import annotations

import json
import platform
from datetime import datetime, timezone

import torch
import yaml
from PIL import Image

import genzoo
from genzoo.cli import main
from genzoo.data import load_dataset
from genzoo.train import RunSpec, train
from genzoo.train.card import model_card
from genzoo.viz import curve_panels, save_curves

SETTINGS = {"lr": 0.05, "batch_size": 32, "eval_every": 10, "log_every": 5, "checkpoint_every": 7}


def front_matter(text: str) -> dict:
    assert text.startswith("---\n")
    head, sep, _ = text[4:].partition("\n---\n")
    assert sep, "the front matter is not closed"
    return yaml.safe_load(head)


def records(run) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_a_trained_run_has_a_card_whose_front_matter_parses(gaussian_model, tmp_path):
    run = tmp_path / "run"
    model, _ = train("test-gaussian", "digits", run, {**SETTINGS, "max_steps": 30, "seed": 7}, quiet=True)
    text = (run / "README.md").read_text()
    meta = front_matter(text)
    assert meta["model"] == "test-gaussian" and meta["family"] == "test"
    assert meta["data"] == "digits" and meta["modality"] == "image"
    assert meta["parameters"] == sum(p.numel() for p in model.parameters()) == 64 * 2 + 64 * 64 + 64
    assert meta["seed"] == 7 and meta["steps"] == 30 and meta["planned_steps"] == 30
    assert meta["training_seconds"] > 0 and meta["log_prob"] == "exact"
    assert meta["versions"] == {
        "genzoo": genzoo.__version__,
        "torch": str(torch.__version__),
        "python": platform.python_version(),
    }
    assert datetime.strptime(meta["date"], "%Y-%m-%dT%H:%M:%SZ")
    logged = records(run)
    last_train = next(r for r in reversed(logged) if "split" not in r)
    last_val = next(r for r in reversed(logged) if r.get("split") == "val")
    assert meta["metrics"]["train"]["step"] == 30 and meta["metrics"]["val"]["step"] == 30
    assert meta["metrics"]["train"]["loss"] == float(f"{last_train['loss']:.6g}")
    assert meta["metrics"]["val"]["val_loss"] == float(f"{last_val['val_loss']:.6g}")
    # the body: how to load and sample it, the settings given, the curves
    assert f'genzoo.load("{run}")' in text
    assert f"genzoo sample {run} -n 16 --out s.png" in text
    assert "| train | `lr` | `0.05` | `0.001` |" in text and "| train | `seed` | `7` | `0` |" in text
    assert "![training curves](curves.png)" in text
    assert "Time budget" not in text


def test_a_resumed_run_card_shows_the_new_step_count(gaussian_model, tmp_path):
    run = tmp_path / "run"
    common = ["train", "test-gaussian", "--data", "digits", "--out", str(run), "--quiet"]
    assert main([*common, "--max-steps", "12"]) == 0
    first = front_matter((run / "README.md").read_text())
    assert first["steps"] == 12 and first["metrics"]["train"]["step"] == 12
    assert main([*common, "--max-steps", "20", "--resume"]) == 0
    meta = front_matter((run / "README.md").read_text())
    assert meta["steps"] == meta["planned_steps"] == 20
    assert meta["metrics"]["train"]["step"] == meta["metrics"]["val"]["step"] == 20
    assert meta["training_seconds"] >= first["training_seconds"]
    assert not list(run.glob("*.tmp"))


def test_curves_png_is_a_png_of_the_logged_curves(gaussian_model, tmp_path):
    run = tmp_path / "run"
    train("test-gaussian", "digits", run, {**SETTINGS, "max_steps": 20}, quiet=True)
    data = (run / "curves.png").read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(run / "curves.png") as image:
        image.verify()
    # the test model's nll is its loss: one panel, with the validation loss in it
    assert curve_panels(records(run)) == [("loss", "loss", "val_loss")]


def test_curve_panels_put_losses_first_and_stop_at_six(tmp_path):
    """As a GAN logs: one loss per phase, a repeat of one (left out), the monitor's val_modes."""
    train_keys = {
        "disc/loss": 1.0,
        "disc/d_loss": 1.0,
        **{f"k{i}": 10.0 + i for i in range(8)},
        "gen/loss": 2.0,
    }
    logged = [
        {"step": 1, "lr": 0.1, "time": 0.1, **train_keys},
        {"step": 1, "split": "val", "val_loss": 2.0, "val_modes": 3.0, "val_examples": 10.0},
    ]
    panels = curve_panels(logged)
    assert panels[:4] == [
        ("disc/loss", "disc/loss", "val_loss"),
        ("gen/loss", "gen/loss", None),
        ("val_modes", None, "val_modes"),
        ("k0", "k0", None),
    ]
    assert len(panels) == 6 and len(curve_panels(logged, max_panels=20)) == 11
    assert not save_curves([], tmp_path / "none.png") and not (tmp_path / "none.png").exists()
    assert save_curves(logged, tmp_path / "c.png") and not list(tmp_path.glob("*.tmp"))


def test_card_shows_the_budget_plan_and_quotes_a_data_path(gaussian_model, tmp_path):
    data = load_dataset("digits")
    model = gaussian_model.for_data(data.info)
    path = "my data/digits folder"  # a path with spaces: quoted in the commands, as given in the YAML
    plan = {
        "time_budget": 300.0,
        "seconds_per_step": 0.0125,
        "seconds_per_validation": 0.5,
        "max_steps": 23000,
        "reproduce": "--max-steps 23000 --set lr_decay_steps=23000",
    }
    spec = RunSpec(
        "test-gaussian",
        path,
        {"size": 8},
        {"noisy_loss": False},
        {"max_steps": 23000, "lr_decay_steps": 23000},
        plan,
    )
    date = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    text = model_card(
        tmp_path / "run",
        spec,
        model,
        data.info,
        steps=100,
        planned_steps=23000,
        seconds=1.25,
        seed=0,
        date=date,
    )
    meta = front_matter(text)
    assert meta["data"] == path and meta["data_options"] == {"size": 8}
    assert meta["steps"] == 100 and meta["planned_steps"] == 23000 and meta["date"] == "2025-01-02T03:04:05Z"
    assert meta["metrics"] == {"train": {}, "val": {}}  # nothing logged in tmp_path/run
    assert "## Time budget" in text and "time budget of 300 s" in text and "23,000 steps" in text
    assert f"--data '{path}' --out {tmp_path / 'run'} --max-steps 23000 --set lr_decay_steps=23000" in text
    assert "| model | `noisy_loss` | `false` | `true` |" in text
    assert "stopped before the plan" in text

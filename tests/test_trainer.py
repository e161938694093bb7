from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from genzoo.cli import main
from genzoo.data import load_dataset
from genzoo.errors import GenzooError
from genzoo.train import TrainConfig, Trainer, train
from genzoo.train.schedule import lr_factor


def _settings(**extra):
    base = {
        "lr": 0.05,
        "batch_size": 32,
        "max_steps": 30,
        "eval_every": 10,
        "checkpoint_every": 7,
        "log_every": 5,
        "ema_decay": 0.9,
        "lr_decay_steps": 30,
        "warmup_steps": 3,
    }
    return {**base, **extra}


def test_training_fits_the_data_mean(gaussian_model, tmp_path):
    settings = _settings(max_steps=200, lr=0.5, lr_decay_steps=0)
    model, metrics = train("test-gaussian", "digits", tmp_path / "run", settings, quiet=True)
    data_mean = load_dataset("digits").split("train").tensors[0].flatten(1).mean(0)
    correlation = torch.corrcoef(torch.stack([model.mean.detach(), data_mean]))[0, 1]
    assert correlation > 0.9  # from all-zero means; zero-variance pixels pull weights apart
    assert "val_loss" in metrics
    lines = [json.loads(s) for s in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert any(r.get("split") == "val" for r in lines)
    assert lines[-1]["step"] == 200
    train_losses = [r["loss"] for r in lines if "lr" in r]
    assert train_losses[-1] < 0.5 * train_losses[0]
    assert not list((tmp_path / "run").glob("*.tmp"))
    for name in ("config.json", "model.safetensors", "trainer_state.pt", "run.json", "samples.png"):
        assert (tmp_path / "run" / name).is_file(), name


def test_resumed_run_is_bit_identical(gaussian_model, tmp_path):
    train("test-gaussian", "digits", tmp_path / "a", _settings(max_steps=30), quiet=True)
    train("test-gaussian", "digits", tmp_path / "b", _settings(max_steps=16), quiet=True)
    train("test-gaussian", "digits", tmp_path / "b", {"max_steps": 30}, resume=True, quiet=True)
    a = load_file(str(tmp_path / "a" / "model.safetensors"))
    b = load_file(str(tmp_path / "b" / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    sa = torch.load(tmp_path / "a" / "trainer_state.pt", weights_only=True)
    sb = torch.load(tmp_path / "b" / "trainer_state.pt", weights_only=True)
    assert torch.equal(sa["rng"], sb["rng"]) and sa["step"] == sb["step"] == 30


def test_different_seeds_differ(gaussian_model, tmp_path):
    train("test-gaussian", "digits", tmp_path / "a", _settings(seed=1), quiet=True)
    train("test-gaussian", "digits", tmp_path / "b", _settings(seed=2), quiet=True)
    a = load_file(str(tmp_path / "a" / "model.safetensors"))
    b = load_file(str(tmp_path / "b" / "model.safetensors"))
    assert not torch.equal(a["mean"], b["mean"])


def test_existing_run_is_not_overwritten(gaussian_model, tmp_path):
    train("test-gaussian", "digits", tmp_path / "a", _settings(max_steps=5), quiet=True)
    before = (tmp_path / "a" / "model.safetensors").read_bytes()
    with pytest.raises(GenzooError, match="already holds a run"):
        train("test-gaussian", "digits", tmp_path / "a", _settings(max_steps=5), quiet=True)
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == before


def test_nonfinite_losses_are_skipped_then_abort(gaussian_model, tmp_path):
    settings = _settings(max_steps=100, max_nonfinite=4, nan_after=10)
    with pytest.raises(
        GenzooError,
        match="non-finite for 4 steps in a row.*checkpoint of step 7 is kept: continue it with --resume",
    ):
        train("test-gaussian", "digits", tmp_path / "run", settings, quiet=True)
    state = torch.load(tmp_path / "run" / "trainer_state.pt", weights_only=True)
    assert state["step"] == 7 and state["nonfinite_total"] == 0  # the last good checkpoint, not the abort
    weights = load_file(str(tmp_path / "run" / "model.safetensors"))
    assert all(torch.isfinite(v).all() for v in weights.values())  # skipped steps never touched them


def test_time_budget_and_epochs_set_the_length(gaussian_model, tmp_path):
    data = load_dataset("digits")
    model = gaussian_model.for_data(data.info)
    trainer = Trainer(model, data, TrainConfig(batch_size=100, epochs=2), tmp_path / "e", quiet=True)
    assert trainer.total_steps == 20  # 1000 images / 100 per batch * 2 epochs
    model = gaussian_model.for_data(data.info)
    trainer = Trainer(model, data, TrainConfig(max_steps=10**6, time_limit=0.5), tmp_path / "t", quiet=True)
    trainer.fit()
    assert 0 < trainer.step < 10**6  # time_limit is a hard stop


def test_time_budget_plans_steps_that_max_steps_reproduces(gaussian_model, tmp_path):
    """The budget becomes a step count and a schedule horizon, recorded in run.json; training that
    many steps with the recorded settings gives the same weights, bit for bit."""
    settings = {**_settings(), "time_budget": 1.5, "lr_decay_steps": 0}
    settings.pop("max_steps")
    train("test-gaussian", "digits", tmp_path / "budget", settings, quiet=True)
    spec = json.loads((tmp_path / "budget" / "run.json").read_text())
    plan = spec["budget_plan"]
    steps = plan["max_steps"]
    assert spec["train_settings"]["max_steps"] == steps and "time_budget" not in spec["train_settings"]
    assert steps > 10 and plan["seconds_per_step"] * steps < 1.5
    log = [json.loads(line) for line in (tmp_path / "budget" / "metrics.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == steps  # the whole plan ran: no cut-off, no default step cap
    settings = {**settings, "max_steps": steps}
    settings.pop("time_budget")
    train("test-gaussian", "digits", tmp_path / "steps", settings, quiet=True)
    a = (tmp_path / "budget" / "model.safetensors").read_bytes()
    assert a == (tmp_path / "steps" / "model.safetensors").read_bytes()


def test_time_budget_sets_the_family_horizon(gaussian_model, tmp_path, monkeypatch):
    """A family with a fixed cosine horizon gets it set to the planned steps, and says so."""
    monkeypatch.setattr(gaussian_model, "train_defaults", {"lr_decay_steps": 4000, "eval_every": 0})
    train("test-gaussian", "digits", tmp_path / "r", {"time_budget": 1.0}, quiet=True)
    spec = json.loads((tmp_path / "r" / "run.json").read_text())
    steps = spec["budget_plan"]["max_steps"]
    assert spec["train_settings"]["lr_decay_steps"] == steps
    assert spec["budget_plan"]["reproduce"] == f"--max-steps {steps} --set lr_decay_steps={steps}"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_checkpoints_at_the_end_of_its_step(gaussian_model, tmp_path, monkeypatch, signum):
    """A signal inside step 13 (after the optimizer moved) is acted on once that step is counted."""
    data = load_dataset("digits")
    model = gaussian_model.for_data(data.info)
    trainer = Trainer(model, data, TrainConfig(max_steps=50, checkpoint_every=1000), tmp_path, quiet=True)
    original = trainer._train_step

    def interrupted_step():
        logs = original()
        if trainer.step == 12:
            os.kill(os.getpid(), signum)
        return logs

    monkeypatch.setattr(trainer, "_train_step", interrupted_step)
    # What was installed before: a shell's background job (nohup ... &) starts with SIGINT ignored.
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    assert torch.load(tmp_path / "trainer_state.pt", weights_only=True)["step"] == 13
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before  # handlers restored


def test_lr_schedule_warms_up_then_decays():
    factors = [lr_factor(s, 100, 10, "cosine", 0.1) for s in range(100)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[10:], factors[11:], strict=False))
    assert factors[-1] == pytest.approx(0.1, abs=1e-3)
    assert lr_factor(50, 100, 0, "constant", 0.1) == 1.0


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"lr": -1}, "lr must be > 0"),
        ({"batch_size": 0}, "batch_size must be > 0"),
        ({"lrr": 1.0}, "did you mean 'lr'"),
        ({"batch_size": 1.5}, "expects int"),
    ],
)
def test_bad_settings_are_rejected(gaussian_model, tmp_path, settings, message):
    with pytest.raises(GenzooError, match=message):
        train("test-gaussian", "digits", tmp_path / "run", settings, quiet=True)
    assert not Path(tmp_path / "run").exists()


def test_keep_best_saves_the_best_validation_and_survives_resume(gaussian_model, tmp_path, monkeypatch):
    """Weights are spoiled after step 10: model.safetensors must keep step 10's, also after a resume."""
    data = load_dataset("digits")
    config = TrainConfig(lr=0.05, max_steps=20, eval_every=10, checkpoint_every=5, keep_best=True)
    trainer = Trainer(gaussian_model.for_data(data.info), data, config, tmp_path, quiet=True)
    original = trainer._train_step
    kept = {}

    def spoiling_step():
        logs = original()
        if trainer.step + 1 == 10:  # the state validated at step 10
            kept.update({k: v.clone() for k, v in trainer.model.state_dict().items()})
        if trainer.step + 1 > 10:
            with torch.no_grad():
                trainer.model.mean.add_(5.0)
        return logs

    monkeypatch.setattr(trainer, "_train_step", spoiling_step)
    trainer.fit()
    saved = load_file(str(tmp_path / "model.safetensors"))
    assert torch.equal(saved["mean"], kept["mean"])
    assert not torch.equal(trainer.model.mean.detach(), kept["mean"])  # training itself went on
    vals = [json.loads(s) for s in (tmp_path / "metrics.jsonl").read_text().splitlines() if '"val"' in s]
    assert [r["val_best_step"] for r in vals] == [10, 10]
    assert vals[1]["val_loss"] > vals[0]["val_loss"]

    longer = TrainConfig(**{**config.to_dict(), "max_steps": 25})
    resumed = Trainer(gaussian_model.for_data(data.info), data, longer, tmp_path, quiet=True)
    resumed.fit(resume=True)
    assert resumed.best["step"] == 10
    assert torch.equal(load_file(str(tmp_path / "model.safetensors"))["mean"], kept["mean"])


# ---- progress: a bar on a terminal, plain lines elsewhere, nothing when quiet ---------------
PROGRESS_LINE = re.compile(
    r"^genzoo: train test-gaussian step (\d+)/30 \((\d+)%\)(, loss [-\d.e+]+)?, [\d.]+ s"
)


def test_progress_lines_when_stderr_is_not_a_terminal(gaussian_model, tmp_path, capsys):
    """capsys's stderr is no terminal (as in Jupyter, nohup or CI): a line every 10% of the run."""
    train("test-gaussian", "digits", tmp_path / "run", _settings(log_every=1), quiet=False)
    lines = capsys.readouterr().err.splitlines()
    assert all(PROGRESS_LINE.match(line) for line in lines), lines
    assert [int(PROGRESS_LINE.match(line)[1]) for line in lines] == list(range(3, 31, 3))
    assert all(PROGRESS_LINE.match(line)[3] for line in lines)  # the loss logged at that step
    assert "about" in lines[0] and "left" in lines[0] and "left" not in lines[-1]
    assert lines[-1].startswith("genzoo: train test-gaussian step 30/30 (100%)")


def test_quiet_training_prints_nothing(gaussian_model, tmp_path, capsys):
    train("test-gaussian", "digits", tmp_path / "run", _settings(), quiet=True)
    assert capsys.readouterr().err == ""
    assert (
        main(["train", "test-gaussian", "--data", "digits", "--out", str(tmp_path / "cli"), "--quiet"]) == 0
    )
    assert capsys.readouterr().err == ""


def test_resumed_progress_counts_from_the_checkpoint(gaussian_model, tmp_path, capsys):
    train("test-gaussian", "digits", tmp_path / "run", _settings(max_steps=15), quiet=True)
    train("test-gaussian", "digits", tmp_path / "run", {"max_steps": 30}, resume=True)
    steps = [int(PROGRESS_LINE.match(line)[1]) for line in capsys.readouterr().err.splitlines()]
    assert steps == list(range(18, 31, 3))


def test_train_steps_take_the_same_steps_as_fit(gaussian_model, tmp_path):
    """What benchmarks time (`train_steps`) is what `fit` does: same batches, noise and updates."""
    data = load_dataset("digits")
    config = TrainConfig(**{**_settings(max_steps=40), "ema_decay": 0.0})  # past the first epoch (32 steps)
    torch.manual_seed(0)
    fitted = Trainer(gaussian_model.for_data(data.info), data, config, tmp_path / "fit", quiet=True)
    fitted.fit()
    torch.manual_seed(0)
    stepped = Trainer(gaussian_model.for_data(data.info), data, config, tmp_path / "steps", quiet=True)
    stepped.train_steps(40)
    assert stepped.step == 40
    assert not (tmp_path / "steps" / "metrics.jsonl").exists()  # no logging, validation or checkpoint
    for (name, a), b in zip(
        fitted.model.state_dict().items(), stepped.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    assert not torch.equal(stepped.model.mean, gaussian_model.for_data(data.info).mean)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_trains_and_resumes_bit_identically(gaussian_model, tmp_path, precision):
    settings = _settings(precision=precision, lr=0.5)
    train("test-gaussian", "digits", tmp_path / "a", {**settings, "max_steps": 30}, quiet=True)
    train("test-gaussian", "digits", tmp_path / "b", {**settings, "max_steps": 16}, quiet=True)
    train("test-gaussian", "digits", tmp_path / "b", {"max_steps": 30}, resume=True, quiet=True)
    a = load_file(str(tmp_path / "a" / "model.safetensors"))
    b = load_file(str(tmp_path / "b" / "model.safetensors"))
    for k in a:
        assert torch.equal(a[k], b[k]), k
    losses = [json.loads(s)["loss"] for s in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()
              if '"lr"' in s]  # fmt: skip
    assert losses[-1] < losses[0]
    state = torch.load(tmp_path / "a" / "trainer_state.pt", weights_only=True)
    assert (state["scaler"] is not None) == (precision == "fp16")  # fp16's loss scale is resumed too

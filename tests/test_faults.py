"""Faults must never lose or corrupt a run.

Each scenario trains in a child process (tests/fault_driver.py) that is killed (SIGKILL, also
inside a checkpoint write) or interrupted (SIGINT, SIGTERM) at a random step, then resumed until
done; the result is compared bit for bit with one uninterrupted run. Also: the divergence abort
leaves the last checkpoint byte-identical, and two writers on one run directory give one run and
one refusal.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from genzoo.cli import main

DRIVER = Path(__file__).with_name("fault_driver.py")
STEPS = 60
# Checkpoints at 7, 14, ...; validation (and best-weights bookkeeping) at 10, 20, ...; EMA on.
SETTINGS = [
    "--set", "lr=0.05", "--set", "batch_size=32", "--set", "checkpoint_every=7", "--set", "eval_every=10",
    "--set", "log_every=5", "--set", "ema_decay=0.9", "--set", "warmup_steps=3", "--set", "keep_best=true",
]  # fmt: skip
RNG = random.Random(21)  # the fault points: random, and the same on every run of the suite


def drive(fault: str, run: Path, *extra: str, resume: bool = False) -> subprocess.CompletedProcess:
    argv = ["train", "test-gaussian", "--data", "digits", "--out", str(run), "--max-steps", str(STEPS)]
    argv += SETTINGS + list(extra) + (["--resume"] if resume else []) + ["--quiet"]
    return subprocess.run(
        [sys.executable, str(DRIVER), fault, *argv], capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("faults") / "straight"
    proc = drive("none", run)
    assert proc.returncode == 0, proc.stderr
    return run


def assert_same_run(run: Path, reference: Path) -> None:
    """Weights, trainer state and the logged steps equal those of the uninterrupted run."""
    assert (run / "model.safetensors").read_bytes() == (reference / "model.safetensors").read_bytes()
    a = torch.load(run / "trainer_state.pt", weights_only=True)
    b = torch.load(reference / "trainer_state.pt", weights_only=True)
    assert a["step"] == b["step"] == STEPS and torch.equal(a["rng"], b["rng"])
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    moments = [(x, y) for x, y in zip(a["optimizers"], b["optimizers"], strict=True)]
    for x, y in moments:
        for pid in x["state"]:
            for name in x["state"][pid]:
                assert torch.equal(x["state"][pid][name], y["state"][pid][name]), (pid, name)
    for key in a["ema"]["shadow"]:
        assert torch.equal(a["ema"]["shadow"][key], b["ema"]["shadow"][key]), key
    assert a["best"]["step"] == b["best"]["step"]

    def logged(path: Path) -> list[tuple]:
        records = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]
        return [(r.get("split", "train"), r["step"]) for r in records]

    steps = logged(run)
    assert len(steps) == len(set(steps)), "a step was logged twice"
    assert steps == logged(reference)
    val = [json.loads(s) for s in (run / "metrics.jsonl").read_text().splitlines() if '"val"' in s]
    ref = [json.loads(s) for s in (reference / "metrics.jsonl").read_text().splitlines() if '"val"' in s]
    assert val == ref  # validation is a function of the weights: identical to the last digit
    assert not list(run.glob("*.tmp"))


def _random_step() -> int:
    return RNG.randint(2, STEPS - 1)


# Each scenario: the faults injected one after another, each followed by a resume (the last one clean).
SCENARIOS = {
    **{f"kill-9 mid-step {i}": [f"kill-step:{_random_step()}"] for i in range(4)},
    "kill-9 twice": [f"kill-step:{RNG.randint(2, 25)}", f"kill-step:{RNG.randint(30, STEPS - 1)}"],
    **{f"kill-9 in trainer_state write {n}": [f"kill-state:{n}"] for n in (1, RNG.randint(2, 8))},
    **{f"kill-9 in weights write {n}": [f"kill-weights:{n}"] for n in (1, RNG.randint(2, 8))},
    **{f"SIGINT mid-step {i}": [f"sigint-step:{_random_step()}"] for i in range(3)},
    "SIGTERM mid-step": [f"sigterm-step:{_random_step()}"],
    "double SIGINT": [f"double-sigint:{_random_step()}"],
    "kill-9 before the first checkpoint": ["kill-step:5"],
    "SIGINT, then kill-9 in a write": [f"sigint-step:{RNG.randint(2, 20)}", "kill-state:3"],
    "disk full in a checkpoint write": [f"full-disk:{RNG.randint(1, 8)}"],
}
EXPECTED_EXIT = {"kill": -signal.SIGKILL, "sigint": 130, "sigterm": 130, "double": 130, "full": 2}


@pytest.mark.parametrize("faults", SCENARIOS.values(), ids=SCENARIOS.keys())
def test_faulted_run_resumes_bit_identically(uninterrupted, tmp_path, faults):
    run = tmp_path / "run"
    for i, fault in enumerate(faults):
        proc = drive(fault, run, resume=i > 0)
        assert proc.returncode == EXPECTED_EXIT[fault.split("-")[0]], (fault, proc.stderr)
        assert "Traceback" not in proc.stderr
        if fault.startswith("full-disk"):
            assert "No space left on device" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    proc = drive("none", run, resume=True)
    assert proc.returncode == 0, proc.stderr
    assert_same_run(run, uninterrupted)


def test_sigint_says_how_to_continue(tmp_path):
    proc = drive(f"sigint-step:{_random_step()}", tmp_path / "run")
    assert proc.returncode == 130
    assert proc.stderr.strip() == "genzoo: interrupted; continue from the last checkpoint with --resume"


def test_run_killed_before_its_first_checkpoint_starts_over(uninterrupted, tmp_path):
    """Without --resume too: the run is started again from step 0, and the user is told so."""
    run = tmp_path / "run"
    assert drive("kill-step:5", run).returncode == -signal.SIGKILL
    assert (run / "run.json").is_file() and not (run / "trainer_state.pt").exists()
    proc = drive("none", run)
    assert proc.returncode == 0, proc.stderr
    assert "stopped before its first checkpoint; starting it from step 0" in proc.stderr
    assert_same_run(run, uninterrupted)


def _hashes(run: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in run.iterdir() if p.is_file()}


def test_divergence_keeps_the_last_checkpoint_byte_identical(gaussian_model, tmp_path, capsys):
    """The issue's case (there with a VAE): 200 steps, then resumed with lr=1e5, must abort unsaved."""
    run = tmp_path / "run"
    common = ["--data", "digits", "--out", str(run), "--quiet"]
    assert main(["train", "test-gaussian", *common, "--max-steps", "200"]) == 0
    kept = {k: v for k, v in _hashes(run).items() if k != "metrics.jsonl"}
    code = main(["train", "test-gaussian", *common, "--resume", "--max-steps", "400", "--set", "lr=1e5"])
    err = capsys.readouterr().err
    assert code == 2 and "non-finite" in err and "the checkpoint of step 200 is kept" in err
    assert {k: v for k, v in _hashes(run).items() if k != "metrics.jsonl"} == kept
    # and the kept state resumes with saner settings, from step 200
    assert main(["train", "test-gaussian", *common, "--resume", "--max-steps", "220"]) == 0
    assert torch.load(run / "trainer_state.pt", weights_only=True)["step"] == 220
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps)  # the diverged attempt's lines are gone


def test_a_second_writer_is_refused_with_the_holders_pid(gaussian_model, tmp_path, capsys):
    run = tmp_path / "run"
    paused, resume = tmp_path / "paused", tmp_path / "resume"
    env = {"FAULT_PAUSED": str(paused), "FAULT_RESUME": str(resume)}
    argv = ["train", "test-gaussian", "--data", "digits", "--out", str(run), "--max-steps", "20", "--quiet"]
    holder = subprocess.Popen(
        [sys.executable, str(DRIVER), "pause-step:3", *argv, "--seed", "1"],
        env={**os.environ, **env},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not paused.exists():
            assert holder.poll() is None and time.monotonic() < deadline, holder.stderr.read()
            time.sleep(0.05)
        before = _hashes(run)
        for extra in ([], ["--resume"]):  # a new run and a resume alike
            code = main([*argv, "--seed", "2", *extra])
            err = capsys.readouterr().err
            assert code == 2 and f"in use by another genzoo process (pid {holder.pid})" in err, err
            assert len(err.strip().splitlines()) == 1
        assert _hashes(run) == before
    finally:
        resume.touch()
        holder.wait(timeout=60)
    assert holder.returncode == 0
    spec = json.loads((run / "run.json").read_text())
    state = torch.load(run / "trainer_state.pt", weights_only=True)
    assert spec["train_settings"]["seed"] == state["train_config"]["seed"] == 1


def test_two_writers_started_together_make_one_run(tmp_path):
    run = tmp_path / "run"
    argv = ["train", "test-gaussian", "--data", "digits", "--out", str(run), "--max-steps", "300", "--quiet"]
    procs = [
        subprocess.Popen(
            [sys.executable, str(DRIVER), "none", *argv, "--seed", str(seed)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in (1, 2)
    ]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    assert sorted(code for code, _ in results) == [0, 2], results
    refusal = next(err for code, err in results if code == 2)
    assert "in use by another genzoo process" in refusal or "already holds a run" in refusal
    winner = 1 + [code for code, _ in results].index(0)
    spec = json.loads((run / "run.json").read_text())
    state = torch.load(run / "trainer_state.pt", weights_only=True)
    assert spec["train_settings"]["seed"] == state["train_config"]["seed"] == winner
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in records if "split" not in r]
    assert len(steps) == len(set(steps)) and steps[-1] == 300  # one writer's log, not two interleaved


def test_one_of_two_processes_killed_stops_the_other_and_the_run_resumes(tmp_path):
    """SIGKILL in rank 1 at step 20 of a two-process run: rank 0 is stopped too (no hang on the
    gradient all-reduce), the checkpoint of step 14 is intact, and one process finishes the run."""
    import time

    run = tmp_path / "run"
    argv = ["train", "test-gaussian", "--data", "digits", "--out", str(run), "--max-steps", str(STEPS),
            *SETTINGS, "--quiet"]  # fmt: skip
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    started = time.monotonic()
    proc = subprocess.run(
        [*launcher, str(DRIVER), "kill-rank1-step:20", *argv], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode != 0
    assert time.monotonic() - started < 150, "the surviving process waited for the dead one"
    assert torch.load(run / "trainer_state.pt", weights_only=True)["step"] == 14
    resumed = drive("none", run, resume=True)
    assert resumed.returncode == 0, resumed.stderr
    state = torch.load(run / "trainer_state.pt", weights_only=True)
    assert state["step"] == STEPS and state["world_size"] == 1
    assert "trained by 2 process(es) with 1" in resumed.stderr

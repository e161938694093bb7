"""Data-parallel training (genzoo.train.distributed): two CPU processes with gloo, started by
`genzoo train --nproc 2` as torchrun starts them, against one process with the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from genzoo import load
from genzoo.cli import main, without_nproc
from genzoo.train import train

STEPS = 50
CASES = {  # model: (data, settings small enough for a CPU test)
    "vae": ("digits", {"hidden": [64], "latent_dim": 4}),
    "ddpm": ("digits", {"channels": 8, "num_steps": 50}),
    "dcgan": ("digits", {}),
    "gpt": ("words", {"n_layer": 1, "n_embd": 32, "n_head": 2, "block_size": 16}),
}
COMMON = {"max_steps": STEPS, "log_every": 1, "eval_every": 25, "preview_samples": 0, "seed": 3}


@pytest.fixture(scope="module")
def words(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    vocabulary = ["the", "king", "of", "night", "speaks", "and", "we", "hear", "a", "song"]
    path = tmp_path_factory.mktemp("ddp-text") / "words.txt"
    path.write_text(" ".join(rng.choice(vocabulary, 5400)) + "\n")  # 40 training rows: 5 batches of 8
    return path


def losses(run: Path) -> list[dict[str, float]]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k.endswith("loss")} for r in rows if "lr" in r]


def two_processes(model: str, data: str, out: Path, settings: dict) -> subprocess.CompletedProcess:
    sets = [a for k, v in settings.items() for a in ("--set", f"{k}={json.dumps(v)}")]
    command = [sys.executable, "-m", "genzoo", "train", model, "--data", data, "--out", str(out), "--quiet"]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [*command, *sets, "--nproc", "2"], capture_output=True, text=True, env=environment, timeout=600
    )


@pytest.mark.parametrize("model", list(CASES))
def test_two_processes_follow_one_process_with_the_same_global_batch(model, words, tmp_path, one_thread):
    data, settings = CASES[model]
    data = str(words) if data == "words" else data
    # One process: batches of 4, two accumulated per step. Two processes: batches of 8, one shard of
    # 4 each. Same rows, same noise per shard (seeded by its place in the step), so the same curve.
    # (Epochs must hold whole global batches: a short last batch is cut differently by the two.)
    train(model, data, tmp_path / "one", {**COMMON, **settings, "batch_size": 4, "grad_accum": 2}, quiet=True)
    done = two_processes(model, data, tmp_path / "two", {**COMMON, **settings, "batch_size": 8})
    assert done.returncode == 0, done.stderr[-2000:]
    one, two = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert len(one) == len(two) == STEPS  # rank 0 alone logged, every step once
    for a, b in zip(one, two, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            assert b[key] == pytest.approx(a[key], rel=1e-5, abs=1e-6), (key, a, b)
    assert one[-1] != one[0]  # it trained
    reloaded = load(tmp_path / "two")  # the checkpoint of step 50 loads and samples
    drawn = reloaded.sample(2, generator=torch.Generator().manual_seed(0))
    assert len(drawn) == 2
    state = torch.load(tmp_path / "two" / "trainer_state.pt", weights_only=True)
    assert state["step"] == STEPS and state["world_size"] == 2


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_under_two_processes(precision, tmp_path):
    settings = {**COMMON, **CASES["vae"][1], "batch_size": 8, "max_steps": 10, "precision": precision}
    done = two_processes("vae", "digits", tmp_path / "run", settings)
    assert done.returncode == 0, done.stderr[-2000:]
    logged = losses(tmp_path / "run")
    assert len(logged) == 10 and all(np.isfinite(r["loss"]) for r in logged)


def test_resuming_with_another_process_count_says_so(tmp_path, one_thread):
    settings = {**COMMON, **CASES["vae"][1], "batch_size": 8}
    done = two_processes("vae", "digits", tmp_path / "run", {**settings, "max_steps": 10})
    assert done.returncode == 0, done.stderr[-2000:]
    captured = subprocess.run(
        [sys.executable, "-m", "genzoo", "train", "vae", "--data", "digits", "--out", str(tmp_path / "run"),
         "--resume", "--max-steps", "20", "--quiet"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert captured.returncode == 0, captured.stderr
    assert "trained by 2 process(es) with 1" in captured.stderr
    assert len(losses(tmp_path / "run")) == 20


def test_nproc_is_checked_and_stripped(capsys, tmp_path):
    assert main(["train", "vae", "--data", "digits", "--out", str(tmp_path / "r"), "--nproc", "0"]) == 2
    assert "--nproc must be >= 1" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
    argv = ["train", "vae", "--nproc", "2", "--data", "digits", "--nproc=3", "--out", "r"]
    assert without_nproc(argv) == ["train", "vae", "--data", "digits", "--out", "r"]


def test_a_failing_process_ends_the_run_with_one_line(tmp_path):
    broken = tmp_path / "broken.csv"
    broken.write_text("")  # an empty file: every process refuses it
    done = two_processes("vae", str(broken), tmp_path / "run", {"max_steps": 5})
    assert done.returncode == 2
    assert "training processes failed" in done.stderr.splitlines()[-1]

"""Data-parallel scaling: training steps per second of `ddpm` (digits) and `gpt` (tiny Shakespeare)
with 1 and 2 processes (`genzoo train --nproc N`), the same global batch, one thread per process.

    python benchmarks/ddp_scaling.py [--models ddpm gpt] [--procs 1 2] [--steps 200] [--device cpu]

Each configuration is a real `genzoo train` run of `--steps` steps; its speed is the Trainer's own
clock (metrics.jsonl: training seconds between the first logged step and the last, so start-up and
the process group's rendezvous are left out). On a GPU machine give `--device cuda --procs 1 2 4 8`:
one GPU per process, NCCL. On this 2-core CPU, two processes can at best double the speed of one
single-threaded process; the gradient all-reduce (gloo) and the duplicated validation take from that.
Results: benchmarks/results/ddp_scaling.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from common import save

MODELS = {"ddpm": ("digits", {"batch_size": 64}), "gpt": ("shakespeare", {"batch_size": 32})}


def steps_per_second(run: Path) -> float:
    """Steps per training second between the first and the last logged step."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    timed = [r for r in rows if "time" in r and "lr" in r]
    first, last = timed[0], timed[-1]
    return (last["step"] - first["step"]) / (last["time"] - first["time"])


def train(model: str, procs: int, steps: int, device: str, work: Path) -> float:
    data, settings = MODELS[model]
    run = work / f"{model}-{procs}"
    shutil.rmtree(run, ignore_errors=True)
    sets = [a for k, v in {**settings, "log_every": 10, "eval_every": 0, "preview_samples": 0}.items()
            for a in ("--set", f"{k}={v}")]  # fmt: skip
    command = [sys.executable, "-m", "genzoo", "train", model, "--data", data, "--out", str(run),
               "--max-steps", str(steps), "--device", device, "--quiet", "--nproc", str(procs), *sets]  # fmt: skip
    subprocess.run(command, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return steps_per_second(run)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--procs", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--work", type=Path, default=Path("runs/bench-ddp"))
    args = parser.parse_args()
    results = {}
    for model in args.models:
        rates = {n: train(model, n, args.steps, args.device, args.work) for n in args.procs}
        base = rates[args.procs[0]]
        results[model] = {
            "data": MODELS[model][0],
            "global_batch": MODELS[model][1]["batch_size"],
            "steps_per_second": {str(n): round(r, 3) for n, r in rates.items()},
            "speedup": {str(n): round(r / base, 3) for n, r in rates.items()},
        }
        print(model, results[model], flush=True)
    save("ddp_scaling", {"command": "python benchmarks/ddp_scaling.py " + " ".join(sys.argv[1:]),
                         "device": args.device, "steps": args.steps, "models": results})  # fmt: skip


if __name__ == "__main__":
    main()

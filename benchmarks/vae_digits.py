"""VAE on digits with the default config: training time, test NLL (IWAE) and -ELBO.

    python benchmarks/vae_digits.py [--seeds 0 1 2] [--work runs/bench-vae]

Target (issue 3): trains in under 5 minutes on a 2-core CPU, test nll <= 100 nats (aim <= 95).
Reference: an MLP VAE in the "Deep Generative Modeling" course code gets about 100.5 on this split.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
from pathlib import Path

from common import save

from genzoo.evaluation import evaluate_run
from genzoo.train import train


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--work", type=Path, default=Path("runs/bench-vae-digits"))
    args = parser.parse_args()
    runs = []
    for seed in args.seeds:
        run = args.work / f"seed{seed}"
        shutil.rmtree(run, ignore_errors=True)
        start = time.perf_counter()
        train("vae", "digits", run, {"seed": seed}, quiet=True)
        seconds = time.perf_counter() - start
        result = evaluate_run(run, split="test", metrics=["nll"])
        runs.append({"seed": seed, "train_seconds": round(seconds, 1), **result})
        print(runs[-1])
    nlls = [r["nll"] for r in runs]
    save(
        "vae_digits",
        {
            "command": "genzoo train vae --data digits --out R --seed S; genzoo evaluate R --split test --metrics nll",
            "nll_mean": statistics.mean(nlls),
            "nll_std": statistics.stdev(nlls) if len(nlls) > 1 else 0.0,
            "reference_nll": {"DGM course MLP VAE": 100.5},
            "runs": runs,
        },
    )


if __name__ == "__main__":
    main()

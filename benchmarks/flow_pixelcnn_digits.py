"""PixelCNN, RealNVP and Glow on digits with their default configs: training time and test NLL.

    python benchmarks/flow_pixelcnn_digits.py [--models pixelcnn glow realnvp] [--seed 0]
                                              [--time-budget SECONDS] [--name NAME] [--work runs/bench-flow-pixelcnn]

Targets (issue 6), nats per image on the digits test split: PixelCNN <= 88, RealNVP or Glow <= 115.
References from the "Deep Generative Modeling" course code on the same split: autoregressive
about 88.7, RealNVP about 124. The flows' numbers are the uniform-dequantization bound on the
discrete likelihood (the standard reported number); PixelCNN's is exact.

On a CPU shared with other jobs, run with OMP_NUM_THREADS=1: two spinning threads on a busy
2-core machine were about 8x slower per step than one.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from common import save

from genzoo.evaluation import evaluate_run
from genzoo.train import train

REFERENCE = {"pixelcnn": 88.7, "realnvp": 124.0, "glow": 124.0}
TARGET = {"pixelcnn": 88.0, "realnvp": 115.0, "glow": 115.0}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", default=["pixelcnn", "glow", "realnvp"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--time-budget", type=float, default=0.0, help="seconds per model; 0 = the defaults' steps"
    )
    parser.add_argument("--name", default="flow_pixelcnn_digits", help="results/NAME.json")
    parser.add_argument("--work", type=Path, default=Path("runs/bench-flow-pixelcnn-digits"))
    args = parser.parse_args()
    runs = []
    for name in args.models:
        run = args.work / name
        shutil.rmtree(run, ignore_errors=True)
        settings: dict = {"seed": args.seed}
        if args.time_budget:
            settings["time_budget"] = args.time_budget
        start = time.perf_counter()
        train(name, "digits", run, settings, quiet=True)
        seconds = time.perf_counter() - start
        result = evaluate_run(run, split="test", metrics=["nll"])
        steps = sum(1 for _ in open(run / "metrics.jsonl"))  # noqa: SIM115 (a quick count)
        runs.append(
            {
                "model": name,
                "seed": args.seed,
                "settings": settings,
                "train_seconds": round(seconds, 1),
                "log_lines": steps,
                "target_nll": TARGET.get(name),
                "reference_nll": REFERENCE.get(name),
                **result,
            }
        )
        print(runs[-1], flush=True)
    save(
        args.name,
        {
            "command": "genzoo train MODEL --data digits --out R --seed S; genzoo evaluate R --split test --metrics nll",
            "reference": "Deep Generative Modeling course code, same split: autoregressive 88.7, RealNVP 124",
            "runs": runs,
        },
    )


if __name__ == "__main__":
    main()

"""Exact-likelihood families on digits with their default configs: training time and test NLL for
PixelCNN, Glow, RealNVP and the DBN, and PixelCNN completions of the bottom half of test digits.

    python benchmarks/likelihood_digits.py [--models pixelcnn pixelcnn-cond glow realnvp dbn] [--seed 0] [--reuse]
                                           [--n-complete 447] [--sampling-seeds 0 1 2] [--candidates 16]
                                           [--work runs/bench-likelihood-digits]

Targets (issue 6), nats per image on the digits test split: PixelCNN <= 88, RealNVP or Glow <= 115;
PixelCNN completions (top half given) classified as the true digit >= 80% of the time by genzoo's
domain classifier. References from the "Deep Generative Modeling" course code on the same split:
autoregressive about 88.7, RealNVP about 124. The flows' numbers are the uniform-dequantization
bound on the discrete likelihood (the standard reported number); PixelCNN's is exact; the DBN's is
an estimate (AIS for log Z, importance-weighted over its recognition weights). VAE and IWAE have
their own script (vae_digits.py). Runs evaluated by earlier invocations stay in the JSON.

`pixelcnn-cond` is the same PixelCNN trained with the training labels (`conditional=true`). Its NLL
is the exact marginal over a uniform label; completing a test digit it is given no label, but draws
one from its own p(label | top half) and then the bottom half given both (mode-seeking: it takes
the most probable label instead).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from common import earlier_runs, half_completions, logged_train_seconds, save, train_unless_reused

from genzoo.data import load_dataset
from genzoo.evaluation import evaluate_run
from genzoo.models import get_model_class

RUNS = {  # benchmark name -> (genzoo model, its preset or None for the defaults)
    "pixelcnn": ("pixelcnn", None),
    "pixelcnn-cond": ("pixelcnn", "conditional"),
    "glow": ("glow", None),
    "realnvp": ("realnvp", None),
    "dbn": ("dbn", None),
}
REFERENCE = {"pixelcnn": 88.7, "realnvp": 124.0, "glow": 124.0}
TARGET = {"pixelcnn": 88.0, "realnvp": 115.0, "glow": 115.0}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", default=list(RUNS), choices=list(RUNS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reuse", action="store_true", help="evaluate existing runs instead of retraining")
    parser.add_argument("--n-complete", type=int, default=447, help="test digits completed (447: all)")
    parser.add_argument("--sampling-seeds", type=int, nargs="+", default=[0, 1, 2], help="of the completions")
    parser.add_argument(
        "--candidates",
        type=int,
        default=16,
        help="draws per digit of the unconditional mode-seeking completion",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 suits a shared 2-core CPU)")
    parser.add_argument("--work", type=Path, default=Path("runs/bench-likelihood-digits"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    runs = {}
    for name in args.models:
        model, preset = RUNS[name]
        run = args.work / name
        train_unless_reused(model, "digits", run, {"seed": args.seed}, args.reuse, preset=preset)
        result = {
            "model": model,
            "preset": preset,
            "settings": get_model_class(model).preset(preset).settings if preset else {},
            "seed": args.seed,
            "train_seconds": logged_train_seconds(run),
            "target_nll": TARGET.get(model),
            "reference_nll": REFERENCE.get(model),
            **evaluate_run(run, split="test", metrics=["nll"]),
        }
        if model == "pixelcnn":
            result["completion"] = half_completions(
                run,
                load_dataset("digits"),
                args.n_complete,
                args.sampling_seeds,
                args.candidates,
                f"likelihood_digits_{name}_completions",
            )
        runs[name] = result
        print(result, flush=True)
    save(
        "likelihood_digits",
        {
            "command": "genzoo train MODEL --data digits --out R --seed S [--set conditional=true]; "
            "genzoo evaluate R --split test --metrics nll",
            "reference": "Deep Generative Modeling course code, same split: autoregressive 88.7, RealNVP 124",
            "runs": {**earlier_runs("likelihood_digits"), **runs},
        },
    )


if __name__ == "__main__":
    main()

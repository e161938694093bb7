"""Issue 4's evidence on digits: FID of real vs real beside FID of real vs VAE samples,
every metric on one run with its wall time, and the same numbers twice for one seed.

    python benchmarks/eval_digits.py [--run runs/bench-vae-digits/dropout0.1-mixtures1-seed0]

The run defaults to the one benchmarks/vae_digits.py trains at dropout 0.1, one mixture, seed 0
(trained here with the same settings if missing).
The domain classifier is trained once and cached (GENZOO_CACHE, default ~/.cache/genzoo).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from common import save

from genzoo.data import load_dataset
from genzoo.evaluation import evaluate_run
from genzoo.metrics import (
    classifier_cache_dir,
    domain_classifier_for,
    frechet_distance,
    kernel_inception_distance,
)
from genzoo.train import train

ALL = ["nll", "fid", "kid", "is", "precision", "recall", "density", "coverage", "classes", "memorization"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", type=Path, default=Path("runs/bench-vae-digits/dropout0.1-mixtures1-seed0"))
    parser.add_argument("--num-samples", type=int, default=1000)
    args = parser.parse_args()
    if not (args.run / "model.safetensors").exists():
        train("vae", "digits", args.run, {"seed": 0, "eval_every": 100}, quiet=True)

    data = load_dataset("digits")
    start = time.perf_counter()
    classifier = domain_classifier_for(data, classifier_cache_dir())
    classifier_seconds = time.perf_counter() - start
    feats = {s: classifier.features(data.split(s).tensors[0]) for s in ("train", "val", "test")}
    real = {
        "fid_train_vs_test": frechet_distance(feats["train"], feats["test"]),
        "fid_val_vs_test": frechet_distance(feats["val"], feats["test"]),
        "kid_train_vs_test": kernel_inception_distance(feats["train"], feats["test"], subset_size=400)[0],
    }

    start = time.perf_counter()
    first = evaluate_run(args.run, split="test", metrics=ALL, num_samples=args.num_samples, seed=0)
    seconds = time.perf_counter() - start
    second = evaluate_run(args.run, split="test", metrics=ALL, num_samples=args.num_samples, seed=0)
    save(
        "eval_digits",
        {
            "command": f"genzoo evaluate {args.run} --split test --metrics {','.join(ALL)} "
            f"--num-samples {args.num_samples} --json",
            "feature_extractor": first["feature_extractor"],
            "classifier": classifier.config.info,
            "classifier_seconds_first_use": round(classifier_seconds, 1),
            "real_vs_real": real,
            "vae_samples_vs_test": first,
            "evaluate_seconds_all_metrics": round(seconds, 1),
            "identical_on_rerun": first == second,
        },
    )


if __name__ == "__main__":
    main()

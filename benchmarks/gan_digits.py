"""GANs on digits: class coverage of unconditional samples and label accuracy of conditional ones.

    python benchmarks/gan_digits.py [--models dcgan sngan] [--seed 0] [--work runs/bench-gan-digits] [--reuse]

Targets (issue 5): unconditional samples hit all 10 classes, each between 5% and 15% of 1000
samples; conditional samples drawn with label k are classified as k at least 90% of the time.
Samples are judged by genzoo's domain classifier trained on the real training split, and their
FID is measured in its feature space against the test split.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from common import logged_train_seconds, save, save_grid, train_unless_reused

from genzoo.data import load_dataset
from genzoo.metrics import class_coverage, classifier_cache_dir, domain_classifier_for, frechet_distance
from genzoo.models import load

# No settings but the seed and conditional: DCGAN picks its own for small images (narrow nets, lr
# 2e-4, R1, batch 64, EMA, 6000 steps, and packing 2 when unconditional: a conditional generator is
# told which class to draw), as `genzoo train dcgan --data digits` does.


def train_or_reuse(name: str, settings: dict, run: Path, reuse: bool) -> float | None:
    """Train (unless reusing a finished run); the training seconds either way."""
    train_unless_reused(name, "digits", run, settings, reuse)
    return logged_train_seconds(run)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", default=["dcgan"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n", type=int, default=1000, help="unconditional samples")
    parser.add_argument("--n-cond", type=int, default=100, help="conditional samples per class")
    parser.add_argument("--work", type=Path, default=Path("runs/bench-gan-digits"))
    parser.add_argument("--reuse", action="store_true", help="evaluate existing runs instead of retraining")
    args = parser.parse_args()
    torch.set_num_threads(1)  # small nets: more threads only add overhead on a shared 2-core CPU
    data = load_dataset("digits")
    classifier = domain_classifier_for(data, classifier_cache_dir())
    x_test = data.split("test").tensors[0]
    real_features = classifier.features(x_test)
    generator = lambda: torch.Generator().manual_seed(args.seed)  # noqa: E731
    results = []
    for name in args.models:
        for conditional in (False, True):
            run = args.work / f"{name}{'-cond' if conditional else ''}"
            settings = {"seed": args.seed, "conditional": conditional}
            seconds = train_or_reuse(name, settings, run, args.reuse)
            model = load(run)
            samples = model.sample(args.n, generator=generator())
            save_grid(f"gan_digits_{run.name}", samples[:100], 0, 16, ncol=10)
            coverage = class_coverage(classifier.predict(samples), 10)
            shares = coverage["class_shares"]
            result = {
                "model": name,
                "conditional": conditional,
                "settings": settings,
                "train_seconds": seconds,
                "fid_classifier": round(frechet_distance(classifier.features(samples), real_features), 3),
                "classes_hit": coverage["classes_hit"],
                "class_shares": [round(s, 3) for s in shares],
                "all_classes_5_to_15_percent": all(0.05 <= s <= 0.15 for s in shares),
            }
            if conditional:
                labels = torch.arange(10).repeat_interleave(args.n_cond)
                drawn = model.sample(len(labels), generator=generator(), label=labels)
                first_ten = drawn.view(10, args.n_cond, *drawn.shape[1:])[:, :10].flatten(0, 1)
                save_grid(f"gan_digits_{run.name}_by_label", first_ten, 0, 16, ncol=10)
                result["label_accuracy"] = round(
                    float((classifier.predict(drawn) == labels).float().mean()), 4
                )
            results.append(result)
            print(result)
    save(
        "gan_digits",
        {
            "command": "genzoo train MODEL --data digits --out R [--set conditional=true]; "
            "genzoo sample R -n 1000 [--label K] --out s.npy",
            "classifier": classifier.config.info,
            "targets": "10 classes, each 5-15% of samples; conditional label accuracy >= 0.9",
            "runs": results,
        },
    )


if __name__ == "__main__":
    main()

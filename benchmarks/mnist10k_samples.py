"""GAN and DDPM samples on MNIST-10k (the t10k file: 8,000 train / 1,000 val / 1,000 test).

    python benchmarks/mnist10k_samples.py [--runs ddpm dcgan dcgan-cond] [--work runs/bench-mnist10k] [--reuse]

Targets (issue 5): unconditional samples hit all 10 classes, each 5%..15% of 1000 samples;
conditional samples drawn with label k are classified as k at least 90% (GAN) and 95%
(diffusion with classifier-free guidance) of the time. The judge is genzoo's domain classifier
trained on the real training split. The models are sized for a 2-core CPU (about an hour of
training for the DDPM), not for the best possible samples.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from common import earlier_runs, logged_train_seconds, save, save_grid, train_unless_reused

from genzoo.data import load_dataset
from genzoo.metrics import class_coverage, classifier_cache_dir, domain_classifier_for, frechet_distance
from genzoo.models import get_model_class, load

# Each run is `genzoo train MODEL --data mnist --preset PRESET` (`genzoo list --presets`). One
# conditional DDPM serves both questions: dropping the label in training (classifier-free guidance)
# makes the same network an unconditional model too. DCGAN's class coverage was still improving at
# 3000 steps (class KL 0.16, 0.09, 0.06 after 1000, 2000, 3000), so it keeps its 6000 for small images.
RUNS = {
    "ddpm": ("ddpm", "mnist10k"),
    "dcgan": ("dcgan", "mnist10k"),
    "dcgan-cond": ("dcgan", "mnist10k-conditional"),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", nargs="+", default=list(RUNS))
    parser.add_argument("--work", type=Path, default=Path("runs/bench-mnist10k"))
    parser.add_argument("--reuse", action="store_true", help="evaluate existing runs instead of retraining")
    parser.add_argument("--n", type=int, default=1000, help="unconditional samples")
    parser.add_argument("--n-cond", type=int, default=50, help="conditional samples per class")
    parser.add_argument("--guidance", type=float, default=2.0, help="classifier-free guidance of the DDPM")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)  # one core per benchmark process leaves the other for a second one
    data = load_dataset("mnist")
    classifier = domain_classifier_for(data, classifier_cache_dir())
    real_features = classifier.features(data.split("test").tensors[0])
    generator = lambda: torch.Generator().manual_seed(args.seed)  # noqa: E731
    results = {}
    for name in args.runs:
        model_name, preset = RUNS[name]
        run = args.work / name
        train_unless_reused(model_name, "mnist", run, {"seed": args.seed}, args.reuse, preset=preset)
        model = load(run)
        is_diffusion = model_name == "ddpm"
        sampling = {"sampler": "ddim", "steps": 50} if is_diffusion else {}
        result = {
            "model": model_name,
            "preset": preset,
            "settings": get_model_class(model_name).preset(preset).settings,
            "train_seconds": logged_train_seconds(run),
        }
        if not model.config.conditional or is_diffusion:
            samples = model.sample(args.n, generator=generator(), **sampling)
            save_grid(f"mnist10k_{name}", samples[:100], 0, 255, ncol=10)
            shares = class_coverage(classifier.predict(samples), 10)["class_shares"]
            result["unconditional"] = {
                "n": len(samples),
                "fid_classifier": round(frechet_distance(classifier.features(samples), real_features), 3),
                "classes_hit": sum(s > 0 for s in shares),
                "class_shares": [round(s, 3) for s in shares],
                "all_classes_5_to_15_percent": all(0.05 <= s <= 0.15 for s in shares),
            }
            print(name, result["unconditional"], flush=True)
        if model.config.conditional:
            labels = torch.arange(10).repeat_interleave(args.n_cond)
            guidance = {"guidance": args.guidance} if is_diffusion else {}
            drawn = model.sample(len(labels), generator=generator(), label=labels, **sampling, **guidance)
            first_ten = drawn.view(10, args.n_cond, *drawn.shape[1:])[:, :10].flatten(0, 1)
            save_grid(f"mnist10k_{name}_by_label", first_ten, 0, 255, ncol=10)
            result["conditional"] = {
                **guidance,
                "n": len(labels),
                "label_accuracy": round(float((classifier.predict(drawn) == labels).float().mean()), 4),
            }
            print(name, result["conditional"], flush=True)
        results[name] = result
    results = {**earlier_runs("mnist10k_samples"), **results}
    save(
        "mnist10k_samples",
        {
            "command": "genzoo train MODEL --data mnist --out R --preset PRESET; "
            "genzoo sample R -n 1000 [--label K --guidance 2] --out s.npy",
            "classifier": classifier.config.info,
            "targets": "10 classes, each 5-15% of samples; label accuracy >= 0.9 (GAN), >= 0.95 (DDPM, guided)",
            "runs": results,
        },
    )


if __name__ == "__main__":
    main()

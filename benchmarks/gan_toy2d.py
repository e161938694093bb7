"""GANs on toy2d-ring (8 Gaussians, std 0.02): modes covered and high-quality share of 1000 samples.

    python benchmarks/gan_toy2d.py [--models dcgan wgan-gp sngan] [--seed 0] [--work runs/bench-gan-toy2d] [--reuse]

Target (issue 5): dcgan and wgan-gp each cover 8/8 modes with >= 80% of 1000 samples within
3 std (0.06) of a mode centre. A deliberately bad configuration ("collapse": a tiny generator
trained with a far too large learning rate) shows the diagnostic firing.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from common import RESULTS, logged_train_seconds, save, train_unless_reused

from genzoo.data import toy2d_modes
from genzoo.metrics import modes_covered
from genzoo.models import load
from genzoo.viz import save_scatter

# No settings: each GAN picks its own for 2-d points (`points_settings` in genzoo/models/gan.py,
# applied by `defaults_for_data`), as `genzoo train MODEL --data toy2d-ring` does.
BAD = {
    "model": "dcgan",
    "settings": {"hidden": [16], "latent_dim": 1, "lr": 0.01, "max_steps": 1000, "eval_every": 200},
}


def monitor_curve(run: Path) -> list[dict]:
    """The collapse monitor's readings at every validation."""
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    curve = [
        {"step": r["step"], "modes": r["val_modes"], "high_quality_share": r["val_high_quality_share"]}
        for r in records
        if "val_modes" in r
    ]
    return curve


def run_one(name: str, settings: dict, run: Path, reuse: bool) -> dict:
    train_unless_reused(name, "toy2d-ring", run, settings, reuse)
    model = load(run)
    curve = monitor_curve(run)
    samples = model.sample(1000, generator=torch.Generator().manual_seed(0))
    RESULTS.mkdir(exist_ok=True)
    save_scatter(samples, RESULTS / f"gan_toy2d_{run.name}.png")
    centers, std = toy2d_modes("toy2d-ring")
    cover = modes_covered(samples, centers, std)
    dist = torch.cdist(samples.double(), centers.double()).min(1).values
    return {
        "model": name,
        "settings": settings,
        "train_seconds": logged_train_seconds(run),
        "monitor": curve,
        "modes": cover["modes"],
        "high_quality_share": round(cover["high_quality_share"], 4),
        "mode_counts": cover["mode_counts"],
        "median_distance_to_mode": round(float(dist.median()), 4),
        "passes": cover["modes"] == 8 and cover["high_quality_share"] >= 0.8,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", default=["dcgan", "wgan-gp", "sngan"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=Path("runs/bench-gan-toy2d"))
    parser.add_argument("--reuse", action="store_true", help="evaluate existing runs instead of retraining")
    parser.add_argument("--no-collapse", action="store_true", help="skip the deliberately bad run")
    args = parser.parse_args()
    torch.set_num_threads(1)  # tiny MLPs: more threads only add overhead on a shared CPU
    results = []
    for name in args.models:
        settings = {"train.seed": args.seed}
        results.append(run_one(name, settings, args.work / name, args.reuse))
        print(results[-1])
    if not args.no_collapse:
        bad = run_one(
            BAD["model"], {**BAD["settings"], "train.seed": args.seed}, args.work / "collapse", args.reuse
        )
        results.append({**bad, "deliberately_bad": True})
        print(results[-1])
    save(
        "gan_toy2d",
        {
            "command": "genzoo train MODEL --data toy2d-ring --out R; genzoo sample R -n 1000 --seed 0",
            "target": "8/8 modes and >= 0.8 of samples within 3 std (0.06) of a mode centre",
            "runs": results,
        },
    )


if __name__ == "__main__":
    main()

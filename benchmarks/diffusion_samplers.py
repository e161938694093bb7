"""DDPM on digits, one trained network, the samplers of genzoo.samplers.SAMPLERS: FID in the digits
domain classifier's features (as `genzoo evaluate --metrics fid`) for DDIM (its default eta 0) and
DPM-Solver++ (ODE and SDE) at 10, 20 and 50 steps, against ancestral DDPM with all 1000 steps; every row from the
same seed and number of samples (so the same x_T). The deterministic samplers also report how far
their images are from the probability-flow ODE's own solution (DDIM with all 1000 steps on the same
x_T), and DPM-Solver++ also runs on DDIM's grid (uniform in the index) to show why its own grid is
uniform in log-SNR.

    python benchmarks/diffusion_samplers.py [--work runs/bench-ddpm-digits] [--reuse] [--samples 1000]

The network is the one benchmarks/diffusion_digits.py trains (same run directory and settings), so
`--reuse` evaluates that run without retraining. Target (issue 22): DPM-Solver++ with 20 steps
within 10% of DDPM-1000's FID.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from common import logged_train_seconds, save, train_unless_reused

from genzoo.data import load_dataset
from genzoo.metrics import classifier_cache_dir, domain_classifier_for, sample_quality
from genzoo.models import load
from genzoo.nn.likelihoods import normal
from genzoo.samplers import dpm_solver_pp_sample

# (sampler, steps, grid): "own" is the sampler's own timesteps; "time" runs DPM-Solver++ on DDIM's
# grid (uniform in the index) instead of its own (uniform in log-SNR), to show why it has its own.
ROWS = [("ddim", 10, "own"), ("ddim", 20, "own"), ("ddim", 50, "own")]
ROWS += [("dpm-solver++", k, "own") for k in (10, 20, 50)]
ROWS += [("sde-dpm-solver++", k, "own") for k in (10, 20, 50)]  # the reverse SDE: noise corrects errors
ROWS += [("ddpm", 1000, "own"), ("ddim", 1000, "own")]  # the reference, then the ODE itself
ROWS += [("dpm-solver++", k, "time") for k in (10, 20, 50)]
EXTRA_SEEDS = 2  # the 10-step DPM-Solver++ rows again with other seeds: how much FID moves by chance


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", type=Path, default=Path("runs/bench-ddpm-digits"))
    parser.add_argument("--reuse", action="store_true", help="evaluate an existing run instead of retraining")
    parser.add_argument("--samples", type=int, default=1000, help="samples drawn by every sampler")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 suits a shared 2-core CPU)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    train_unless_reused("ddpm", "digits", args.work, {"seed": args.seed}, args.reuse)
    model = load(args.work)
    data = load_dataset("digits")
    classifier = domain_classifier_for(data, classifier_cache_dir())
    x_test = data.split("test").tensors[0]

    def draw(sampler: str, steps: int, grid: str, seed: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        if grid == "own":
            return model.sample(args.samples, generator=generator, sampler=sampler, steps=steps)
        # What model.sample does, with the grid chosen: x_T drawn first, from the same seed.
        x_T = normal((args.samples, *model.shape), generator, model.device)
        with torch.no_grad(), model.inference():
            clip = model.config.clip_denoised
            x0 = dpm_solver_pp_sample(model.eps, model.schedule, x_T, steps=steps, clip=clip, spacing=grid)
        return model.rescale.to_data(x0)

    def fid(samples: torch.Tensor) -> float:
        return round(sample_quality(x_test, samples, classifier, ["fid"], seed=args.seed)["fid"], 3)

    rows: dict[str, dict] = {}
    drawn: dict[str, torch.Tensor] = {}
    for sampler, steps, grid in ROWS:
        key = f"{sampler}-{steps}" + ("" if grid == "own" else f"-{grid}-grid")
        start = time.perf_counter()
        samples = draw(sampler, steps, grid, args.seed)
        seconds = time.perf_counter() - start
        label = sampler + ("" if grid == "own" else f" ({grid} grid)")
        rows[key] = {"sampler": label, "steps": steps, "fid": fid(samples), "seconds": round(seconds, 1)}
        if sampler == "dpm-solver++" and steps == 10:
            seeds = range(args.seed + 1, args.seed + 1 + EXTRA_SEEDS)
            rows[key]["fid_other_seeds"] = [fid(draw(sampler, steps, grid, seed)) for seed in seeds]
        drawn[key] = samples
        print(key, rows[key], flush=True)

    reference, ode = rows["ddpm-1000"]["fid"], drawn["ddim-1000"]
    for key, row in rows.items():
        row["fid_ratio_to_ddpm_1000"] = round(row["fid"] / reference, 3)
        if row["sampler"] in ("ddim", "dpm-solver++"):  # deterministic: one image per x_T, as the ODE's
            row["rms_levels_from_ode"] = round(float((drawn[key] - ode).pow(2).mean().sqrt()), 3)

    print(f"\n{'sampler':<26}{'steps':>6}{'FID':>9}{'/ DDPM-1000':>13}{'RMS from ODE':>14}{'seconds':>9}")
    for row in rows.values():
        ode_error = row.get("rms_levels_from_ode", "")
        print(
            f"{row['sampler']:<26}{row['steps']:>6}{row['fid']:>9.2f}{row['fid_ratio_to_ddpm_1000']:>13.3f}"
            f"{ode_error:>14}{row['seconds']:>9.1f}"
        )
    for key, row in rows.items():
        if "fid_other_seeds" in row:
            print(
                f"{key}: FID {row['fid']} with seed {args.seed}, {row['fid_other_seeds']} with the next seeds"
            )
    dpm20 = rows["dpm-solver++-20"]["fid_ratio_to_ddpm_1000"]
    sde20 = rows["sde-dpm-solver++-20"]["fid_ratio_to_ddpm_1000"]
    save(
        "diffusion_samplers",
        {
            "command": f"python benchmarks/diffusion_samplers.py --samples {args.samples} --seed {args.seed}"
            + (" --reuse" if args.reuse else ""),
            "run": str(args.work),
            "train_seconds": logged_train_seconds(args.work),
            "samples": args.samples,
            "samples_note": "every row: the same seed and number of samples (the same x_T); FID against "
            f"the {len(x_test)} test images in the domain classifier's features",
            "feature_extractor": classifier.name,
            "target": "dpm-solver++ at 20 steps within 10% of ddpm-1000's FID",
            "dpm_solver_20_fid_ratio": dpm20,
            "sde_dpm_solver_20_fid_ratio": sde20,
            "target_met": min(dpm20, sde20) <= 1.1,
            "rms_levels_from_ode": "root mean square difference, in the data's 0..16 levels, from ddim-1000 "
            "(eta 0) on the same x_T: the probability-flow ODE solved with 1000 steps",
            "fid_other_seeds": f"the same row with seeds {args.seed + 1}..{args.seed + EXTRA_SEEDS}: "
            "how much FID moves with the draw alone",
            "rows": rows,
            "total_seconds": round(time.perf_counter() - started, 1),
        },
    )


if __name__ == "__main__":
    main()

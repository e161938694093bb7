"""Defaults that work: each model trained with no settings at all, its headline figure beside the
tuned one the README reports.

    python benchmarks/defaults_only.py                       # every case (hours on one core)
    python benchmarks/defaults_only.py --cases dcgan:toy2d-ring sngan:toy2d-grid [--reuse]

Each case is `genzoo train MODEL --data DATA --out R` and `genzoo sample R -n 1000 --seed 0`, nothing
else: the family picks its settings for the data (`defaults_for_data`; the run's model card says
which). Figures: on toy2d-ring and toy2d-grid the modes covered and the share of samples within
3 std of a mode (goal: every mode, >= 80%); on digits each class's share of 1000 samples by the
domain classifier (goal: every class 5-15%). Cases run in separate invocations accumulate in
benchmarks/results/defaults_only.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from common import RESULTS, earlier_runs, logged_train_seconds, save, train_unless_reused

import genzoo
from genzoo.data import load_dataset, toy2d_modes
from genzoo.metrics import class_coverage, classifier_cache_dir, domain_classifier_for, modes_covered
from genzoo.train.run import RunSpec

CASES = [
    *(f"{model}:{data}" for data in ("toy2d-ring", "toy2d-grid") for model in ("dcgan", "wgan-gp", "sngan")),
    "dcgan:digits",
    "ddpm:digits",
]
SAMPLES = 1000


def tuned_figure(model: str, data: str) -> dict | None:
    """What the README reports for the case with tuned settings (the benchmark's JSON), if any."""
    if data == "toy2d-ring":
        runs = _results("gan_toy2d").get("runs", [])
        row = next((r for r in runs if r["model"] == model and not r.get("deliberately_bad")), None)
        return row and {"modes": row["modes"], "high_quality_share": row["high_quality_share"],
                        "settings": row["settings"], "source": "gan_toy2d.json"}  # fmt: skip
    if (model, data) == ("dcgan", "digits"):
        row = next(r for r in _results("gan_digits").get("runs", []) if not r["conditional"])
        return {"class_shares": row["class_shares"], "settings": row["settings"], "source": "gan_digits.json"}
    if (model, data) == ("ddpm", "digits"):
        row = _results("diffusion_digits").get("ddpm_1000")
        return row and {"class_shares": row["class_shares"], "settings": {"conditional": True},
                        "source": "diffusion_digits.json (ddpm_1000)"}  # fmt: skip
    return None


def _results(name: str) -> dict:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def measure(model: str, data: str, run: Path) -> dict:
    samples = genzoo.sample(run, SAMPLES, seed=0, quiet=True)
    spec = RunSpec.read(run)
    row = {
        "train_seconds": logged_train_seconds(run),
        "chosen_for_data": spec.data_defaults,
        "monitor_warnings": [r["warning"] for r in _metrics(run) if "warning" in r],
    }
    modes = toy2d_modes(data)
    if modes is not None:
        cover = modes_covered(samples, *modes)
        total = len(modes[0])
        return {**row, "modes": cover["modes"], "of": total,
                "high_quality_share": round(cover["high_quality_share"], 4),
                "passes": cover["modes"] == total and cover["high_quality_share"] >= 0.8}  # fmt: skip
    dataset = load_dataset(data)
    classifier = domain_classifier_for(dataset, classifier_cache_dir())
    shares = class_coverage(classifier.predict(samples), dataset.info.num_classes)["class_shares"]
    return {**row, "class_shares": [round(s, 3) for s in shares],
            "passes": all(0.05 <= s <= 0.15 for s in shares)}  # fmt: skip


def _metrics(run: Path) -> list[dict]:
    from genzoo.train.trainer import read_metrics

    return read_metrics(run / "metrics.jsonl")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", nargs="+", default=CASES, choices=CASES, metavar="MODEL:DATA")
    parser.add_argument("--work", type=Path, default=Path("runs/bench-defaults"))
    parser.add_argument("--reuse", action="store_true", help="measure finished runs instead of retraining")
    args = parser.parse_args()
    torch.set_num_threads(1)
    runs = {}
    for case in args.cases:
        model, data = case.split(":")
        run = args.work / f"{model}-{data}"
        train_unless_reused(model, data, run, {}, args.reuse)
        runs[case] = {"model": model, "data": data, "defaults_only": measure(model, data, run),
                      "tuned": tuned_figure(model, data)}  # fmt: skip
        print(case, json.dumps(runs[case]), flush=True)
    runs = {**earlier_runs("defaults_only"), **runs}  # read now: another invocation may have saved meanwhile
    save(
        "defaults_only",
        {
            "command": "genzoo train MODEL --data DATA --out R; genzoo sample R -n 1000 --seed 0",
            "goals": "toy2d: every mode and >= 80% of samples within 3 std of one; digits: every class 5-15%",
            "runs": {case: runs[case] for case in CASES if case in runs},
        },
    )


if __name__ == "__main__":
    main()

"""`genzoo compare` on digits with six families, as the README shows it: wall time, the table, the
recommendation, and a screenshot of the report taken by headless Chromium.

    python benchmarks/compare_digits.py [--budget 2m] [--work runs/compare-digits]
    python benchmarks/compare_digits.py --repeat-check vae,dcgan   (after the first)

Target (issue 9): at least six families (VAE, a GAN, DDPM, a flow, PixelCNN, DBN) within 30 minutes
on the 2-core CPU. NLL is measured on the first 100 test digits (a DDPM bound costs 1000 network
calls per digit); sample metrics on all 447 against 1000 samples. `--repeat-check` trains the named
models again from scratch into a second directory with the first run's step counts (`--steps-from`)
and records whether every metric came out identical (timings are measurements and are left out of
that comparison), in compare_digits_repeat.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch
from common import RESULTS, save

from genzoo.cli import main as genzoo

MODELS = "vae,dcgan,ddpm,realnvp,pixelcnn,dbn"
REPEAT_JSON = RESULTS / "compare_digits_repeat.json"
REPEATABLE = (
    "nll",
    "fid",
    "kid",
    "precision",
    "recall",
    "density",
    "coverage",
    "classes_hit",
    "memorized_share",
)


def chromium() -> str | None:
    local = Path(__file__).resolve().parents[1] / ".venv" / "chromium" / "chromium"
    return str(local) if local.is_file() else shutil.which("chromium")


def screenshot(page: Path, out: Path) -> bool:
    browser = chromium()
    if browser is None:
        print("no chromium (run `make chromium`): no screenshot", file=sys.stderr)
        return False
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               "--window-size=1250,2300", f"--screenshot={out}", page.resolve().as_uri()]  # fmt: skip
    return subprocess.run(command, capture_output=True, timeout=120).returncode == 0


def table(results: dict) -> dict:
    """Model -> mean of each key shown in the README table."""
    keys = ("nll", "fid", "precision", "recall", "coverage", "classes_hit", "train_seconds",
            "sample_seconds_per_100", "params", "peak_memory_mb", "steps_done")  # fmt: skip
    return {
        name: {
            "status": s["status"],
            "nll_kind": s["nll_kind"],
            **{k: round(s["metrics"][k]["mean"], 4) for k in keys if k in s["metrics"]},
            **({"reason": s["reason"]} if s["reason"] else {}),
        }
        for name, s in results["models"].items()
    }


def repeat_check(work: Path, models: str, budget: str) -> None:
    """Train `models` again from scratch with the step counts of `work`'s plan; are the metrics identical?"""
    first = json.loads((work / "results.json").read_text())["models"]
    again = work.with_name(work.name + "-repeat")
    shutil.rmtree(again, ignore_errors=True)
    check = ["compare", "--data", "digits", "--models", models, "--steps-from", str(work),
             "--time-budget", budget, "--threads", "1", "--nll-examples", "100", "--out", str(again)]  # fmt: skip
    if genzoo(check) != 0:
        sys.exit("repeat compare failed")
    second = json.loads((again / "results.json").read_text())["models"]
    per_metric = {
        m: {k: second[m]["metrics"].get(k) == first[m]["metrics"].get(k) for k in REPEATABLE} for m in second
    }
    # Models checked by earlier invocations stay in the JSON, so one model can be checked again.
    earlier = json.loads(REPEAT_JSON.read_text()) if REPEAT_JSON.is_file() else {}
    merged = {
        key: {**(earlier[key] if isinstance(earlier.get(key), dict) else {}), **value}
        for key, value in {
            "identical": {m: all(checks.values()) for m, checks in per_metric.items()},
            # A run stopped at its time cap (a busier machine than at calibration) trained fewer steps.
            "time_capped": {m: bool(second[m].get("time_capped")) for m in second},
            "per_metric": per_metric,
            "fid": {
                m: [first[m]["metrics"]["fid"]["mean"], second[m]["metrics"]["fid"]["mean"]] for m in second
            },
            "command": {m: "genzoo " + " ".join(check) for m in second},
        }.items()
    }
    save(REPEAT_JSON.stem, merged)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget", default="2m", help="training time per model")
    parser.add_argument("--models", default=MODELS)
    parser.add_argument("--work", type=Path, default=Path("runs/compare-digits"))
    parser.add_argument(
        "--repeat-check", default="", help="only retrain these models of --work with its steps and compare"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)  # compare's --threads 1 sets the training processes' too
    if args.repeat_check:
        repeat_check(args.work, args.repeat_check, args.budget)
        return
    command = ["compare", "--data", "digits", "--models", args.models, "--time-budget", args.budget,
               "--threads", "1", "--nll-examples", "100", "--out", str(args.work)]  # fmt: skip
    started = time.perf_counter()
    if genzoo(command) != 0:
        sys.exit("compare failed")
    wall = time.perf_counter() - started
    results = json.loads((args.work / "results.json").read_text())
    shot = RESULTS / "compare_digits.png"
    RESULTS.mkdir(exist_ok=True)
    shot_ok = screenshot(args.work / "index.html", shot)
    save(
        "compare_digits",
        {
            "command": "genzoo " + " ".join(command),
            "wall_seconds": round(wall, 1),
            "within_30_minutes": wall <= 1800,
            "families": sorted({s["family"] for s in results["models"].values()}),
            "table": table(results),
            "recommendation": results["recommendation"]["summary"],
            "ranking": {r["model"]: r["reasons"] for r in results["recommendation"]["ranking"]},
            "plan": {e["model"]: e["steps"] for e in results["plan"].values()},
            "screenshot": str(shot.relative_to(RESULTS.parent)) if shot_ok else None,
        },
    )


if __name__ == "__main__":
    main()

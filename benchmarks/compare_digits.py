"""`genzoo compare` on digits with six families, as the README shows it: wall time, the table, the
recommendation, and a screenshot of the report taken by headless Chromium.

    python benchmarks/compare_digits.py [--budget 2m] [--work runs/compare-digits]
    python benchmarks/compare_digits.py --repeat-check vae,dcgan   (after the first)
    python benchmarks/compare_digits.py --reproduce --work runs/reproduce-digits


Target (issue 9): at least six families (VAE, a GAN, DDPM, a flow, PixelCNN, DBN) within 30 minutes
on the 2-core CPU. NLL is measured on the first 100 test digits (a DDPM bound costs 1000 network
calls per digit); sample metrics on all 447 against 1000 samples. `--repeat-check` trains the named
models again from scratch into a second directory with the first run's step counts (`--steps-from`)
and records whether every metric came out identical (timings are measurements and are left out of
that comparison), in compare_digits_repeat.json. `--reproduce` trains all six with the step counts
saved in compare_digits.json (no calibration, so any machine gets them) and checks every metric of
the README table against the saved one, in compare_digits_reproduce.json: a refactor that changes
a published number fails it.
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
SAVED_JSON = RESULTS / "compare_digits.json"
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
    check = [*compare_command(models, budget, again), "--steps-from", str(work)]
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


def compare_command(models: str, budget: str, work: Path) -> list[str]:
    return ["compare", "--data", "digits", "--models", models, "--time-budget", budget,
            "--threads", "1", "--nll-examples", "100", "--out", str(work)]  # fmt: skip


def reproduce(work: Path, budget: str) -> None:
    """Train the six with the saved plan's step counts; is every saved table metric identical?"""
    from genzoo.models import get_model_class
    from genzoo.report.compare import PLAN_FILE, CompareConfig, plan_key
    from genzoo.settings import parse_duration

    saved = json.loads(SAVED_JSON.read_text())
    models = ",".join(saved["plan"])
    command = compare_command(models, budget, work)
    # The plan compare would have calibrated, with the saved step counts (same key: same config).
    config = CompareConfig(data="digits", models=list(saved["plan"]), out=work, threads=1,
                           time_budget=parse_duration(budget))  # fmt: skip
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    plan = {
        plan_key(config, m, dict(get_model_class(m).compare_settings)): {"model": m, "steps": steps}
        for m, steps in saved["plan"].items()
    }
    (work / PLAN_FILE).write_text(json.dumps(plan, indent=1))
    if genzoo(command) != 0:
        sys.exit("compare failed")
    now = table(json.loads((work / "results.json").read_text()))
    repeatable = ("nll", "fid", "precision", "recall", "coverage", "classes_hit", "params", "steps_done")
    per_metric = {
        m: {k: now[m].get(k) == row.get(k) for k in repeatable if k in row}
        for m, row in saved["table"].items()
    }
    save(
        "compare_digits_reproduce",
        {
            "command": "genzoo " + " ".join(command) + "  (plan.json: the saved step counts)",
            "identical": {m: all(checks.values()) for m, checks in per_metric.items()},
            "per_metric": per_metric,
            "saved": {m: {k: saved["table"][m].get(k) for k in repeatable} for m in saved["table"]},
            "now": {m: {k: now[m].get(k) for k in repeatable} for m in now},
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget", default="2m", help="training time per model")
    parser.add_argument("--models", default=MODELS)
    parser.add_argument("--work", type=Path, default=Path("runs/compare-digits"))
    parser.add_argument(
        "--repeat-check", default="", help="only retrain these models of --work with its steps and compare"
    )
    parser.add_argument(
        "--reproduce", action="store_true", help="train with the saved step counts, check the table"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)  # compare's --threads 1 sets the training processes' too
    if args.reproduce:
        reproduce(args.work, args.budget)
        return
    if args.repeat_check:
        repeat_check(args.work, args.repeat_check, args.budget)
        return
    command = compare_command(args.models, args.budget, args.work)
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

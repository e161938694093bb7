"""What every benchmark records beside its numbers: the machine, versions, and where the JSON goes."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import torch

import genzoo

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "genzoo": genzoo.__version__,
        "commit": commit,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def save(name: str, result: dict) -> Path:
    """Write RESULTS/name.json (with the machine) and print it."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {**result, "machine": machine()}
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(json.dumps(payload, indent=2))
    print(f"saved {path}")
    return path


def earlier_runs(name: str) -> dict:
    """The "runs" of RESULTS/name.json, so a script that evaluates a few runs at a time keeps the
    ones earlier (or concurrent) invocations saved."""
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()).get("runs", {}) if path.is_file() else {}


def logged_train_seconds(run: Path) -> float | None:
    """Training wall time the Trainer logged in RUN/metrics.jsonl (carried across resumes), so a
    reused run still reports what it cost."""
    log = run / "metrics.jsonl"
    if not log.is_file():
        return None
    times = [json.loads(line).get("time") for line in log.read_text().splitlines()]
    return max((t for t in times if t is not None), default=None)


def save_grid(name: str, images: torch.Tensor, low: float, high: float, ncol: int) -> Path:
    """Write RESULTS/name.png, a grid of images for the README."""
    from genzoo.viz import save_image_grid

    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.png"
    save_image_grid(images, path, low, high, ncol=ncol)
    return path

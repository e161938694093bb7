"""One `genzoo compare` training in a process of its own (given a JOB.json), so an exception, a
non-finite loss or the kernel's out-of-memory kill ends that run only; its result, or why it
failed, is written beside the run as TRAIN_MARKER (the "done" marker a rerun reuses)."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from genzoo.errors import GenzooError
from genzoo.models.base import atomic_write_text
from genzoo.report.plan import calibrate, steps_settings

TRAIN_MARKER = "compare_train.json"


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def write_json(path: Path, payload: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(payload, indent=2, default=str) + "\n")


def train_job(job: dict[str, Any]) -> dict[str, Any]:
    """What the worker process does: calibrate when no step count is planned, then train."""
    from genzoo.models import get_model_class
    from genzoo.train.run import run_progress, train

    if job.get("threads"):
        torch.set_num_threads(job["threads"])
    model, data, out = job["model"], job["data"], Path(job["out"])
    base = {**job["settings"], "train.seed": job["seed"]}  # dotted: toy2d data have a seed too
    result: dict[str, Any] = {"key": job["key"], "model": model, "seed": job["seed"]}
    steps, calibration = job.get("steps"), None
    if steps is None:
        calibration = calibrate(model, data, base, job["calibration_seconds"], job["device"])
        per_step = calibration["seconds_per_step"]
        steps = max(1, min(calibration["planned_steps"], math.floor(job["time_budget"] / per_step)))
    settings = {**base, **steps_settings(model, steps)}
    if job.get("time_cap"):
        settings["train.time_limit"] = job["time_cap"]
    instance, _ = train(model, data, out, settings, device=job["device"], quiet=job.get("quiet", True))
    progress = run_progress(out)
    result.update(
        status="ok",
        steps=steps,
        steps_done=progress["step"],
        time_capped=progress["step"] < steps,
        calibration=calibration,
        train_seconds=round(progress["elapsed"], 3),
        params=sum(p.numel() for p in instance.parameters()),
        family=get_model_class(model).family,
    )
    if torch.cuda.is_available() and instance.device.type == "cuda":
        result["peak_memory_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return result


def describe_failure(err: BaseException) -> str:
    if isinstance(err, GenzooError):
        return str(err)
    if isinstance(err, MemoryError) or "out of memory" in str(err).lower():
        return f"out of memory ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})"
    first = str(err).splitlines()[0] if str(err) else ""
    return f"{type(err).__name__}: {first}"


def _train_and_mark(job: dict[str, Any]) -> dict[str, Any]:
    """`train_job`, with any failure turned into a result; written as the run's marker."""
    try:
        result = train_job(job)
    except Exception as err:  # every failure is reported, whatever raised it
        result = {"key": job["key"], "model": job["model"], "seed": job["seed"], "status": "failed"}
        result["reason"] = describe_failure(err)
    Path(job["out"]).mkdir(parents=True, exist_ok=True)
    write_json(Path(job["out"]) / TRAIN_MARKER, result)
    return result


def _worker(job_file: str) -> int:
    _train_and_mark(json.loads(Path(job_file).read_text()))
    return 0


def run_worker(job: dict[str, Any], isolate: bool = True) -> dict[str, Any]:
    """Run `train_job` in a child process; its result with the child's peak memory, or why it died.

    `isolate=False` trains in this process instead (no start-up cost, no memory figure, and a crash
    takes the whole command down): for tests and quick looks.
    """
    out = Path(job["out"])
    if out.exists():
        shutil.rmtree(out)  # an unfinished or failed earlier attempt
    out.mkdir(parents=True)
    if not isolate:
        with torch.random.fork_rng(devices=[]):
            return _train_and_mark(job)
    job_file = out / "compare_job.json"
    write_json(job_file, job)
    code = "import sys; from genzoo.report.worker import _worker; sys.exit(_worker(sys.argv[1]))"
    proc = subprocess.Popen([sys.executable, "-c", code, str(job_file)])
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    except KeyboardInterrupt:
        proc.kill()
        proc.wait()
        raise
    proc.returncode = os.waitstatus_to_exitcode(status)
    result = read_json(out / TRAIN_MARKER)
    if proc.returncode != 0 or result is None:
        if proc.returncode < 0:
            reason = f"the training process was killed by signal {-proc.returncode}"
            if -proc.returncode == 9:
                reason += " (most likely out of memory)"
        else:
            reason = f"the training process exited with code {proc.returncode}"
        result = {"key": job["key"], "model": job["model"], "seed": job["seed"], "status": "failed"}
        result["reason"] = reason
    if result["status"] == "ok" and "peak_memory_mb" not in result:
        result["peak_memory_mb"] = round(usage.ru_maxrss / 1024, 1)  # Linux reports KiB
    write_json(out / TRAIN_MARKER, result)
    return result

"""Where `genzoo compare` trains its runs: one after another on this machine (`local`), or as tasks
of a Ray cluster (`ray`, the `distributed` extra), each asking for the CPUs (and GPU) it uses.

A Ray task trains and evaluates its run in a Ray worker process and writes both markers beside it
(compare_train.json, compare_eval.json), as the local worker does; the driver then reads them in
the models' order, so the report is the one the local executor writes. The report directory must
be on a file system every Ray node sees (a local Ray instance always does).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from genzoo.errors import GenzooError
from genzoo.report.worker import run_worker

# compare's evaluation of one run (evaluate_job), handed in: compare imports this module.
Evaluate = Callable[[Path, Any], dict[str, Any]]
EXECUTORS = ("local", "ray")


class LocalExecutor:
    """Each training in a child process of this one (or in this process: `isolate=False`)."""

    where = ""

    def __init__(self, config: Any):
        self.isolate = config.isolate

    def result(self, job: dict[str, Any]) -> dict[str, Any]:
        return run_worker(job, self.isolate)


def _train_and_evaluate(job: dict[str, Any], config: Any, evaluate: Evaluate) -> dict[str, Any]:
    """One Ray task: the local worker's training, then the evaluation the driver would run."""
    trained = run_worker(job, isolate=False)
    if trained["status"] == "ok":
        try:
            evaluate(Path(job["out"]), config)
        except Exception:  # the driver evaluates again (no marker) and reports why it failed
            pass
    return trained


class RayExecutor:
    """Every pending training submitted at once; results collected in order."""

    def __init__(self, config: Any, jobs: list[dict[str, Any]], evaluate: Evaluate):
        import ray  # CompareConfig checked that it is installed

        self.ray = ray
        if not ray.is_initialized():
            try:
                ray.init(address=config.address, include_dashboard=False, log_to_driver=False)
            except (ConnectionError, ValueError, RuntimeError) as err:
                raise GenzooError(
                    f"cannot reach the Ray cluster at '{config.address or 'a new local instance'}' ({err}); "
                    "check --address, or start one with `ray start --head`"
                ) from None
        cpus = max(1, config.threads)
        gpus = 1 if config.device.startswith("cuda") else 0
        task = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=0)(_train_and_evaluate)
        self.futures = {job["key"] + job["out"]: task.remote(job, config, evaluate) for job in jobs}
        self.where = f" as a Ray task ({cpus} CPU{'s' if cpus > 1 else ''}{', 1 GPU' if gpus else ''})"

    def result(self, job: dict[str, Any]) -> dict[str, Any]:
        from genzoo.report.worker import describe_failure

        try:
            return self.ray.get(self.futures[job["key"] + job["out"]])
        except self.ray.exceptions.RayError as err:  # the worker died (killed, out of memory, ...)
            return {"key": job["key"], "model": job["model"], "seed": job["seed"], "status": "failed",
                    "reason": f"Ray task failed: {describe_failure(err)}"}  # fmt: skip


def check_executor(name: str) -> None:
    """A known executor whose library is installed; before anything is written."""
    if name not in EXECUTORS:
        raise GenzooError(f"--executor must be one of {', '.join(EXECUTORS)}, got '{name}'")
    if name == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise GenzooError(
                "--executor ray needs Ray: pip install 'genzoo[distributed]' (or use --executor local)"
            ) from None


def make_executor(config: Any, jobs: list[dict[str, Any]], evaluate: Evaluate) -> LocalExecutor | RayExecutor:
    """The executor config.executor (a CompareConfig) names, given `jobs`, the trainings to run."""
    if config.executor == "ray":
        return RayExecutor(config, jobs, evaluate)
    return LocalExecutor(config)

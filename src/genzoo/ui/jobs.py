"""Long work started from the browser: training runs and comparisons, one at a time per workspace.

Each job is the `genzoo` command itself (`genzoo train ...`, `genzoo compare ...`) in its own
process, so a page calls exactly what the CLI calls, a crash or an out-of-memory kill cannot take
the server down, and "stop" is the Ctrl-C the Trainer already survives: it checkpoints and exits,
and "resume" is `--resume`. Jobs wait in order behind the running one (a queue of bounded length);
their output goes to logs/JOB.log, and progress is read from the run's own metrics.jsonl.
"""

from __future__ import annotations

import collections
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from genzoo.errors import GenzooError
from genzoo.train.run import RunSpec
from genzoo.train.trainer import read_metrics
from genzoo.ui.workspace import Workspace

EXIT_INTERRUPTED = 130  # the CLI's code for a stopped run (it checkpointed first)


@dataclass
class Job:
    """One `genzoo` command: `kind` is "train" or "compare", `name` its run or report folder."""

    kind: str
    name: str
    argv: list[str]
    total_steps: int | None = None
    state: str = "queued"  # queued, running, done, stopped, failed
    message: str = ""
    started: float | None = None
    ended: float | None = None
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def key(self) -> str:
        """How pages name it, and its log's name: "train-NAME" or "compare-NAME"."""
        return f"{self.kind}-{self.name}"


class JobQueue:
    """Runs the workspace's jobs one after another in a background thread."""

    def __init__(self, workspace: Workspace, device: str = "auto"):
        self.workspace = workspace
        self.device = device
        self.jobs: dict[str, Job] = {}  # by key, the latest job of each run or report
        self._waiting: collections.deque[Job] = collections.deque()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._closed = False
        self._thread = threading.Thread(target=self._work, name="genzoo-ui-jobs", daemon=True)
        self._thread.start()

    def submit_training(
        self,
        model: str,
        data: str,
        name: str,
        settings: dict[str, Any],
        *,
        max_steps: int | None = None,
        time_budget: str | None = None,
        seed: int = 0,
        resume: bool = False,
        preset: str | None = None,
    ) -> Job:
        """Queue `genzoo train MODEL --data DATA --out runs/NAME [--preset P]`; settings become `--set` pairs."""
        run = self.workspace.folder("runs", name)
        self._check_idle(f"train-{name}")
        if resume:
            if not (run / "run.json").is_file():
                raise GenzooError(f"there is no run '{name}' to resume; train it first")
            argv = ["train", RunSpec.read(run).model, "--data", RunSpec.read(run).data, "--resume"]
            total = RunSpec.read(run).train_config().max_steps
        else:
            if run.exists():
                raise GenzooError(f"a run named '{name}' exists already; choose another name or resume it")
            argv = ["train", model, "--data", data, "--seed", str(seed)]
            if preset:
                argv += ["--preset", preset]
            for key, value in settings.items():
                argv += ["--set", f"{key}={_yaml(value)}"]
            if time_budget:
                argv += ["--time-budget", time_budget]
            elif max_steps is not None:
                argv += ["--max-steps", str(max_steps)]
            total = max_steps if not time_budget else None
        argv += ["--out", str(run), "--device", self.device, "--quiet"]
        return self._submit(Job("train", name, argv, total_steps=total))

    def submit_compare(self, data: str, models: list[str], name: str, time_budget: str) -> Job:
        """Queue `genzoo compare --data DATA --models ... --out reports/NAME --time-budget T`."""
        report = self.workspace.folder("reports", name)
        self._check_idle(f"compare-{name}")
        if not models:
            raise GenzooError("pick at least one model to compare")
        argv = ["compare", "--data", data, "--models", ",".join(models), "--out", str(report)]
        argv += ["--time-budget", time_budget, "--device", self.device]
        return self._submit(Job("compare", name, argv))

    def _check_idle(self, key: str) -> None:
        current = self.jobs.get(key)
        if current is not None and current.state in ("queued", "running"):
            raise GenzooError(f"'{current.name}' is {current.state} already")

    def _submit(self, job: Job) -> Job:
        with self._lock:
            self._check_idle(job.key)  # again, under the lock: two clicks at once start one job
            if len(self._waiting) >= self.workspace.limits.waiting_jobs:
                raise GenzooError(
                    f"{len(self._waiting)} jobs are waiting already, this server's limit; try again later"
                )
            self.jobs[job.key] = job
            self._waiting.append(job)
            self._wake.notify()
        return job

    def stop(self, key: str) -> str:
        """Stop a job: a waiting one leaves the queue, a running one gets Ctrl-C (it checkpoints)."""
        with self._lock:
            job = self.jobs.get(key)
            if job is None or job.state not in ("queued", "running"):
                raise GenzooError(f"'{key.partition('-')[2]}' is not running")
            if job.state == "queued":
                self._waiting.remove(job)
                job.state, job.message = "stopped", "taken out of the queue before it started"
                return job.message
            job.process.send_signal(signal.SIGINT)
        return "stopping: the run saves a checkpoint, then stops; resume continues from it"

    def status(self, key: str) -> dict[str, Any]:
        """The job's state, its progress (step of total, percent) and its last message."""
        job = self.jobs.get(key)
        if job is None:
            return {"state": "none", "step": None, "total": None, "percent": None, "message": ""}
        step, total = None, job.total_steps
        if job.kind == "train":
            run = self.workspace.folder("runs", job.name)
            records = [r for r in read_metrics(run / "metrics.jsonl") if "split" not in r]
            step = records[-1]["step"] if records else 0
            if total is None and (run / "run.json").is_file():
                total = RunSpec.read(run).train_config().max_steps
            if job.state == "done" and total is None:
                total = step
        percent = None
        if step is not None and total:
            percent = 100.0 if job.state == "done" else min(99.0, 100.0 * step / total)
        position = list(self._waiting).index(job) + 1 if job in self._waiting else None
        return {
            "state": job.state,
            "step": step,
            "total": total,
            "percent": percent,
            "message": job.message or (f"number {position} in the queue" if position else ""),
        }

    def log(self, key: str, lines: int = 20) -> str:
        path = self.workspace.folder("logs", f"{key}.log")
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.is_file() else ""

    def wait(self, key: str, timeout: float) -> dict[str, Any]:
        """Block until the job ends or `timeout` seconds pass; its status."""
        deadline = time.monotonic() + timeout
        while self.jobs[key].state in ("queued", "running") and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.status(key)

    def close(self) -> None:
        """Stop the running job (it checkpoints) and let the worker thread end."""
        with self._lock:
            self._closed = True
            self._waiting.clear()
            running = [j for j in self.jobs.values() if j.state == "running" and j.process is not None]
            self._wake.notify()
        for job in running:
            job.process.send_signal(signal.SIGINT)
            try:
                job.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                job.process.kill()

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._waiting and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                job = self._waiting.popleft()
                log = self.workspace.folder("logs", f"{job.key}.log")
                job.state, job.started = "running", time.time()
                with open(log, "w") as out:
                    job.process = subprocess.Popen(
                        [sys.executable, "-m", "genzoo", *job.argv], stdout=out, stderr=subprocess.STDOUT
                    )
            code = job.process.wait()
            with self._lock:
                job.ended = time.time()
                last = self.log(job.key, lines=1)
                if code == 0:
                    job.state, job.message = "done", last
                elif code == EXIT_INTERRUPTED or job.process.returncode == -signal.SIGINT:
                    job.state, job.message = "stopped", "stopped at its last checkpoint; resume continues"
                else:
                    job.state = "failed"
                    job.message = (
                        last.removeprefix("genzoo: error: ") or f"the process ended with code {code}"
                    )


def _yaml(value: Any) -> str:
    """A setting as `--set` reads it back (YAML scalars and flow lists)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_yaml(v) for v in value) + "]"
    return str(value)

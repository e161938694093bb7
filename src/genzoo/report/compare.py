"""`genzoo compare`: train every model on the same data with the same budget and seeds, measure them
with the same metrics, and write the report (report/html.py) with a recommendation (report/recommend.py).

REPORT_DIR/
  index.html            the report, self-contained (images inline)
  results.json          everything in it, as data (schema in report/schema.md)
  plan.json             steps per model, from the time budget's calibration (reused on reruns)
  runs/MODEL/seedS/     one training run each (genzoo train's layout) plus
      compare_train.json  what training cost, keyed by a hash of its arguments (the "done" marker)
      compare_eval.json   the metrics, keyed by the evaluation's arguments
      synthetic.csv       tables: 2000 synthetic rows, decoded (the report's column plots read them)

Budget and reproducibility. A time budget alone would make the step count, and so every number,
depend on the machine's speed at that moment. So the budget is turned into a step count once per
model: a short timed calibration (report/plan.py) measures seconds per step,
and steps = budget / (seconds per step), at most the family's own default length. plan.json keeps
these counts; a rerun with the same arguments (or `steps_from` another report's plan, or fixed
`max_steps`) trains exactly those steps and reproduces every metric exactly on CPU. Timings
(training seconds, sampling seconds, memory) are measurements and vary from run to run. A run that
overruns 1.5x its budget (a busier machine than at calibration) is stopped there and flagged
`time_capped`: its numbers then depend on the machine. Runs whose steps come from a plan are never
cut short.

Robustness. Each training runs in its own process (report/worker.py, given a JOB.json), so
an exception, a non-finite loss or the kernel's out-of-memory kill ends that run only; it is shown
as failed with its reason and the report is still written. Peak memory is that process's maximum
resident set (CPU) or torch's peak allocation (CUDA). Finished runs are reused when `compare` is
run again with the same arguments; unfinished or failed ones are trained again.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from genzoo.errors import GenzooError
from genzoo.progress import reporting
from genzoo.report.executors import check_executor, make_executor
from genzoo.report.worker import TRAIN_MARKER, describe_failure, read_json, write_json

if TYPE_CHECKING:
    from genzoo.data.tabular import TableSchema
    from genzoo.models.base import GenerativeModel

SCHEMA = "genzoo.compare/1"
EVAL_MARKER = "compare_eval.json"
SYNTHETIC_CSV = "synthetic.csv"
SYNTHETIC_ROWS = 2000  # enough for a histogram per column; the metrics draw their own, larger set
PREVIEW_ROWS = 10
PLAN_FILE = "plan.json"
TIME_CAP = 1.5  # a run stops at this multiple of its budget (and is flagged) if calibration was off
EVAL_GUESS = 30.0  # seconds of start-up and evaluation per run, until the first run has measured them


@dataclass
class CompareConfig:
    data: str
    out: Path
    models: list[str] = field(default_factory=list)
    time_budget: float = 180.0  # training seconds per run (each model, each repeat)
    max_steps: int = 0  # > 0: train every model this many steps instead (no calibration)
    steps_from: Path | None = None  # reuse the step counts of this earlier report's plan.json
    repeats: int = 1  # seeds seed, seed + 1, ...
    seed: int = 0
    priority: str = "quality"
    runs: list[Path] = field(default_factory=list)  # existing run directories to evaluate as well
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)  # model -> {key: value}
    data_options: dict[str, Any] = field(default_factory=dict)  # the dataset's options, for every model
    num_samples: int = 1000  # samples drawn for the sample metrics
    # NLL on the split's first N examples (0 = all): a diffusion bound costs T network calls per example.
    nll_examples: int = 0
    split: str = "test"
    device: str = "auto"  # as the CLI: CUDA, then MPS, then CPU
    threads: int = 0  # torch threads for training and evaluation; 0 = torch's default
    calibration_seconds: float = 0.0  # 0 = 5% of the budget, between 3 and 15 s
    isolate: bool = True  # each training in its own process (see run_worker)
    executor: str = "local"  # "local" (this machine, one run after another) or "ray" (report/executors.py)
    address: str | None = None  # the Ray cluster's address ("auto", "ray://host:10001"); None = a local one
    quiet: bool = False

    def __post_init__(self) -> None:
        from genzoo.report.recommend import PRIORITIES

        self.out = Path(self.out)
        if not self.models and not self.runs:
            raise GenzooError("give --models m1,m2,... or --runs R1,R2,... to compare")
        if len(set(self.models)) != len(self.models):
            raise GenzooError("--models lists a model twice; use --repeats for more seeds")
        if self.repeats < 1:
            raise GenzooError("--repeats must be >= 1")
        if self.time_budget <= 0 and self.max_steps <= 0:
            raise GenzooError("--time-budget must be positive")
        if self.max_steps < 0:
            raise GenzooError("--max-steps must be positive")
        if self.priority not in PRIORITIES:
            raise GenzooError(f"--priority must be one of {', '.join(PRIORITIES)}, got '{self.priority}'")
        check_executor(self.executor)
        if self.num_samples < 2:
            raise GenzooError("--num-samples must be at least 2")
        unknown = set(self.settings) - set(self.models)
        if unknown:
            raise GenzooError(f"--set names model '{sorted(unknown)[0]}', which is not in --models")


def _hash(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


# ---- evaluation, in this process ------------------------------------------------------------
def metric_names(model_cls: type, info: Any) -> list[str]:
    """The same metrics for every model, plus nll where the family has one; class coverage through
    the domain classifier for labelled images, mode coverage for the Gaussian-mixture toys.
    Table models get the table metrics instead (no nll: a mixed discrete/continuous row has no
    density in its units), with ML efficacy when the data name a target column to predict."""
    from genzoo.data.tabular import TableSchema
    from genzoo.data.toy2d import toy2d_modes

    if model_cls.output == "table":
        target = TableSchema.from_json(info.table).target if info.table else None
        return ["quality", "detection", "privacy"] + (["ml_efficacy"] if target else [])
    names = ["fid", "kid", "precision", "recall", "density", "coverage", "memorization"]
    if model_cls.log_prob_kind is not None:
        names.insert(0, "nll")
    if info.modality == "image" and info.num_classes >= 2:
        names.append("classes")
    if toy2d_modes(info.name) is not None:
        names.append("modes")
    return names


def evaluate_job(run_dir: Path, config: CompareConfig) -> dict[str, Any]:
    """Metrics, sampling time per 100 samples and a preview for one run (cached by key): 64 samples
    for a grid, or for a table the first rows of SYNTHETIC_CSV, which is written beside them."""
    from genzoo.evaluation import evaluate_model
    from genzoo.train.run import load_run

    key = _hash(
        {"split": config.split, "n": config.num_samples, "nll_n": config.nll_examples, "seed": config.seed,
         "v": SCHEMA}
    )  # fmt: skip
    cached = read_json(run_dir / EVAL_MARKER)
    csv = (cached or {}).get("synthetic_csv")
    if cached and cached.get("key") == key and (csv is None or (run_dir / csv).is_file()):
        return cached
    model, spec = load_run(run_dir, device=config.device)
    data = spec.load_data()
    names = metric_names(type(model), data.info)
    started = time.perf_counter()
    options = {"split": config.split, "seed": config.seed, "num_samples": config.num_samples}
    metrics = evaluate_model(model, data, metrics=[m for m in names if m != "nll"], **options)
    if "nll" in names:
        metrics.update(
            evaluate_model(model, _first(data, config.split, config.nll_examples), metrics=["nll"], **options)
        )
        metrics["nll_n"] = metrics.pop("n")
        metrics["n"] = len(data.split(config.split))
    eval_seconds = time.perf_counter() - started
    generator = torch.Generator(device=model.device).manual_seed(config.seed)
    with torch.random.fork_rng(devices=[]):
        started = time.perf_counter()
        samples = model.sample(100, generator=generator).cpu()
        sample_seconds = time.perf_counter() - started
    if model.output == "table":
        preview = _synthetic_table(model, data.schema, run_dir / SYNTHETIC_CSV, config.seed)
        extra: dict[str, Any] = {"preview": preview, "synthetic_csv": SYNTHETIC_CSV}
    else:
        extra = {"preview": samples[:64].tolist()}
    shares = metrics.get("class_shares")
    result = {
        "key": key,
        "metrics": metrics,
        "missing_classes": [c for c, s in enumerate(shares) if s == 0] if shares else [],
        "sample_seconds_per_100": round(sample_seconds, 4),
        "eval_seconds": round(eval_seconds, 2),
        "params": sum(p.numel() for p in model.parameters()),
        **extra,
    }
    write_json(run_dir / EVAL_MARKER, result)
    return result


def _synthetic_table(
    model: GenerativeModel, schema: TableSchema, path: Path, seed: int
) -> list[dict[str, Any]]:
    """Write SYNTHETIC_ROWS decoded rows (seeded) to `path`; the first of them as JSON records."""
    generator = torch.Generator(device=model.device).manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        frame = schema.decode(model.sample(SYNTHETIC_ROWS, generator=generator).cpu())
    frame.to_csv(path, index=False)
    # pandas writes NaN and <NA> as null and numpy scalars and dates as plain JSON values.
    return json.loads(frame.head(PREVIEW_ROWS).to_json(orient="records", date_format="iso"))


def _first(data: Any, split: str, n: int) -> Any:
    """`data` with `split` cut to its first `n` examples (all when n is 0)."""
    from genzoo.data.base import Dataset

    if not n:
        return data
    parts = {name: data.split(name).tensors for name in data.split_names}
    x, y = parts[split]
    return Dataset(data.info, {**parts, split: (x[:n], y[:n])})


# ---- the whole comparison -------------------------------------------------------------------
class Stages:
    """One line per stage on stderr, with how long the rest should take."""

    def __init__(self, total_jobs: int, budget: float, quiet: bool):
        self.left_jobs, self.budget, self.quiet = total_jobs, budget, quiet
        self.job_times: list[float] = []  # wall seconds of each job trained and evaluated here
        self.started = time.perf_counter()

    def job_done(self, trained: bool) -> None:
        if trained:  # a reused run costs nothing and would pull the estimate down
            self.job_times.append(time.perf_counter() - self.started)
        self.started = time.perf_counter()
        self.left_jobs -= 1

    def remaining(self) -> float:
        # A model that finishes its default steps early says little about the next one, which may
        # use its whole budget: never count less than the budget per job.
        if not self.job_times:
            return self.left_jobs * (self.budget + EVAL_GUESS)
        return self.left_jobs * max(sum(self.job_times) / len(self.job_times), self.budget)

    def say(self, text: str) -> None:
        if not self.quiet:
            print(f"[compare] {text} (about {_duration(self.remaining())} left)", file=sys.stderr, flush=True)


def plan_key(config: CompareConfig, model: str, settings: dict[str, Any]) -> str:
    return _hash(
        {"data": config.data, "model": model, "settings": settings, "budget": config.time_budget,
         "device": config.device, "threads": config.threads}
    )  # fmt: skip


def compare(data: str, models: list[str] | str, out: str | Path, **options: Any) -> dict[str, Any]:
    """Train `models` on `data` alike, evaluate them, write the report into `out`; returns what
    results.json holds. `options` are `CompareConfig`'s fields (time_budget, max_steps, repeats, ...).

    >>> genzoo.compare("digits", "vae,pixelcnn", "report/", time_budget=120)  # doctest: +SKIP
    """
    if isinstance(models, str):
        models = [m.strip() for m in models.split(",") if m.strip()]
    return run_compare(CompareConfig(data=data, models=models, out=Path(out), **options))


def run_compare(config: CompareConfig) -> dict[str, Any]:
    """Train (or reuse), evaluate and report; returns what results.json holds."""
    threads = torch.get_num_threads()
    if config.threads:
        # Evaluation runs here: a busy CPU shared by more threads than cores slows torch manyfold.
        torch.set_num_threads(config.threads)
    try:
        return _run_compare(config)
    finally:
        torch.set_num_threads(threads)


def _run_compare(config: CompareConfig) -> dict[str, Any]:
    from genzoo.data import load_dataset
    from genzoo.models import get_model_class

    started = time.perf_counter()
    # An unknown dataset fails first; a CSV loads as what the models read (a table, or a series).
    prefer = tuple(m for name in config.models for m in get_model_class(name).modalities)
    dataset = load_dataset(config.data, prefer=prefer, **config.data_options)
    existing = _check_inputs(config)  # and so does every other input: before any training starts
    config.out.mkdir(parents=True, exist_ok=True)
    plan_path = config.out / PLAN_FILE
    plan = read_json(plan_path) or {}
    if config.steps_from is not None:
        earlier = read_json(Path(config.steps_from) / PLAN_FILE)
        if earlier is None:
            raise GenzooError(
                f"'{config.steps_from}' has no readable {PLAN_FILE}; give an earlier compare's --out"
            )
        plan.update(earlier)

    pairs = [(m, config.seed + r) for m in config.models for r in range(config.repeats)]
    budget = config.time_budget if not config.max_steps else 0.0
    progress = Stages(len(pairs) + len(config.runs), budget, config.quiet)
    jobs = [_job(config, model, seed, plan) for model, seed in pairs]
    finished = [_finished(job) for job in jobs]
    pending = [job for job, done in zip(jobs, finished, strict=True) if done is None]
    executor = make_executor(config, pending, evaluate_job)
    records: list[dict[str, Any]] = []
    for i, (job, done) in enumerate(zip(jobs, finished, strict=True)):
        model, seed, steps, run_dir = job["model"], job["seed"], job["steps"], Path(job["out"])
        if done is not None:
            progress.say(f"{i + 1}/{len(jobs)} {model} seed {seed}: reusing the finished run")
            trained, reused = done, True
        else:
            what = f"{steps} steps" if steps else f"calibrating, then {_duration(config.time_budget)}"
            progress.say(f"{i + 1}/{len(jobs)} training {model} seed {seed} ({what}){executor.where}")
            trained, reused = executor.result(job), False
            if trained["status"] == "ok" and steps is None:
                plan[job["plan_key"]] = {
                    "model": model,
                    "steps": trained["steps"],
                    "calibration": trained["calibration"],
                }
                write_json(plan_path, plan)
        records.append(_evaluate(trained, run_dir, config, progress))
        progress.job_done(trained=not reused)

    for run, spec in existing:
        trained = _existing_run(Path(run), spec.model)
        records.append(_evaluate(trained, Path(run), config, progress))
        progress.job_done(trained=False)
    return _write_results(config, dataset, records, plan, started, progress)


def _job(config: CompareConfig, model: str, seed: int, plan: dict[str, Any]) -> dict[str, Any]:
    """What one training is asked to do (JOB.json for the worker, a task for Ray), with its key."""
    from genzoo.models import get_model_class

    settings = {
        **get_model_class(model).compare_settings,
        **config.settings.get(model, {}),
        **{f"data.{k}": v for k, v in config.data_options.items()},
    }
    pkey = plan_key(config, model, settings)
    steps = config.max_steps or (plan.get(pkey) or {}).get("steps")
    run_dir = config.out / "runs" / model / f"seed{seed}"
    job = {
        "model": model,
        "data": config.data,
        "seed": seed,
        "settings": settings,
        "steps": steps,
        "time_budget": config.time_budget,
        # Only a run calibrated just now can have been misjudged; planned steps (a rerun,
        # --steps-from) are trained to the end, so they reproduce on any machine.
        "time_cap": round(TIME_CAP * config.time_budget, 1) if steps is None else 0,
        "calibration_seconds": config.calibration_seconds or min(15.0, max(3.0, 0.05 * config.time_budget)),
        "device": config.device,
        "threads": config.threads,
        "out": str(run_dir),
        "quiet": config.quiet,
    }
    # The key leaves out the step count (a run that calibrated has none in its job, only in its
    # result) and the time cap (a guard, not a setting).
    job["key"] = _hash(
        {
            k: v
            for k, v in job.items()
            if k not in ("steps", "quiet", "out", "calibration_seconds", "time_cap")
        }
    )
    job["plan_key"] = pkey
    return job


def _finished(job: dict[str, Any]) -> dict[str, Any] | None:
    """The result of this very training when an earlier compare finished it, else None."""
    done = read_json(Path(job["out"]) / TRAIN_MARKER) or {}
    same = (done.get("key"), done.get("status"), done.get("steps")) == (job["key"], "ok", job["steps"])
    return done if job["steps"] and same else None


def _write_results(
    config: CompareConfig,
    dataset: Any,
    records: list[dict[str, Any]],
    plan: dict[str, Any],
    started: float,
    progress: Stages,
) -> dict[str, Any]:
    from genzoo.report.html import write_report

    results = {
        "schema": SCHEMA,
        "config": {**asdict(config), "out": str(config.out)},
        "data": {**dataset.info.to_dict(), "split": config.split},
        "models": summarize(records, dataset.info.num_classes),
        "runs": [{k: v for k, v in r.items() if k != "preview"} for r in records],
        "plan": plan,
    }
    from genzoo.report.recommend import recommend

    results["recommendation"] = recommend(results["models"], config.priority)
    results["total_seconds"] = round(time.perf_counter() - started, 1)
    write_json(config.out / "results.json", results)
    # A table report plots each column of the synthetic rows against the rows the models learned from.
    real_rows = dataset.split("train").tensors[0].numpy() if dataset.info.modality == "table" else None
    previews = {r["run_dir"]: r.get("preview") for r in records}
    write_report(results, previews, config.out / "index.html", real_rows=real_rows)
    progress.left_jobs = 0
    progress.say(f"wrote {config.out / 'index.html'} and results.json")
    return results


def _check_inputs(config: CompareConfig) -> list[tuple[Path, Any]]:
    """Every model's settings routed and validated, every --runs directory read; the runs' specs."""
    from genzoo.models import get_model_class
    from genzoo.settings import route
    from genzoo.train.run import RunSpec, run_progress, setting_fields

    for model in config.models:
        get_model_class(model)
        settings = {**get_model_class(model).compare_settings, **config.settings.get(model, {})}
        routed = route(settings, setting_fields(model, config.data))
        RunSpec(model, config.data, {}, routed["model"], routed["train"]).train_config()
    existing = []
    for run in config.runs:
        spec = RunSpec.read(run)
        get_model_class(spec.model)
        if spec.data != config.data:
            raise GenzooError(
                f"run '{run}' was trained on '{spec.data}', not '{config.data}'; compare like with like"
            )
        if not (Path(run) / "model.safetensors").is_file():
            raise GenzooError(f"run '{run}' has no model.safetensors yet; let its training finish first")
        run_progress(run)  # a checkpoint that cannot be read fails here, not after the trainings
        existing.append((Path(run), spec))
    return existing


def _existing_run(run: Path, model: str) -> dict[str, Any]:
    """A run given with --runs: its training cost as far as its logs tell (no memory figure)."""
    from genzoo.models import get_model_class
    from genzoo.train.run import run_progress

    result: dict[str, Any] = {"model": model, "seed": None, "status": "ok", "reused": True}
    result["family"] = get_model_class(model).family
    progress = run_progress(run)
    if progress is not None:
        steps = progress["step"]
        result.update(steps=steps, steps_done=steps, train_seconds=round(progress["elapsed"], 3))
        result["seed"] = progress["seed"]
    return result


def _evaluate(trained: dict[str, Any], run_dir: Path, config: CompareConfig, progress: Stages) -> dict:
    record = {k: v for k, v in trained.items() if k != "key"}
    record["run_dir"] = str(run_dir)
    if trained["status"] != "ok":
        progress.say(f"{trained['model']} seed {trained['seed']} failed: {trained['reason']}")
        return record
    progress.say(f"evaluating {trained['model']} seed {trained['seed']}")
    try:
        with reporting(f"[compare] evaluate {trained['model']}", config.quiet):
            evaluated = evaluate_job(run_dir, config)
    except Exception as err:  # a model that trains but cannot be measured is still shown
        record.update(status="failed", reason=f"evaluation: {describe_failure(err)}")
        return record
    record.update({k: v for k, v in evaluated.items() if k != "key"})
    return record


# Keys of the summary table: run-level measurements, then metrics from `evaluate`.
RUN_KEYS = ("train_seconds", "sample_seconds_per_100", "params", "peak_memory_mb", "steps_done")
METRIC_KEYS = (
    "nll", "fid", "kid", "precision", "recall", "density", "coverage", "classes_hit", "class_kl",
    "modes", "memorized_share",
    # tables (genzoo.metrics.tabular)
    "quality_score", "column_shapes", "column_pair_trends", "detection_auc", "detection_score",
    "ml_efficacy", "real_score", "synthetic_score", "dcr_share", "exact_copy_rate", "mia_auc",
)  # fmt: skip


def summarize(records: list[dict[str, Any]], num_classes: int) -> dict[str, dict[str, Any]]:
    """Per model: mean, std (ddof 1; 0 for one repeat) and values of every key over its repeats."""
    from genzoo.models import get_model_class

    out: dict[str, dict[str, Any]] = {}
    for name in dict.fromkeys(r["model"] for r in records):
        mine = [r for r in records if r["model"] == name]
        ok = [r for r in mine if r["status"] == "ok"]
        cls = get_model_class(name)
        summary: dict[str, Any] = {
            "family": cls.family,
            "output": cls.output,
            "nll_kind": cls.log_prob_kind,
            "num_classes": num_classes,
            "status": "ok" if len(ok) == len(mine) else ("failed" if not ok else "partial"),
            "repeats": len(mine),
            "repeats_ok": len(ok),
            "failures": [f"seed {r['seed']}: {r['reason']}" for r in mine if r["status"] != "ok"],
            "reason": next((r["reason"] for r in mine if r["status"] != "ok"), None),
            "missing_classes": sorted({c for r in ok for c in r.get("missing_classes", [])}),
            "time_capped": any(r.get("time_capped") for r in ok),
            "metrics": {},
        }
        for key in (*RUN_KEYS, *METRIC_KEYS):
            values = [
                float(v)
                for r in ok
                if (v := r.get(key, r.get("metrics", {}).get(key))) is not None and not isinstance(v, bool)
            ]
            if values:
                mean = sum(values) / len(values)
                var = sum((v - mean) ** 2 for v in values) / (len(values) - 1) if len(values) > 1 else 0.0
                summary["metrics"][key] = {"mean": mean, "std": math.sqrt(var), "values": values}
        # What ml_efficacy's scores are (f1, macro_f1 or r2 of the target), for the sentences about them.
        scored = next((r["metrics"] for r in ok if "ml_efficacy" in r.get("metrics", {})), None)
        if scored:
            summary["ml_metric"] = {"metric": scored["metric"], "target": scored.get("target")}
        out[name] = summary
    return out

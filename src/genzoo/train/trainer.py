"""One training loop for every family.

The Trainer knows nothing about the model beyond the contract: `phases()` says which
optimizers to build, `loss(batch, phase=...)` gives what each minimises (a model with no phases,
fitted entirely in `prepare`, trains 0 steps and is validated and saved as any other). Everything
that decides the trajectory (weights, optimizer moments, RNG, step) is checkpointed
so a stopped run resumed with `resume=True` ends bit-identical to an uninterrupted one.
With `keep_best`, model.safetensors holds the weights of the best validation instead of the
last step; trainer_state.pt keeps both.

Faults: Ctrl-C and SIGTERM are deferred to the end of the current step, which is then
checkpointed (a second signal stops at once, keeping the last checkpoint); a divergence abort
saves nothing, so the last good checkpoint stays as it was; on resume, metrics.jsonl loses the
lines logged after the checkpoint, so a kill -9 leaves no duplicate steps.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import signal
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch

from genzoo.data.base import Dataset
from genzoo.errors import GenzooError, first_line
from genzoo.models.base import GenerativeModel, Phase, atomic_write_text
from genzoo.progress import Progress
from genzoo.train.config import TrainConfig
from genzoo.train.device import resolve_device
from genzoo.train.distributed import (
    SINGLE,
    World,
    any_rank,
    broadcast_weights,
    max_over_ranks,
    mean_logs,
    shard,
    shard_seed,
    sum_gradients,
)
from genzoo.train.ema import EMA
from genzoo.train.monitor import SampleMonitor
from genzoo.train.schedule import lr_factor

STATE_FILE = "trainer_state.pt"
METRICS_FILE = "metrics.jsonl"


class Trainer:
    def __init__(
        self,
        model: GenerativeModel,
        data: Dataset,
        config: TrainConfig,
        out_dir: str | Path,
        *,
        device: str = "auto",
        quiet: bool = False,
        monitor: SampleMonitor | None = None,
        world: World = SINGLE,
    ):
        self.device = resolve_device(device)
        self.world = world  # under torchrun: this process's rank; only rank 0 writes files
        self.model = model.to(self.device)
        self.data = data
        self.config = config
        self.out_dir = Path(out_dir)
        self.quiet = quiet
        self.monitor = monitor  # sample diagnostics logged with every validation
        self.train_set = data.split("train")
        self.val_set = data.split("val") if "val" in data.split_names else None
        if len(self.train_set) == 0:
            raise GenzooError(f"dataset '{data.info.name}' has an empty training split")
        broadcast_weights(self.model, world)
        # Several shards a step (processes, or grad_accum): each shard's noise seeded by its place.
        self.seeded_shards = world.size * config.grad_accum > 1
        self.phases: list[Phase] = model.phases()
        self.batches_per_step = sum(p.repeats for p in self.phases) * config.grad_accum
        self.optimizers = [self._make_optimizer(p) for p in self.phases]
        self.ema = EMA(model, config.ema_decay) if config.ema_decay > 0 else None
        # fp16: losses scaled up before backward so small gradients do not underflow; a step whose
        # gradients overflowed is skipped and the scale lowered (the scaler's own bookkeeping).
        self.scaler = torch.amp.GradScaler(self.device.type) if config.precision == "fp16" else None
        self.step = 0
        self.elapsed = 0.0  # training seconds, summed over resumed sessions
        self.nonfinite_in_a_row = 0
        self.nonfinite_total = 0
        self.best: dict[str, Any] | None = None  # {"step", "val_loss", "state"} under keep_best
        self.checkpoint_step: int | None = None  # the step trainer_state.pt holds, once there is one
        self.stop_signal: str | None = None  # a deferred SIGINT/SIGTERM, acted on at the step's end
        self.total_steps = self._total_steps()
        self._epoch_order: tuple[int, torch.Tensor | None] = (-1, None)  # (epoch, its permutation)

    # ---- setup ----------------------------------------------------------------------
    def _make_optimizer(self, phase: Phase) -> torch.optim.Optimizer:
        # No weight decay on biases and norm gains (1-d tensors), as is usual for AdamW, nor on
        # what the model exempts (embeddings).
        exempt = {id(p) for p in self.model.no_weight_decay()}
        decay = [p for p in phase.parameters if p.dim() >= 2 and id(p) not in exempt]
        no_decay = [p for p in phase.parameters if p.dim() < 2 or id(p) in exempt]
        groups = [
            {"params": decay, "weight_decay": self.config.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        # Fused: one kernel for all parameters instead of a dozen small ops each; the optimizer step
        # of a small model was a third of its training step (issue 27; 3-6x faster steps on CPU).
        return torch.optim.AdamW(
            [g for g in groups if g["params"]],
            lr=self.config.lr * phase.lr_scale,
            betas=self.config.betas,
            fused=self.device.type in ("cpu", "cuda"),
        )

    def _steps_per_epoch(self) -> int:
        return math.ceil(len(self.train_set) / self.config.batch_size)

    def _total_steps(self) -> int:
        if not self.phases:  # nothing to optimise (all fitted in `prepare`, as a copula): 0 steps
            return 0
        if self.config.epochs > 0:
            return max(1, round(self.config.epochs * self._steps_per_epoch() / self.batches_per_step))
        return self.config.max_steps

    # ---- data -----------------------------------------------------------------------
    def _batch(self, index: int) -> tuple[torch.Tensor, ...]:
        """Batch number `index` of training: a pure function of (seed, index), so resuming needs no state.

        Each epoch draws a fresh permutation from a generator seeded by (seed, epoch).
        """
        per_epoch = self._steps_per_epoch()
        epoch, position = divmod(index, per_epoch)
        if self._epoch_order[0] != epoch:  # one permutation an epoch, not one a step
            generator = torch.Generator().manual_seed(self.config.seed * 1_000_003 + epoch)
            self._epoch_order = (epoch, torch.randperm(len(self.train_set), generator=generator))
        order = self._epoch_order[1]
        rows = order[position * self.config.batch_size : (position + 1) * self.config.batch_size]
        return tuple(t[rows].to(self.device) for t in self.train_set.tensors)

    def _val_batches(self) -> Iterator[tuple[torch.Tensor, ...]]:
        if self.val_set is None:
            return
        size = self.config.batch_size
        for i in range(min(self.config.eval_batches, math.ceil(len(self.val_set) / size))):
            yield tuple(t[i * size : (i + 1) * size].to(self.device) for t in self.val_set.tensors)

    # ---- the loop -------------------------------------------------------------------
    def fit(self, resume: bool = False) -> dict[str, float]:
        """Train until the planned steps are done; returns the last train and val metrics.

        `resume=True` loads trainer_state.pt first (unless `load_checkpoint` already ran).
        """
        if self.world.main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        if resume and self.checkpoint_step is None:
            self.load_checkpoint()
        elif not resume and (self.out_dir / STATE_FILE).exists() and self.world.main:
            raise GenzooError(f"'{self.out_dir}' already holds a run; pass --resume or choose another --out")
        if self.world.main:
            self._drop_metrics_after(self.step)
        writer = _TensorBoard(self.out_dir if self.world.main else None, purge_step=self.step)
        window: dict[str, list[float]] = defaultdict(list)
        last: dict[str, float] = {}
        last_val: dict[str, float] = {}
        # A bar on a terminal, plain lines about every 10% (or 30 s) elsewhere, nothing when quiet.
        progress = Progress(
            self.total_steps,
            f"train {self.model.name}",
            self.quiet or not self.world.main,
            initial=self.step,
            elapsed=self.elapsed,
        )
        started = time.perf_counter() - self.elapsed

        def time_is_up() -> bool:
            return bool(self.config.time_limit) and time.perf_counter() - started >= self.config.time_limit

        with self._deferred_signals(), progress, contextlib.closing(writer):
            # Every process stops at the same step: the flags below are agreed by all of them.
            (out_of_time,) = any_rank((time_is_up(),), self.world)
            while self.step < self.total_steps and not out_of_time:
                logs = self._train_step()
                for k, v in logs.items():
                    window[k].append(v)
                self.step += 1
                self.elapsed = time.perf_counter() - started
                if self.step % self.config.log_every == 0 or self.step == self.total_steps:
                    last = {k: sum(v) / len(v) for k, v in window.items()}
                    window.clear()
                    self._log({"step": self.step, "lr": self._lr(), "time": round(self.elapsed, 3), **last})
                    # "loss", or one per phase ("disc/loss", "gen/loss") for several optimizers
                    progress.set_postfix(**{k: v for k, v in last.items() if k.split("/")[-1] == "loss"})
                    writer.scalars("train", last, self.step)
                progress.update(1)  # after the log, so a progress line shows this step's loss
                if self.config.eval_every and self.step % self.config.eval_every == 0:
                    last_val = self._validate(writer)
                if self.step % self.config.checkpoint_every == 0:
                    self.save_checkpoint()
                stop, out_of_time = any_rank((self.stop_signal is not None, time_is_up()), self.world)
                if stop:
                    self.save_checkpoint()
                    raise KeyboardInterrupt(self.stop_signal or "another training process was stopped")
            # Validate at the end unless the last step just did (a run of 0 steps always does).
            if not self.config.eval_every or self.step % self.config.eval_every or self.step == 0:
                last_val = self._validate(writer)
            self.save_checkpoint()
        return {**last, **last_val}

    @contextlib.contextmanager
    def _deferred_signals(self) -> Iterator[None]:
        """SIGINT and SIGTERM set `stop_signal`; the loop checkpoints at the step's end and stops.

        Stopping mid-step would save a step counter that disagrees with the optimizer and RNG
        states. A second signal raises at once and saves nothing: the last checkpoint stays.
        """
        self.stop_signal = None
        if threading.current_thread() is not threading.main_thread():
            yield  # signals are delivered to the main thread only
            return

        def defer(signum, frame) -> None:
            if self.stop_signal is not None:
                raise KeyboardInterrupt(signal.Signals(signum).name)
            self.stop_signal = signal.Signals(signum).name

        previous = {sig: signal.signal(sig, defer) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _lr(self) -> float:
        return self.optimizers[0].param_groups[0]["lr"]

    def _train_step(self) -> dict[str, float]:
        self.model.train()
        factor = lr_factor(
            self.step,
            self.config.lr_decay_steps or self.total_steps,
            self.config.warmup_steps,
            self.config.lr_schedule,
            self.config.min_lr_ratio,
        )
        logs: dict[str, float] = {}
        batch_index = self.step * self.batches_per_step
        accum, world = self.config.grad_accum, self.world
        for p, (phase, optimizer) in enumerate(zip(self.phases, self.optimizers, strict=True)):
            for group in optimizer.param_groups:
                group["lr"] = self.config.lr * phase.lr_scale * factor
            for repeat in range(phase.repeats):
                # Gradient accumulation and processes: grad_accum batches, each cut into one shard per
                # process; every shard's loss scaled so that the summed gradients average.
                optimizer.zero_grad(set_to_none=True)
                parts: list[dict[str, torch.Tensor]] = []
                for j in range(accum):
                    if self.seeded_shards:
                        place = shard_seed(
                            self.config.seed, self.step, p * 1000 + repeat, j * world.size + world.rank
                        )
                        torch.manual_seed(place)
                    self.model.note_step(self.step)
                    with self._autocast():
                        part = self.model.loss(shard(self._batch(batch_index + j), world), phase=phase.name)
                    if not torch.isfinite(part["loss"]):
                        break
                    scaled = part["loss"] / (accum * world.size)
                    (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward()
                    parts.append({k: v.detach() for k, v in part.items()})
                batch_index += accum
                if not sum_gradients(phase.parameters, len(parts) == accum, world):
                    self._nonfinite(phase.name)
                    optimizer.zero_grad(set_to_none=True)
                    continue
                out = {k: sum(p[k] for p in parts) / len(parts) for k in parts[0]}
                if self.scaler is not None:  # overflowed gradients are the scaler's to skip, not a fault
                    self.scaler.unscale_(optimizer)
                    if self.config.grad_clip > 0:
                        torch.nn.utils.clip_grad_norm_(phase.parameters, self.config.grad_clip)
                    self.scaler.step(optimizer)
                else:
                    if self.config.grad_clip > 0:
                        norm = torch.nn.utils.clip_grad_norm_(phase.parameters, self.config.grad_clip)
                        if not torch.isfinite(norm):
                            self._nonfinite(phase.name)
                            optimizer.zero_grad(set_to_none=True)
                            continue
                    optimizer.step()
                self.nonfinite_in_a_row = 0
                prefix = "" if len(self.phases) == 1 else f"{phase.name}/"
                logs.update({prefix + k: float(v.detach()) for k, v in out.items()})
        if self.scaler is not None:
            self.scaler.update()
        if self.ema is not None:
            self.ema.update(self.model)
        return mean_logs(logs, world)

    def train_steps(self, n: int) -> dict[str, float]:
        """`n` optimizer steps exactly as `fit` takes them, without its logging, validation and
        checkpoints: what a benchmark times when it holds one step against another library's."""
        logs: dict[str, float] = {}
        for _ in range(n):
            logs = self._train_step()
            self.step += 1
        return logs

    def _nonfinite(self, phase: str) -> None:
        self.nonfinite_in_a_row += 1
        self.nonfinite_total += 1
        if self.nonfinite_in_a_row >= self.config.max_nonfinite:
            # Nothing is saved: the weights have diverged, and the last checkpoint is the good state.
            if self.checkpoint_step is None:
                kept = "nothing was saved: start again"
            else:
                kept = f"the checkpoint of step {self.checkpoint_step} is kept: continue it with --resume"
            raise GenzooError(
                f"the loss ({phase}) was non-finite for {self.nonfinite_in_a_row} steps in a row at step "
                f"{self.step}; {kept}, and lower the learning rate (--set lr=...) or set grad_clip "
                "(--set grad_clip=1)"
            )

    def _autocast(self):
        if self.config.precision in ("bf16", "fp16"):
            dtype = torch.bfloat16 if self.config.precision == "bf16" else torch.float16
            return torch.autocast(self.device.type, dtype=dtype)
        return nullcontext()

    def _validate(self, writer: _TensorBoard) -> dict[str, float]:
        result = self._validation_metrics()
        if self.config.keep_best:
            self._remember_if_best(result)
        final = self.step >= self.total_steps
        warning = self.monitor.warning({k[4:]: v for k, v in result.items()}, final) if self.monitor else None
        if warning and self.world.main:
            print(f"genzoo: warning: step {self.step}: {warning}", file=sys.stderr)
        if result:
            self._log(
                {"step": self.step, "split": "val", **result, **({"warning": warning} if warning else {})}
            )
            writer.scalars("val", {k[4:]: v for k, v in result.items()}, self.step)
        return result

    @torch.no_grad()
    def _validation_metrics(self) -> dict[str, float]:
        """Mean losses over the first `eval_batches` batches of the val split (`val_examples` of
        them), plus the sample monitor's diagnostics."""
        self.model.eval()
        totals: dict[str, float] = defaultdict(float)
        count = 0
        # fork_rng: validation noise must not shift the training random stream (or resume breaks).
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.config.seed + 1)
            for batch in self._val_batches():
                out = self.model.loss(batch)
                n = len(batch[0])
                for k, v in out.items():
                    totals[k] += float(v) * n
                count += n
        result = {f"val_{k}": v / count for k, v in totals.items()}
        if count:
            result["val_examples"] = float(count)
        if self.monitor is not None:
            result.update({f"val_{k}": float(v) for k, v in self.monitor(self.model).items()})
        return result

    def measure_seconds(self, seconds: float) -> tuple[float, float]:
        """Seconds per training step and per validation, timed for about `seconds` on a copy of
        the model and optimizers: this trainer, its model and the random streams stay as they were.
        """
        probe = copy.copy(self)
        probe.model = copy.deepcopy(self.model)
        probe.phases = probe.model.phases()
        probe.optimizers = [probe._make_optimizer(p) for p in probe.phases]
        probe.ema = EMA(probe.model, self.config.ema_decay) if self.ema is not None else None
        sync = torch.cuda.synchronize if self.device.type == "cuda" else (lambda: None)
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            probe._train_step()  # the first step pays for allocations and kernel choices
            sync()
            start, steps = time.perf_counter(), 0
            # Several processes take the same number of steps (each step waits on all of them).
            while steps < 3 or (
                not self.world.sharded and time.perf_counter() - start < seconds and steps < 200
            ):
                probe.train_steps(1)
                steps += 1
                sync()
            per_step = max_over_ranks((time.perf_counter() - start) / steps, self.world)
            per_validation = 0.0
            if self.val_set is not None and self.config.eval_every:
                start = time.perf_counter()
                probe._validation_metrics()
                sync()
                per_validation = max_over_ranks(time.perf_counter() - start, self.world)
        return per_step, per_validation

    def _remember_if_best(self, result: dict[str, float]) -> None:
        if "val_loss" not in result:  # no validation split: the last weights are the ones kept
            return
        if self.best is None or result["val_loss"] < self.best["val_loss"]:
            state = {k: v.detach().clone() for k, v in self._current_inference_state().items()}
            self.best = {"step": self.step, "val_loss": result["val_loss"], "state": state}
        result["val_best_step"] = float(self.best["step"])

    def _log(self, record: dict[str, Any]) -> None:
        if not self.world.main:
            return
        with open(self.out_dir / METRICS_FILE, "a") as f:
            f.write(json.dumps(record) + "\n")

    def _drop_metrics_after(self, step: int) -> None:
        """Forget log lines past `step` (written after the checkpoint a resume starts from), and
        a torn last line from a kill mid-write, so every step is logged once."""
        path = self.out_dir / METRICS_FILE
        if not path.is_file():
            return
        kept = [json.dumps(r) for r in read_metrics(path) if r.get("step", 0) <= step]
        atomic_write_text(path, "".join(line + "\n" for line in kept))

    # ---- checkpoints ----------------------------------------------------------------
    def inference_state(self) -> dict[str, torch.Tensor]:
        """The weights to sample and evaluate with: the best validation's under keep_best, else
        the current ones (the EMA ones when EMA is on)."""
        if self.best is not None:
            return self.best["state"]
        return self._current_inference_state()

    def _current_inference_state(self) -> dict[str, torch.Tensor]:
        return self.ema.shadow if self.ema is not None else self.model.state_dict()

    def save_checkpoint(self) -> None:
        """model.safetensors + config.json for inference, then trainer_state.pt (written last, atomically).

        trainer_state.pt alone is enough to resume, so a crash between the two writes
        never leaves a run that resumes from mismatched pieces. Only rank 0 writes: every process
        holds the same weights and optimizer state.
        """
        if not self.world.main:
            self.checkpoint_step = self.step
            return
        self.model.save_pretrained(self.out_dir, state_dict=self.inference_state())
        state = {
            "step": self.step,
            "elapsed": self.elapsed,
            "nonfinite_total": self.nonfinite_total,
            "model": self.model.state_dict(),
            "optimizers": [opt.state_dict() for opt in self.optimizers],
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "best": self.best,
            "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else [],
            "train_config": self.config.to_dict(),
            "world_size": self.world.size,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
        }
        tmp = self.out_dir / (STATE_FILE + ".tmp")
        torch.save(state, tmp)
        tmp.replace(self.out_dir / STATE_FILE)
        self.checkpoint_step = self.step

    def load_checkpoint(self) -> None:
        """Restore everything trainer_state.pt holds; a file that is not this run's checkpoint is a
        GenzooError, and nothing is changed on disk."""
        path = self.out_dir / STATE_FILE
        if not path.is_file():
            raise GenzooError(f"cannot resume: '{path}' does not exist; drop --resume to start a new run")
        state = read_state(path, self.device)
        try:
            self.model.load_state_dict(state["model"])
            if len(state["optimizers"]) != len(self.optimizers):
                raise ValueError("optimizer count")
            for opt, opt_state in zip(self.optimizers, state["optimizers"], strict=True):
                opt.load_state_dict(opt_state)
            if self.ema is not None and state["ema"] is not None:
                self.ema.load_state_dict(state["ema"])
            if self.scaler is not None and state.get("scaler"):
                self.scaler.load_state_dict(state["scaler"])
            rng = state["rng"].cpu()
            step, elapsed, nonfinite = (
                int(state["step"]),
                float(state["elapsed"]),
                int(state["nonfinite_total"]),
            )
            best = state.get("best")
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as err:
            raise GenzooError(
                f"cannot resume: '{path}' is not a genzoo checkpoint of this model ({first_line(err)}); "
                "restore it or train a new run"
            ) from None
        saved_world = int(state.get("world_size", 1))
        if saved_world != self.world.size and self.world.main:
            # Same global batch, same shards of it: the math goes on; only which shard draws which
            # noise changes, so the run is no longer bit-identical to an uninterrupted one.
            print(
                f"genzoo: note: resuming a run trained by {saved_world} process(es) with {self.world.size}; "
                "it continues with the same global batch, but not bit-identically",
                file=sys.stderr,
            )
        torch.set_rng_state(rng)
        if state["cuda_rng"]:
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        self.step, self.elapsed, self.nonfinite_total, self.best = step, elapsed, nonfinite, best
        self.checkpoint_step = step


def read_state(path: Path, device: str | torch.device = "cpu") -> dict[str, Any]:
    """What trainer_state.pt holds, read without running pickle code; anything else is a GenzooError."""
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # torch raises pickle, zip and runtime errors alike
        raise GenzooError(
            f"'{path}' is not a genzoo checkpoint ({type(err).__name__}); restore it or train a new run"
        ) from None


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The records of a metrics.jsonl, in order; a torn or foreign line (a kill mid-write) is skipped.

    Train records have `step`, `lr`, `time` and the model's losses; validation records have
    `"split": "val"` and `val_...` keys.
    """
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), int):
            records.append(record)
    return records


class _TensorBoard:
    """Scalars to TensorBoard when it is installed; silently nothing otherwise (or without `out_dir`:
    the processes other than rank 0)."""

    def __init__(self, out_dir: Path | None, purge_step: int):
        self.writer = None
        if out_dir is None:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            return
        # purge_step: a resumed run hides the events logged after its checkpoint.
        self.writer = SummaryWriter(str(out_dir / "tb"), purge_step=purge_step or None)

    def scalars(self, prefix: str, values: dict[str, float], step: int) -> None:
        if self.writer:
            for k, v in values.items():
                self.writer.add_scalar(f"{prefix}/{k}", v, step)

    def close(self) -> None:
        if self.writer:
            self.writer.close()

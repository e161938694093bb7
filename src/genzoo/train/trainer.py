"""One training loop for every family.

The Trainer knows nothing about the model beyond the contract: `phases()` says which
optimizers to build, `loss(batch, phase=...)` gives what each minimises. Everything
that decides the trajectory (weights, optimizer moments, RNG, step) is checkpointed
so a stopped run resumed with `resume=True` ends bit-identical to an uninterrupted one.
With `keep_best`, model.safetensors holds the weights of the best validation instead of the
last step; trainer_state.pt keeps both.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from genzoo.data.base import Dataset
from genzoo.errors import GenzooError
from genzoo.models.base import GenerativeModel, Phase
from genzoo.train.config import TrainConfig
from genzoo.train.device import resolve_device
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
    ):
        self.device = resolve_device(device)
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
        self.phases: list[Phase] = model.phases()
        self.batches_per_step = sum(p.repeats for p in self.phases) * config.grad_accum
        self.optimizers = [self._make_optimizer(p) for p in self.phases]
        self.ema = EMA(model, config.ema_decay) if config.ema_decay > 0 else None
        self.step = 0
        self.elapsed = 0.0  # training seconds, summed over resumed sessions
        self.nonfinite_in_a_row = 0
        self.nonfinite_total = 0
        self.best: dict[str, Any] | None = None  # {"step", "val_loss", "state"} under keep_best
        self.total_steps = self._total_steps()

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
        return torch.optim.AdamW(
            [g for g in groups if g["params"]],
            lr=self.config.lr * phase.lr_scale,
            betas=self.config.betas,
        )

    def _steps_per_epoch(self) -> int:
        return math.ceil(len(self.train_set) / self.config.batch_size)

    def _total_steps(self) -> int:
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
        generator = torch.Generator().manual_seed(self.config.seed * 1_000_003 + epoch)
        order = torch.randperm(len(self.train_set), generator=generator)
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
        """Train until the step or time budget is spent; returns the last train and val metrics."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if resume:
            self.load_checkpoint()
        elif (self.out_dir / STATE_FILE).exists():
            raise GenzooError(f"'{self.out_dir}' already holds a run; pass --resume or choose another --out")
        writer = _TensorBoard(self.out_dir)
        window: dict[str, list[float]] = defaultdict(list)
        last: dict[str, float] = {}
        last_val: dict[str, float] = {}
        bar = tqdm(
            total=self.total_steps,
            initial=self.step,
            desc=f"train {self.model.name}",
            disable=self.quiet or not sys.stderr.isatty(),
            dynamic_ncols=True,
        )
        started = time.perf_counter() - self.elapsed
        try:
            while self.step < self.total_steps:
                if self.config.time_budget and time.perf_counter() - started >= self.config.time_budget:
                    break
                logs = self._train_step()
                for k, v in logs.items():
                    window[k].append(v)
                self.step += 1
                self.elapsed = time.perf_counter() - started
                bar.update(1)
                if self.step % self.config.log_every == 0 or self.step == self.total_steps:
                    last = {k: sum(v) / len(v) for k, v in window.items()}
                    window.clear()
                    self._log({"step": self.step, "lr": self._lr(), "time": round(self.elapsed, 3), **last})
                    bar.set_postfix(loss=f"{last.get('loss', float('nan')):.4g}")
                    writer.scalars("train", last, self.step)
                if self.config.eval_every and self.step % self.config.eval_every == 0:
                    last_val = self._validate(writer)
                if self.step % self.config.checkpoint_every == 0:
                    self.save_checkpoint()
        except KeyboardInterrupt:
            self.save_checkpoint()
            bar.close()
            raise
        bar.close()
        if not self.config.eval_every or self.step % self.config.eval_every:
            last_val = self._validate(writer)
        self.save_checkpoint()
        writer.close()
        return {**last, **last_val}

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
        for phase, optimizer in zip(self.phases, self.optimizers, strict=True):
            for group in optimizer.param_groups:
                group["lr"] = self.config.lr * phase.lr_scale * factor
            for _ in range(phase.repeats):
                # Gradient accumulation: grad_accum batches, each loss scaled so the gradients average.
                optimizer.zero_grad(set_to_none=True)
                parts: list[dict[str, torch.Tensor]] = []
                for j in range(self.config.grad_accum):
                    with self._autocast():
                        part = self.model.loss(self._batch(batch_index + j), phase=phase.name)
                    if not torch.isfinite(part["loss"]):
                        break
                    (part["loss"] / self.config.grad_accum).backward()
                    parts.append({k: v.detach() for k, v in part.items()})
                batch_index += self.config.grad_accum
                if len(parts) < self.config.grad_accum:
                    self._nonfinite(phase.name)
                    optimizer.zero_grad(set_to_none=True)
                    continue
                out = {k: sum(p[k] for p in parts) / len(parts) for k in parts[0]}
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
        if self.ema is not None:
            self.ema.update(self.model)
        return logs

    def _nonfinite(self, phase: str) -> None:
        self.nonfinite_in_a_row += 1
        self.nonfinite_total += 1
        if self.nonfinite_in_a_row >= self.config.max_nonfinite:
            self.save_checkpoint()
            raise GenzooError(
                f"the loss ({phase}) was non-finite for {self.nonfinite_in_a_row} steps in a row at step "
                f"{self.step}; lower the learning rate (--set lr=...) or set grad_clip (--set grad_clip=1)"
            )

    def _autocast(self):
        if self.config.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    @torch.no_grad()
    def _validate(self, writer: _TensorBoard) -> dict[str, float]:
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
        if self.monitor is not None:
            result.update({f"val_{k}": float(v) for k, v in self.monitor(self.model).items()})
        if self.config.keep_best:
            self._remember_if_best(result)
        if result:
            self._log({"step": self.step, "split": "val", **result})
            writer.scalars("val", {k[4:]: v for k, v in result.items()}, self.step)
        return result

    def _remember_if_best(self, result: dict[str, float]) -> None:
        if "val_loss" not in result:  # no validation split: the last weights are the ones kept
            return
        if self.best is None or result["val_loss"] < self.best["val_loss"]:
            state = {k: v.detach().clone() for k, v in self._current_inference_state().items()}
            self.best = {"step": self.step, "val_loss": result["val_loss"], "state": state}
        result["val_best_step"] = float(self.best["step"])

    def _log(self, record: dict[str, Any]) -> None:
        with open(self.out_dir / METRICS_FILE, "a") as f:
            f.write(json.dumps(record) + "\n")

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
        never leaves a run that resumes from mismatched pieces.
        """
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
        }
        tmp = self.out_dir / (STATE_FILE + ".tmp")
        torch.save(state, tmp)
        tmp.replace(self.out_dir / STATE_FILE)

    def load_checkpoint(self) -> None:
        path = self.out_dir / STATE_FILE
        if not path.is_file():
            raise GenzooError(f"cannot resume: '{path}' does not exist; drop --resume to start a new run")
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)
        except Exception as err:
            raise GenzooError(f"cannot resume: '{path}' is unreadable ({err})") from err
        self.model.load_state_dict(state["model"])
        for opt, opt_state in zip(self.optimizers, state["optimizers"], strict=True):
            opt.load_state_dict(opt_state)
        if self.ema is not None and state["ema"] is not None:
            self.ema.load_state_dict(state["ema"])
        torch.set_rng_state(state["rng"].cpu())
        if state["cuda_rng"]:
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        self.step = state["step"]
        self.elapsed = state["elapsed"]
        self.nonfinite_total = state["nonfinite_total"]
        self.best = state.get("best")


class _TensorBoard:
    """Scalars to TensorBoard when it is installed; silently nothing otherwise."""

    def __init__(self, out_dir: Path):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            self.writer = None
        else:
            self.writer = SummaryWriter(str(out_dir / "tb"))

    def scalars(self, prefix: str, values: dict[str, float], step: int) -> None:
        if self.writer:
            for k, v in values.items():
                self.writer.add_scalar(f"{prefix}/{k}", v, step)

    def close(self) -> None:
        if self.writer:
            self.writer.close()

"""Training hyper-parameters shared by every family (model hyper-parameters live in the model's Config)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Literal

from genzoo.errors import GenzooError, did_you_mean

SEED_LIMIT = 2**32  # seeds are 0 .. 2**32 - 1: what torch and numpy generators both take


@dataclass
class TrainConfig:
    lr: float = 1e-3
    batch_size: int = 64
    grad_accum: int = 1  # batches whose gradients are averaged into one optimizer step
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 0
    lr_schedule: Literal["cosine", "constant"] = (
        "cosine"  # "cosine" (decays to min_lr_ratio * lr over lr_decay_steps) or "constant"
    )
    # Length of the cosine decay; 0 = the run's length. A fixed value (as nanoGPT's lr_decay_iters)
    # makes a short run a prefix of a long one, so stopping and resuming changes nothing.
    lr_decay_steps: int = 0
    min_lr_ratio: float = 0.1
    grad_clip: float = 0.0  # max global grad norm; 0 = off
    ema_decay: float = 0.0  # 0 = no EMA; else e.g. 0.999
    max_steps: int = 2000  # used when neither epochs nor time_budget is given
    epochs: float = 0.0  # > 0: train this many passes over the training split instead
    # Seconds; > 0: `genzoo.train.train` times a few steps first and plans max_steps (and the
    # schedule's horizon) to fit, then records them in run.json. A plan, not a cut-off.
    time_budget: float = 0.0
    time_limit: float = 0.0  # seconds; > 0: a hard stop, whatever the plan (compare's guard)
    eval_every: int = 500  # validation loss every N steps (0 = only at the end)
    eval_batches: int = 20  # batches of the val split per validation
    # Keep the weights with the lowest val_loss seen at a validation as model.safetensors (the
    # run itself goes on; resuming continues from the last step). For likelihood models on small
    # data, which overfit well before a fixed step count ends. Without a val split: the last weights.
    keep_best: bool = False
    # Samples drawn at every validation to log mode/class coverage (genzoo.train.monitor); 0 = off.
    monitor_samples: int = 0
    # Samples drawn at the end for samples.png (text: 4 for samples.txt); 0 = no preview (an
    # autoregressive model of large images draws them one pixel at a time: minutes on a CPU).
    preview_samples: int = 64
    checkpoint_every: int = 1000  # steps between checkpoints (and always at the end)
    log_every: int = 50
    max_nonfinite: int = 20  # abort after this many non-finite losses in a row
    # "fp32", "bf16" (autocast) or "fp16" (autocast, with a gradient scaler against underflow)
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    seed: int = 0

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)
        checks = [
            (self.lr > 0, "lr must be > 0"),
            (self.batch_size > 0, "batch_size must be > 0"),
            (self.grad_accum > 0, "grad_accum must be > 0"),
            (self.weight_decay >= 0, "weight_decay must be >= 0"),
            (self.warmup_steps >= 0, "warmup_steps must be >= 0"),
            (self.lr_decay_steps >= 0, "lr_decay_steps must be >= 0"),
            (self.lr_schedule in ("cosine", "constant"), "lr_schedule must be 'cosine' or 'constant'"),
            (0 <= self.min_lr_ratio <= 1, "min_lr_ratio must be in [0, 1]"),
            (self.grad_clip >= 0, "grad_clip must be >= 0"),
            (0 <= self.ema_decay < 1, "ema_decay must be in [0, 1)"),
            (self.max_steps > 0, "max_steps must be > 0"),
            (self.epochs >= 0, "epochs must be >= 0"),
            (self.time_budget >= 0, "time_budget must be >= 0"),
            (self.time_limit >= 0, "time_limit must be >= 0"),
            (not (self.time_budget and self.epochs), "give epochs or time_budget, not both"),
            (0 <= self.seed < SEED_LIMIT, "seed must be in 0 .. 2**32 - 1"),
            (self.checkpoint_every > 0, "checkpoint_every must be > 0"),
            (self.log_every > 0, "log_every must be > 0"),
            (self.max_nonfinite > 0, "max_nonfinite must be > 0"),
            (self.monitor_samples >= 0, "monitor_samples must be >= 0"),
            (self.preview_samples >= 0, "preview_samples must be >= 0"),
            (self.precision in ("fp32", "bf16", "fp16"), "precision must be 'fp32', 'bf16' or 'fp16'"),
        ]
        for ok, message in checks:
            if not ok:
                raise GenzooError(f"invalid training setting: {message}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        names = cls.field_names()
        for key in values:
            if key not in names:
                raise GenzooError(f"unknown training setting '{key}'{did_you_mean(key, names)}")
        return cls(**values)

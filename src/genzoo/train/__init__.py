"""Training: one Trainer for every family, and runs on disk."""

from genzoo.train.config import TrainConfig
from genzoo.train.run import RunSpec, load_run, train
from genzoo.train.trainer import Trainer

__all__ = ["RunSpec", "TrainConfig", "Trainer", "load_run", "train"]

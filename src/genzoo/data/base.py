"""What every dataset declares, and the in-memory container that holds its splits."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch.utils.data import TensorDataset

from genzoo.errors import GenzooError


@dataclass(frozen=True)
class DataInfo:
    """Everything a model needs to know about the data to size itself.

    Values stay in the dataset's own units everywhere outside a model (digits 0..16,
    MNIST 0..255, toy2d coordinates): models rescale internally and return samples
    in these units, so files written by `genzoo sample` are directly comparable to data.
    """

    name: str
    modality: str  # "image", "vector", "text", "text-pairs", "music", "audio", "table" or "series"
    shape: tuple[int, ...]  # one example: (C, H, W) for images, (D,) for vectors, (L, F) for series
    levels: int | None  # discrete values per dimension (17, 256, 2); None when continuous
    low: float  # smallest value a dimension can take
    high: float  # largest value a dimension can take
    num_classes: int = 0  # 0 when the data carry no labels
    # Text data: the tokenizer as JSON (genzoo.data.text), so a model can save it with its weights.
    tokenizer: str | None = field(default=None, repr=False)
    # Tables: the schema as JSON (genzoo.data.tabular.TableSchema), saved by a model as table.json.
    table: str | None = field(default=None, repr=False)
    # Time series: the schema as JSON (genzoo.data.series.SeriesSchema): features, scaler, frequency.
    series: str | None = field(default=None, repr=False)

    @property
    def dim(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n

    def to_dict(self) -> dict:
        return asdict(self)


class Dataset:
    """A dataset held in memory: named splits of (x float32, y int64) tensors.

    `y` is -1 for every example when the data are unlabelled.
    """

    def __init__(self, info: DataInfo, splits: dict[str, tuple[torch.Tensor, torch.Tensor]]):
        for split, (x, y) in splits.items():
            if tuple(x.shape[1:]) != tuple(info.shape):
                raise ValueError(f"split {split!r} has shape {tuple(x.shape[1:])}, info says {info.shape}")
            if len(x) != len(y):
                raise ValueError(f"split {split!r}: {len(x)} examples but {len(y)} labels")
        self.info = info
        self._splits = {k: (x.float().contiguous(), y.long()) for k, (x, y) in splits.items()}

    @property
    def split_names(self) -> tuple[str, ...]:
        return tuple(self._splits)

    def split(self, name: str) -> TensorDataset:
        if name not in self._splits:
            raise GenzooError(
                f"dataset '{self.info.name}' has no split '{name}'; choose one of: {', '.join(self._splits)}"
            )
        return TensorDataset(*self._splits[name])

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={len(v[0])}" for k, v in self._splits.items())
        return f"Dataset({self.info.name!r}, shape={self.info.shape}, {sizes})"


def shared_data_dirs() -> list[Path]:
    """Where offline copies of the standard datasets may be, most specific first: $GENZOO_DATA,
    ../shared/data from the working directory, and shared/data beside the repository."""
    dirs: list[Path] = []
    if os.environ.get("GENZOO_DATA"):
        dirs.append(Path(os.environ["GENZOO_DATA"]).expanduser())
    dirs.append(Path.cwd().parent / "shared" / "data")
    for parent in Path(__file__).resolve().parents:
        if (parent / "shared" / "data").is_dir():
            dirs.append(parent / "shared" / "data")
            break
    return list(dict.fromkeys(p.resolve() for p in dirs))


def find_shared_file(name: str) -> Path | None:
    """The first `name` in `shared_data_dirs()`, or None."""
    return next((d / name for d in shared_data_dirs() if (d / name).is_file()), None)

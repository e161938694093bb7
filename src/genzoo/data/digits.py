"""scikit-learn's 8x8 handwritten digits: 1797 images, 17 grey levels (0..16).

Fixed split (DESIGN.md): train = first 1000, val = next 350, test = the remaining 447.
"""

from __future__ import annotations

import torch

from genzoo.data.base import DataInfo, Dataset
from genzoo.data.registry import register_dataset

TRAIN_END, VAL_END = 1000, 1350


@register_dataset("digits")
def load_digits() -> Dataset:
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    x = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(bunch.target, dtype=torch.long)
    info = DataInfo("digits", "image", (1, 8, 8), levels=17, low=0.0, high=16.0, num_classes=10)
    return Dataset(
        info,
        {
            "train": (x[:TRAIN_END], y[:TRAIN_END]),
            "val": (x[TRAIN_END:VAL_END], y[TRAIN_END:VAL_END]),
            "test": (x[VAL_END:], y[VAL_END:]),
        },
    )

"""Datasets: a registry of names (and path readers) that load into `Dataset`s.

>>> from genzoo.data import load_dataset
>>> load_dataset("digits").info.levels
17
"""

# Imported for their side effect: each module registers its loaders.
from genzoo.data import (  # noqa: F401
    audio,
    dates,
    digits,
    image_folder,
    mnist,
    music,
    series,
    tabular,
    text,
    toy2d,
)
from genzoo.data.base import DataInfo, Dataset
from genzoo.data.registry import (
    dataset_modality,
    dataset_names,
    dataset_options,
    load_dataset,
    register_dataset,
)
from genzoo.data.series import SeriesDataset, SeriesSchema, read_series
from genzoo.data.toy2d import toy2d_modes

__all__ = [
    "DataInfo",
    "Dataset",
    "SeriesDataset",
    "SeriesSchema",
    "dataset_modality",
    "dataset_names",
    "dataset_options",
    "load_dataset",
    "read_series",
    "register_dataset",
    "toy2d_modes",
]

"""Datasets: a registry of names (and path readers) that load into `Dataset`s.

>>> from genzoo.data import load_dataset
>>> load_dataset("digits").info.levels
17
"""

from genzoo.data import digits  # noqa: F401  (registers its loader)
from genzoo.data.base import DataInfo, Dataset
from genzoo.data.registry import dataset_names, dataset_options, load_dataset, register_dataset

__all__ = ["DataInfo", "Dataset", "dataset_names", "dataset_options", "load_dataset", "register_dataset"]

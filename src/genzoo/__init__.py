"""genzoo: train, sample, evaluate and compare every family of deep generative models."""

from genzoo.data import load_dataset
from genzoo.models import GenerativeModel, get_model_class, load, model_names

__version__ = "0.1.0"
__all__ = ["GenerativeModel", "__version__", "get_model_class", "load", "load_dataset", "model_names"]

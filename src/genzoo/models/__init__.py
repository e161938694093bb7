"""Generative model families behind one contract (see `GenerativeModel`)."""

from genzoo.models import flow, pixelcnn, vae  # noqa: F401  (importing registers the models)
from genzoo.models.base import GenerativeModel, ModelConfig, Phase, load
from genzoo.models.registry import describe_models, get_model_class, model_names, register_model

__all__ = [
    "GenerativeModel",
    "ModelConfig",
    "Phase",
    "describe_models",
    "get_model_class",
    "load",
    "model_names",
    "register_model",
]

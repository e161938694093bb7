"""Generative model families behind one contract (see `GenerativeModel`)."""

from genzoo.models import (
    copula,  # noqa: F401  (registers gaussian-copula, tables)
    ctgan,  # noqa: F401  (registers ctgan, tables)
    dbn,  # noqa: F401  (registers the DBN)
    deepar,  # noqa: F401  (registers deepar, time series)
    diffusion,  # noqa: F401  (registers ddpm)
    flow,  # noqa: F401  (registers RealNVP, Glow, MAF)
    gan,  # noqa: F401  (registers dcgan, wgan-gp, sngan)
    gpt,  # noqa: F401  (registers gpt)
    pixelcnn,  # noqa: F401  (registers PixelCNN)
    rnn_nade,  # noqa: F401  (registers rnn-nade, polyphonic music)
    seq2seq,  # noqa: F401  (registers seq2seq)
    tabddpm,  # noqa: F401  (registers tabddpm, tables)
    tsdiffusion,  # noqa: F401  (registers diffusion-ts, series)
    tvae,  # noqa: F401  (registers tvae, tables)
    vae,  # noqa: F401  (registers the VAE)
    wavenet,  # noqa: F401  (registers WaveNet, raw audio)
)
from genzoo.models.base import GenerativeModel, ModelConfig, Phase
from genzoo.models.pretrained import load
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

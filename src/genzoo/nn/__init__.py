"""Shared building blocks: MLP / conv stacks (`blocks`) and output distributions (`likelihoods`)."""

from genzoo.nn.blocks import ActivationName, ConvDecoder, ConvEncoder, activation, mlp
from genzoo.nn.embeddings import TimestepEmbedding, sinusoidal_embedding
from genzoo.nn.likelihoods import (
    Bernoulli,
    Categorical,
    DiscretizedLogistic,
    Gaussian,
    Likelihood,
    Rescale,
    make_likelihood,
    resolve_likelihood,
)
from genzoo.nn.unet import UNet

__all__ = [
    "Bernoulli",
    "Categorical",
    "ConvDecoder",
    "ConvEncoder",
    "DiscretizedLogistic",
    "Gaussian",
    "Likelihood",
    "Rescale",
    "TimestepEmbedding",
    "UNet",
    "ActivationName",
    "activation",
    "make_likelihood",
    "mlp",
    "resolve_likelihood",
    "sinusoidal_embedding",
]

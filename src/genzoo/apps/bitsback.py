"""Bits-back ANS (Townsend, Bird & Barber 2019): lossless coding with a latent-variable model.

A VAE gives no exact p(x), only q(z|x), p(z) and p(x|z). Bits-back coding still stores x in about
-ELBO(x) bits, on a stack (an ANS coder, `constriction`), one batch of examples after another:

    encode x:  pop z with q(z|x)    (decode: takes ~ -log q(z|x) bits off the stack)
               push x with p(x|z)
               push z with p(z)
    decode:    pop z with p(z), pop x with p(x|z), push z with q(z|x)   (batches in reverse order)

so each example costs -log p(x|z) - log p(z) + log q(z|x) bits: the posterior's bits are "got back".
Latents are discretised per dimension into 2^latent_bits buckets of equal mass under the prior
N(0, 1), so the prior is uniform over buckets; z = each bucket's prior median is what the decoder
sees, and q's bucket masses come from the Gaussian CDF of N(mu, std) (float64, then float32).

The first pop needs bits on the stack: the coder starts from `initial_words` random words from
`initial_seed` (Townsend et al.'s "initial bits"), enough for the worst case of one batch (each
pop takes at most 24 bits, `constriction`'s precision). Those words stay in the output, so the
stats report the net bits (what the examples added) and the total apart. Decoding must finish with
exactly those words left, which checks the whole round trip.

Encoder and decoder must compute the very same float32 probabilities: both run on the CPU, on one
torch thread, with the same batches (the encoder's q(z|x) batch is the decoder's decoded x batch).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch

from genzoo.apps.coding import PRECISION, coded_bits, constriction_module, level_symbols, one_thread
from genzoo.errors import GenzooError
from genzoo.models.base import GenerativeModel

CODER = "bits-back-ans"
# Buckets per latent dimension: 2^10. On digits (default VAE, 447 test images) 6..14 bits all code
# within Monte Carlo noise of -ELBO (2.00 bits/dim); time grows past 10 (12: 2x, 14: 6x). 10
# leaves room for sharper posteriors than digits' at ~10% more time than 8.
LATENT_BITS = 10
BATCH = 1  # examples per step; the initial bits grow with it (24 bits per latent dimension)


# ---- helpers --------------------------------------------------------------------------------------
def _check(model: GenerativeModel, latent_bits: int, batch: int) -> None:
    if not model.bits_back:
        raise GenzooError(f"a {model.name} run cannot code with bits-back (it needs a VAE)")
    if model.device.type != "cpu":
        raise GenzooError(
            "bits-back coding runs on the CPU (both sides must compute alike); load with device='cpu'"
        )
    if not 1 <= latent_bits <= 16:
        raise GenzooError(f"latent_bits must be 1..16, got {latent_bits}")
    if batch < 1:
        raise GenzooError(f"batch must be >= 1, got {batch}")


def initial_words(latent_dim: int, batch: int) -> int:
    """Random words the coder starts from: one batch's worst-case pop, plus a word."""
    return math.ceil(PRECISION * latent_dim * batch / 32) + 1


def _initial(seed: int, n: int) -> np.ndarray:
    words = np.random.default_rng(seed).integers(0, 2**32, size=n, dtype=np.uint32)
    words[-1] |= 1  # an ANS stack never ends in a zero word
    return words


def _grid(latent_bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Bucket edges (K+1,) float64 (-inf..inf) and prior medians (K,) float32 of N(0, 1)'s K equal-mass buckets."""
    k = 2**latent_bits
    j = torch.arange(k + 1, dtype=torch.float64)
    edges = torch.special.ndtri(j / k)
    medians = torch.special.ndtri((j[:-1] + 0.5) / k).float()
    return edges, medians


def _posterior_probs(mu: torch.Tensor, std: torch.Tensor, edges: torch.Tensor) -> np.ndarray:
    """q's mass in every bucket, (N * latent_dim, K) float32: CDF differences in float64, taken on
    the side of the mean where they do not cancel."""
    a = (edges - mu.double().reshape(-1, 1)) / std.double().reshape(-1, 1)  # (N*L, K+1)
    lo, hi = a[:, :-1], a[:, 1:]
    mass = torch.where(
        lo > 0,
        torch.special.ndtr(-lo) - torch.special.ndtr(-hi),
        torch.special.ndtr(hi) - torch.special.ndtr(lo),
    )
    return np.ascontiguousarray(mass.float().numpy())


def _observation_probs(model: GenerativeModel, z: torch.Tensor) -> np.ndarray:
    probs = model.observation_probs(z)  # (N, D, levels)
    return np.ascontiguousarray(probs.reshape(-1, probs.shape[-1]).cpu().numpy(), dtype=np.float32)


# ---- the coder ------------------------------------------------------------------------------------
def encode(
    model: GenerativeModel,
    x: torch.Tensor,
    *,
    latent_bits: int = LATENT_BITS,
    batch: int = BATCH,
    initial_seed: int = 0,
) -> tuple[np.ndarray, dict[str, Any]]:
    """The ANS words of `x` (N, *shape) in data units, coded bits-back with a VAE, and stats:
    `net_bits` (what the examples added to the initial bits), `initial_bits`, `total_bits` (the
    words), `ideal_bits` (-log2 p(x|z) - log2 p(z) + log2 q(z|x) of the coded z, summed from the
    float probabilities) and their parts, `seconds`. Decode with the same latent_bits, batch and seed."""
    _check(model, latent_bits, batch)
    constriction = constriction_module()
    config = model.config
    levels, low, high = int(config.data_levels), config.data_low, config.data_high
    x = x.float().cpu()
    symbols = level_symbols(x.reshape(len(x), -1), levels, low, high)
    started = time.perf_counter()
    categorical = constriction.stream.model.Categorical(perfect=False)
    edges, medians = _grid(latent_bits)
    prior = constriction.stream.model.Uniform(2**latent_bits)
    parts = {"x_bits": 0.0, "prior_bits": 0.0, "posterior_bits": 0.0}
    latent_dim = None
    coder = None
    with torch.no_grad(), one_thread():
        for start in range(0, len(x), batch):
            mu, std = model.latent_posterior(x[start : start + batch])
            if coder is None:  # the first batch: start from enough random bits for its pop
                latent_dim = mu.shape[1]
                seed_words = _initial(initial_seed, initial_words(latent_dim, batch))
                coder = constriction.stream.stack.AnsCoder(seed_words)
                initial_bits = coder.num_valid_bits()
            q = _posterior_probs(mu, std, edges)
            z = coder.decode(categorical, q)  # pop z ~ q(z|x)
            px = _observation_probs(model, medians[torch.from_numpy(z.astype(np.int64))].view(mu.shape))
            sym = symbols[start : start + batch].reshape(-1)
            coder.encode_reverse(sym, categorical, px)  # push x with p(x|z)
            coder.encode_reverse(z, prior)  # push z with the uniform prior over buckets
            parts["x_bits"] += coded_bits(px, sym)
            parts["prior_bits"] += latent_bits * len(z)
            parts["posterior_bits"] += coded_bits(q, z)
    if coder is None:
        raise GenzooError("nothing to code: the data hold no examples")
    words = coder.get_compressed()
    dims = symbols.size
    net = coder.num_valid_bits() - initial_bits
    stats = {
        "count": len(x),
        "dims": dims,
        "latent_bits": latent_bits,
        "batch": batch,
        "initial_seed": initial_seed,
        "initial_bits": initial_bits,
        "net_bits": net,
        "total_bits": 32 * len(words),
        "ideal_bits": parts["x_bits"] + parts["prior_bits"] - parts["posterior_bits"],
        **parts,
        "net_bits_per_dim": net / dims,
        "total_bits_per_dim": 32 * len(words) / dims,
        "seconds": time.perf_counter() - started,
    }
    return words, stats


def decode(
    model: GenerativeModel,
    words: np.ndarray,
    count: int,
    *,
    latent_bits: int = LATENT_BITS,
    batch: int = BATCH,
    initial_seed: int = 0,
) -> torch.Tensor:
    """The inverse of `encode`: `count` examples (count, *shape) in data units. A GenzooError when
    the words do not decode back to the initial bits (another model, settings or a damaged file)."""
    _check(model, latent_bits, batch)
    if count < 1:
        raise GenzooError(f"count must be >= 1, got {count}")
    constriction = constriction_module()
    config = model.config
    levels, low, high = int(config.data_levels), config.data_low, config.data_high
    shape = tuple(config.data_shape)
    values = torch.linspace(low, high, levels)
    categorical = constriction.stream.model.Categorical(perfect=False)
    edges, medians = _grid(latent_bits)
    k = 2**latent_bits
    prior = constriction.stream.model.Uniform(k)
    try:
        coder = constriction.stream.stack.AnsCoder(np.asarray(words, dtype=np.uint32))
    except ValueError as error:
        raise GenzooError(f"the bits-back words are damaged ({error})") from None
    out = torch.empty((count, *shape))
    latent_dim = None
    starts = list(range(0, count, batch))
    with torch.no_grad(), one_thread():
        for start in reversed(starts):
            n = min(batch, count - start)
            if latent_dim is None:
                latent_dim = model.latent_posterior(torch.full((1, *shape), float(low)))[0].shape[1]
            z = coder.decode(prior, n * latent_dim)  # pop z with the prior
            px = _observation_probs(model, medians[torch.from_numpy(z.astype(np.int64))].view(n, latent_dim))
            sym = coder.decode(categorical, px)  # pop x with p(x|z)
            x = values[torch.from_numpy(sym.astype(np.int64))].view(n, *shape)
            out[start : start + n] = x
            mu, std = model.latent_posterior(x)
            coder.encode_reverse(z, categorical, _posterior_probs(mu, std, edges))  # push z back with q(z|x)
    left = coder.get_compressed()
    if not np.array_equal(left, _initial(initial_seed, initial_words(latent_dim, batch))):
        raise GenzooError(
            "bits-back decoding did not end at its initial bits: the file was coded with another "
            "model or other settings, or it is damaged"
        )
    return out


__all__ = ["CODER", "LATENT_BITS", "decode", "encode", "initial_words"]

"""What genzoo's lossless coders share: the entropy coder package, the conditions under which encoder
and decoder compute identical probabilities, and data as level indices."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch

from genzoo.errors import GenzooError

PRECISION = 24  # constriction's default coders: probabilities in units of 2^-24


def constriction_module():
    """The `constriction` package (ANS and range coders), or a GenzooError saying how to get it."""
    try:
        import constriction
    except ImportError:
        raise GenzooError(
            "compression needs the constriction package: pip install 'genzoo[compress]'"
        ) from None
    return constriction


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Torch on one thread for the duration: another thread count may sum in another order, and the
    decoder must compute exactly the encoder's float32 probabilities."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def level_symbols(flat: torch.Tensor, levels: int, low: float, high: float) -> np.ndarray:
    """Level indices (int32) of values in data units; values off the grid are refused (coding is lossless)."""
    index = (flat - low) / (high - low) * (levels - 1)
    rounded = index.round()
    if not torch.isfinite(flat).all() or (rounded < 0).any() or (rounded > levels - 1).any():
        raise GenzooError(f"the data have values outside {low:g}..{high:g}, the range the run was trained on")
    if (index - rounded).abs().max() > 1e-3:
        raise GenzooError(
            f"the data have values between the run's {levels} levels; lossless coding needs data on its grid"
        )
    return rounded.to(torch.int32).numpy()


def coded_bits(probs: np.ndarray, symbols: np.ndarray) -> float:
    """-log2 of the symbols' (normalised) float probabilities, summed: what a coder aims at."""
    p = probs[np.arange(len(symbols)), symbols].astype(np.float64) / probs.sum(1, dtype=np.float64)
    return float(-np.log2(np.maximum(p, 2.0**-PRECISION)).sum())

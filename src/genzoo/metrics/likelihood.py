"""Likelihood in the units every family reports: nats per example, bits per dimension, bits per character.

All helpers keep one convention: an NLL is a *positive* number of nats (``-log p``), summed over
the dimensions of one example unless its name says "per ...". Conversions live here, once, so
a VAE's bound, a flow's exact density and a GPT's token loss land on the same scale.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from genzoo.errors import GenzooError

LN2 = math.log(2.0)


def bits_per_dim(nll_nats: float | torch.Tensor, num_dims: int) -> float | torch.Tensor:
    """Bits per dimension: an NLL in nats per example divided by ``num_dims * ln 2``.

    The usual way to compare image models across resolutions (an 8x8 digit has 64 dimensions,
    a CIFAR image 3072). Only meaningful for a *discrete* NLL; convert a density first with
    `discrete_nll_from_density`.
    """
    if num_dims <= 0:
        raise ValueError(f"num_dims must be positive, got {num_dims}")
    return nll_nats / (num_dims * LN2)


def discrete_nll_from_density(
    log_density: float | torch.Tensor, num_dims: int, bin_width: float
) -> float | torch.Tensor:
    """The discrete NLL (nats) of data whose *continuous* log-density was evaluated.

    Derivation. The data are discrete: every dimension takes one of L levels. A continuous
    model sees them after a map into its own units, in which neighbouring levels are
    ``bin_width`` apart, e.g.

    - ``x / (L - 1)`` (levels at 0, 1/(L-1), ..., 1):       ``bin_width = 1 / (L - 1)``
    - ``(x + u) / L`` with ``u ~ U[0, 1)`` (dequantized):    ``bin_width = 1 / L``
    - levels mapped onto [-1, 1] (genzoo's internal units): ``bin_width = 2 / (L - 1)``

    Each discrete value owns a cell of volume ``bin_width ** D`` in those units, so the
    probability mass the density puts on it is ``P(x) = integral over the cell of p``, which is
    ``p(x) * bin_width ** D`` when p is roughly constant over a cell (and, for uniform
    dequantization, ``E_u log p(x + u) + D log bin_width <= log P(x)`` by Jensen: a bound).
    Hence::

        -log P(x) = -log p(x) - D * log(bin_width)

    Because ``bin_width < 1`` in the usual units, ``-D log(bin_width)`` is *positive*: the
    discrete NLL is larger than the continuous one. (A density can be made arbitrarily large by
    squeezing; the mass cannot exceed 1, so NLL >= 0 — a quick sanity check on the sign.)
    Example: the uniform density on [0, 1]^D with ``bin_width = 1/L`` gives ``D log L``, exactly
    the NLL of a uniform categorical over L levels.
    """
    if not bin_width > 0:
        raise ValueError(f"bin_width must be positive, got {bin_width}")
    return -(log_density + num_dims * math.log(bin_width))


def loss_per_token(total_nll_nats: float, tokens: int) -> float:
    """Mean NLL per token, nats (the ``loss_per_token`` key): what language models minimise."""
    if tokens <= 0:
        raise ValueError(f"tokens must be positive, got {tokens}")
    return total_nll_nats / tokens


def bits_per_char(loss_per_token_nats: float, tokens: int, chars: int) -> float:
    """Bits per character (``bpc``) from a per-token loss in nats.

    Total nats = ``loss_per_token_nats * tokens``; spread over the ``chars`` characters of the
    same text and convert to bits. This makes character-level and subword models comparable:
    with a character tokenizer ``tokens == chars`` and bpc is just ``loss / ln 2``.
    """
    if chars <= 0:
        raise ValueError(f"chars must be positive, got {chars}")
    return loss_per_token_nats * tokens / (chars * LN2)


@torch.no_grad()
def evaluate_nll(model: Any, x: torch.Tensor, batch_size: int = 256) -> dict[str, Any]:
    """Mean NLL per example of ``x`` under ``model.log_prob``, in nats, and in bits per dimension.

    Returns ``{"nll", "nll_kind", "bpd"}`` (keys as in DESIGN.md) with ``bpd = nll / (D ln 2)``
    and ``D`` the dimensions the model scores (``model.scored_dims``; else ``prod(x.shape[1:])``). The model is put in eval mode for the call (dropout would
    make the number random) and restored afterwards; sums are accumulated in float64 so the
    mean does not depend on the batch size.
    """
    kind = getattr(model, "log_prob_kind", None)
    if kind is None:
        name = getattr(model, "name", type(model).__name__)
        raise GenzooError(
            f"model '{name}' has no log-likelihood, so 'nll' is not defined; ask for other metrics"
        )
    if x.ndim < 2 or len(x) == 0:
        raise GenzooError(
            f"evaluate_nll needs a non-empty batch of examples (N, ...), got shape {tuple(x.shape)}"
        )
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    first = next(iter(model.parameters()), None)
    device = first.device if first is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    try:
        total, bad = 0.0, 0
        for batch in x.split(batch_size):
            lp = model.log_prob(batch.to(device)).detach().to("cpu", torch.float64)
            if lp.shape != (len(batch),):
                raise GenzooError(
                    f"{type(model).__name__}.log_prob returned shape {tuple(lp.shape)}; "
                    f"expected one value per example ({len(batch)},)"
                )
            finite = torch.isfinite(lp)
            bad += int((~finite).sum())
            total += float(lp[finite].sum())
    finally:
        model.train(was_training)
    if bad:
        raise GenzooError(
            f"the model gave a non-finite log-likelihood for {bad} of {len(x)} examples; "
            "check that the data are in the range the model was trained on"
        )
    nll = -total / len(x)
    scored = getattr(model, "scored_dims", None)  # a language model is given its first token
    num_dims = scored(tuple(x.shape[1:])) if scored is not None else math.prod(x.shape[1:])
    return {"nll": nll, "nll_kind": kind, "bpd": float(bits_per_dim(nll, num_dims))}

"""NADE (Larochelle & Murray 2011): an exact distribution over a binary vector, one unit at a time.

    p(v) = prod_i p(v_i | v_<i),   p(v_i = 1 | v_<i) = sigmoid(b_i + V_i . sigmoid(c + W[:, <i] v_<i))

The weights W, V are shared; the biases b (per unit) and c (per hidden unit) are given by the
caller, so a network can condition the whole distribution on context (RNN-NADE feeds an RNN's
state into them). Training evaluates all D conditionals in one pass with a cumulative sum.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class NADE(nn.Module):
    def __init__(self, num_units: int, hidden: int):
        super().__init__()
        self.num_units, self.hidden = num_units, hidden
        self.W = nn.Parameter(torch.randn(hidden, num_units) * 0.01)  # input -> hidden
        self.V = nn.Parameter(torch.randn(num_units, hidden) * 0.01)  # hidden -> unit i's logit

    def logits(self, v: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Logit of p(v_i = 1 | v_<i) for every unit: v, b (..., D), c (..., H) -> (..., D)."""
        contrib = v.unsqueeze(-1) * self.W.t()  # (..., D, H): unit j's push on the hidden layer
        before = contrib.cumsum(-2) - contrib  # exclusive sum: only units j < i
        h = torch.sigmoid(c.unsqueeze(-2) + before)
        return b + (h * self.V).sum(-1)

    def log_prob(self, v: torch.Tensor, b: torch.Tensor, c: torch.Tensor, chunk: int = 128) -> torch.Tensor:
        """log p(v) in nats, summed over the D units: (...,).

        Vectors go through in chunks: the (chunk, D, H) intermediates then stay in the CPU's cache,
        which makes training several times faster than one big (N, D, H) pass.
        """
        shape = v.shape[:-1]
        v, b, c = v.reshape(-1, self.num_units), b.reshape(-1, self.num_units), c.reshape(-1, self.hidden)
        parts = [
            -F.binary_cross_entropy_with_logits(self.logits(vi, bi, ci), vi, reduction="none").sum(-1)
            for vi, bi, ci in zip(v.split(chunk), b.split(chunk), c.split(chunk), strict=True)
        ]
        return torch.cat(parts).reshape(shape) if parts else v.new_zeros(shape)

    def sample(
        self, b: torch.Tensor, c: torch.Tensor, noise: torch.Tensor, temperature: float = 1.0
    ) -> torch.Tensor:
        """Draw v unit by unit: b (N, D), c (N, H), noise U(0, 1) of shape (N, D) -> v (N, D) in {0, 1}."""
        v = torch.zeros_like(b)
        a = c.clone()
        for i in range(self.num_units):
            logit = b[:, i] + torch.sigmoid(a) @ self.V[i]
            v[:, i] = (noise[:, i] < torch.sigmoid(logit / temperature)).to(v.dtype)
            a = a + v[:, i : i + 1] * self.W[:, i]
        return v

"""A Transformer layer over the steps of a sequence, conditioned on one vector per example (a diffusion
timestep's embedding): the attention and MLP of `genzoo.nn.attention`, with adaptive LayerNorm.

Adaptive LayerNorm (adaLN-Zero, Peebles & Xie 2023, "Scalable Diffusion Models with Transformers"):
the condition c gives each sub-layer a shift, a scale and a gate,

    x <- x + gate(c) * f(LayerNorm(x) * (1 + scale(c)) + shift(c))

with the map from c zero-initialised, so every layer starts as the identity and the timestep steers
every layer, not only the input it is added to.
"""

from __future__ import annotations

import torch
from torch import nn

from genzoo.nn.attention import MLP, Attention


class ConditionedBlock(nn.Module):
    """Bidirectional pre-LayerNorm Transformer block with adaLN-Zero: (B, L, d), (B, cond) -> (B, L, d)."""

    def __init__(self, d_model: int, n_heads: int, cond_dim: int, dropout: float = 0.0):
        super().__init__()
        self.ln_1 = nn.LayerNorm(d_model, elementwise_affine=False)
        self.attn = Attention(d_model, n_heads, dropout, bias=True, causal=False)
        self.ln_2 = nn.LayerNorm(d_model, elementwise_affine=False)
        self.mlp = MLP(d_model, dropout, bias=True)
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(cond_dim, 6 * d_model))
        nn.init.zeros_(self.modulation[1].weight)
        nn.init.zeros_(self.modulation[1].bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        shift_1, scale_1, gate_1, shift_2, scale_2, gate_2 = self.modulation(cond)[:, None].chunk(6, dim=-1)
        x = x + gate_1 * self.attn(self.ln_1(x) * (1 + scale_1) + shift_1)
        return x + gate_2 * self.mlp(self.ln_2(x) * (1 + scale_2) + shift_2)


__all__ = ["ConditionedBlock"]

"""Transformer pieces shared by the GPT and the encoder-decoder: attention (self and cross, with a
key/value cache for generation), the MLP, and the pre-LayerNorm block that holds them.

Attention goes through `F.scaled_dot_product_attention`, which picks a fused kernel when it can.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class KVCache:
    """Keys and values of the positions already processed by one attention layer.

    Generation feeds one new position at a time; each layer appends its key and value here
    instead of recomputing them for the whole prefix. `reorder` follows beam search.
    """

    def __init__(self) -> None:
        self.k: torch.Tensor | None = None
        self.v: torch.Tensor | None = None

    @property
    def length(self) -> int:
        return 0 if self.k is None else self.k.shape[2]

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.k = k if self.k is None else torch.cat([self.k, k], dim=2)
        self.v = v if self.v is None else torch.cat([self.v, v], dim=2)
        return self.k, self.v

    def reorder(self, index: torch.Tensor) -> None:
        if self.k is not None:
            self.k, self.v = self.k[index], self.v[index]


class Attention(nn.Module):
    """Multi-head attention. Self-attention when `memory` is None (optionally causal), else
    cross-attention from `x` to `memory` (the encoder's output)."""

    def __init__(self, n_embd: int, n_head: int, dropout: float, bias: bool, causal: bool):
        super().__init__()
        if n_embd % n_head:
            raise ValueError(f"n_embd ({n_embd}) must be a multiple of n_head ({n_head})")
        self.n_head, self.causal, self.dropout = n_head, causal, dropout
        self.q = nn.Linear(n_embd, n_embd, bias=bias)
        self.kv = nn.Linear(n_embd, 2 * n_embd, bias=bias)
        self.proj = nn.Linear(n_embd, n_embd, bias=bias)
        self.resid_dropout = nn.Dropout(dropout)

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        b, n, c = t.shape
        return t.view(b, n, self.n_head, c // self.n_head).transpose(1, 2)  # (B, H, N, D)

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor | None = None,
        key_mask: torch.Tensor | None = None,
        cache: KVCache | None = None,
    ) -> torch.Tensor:
        """`key_mask` (B, S) is True at keys that may be attended to (False at padding)."""
        b, t, c = x.shape
        q = self._heads(self.q(x))
        if memory is not None and cache is not None and cache.k is not None:
            k, v = cache.k, cache.v  # the encoder's keys and values do not change while decoding
        else:
            k, v = (self._heads(z) for z in self.kv(x if memory is None else memory).split(c, dim=2))
            if cache is not None:
                k, v = cache.append(k, v)
        mask = None if key_mask is None else key_mask[:, None, None, :]
        # Causal with a cache: the t new queries sit at the end of k, so they see every cached key.
        is_causal = self.causal and memory is None and t > 1
        if is_causal and k.shape[2] != t:
            past = k.shape[2] - t
            causal = torch.ones(t, k.shape[2], dtype=torch.bool, device=x.device).tril(past)
            mask = causal if mask is None else mask & causal
            is_causal = False
        elif is_causal and mask is not None:
            mask = mask & torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
            is_causal = False
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0, is_causal=is_causal
        )
        return self.resid_dropout(self.proj(y.transpose(1, 2).reshape(b, t, c)))


class MLP(nn.Module):
    def __init__(self, n_embd: int, dropout: float, bias: bool):
        super().__init__()
        self.fc = nn.Linear(n_embd, 4 * n_embd, bias=bias)
        self.proj = nn.Linear(4 * n_embd, n_embd, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.proj(F.gelu(self.fc(x))))


class Block(nn.Module):
    """Pre-LayerNorm Transformer block: x + attn(ln(x)) [+ cross(ln(x), memory)] + mlp(ln(x))."""

    def __init__(
        self, n_embd: int, n_head: int, dropout: float, bias: bool, causal: bool, cross: bool = False
    ):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd, bias=bias)
        self.attn = Attention(n_embd, n_head, dropout, bias, causal)
        self.ln_cross = nn.LayerNorm(n_embd, bias=bias) if cross else None
        self.cross = Attention(n_embd, n_head, dropout, bias, causal=False) if cross else None
        self.ln_2 = nn.LayerNorm(n_embd, bias=bias)
        self.mlp = MLP(n_embd, dropout, bias)

    def forward(
        self,
        x: torch.Tensor,
        *,
        mask: torch.Tensor | None = None,
        memory: torch.Tensor | None = None,
        memory_mask: torch.Tensor | None = None,
        cache: tuple[KVCache, KVCache] | None = None,
    ) -> torch.Tensor:
        """`cache`: (self-attention cache, cross-attention cache) while generating."""
        x = x + self.attn(self.ln_1(x), key_mask=mask, cache=cache[0] if cache else None)
        if self.cross is not None:
            x = x + self.cross(
                self.ln_cross(x), memory, key_mask=memory_mask, cache=cache[1] if cache else None
            )
        return x + self.mlp(self.ln_2(x))

"""GPT (Radford et al. 2018, 2019): a decoder-only Transformer language model.

    p(text) = prod_t p(token_t | the block_size tokens before it)

Pre-LayerNorm blocks with causal self-attention (`genzoo.nn.attention`), learned position
embeddings, the token embedding tied to the output layer. Config names follow nanoGPT
(`block_size`, `n_layer`, `n_head`, `n_embd`, `dropout`, `bias`) so its users feel at home.

Training batches are rows of tokens (`genzoo.data.text`); `loss` takes a random window of
`block_size + 1` tokens from each row, as nanoGPT draws random offsets into the corpus.
`log_prob(row)` scores a row in consecutive windows of `block_size` tokens, so every token is
predicted once, with between 1 and `block_size` tokens of context (as nanoGPT's val loss).

Generation keeps a key/value cache (`kv_cache=False` recomputes everything, for comparison).
Once the text outgrows the context, the window jumps forward to keep its last `block_size // 2`
tokens and the cache is rebuilt from them; both paths use this same window, so greedy decoding
gives the same tokens with and without the cache.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from genzoo.data.base import DataInfo
from genzoo.data.text import Tokenizer
from genzoo.errors import GenzooError
from genzoo.generation import TextStream, check_sampling_options, next_token
from genzoo.models.base import ModelConfig, split_batch
from genzoo.models.registry import register_model
from genzoo.models.tokenized import TokenizedModel
from genzoo.nn.attention import Block, KVCache
from genzoo.progress import track


@dataclass
class GPTConfig(ModelConfig):
    block_size: int = 64  # context length in tokens
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 64
    dropout: float = 0.0  # short runs on small corpora barely overfit; 0.2 for long runs
    bias: bool = False  # biases in Linear and LayerNorm layers


@register_model
class GPT(TokenizedModel):
    """Decoder-only Transformer language model (nanoGPT-style), exact NLL per token."""

    can_complete = True
    output = "text"

    Config = GPTConfig
    name = "gpt"
    family = "autoregressive"
    modalities = ("text",)
    log_prob_kind = "exact"
    # Chosen for a CPU and a few minutes (benchmarks/gpt_shakespeare.py): a narrower model than
    # nanoGPT's CPU example with larger batches sees more text in the same time, and short runs of
    # small models like a large learning rate (tiny Shakespeare val loss, seed 0, equal time: lr 3e-3
    # 1.75, 6e-3 1.68, 8e-3 1.68, 1.2e-2 1.69; 6e-3 leaves room for other corpora and BPE). Raise
    # n_embd/block_size and lower lr for long runs.
    train_defaults = {
        "lr": 6e-3,
        "batch_size": 32,
        "betas": (0.9, 0.99),
        "weight_decay": 0.1,
        "warmup_steps": 100,
        "min_lr_ratio": 0.1,
        "grad_clip": 1.0,
        "max_steps": 2000,
        "eval_every": 250,
        "keep_best": True,  # small data overfit: keep the best validation's weights
    }

    def __init__(self, config: GPTConfig):
        super().__init__(config)
        c = config
        if self.vocab_size is None or self.vocab_size < 2:
            raise GenzooError("gpt needs tokenized text data (a vocabulary of at least 2 tokens)")
        self.wte = nn.Embedding(self.vocab_size, c.n_embd)
        self.wpe = nn.Embedding(c.block_size, c.n_embd)
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(
            Block(c.n_embd, c.n_head, c.dropout, c.bias, causal=True) for _ in range(c.n_layer)
        )
        self.ln_f = nn.LayerNorm(c.n_embd, bias=c.bias)
        self.lm_head = nn.Linear(c.n_embd, self.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # weight tying (Press & Wolf 2017)
        self.apply(self._init_weights)
        # GPT-2: scale the residual projections by 1/sqrt(2 n_layer) so depth does not grow the stream.
        for name, p in self.named_parameters():
            if name.endswith("proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * c.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    # ---- data and tokenizer -----------------------------------------------------------
    @classmethod
    def for_data(cls, info: DataInfo, **overrides: Any) -> GPT:
        model = super().for_data(info, **overrides)
        row = info.shape[0]
        if row < model.config.block_size + 1:
            raise GenzooError(
                f"the text is too short for the context length: rows of {row} tokens (its shorter split), and "
                f"block_size={model.config.block_size} needs {model.config.block_size + 1}; "
                f"use a longer text or --set block_size={max(1, row - 1)}"
            )
        return model

    def no_weight_decay(self) -> list[nn.Parameter]:
        return [self.wte.weight, self.wpe.weight]

    # ---- the network ------------------------------------------------------------------
    def forward(self, idx: torch.Tensor, caches: list[KVCache] | None = None, pos0: int = 0) -> torch.Tensor:
        """Logits (B, T, V) for tokens `idx` (B, T) at positions pos0.. of the window."""
        pos = torch.arange(pos0, pos0 + idx.shape[1], device=idx.device)
        x = self.drop(self.wte(idx) + self.wpe(pos))
        for i, block in enumerate(self.blocks):
            x = block(x, cache=(caches[i], None) if caches is not None else None)
        return self.lm_head(self.ln_f(x))

    def loss(self, batch: Any, phase: str = "main") -> dict[str, torch.Tensor]:
        rows = split_batch(batch)[0].long()
        span = self.config.block_size + 1
        offsets = torch.randint(rows.shape[1] - span + 1, (len(rows), 1), device=rows.device)
        windows = rows.gather(1, offsets + torch.arange(span, device=rows.device))
        logits = self(windows[:, :-1])
        loss = F.cross_entropy(logits.flatten(0, 1), windows[:, 1:].flatten())
        return {"loss": loss}

    def scored_dims(self, shape: tuple[int, ...]) -> int:
        return math.prod(shape) - 1  # the first token of a row is given, not predicted

    @torch.no_grad()
    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Sum over tokens 1.. of each row of log p(token | context), nats (the first token is given)."""
        rows = x.long()
        total = torch.zeros(len(rows), device=rows.device)
        for s in range(0, rows.shape[1] - 1, self.config.block_size):
            inputs = rows[:, s : s + self.config.block_size]
            targets = rows[:, s + 1 : s + 1 + self.config.block_size]
            logits = self(inputs[:, : targets.shape[1]])
            total += -F.cross_entropy(logits.transpose(1, 2), targets, reduction="none").sum(1)
        return total

    # ---- generation -------------------------------------------------------------------
    @torch.no_grad()
    def generate(
        self,
        idx: torch.Tensor,
        max_new_tokens: int,
        *,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        generator: torch.Generator | None = None,
        kv_cache: bool = True,
        on_token: Callable[[torch.Tensor], bool] | None = None,
    ) -> torch.Tensor:
        """Append up to `max_new_tokens` to each row of `idx` (B, T); `on_token(new (B,))` may return
        True to stop early. Returns (B, T + generated)."""
        size = self.config.block_size
        start = max(0, idx.shape[1] - size)  # a longer prompt keeps only its last block_size tokens
        caches: list[KVCache] | None = None
        for _ in track(range(max_new_tokens), unit="token"):
            if idx.shape[1] - start > size:  # the window is full: jump forward, rebuild the cache
                start = idx.shape[1] - max(1, size // 2)
                caches = None
            if not kv_cache:
                logits = self(idx[:, start:])
            elif caches is None:
                caches = [KVCache() for _ in self.blocks]
                logits = self(idx[:, start:], caches)
            else:
                logits = self(idx[:, -1:], caches, pos0=idx.shape[1] - 1 - start)
            token = next_token(
                logits[:, -1], temperature=temperature, top_k=top_k, top_p=top_p, generator=generator
            )
            idx = torch.cat([idx, token], dim=1)
            if on_token is not None and on_token(token[:, 0]):
                break
        return idx

    def _tokenizer(self) -> Tokenizer:
        if self.tokenizer is None:
            raise GenzooError("this gpt has no tokenizer (tokenizer.json); train it with `genzoo train gpt`")
        return self.tokenizer

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        prompt: str = "",
        max_new_tokens: int = 128,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        stop: str | list[str] | None = None,
        kv_cache: bool = True,
        stream: Callable[[str], None] | None = None,
    ) -> list[str]:
        """`n` continuations of `prompt` (prompt included), cut at the first `stop` string.
        `stream(text)` receives the first sample's new text as it is generated."""
        check_sampling_options(temperature, top_k, top_p)
        if max_new_tokens < 1:
            raise GenzooError(f"--max-new-tokens must be >= 1, got {max_new_tokens}")
        tok = self._tokenizer()
        # Without a prompt, start from a newline (as nanoGPT), or token 0 if the text had none.
        ids = tok.encode(prompt) if prompt else (tok.encode("\n")[:1] if _encodes(tok, "\n") else [0])
        if len(ids) > self.config.block_size:
            warnings.warn(
                f"the prompt has {len(ids)} tokens, more than the context of {self.config.block_size}; "
                "only its last block_size tokens condition the sample",
                stacklevel=2,
            )
        stops = [stop] if isinstance(stop, str) else list(stop or [])
        streams = [TextStream(tok.decode, stops, stream if i == 0 else None) for i in range(n)]

        def push(new: torch.Tensor) -> bool:
            for s, t in zip(streams, new.tolist(), strict=True):
                s.push(t)
            return all(s.done for s in streams)

        idx = torch.tensor([ids] * n, dtype=torch.long, device=self.device)
        with self.inference():
            self.generate(
                idx,
                max_new_tokens,
                temperature=temperature,
                top_k=top_k,
                top_p=top_p,
                generator=generator,
                kv_cache=kv_cache,
                on_token=push,
            )
        return [prompt + s.finish() for s in streams]


def _encodes(tok: Tokenizer, text: str) -> bool:
    try:
        return bool(tok.encode(text))
    except GenzooError:
        return False

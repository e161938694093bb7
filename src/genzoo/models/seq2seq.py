"""Transformer encoder-decoder (Vaswani et al. 2017) for sequence-to-sequence tasks:
translation, summarisation, normalisation (`dates`: "3rd of March 2021" -> "2021-03-03").

    p(target | source) = prod_t p(target_t | target_<t, encoder(source))

Pre-LayerNorm blocks from `genzoo.nn.attention`: the encoder attends over the whole source
(padding masked), the decoder causally over its own prefix and across to the encoder output.
One character vocabulary for both sides (with <pad>, <bos>, <eos>), embeddings tied to the
output layer, label smoothing in the training loss. Decoding: greedy, sampling (temperature,
top-k, top-p) or beam search with a length penalty, all with a key/value cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from genzoo.data.dates import BOS, EOS, PAD
from genzoo.errors import GenzooError
from genzoo.generation import check_sampling_options, next_token
from genzoo.models.base import ModelConfig, split_batch
from genzoo.models.registry import register_model
from genzoo.models.tokenized import TokenizedModel
from genzoo.nn.attention import Block, KVCache
from genzoo.progress import track


@dataclass
class Seq2SeqConfig(ModelConfig):
    n_layer: int = 2  # encoder blocks
    n_decoder_layer: int = 2
    n_head: int = 4
    n_embd: int = 64
    dropout: float = 0.0  # the embedded tasks are large and easy; raise it for small real corpora
    bias: bool = False
    label_smoothing: float = 0.1
    max_len: int = 256  # longest source or target, in tokens (learned positions)


@register_model
class Seq2Seq(TokenizedModel):
    """Transformer encoder-decoder with cross-attention; greedy and beam-search decoding."""

    takes_inputs = True
    output = "text"

    Config = Seq2SeqConfig
    name = "seq2seq"
    family = "transformer"
    modalities = ("text-pairs",)
    log_prob_kind = "exact"  # of the target given the source
    train_defaults = {
        "lr": 2e-3,
        "batch_size": 64,
        "betas": (0.9, 0.98),
        "weight_decay": 0.01,
        "warmup_steps": 100,
        "grad_clip": 1.0,
        "max_steps": 2000,
        "eval_every": 500,
        "keep_best": True,  # small data overfit: keep the best validation's weights
    }

    def __init__(self, config: Seq2SeqConfig):
        super().__init__(config)
        c = config
        if self.vocab_size is None or self.vocab_size < 4:
            raise GenzooError("seq2seq needs tokenized sequence pairs (e.g. --data dates or a .tsv file)")
        if c.data_shape[-1] > c.max_len:
            raise GenzooError(f"sequences of {c.data_shape[-1]} tokens exceed max_len={c.max_len}; raise it")
        self.embed = nn.Embedding(self.vocab_size, c.n_embd)
        self.pos = nn.Embedding(c.max_len, c.n_embd)
        self.drop = nn.Dropout(c.dropout)
        self.encoder = nn.ModuleList(
            Block(c.n_embd, c.n_head, c.dropout, c.bias, causal=False) for _ in range(c.n_layer)
        )
        self.ln_enc = nn.LayerNorm(c.n_embd, bias=c.bias)
        self.decoder = nn.ModuleList(
            Block(c.n_embd, c.n_head, c.dropout, c.bias, causal=True, cross=True)
            for _ in range(c.n_decoder_layer)
        )
        self.ln_f = nn.LayerNorm(c.n_embd, bias=c.bias)
        self.head = nn.Linear(c.n_embd, self.vocab_size, bias=False)
        self.head.weight = self.embed.weight
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                nn.init.normal_(module.weight, std=0.02)

    # ---- training ---------------------------------------------------------------------
    def no_weight_decay(self) -> list[nn.Parameter]:
        return [self.embed.weight, self.pos.weight]

    # ---- the network ------------------------------------------------------------------
    def _embed(self, ids: torch.Tensor, pos0: int = 0) -> torch.Tensor:
        pos = torch.arange(pos0, pos0 + ids.shape[1], device=ids.device)
        return self.drop(self.embed(ids) + self.pos(pos))

    def encode(self, source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder output (B, S, C) and its key mask (True at real tokens)."""
        mask = source != PAD
        mask[:, 0] = True  # an empty source still has one position to attend to
        x = self._embed(source)
        for block in self.encoder:
            x = block(x, mask=mask)
        return self.ln_enc(x), mask

    def decode(
        self,
        prefix: torch.Tensor,
        memory: torch.Tensor,
        memory_mask: torch.Tensor,
        caches: list[tuple[KVCache, KVCache]] | None = None,
        pos0: int = 0,
    ) -> torch.Tensor:
        """Next-token logits (B, T, V) for decoder inputs `prefix` (B, T) at positions pos0.."""
        x = self._embed(prefix, pos0)
        for i, block in enumerate(self.decoder):
            x = block(x, memory=memory, memory_mask=memory_mask, cache=caches[i] if caches else None)
        return self.head(self.ln_f(x))

    def _logits(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        source, target = rows[:, 0], rows[:, 1]
        memory, mask = self.encode(source)
        bos = torch.full_like(target[:, :1], BOS)
        return self.decode(torch.cat([bos, target[:, :-1]], dim=1), memory, mask), target

    def loss(self, batch: Any, phase: str = "main") -> dict[str, torch.Tensor]:
        logits, target = self._logits(split_batch(batch)[0].long())
        flat, labels = logits.flatten(0, 1), target.flatten()
        loss = F.cross_entropy(flat, labels, ignore_index=PAD, label_smoothing=self.config.label_smoothing)
        nll = F.cross_entropy(flat.detach(), labels, ignore_index=PAD)
        return {"loss": loss, "nll": nll}

    @torch.no_grad()
    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(target | source) per pair, nats (target tokens up to and including <eos>)."""
        logits, target = self._logits(x.long())
        token_lp = -F.cross_entropy(logits.transpose(1, 2), target, ignore_index=PAD, reduction="none")
        return token_lp.sum(1)

    # ---- decoding ---------------------------------------------------------------------
    def _new_caches(self) -> list[tuple[KVCache, KVCache]]:
        return [(KVCache(), KVCache()) for _ in self.decoder]

    def _encode_texts(self, texts: list[str]) -> torch.Tensor:
        if self.tokenizer is None:
            raise GenzooError(
                "this seq2seq model has no tokenizer (tokenizer.json); train it with `genzoo train`"
            )
        ids = [self.tokenizer.encode(t) for t in texts]
        longest = max(1, *(len(i) for i in ids))
        if longest > self.config.max_len:
            raise GenzooError(
                f"an input has {longest} characters; this model reads at most {self.config.max_len}"
            )
        rows = torch.full((len(ids), longest), PAD, dtype=torch.long)
        for r, i in enumerate(ids):
            rows[r, : len(i)] = torch.tensor(i, dtype=torch.long)
        return rows.to(self.device)

    @torch.no_grad()
    def generate(
        self,
        source: torch.Tensor,
        max_new_tokens: int,
        *,
        temperature: float = 0.0,
        top_k: int | None = None,
        top_p: float | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Target ids (B, <= max_new_tokens) by greedy decoding (temperature 0) or sampling, <pad> after <eos>."""
        memory, mask = self.encode(source)
        caches = self._new_caches()
        out = torch.full((len(source), 1), BOS, dtype=torch.long, device=source.device)
        done = torch.zeros(len(source), dtype=torch.bool, device=source.device)
        for t in track(range(max_new_tokens), unit="token"):
            logits = self.decode(out[:, -1:], memory, mask, caches, pos0=t)[:, -1]
            token = next_token(logits, temperature=temperature, top_k=top_k, top_p=top_p, generator=generator)
            token = token.masked_fill(done[:, None], PAD)
            out = torch.cat([out, token], dim=1)
            done |= token[:, 0] == EOS
            if done.all():
                break
        return out[:, 1:]

    @torch.no_grad()
    def beam_search(
        self, source: torch.Tensor, max_new_tokens: int, beam_size: int = 4, length_penalty: float = 1.0
    ) -> torch.Tensor:
        """The best target (B, T) per source under score / ((5 + length) / 6) ** length_penalty (GNMT)."""
        b, k, vocab = len(source), beam_size, self.vocab_size
        memory, mask = self.encode(source)
        memory, mask = memory.repeat_interleave(k, 0), mask.repeat_interleave(k, 0)
        caches = self._new_caches()
        seqs = torch.full((b * k, 1), BOS, dtype=torch.long, device=source.device)
        scores = torch.full((b, k), float("-inf"), device=source.device)
        scores[:, 0] = 0.0  # all beams start identical: keep one so the first step does not pick duplicates
        done = torch.zeros(b * k, dtype=torch.bool, device=source.device)
        for t in track(range(max_new_tokens), unit="token"):
            logp = self.decode(seqs[:, -1:], memory, mask, caches, pos0=t)[:, -1].log_softmax(-1)
            # A finished hypothesis continues only with <pad>, at no cost, so its score stays.
            finished = torch.full_like(logp, float("-inf"))
            finished[:, PAD] = 0.0
            logp = torch.where(done[:, None], finished, logp)
            total = (scores.view(-1, 1) + logp).view(b, k * vocab)
            scores, flat = total.topk(k, dim=1)
            origin = (flat // vocab + torch.arange(b, device=source.device)[:, None] * k).view(-1)
            token = (flat % vocab).view(-1, 1)
            for cache, _ in caches:
                cache.reorder(origin)
            seqs = torch.cat([seqs[origin], token], dim=1)
            done = done[origin] | (token[:, 0] == EOS)
            if done.all():
                break
        final_len = (seqs[:, 1:] != PAD).sum(1).float()
        normalised = scores.view(-1) / ((5 + final_len) / 6) ** length_penalty
        best = normalised.view(b, k).argmax(1) + torch.arange(b, device=source.device) * k
        return seqs[best, 1:]

    def _decode_ids(self, ids: torch.Tensor) -> list[str]:
        texts = []
        for row in ids.tolist():
            row = row[: row.index(EOS)] if EOS in row else row
            texts.append(self.tokenizer.decode([i for i in row if i != PAD]))
        return texts

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        inputs: str | list[str] | None = None,
        beam_size: int = 1,
        length_penalty: float = 1.0,
        temperature: float | None = None,
        top_k: int | None = None,
        top_p: float | None = None,
        max_new_tokens: int | None = None,
    ) -> list[str]:
        """Outputs for `inputs` (one per input; `n` of them for a single input), by greedy decoding,
        beam search (`beam_size` > 1) or sampling (`temperature` > 0). Without inputs: `n` samples
        (temperature 1) given an empty source."""
        if inputs is None:
            texts, temperature = [""] * n, 1.0 if temperature is None else temperature
        else:
            texts = [inputs] if isinstance(inputs, str) else list(inputs)
            texts = texts * n if len(texts) == 1 else texts
            temperature = 0.0 if temperature is None else temperature
        if not texts:
            raise GenzooError("no inputs to translate; give --input TEXT or a file with one input per line")
        check_sampling_options(temperature, top_k, top_p)
        if beam_size < 1:
            raise GenzooError(f"--beam-size must be >= 1, got {beam_size}")
        limit = max_new_tokens or self.config.data_shape[-1]
        with self.inference():
            source = self._encode_texts(texts)
            if beam_size > 1:
                ids = self.beam_search(source, limit, beam_size, length_penalty)
            else:
                ids = self.generate(
                    source, limit, temperature=temperature, top_k=top_k, top_p=top_p, generator=generator
                )
        return self._decode_ids(ids)

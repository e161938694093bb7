"""Token-by-token generation helpers shared by the text models: choosing the next token
(temperature, top-k, top-p), and turning a growing token sequence into text with stop strings
and streaming."""

from __future__ import annotations

from collections.abc import Callable

import torch

from genzoo.errors import GenzooError


def check_sampling_options(temperature: float, top_k: int | None, top_p: float | None) -> None:
    if temperature < 0:
        raise GenzooError(f"--temperature must be >= 0 (0 = greedy), got {temperature}")
    if top_k is not None and top_k < 1:
        raise GenzooError(f"--top-k must be >= 1, got {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise GenzooError(f"--top-p must be in (0, 1], got {top_p}")


def next_token(
    logits: torch.Tensor,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """(B, V) logits -> (B, 1) token ids. Temperature 0 is greedy (argmax)."""
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    logits = logits.float() / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1:
        # Nucleus: keep the most likely tokens whose total probability first reaches top_p.
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        drop_sorted = cumulative - sorted_logits.softmax(dim=-1) >= top_p  # mass before this token
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    probs = logits.softmax(dim=-1)
    source = generator.device if generator is not None else probs.device
    return torch.multinomial(probs.to(source), 1, generator=generator).to(logits.device)


class TextStream:
    """Decodes one row's new tokens as they come: cuts at the first stop string, and passes
    text that can no longer change (no partial stop string, no half-decoded byte) to `on_text`."""

    def __init__(
        self, decode: Callable[[list[int]], str], stop: list[str], on_text: Callable[[str], None] | None
    ):
        self.decode, self.stop, self.on_text = decode, [s for s in stop if s], on_text
        self.tokens: list[int] = []
        self.text = ""
        self.emitted = 0
        self.done = False

    def push(self, token: int) -> None:
        if self.done:
            return
        self.tokens.append(token)
        self.text = self.decode(self.tokens)
        hits = [self.text.find(s) for s in self.stop if s in self.text]
        if hits:
            self.text, self.done = self.text[: min(hits)], True
        self._emit()

    def finish(self) -> str:
        self.done = True
        self._emit()
        return self.text

    def _emit(self) -> None:
        if self.on_text is None:
            return
        safe = len(self.text)
        if not self.done:
            # Hold back what could still become a stop string, or a byte sequence half decoded.
            safe -= max((len(s) - 1 for s in self.stop), default=0)
            while safe > self.emitted and self.text[safe - 1] == "\ufffd":
                safe -= 1
        if safe > self.emitted:
            self.on_text(self.text[self.emitted : safe])
            self.emitted = safe

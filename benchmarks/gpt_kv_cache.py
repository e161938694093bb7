"""GPT generation speed with and without the key/value cache, measured in one run.

Generates 512 new tokens (greedy, so both paths must give the same text) from the default gpt
configuration, trained on tiny Shakespeare by benchmarks/gpt_shakespeare.py when that run exists
(else freshly initialised: speed does not depend on the weights). Target: >= 5x faster with the
cache. Saves results/gpt_kv_cache.json.

    python benchmarks/gpt_kv_cache.py
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from common import save

from genzoo.data import load_dataset
from genzoo.models import get_model_class, load

RUN = Path(__file__).resolve().parent / "runs" / "bench-gpt-shakespeare" / "genzoo-default-seed0"
NEW_TOKENS = 512


def timed(model, **options) -> tuple[str, float]:
    start = time.perf_counter()
    text = model.sample(1, prompt="ROMEO:", max_new_tokens=NEW_TOKENS, temperature=0.0, **options)[0]
    return text, time.perf_counter() - start


def measure(model, source: str) -> dict:
    timed(model, kv_cache=True)  # warm-up
    cached_text, cached = timed(model, kv_cache=True)
    plain_text, plain = timed(model, kv_cache=False)
    return {
        "model": source,
        "config": {k: getattr(model.config, k) for k in ("block_size", "n_layer", "n_head", "n_embd")},
        "params": sum(p.numel() for p in model.parameters()),
        "new_tokens": NEW_TOKENS,
        "seconds_with_cache": round(cached, 3),
        "seconds_without_cache": round(plain, 3),
        "speedup": round(plain / cached, 2),
        "tokens_per_second_with_cache": round(NEW_TOKENS / cached, 1),
        "identical_greedy_text": cached_text == plain_text,
        "greedy_sample": cached_text,
    }


def main() -> None:
    torch.set_num_threads(1)
    info = load_dataset("shakespeare").info
    if (RUN / "model.safetensors").is_file():
        small, source = load(RUN), str(RUN)
    else:
        torch.manual_seed(0)
        small, source = get_model_class("gpt").for_data(info), "default config, untrained"
    torch.manual_seed(0)
    # A longer context and a wider model, where generation time matters (speed does not depend
    # on the weights, so it is left untrained).
    larger = get_model_class("gpt").for_data(info, block_size=256, n_layer=4, n_head=4, n_embd=256)
    result = {
        "default": measure(small, source),
        "block256_width256": measure(larger, "block_size 256, 4 layers, width 256, untrained"),
    }
    result["target"] = ">= 5x faster with the cache at 512 new tokens, identical greedy tokens"
    save("gpt_kv_cache", result)


if __name__ == "__main__":
    main()

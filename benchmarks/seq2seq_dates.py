"""Transformer encoder-decoder on `dates`: human-written dates (many formats, 7 languages) to ISO 8601.

Trains genzoo's default seq2seq configuration, then decodes the 1,000 held-out test pairs (no
test source appears in training) greedily and with beam search; exact match, chrF and BLEU.
Target: exact match >= 99%, beam >= greedy. Saves results/seq2seq_dates.json with examples.

    python benchmarks/seq2seq_dates.py [--max-steps 3000]
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import torch
from common import logged_train_seconds, save

from genzoo.data import load_dataset
from genzoo.metrics.text import bleu, chrf, exact_match
from genzoo.train.run import train

RUN = Path(__file__).resolve().parent / "runs" / "bench-seq2seq-dates"
EXAMPLES = [
    "3rd of March 2021",
    "le 14 juillet 1789",
    "Tuesday, December 25, 2029",
    "7. Mai 1945",
    "20000101",
]


def decode_scores(model, sources: list[str], references: list[str], **options) -> dict:
    start = time.perf_counter()
    outputs = []
    for i in range(0, len(sources), 250):
        outputs += model.sample(1, inputs=sources[i : i + 250], **options)
    return {
        "exact_match": round(exact_match(outputs, references), 4),
        "chrf": round(chrf(outputs, references), 2),
        "bleu": round(bleu(outputs, references), 2),
        "seconds": round(time.perf_counter() - start, 1),
        "errors": [(s, o, r) for s, o, r in zip(sources, outputs, references, strict=True) if o != r][:10],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-steps", type=int, default=None, help="default: the model's training default")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if RUN.exists():
        shutil.rmtree(RUN)
    settings = {"max_steps": args.max_steps} if args.max_steps else {}
    model, metrics = train("seq2seq", "dates", RUN, settings, device="cpu", quiet=True)
    test = load_dataset("dates").pairs["test"]
    sources, references = [s for s, _ in test], [t for _, t in test]
    greedy = decode_scores(model, sources, references)
    beam = decode_scores(model, sources, references, beam_size=4, length_penalty=1.0)
    result = {
        "command": "genzoo train seq2seq --data dates --out R; genzoo sample R --input '3rd of March 2021'",
        "settings": settings,
        "train_seconds": logged_train_seconds(RUN),
        "val_nll_per_token": metrics.get("val_nll"),
        "test_pairs": len(test),
        "greedy": greedy,
        "beam4": beam,
        "beam_at_least_greedy": beam["exact_match"] >= greedy["exact_match"],
        "target_met": min(greedy["exact_match"], beam["exact_match"]) >= 0.99,
        "examples": dict(zip(EXAMPLES, model.sample(1, inputs=EXAMPLES, beam_size=4), strict=True)),
    }
    save("seq2seq_dates", result)


if __name__ == "__main__":
    main()

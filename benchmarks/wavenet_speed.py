"""WaveNet generation speed: fast (per-layer queues) against naive (recompute the receptive field).

    python benchmarks/wavenet_speed.py [--samples 16000] [--naive-samples 3000] [--seed 0]

Target (issue 8): with 2 stacks of 10 layers (receptive field 2047 samples), generating 16,000
samples is at least 20x faster in fast mode than in naive mode, and both modes give identical
samples for the same seed. One process measures both. Fast mode generates all 16,000 samples.
Naive mode costs about RF x more per sample, so by default it generates the first
`--naive-samples` (past the receptive field, where its step cost stops growing) and the rest is
extrapolated at its measured steady per-sample cost (the JSON says which numbers are measured and
which extrapolated; `--naive-samples 16000` measures everything). Identity is checked on the
samples both modes generated. The weights are random: speed does not depend on them.
"""

from __future__ import annotations

import argparse
import time

import torch
from common import save

from genzoo.models.wavenet import WaveNet, WaveNetConfig


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=16000)
    parser.add_argument("--naive-samples", type=int, default=3000)
    parser.add_argument("--steady-steps", type=int, default=50, help="naive steps timed at a full window")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--channels", type=int, default=64, help="residual and gate channels")
    parser.add_argument("--skip-channels", type=int, default=128)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    config = WaveNetConfig(
        data_shape=(1, args.samples),
        stacks=2,
        layers=10,
        residual_channels=args.channels,
        gate_channels=args.channels,
        skip_channels=args.skip_channels,
        head_channels=args.skip_channels,
        num_classes=4,
    )
    model = WaveNet(config).eval()
    rf = model.receptive_field

    def generate(mode: str, length: int) -> torch.Tensor:
        return model.sample(
            1, generator=torch.Generator().manual_seed(args.seed), length=length, label=0, mode=mode
        )

    fast, fast_seconds = timed(lambda: generate("fast", args.samples))
    prefix = min(args.naive_samples, args.samples)
    naive, naive_prefix_seconds = timed(lambda: generate("naive", prefix))
    _, fast_prefix_seconds = timed(lambda: generate("fast", prefix))
    # A naive step once the window is full: the stack over RF samples, keep the last output.
    window = torch.randint(256, (1, rf))
    label = torch.zeros(1, dtype=torch.long)
    with torch.no_grad():
        _, steady = timed(lambda: [model.logits(window, label)[:, :, -1] for _ in range(args.steady_steps)])
    steady_per_sample = steady / args.steady_steps
    naive_total = naive_prefix_seconds + (args.samples - prefix) * steady_per_sample
    fast_prefix = fast[..., :prefix]
    same = fast_prefix == naive
    first_diff = int((~same).flatten().nonzero()[0]) if not same.all() else None
    speedup = naive_total / fast_seconds
    save(
        "wavenet_speed",
        {
            "config": {
                "stacks": 2,
                "layers_per_stack": 10,
                "residual_channels": config.residual_channels,
                "gate_channels": config.gate_channels,
                "skip_channels": config.skip_channels,
                "head_channels": config.head_channels,
                "receptive_field": rf,
                "batch": 1,
                "dtype": "float32",
            },
            "samples": args.samples,
            "fast_seconds": round(fast_seconds, 2),
            "fast_ms_per_sample": round(1000 * fast_seconds / args.samples, 3),
            "naive_samples_measured": prefix,
            "naive_seconds_measured": round(naive_prefix_seconds, 2),
            "naive_steady_ms_per_sample": round(1000 * steady_per_sample, 3),
            "naive_seconds_for_all": round(naive_total, 2),
            "naive_seconds_for_all_is": "measured"
            if prefix == args.samples
            else "measured prefix + extrapolated rest",
            "speedup": round(speedup, 1),
            "fast_seconds_on_prefix": round(fast_prefix_seconds, 2),
            "speedup_on_measured_prefix": round(naive_prefix_seconds / fast_prefix_seconds, 1),
            "target_speedup": 20,
            "identical_samples": bool(same.all()),
            "identical_samples_compared": prefix,
            "first_difference_at": first_diff,
        },
    )


if __name__ == "__main__":
    main()

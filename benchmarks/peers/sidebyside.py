"""What every side-by-side benchmark shares: one thread, alternating timed rounds, genzoo trainers
built as `genzoo train` builds them, parameter counts, and one row format for run.py's table.

A pair is two callables doing the same unit of work (one optimizer step, one batch of samples) in
genzoo and in the peer library. `alternate` times them in rounds, taking turns at going first, so a
burst of load on the machine slows both alike; the rate reported is the median over rounds.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/common.py

from common import save  # noqa: E402

from genzoo.data import load_dataset  # noqa: E402
from genzoo.models import get_model_class  # noqa: E402
from genzoo.train.config import TrainConfig  # noqa: E402
from genzoo.train.run import build_model  # noqa: E402
from genzoo.train.trainer import Trainer  # noqa: E402

__all__ = [
    "alternate", "batches", "genzoo_trainer", "one_thread", "over_seeds", "parameter_count", "row", "run_alone",
    "save", "spread", "table",
]  # fmt: skip


def one_thread(seed: int = 0) -> None:
    """One intra-op thread for both sides (the issue's rule), and a seeded global stream."""
    torch.set_num_threads(1)
    torch.manual_seed(seed)


def parameter_count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def alternate(work: dict[str, Callable[[], object]], rounds: int, calls: int, warmup: int = 1) -> dict:
    """Rates of each contender's `work()` in calls per second: `warmup` untimed calls each, then
    `rounds` rounds of `calls` timed calls each, the order reversed every round. Returns per name the
    median wall-clock rate over rounds, the rate per second of this thread's CPU time (steadier when
    other jobs share the machine), and how many calls it made in all (for equal-steps quality).
    """
    names = list(work)
    wall: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    for name in names:
        for _ in range(warmup):
            work[name]()
    for r in range(rounds):
        for name in names if r % 2 == 0 else reversed(names):
            start, start_cpu = time.perf_counter(), time.thread_time()
            for _ in range(calls):
                work[name]()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.thread_time() - start_cpu)
    return {
        n: {
            "rate": calls / statistics.median(wall[n]),
            "cpu_rate": calls / statistics.median(cpu[n]),
            "calls": warmup + rounds * calls,
            "seconds": sum(wall[n]),
        }
        for n in names
    }


def batches(x: torch.Tensor, size: int, seed: int = 0) -> Iterator[torch.Tensor]:
    """Endless batches of `x` for the peer's side: a fresh seeded permutation each epoch, as genzoo's
    Trainer draws its own."""
    for epoch in itertools.count():
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
        for start in range(0, len(x), size):
            yield x[order[start : start + size]]


def genzoo_trainer(model: str, data: str, settings: dict, seed: int = 0, **data_options) -> Trainer:
    """A Trainer on CPU as `genzoo train MODEL --data DATA --set ...` would build it (training
    settings and model settings told apart by name), writing nothing until asked."""
    dataset = load_dataset(data, prefer=get_model_class(model).modalities, **data_options)
    cls = get_model_class(model)
    train_names = set(TrainConfig.field_names())
    train_settings = {**cls.train_defaults, **{k: v for k, v in settings.items() if k in train_names}}
    model_settings = {k: v for k, v in settings.items() if k not in train_names}
    network = build_model(cls, dataset, model_settings, seed)
    config = TrainConfig.from_dict({**train_settings, "seed": seed})
    return Trainer(
        network, dataset, config, tempfile.mkdtemp(prefix="genzoo-peers-"), device="cpu", quiet=True
    )


def row(
    pair: str, task: str, unit: str, rates: dict, names: tuple[str, str], per_call: int = 1, **extra
) -> dict:
    """One line of the side-by-side table from `alternate`'s rates: genzoo's rate, the peer's (in
    `unit`: calls per second times `per_call`, e.g. samples a call draws), their wall-clock ratio and
    their CPU-time ratio (> 1: genzoo faster), with whatever the pair adds (parameter counts, quality
    after the same steps)."""
    ours, theirs = (rates[n] for n in names)
    return {
        "pair": pair,
        "task": task,
        "unit": unit,
        "genzoo": round(ours["rate"] * per_call, 3),
        "peer": round(theirs["rate"] * per_call, 3),
        "ratio": round(ours["rate"] / theirs["rate"], 3),
        "cpu_ratio": round(ours["cpu_rate"] / theirs["cpu_rate"], 3),
        **extra,
    }


def spread(values: list[float], digits: int = 4) -> dict:
    """Mean, sample standard deviation and every value of one side's quality over seeds."""
    out = {"mean": round(statistics.fmean(values), digits)}
    if len(values) > 1:
        out |= {"sd": round(statistics.stdev(values), digits), "by_seed": [round(v, digits) for v in values]}
    return out


def over_seeds(
    first: tuple[float, float], again: Callable[[int], tuple[float, float]], seeds: int, digits: int = 4
) -> dict:
    """The quality of both sides after the same steps, from `seeds` seeds: `first` (genzoo's, the
    peer's) from the timed run (seed 0), then `again(seed)` for seeds 1, 2, ... (untimed runs of the
    same steps). Per side its `spread`, keyed "genzoo", "genzoo_sd", "genzoo_by_seed" (and "peer...")
    for the table: a gap smaller than the spread over seeds is not a gap."""
    values = [first] + [again(seed) for seed in range(1, seeds)]
    out: dict = {"seeds": seeds}
    for side, column in zip(("genzoo", "peer"), zip(*values, strict=True), strict=True):
        summary = spread(list(column), digits)
        out[side] = summary.pop("mean")
        out |= {f"{side}_{key}": value for key, value in summary.items()}
    return out


def quality_text(quality: dict | None) -> str:
    if not quality:
        return ""

    def value(side: str) -> str:
        spread = f" ± {quality[f'{side}_sd']:.2g}" if f"{side}_sd" in quality else ""
        return f"{quality[side]:.4g}{spread}"

    seeds = f", {quality['seeds']} seeds" if quality.get("seeds", 1) > 1 else ""
    return f"{quality['metric']} {value('genzoo')} vs {value('peer')} ({quality['better']} is better{seeds})"


def table(rows: list[dict]) -> str:
    lines = [
        "| pair | task | genzoo | peer | genzoo / peer (wall) | (CPU time) | parameters (genzoo / peer) "
        "| quality after the same steps |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        params = r.get("parameters", {})
        counts = f"{params['genzoo']:,} / {params['peer']:,}" if params else ""
        lines.append(
            f"| {r['pair']} | {r['task']} | {r['genzoo']:.4g} {r['unit']} | {r['peer']:.4g} {r['unit']} | "
            f"{r['ratio']:.2f} | {r['cpu_ratio']:.2f} | {counts} | {quality_text(r.get('quality'))} |"
        )
    return "\n".join(lines)


def run_alone(name: str, run: Callable[[bool], list[dict]]) -> None:
    """A pair's script run by itself: `--quick`, one thread, RESULTS/peers_NAME[_quick].json, the table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smoke check (under a minute)")
    args = parser.parse_args()
    one_thread()
    rows = run(args.quick)
    save(f"peers_{name}" + ("_quick" if args.quick else ""), {"rows": rows})
    print(table(rows))

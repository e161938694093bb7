"""GPT on tiny Shakespeare (character level): nanoGPT's CPU example, then genzoo's defaults in the same time.

1. nanoGPT's "shakespeare_char on a macbook" settings: context 64, batch 12, 4 layers, 4 heads,
   width 128, 2000 iterations, dropout 0, lr 1e-3 decayed to 1e-4 over 2000 iterations (with
   config/train_shakespeare_char.py's warmup 100, beta2 0.99, weight decay 0.1, grad clip 1).
   nanoGPT reports val loss 1.88 for it. genzoo trains it with `--seeds` (default three), and, as
   a check on genzoo's Trainer and data pipeline, nanoGPT's training loop written out in plain
   PyTorch (uniform random windows of the train stream, its lr formula, its decay groups) trains
   genzoo's GPT module with `--reference-seeds`. nanoGPT's figure comes from `--eval_iters=20`:
   the spread of such a 20-batch estimate on one trained model is measured too.
2. genzoo's default gpt configuration (model and training defaults), given the same training
   time: the cost of one of its steps relative to one nanoGPT step is timed in alternating
   rounds (so load from other processes hits both alike), and it gets 2000 / ratio steps, its
   cosine schedule ending with them. Both runs' measured wall times are saved too.

Val loss is measured as nanoGPT's estimate_loss does: the mean loss over 200 batches of random
windows of the validation text. Saves results/gpt_shakespeare.json with samples.

    python benchmarks/gpt_shakespeare.py [--seeds 0 1 2] [--reference-seeds 0 1] [--threads 1] [--reuse]
"""

from __future__ import annotations

import argparse
import math
import shutil
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from common import RESULTS, logged_train_seconds, save

from genzoo.data import load_dataset
from genzoo.models import get_model_class, load
from genzoo.train.run import train

RUNS = Path(__file__).resolve().parent / "runs" / "bench-gpt-shakespeare"
NANOGPT_CPU = {
    "block_size": 64,
    "batch_size": 12,
    "n_layer": 4,
    "n_head": 4,
    "n_embd": 128,
    "dropout": 0.0,
    "bias": False,
    "lr": 1e-3,
    "min_lr_ratio": 0.1,
    "lr_decay_steps": 2000,
    "max_steps": 2000,
    "warmup_steps": 100,
    "betas": [0.9, 0.99],
    "weight_decay": 0.1,
    "grad_clip": 1.0,
}
QUIET = {"eval_every": 0, "log_every": 100, "checkpoint_every": 10_000}


@torch.no_grad()
def nanogpt_val_loss(
    model, stream: torch.Tensor, batches: int = 200, batch_size: int = 12, seed: int = 0
) -> float:
    """Mean loss over `batches` batches of random windows, as nanoGPT's estimate_loss."""
    g = torch.Generator().manual_seed(seed)
    size = model.config.block_size
    losses = []
    model.eval()
    for _ in range(batches):
        starts = torch.randint(len(stream) - size - 1, (batch_size, 1), generator=g)
        windows = stream[starts + torch.arange(size + 1)]
        logits = model(windows[:, :-1])
        losses.append(float(F.cross_entropy(logits.flatten(0, 1), windows[:, 1:].flatten())))
    return sum(losses) / len(losses)


def estimate_spread(model, stream: torch.Tensor, batches: int = 20, repeats: int = 100) -> float:
    """Standard deviation of nanoGPT's `batches`-batch val estimate over `repeats` draws of windows."""
    values = [nanogpt_val_loss(model, stream, batches=batches, seed=1000 + r) for r in range(repeats)]
    return statistics.stdev(values)


def nanogpt_loop(data, seed: int) -> float:
    """nanoGPT's train.py loop for NANOGPT_CPU in plain PyTorch on genzoo's GPT module; val loss."""
    s = NANOGPT_CPU
    torch.manual_seed(seed)
    model = gpt_for(s, data)
    decay = [p for p in model.parameters() if p.dim() >= 2]  # nanoGPT decays the embeddings too
    rest = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": s["weight_decay"]}, {"params": rest, "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=s["lr"], betas=tuple(s["betas"]))
    lr, min_lr, warmup, decay_steps = (
        s["lr"],
        s["lr"] * s["min_lr_ratio"],
        s["warmup_steps"],
        s["lr_decay_steps"],
    )
    stream, size = data.streams["train"].long(), s["block_size"]
    model.train()
    for it in range(s["max_steps"]):
        if it < warmup:
            step_lr = lr * (it + 1) / (warmup + 1)
        else:
            ratio = (it - warmup) / (decay_steps - warmup)
            step_lr = min_lr + 0.5 * (1 + math.cos(math.pi * ratio)) * (lr - min_lr)
        for group in opt.param_groups:
            group["lr"] = step_lr
        starts = torch.randint(len(stream) - size, (s["batch_size"], 1))
        windows = stream[starts + torch.arange(size + 1)]
        logits = model(windows[:, :-1])
        loss = F.cross_entropy(logits.flatten(0, 1), windows[:, 1:].flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), s["grad_clip"])
        opt.step()
    return nanogpt_val_loss(model, data.streams["val"])


def gpt_for(settings: dict, data):
    """A fresh GPT for `data` with the model fields of `settings` (the rest are training settings)."""
    cls = get_model_class("gpt")
    fields = set(cls.Config.__dataclass_fields__)
    return cls.for_data(data.info, **{k: v for k, v in settings.items() if k in fields})


def _probe(settings: dict, data):
    """A model and a training-step function for `settings` (forward, backward, AdamW on one batch)."""
    batch_size = settings.get("batch_size", get_model_class("gpt").train_defaults["batch_size"])
    model = gpt_for(settings, data)
    rows = data.split("train").tensors[0]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step() -> None:
        loss = model.loss((rows[torch.randint(len(rows), (batch_size,))],))["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def step_cost_ratio(settings: dict, reference: dict, data, rounds: int = 6, steps: int = 10) -> float:
    """Seconds per training step of `settings` over those of `reference`, timed in alternating
    rounds so that load from other processes on the machine affects both alike."""
    a, b = _probe(settings, data), _probe(reference, data)
    times = {"a": 0.0, "b": 0.0}
    for r in range(rounds + 1):
        for key, step in (("a", a), ("b", b)):
            start = time.perf_counter()
            for _ in range(steps):
                step()
            if r:  # round 0 warms up
                times[key] += time.perf_counter() - start
    return times["a"] / times["b"]


def run(name: str, settings: dict, data, fresh: bool) -> dict:
    out = RUNS / name
    if not fresh and (out / "model.safetensors").is_file():  # --reuse: evaluate the finished run
        model, wall = load(out), None
    else:
        shutil.rmtree(out, ignore_errors=True)
        start = time.perf_counter()
        model, _ = train("gpt", "shakespeare", out, {**QUIET, **settings}, device="cpu", quiet=True)
        wall = round(time.perf_counter() - start, 1)
    val = nanogpt_val_loss(model, data.streams["val"])
    sample = model.sample(
        1,
        generator=torch.Generator().manual_seed(0),
        prompt="ROMEO:",
        max_new_tokens=300,
        temperature=0.8,
        top_k=40,
    )[0]
    return {
        "settings": settings,
        "params": sum(p.numel() for p in model.parameters()),
        "train_seconds": logged_train_seconds(out),
        "wall_seconds": wall,
        "val_loss": round(val, 4),
        "sample": sample,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reuse", action="store_true", help="keep existing runs instead of retraining")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="nanoGPT-config runs")
    parser.add_argument("--reference-seeds", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_dataset("shakespeare")
    result = {"data": "shakespeare (char, first 90% train, last 10% val)", "val_loss_batches": 200}
    seeds = [run(f"nanogpt-cpu-seed{seed}", {**NANOGPT_CPU, "seed": seed}, data, fresh=not args.reuse)
             for seed in args.seeds]  # fmt: skip
    vals = [r["val_loss"] for r in seeds]
    result["nanogpt_cpu"] = {
        "val_loss_mean": round(statistics.mean(vals), 4),
        "val_loss_std": round(statistics.stdev(vals), 4) if len(vals) > 1 else 0.0,
        "spread_of_a_20_batch_estimate": round(
            estimate_spread(load(RUNS / f"nanogpt-cpu-seed{args.seeds[0]}"), data.streams["val"]), 4
        ),
        "runs": dict(zip(args.seeds, seeds, strict=True)),
    }
    result["nanogpt_loop_reference"] = {
        "what": "nanoGPT's train.py loop in plain PyTorch (uniform random windows, its lr formula, "
        "embeddings decayed) on genzoo's GPT module: a check on genzoo's Trainer and data rows",
        "val_loss": {seed: round(nanogpt_loop(data, seed), 4) for seed in args.reference_seeds},
    }
    print(result, flush=True)
    # Equal time: the default's steps cost `ratio` nanoGPT steps (measured side by side), so it
    # gets 2000 / ratio steps and its cosine schedule ends with them.
    ratio = step_cost_ratio({}, NANOGPT_CPU, data)
    default = {"max_steps": int(NANOGPT_CPU["max_steps"] / ratio), "seed": args.seeds[0]}
    result["genzoo_default"] = run("default", default, data, fresh=not args.reuse)
    result["genzoo_default"]["step_cost_vs_nanogpt"] = round(ratio, 3)
    result["nanogpt_reported_val_loss"] = 1.88
    result["nanogpt_cpu_reaches_1.88"] = result["nanogpt_cpu"]["val_loss_mean"] <= 1.88
    result["default_beats_nanogpt_cpu"] = (
        result["genzoo_default"]["val_loss"] < result["nanogpt_cpu"]["val_loss_mean"]
    )
    save("gpt_shakespeare", result)
    print(f"results in {RESULTS}")


if __name__ == "__main__":
    main()

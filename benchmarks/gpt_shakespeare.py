"""GPT on tiny Shakespeare (character level): nanoGPT's CPU example, then genzoo's defaults in the same time.

nanoGPT's README gives its CPU example as context 64, batch 12, 4 layers, 4 heads, width 128,
2000 iterations, dropout 0 and the learning rate decayed over 2000 iterations, and reports val loss
1.88 for it. The rest of its recipe comes from config/train_shakespeare_char.py (lr 1e-3 decayed to
1e-4, warmup 100, beta2 0.99, weight decay 0.1, grad clip 1) and train.py (no biases). Trained here,
each over `--seeds` (default three) unless said otherwise:

1. `nanogpt_recipe`: all of nanoGPT's settings, through genzoo's Trainer.
2. `nanogpt_recipe_loop`: the same, but nanoGPT's train.py loop written out in plain PyTorch (uniform
   random windows of the train stream, its lr formula, embeddings decayed) around genzoo's GPT
   module: a check on genzoo's Trainer and data rows (`--loop-seeds`, default two).
3. `nanogpt_recipe_with_biases`: (1) with biases in the Linear and LayerNorm layers, as GPT-2 and
   the default of nanoGPT's model.py (train.py turns them off).
4. `nanogpt_settings_genzoo_training`: the settings the README lists, with the rest (learning rate
   above all) from genzoo's gpt training defaults.
5. `genzoo_default`: genzoo's default gpt configuration (model and training defaults) given the
   same training time. The cost of one of its steps relative to one nanoGPT step is timed in
   alternating rounds before any training starts (so load hits both alike), and it gets
   2000 / ratio steps, its cosine schedule ending with them. Measured wall times are saved too.
   With the first seed it is also trained at other learning rates (`--default-lrs`), the sweep
   behind its default.

nanoGPT's figure comes from `--eval_iters=20`; the spread of such a 20-batch estimate on one trained
model is measured too. Val loss here is nanoGPT's estimate_loss with 200 batches of random windows
of the validation text. `--jobs` runs train at once, one thread each. Saves
results/gpt_shakespeare.json with samples.

    python benchmarks/gpt_shakespeare.py [--seeds 0 1 2] [--loop-seeds 0 1] [--jobs 2] [--reuse]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch
import torch.nn.functional as F
from common import RESULTS, logged_train_seconds, save, train_unless_reused

from genzoo.data import load_dataset
from genzoo.models import get_model_class, load

RUNS = Path(__file__).resolve().parent / "runs" / "bench-gpt-shakespeare"
NANOGPT_CPU_LISTED = {  # the settings nanoGPT's README gives for its CPU example
    "block_size": 64,
    "batch_size": 12,
    "n_layer": 4,
    "n_head": 4,
    "n_embd": 128,
    "dropout": 0.0,
    "max_steps": 2000,
    "lr_decay_steps": 2000,
}
NANOGPT_CPU = {  # ... and the rest of its recipe, from its config and train.py
    **NANOGPT_CPU_LISTED,
    "bias": False,
    "lr": 1e-3,
    "min_lr_ratio": 0.1,
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


def nanogpt_loop(data, seed: int):
    """nanoGPT's train.py loop for NANOGPT_CPU in plain PyTorch on genzoo's GPT module (trained)."""
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
    return model


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


def equal_time_steps(data, reuse: bool) -> tuple[int, float]:
    """Steps of the default that take nanoGPT's 2000 steps' time, and the step-cost ratio behind
    them: timed side by side before the pool loads the machine, or with --reuse, those of the
    finished runs."""
    previous = RESULTS / "gpt_shakespeare.json"
    if reuse and previous.is_file():
        default = json.loads(previous.read_text())["genzoo_default"]
        return default["settings"]["max_steps"], default["step_cost_vs_nanogpt"]
    ratio = step_cost_ratio({}, NANOGPT_CPU, data)
    return int(NANOGPT_CPU["max_steps"] / ratio), round(ratio, 3)


def train_and_score(name: str, settings: dict, reuse: bool, plain_loop: bool = False) -> dict:
    """Train one configuration into RUNS/name (or with nanoGPT's loop, unsaved) and score it."""
    data = load_dataset("shakespeare")
    out = RUNS / name
    if plain_loop:
        start = time.perf_counter()
        model = nanogpt_loop(data, settings["seed"])
        seconds = round(time.perf_counter() - start, 1)
    else:  # on the CPU, as the step costs behind the equal-time budget are timed
        train_unless_reused("gpt", "shakespeare", out, {**QUIET, **settings}, reuse, device="cpu")
        model, seconds = load(out), logged_train_seconds(out)
    sample = model.sample(
        1,
        generator=torch.Generator().manual_seed(0),
        prompt="ROMEO:",
        max_new_tokens=300,
        temperature=0.8,
        top_k=40,
    )[0]
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "train_seconds": seconds,
        "val_loss": round(nanogpt_val_loss(model, data.streams["val"]), 4),
        "sample": sample,
    }


def summary(settings: dict, runs: dict[int, dict]) -> dict:
    vals = [r["val_loss"] for r in runs.values()]
    return {
        "settings": settings,
        "val_loss_mean": round(statistics.mean(vals), 4),
        "val_loss_std": round(statistics.stdev(vals), 4) if len(vals) > 1 else 0.0,
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reuse", action="store_true", help="keep existing runs instead of retraining")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--loop-seeds", type=int, nargs="+", default=[0, 1], help="nanoGPT's loop")
    parser.add_argument(
        "--default-lrs", type=float, nargs="+", default=[3e-3, 8e-3, 1.2e-2], help="the default's other lrs"
    )
    parser.add_argument("--jobs", type=int, default=2, help="runs trained at once, one thread each")
    args = parser.parse_args()
    torch.set_num_threads(1)  # as each run's, so the saved machine record says so
    data = load_dataset("shakespeare")
    equal_steps, ratio = equal_time_steps(data, args.reuse)
    configurations = {
        "nanogpt_recipe": (NANOGPT_CPU, args.seeds),
        "nanogpt_recipe_loop": (NANOGPT_CPU, args.loop_seeds),
        "nanogpt_recipe_with_biases": ({**NANOGPT_CPU, "bias": True}, args.seeds),
        "nanogpt_settings_genzoo_training": (NANOGPT_CPU_LISTED, args.seeds),
        "genzoo_default": ({"max_steps": equal_steps}, args.seeds),
        **{
            f"genzoo_default_lr{lr:g}": ({"max_steps": equal_steps, "lr": lr}, args.seeds[:1])
            for lr in args.default_lrs
        },
    }
    with ProcessPoolExecutor(args.jobs, initializer=torch.set_num_threads, initargs=(1,)) as pool:
        pending = {
            (config, seed): pool.submit(
                train_and_score,
                f"{config.replace('_', '-')}-seed{seed}",
                {**settings, "seed": seed},
                args.reuse,
                plain_loop=config == "nanogpt_recipe_loop",
            )
            for config, (settings, seeds) in configurations.items()
            for seed in seeds
        }
        scores = {task: future.result() for task, future in pending.items()}
    result = {"data": "shakespeare (char, first 90% train, last 10% val)", "val_loss_batches": 200}
    for config, (settings, seeds) in configurations.items():
        result[config] = summary(settings, {seed: scores[config, seed] for seed in seeds})
    result["genzoo_default"]["step_cost_vs_nanogpt"] = ratio
    result["spread_of_a_20_batch_estimate"] = round(
        estimate_spread(load(RUNS / f"nanogpt-recipe-seed{args.seeds[0]}"), data.streams["val"]), 4
    )
    nanogpt = ("nanogpt_recipe", "nanogpt_settings_genzoo_training")
    result["nanogpt_reported_val_loss"] = 1.88
    result["reaches_1.88"] = {c: result[c]["val_loss_mean"] <= 1.88 for c in nanogpt}
    result["default_beats"] = {
        c: result["genzoo_default"]["val_loss_mean"] < result[c]["val_loss_mean"] for c in nanogpt
    }
    save("gpt_shakespeare", result)
    print(f"results in {RESULTS}")


if __name__ == "__main__":
    main()

"""Data-parallel training on PyTorch's own stack: processes started by `torchrun` (or `genzoo train
--nproc N`, which starts them the same way), torch.distributed with gloo on CPU and NCCL on GPUs.

How a step is shared (see `Trainer._train_step`): the global batch of `batch_size` rows is cut into
one contiguous shard per process; each process computes its shard's loss, scaled by 1 / (processes
x grad_accum), and one all-reduce sums the gradients, so every process holds the same averaged
gradient and takes the same optimizer step. DistributedDataParallel's module wrapper is not used:
it needs the model's `forward`, while the contract trains through `loss(batch, phase=...)` and a GAN's
phases share parameters between their graphs; the all-reduce is the one DDP's reducer performs.

Noise: a sharded step (several processes, or grad_accum > 1 in one) seeds the random stream of each
shard from (seed, step, phase, shard), so two processes with shards of 32 draw exactly the noise one
process draws with `grad_accum=2` and batches of 32: the same global batch gives the same losses.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from genzoo.errors import GenzooError

TIMEOUT = timedelta(seconds=int(os.environ.get("GENZOO_DIST_TIMEOUT", "600")))  # a dead peer ends the wait


@dataclass(frozen=True)
class World:
    """This process's place among the training processes (rank 0 writes the run's files)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def sharded(self) -> bool:
        return self.size > 1


SINGLE = World()


def world_from_env() -> World:
    """What torchrun put in the environment (RANK, WORLD_SIZE, LOCAL_RANK); one process without it."""
    try:
        size = int(os.environ.get("WORLD_SIZE", "1"))
        return World(int(os.environ.get("RANK", "0")), size, int(os.environ.get("LOCAL_RANK", "0")))
    except ValueError as err:
        raise GenzooError(f"torchrun's RANK/WORLD_SIZE/LOCAL_RANK are not integers ({err})") from None


def join(device: torch.device) -> World:
    """Join the process group torchrun set up (gloo on CPU, NCCL on CUDA; one GPU per process)."""
    world = world_from_env()
    if not world.sharded or dist.is_initialized():
        return world
    if device.type == "cuda":
        torch.cuda.set_device(world.local_rank)
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, timeout=TIMEOUT)
    return world


def leave(world: World) -> None:
    if world.sharded and dist.is_initialized():
        dist.destroy_process_group()


def device_for(world: World, device: torch.device) -> torch.device:
    """Process r of a CUDA run uses GPU `local_rank`."""
    return torch.device("cuda", world.local_rank) if device.type == "cuda" and world.sharded else device


def shard(batch: tuple[torch.Tensor, ...], world: World) -> tuple[torch.Tensor, ...]:
    """This process's contiguous slice of every tensor of a global batch."""
    if not world.sharded:
        return batch
    return tuple(torch.tensor_split(t, world.size)[world.rank] for t in batch)


def shard_seed(seed: int, step: int, phase: int, shard_id: int) -> int:
    """The seed of one shard's noise: a pure function of where it is, not of who computes it."""
    return (((seed * 1_000_003 + step) * 101 + phase) * 10_007 + shard_id) % (2**63 - 1)


def sum_gradients(parameters: list[torch.nn.Parameter], finite: bool, world: World) -> bool:
    """Sum every process's gradients in place (one all-reduce); returns whether all were finite.

    A process whose loss was not finite took no backward pass: it adds zeros and its flag, so every
    process skips the step together instead of waiting on each other.
    """
    if not world.sharded:
        return finite
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in parameters]
    flat = torch.cat([g.reshape(-1) for g in grads] + [grads[0].new_tensor([0.0 if finite else 1.0])])
    dist.all_reduce(flat)
    if flat[-1] > 0:
        return False
    offset = 0
    for p, g in zip(parameters, grads, strict=True):
        if p.grad is not None:
            p.grad.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()
    return True


def mean_logs(logs: dict[str, float], world: World) -> dict[str, float]:
    """The logged losses averaged over processes: the global batch's, as one process logs them."""
    if not world.sharded or not logs:
        return logs
    values = torch.tensor(list(logs.values()), dtype=torch.float64)
    dist.all_reduce(values)
    return {k: float(v) / world.size for k, v in zip(logs, values, strict=True)}


def any_rank(flags: tuple[bool, ...], world: World) -> tuple[bool, ...]:
    """Each flag (a stop signal, a time limit) raised by any process, in one all-reduce: all then act
    on it together."""
    if not world.sharded:
        return flags
    values = torch.tensor([1.0 if f else 0.0 for f in flags])
    dist.all_reduce(values)
    return tuple(bool(v > 0) for v in values)


def max_over_ranks(value: float, world: World) -> float:
    """The largest of every process's `value` (the slowest process's step time sets the pace)."""
    if not world.sharded:
        return value
    tensor = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return float(tensor.item())


def broadcast_weights(module: torch.nn.Module, world: World) -> None:
    """Start every process from rank 0's weights and buffers (they are built from one seed anyway)."""
    if world.sharded:
        for tensor in [*module.parameters(), *module.buffers()]:
            dist.broadcast(tensor.data, src=0)


def barrier(world: World) -> None:
    if world.sharded:
        dist.barrier()


def launch(nproc: int, argv: list[str]) -> None:
    """`genzoo train ... --nproc N`: run the same command in N processes on this machine, started as
    `torchrun --standalone --nproc_per_node N -m genzoo ...` starts them. When one fails, torchrun
    stops the others; each has printed its own error line, and this raises one more."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    args = get_args_parser().parse_args(["--standalone", f"--nproc_per_node={nproc}", "-m", "genzoo", *argv])
    try:
        run(args)
    except ChildFailedError as err:
        failures = ", ".join(f"rank {f.local_rank} (exit {f.exitcode})" for f in err.failures.values())
        raise GenzooError(
            f"{failures} of the {nproc} training processes failed; see its error above"
        ) from None

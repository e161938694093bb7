"""`genzoo` with one fault injected, for tests/test_faults.py: run as `python fault_driver.py FAULT ARGV...`.

FAULT is `none` or `KIND:N`:
  kill-step:N       SIGKILL in the middle of step N (after the optimizer moved, before the step is counted)
  kill-rank1-step:N the same in the process of rank 1 only (under torchrun)
  kill-state:N      SIGKILL inside the N-th write of trainer_state.pt, half of the file written
  kill-weights:N    SIGKILL inside the N-th write of model.safetensors, half of the file written
  sigint-step:N     SIGINT in the middle of step N (the Trainer defers it to the step's end)
  sigterm-step:N    SIGTERM, likewise
  double-sigint:N   two SIGINTs in the middle of step N (the second stops at once, saving nothing)
  full-disk:N       the N-th write of trainer_state.pt fills the disk: half a file, then ENOSPC
  pause-step:N      at step N, create the file $FAULT_PAUSED and sleep until $FAULT_RESUME exists

The tiny test model of conftest.py is registered, so runs take milliseconds a step.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import torch  # noqa: E402
from conftest import DiagonalGaussian  # noqa: E402

from genzoo import cli  # noqa: E402
from genzoo.models import base, registry  # noqa: E402
from genzoo.train import trainer as trainer_module  # noqa: E402


def _half_written_then_killed(write, nth: int):
    """Wrap a `write(obj, path)` so its nth call leaves half a file at `path` and dies there."""
    calls = {"n": 0}

    def wrapped(obj, path, *args, **kwargs):
        calls["n"] += 1
        write(obj, path, *args, **kwargs)
        if calls["n"] == nth:
            data = Path(path).read_bytes()
            Path(path).write_bytes(data[: len(data) // 2])
            os.kill(os.getpid(), signal.SIGKILL)

    return wrapped


def _disk_full_at(write, nth: int):
    calls = {"n": 0}

    def wrapped(obj, path, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] < nth:
            return write(obj, path, *args, **kwargs)
        write(obj, path, *args, **kwargs)
        data = Path(path).read_bytes()
        Path(path).write_bytes(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    return wrapped


def _during_step(step: int, act) -> None:
    original = trainer_module.Trainer._train_step

    def step_with_fault(self):
        logs = original(self)
        if self.step + 1 == step:  # self.step counts finished steps; this is step number `step`
            act()
        return logs

    trainer_module.Trainer._train_step = step_with_fault


def _pause() -> None:
    Path(os.environ["FAULT_PAUSED"]).touch()
    deadline = time.monotonic() + 60
    while not Path(os.environ["FAULT_RESUME"]).exists() and time.monotonic() < deadline:
        time.sleep(0.02)


def inject(fault: str) -> None:
    if fault == "none":
        return
    kind, _, n = fault.partition(":")
    n = int(n)
    if kind == "kill-state":
        trainer_module.torch.save = _half_written_then_killed(torch.save, n)
    elif kind == "full-disk":
        trainer_module.torch.save = _disk_full_at(torch.save, n)
    elif kind == "kill-weights":
        base.save_file = _half_written_then_killed(base.save_file, n)
    elif kind == "kill-step":
        _during_step(n, lambda: os.kill(os.getpid(), signal.SIGKILL))
    elif kind == "kill-rank1-step":  # under torchrun: one process of two dies, the other lives on
        if os.environ.get("RANK") == "1":
            _during_step(n, lambda: os.kill(os.getpid(), signal.SIGKILL))
    elif kind == "sigint-step":
        _during_step(n, lambda: os.kill(os.getpid(), signal.SIGINT))
    elif kind == "sigterm-step":
        _during_step(n, lambda: os.kill(os.getpid(), signal.SIGTERM))
    elif kind == "double-sigint":
        _during_step(n, lambda: [os.kill(os.getpid(), signal.SIGINT) for _ in range(2)])
    elif kind == "pause-step":
        _during_step(n, _pause)
    else:
        raise SystemExit(f"unknown fault '{fault}'")


if __name__ == "__main__":
    torch.set_num_threads(1)
    registry.register_model(DiagonalGaussian)
    inject(sys.argv[1])
    sys.exit(cli.main(sys.argv[2:]))

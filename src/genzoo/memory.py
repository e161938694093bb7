"""Refuse work that cannot fit in memory before starting it, with one line saying what to lower.

A model or a sample batch far larger than the machine's memory otherwise ends in an allocator
traceback, or worse, in the kernel's OOM killer minutes later.
"""

from __future__ import annotations

import math
import os

import torch

from genzoo.errors import GenzooError

FLOAT_BYTES = 4
# AdamW keeps two moments beside each weight and its gradient: about four copies while training.
TRAINING_COPIES = 4


def available_bytes() -> int:
    """Memory the process can still use: MemAvailable on Linux, physical memory elsewhere."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 2**63  # unknown: never refuse


def check_fits(nbytes: float, what: str, advice: str) -> None:
    """A GenzooError when `nbytes` would take more than the memory available now."""
    free = available_bytes()
    if nbytes > free:
        raise GenzooError(f"{what} needs about {_size(nbytes)}, more than the {_size(free)} free; {advice}")


def parameter_count(build) -> int:
    """Parameters of the module `build()` returns, counted on the meta device (nothing allocated)."""
    with torch.device("meta"):
        module = build()
    return sum(p.numel() for p in module.parameters())


def _size(nbytes: float) -> str:
    units = ["B", "KB", "MB", "GB", "TB", "PB"]
    power = min(len(units) - 1, int(math.log(max(nbytes, 1), 1024)))
    return f"{nbytes / 1024**power:.1f} {units[power]}"

"""Pick the device: `auto` prefers CUDA, then Apple's MPS, then the CPU."""

from __future__ import annotations

import torch

from genzoo.errors import GenzooError


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise GenzooError("--device cuda was asked for but no CUDA GPU is visible; use --device auto or cpu")
    if name == "mps" and not torch.backends.mps.is_available():
        raise GenzooError("--device mps was asked for but MPS is not available; use --device auto or cpu")
    if name not in ("cpu", "cuda", "mps") and not name.startswith("cuda:"):
        raise GenzooError(f"unknown device '{name}'; use auto, cpu, cuda or mps")
    return torch.device(name)

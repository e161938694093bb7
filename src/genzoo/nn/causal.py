"""Dilated causal 1-d convolutions, with a one-step mode that reads its past from a queue.

`forward` runs over a whole sequence: output t sees inputs t, t - d, ..., t - (k-1) d (zeros before
the start). `step` computes the same output for one new time step from a `ConvQueue` that keeps
the last (k-1) d inputs in a circular buffer (Paine et al. 2016, "Fast WaveNet Generation"):
each step reads k - 1 old entries and writes one, so its cost does not grow with the dilation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvQueue:
    """One causal conv's state during generation: its last (k-1) d inputs in a circular buffer
    (N, size, C), slot `t % size` holding input t, and its weights laid out for one matrix product."""

    def __init__(self, conv: CausalConv1d, n: int, bias: torch.Tensor | None = None):
        weight = conv.weight.detach()
        self.buffer = weight.new_zeros(n, max(conv.history, 1), conv.in_channels)
        # (C_out, C_in, k) -> (k * C_in, C_out): rows tap-major, matching the concatenated window.
        self.weight = weight.permute(2, 1, 0).reshape(-1, conv.out_channels).contiguous()
        self.bias = conv.bias.detach() + (0 if bias is None else bias)  # extra bias folded in once
        self.t = 0


class CausalConv1d(nn.Conv1d):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 2, dilation: int = 1):
        super().__init__(in_channels, out_channels, kernel_size, dilation=dilation)
        self.history = (kernel_size - 1) * dilation  # past inputs an output depends on

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, T) -> (N, C_out, T), causal."""
        return super().forward(F.pad(x, (self.history, 0)))

    def queue(self, n: int, bias: torch.Tensor | None = None) -> ConvQueue:
        """Empty state for generating `n` sequences; `bias` (C_out or (n, C_out)) is added to every output."""
        return ConvQueue(self, n, bias)

    def step(self, x: torch.Tensor, queue: ConvQueue) -> torch.Tensor:
        """One time step: (N, C_in) -> (N, C_out), reading inputs t - j d from `queue`, then pushing x."""
        size = queue.buffer.shape[1]
        d, k = self.dilation[0], self.kernel_size[0]
        # Oldest tap first, as in the weight's layout; input t - j d sits in slot (t - j d) % size.
        taps = [queue.buffer[:, (queue.t - j * d) % size] for j in range(k - 1, 0, -1)]
        out = torch.addmm(queue.bias, torch.cat([*taps, x], 1), queue.weight)
        if self.history:
            queue.buffer[:, queue.t % size] = x
        queue.t += 1
        return out

"""Small building blocks shared by the families: MLPs and conv encoder/decoder stacks.

The conv stacks work for any image size (8x8 digits, 28x28 MNIST, 32x32 ...): the encoder
halves the resolution with stride-2 convs (rounding up), and the decoder retraces the same
sizes with nearest-neighbour upsampling + 3x3 convs, so odd sizes such as 7x7 need no
special casing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from genzoo.errors import GenzooError

# The activations a config may name (its field is typed with this, so `--set` checks the choice).
ActivationName = Literal["relu", "gelu", "silu", "elu", "leaky_relu", "tanh"]
_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
    "tanh": nn.Tanh,
}


def activation(name: str) -> nn.Module:
    """A fresh activation module by name (`relu`, `gelu`, `silu`, `elu`, `leaky_relu`, `tanh`)."""
    if name not in _ACTIVATIONS:
        raise GenzooError(f"unknown activation '{name}'; choose one of: {', '.join(sorted(_ACTIVATIONS))}")
    return _ACTIVATIONS[name]()


def mlp(
    in_features: int,
    hidden: Sequence[int],
    out_features: int,
    *,
    act: str = "gelu",
    dropout: float = 0.0,
    input_dropout: float = 0.0,
) -> nn.Sequential:
    """Linear -> act (-> dropout) for each hidden width, then a final Linear (no activation)."""
    layers: list[nn.Module] = []
    if input_dropout > 0:
        layers.append(nn.Dropout(input_dropout))
    width = in_features
    for h in hidden:
        layers += [nn.Linear(width, h), activation(act)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = h
    layers.append(nn.Linear(width, out_features))
    return nn.Sequential(*layers)


def downsampled_sizes(size: tuple[int, int], steps: int) -> list[tuple[int, int]]:
    """Spatial sizes after each stride-2 conv (3x3, padding 1): [size, ceil(size/2), ...]."""
    sizes = [size]
    for _ in range(steps):
        h, w = sizes[-1]
        sizes.append(((h + 1) // 2, (w + 1) // 2))
    return sizes


class ConvEncoder(nn.Module):
    """(B, C, H, W) -> (B, out_features): one stride-2 conv block per entry of `channels`, then Linear."""

    def __init__(
        self,
        in_channels: int,
        size: tuple[int, int],
        channels: Sequence[int],
        out_features: int,
        *,
        act: str = "gelu",
        dropout: float = 0.0,
    ):
        super().__init__()
        if not channels:
            raise GenzooError("a conv encoder needs at least one entry in `channels`")
        layers: list[nn.Module] = []
        width = in_channels
        for c in channels:
            # A stride-1 conv before each downsampling gives every resolution some capacity.
            layers += [nn.Conv2d(width, c, 3, padding=1), activation(act)]
            layers += [nn.Conv2d(c, c, 3, stride=2, padding=1), activation(act)]
            width = c
        self.features = nn.Sequential(*layers)
        h, w = downsampled_sizes(tuple(size), len(channels))[-1]
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.head = nn.Linear(width * h * w, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x).flatten(1)))


class ConvDecoder(nn.Module):
    """(B, in_features) -> (B, out_channels, H, W), mirroring `ConvEncoder` with the same `channels`."""

    def __init__(
        self,
        in_features: int,
        out_channels: int,
        size: tuple[int, int],
        channels: Sequence[int],
        *,
        act: str = "gelu",
    ):
        super().__init__()
        if not channels:
            raise GenzooError("a conv decoder needs at least one entry in `channels`")
        channels = list(channels)[::-1]  # widest at the lowest resolution
        sizes = downsampled_sizes(tuple(size), len(channels))[::-1]  # lowest resolution first
        self.start_shape = (channels[0], *sizes[0])
        self.head = nn.Sequential(
            nn.Linear(in_features, channels[0] * sizes[0][0] * sizes[0][1]), activation(act)
        )
        layers: list[nn.Module] = []
        width = channels[0]
        for c, target in zip(channels[1:] + channels[-1:], sizes[1:], strict=True):
            layers += [
                nn.Upsample(size=target, mode="nearest"),
                nn.Conv2d(width, c, 3, padding=1),
                activation(act),
            ]
            layers += [nn.Conv2d(c, c, 3, padding=1), activation(act)]
            width = c
        layers.append(nn.Conv2d(width, out_channels, 3, padding=1))
        self.features = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.features(self.head(z).view(-1, *self.start_shape))

"""Autoregressive building blocks: masked linear layers (MADE) and masked convolutions (PixelCNN).

Raster order throughout: pixel (i, j) comes before (i', j') when i < i', or i == i' and j < j'.
A feature at (i, j) may depend on pixels strictly before (i, j) (mask type "A", the first layer)
or on pixels up to and including (i, j) of the *previous layer's features* (type "B", later layers,
since those features already exclude pixel (i, j) of the input).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from genzoo.errors import GenzooError


# ---- MADE (Germain et al. 2015) ---------------------------------------------------------------
class MaskedLinear(nn.Linear):
    """A Linear layer whose weight is multiplied by a fixed 0/1 mask (out_features, in_features)."""

    def __init__(self, in_features: int, out_features: int, mask: torch.Tensor):
        super().__init__(in_features, out_features)
        self.register_buffer("mask", mask.to(torch.get_default_dtype()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.mask.to(self.weight.dtype), self.bias)


class MADE(nn.Module):
    """Masked autoencoder: output block k at dimension d depends only on inputs before d in `order`.

    x (B, D) -> (B, out_per_dim, D). `order` is a permutation of range(D) (the position of each
    dimension in the autoregressive order). Hidden units get degrees 0..D-2 cyclically, so every
    hidden unit is connected to something (the deterministic variant of the paper's masks).
    """

    def __init__(
        self,
        dim: int,
        hidden: tuple[int, ...] | list[int],
        out_per_dim: int,
        order: torch.Tensor | None = None,
        act: str = "relu",
    ):
        super().__init__()
        from genzoo.nn.blocks import activation

        if dim < 1:
            raise GenzooError(f"MADE needs dim >= 1, got {dim}")
        order = torch.arange(dim) if order is None else torch.as_tensor(order).long()
        if sorted(order.tolist()) != list(range(dim)):
            raise GenzooError("MADE order must be a permutation of range(dim)")
        self.dim, self.out_per_dim = dim, out_per_dim
        self.register_buffer("order", order.clone())
        degrees = [order]
        for h in hidden:
            degrees.append(torch.arange(h) % max(1, dim - 1))
        layers: list[nn.Module] = []
        for d_in, d_out in zip(degrees[:-1], degrees[1:], strict=True):
            # Hidden unit of degree k sees inputs of degree <= k.
            layers += [
                MaskedLinear(len(d_in), len(d_out), (d_out[:, None] >= d_in[None, :])),
                activation(act),
            ]
        # Output for dimension d (degree order[d]) sees hidden units of degree < order[d].
        d_last = degrees[-1]
        out_deg = order.repeat(out_per_dim)  # output rows ordered (block, dim)
        mask = out_deg[:, None] > d_last[None, :]
        self.out = MaskedLinear(len(d_last), dim * out_per_dim, mask)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x)).view(x.shape[0], self.out_per_dim, self.dim)


# ---- PixelCNN masked convolutions (van den Oord et al. 2016) ---------------------------------
class MaskedConv2d(nn.Conv2d):
    """k x k convolution masked to the raster order: type "A" excludes the centre, "B" keeps it.

    The original PixelCNN layer (single-channel data). Stacked, it has a blind spot to the upper
    right that grows with depth; `GatedLayer` removes it.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, mask_type: str):
        if mask_type not in ("A", "B"):
            raise GenzooError(f"mask_type must be 'A' or 'B', got {mask_type!r}")
        if kernel_size % 2 != 1:
            raise GenzooError(f"masked convolutions need an odd kernel size, got {kernel_size}")
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        k, c = kernel_size, kernel_size // 2
        mask = torch.ones(k, k)
        mask[c, c + (mask_type == "B") :] = 0
        mask[c + 1 :] = 0
        self.register_buffer("mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.weight * self.mask, self.bias)


class _ShiftedConv(nn.Module):
    """A conv whose receptive field is a one-sided window: asymmetric padding, then crop to (H, W).

    Cheaper than masking a full k x k kernel, and the causality is visible in the padding.
    """

    def __init__(self, cin: int, cout: int, kernel: tuple[int, int], pad: tuple[int, int, int, int]):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel)
        self.pad = pad  # (left, right, top, bottom), as F.pad takes them

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        out = self.conv(F.pad(x, self.pad))
        return out[..., :h, :w]

    def row(self, x: torch.Tensor, i: int) -> torch.Tensor:
        """Output row i alone, (B, cout, 1, W): `forward(x)[..., i:i+1, :]`, reading only the rows of
        x that row i sees (so the rows below need not be known yet)."""
        left, right, top, _ = self.pad
        first = i - top  # the input row under the kernel's top row
        window = x[..., max(first, 0) : first + self.conv.kernel_size[0], :]
        out = self.conv(F.pad(window, (left, right, max(-first, 0), 0)))
        return out[..., : x.shape[-1]]


def vertical_conv(cin: int, cout: int, kernel_size: int, include_center_row: bool) -> nn.Module:
    """Output at (i, j) sees rows i - k//2 .. i - 1 (or .. i), columns j - k//2 .. j + k//2."""
    r = _radius(kernel_size)
    kh = r + 1 if include_center_row else r
    # Pad r rows on top: output row i then covers input rows i - r .. i - r + kh - 1.
    return _ShiftedConv(cin, cout, (kh, kernel_size), (r, r, r, 0))


def horizontal_conv(cin: int, cout: int, kernel_size: int, include_center: bool) -> nn.Module:
    """Output at (i, j) sees row i, columns j - k//2 .. j - 1 (or .. j)."""
    r = _radius(kernel_size)
    kw = r + 1 if include_center else r
    return _ShiftedConv(cin, cout, (1, kw), (r, 0, 0, 0))


def _radius(kernel_size: int) -> int:
    if kernel_size < 3 or kernel_size % 2 != 1:
        raise GenzooError(f"gated PixelCNN kernels must be odd and >= 3, got {kernel_size}")
    return kernel_size // 2


class GatedLayer(nn.Module):
    """One Gated PixelCNN layer: a vertical and a horizontal stack, no blind spot.

    The vertical stack at (i, j) sees only rows above i (any column in its widening window);
    the horizontal stack sees row i to the left of j (and, from the second layer on, j itself in
    the previous layer's features) plus the vertical stack at (i, j). Each stack is gated,
    tanh(a) * sigmoid(b), with an optional per-layer class bias added to a and b.
    """

    def __init__(
        self, channels: int, kernel_size: int, first: bool, num_classes: int = 0, in_channels: int = 0
    ):
        super().__init__()
        cin = in_channels if first else channels
        self.first = first
        self.v_conv = vertical_conv(cin, 2 * channels, kernel_size, include_center_row=not first)
        self.h_conv = horizontal_conv(cin, 2 * channels, kernel_size, include_center=not first)
        self.v_to_h = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.h_out = nn.Conv2d(channels, channels, 1)
        self.class_bias = nn.Embedding(num_classes + 1, 4 * channels) if num_classes else None
        if self.class_bias is not None:
            nn.init.zeros_(self.class_bias.weight)

    @staticmethod
    def _gate(a: torch.Tensor) -> torch.Tensor:
        x, g = a.chunk(2, dim=1)
        return torch.tanh(x) * torch.sigmoid(g)

    def forward(
        self, v: torch.Tensor, h: torch.Tensor, label: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        v_new, to_h = self.vertical(self.v_conv(v), label)
        return v_new, self.horizontal(h, to_h)

    def vertical(
        self, v_pre: torch.Tensor, label: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """From the vertical convolution's output: the vertical stack's new features, and what it
        adds to the horizontal stack's pre-activation (with the class biases)."""
        to_h = self.v_to_h(v_pre)
        if self.class_bias is not None and label is not None:
            bv, bh = self.class_bias(label)[:, :, None, None].chunk(2, dim=1)
            v_pre, to_h = v_pre + bv, to_h + bh
        return self._gate(v_pre), to_h

    def horizontal(self, h: torch.Tensor, to_h: torch.Tensor) -> torch.Tensor:
        """The horizontal stack's new features, given what the vertical stack adds (`vertical`)."""
        h_new = self.h_out(self._gate(self.h_conv(h) + to_h))
        return h_new if self.first else h_new + h  # residual on the horizontal stack

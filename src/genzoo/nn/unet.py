"""A small UNet for denoising diffusion (Ho et al. 2020, after PixelCNN++'s backbone), sized
for 8x8 digits and 28x28 MNIST.

    x (B, C, H, W), t (B,) [, y (B,)]  ->  (B, out_channels, H, W)

Residual blocks with GroupNorm + SiLU take the timestep (and class) embedding as a per-channel
scale and shift; self-attention runs at the resolutions listed in `attention_levels` (the low
ones: attention is quadratic in pixels). Each level but the last halves the resolution with a
stride-2 conv (rounding up, so 28 -> 14 -> 7 -> 4), and the decoder upsamples to exactly the
skip connection's size, so odd sizes need no special casing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from genzoo.errors import GenzooError
from genzoo.nn.embeddings import TimestepEmbedding


def _groups(channels: int) -> int:
    for g in (32, 16, 8, 4, 2):
        if channels % g == 0 and channels // g >= 2:
            return g
    return 1


def _zero(module: nn.Module) -> nn.Module:
    """Zero-initialised output layers make every residual branch start as the identity."""
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, emb_dim: int, dropout: float = 0.0):
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(c_in), c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * c_out)  # scale and shift
        self.norm2 = nn.GroupNorm(_groups(c_out), c_out)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = _zero(nn.Conv2d(c_out, c_out, 3, padding=1))
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(F.silu(emb))[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(x) + h


class SelfAttention(nn.Module):
    """Multi-head self-attention over the pixels of a feature map, as a residual block."""

    def __init__(self, channels: int, heads: int = 4):
        super().__init__()
        if channels % heads:
            heads = 1
        self.heads = heads
        self.norm = nn.GroupNorm(_groups(channels), channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = _zero(nn.Conv2d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        # (3, b, heads, pixels, head_dim), contiguous: on strided inputs the CPU kernel falls back to
        # its slow reference path (3.6x slower on 64 pixels, measured for issue 27).
        qkv = self.qkv(self.norm(x)).view(b, 3, self.heads, c // self.heads, h * w)
        q, k, v = qkv.permute(1, 0, 2, 4, 3).contiguous().unbind(0)
        att = F.scaled_dot_product_attention(q, k, v)
        return x + self.out(att.transpose(-1, -2).reshape(b, c, h, w))


class UNet(nn.Module):
    """Denoising UNet: `channels * channel_mults[i]` features at level i (level 0 = full resolution).

    `num_classes > 0` adds a class embedding with one extra "no label" entry (index
    `num_classes`), used for classifier-free guidance.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        channels: int = 64,
        channel_mults: Sequence[int] = (1, 2),
        num_res_blocks: int = 2,
        attention_levels: Sequence[int] = (1,),
        num_classes: int = 0,
        dropout: float = 0.0,
    ):
        super().__init__()
        if not channel_mults or num_res_blocks < 1 or channels < 1:
            raise GenzooError("the UNet needs channel_mults, num_res_blocks >= 1 and channels >= 1")
        bad = [a for a in attention_levels if not 0 <= a < len(channel_mults)]
        if bad:
            raise GenzooError(f"attention_levels {bad} out of range: levels are 0..{len(channel_mults) - 1}")
        emb_dim = 4 * channels
        self.num_classes = num_classes
        self.time_embed = TimestepEmbedding(channels, emb_dim)
        self.class_embed = nn.Embedding(num_classes + 1, emb_dim) if num_classes > 0 else None
        self.conv_in = nn.Conv2d(in_channels, channels, 3, padding=1)

        widths = [channels * m for m in channel_mults]
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        skips = [channels]
        width = channels
        for level, w in enumerate(widths):
            blocks = nn.ModuleList()
            for _ in range(num_res_blocks):
                blocks.append(self._block(width, w, emb_dim, dropout, level in attention_levels))
                width = w
                skips.append(width)
            self.down.append(blocks)
            last = level == len(widths) - 1
            self.downsample.append(nn.Identity() if last else nn.Conv2d(width, width, 3, stride=2, padding=1))
            if not last:
                skips.append(width)

        self.mid = nn.ModuleList(
            [
                ResBlock(width, width, emb_dim, dropout),
                SelfAttention(width),
                ResBlock(width, width, emb_dim, dropout),
            ]
        )

        self.up = nn.ModuleList()
        for level in reversed(range(len(widths))):
            blocks = nn.ModuleList()
            for _ in range(num_res_blocks + 1):
                blocks.append(
                    self._block(
                        width + skips.pop(), widths[level], emb_dim, dropout, level in attention_levels
                    )
                )
                width = widths[level]
            self.up.append(blocks)
        self.norm_out = nn.GroupNorm(_groups(width), width)
        self.conv_out = _zero(nn.Conv2d(width, out_channels, 3, padding=1))

    @staticmethod
    def _block(c_in: int, c_out: int, emb_dim: int, dropout: float, attention: bool) -> nn.ModuleList:
        layers: list[nn.Module] = [ResBlock(c_in, c_out, emb_dim, dropout)]
        if attention:
            layers.append(SelfAttention(c_out))
        return nn.ModuleList(layers)

    @staticmethod
    def _run(block: nn.ModuleList, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        for layer in block:
            h = layer(h, emb) if isinstance(layer, ResBlock) else layer(h)
        return h

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """`t`: (B,) timesteps (any real values); `y`: (B,) labels, `num_classes` meaning none."""
        emb = self.time_embed(t)
        if self.class_embed is not None:
            if y is None:
                y = torch.full((len(x),), self.num_classes, device=x.device, dtype=torch.long)
            emb = emb + self.class_embed(y)
        h = self.conv_in(x)
        hs = [h]
        for blocks, down in zip(self.down, self.downsample, strict=True):
            for block in blocks:
                h = self._run(block, h, emb)
                hs.append(h)
            if not isinstance(down, nn.Identity):
                h = down(h)
                hs.append(h)
        for layer in self.mid:
            h = layer(h, emb) if isinstance(layer, ResBlock) else layer(h)
        for blocks in self.up:
            for block in blocks:
                skip = hs.pop()
                if h.shape[-2:] != skip.shape[-2:]:
                    h = F.interpolate(h, size=skip.shape[-2:], mode="nearest")
                h = self._run(block, torch.cat([h, skip], dim=1), emb)
        return self.conv_out(F.silu(self.norm_out(h)))


def count_parameters(module: nn.Module) -> int:
    return sum(math.prod(p.shape) for p in module.parameters())

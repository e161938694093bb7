"""Invertible layers for normalizing flows, one concept each.

Every layer maps data towards the latent space with `forward(x) -> (y, logdet)`, where
`logdet` (B,) is log |det dy/dx| per example, and undoes it with `inverse(y) -> x`.
The log-determinants are checked against autograd Jacobians in tests/test_flow.py.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from genzoo.errors import GenzooError
from genzoo.nn.blocks import activation
from genzoo.nn.masked import MADE


class FlowLayer(nn.Module):
    """Base class: an invertible map with a tractable log-determinant."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


def _sum_per_example(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).sum(1)


class LogitTransform(FlowLayer):
    """x in (0, 1) -> logit(alpha + (1 - 2 alpha) x) (RealNVP's preprocessing; alpha keeps it finite)."""

    def __init__(self, alpha: float = 0.05):
        super().__init__()
        if not 0 <= alpha < 0.5:
            raise GenzooError(f"logit alpha must be in [0, 0.5), got {alpha}")
        self.alpha = alpha

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.alpha + (1 - 2 * self.alpha) * x
        y = torch.log(s) - torch.log1p(-s)
        logdet = _sum_per_example(math.log(1 - 2 * self.alpha) - torch.log(s) - torch.log1p(-s))
        return y, logdet

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return (torch.sigmoid(y) - self.alpha) / (1 - 2 * self.alpha)


class ActNorm(FlowLayer):
    """Per-channel affine y = (x - bias) * exp(log_scale) (Glow), for (B, C, H, W) or (B, C).

    Data-dependent init: the first forward pass in training mode sets bias and scale so that
    that batch has zero mean and unit variance per channel.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))
        self.log_scale = nn.Parameter(torch.zeros(channels))
        self.register_buffer("initialized", torch.zeros((), dtype=torch.uint8))

    def _view(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return t.view(1, -1, *([1] * (x.dim() - 2)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.training and not bool(self.initialized):
            with torch.no_grad():
                dims = [0] + list(range(2, x.dim()))
                self.bias.copy_(x.mean(dims))
                self.log_scale.copy_(-torch.log(x.std(dims).clamp(min=1e-6)))
                self.initialized.fill_(1)
        y = (x - self._view(self.bias, x)) * self._view(self.log_scale.exp(), x)
        spatial = math.prod(x.shape[2:])
        logdet = (self.log_scale.sum() * spatial).expand(x.shape[0])
        return y, logdet

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y * self._view(torch.exp(-self.log_scale), y) + self._view(self.bias, y)


class InvConv1x1(FlowLayer):
    """Invertible 1x1 convolution in LU form (Glow): W = P L (U + diag(sign * exp(log_s))).

    P is a fixed permutation, L unit lower triangular, U strictly upper triangular, so
    log |det W| = sum(log_s), per pixel. Initialised from a random rotation.
    """

    def __init__(self, channels: int, generator: torch.Generator | None = None):
        super().__init__()
        w = torch.linalg.qr(torch.randn(channels, channels, generator=generator))[0]
        p, lower, upper = torch.linalg.lu(w)
        s = torch.diagonal(upper)
        self.register_buffer("perm", p)
        self.register_buffer("sign_s", torch.sign(s))
        self.register_buffer("lower_mask", torch.tril(torch.ones(channels, channels), -1))
        self.lower = nn.Parameter(lower)
        self.upper = nn.Parameter(torch.triu(upper, 1))
        self.log_s = nn.Parameter(torch.log(s.abs()))

    def weight(self) -> torch.Tensor:
        eye = torch.eye(len(self.log_s), dtype=self.log_s.dtype, device=self.log_s.device)
        lower = self.lower * self.lower_mask + eye
        upper = self.upper * self.lower_mask.T + torch.diag(self.sign_s * torch.exp(self.log_s))
        return self.perm @ lower @ upper

    def _apply_matrix(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            return x @ w.T
        return F.conv2d(x, w.view(*w.shape, 1, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self._apply_matrix(x, self.weight())
        spatial = math.prod(x.shape[2:])
        return y, (self.log_s.sum() * spatial).expand(x.shape[0])

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return self._apply_matrix(y, torch.linalg.inv(self.weight()))


class Squeeze(FlowLayer):
    """(B, C, H, W) -> (B, 4C, H/2, W/2): each 2x2 patch becomes 4 channels (a permutation, logdet 0)."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, c, h, w = x.shape
        if h % 2 or w % 2:
            raise GenzooError(f"squeeze needs even height and width, got {h}x{w}")
        y = x.view(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4).reshape(b, 4 * c, h // 2, w // 2)
        return y, x.new_zeros(b)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        b, c4, h, w = y.shape
        c = c4 // 4
        return y.view(b, c, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3).reshape(b, c, 2 * h, 2 * w)


def checkerboard(height: int, width: int, parity: int) -> torch.Tensor:
    """(1, 1, H, W) mask: 1 where (i + j + parity) is even (the conditioning half)."""
    i, j = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    return ((i + j + parity) % 2 == 0).float().view(1, 1, height, width)


class CouplingNet(nn.Module):
    """The s, t network of a coupling layer: 3x3 conv, `depth` residual 3x3 blocks, zero-init 3x3 out.

    Zero-initialising the last conv makes every coupling start as the identity (stable training).
    """

    def __init__(self, cin: int, cout: int, hidden: int, depth: int = 1, act: str = "relu"):
        super().__init__()
        self.inp = nn.Conv2d(cin, hidden, 3, padding=1)
        self.blocks = nn.ModuleList(
            nn.Sequential(
                activation(act),
                nn.Conv2d(hidden, hidden, 3, padding=1),
                activation(act),
                nn.Conv2d(hidden, hidden, 1),
            )
            for _ in range(depth)
        )
        self.act = activation(act)
        self.out = nn.Conv2d(hidden, cout, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Channels-last when no gradient is taken (sampling, evaluation): oneDNN's convolutions skip
        # their layout conversions, 2x faster on CPU (issue 27), the same values up to rounding.
        # Training keeps the default layout, so runs stay bit-identical to those already published.
        if not torch.is_grad_enabled():
            x = x.contiguous(memory_format=torch.channels_last)
        h = self.inp(x)
        for block in self.blocks:
            h = h + block(h)
        return self.out(self.act(h))


class AffineCoupling(FlowLayer):
    """Affine coupling (RealNVP): y = m * x + (1 - m) * (x * exp(s) + t), with s, t = NN(m * x).

    `mask="checkerboard"` conditions on alternating pixels (the mask is also fed to the net so it
    knows which half it sees); `mask="channel"` on the first half of the channels (`parity` 1:
    the second half), computed by splitting rather than masking. s = scale * tanh(raw) keeps
    the log-determinant bounded.
    """

    def __init__(
        self,
        channels: int,
        mask: str,
        parity: int,
        hidden: int,
        depth: int = 1,
        size: tuple[int, int] | None = None,
    ):
        super().__init__()
        self.mask_type, self.parity = mask, parity
        if mask == "checkerboard":
            if size is None:
                raise GenzooError("a checkerboard coupling needs the image size")
            self.register_buffer("mask", checkerboard(*size, parity))
            self.net = CouplingNet(channels + 1, 2 * channels, hidden, depth)
            c_out = channels
        elif mask == "channel":
            if channels < 2:
                raise GenzooError(f"a channel coupling needs >= 2 channels, got {channels}")
            self.split = channels // 2
            c_in = self.split if parity == 0 else channels - self.split
            c_out = channels - c_in
            self.net = CouplingNet(c_in, 2 * c_out, hidden, depth)
        else:
            raise GenzooError(f"unknown coupling mask '{mask}'; choose 'checkerboard' or 'channel'")
        self.scale = nn.Parameter(torch.ones(1, c_out, 1, 1))

    def _halves(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = x[:, : self.split], x[:, self.split :]
        return (a, b) if self.parity == 0 else (b, a)

    def _join(self, cond: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        return torch.cat([cond, other] if self.parity == 0 else [other, cond], dim=1)

    def _st(self, inp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raw_s, t = self.net(inp).chunk(2, dim=1)
        return self.scale * torch.tanh(raw_s), t

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.mask_type == "checkerboard":
            m = self.mask.to(x.dtype)
            s, t = self._st(torch.cat([x * m, m.expand(x.shape[0], 1, *x.shape[2:])], 1))
            s, t = s * (1 - m), t * (1 - m)
            return x * torch.exp(s) + t, _sum_per_example(s)
        cond, other = self._halves(x)
        s, t = self._st(cond)
        return self._join(cond, other * torch.exp(s) + t), _sum_per_example(s)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        if self.mask_type == "checkerboard":
            m = self.mask.to(y.dtype)
            s, t = self._st(torch.cat([y * m, m.expand(y.shape[0], 1, *y.shape[2:])], 1))
            s, t = s * (1 - m), t * (1 - m)
            return (y - t) * torch.exp(-s)
        cond, other = self._halves(y)
        s, t = self._st(cond)
        return self._join(cond, (other - t) * torch.exp(-s))


# "sigmoid": the bounded scale below; "exp-tanh": the earlier form, kept so that runs saved with it
# still load with the density they were trained with (MAFConfig.saved_before).
MAF_SCALE_FORMS = ("sigmoid", "exp-tanh")


class MAFLayer(FlowLayer):
    """Masked autoregressive flow layer (Papamakarios et al. 2017) on vectors (B, D).

    Density direction in one pass: y_d = x_d * s_d(x_<d) + t_d(x_<d), log |det| = sum log s.
    The inverse (sampling) takes D passes, one dimension at a time.

    The scale s = 1e-3 + (1 - 1e-3) 2 sigmoid(a) lies in (1e-3, 2) and is 1 at a = 0 (the MADE's
    zero output: every layer starts as the identity). Bounding how far one layer may stretch a
    dimension, instead of the paper's exp(alpha) (here once exp(4 tanh(a/4)): up to e^4 per layer),
    stops the flow sharpening its density around the training points; ActNorm, between layers,
    still sets each dimension's overall scale. The shift is added after the scale, not (x - mu) s,
    so that its gradient does not depend on the scale. Measured (benchmarks/peers/flows_maf_realnvp.py,
    301 steps): test NLL on digits 109.2 -> 106.7 nats (0.8 of it the shift), toy2d-moons 2.66 -> 2.61;
    `maf`'s defaults on digits 109.1 -> 105.5, on toy2d-moons unchanged within seeds (2.43).
    """

    def __init__(
        self,
        dim: int,
        hidden: tuple[int, ...],
        order: torch.Tensor | None = None,
        act: str = "relu",
        scale_form: str = "sigmoid",
    ):
        super().__init__()
        if scale_form not in MAF_SCALE_FORMS:
            raise ValueError(f"scale_form must be one of {MAF_SCALE_FORMS}, got {scale_form!r}")
        self.made = MADE(dim, hidden, 2, order=order, act=act)
        self.scale_form = scale_form

    def _shift_and_log_scale(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(shift, log s) from the MADE's two outputs (B, 2, ...)."""
        raw_shift, raw_scale = out[:, 0], out[:, 1]
        if self.scale_form == "exp-tanh":  # runs saved before the bound: y = (x - mu) exp(-4 tanh(a/4))
            log_scale = -4.0 * torch.tanh(raw_scale / 4.0)
            return -raw_shift * torch.exp(log_scale), log_scale
        return raw_shift, torch.log(1e-3 + (1 - 1e-3) * 2 * torch.sigmoid(raw_scale))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shift, log_scale = self._shift_and_log_scale(self.made(x))
        return x * torch.exp(log_scale) + shift, log_scale.sum(1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        x = torch.zeros_like(y)
        tracked = torch.is_grad_enabled()
        for d in torch.argsort(self.made.order).tolist():  # dimensions in autoregressive order
            out = self.made(x)  # only dimension d is new: the others' scales are not computed
            shift, log_scale = self._shift_and_log_scale(out[:, :, d])
            value = (y[:, d] - shift) * torch.exp(-log_scale)
            if tracked:
                x = x.clone()  # no in-place edit of a tensor autograd may still need
            x[:, d] = value
        return x


class Reverse(FlowLayer):
    """Reverse the feature order (B, D): a permutation, logdet 0."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x.flip(1), x.new_zeros(x.shape[0])

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y.flip(1)

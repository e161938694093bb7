"""WaveNet (van den Oord et al. 2016): raw audio, one sample at a time.

    p(x) = prod_t p(x_t | x_<t [, class]),   x_t a 256-level mu-law code

Audio in [-1, 1] is companded and quantized to 256 codes (`genzoo.data.audio.mu_law_encode`).
The network embeds the codes x_<t (shifted right by one, silence first), then runs stacks of
dilated causal convolutions (dilations 1, 2, ..., 2^(layers-1), repeated `stacks` times) with

    z = tanh(W_f * h + V_f c) * sigmoid(W_g * h + V_g c),   h <- h + W_r z,   skip += W_s z

where c is the global condition (a learned embedding of the clip's label: note, speaker).
ReLU -> 1x1 -> ReLU -> 1x1 on the summed skips gives a softmax over the 256 codes.
`log_prob` is the exact log-likelihood of the quantized clip in nats.

Generation (`sample`, `mode=`):
- "fast" (default): every causal conv keeps a queue of its past inputs (Fast WaveNet, Paine et al.
  2016), so one new sample costs one step of each layer: linear in the number of layers.
- "naive": recompute the whole stack over the last receptive-field samples for every new sample
  (linear in the receptive field). Same arithmetic in principle, kept for comparison; both draw
  the same noise, so they give the same samples for the same seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from genzoo.data.audio import mu_law_decode, mu_law_encode
from genzoo.errors import GenzooError
from genzoo.models.base import (
    GenerativeModel,
    ModelConfig,
    class_indices,
    split_batch,
    uniform_class_indices,
)
from genzoo.models.registry import register_model
from genzoo.nn.causal import CausalConv1d, ConvQueue
from genzoo.nn.likelihoods import uniform
from genzoo.progress import track

LEVELS = 256
SILENCE = LEVELS // 2  # the code of amplitude 0: what the model "heard" before the first sample


@dataclass
class WaveNetConfig(ModelConfig):
    data_shape: tuple[int, ...] = (1, 1024)
    data_levels: int | None = None
    data_low: float = -1.0
    data_high: float = 1.0
    stacks: int = 1  # repetitions of the dilation cycle
    layers: int = 8  # per stack: dilations 1 .. 2^(layers-1); receptive field stacks * (2^layers - 1) + 1
    residual_channels: int = 32
    gate_channels: int = 32
    skip_channels: int = 64
    head_channels: int = 64
    conditional: bool = True  # global conditioning on the clip's label, when the data have labels


class ResidualLayer(nn.Module):
    """Dilated causal conv -> gated activation (+ condition) -> residual and skip 1x1 convs."""

    def __init__(self, c: WaveNetConfig, dilation: int, num_classes: int):
        super().__init__()
        self.conv = CausalConv1d(c.residual_channels, 2 * c.gate_channels, 2, dilation)
        self.cond = nn.Embedding(num_classes, 2 * c.gate_channels) if num_classes else None
        self.residual = nn.Conv1d(c.gate_channels, c.residual_channels, 1)
        self.skip = nn.Conv1d(c.gate_channels, c.skip_channels, 1)

    def _gate(self, a: torch.Tensor, label: torch.Tensor | None) -> torch.Tensor:
        """(N, 2G[, T]) -> (N, G[, T]): the condition is a per-clip bias on filter and gate."""
        if self.cond is not None:
            bias = self.cond(label)
            a = a + (bias.unsqueeze(-1) if a.dim() == 3 else bias)
        filt, gate = a.chunk(2, 1)
        return torch.tanh(filt) * torch.sigmoid(gate)

    def forward(self, h: torch.Tensor, label: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, R, T) -> residual output (N, R, T), skip (N, S, T)."""
        z = self._gate(self.conv(h), label)
        return h + self.residual(z), self.skip(z)

    def queue(self, n: int, label: torch.Tensor | None) -> ConvQueue:
        """Generation state; the condition's bias is looked up once here, not at every step."""
        return self.conv.queue(n, self.cond(label) if self.cond is not None else None)

    def step(self, h: torch.Tensor, queue: ConvQueue) -> tuple[torch.Tensor, torch.Tensor]:
        """One time step, (N, R) -> residual output (N, R) and gated z (N, G); the model applies
        all layers' skip 1x1 convs to the z's at once."""
        filt, gate = self.conv.step(h, queue).chunk(2, 1)
        z = torch.tanh(filt) * torch.sigmoid(gate)
        return torch.addmm(h, z, self.residual.weight[..., 0].t()) + self.residual.bias, z


@register_model
class WaveNet(GenerativeModel):
    """Dilated causal convolutions over mu-law audio, gated, with fast cached generation (exact NLL)."""

    supports_labels = True
    output = "audio"

    Config = WaveNetConfig
    name = "wavenet"
    family = "autoregressive"
    modalities = ("audio",)
    log_prob_kind = "exact"
    train_defaults = {
        "lr": 2e-3,
        "batch_size": 4,
        "max_steps": 800,
        "lr_decay_steps": 800,
        "warmup_steps": 50,
        "grad_clip": 1.0,
        "eval_every": 250,
        "eval_batches": 5,
        "keep_best": True,  # small data overfit: keep the best validation's weights
    }

    def __init__(self, config: WaveNetConfig):
        super().__init__(config)
        c = config
        if len(c.data_shape) != 2 or c.data_shape[0] != 1:
            raise GenzooError(f"wavenet needs mono audio clips (1, L), got data of shape {c.data_shape}")
        if c.stacks < 1 or c.layers < 1:
            raise GenzooError("stacks and layers must be >= 1")
        self.length = c.data_shape[1]
        self.num_classes = c.num_classes if c.conditional else 0
        self.embed = nn.Embedding(LEVELS, c.residual_channels)
        self.layers = nn.ModuleList(
            ResidualLayer(c, 2**i, self.num_classes) for _ in range(c.stacks) for i in range(c.layers)
        )
        self.head = nn.Sequential(
            nn.ReLU(),
            nn.Conv1d(c.skip_channels, c.head_channels, 1),
            nn.ReLU(),
            nn.Conv1d(c.head_channels, LEVELS, 1),
        )
        self.receptive_field = sum(layer.conv.history for layer in self.layers) + 1

    # ---- the network ------------------------------------------------------------------
    def logits(self, inputs: torch.Tensor, label: torch.Tensor | None = None) -> torch.Tensor:
        """Input codes (N, T) -> logits (N, 256, T); output t depends on inputs t-RF+1..t only."""
        h = self.embed(inputs).transpose(1, 2)
        skips = 0
        for layer in self.layers:
            h, s = layer(h, label)
            skips = skips + s
        return self.head(skips)

    def _inputs(self, codes: torch.Tensor) -> torch.Tensor:
        """Targets (N, T) -> what the network reads: silence, then the targets shifted right."""
        return F.pad(codes[:, :-1], (1, 0), value=SILENCE)

    def _codes(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[1] != 1:
            raise GenzooError(f"wavenet expects mono clips (N, 1, L), got {tuple(x.shape)}")
        return mu_law_encode(x.to(self.device, torch.float32)[:, 0], LEVELS)

    def _label(self, y: torch.Tensor | None) -> torch.Tensor | None:
        if not self.num_classes:
            return None
        if y is None or (y < 0).any():
            raise GenzooError(
                "a conditional wavenet needs every clip's label (or train with --set conditional=false)"
            )
        return y.to(self.device).long()

    # ---- training and likelihood --------------------------------------------------------
    def loss(self, batch: Any, phase: str = "main") -> dict[str, torch.Tensor]:
        """Mean NLL per audio sample (nats); `bits_per_sample` logged beside it."""
        x, y = split_batch(batch)
        codes = self._codes(x)
        logits = self.logits(self._inputs(codes), self._label(y))
        nll = F.cross_entropy(logits, codes)
        return {"loss": nll, "bits_per_sample": nll.detach() / math.log(2)}

    def log_prob(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Exact log p(quantized clip) in nats, (N,); a conditional model without `y` marginalizes
        over a uniform prior on the labels."""
        codes = self._codes(x)
        inputs = self._inputs(codes)
        if not self.num_classes or y is not None:
            logits = self.logits(inputs, self._label(y))
            return -F.cross_entropy(logits, codes, reduction="none").sum(1)
        per_class = torch.stack(
            [
                -F.cross_entropy(
                    self.logits(inputs, torch.full_like(codes[:, 0], k)), codes, reduction="none"
                ).sum(1)
                for k in range(self.num_classes)
            ]
        )
        return torch.logsumexp(per_class, 0) - math.log(self.num_classes)

    # ---- generation -----------------------------------------------------------------------
    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        length: int | None = None,
        label: int | torch.Tensor | None = None,
        temperature: float = 1.0,
        mode: str = "fast",
    ) -> torch.Tensor:
        """`n` clips (n, 1, length) in [-1, 1]; a conditional model draws labels uniformly unless given."""
        if n < 0:
            raise GenzooError(f"number of samples must be >= 0, got {n}")
        if temperature <= 0:
            raise GenzooError(f"temperature must be > 0, got {temperature}")
        if mode not in ("fast", "naive"):
            raise GenzooError(f"mode must be 'fast' or 'naive', got '{mode}'")
        length = self.length if length is None else int(length)
        if length < 1:
            raise GenzooError(f"length must be >= 1 sample, got {length}")
        cond = None
        if self.num_classes:
            if label is None:
                cond = uniform_class_indices(n, self.num_classes, generator, self.device)
            else:
                cond = class_indices(label, n, self.num_classes, self.device)
        noise = uniform((n, length), generator, self.device)  # the same draws in both modes
        with self.inference():
            codes = (self._fast if mode == "fast" else self._naive)(n, length, cond, noise, temperature)
        return mu_law_decode(codes, LEVELS).unsqueeze(1)

    def _draw(self, logits: torch.Tensor, u: torch.Tensor, temperature: float) -> torch.Tensor:
        """Inverse-CDF draw from softmax(logits / T): (N, 256), u (N,) -> codes (N,)."""
        cdf = torch.softmax(logits / temperature, -1).cumsum(-1)
        return (cdf < u.unsqueeze(-1)).sum(-1).clamp(max=LEVELS - 1)

    def _fast(self, n, length, cond, noise, temperature) -> torch.Tensor:
        queues = [layer.queue(n, cond) for layer in self.layers]
        # The skip 1x1 convs of all layers as one matrix product over the concatenated z's.
        skip_weight = torch.cat([layer.skip.weight[..., 0] for layer in self.layers], 1).t().contiguous()
        skip_bias = sum(layer.skip.bias for layer in self.layers)
        head1, head2 = self.head[1], self.head[3]
        codes = torch.empty(n, length, dtype=torch.long, device=self.device)
        current = torch.full((n,), SILENCE, dtype=torch.long, device=self.device)
        for t in track(range(length), unit="sample"):
            h = self.embed(current)
            zs = []
            for layer, queue in zip(self.layers, queues, strict=True):
                h, z = layer.step(h, queue)
                zs.append(z)
            skips = torch.addmm(skip_bias, torch.cat(zs, 1), skip_weight)
            hidden = F.relu(F.linear(F.relu(skips), head1.weight[..., 0], head1.bias))
            logits = F.linear(hidden, head2.weight[..., 0], head2.bias)
            current = codes[:, t] = self._draw(logits, noise[:, t], temperature)
        return codes

    def _naive(self, n, length, cond, noise, temperature) -> torch.Tensor:
        inputs = torch.full((n, length + 1), SILENCE, dtype=torch.long, device=self.device)
        for t in track(range(length), unit="sample"):
            window = inputs[:, max(0, t + 1 - self.receptive_field) : t + 1]
            logits = self.logits(window, cond)[:, :, -1]
            inputs[:, t + 1] = self._draw(logits, noise[:, t], temperature)
        return inputs[:, 1:]

"""RNN-NADE (Boulanger-Lewandowski, Bengio & Vincent 2012): polyphonic music as piano rolls.

    p(v_1..v_T) = prod_t p(v_t | v_<t),   p(v_t | v_<t) = NADE(v_t; b_t, c_t),   (b_t, c_t) = f(h_t)

An LSTM reads the frames before t into h_t; its state sets the biases of a NADE over the 88 keys
of frame t (`genzoo.nn.nade.NADE`), so the notes sounding together are modelled jointly (chords,
voice leading) rather than as independent Bernoullis. The likelihood is exact: `log_prob` sums
log p(v_t | v_<t) over a piece's real frames (padding rows of -1 are skipped), and the loss is the
NLL per frame, the number published results on JSB Chorales report (RNN-NADE 5.19, TCN 8.10).

Sampling goes frame by frame, key by key (low to high), with a `temperature` on every key's logit,
optionally continuing a `primer` (a (T0, 88) roll).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from genzoo.data.music import frame_mask
from genzoo.errors import GenzooError
from genzoo.models.base import GenerativeModel, ModelConfig, split_batch
from genzoo.models.registry import register_model
from genzoo.nn.likelihoods import uniform
from genzoo.nn.nade import NADE
from genzoo.progress import track


@dataclass
class RNNNADEConfig(ModelConfig):
    data_shape: tuple[int, ...] = (160, 88)
    data_levels: int | None = 2
    data_low: float = 0.0
    data_high: float = 1.0
    rnn_hidden: int = 256  # LSTM state size
    rnn_layers: int = 1
    nade_hidden: int = 128  # hidden units of the NADE over one frame
    dropout: float = 0.3  # on the frames fed to the LSTM and on its outputs (JSB is small)
    transpose: int = 0  # training augmentation: shift each batch by up to this many semitones


@register_model
class RNNNADE(GenerativeModel):
    """LSTM over time steps with a NADE over the 88 keys of each step (exact NLL per frame)."""

    can_complete = True
    output = "piano-roll"

    Config = RNNNADEConfig
    name = "rnn-nade"
    family = "autoregressive"
    modalities = ("music",)
    log_prob_kind = "exact"
    train_defaults = {
        "lr": 2e-3,
        "batch_size": 16,
        "max_steps": 3000,
        "lr_decay_steps": 3000,
        "warmup_steps": 100,
        "grad_clip": 1.0,
        "eval_every": 250,
        "eval_batches": 10,
        "keep_best": True,  # 229 training chorales overfit: keep the best validation's weights
    }

    def __init__(self, config: RNNNADEConfig):
        super().__init__(config)
        c = config
        if len(c.data_shape) != 2:
            raise GenzooError(f"rnn-nade needs piano rolls (T, keys), got data of shape {c.data_shape}")
        if c.data_levels != 2:
            raise GenzooError("rnn-nade needs binary piano rolls (2 levels)")
        self.frames, self.keys = c.data_shape
        self.start = nn.Parameter(torch.zeros(self.keys))  # the "frame before the first"
        self.drop = nn.Dropout(c.dropout)
        self.rnn = nn.LSTM(
            self.keys,
            c.rnn_hidden,
            c.rnn_layers,
            batch_first=True,
            dropout=c.dropout if c.rnn_layers > 1 else 0,
        )
        self.to_b = nn.Linear(c.rnn_hidden, self.keys)
        self.to_c = nn.Linear(c.rnn_hidden, c.nade_hidden)
        self.nade = NADE(self.keys, c.nade_hidden)

    # ---- the network ------------------------------------------------------------------
    def _previous_frames(self, v: torch.Tensor) -> torch.Tensor:
        """(N, T, K) -> the frames the LSTM reads before each step: [start, v_1, ..., v_{T-1}]."""
        start = self.start.expand(len(v), 1, self.keys)
        return torch.cat([start, v[:, :-1]], 1)

    def _biases(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.drop(h)
        return self.to_b(h), self.to_c(h)

    def frame_log_probs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """log p(v_t | v_<t) for every frame (N, T), and the mask of real frames (N, T)."""
        x = self._check(x)
        mask = frame_mask(x)
        length = int(mask.sum(1).max()) if mask.any() else 1
        x, mask = x[:, :length], mask[:, :length]  # padding after the longest piece costs nothing
        v = x.clamp(min=0)
        h, _ = self.rnn(self.drop(self._previous_frames(v)))
        b, c = self._biases(h)
        lp = torch.zeros(mask.shape, device=v.device)
        lp[mask] = self.nade.log_prob(v[mask], b[mask], c[mask])  # real frames only
        return lp, mask

    def _check(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[2] != self.keys:
            raise GenzooError(f"rnn-nade expects piano rolls (N, T, {self.keys}), got {tuple(x.shape)}")
        return x.to(self.device, torch.float32)

    # ---- training and likelihood --------------------------------------------------------
    def loss(self, batch: Any, phase: str = "main") -> dict[str, torch.Tensor]:
        """NLL per frame over the batch's real frames (nats)."""
        x, _ = split_batch(batch)
        if self.training and self.config.transpose:
            x = self._transpose(x)
        lp, mask = self.frame_log_probs(x)
        nll = -lp.sum() / mask.sum().clamp(min=1)
        return {"loss": nll, "nll_per_frame": nll.detach()}

    def _transpose(self, x: torch.Tensor) -> torch.Tensor:
        """Shift the batch by a random number of semitones; keys pushed off the keyboard are dropped."""
        k = self.config.transpose
        shift = int(torch.randint(-k, k + 1, ()))
        mask = frame_mask(x)
        v = torch.roll(x.clamp(min=0), shift, dims=2)
        if shift > 0:
            v[..., :shift] = 0
        elif shift < 0:
            v[..., shift:] = 0
        return torch.where(mask.unsqueeze(-1), v, x)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log p(piece) in nats, summed over its real frames: (N,)."""
        lp, _ = self.frame_log_probs(x)
        return lp.sum(1)

    # ---- sampling -------------------------------------------------------------------------
    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        temperature: float = 1.0,
        frames: int | None = None,
        primer: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """`n` piano rolls (n, frames, keys) of 0/1; the first rows are `primer` (T0, keys) when given."""
        if n < 0:
            raise GenzooError(f"number of samples must be >= 0, got {n}")
        if temperature <= 0:
            raise GenzooError(f"temperature must be > 0, got {temperature}")
        frames = self.frames if frames is None else int(frames)
        primer = torch.zeros(0, self.keys) if primer is None else torch.as_tensor(primer).float()
        if primer.dim() != 2 or primer.shape[1] != self.keys:
            raise GenzooError(f"a primer must be a (T, {self.keys}) piano roll, got {tuple(primer.shape)}")
        if frames < 1 or frames < len(primer):
            raise GenzooError(f"frames must be >= 1 and >= the primer's {len(primer)} frames, got {frames}")
        out = torch.zeros(n, frames, self.keys, device=self.device)
        out[:, : len(primer)] = primer.to(self.device).clamp(0, 1)
        noise = uniform((n, frames, self.keys), generator, self.device)
        with self.inference():
            prev, state = self.start.expand(n, 1, self.keys), None
            for t in track(range(frames), unit="frame"):
                h, state = self.rnn(prev, state)
                if t >= len(primer):
                    b, c = self._biases(h[:, 0])
                    out[:, t] = self.nade.sample(b, c, noise[:, t], temperature)
                prev = out[:, t : t + 1]
        return out

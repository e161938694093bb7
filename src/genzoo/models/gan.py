"""Generative adversarial networks: DCGAN (Radford et al. 2016, non-saturating loss of
Goodfellow et al. 2014), WGAN-GP (Gulrajani et al. 2017) and SNGAN (Miyato et al. 2018).

    generator      G(z, y) -> x,  z ~ N(0, I)
    discriminator  D(x, y) -> a real score (logit for DCGAN, critic value for WGAN / hinge)

Losses (r = D(real), f = D(G(z)); softplus(a) = log(1 + e^a)):

    "ns"     DCGAN    D: softplus(-r) + softplus(f)          G: softplus(-f)
    "wgan"   WGAN-GP  D: f - r + gp * (|grad D(x_hat)| - 1)^2 G: -f
    "hinge"  SNGAN    D: relu(1 - r) + relu(1 + f)           G: -f

x_hat mixes real and fake at a uniform random point on the line between them. An optional R1
penalty (Mescheder et al. 2018), r1/2 * |grad_x D(real)|^2, regularises any of them.

The two networks train with two optimizers, declared through `phases()`: the Trainer steps
"disc" `n_critic` times (at `d_lr_scale` x lr: two-time-scale updates, Heusel et al. 2017),
then "gen" once. `loss(batch, phase="main")` (what validation calls) gives both losses
without a gradient penalty, for logging.

With `pack = m > 1` (PacGAN, Lin et al. 2018) the discriminator sees m samples of one kind
side by side (concatenated features or channels) and scores the pack; a generator that
collapses or puts mass between the modes makes packs that look unlike real ones. Penalties
then take the gradient norm over the whole pack, the discriminator's real input.

Conditional models (`conditional=True` on labelled data) feed a class embedding to the
generator and use a projection discriminator (Miyato & Koyama 2018): D(x, y) = psi(h) + <e_y, h>.
Data are mapped to [-1, 1] inside; samples come back in dataset units (snapped to the levels
for discrete data). GANs have no likelihood (`log_prob_kind = None`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from genzoo.data.base import DataInfo
from genzoo.errors import GenzooError
from genzoo.models.base import (
    GenerativeModel,
    ModelConfig,
    Phase,
    Preset,
    class_indices,
    split_batch,
    uniform_class_indices,
)
from genzoo.models.registry import register_model
from genzoo.nn.blocks import ConvDecoder, mlp
from genzoo.nn.likelihoods import Rescale, normal

GAN_LOSSES = ("ns", "wgan", "hinge")


GANLoss = Literal["ns", "wgan", "hinge"]  # non-saturating, Wasserstein, hinge


@dataclass
class GANConfig(ModelConfig):
    architecture: Literal["auto", "mlp", "conv"] = (
        "auto"  # "auto" (conv for images, mlp for vectors), "mlp" or "conv"
    )
    latent_dim: int = 32
    hidden: tuple[int, ...] = (256, 256, 256)  # MLP widths of generator and discriminator
    g_channels: tuple[int, ...] = (64, 128)  # conv generator widths, one resolution stage each
    d_channels: tuple[int, ...] = (64, 128)  # conv discriminator widths, one stride-2 stage each
    conditional: bool = False  # class-conditional G + projection D (needs labelled data)
    embed_dim: int = 16  # class embedding fed to the generator
    loss: GANLoss = "ns"  # "ns" (non-saturating), "wgan" or "hinge"
    spectral_norm: bool = False  # spectral normalisation of every discriminator layer
    gp_weight: float = 0.0  # gradient penalty weight (WGAN-GP: 10)
    r1_weight: float = 0.0  # R1 penalty weight on real data (0 = off)
    n_critic: int = 1  # discriminator steps per generator step
    pack: int = 1  # PacGAN: the discriminator judges `pack` samples at once (> 1 fights collapse)
    d_lr_scale: float = 1.0  # discriminator lr = lr * d_lr_scale (two time scales)
    g_lr_scale: float = 1.0
    dequantize: bool = True  # add uniform noise of one level's width to discrete real data


@dataclass
class DCGANConfig(GANConfig):
    pass


@dataclass
class WGANGPConfig(GANConfig):
    loss: GANLoss = "wgan"
    gp_weight: float = 10.0
    n_critic: int = 5


@dataclass
class SNGANConfig(GANConfig):
    loss: GANLoss = "hinge"
    spectral_norm: bool = True
    n_critic: int = 2
    d_lr_scale: float = 2.0


# ---- networks --------------------------------------------------------------------------
class Generator(nn.Module):
    """z (B, latent) [+ class embedding] -> (B, *shape) in internal units."""

    def __init__(self, c: GANConfig, shape: tuple[int, ...], conv: bool, conditional: bool):
        super().__init__()
        self.shape, self.conv = shape, conv
        self.embed = nn.Embedding(c.num_classes, c.embed_dim) if conditional else None
        in_features = c.latent_dim + (c.embed_dim if conditional else 0)
        if conv:
            ch, h, w = shape
            self.net = ConvDecoder(in_features, ch, (h, w), c.g_channels, act="relu")
        else:
            self.net = mlp(in_features, c.hidden, math.prod(shape), act="relu")
        # Bounded image data end in tanh; continuous vectors stay linear (a tanh squashes the tails).
        self.squash = c.data_levels is not None
        # He initialisation keeps the activations' scale through the ReLU layers; PyTorch's default
        # shrinks it layer by layer, and a freshly built generator then puts every pixel at ~0.
        for module in self.net.modules():
            if isinstance(module, (nn.Linear, nn.Conv2d)):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                nn.init.zeros_(module.bias)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            z = torch.cat([z, self.embed(y)], 1)
        out = self.net(z).view(len(z), *self.shape)
        return torch.tanh(out) if self.squash else out


class Discriminator(nn.Module):
    """x (B, *shape) -> score (B / pack,); a projection term <embed(y), h> when conditional."""

    def __init__(self, c: GANConfig, shape: tuple[int, ...], conv: bool, conditional: bool):
        super().__init__()
        self.conv, self.pack = conv, c.pack
        if conv:
            layers: list[nn.Module] = []
            width = shape[0] * c.pack
            for ch in c.d_channels:
                layers += [nn.Conv2d(width, ch, 3, padding=1), nn.LeakyReLU(0.2)]
                layers += [nn.Conv2d(ch, ch, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
                width = ch
            h, w = _conv_out_size(shape[1:], len(c.d_channels))
            self.body = nn.Sequential(*layers, nn.Flatten(), nn.Linear(width * h * w, c.hidden[-1]))
        else:
            layers = []
            width = math.prod(shape) * c.pack
            for hdim in c.hidden:
                layers += [nn.Linear(width, hdim), nn.LeakyReLU(0.2)]
                width = hdim
            self.body = nn.Sequential(nn.Flatten(), *layers[:-1])  # the last hidden layer stays linear
        features = c.hidden[-1]
        self.act = nn.LeakyReLU(0.2)
        self.head = nn.Linear(features, 1)
        self.project = nn.Embedding(c.num_classes, features) if conditional else None
        if c.spectral_norm:
            for module in list(self.modules()):
                if isinstance(module, (nn.Linear, nn.Conv2d, nn.Embedding)):
                    nn.utils.parametrizations.spectral_norm(module)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.pack > 1:  # (B, C, ...) -> (B / m, m * C, ...): each row is one pack
            x = x.reshape(len(x) // self.pack, self.pack * x.shape[1], *x.shape[2:])
        h = self.act(self.body(x))
        out = self.head(h).squeeze(1)
        if self.project is not None:
            out = out + (self.project(y) * h).sum(1)
        return out


def _conv_out_size(size: tuple[int, ...], steps: int) -> tuple[int, int]:
    """Spatial size after `steps` 4x4 stride-2 convs with padding 1: floor(s / 2) each."""
    h, w = size
    for _ in range(steps):
        h, w = h // 2, w // 2
    if h < 1 or w < 1:
        raise GenzooError(f"too many d_channels stages for a {size[0]}x{size[1]} image; remove one")
    return h, w


# ---- losses (plain functions, so tests can check them against hand-computed values) ----
def discriminator_loss(kind: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Discriminator loss from scores on real and fake examples (without penalties)."""
    if kind == "ns":
        return F.softplus(-real).mean() + F.softplus(fake).mean()
    if kind == "wgan":
        return fake.mean() - real.mean()
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    raise GenzooError(f"unknown GAN loss '{kind}'; choose one of: {', '.join(GAN_LOSSES)}")


def generator_loss(kind: str, fake: torch.Tensor) -> torch.Tensor:
    """Generator loss from the discriminator's scores on fake examples."""
    if kind == "ns":
        return F.softplus(-fake).mean()
    if kind in ("wgan", "hinge"):
        return -fake.mean()
    raise GenzooError(f"unknown GAN loss '{kind}'; choose one of: {', '.join(GAN_LOSSES)}")


def gradient_penalty(
    critic: Any, real: torch.Tensor, fake: torch.Tensor, alpha: torch.Tensor
) -> torch.Tensor:
    """WGAN-GP: mean over the batch of (|grad_x critic(x_hat)|_2 - 1)^2, x_hat = a*real + (1-a)*fake.

    `alpha` (B,) gives each example's mixing point; `critic` maps a batch to scores, one per
    example or one per pack of examples (PacGAN): the norm is taken over what each score sees.
    """
    a = alpha.view(-1, *[1] * (real.dim() - 1))
    x_hat = (a * real + (1 - a) * fake).detach().requires_grad_(True)
    scores = critic(x_hat)
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    return ((grad.reshape(len(scores), -1).norm(dim=1) - 1) ** 2).mean()


def r1_penalty(critic: Any, real: torch.Tensor) -> torch.Tensor:
    """R1: mean over the scores of |grad_x critic(real)|^2 (halved by the caller's weight convention)."""
    x = real.detach().requires_grad_(True)
    scores = critic(x)
    (grad,) = torch.autograd.grad(scores.sum(), x, create_graph=True)
    return grad.reshape(len(scores), -1).pow(2).sum(1).mean()


# The class defaults (conv widths 64/128, lr 1e-3, batch 256) let the discriminator win on small
# grayscale images (digits, MNIST) within 500 steps. Narrower nets, a lower learning rate, R1, small
# batches and EMA keep every class (benchmarks/gan_digits.py), with pack=2 when unconditional;
# DCGAN picks these for images up to 32x32 (`defaults_for_data`).
SMALL_IMAGE_SETTINGS: dict[str, Any] = {
    "g_channels": [32, 64],
    "d_channels": [32, 64],
    "lr": 2e-4,
    "r1_weight": 0.1,
    "batch_size": 64,
    "ema_decay": 0.999,
    "max_steps": 6000,
    "lr_decay_steps": 6000,
}
SMALL_IMAGE_SIDE = 32


# ---- the model --------------------------------------------------------------------------
class GAN(GenerativeModel):
    """Base of the GAN family; subclasses only change the config defaults."""

    supports_labels = True
    anomaly_scores = ("critic",)

    family = "gan"
    modalities = ("image", "vector")
    log_prob_kind = None
    # What each GAN picks for 2-d points (toy2d mixtures: modes of std 0.02-0.05) and for small
    # images; {} keeps the class defaults. benchmarks/gan_defaults.py measures them with nothing set.
    points_settings: ClassVar[dict[str, Any]] = {}
    small_image_settings: ClassVar[dict[str, Any]] = {}

    @classmethod
    def defaults_for_data(cls, info: DataInfo, settings: dict[str, Any]) -> dict[str, Any]:
        if info.modality == "vector" and info.shape == (2,):
            return dict(cls.points_settings)
        if info.modality == "image" and max(info.shape[-2:]) <= SMALL_IMAGE_SIDE and cls.small_image_settings:
            packed = {} if settings.get("conditional") else {"pack": 2}  # PacGAN against collapse
            return {**cls.small_image_settings, **packed}
        return {}

    train_defaults = {
        "lr": 1e-3,
        "betas": (0.5, 0.999),
        "batch_size": 256,
        "max_steps": 4000,
        "lr_decay_steps": 4000,
        "min_lr_ratio": 0.1,
        "eval_every": 1000,
        "eval_batches": 4,
        # No EMA by default: averaging a generator that still circles between modes pulls its
        # samples to the middle of the ring (seen on toy2d-ring); --set ema_decay=0.999 turns it on.
        "ema_decay": 0.0,
        # Modes covered (toy2d) or classes hit (labelled data) at every validation: collapse shows.
        "monitor_samples": 1000,
    }

    def __init__(self, config: GANConfig):
        super().__init__(config)
        c = config
        self.shape = tuple(c.data_shape)
        if c.loss not in GAN_LOSSES:
            raise GenzooError(f"unknown GAN loss '{c.loss}'; choose one of: {', '.join(GAN_LOSSES)}")
        if c.latent_dim < 1 or c.n_critic < 1 or c.pack < 1 or not c.hidden:
            raise GenzooError("latent_dim, n_critic and pack must be >= 1 and hidden must not be empty")
        if c.pack > 1 and c.conditional:
            raise GenzooError("pack > 1 works with unconditional GANs only; set pack=1 or conditional=false")
        if c.d_lr_scale <= 0 or c.g_lr_scale <= 0:
            raise GenzooError("d_lr_scale and g_lr_scale must be > 0")
        arch = c.architecture
        if arch == "auto":
            arch = "conv" if len(self.shape) == 3 else "mlp"
        if arch not in ("mlp", "conv"):
            raise GenzooError(f"unknown architecture '{c.architecture}'; choose 'auto', 'mlp' or 'conv'")
        if arch == "conv" and len(self.shape) != 3:
            raise GenzooError(f"architecture 'conv' needs image data (C, H, W), got shape {self.shape}")
        if c.conditional and c.num_classes < 1:
            raise GenzooError("conditional=True needs labelled data (num_classes > 0); set conditional=false")
        self.conditional = c.conditional
        self.rescale = Rescale(c.data_low, c.data_high, c.data_levels)
        self.generator = Generator(c, self.shape, arch == "conv", self.conditional)
        self.discriminator = Discriminator(c, self.shape, arch == "conv", self.conditional)

    def phases(self) -> list[Phase]:
        c = self.config
        return [
            Phase("disc", list(self.discriminator.parameters()), lr_scale=c.d_lr_scale, repeats=c.n_critic),
            Phase("gen", list(self.generator.parameters()), lr_scale=c.g_lr_scale),
        ]

    # ---- helpers ------------------------------------------------------------------------
    def _real(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        x, y = split_batch(batch)
        if tuple(x.shape[1:]) != self.shape:
            raise GenzooError(
                f"GAN expects data of shape (N, {', '.join(map(str, self.shape))}), got {tuple(x.shape)}"
            )
        c = self.config
        x = x[: len(x) - len(x) % c.pack]  # whole packs only
        if len(x) == 0:
            raise GenzooError(f"a batch needs at least pack={c.pack} examples; raise batch_size")
        x = self.rescale.to_internal(x.to(self.device, torch.float32))
        if c.dequantize and c.data_levels and self.training:
            # Real data sit on a grid; the generator's outputs do not. Spreading each value over
            # its bin stops the discriminator from winning on the grid alone.
            half_bin = 1.0 / (c.data_levels - 1)
            x = (x + (torch.rand_like(x) * 2 - 1) * half_bin).clamp(-1, 1)
        if self.conditional:
            if y is None or (y < 0).any():
                raise GenzooError("a conditional GAN needs labels in every batch")
            y = y.to(self.device)
        else:
            y = None
        return x, y

    def _fake(self, n: int, y: torch.Tensor | None) -> torch.Tensor:
        z = torch.randn(n, self.config.latent_dim, device=self.device)
        return self.generator(z, y)

    def _critic(self, y: torch.Tensor | None):
        return lambda x: self.discriminator(x, y)

    @torch.no_grad()
    def anomaly_score(self, x: torch.Tensor, kind: str) -> torch.Tensor:
        """ "critic": minus the discriminator's score, which is high for what looks like training
        data. Each example fills a whole pack alone; a conditional critic is read with the class that
        scores x highest."""
        if kind != "critic":
            return super().anomaly_score(x, kind)
        if tuple(x.shape[1:]) != self.shape:
            raise GenzooError(
                f"GAN expects data of shape (N, {', '.join(map(str, self.shape))}), got {tuple(x.shape)}"
            )
        x = self.rescale.to_internal(x.to(self.device, torch.float32))
        x = x.repeat_interleave(self.config.pack, dim=0)
        with self.inference():
            if not self.conditional:
                return -self.discriminator(x)
            n = len(x)
            scores = [
                self.discriminator(x, torch.full((n,), c, device=self.device))
                for c in range(self.config.num_classes)
            ]
            return -torch.stack(scores).amax(0)

    # ---- the contract -------------------------------------------------------------------
    def loss(self, batch: Any, phase: str = "main") -> dict[str, torch.Tensor]:
        """ "disc": discriminator loss (+ penalties); "gen": generator loss; "main": both, for logging."""
        c = self.config
        real, y = self._real(batch)
        n = len(real)
        if phase == "gen":
            fake_score = self.discriminator(self._fake(n, y), y)
            loss = generator_loss(c.loss, fake_score)
            return {"loss": loss, "d_fake": fake_score.mean().detach()}
        if phase not in ("disc", "main"):
            raise GenzooError(f"unknown GAN phase '{phase}'; the phases are 'disc' and 'gen'")
        fake = self._fake(n, y).detach()
        real_score = self.discriminator(real, y)
        fake_score = self.discriminator(fake, y)
        d_loss = discriminator_loss(c.loss, real_score, fake_score)
        out = {
            "d_real": real_score.mean().detach(),
            "d_fake": fake_score.mean().detach(),
        }
        if c.loss == "wgan":
            out["w_distance"] = (real_score.mean() - fake_score.mean()).detach()
        if phase == "main":  # validation: no penalties (they need gradients), both losses logged
            g_loss = generator_loss(c.loss, fake_score)
            return {"loss": d_loss.detach(), "d_loss": d_loss.detach(), "g_loss": g_loss.detach(), **out}
        loss = d_loss
        if c.gp_weight > 0:
            alpha = torch.rand(n, device=self.device)
            gp = gradient_penalty(self._critic(y), real, fake, alpha)
            loss = loss + c.gp_weight * gp
            out["gp"] = gp.detach()
        if c.r1_weight > 0:
            r1 = r1_penalty(self._critic(y), real)
            loss = loss + 0.5 * c.r1_weight * r1
            out["r1"] = r1.detach()
        if c.loss == "wgan":
            # A tiny drift term keeps the critic's values near 0 (Karras et al. 2018).
            loss = loss + 1e-3 * (real_score**2).mean()
        return {"loss": loss, "d_loss": d_loss.detach(), **out}

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        label: int | torch.Tensor | None = None,
        truncation: float = 1.0,
    ) -> torch.Tensor:
        """`n` samples in dataset units. `label` (int or (n,) tensor) picks classes of a
        conditional model (random classes when None); `truncation` scales z (< 1 trades diversity
        for fidelity)."""
        if n < 0:
            raise GenzooError(f"number of samples must be >= 0, got {n}")
        if truncation <= 0:
            raise GenzooError(f"truncation must be > 0, got {truncation}")
        with self.inference():
            z = normal((n, self.config.latent_dim), generator, self.device) * truncation
            y = self._labels(n, label, generator)
            return self.rescale.to_data(self.generator(z, y))

    def _labels(self, n: int, label: Any, generator: torch.Generator | None) -> torch.Tensor | None:
        k = self.config.num_classes
        if not self.conditional:
            if label is not None:
                raise GenzooError("this GAN is unconditional; train with conditional=true to sample by label")
            return None
        if label is None:
            return uniform_class_indices(n, k, generator, self.device)
        return class_indices(label, n, k, self.device)


@register_model
class DCGAN(GAN):
    """DCGAN: the non-saturating GAN loss (conv nets for images, MLPs for vectors)."""

    Config = DCGANConfig
    name = "dcgan"
    # Tight modes need R1 and large batches: without R1 the class defaults cover 3 of toy2d-ring's
    # 8 modes; with R1 0.1 but batch 256 and 4000 steps it covers 8 but leaves ~30% of the samples
    # on bridges between modes. A long decay to 1% sharpens them: on toy2d-grid's 25 modes 8000
    # steps left 39% of the samples near a mode, 16000 steps 83%.
    points_settings = {"r1_weight": 0.1, "batch_size": 512, "max_steps": 16000, "lr_decay_steps": 16000,
                       "min_lr_ratio": 0.01}  # fmt: skip
    small_image_settings = SMALL_IMAGE_SETTINGS
    # Half-width nets on MNIST's 28x28: the digits widths cost 0.94 s a step on one core, these 0.34 s.
    presets = {
        "mnist10k": Preset(
            "mnist",
            {"g_channels": [16, 32], "d_channels": [16, 32]},
            "unconditional samples hit every class at 5.8% .. 13.5% of 1000 (README, Results: MNIST-10k)",
        ),
        # With the small-image settings the conditional discriminator won within 500 steps and the
        # generator collapsed to one class; R1 10 alone did not stop it, a slower discriminator with
        # R1 1.0 kept all ten.
        "mnist10k-conditional": Preset(
            "mnist",
            {"conditional": True, "g_channels": [16, 32], "d_channels": [16, 32], "r1_weight": 1.0,
             "d_lr_scale": 0.5, "max_steps": 3000, "lr_decay_steps": 3000},
            "samples drawn with --label k are classified as k 92% of the time (README, Results: MNIST-10k)",
        ),
    }  # fmt: skip


@register_model
class WGANGP(GAN):
    """WGAN-GP: Wasserstein critic with a gradient penalty, n_critic critic steps per generator step."""

    Config = WGANGPConfig
    name = "wgan-gp"
    train_defaults = {
        **GAN.train_defaults,
        "lr": 5e-4,
        "betas": (0.0, 0.9),
        "max_steps": 2000,
        "lr_decay_steps": 2000,
    }
    # The penalty is scaled to the data: with modes of std 0.02, the usual gp weight 10 flattens the
    # critic so much that samples smear along the ring (~5% near a mode); 0.1 with packing 2 and a
    # learning rate decayed 1000-fold keeps every mode and sharpens them late.
    # 6000 steps left toy2d-grid at 24 of its 25 modes, still gaining; 12000 reach them.
    points_settings = {"gp_weight": 0.1, "pack": 2, "lr": 1e-3, "ema_decay": 0.999, "max_steps": 12000,
                       "lr_decay_steps": 12000, "min_lr_ratio": 0.001}  # fmt: skip


@register_model
class SNGAN(GAN):
    """SNGAN: spectrally normalised discriminator with the hinge loss."""

    Config = SNGANConfig
    name = "sngan"
    train_defaults = {**GAN.train_defaults, "betas": (0.0, 0.9)}
    # The class defaults cover toy2d-ring's 8 modes but leave half the samples between them; R1,
    # large batches and a long decay tighten them (8000 steps: 89% on the ring, 60% on the grid).
    points_settings = {**DCGAN.points_settings, "max_steps": 8000, "lr_decay_steps": 8000}


__all__ = [
    "DCGAN",
    "GAN",
    "SNGAN",
    "WGANGP",
    "GANConfig",
    "SMALL_IMAGE_SETTINGS",
    "discriminator_loss",
    "generator_loss",
    "gradient_penalty",
    "r1_penalty",
]

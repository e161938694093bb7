"""The model contract every family follows, and saving/loading without pickle."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

import torch
from safetensors.torch import save_file
from torch import nn

from genzoo.data.base import DataInfo
from genzoo.errors import GenzooError, did_you_mean
from genzoo.files import use_umask
from genzoo.settings import coerce

LogProbKind = Literal["exact", "bound", "estimate"] | None
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


@dataclass
class ModelConfig:
    """Fields every model config has: the shape and units of the data it models.

    Filled from a `DataInfo` by `GenerativeModel.for_data`, so a saved config alone is
    enough to rebuild the network.
    """

    data_shape: tuple[int, ...] = (1, 8, 8)
    data_levels: int | None = 17
    data_low: float = 0.0
    data_high: float = 16.0
    num_classes: int = 0
    # Fields added after configs were first saved, with the value that reproduces what such a saved
    # run computed (its new default may differ): `load` fills them in where config.json lacks them.
    saved_before: ClassVar[dict[str, Any]] = {}

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelConfig:
        known = {f.name: f for f in dataclasses.fields(cls)}
        for key in values:
            if key not in known:
                raise GenzooError(
                    f"unknown config key '{key}' for {cls.__qualname__}{did_you_mean(key, known)}"
                )
        hints = typing.get_type_hints(cls)
        # The same check as `--set`: a wrong type is one clear line here, not a crash deep in a layer.
        return cls(**{k: coerce(k, hints[k], v) for k, v in values.items()})


@dataclass(frozen=True)
class Preset:
    """Named settings that reproduce one of the README's figures:
    `genzoo train MODEL --data DATA --preset NAME`. They sit above the family's choices for the data
    and under the user's `--set`; the run records the name."""

    data: str  # the data the figure was measured on (a preset may be used on any)
    settings: dict[str, Any]  # flat names, as `--set` takes them
    figure: str  # what it reproduces and where the README shows it


class ConditionalSteps(Protocol):
    """A batch of examples built one dimension at a time in the flattened order (`conditional_steps`):
    `probs()` is p(x_d = level | x_<d) for the next dimension d, (N, levels) float32; `fix(values)`
    sets x_d (data units) and moves on to d + 1."""

    def probs(self) -> torch.Tensor: ...

    def fix(self, values: torch.Tensor) -> None: ...


@dataclass
class Phase:
    """One optimizer of a model: the Trainer builds it and steps it in order.

    Families with one optimizer need nothing: the default is a single phase "main"
    over all parameters. GANs declare e.g. `Phase("disc", d_params, lr_scale=4.0, repeats=5)`
    then `Phase("gen", g_params)`; the Trainer calls `model.loss(batch, phase=name)` for each.
    """

    name: str
    parameters: list[nn.Parameter] = field(repr=False)
    lr_scale: float = 1.0
    repeats: int = 1


class GenerativeModel(nn.Module):
    """Base class of every genzoo model.

    Subclasses set `Config` (a `ModelConfig` dataclass), `log_prob_kind`, `family`,
    `modalities`, and implement `loss`, `sample` and (when they have one) `log_prob`.
    Batches are whatever the dataset yields: for image and vector data a tuple
    `(x, y)` with `x` in the dataset's units and `y` the labels (-1 when unlabelled).
    """

    Config: ClassVar[type[ModelConfig]] = ModelConfig
    name: ClassVar[str] = ""
    family: ClassVar[str] = ""
    modalities: ClassVar[tuple[str, ...]] = ()
    log_prob_kind: ClassVar[LogProbKind] = None
    # Trainer defaults that suit this family (lr, batch_size, max_steps, ...); `--set` overrides.
    train_defaults: ClassVar[dict[str, Any]] = {}
    # Settings `genzoo compare` gives the family so that a comparison in minutes is practical.
    compare_settings: ClassVar[dict[str, Any]] = {}
    # Named settings behind README figures that the defaults do not reproduce (`--preset NAME`).
    presets: ClassVar[dict[str, Preset]] = {}
    # Capabilities: what the commands may ask of the family. `sample`, `inpaint`, `evaluate`,
    # `compare` and `genzoo list --json` read these, never hasattr (a contract test keeps them true).
    supports_labels: ClassVar[bool] = False  # samples a given class (`--label`) when trained conditional=true
    can_inpaint: ClassVar[bool] = False  # fills masked pixels (`genzoo inpaint`)
    can_complete: ClassVar[bool] = False  # continues given data: a prompt, a primer, a top half
    latent_space: ClassVar[bool] = False  # encodes data to latent codes (`encode`)
    reports_bound: ClassVar[bool] = False  # a variational bound (`elbo`) beside its log_prob estimate
    takes_inputs: ClassVar[bool] = False  # maps input sequences to outputs (`sample(inputs=...)`)
    output: ClassVar[Literal["tensor", "text", "audio", "piano-roll", "table", "series"]] = (
        "tensor"  # what `sample` returns
    )
    # Anomaly scores beside "nll" (which every family with a log_prob offers), computed by
    # `anomaly_score`: "reconstruction" (autoencoders), "critic" (GANs), "denoising" (diffusion).
    anomaly_scores: ClassVar[tuple[str, ...]] = ()
    has_anomaly_map: ClassVar[bool] = False  # `anomaly_map` gives a score per dimension (pixel)
    # `conditional_probs` and `conditional_steps` give the exact distribution of each dimension given
    # the ones before it, in the flattened order: what `genzoo compress` codes with (autoregressive models).
    codes_exactly: ClassVar[bool] = False
    # `latent_posterior` and `observation_probs` give q(z|x) and p(x|z): bits-back coding (VAEs).
    bits_back: ClassVar[bool] = False
    # `forecast` continues given series with sample paths, up to `max_horizon()` steps (`genzoo forecast`).
    forecasts: ClassVar[bool] = False

    @classmethod
    def capabilities(cls) -> dict[str, Any]:
        """The declarations above, by name (what `genzoo list --json` shows)."""
        names = ("supports_labels", "can_inpaint", "can_complete", "latent_space", "reports_bound")
        return {
            "log_prob": cls.log_prob_kind,
            **{n: getattr(cls, n) for n in names},
            "takes_inputs": cls.takes_inputs,
            "output": cls.output,
            "anomaly_scores": list(cls.score_kinds()),
            "has_anomaly_map": cls.has_anomaly_map,
            "codes_exactly": cls.codes_exactly,
            "bits_back": cls.bits_back,
            "forecasts": cls.forecasts,
            "presets": sorted(cls.presets),
        }

    @classmethod
    def preset(cls, name: str) -> Preset:
        """The preset called `name`, or a GenzooError listing the family's presets."""
        if name not in cls.presets:
            have = ", ".join(sorted(cls.presets)) or "none"
            raise GenzooError(
                f"'{cls.name}' has no preset '{name}'{did_you_mean(name, cls.presets)} (its presets: {have}); "
                "see `genzoo list --presets`"
            )
        return cls.presets[name]

    @classmethod
    def score_kinds(cls) -> tuple[str, ...]:
        """Every score `anomaly_score` computes for this family."""
        return (("nll",) if cls.log_prob_kind else ()) + cls.anomaly_scores

    def __init__(self, config: ModelConfig):
        super().__init__()
        if not isinstance(config, self.Config):
            raise TypeError(f"{type(self).__name__} needs a {self.Config.__qualname__}, got {type(config)}")
        self.config = config

    # ---- construction -------------------------------------------------------------
    @classmethod
    def for_data(cls, info: DataInfo, **overrides: Any) -> GenerativeModel:
        """Build a model sized for `info`, with any config field overridden by name."""
        data_fields = {
            "data_shape": tuple(info.shape),
            "data_levels": info.levels,
            "data_low": info.low,
            "data_high": info.high,
            "num_classes": info.num_classes,
        }
        config = cls.Config.from_dict({**data_fields, **overrides})
        if info.modality not in cls.modalities:
            raise GenzooError(
                f"model '{cls.name}' handles {', '.join(cls.modalities)} data, but '{info.name}' is "
                f"{info.modality} data; pick a model listed for it by `genzoo list`"
            )
        return cls(config)

    # ---- the contract -------------------------------------------------------------
    def loss(self, batch: Any, phase: str = "main") -> dict[str, torch.Tensor]:
        """Losses for one batch; `"loss"` is minimised, other keys are logged."""
        raise NotImplementedError

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None, **options: Any) -> torch.Tensor:
        """`n` samples in the dataset's units, deterministic for a seeded `generator`."""
        raise NotImplementedError

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Per-example log-likelihood in nats (its kind is `log_prob_kind`)."""
        raise NotImplementedError(f"{type(self).__name__} has no log-likelihood")

    @torch.no_grad()
    def anomaly_score(self, x: torch.Tensor, kind: str) -> torch.Tensor:
        """One score per example (N,), higher for data less like the training data; `kind` is one
        of `score_kinds()`. "nll" is -log_prob; families add their own kinds by overriding this."""
        if kind == "nll" and self.log_prob_kind:
            with self.inference():
                return -self.log_prob(x)
        raise GenzooError(
            f"model '{self.name}' has no '{kind}' score; it offers: {', '.join(self.score_kinds()) or 'none'}"
        )

    def anomaly_map(self, x: torch.Tensor) -> torch.Tensor:
        """A score per dimension, x's shape (per-pixel NLL or reconstruction error), where
        `has_anomaly_map`: where in an image the model finds what it does not expect."""
        raise GenzooError(f"model '{self.name}' gives no per-pixel anomaly map")

    def conditional_probs(self, x: torch.Tensor) -> torch.Tensor:
        """p(x_d = level | x_<d) for every dimension d of the flattened example: (N, D, levels),
        float32, entry d reading only dimensions before d (where `codes_exactly`)."""
        raise GenzooError(f"model '{self.name}' has no exact per-dimension conditionals to code with")

    def conditional_steps(self, n: int) -> ConditionalSteps:
        """The same conditionals for `n` examples known one dimension at a time, as a decoder learns
        them, each step as cheap as the family can make it (where `codes_exactly`)."""
        raise GenzooError(f"model '{self.name}' has no exact per-dimension conditionals to code with")

    def latent_posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z|x) as (mean, std), each (N, latent_dim) (where `bits_back`)."""
        raise GenzooError(f"model '{self.name}' has no latent posterior to code with")

    def observation_probs(self, z: torch.Tensor) -> torch.Tensor:
        """p(x_d = level | z) for latents (N, latent_dim): (N, D, levels) float32 (where `bits_back`)."""
        raise GenzooError(f"model '{self.name}' has no per-dimension p(x|z) to code with")

    def max_horizon(self) -> int:
        """The longest horizon `forecast` draws, in steps, as the model's config sets it (where `forecasts`)."""
        raise self._no_forecasts()

    @torch.no_grad()
    def forecast(
        self,
        history: torch.Tensor,
        horizon: int,
        num_samples: int,
        *,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Sample paths continuing `history` (N, T, F), in the dataset's units: (N, num_samples, horizon, F),
        deterministic for a seeded `generator`, never touching the global RNG (where `forecasts`). A
        horizon outside 1..`max_horizon()` or a history shorter than the model needs is a GenzooError."""
        raise self._no_forecasts()

    def _no_forecasts(self) -> GenzooError:
        return GenzooError(
            f"model '{self.name}' does not forecast; train a forecasting model on the series "
            '(`genzoo list --json` shows those with "forecasts": true)'
        )

    def prepare(self, train: torch.Tensor) -> None:
        """Set-up that needs the training data, once before the first step of a new run (fitting a
        table's column transforms, a copula's marginals). Whatever it fits must live in buffers, so
        the checkpoint and model.safetensors keep it. Most families need none."""

    def phases(self) -> list[Phase]:
        """The optimizers the Trainer should build (see `Phase`)."""
        return [Phase("main", [p for p in self.parameters() if p.requires_grad])]

    def scored_dims(self, shape: tuple[int, ...]) -> int:
        """How many dimensions of an example of `shape` `log_prob` scores: bits per dimension
        divide by this. All of them, unless the family is given some (a language model's first token)."""
        return math.prod(shape)

    @classmethod
    def defaults_for_data(cls, info: DataInfo, settings: dict[str, Any]) -> dict[str, Any]:
        """Settings (model or training, by name) this family picks for data like `info`: 2-d points,
        vectors, small or large images. `settings` are the model settings the user gave (say,
        `conditional`); whatever the user gives still wins. `genzoo.train` applies them to a new run
        and records them in run.json and the model card. Most families need none: {}."""
        return {}

    @classmethod
    def settings_for_steps(cls, steps: int, settings: dict[str, Any]) -> dict[str, Any]:
        """Model settings that depend on the run's length, for a run of `steps` steps planned from a
        time budget (`settings`: those given). Most families have none."""
        return {}

    def note_step(self, step: int) -> None:
        """The Trainer's step number, told before every training loss. Families that schedule by
        step (a KL warm-up, greedy layer-wise training) set their counter from it: counting their own
        loss calls would go wrong under grad_accum and across data-parallel processes."""

    def no_weight_decay(self) -> list[nn.Parameter]:
        """Matrices AdamW must not decay (e.g. embeddings); biases and norm gains never are."""
        return []

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def evaluation_generator(self) -> torch.Generator:
        """A generator with a fixed seed on the model's device (CPU for MPS, where torch has none):
        the noise of likelihood estimates when the caller gives none, so evaluations repeat."""
        return torch.Generator(device=self.device if self.device.type == "cuda" else "cpu").manual_seed(0)

    @contextlib.contextmanager
    def inference(self) -> Iterator[None]:
        """Evaluation mode (no dropout, frozen norms) for the duration, then the previous mode again."""
        was_training = self.training
        self.eval()
        try:
            yield
        finally:
            self.train(was_training)

    # ---- persistence --------------------------------------------------------------
    def save_pretrained(
        self, directory: str | Path, state_dict: dict[str, torch.Tensor] | None = None
    ) -> None:
        """Write `config.json` and `model.safetensors` (atomically) into `directory`.

        `state_dict` replaces this model's own weights in the file (the Trainer passes EMA weights).
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        payload = {"model": self.name, "config": self.config.to_dict()}
        atomic_write_text(directory / CONFIG_FILE, json.dumps(payload, indent=2))
        save_weights(state_dict if state_dict is not None else self.state_dict(), directory / WEIGHTS_FILE)
        self.save_extra(directory)

    def save_extra(self, directory: Path) -> None:
        """Files a model needs beside config and weights (a tokenizer, ...); `load` calls `load_extra`."""

    def load_extra(self, directory: Path) -> None:
        """Read back what `save_extra` wrote (called by `genzoo.load` after building the model)."""


def split_batch(batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`(x, y)` from what a dataset yields: a tensor alone, or `(x, y)` with y = -1 where unlabelled."""
    if isinstance(batch, (tuple, list)):
        return batch[0], (batch[1] if len(batch) > 1 else None)
    return batch, None


def class_indices(label: Any, n: int, num_classes: int, device: torch.device) -> torch.Tensor:
    """`label` (an int, or n of them) as (n,) class indices on `device`; a user error otherwise."""
    y = torch.as_tensor(label, device=device).long().reshape(-1)
    if len(y) == 1:
        y = y.expand(n)
    if len(y) != n or (y < 0).any() or (y >= num_classes).any():
        raise GenzooError(f"label must be an int in 0..{num_classes - 1} or n of them, got {label!r}")
    return y


def uniform_class_indices(
    n: int, num_classes: int, generator: torch.Generator | None, device: torch.device
) -> torch.Tensor:
    """n class indices drawn uniformly (from `generator`, on its own device), moved to `device`."""
    source = generator.device if generator is not None else device
    return torch.randint(num_classes, (n,), generator=generator, device=source).to(device)


def save_weights(state: dict[str, torch.Tensor], path: Path) -> None:
    """safetensors needs contiguous, unshared tensors; write to a temp file then rename.

    safetensors creates its file with mode 0600; the weights get the mode of every other file
    in the run (0o666 minus the umask), so whoever may read config.json may read them too.
    """
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.detach().contiguous().cpu().clone() for k, v in state.items()}, str(tmp))
    use_umask(tmp)
    tmp.replace(path)


def atomic_write_text(path: Path, text: str) -> None:
    """Write to a temporary file, then rename: readers never see a half-written file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)

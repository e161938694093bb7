"""Feature extractors for the sample-quality metrics: what FID, KID, IS and precision/recall look through.

Any object with a ``name`` and ``features(x) -> (N, D) tensor`` works (see `FeatureExtractor`);
classifiers also give ``probs(x) -> (N, K)`` for the Inception Score. Inputs are always in the
dataset's own units (digits 0..16, MNIST 0..255): each extractor rescales them itself, so the
same samples tensor goes to every metric.

- `DomainClassifier`: a small CNN (images) or MLP (vectors) trained on the dataset's labels.
  On 8x8 digits or MNIST, Inception features are meaningless (ImageNet photos at 299x299), so
  genzoo reports FID and friends in this classifier's penultimate-layer features, naming it in
  ``feature_extractor`` — numbers are comparable between genzoo runs with the same cached
  classifier, not with published FIDs.
- `InceptionV3FID` (in `genzoo.metrics.inception`): the pytorch-fid network, for natural images.
- `ModuleFeatures`: wrap any ``nn.Module`` you trust.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from genzoo.errors import GenzooError, first_line
from genzoo.files import use_umask
from genzoo.metrics.inception import InceptionV3FID

__all__ = [
    "DomainClassifier",
    "FeatureExtractor",
    "InceptionV3FID",
    "ModuleFeatures",
    "domain_classifier_for",
    "train_domain_classifier",
]

CLASSIFIER_CONFIG = "classifier.json"
CLASSIFIER_WEIGHTS = "classifier.safetensors"


@runtime_checkable
class FeatureExtractor(Protocol):
    """What the metrics need: a name to report and a batch -> feature-matrix map."""

    name: str

    def features(self, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor: ...


@torch.no_grad()
def _batched(fn: Any, x: torch.Tensor, batch_size: int, device: torch.device) -> torch.Tensor:
    """Apply ``fn`` to ``x`` in batches on ``device``; concatenated float32 results on the CPU."""
    if len(x) == 0:
        raise GenzooError("no examples to extract features from")
    return torch.cat([fn(b.to(device)).float().cpu() for b in x.split(batch_size)])


def _device_of(module: nn.Module) -> torch.device:
    first = next(iter(module.parameters()), None)
    return first.device if first is not None else torch.device("cpu")


class ModuleFeatures:
    """Any ``nn.Module`` as a feature extractor: ``features(x)`` runs it in eval mode, without gradients.

    The module receives batches exactly as given (no rescaling): it must accept your units.
    Outputs with more than two dimensions are flattened per example.
    """

    def __init__(self, module: nn.Module, name: str):
        self.module = module
        self.name = name

    def features(self, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        was_training = self.module.training
        self.module.eval()
        try:
            out = _batched(self.module, x, batch_size, _device_of(self.module))
        finally:
            self.module.train(was_training)
        return out.reshape(len(out), -1)


@dataclass
class ClassifierConfig:
    """Everything needed to rebuild a `DomainClassifier` (saved as JSON beside the weights)."""

    input_shape: tuple[int, ...] = (1, 8, 8)  # (C, H, W) for images, (D,) for vectors
    num_classes: int = 10
    data_low: float = 0.0  # the dataset's value range: inputs are mapped from it onto [-1, 1] (if finite)
    data_high: float = 16.0
    width: int = 32  # channels of the first conv stage (doubled per stage); MLP hidden = 8 * width
    convs_per_stage: int = 2  # 3x3 convs before each pool (1 keeps 28x28 training CPU-fast)
    feature_dim: int = 128  # size of the penultimate layer = the features the metrics use
    dropout: float = 0.3
    dataset: str = ""
    info: dict[str, Any] = field(default_factory=dict)  # accuracies, training time, seed, ...


class DomainClassifier(nn.Module):
    """A small classifier whose penultimate layer serves as the feature space for one dataset.

    Images (C, H, W): stages of ``convs_per_stage`` 3x3 conv + BatchNorm + ReLU then 2x2 max-pool, while the
    side is >= 4 (at most 3 stages: 8x8 -> 2 stages, 28x28 -> 3), then a ``feature_dim`` ReLU
    layer and the class logits. Vectors (D,): a two-hidden-layer MLP of the same shape.
    """

    def __init__(self, config: ClassifierConfig):
        super().__init__()
        self.config = config
        shape = tuple(config.input_shape)
        if len(shape) == 3:
            layers: list[nn.Module] = []
            channels, side, width = shape[0], min(shape[1:]), config.width
            h, w = shape[1], shape[2]
            for _ in range(3):
                if side < 4:
                    break
                for i in range(config.convs_per_stage):
                    c_in = channels if i == 0 else width
                    layers += [
                        nn.Conv2d(c_in, width, 3, padding=1, bias=False),
                        nn.BatchNorm2d(width),
                        nn.ReLU(),
                    ]
                layers.append(nn.MaxPool2d(2))
                channels, side, h, w, width = width, side // 2, h // 2, w // 2, width * 2
            self.body = nn.Sequential(*layers, nn.Flatten())
            flat = channels * h * w
        elif len(shape) == 1:
            hidden = 8 * config.width
            self.body = nn.Sequential(nn.Linear(shape[0], hidden), nn.ReLU())
            flat = hidden
        else:
            raise GenzooError(f"DomainClassifier handles (C, H, W) images or (D,) vectors, got shape {shape}")
        self.penultimate = nn.Sequential(nn.Linear(flat, config.feature_dim), nn.ReLU())
        self.head = nn.Sequential(
            nn.Dropout(config.dropout), nn.Linear(config.feature_dim, config.num_classes)
        )

    @property
    def name(self) -> str:
        return f"domain-classifier-{self.config.dataset}" if self.config.dataset else "domain-classifier"

    def _scale(self, x: torch.Tensor) -> torch.Tensor:
        """Dataset units -> [-1, 1]; checks the shape so a mis-shaped batch fails loudly."""
        if tuple(x.shape[1:]) != tuple(self.config.input_shape):
            raise GenzooError(
                f"{self.name} expects examples of shape {tuple(self.config.input_shape)}, "
                f"got {tuple(x.shape[1:])}"
            )
        low, high = self.config.data_low, self.config.data_high
        if not (math.isfinite(low) and math.isfinite(high)):
            return x.float()  # unbounded data (e.g. toy2d coordinates) are used as they are
        return (x.float() - low) * (2.0 / (high - low)) - 1.0

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.penultimate(self.body(self._scale(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits for ``x`` in dataset units."""
        return self.head(self.embed(x))

    def _eval_map(self, fn: Any, x: torch.Tensor, batch_size: int) -> torch.Tensor:
        was_training = self.training
        self.eval()
        try:
            return _batched(fn, x, batch_size, _device_of(self))
        finally:
            self.train(was_training)

    def features(self, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        """Penultimate-layer activations (N, feature_dim), eval mode, no gradients."""
        return self._eval_map(self.embed, x, batch_size)

    def probs(self, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        """Class probabilities (N, num_classes)."""
        return self._eval_map(lambda b: F.softmax(self(b), dim=1), x, batch_size)

    def predict(self, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        return self.probs(x, batch_size).argmax(1)

    def accuracy(self, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> float:
        return float((self.predict(x, batch_size) == y.cpu()).double().mean())

    # ---- cache ----------------------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        """Write ``classifier.json`` (config, accuracies, input scaling) and ``classifier.safetensors``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        payload = asdict(self.config)
        payload["input_shape"] = list(self.config.input_shape)
        payload["name"] = self.name
        payload["input_scaling"] = (
            f"(x - {self.config.data_low}) / ({self.config.data_high} - {self.config.data_low}) * 2 - 1"
        )
        tmp = directory / (CLASSIFIER_CONFIG + ".tmp")
        tmp.write_text(json.dumps(payload, indent=2))
        state = {k: v.detach().contiguous().cpu().clone() for k, v in self.state_dict().items()}
        save_file(state, str(directory / CLASSIFIER_WEIGHTS))
        use_umask(directory / CLASSIFIER_WEIGHTS)  # safetensors writes 0600; a shared cache needs 0644
        tmp.replace(directory / CLASSIFIER_CONFIG)  # config last: its presence means the cache is complete

    @classmethod
    def load(cls, directory: str | Path, *, device: str | torch.device = "cpu") -> DomainClassifier:
        directory = Path(directory)
        config_path, weights_path = directory / CLASSIFIER_CONFIG, directory / CLASSIFIER_WEIGHTS
        if not config_path.is_file() or not weights_path.is_file():
            raise GenzooError(
                f"'{directory}' holds no domain classifier ({CLASSIFIER_CONFIG} + {CLASSIFIER_WEIGHTS}); "
                "train one with genzoo.metrics.train_domain_classifier"
            )
        try:
            payload = json.loads(config_path.read_text())
            fields = {k: payload[k] for k in ClassifierConfig.__dataclass_fields__ if k in payload}
            fields["input_shape"] = tuple(fields["input_shape"])
            model = cls(ClassifierConfig(**fields))
            model.load_state_dict(load_file(str(weights_path)))
        except Exception as err:  # corrupt JSON, wrong keys, unreadable safetensors
            raise GenzooError(
                f"'{directory}' holds a broken domain classifier ({first_line(err)}); delete it to retrain"
            ) from err
        return model.to(device).eval()


def _shift(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Random translation by up to ``max_shift`` pixels (zero padding): cheap, label-preserving augmentation."""
    n, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4)
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen)
    rows = (dy[:, None] + torch.arange(h)[None, :])[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w)[None, :])[:, None, None, :]
    batch = torch.arange(n)[:, None, None, None]
    chan = torch.arange(x.shape[1])[None, :, None, None]
    return padded[batch, chan, rows, cols]


def train_domain_classifier(
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_val: torch.Tensor,
    y_val: torch.Tensor,
    *,
    data_range: tuple[float, float],
    num_classes: int | None = None,
    dataset: str = "",
    x_test: torch.Tensor | None = None,
    y_test: torch.Tensor | None = None,
    epochs: int | None = None,
    batch_size: int = 64,
    lr: float = 3e-3,
    weight_decay: float = 5e-4,
    label_smoothing: float = 0.0,
    augment: bool = True,
    width: int | None = None,
    convs_per_stage: int | None = None,
    feature_dim: int = 128,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> DomainClassifier:
    """Train a `DomainClassifier` on labelled data in dataset units; deterministic for a given ``seed``.

    Unset ``epochs``, ``width`` and ``convs_per_stage`` are chosen from the data's size (see the
    code: about 40k training examples seen, a lighter network for images larger than 16x16).
    AdamW with a one-cycle learning-rate schedule; images get random shifts
    of up to 1/14 of their side (1 pixel on 8x8, 2 on 28x28). The final weights are kept: the
    schedule ends at a tiny learning rate, and picking the "best" epoch on a few hundred
    validation examples mostly selects noise. The validation accuracy is reported; if
    ``x_test``/``y_test`` are given, the test accuracy is measured once at the end. Both land in
    ``classifier.config.info`` with the training time. ``label_smoothing`` stays 0 by default:
    it caps the classifier's confidence and so pulls the Inception Score of real digits from
    about 9.6 down to about 6.
    """
    if len(x_train) != len(y_train) or len(x_val) != len(y_val):
        raise GenzooError("x and y must have the same number of examples")
    low, high = float(data_range[0]), float(data_range[1])
    if not high > low:
        raise GenzooError(f"data_range must be (low, high) with high > low, got {data_range}")
    num_classes = num_classes or int(max(int(y_train.max()), int(y_val.max())) + 1)
    # Defaults sized for a CPU: small images afford two 32-channel convs per stage; larger ones
    # (MNIST) get one 16-channel conv per stage, which still reaches 99% on MNIST.
    small = x_train.ndim != 4 or min(x_train.shape[2:]) <= 16
    auto_width, auto_convs = (32, 2) if small else (16, 1)
    # About 40k examples seen in all: 20 epochs on digits' 1000, 5 on 8k, 2 on MNIST's 60k.
    epochs = epochs or min(20, max(2, math.ceil(40_000 / len(x_train))))
    config = ClassifierConfig(
        input_shape=tuple(x_train.shape[1:]),
        num_classes=num_classes,
        data_low=low,
        data_high=high,
        width=width or auto_width,
        convs_per_stage=convs_per_stage or auto_convs,
        feature_dim=feature_dim,
        dataset=dataset,
    )
    start = time.perf_counter()
    on_cuda = torch.device(device).type == "cuda"
    threads = torch.get_num_threads()
    # One CPU thread: sums then add up in one order, so the classifier (and every FID seen through
    # it) is the same whichever process trains it first, with however many threads it runs.
    torch.set_num_threads(1)
    try:
        model = _fit_classifier(config, x_train, y_train, epochs, batch_size, lr, weight_decay,
                                label_smoothing, augment, seed, device, on_cuda)  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    model.eval()
    info: dict[str, Any] = {
        "val_accuracy": model.accuracy(x_val, y_val),
        "epochs": epochs,
        "seed": seed,
        "train_examples": len(x_train),
        "train_seconds": round(time.perf_counter() - start, 2),
    }
    if x_test is not None and y_test is not None:
        info["test_accuracy"] = model.accuracy(x_test, y_test)
        info["test_examples"] = len(x_test)
    model.config.info = info
    return model


def _fit_classifier(config, x_train, y_train, epochs, batch_size, lr, weight_decay, label_smoothing, augment,
                    seed, device, on_cuda) -> DomainClassifier:  # fmt: skip
    """The training loop of `train_domain_classifier`, leaving the caller's RNG state alone."""
    with torch.random.fork_rng(devices=None if on_cuda else []):
        torch.manual_seed(seed)  # initial weights and dropout masks
        model = DomainClassifier(config).to(device)
        gen = torch.Generator().manual_seed(seed)  # shuffling and augmentation
        steps_per_epoch = math.ceil(len(x_train) / batch_size)
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch)
        is_image = x_train.ndim == 4
        background = config.data_low if math.isfinite(config.data_low) else 0.0
        max_shift = max(1, round(x_train.shape[-1] / 14)) if is_image else 0
        for _ in range(epochs):
            model.train()
            order = torch.randperm(len(x_train), generator=gen)
            for idx in order.split(batch_size):
                if len(idx) < 2:  # BatchNorm cannot normalise a batch of one
                    continue
                xb, yb = x_train[idx], y_train[idx]
                if augment and is_image:
                    # Shift relative to `low` so the zero padding is background (the data's low end).
                    xb = _shift(xb - background, max_shift, gen) + background
                logits = model(xb.to(device))
                loss = F.cross_entropy(logits, yb.to(device), label_smoothing=label_smoothing)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
    return model


def classifier_cache_dir() -> Path:
    """Where trained domain classifiers are kept: $GENZOO_CACHE/classifiers, else ~/.cache/genzoo/classifiers."""
    return Path(os.environ.get("GENZOO_CACHE", Path.home() / ".cache" / "genzoo")) / "classifiers"


def domain_classifier_for(
    data: Any,
    cache_dir: str | Path | None = None,
    *,
    splits: Sequence[str] = ("train", "val", "test"),
    **train_options: Any,
) -> DomainClassifier:
    """The domain classifier of a labelled `genzoo.data.base.Dataset`, from ``cache_dir`` or trained now.

    The cache lives in ``cache_dir / <dataset name>``; a cached classifier built for another
    shape or value range is an error rather than a silent mismatch. Training uses the
    ``splits`` (train, val, and test for the reported accuracy when the dataset has it).
    """
    info = data.info
    if info.num_classes < 2:
        raise GenzooError(
            f"dataset '{info.name}' has no class labels, so no domain classifier can be trained; "
            "use ModuleFeatures with a feature network of your own"
        )
    target = Path(cache_dir) / info.name if cache_dir is not None else None
    if target is not None and (target / CLASSIFIER_CONFIG).is_file():
        model = DomainClassifier.load(target)
        c = model.config
        if tuple(c.input_shape) != tuple(info.shape) or (c.data_low, c.data_high) != (info.low, info.high):
            raise GenzooError(
                f"the cached classifier in '{target}' was built for shape {c.input_shape} and range "
                f"[{c.data_low}, {c.data_high}], not {info.shape} and [{info.low}, {info.high}]; delete it to retrain"
            )
        return model
    train_split, val_split, test_split = splits
    x_tr, y_tr = data.split(train_split).tensors
    x_va, y_va = data.split(val_split).tensors
    test = data.split(test_split).tensors if test_split in data.split_names else (None, None)
    model = train_domain_classifier(
        x_tr,
        y_tr,
        x_va,
        y_va,
        data_range=(info.low, info.high),
        num_classes=info.num_classes,
        dataset=info.name,
        x_test=test[0],
        y_test=test[1],
        **train_options,
    )
    if target is not None:
        model.save(target)
    return model

"""The README's headline figures, reproduced from `genzoo train MODEL --data DATA [--preset NAME]`
alone: seed 0, no other setting, then `genzoo evaluate` (slow: `make test-slow`, hours on a 2-core
CPU; `pytest -m slow tests/test_readme_figures.py -k vae` runs one family).

Each figure's bounds are the README's value with a tolerance: where the README gives a spread over
seeds, about three times it; where it gives one seed, what a seed moves such a figure on this data
(said per row). A figure that gets worse than its bound fails here before it reaches the README.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import genzoo
from genzoo.data.base import find_shared_file


@dataclass(frozen=True)
class Figure:
    model: str
    data: str
    readme: str  # the figure as the README gives it
    bounds: dict[str, tuple[float, float]]  # measured key -> [low, high]
    metrics: tuple[str, ...] = ("nll",)
    preset: str | None = None
    split: str = "test"
    # What to measure on the trained run when `genzoo evaluate` has no metric for the figure.
    measure: Callable[[Path], dict[str, float]] | None = None

    @property
    def id(self) -> str:
        return f"{self.model}-{self.data}" + (f"-{self.preset}" if self.preset else "")


def class_share_range(result: dict) -> dict[str, float]:
    shares = result["class_shares"]
    return {"min_class_share": min(shares), "max_class_share": max(shares)}


def wavenet_pitch(run: Path) -> dict[str, float]:
    """How far (in cents) the strongest spectral peak of one generated second per note lies from
    the note asked for, at worst over the four notes (the first 0.1 s skipped, Hann window)."""
    import torch

    from genzoo.data.audio import NOTES, SAMPLE_RATE
    from genzoo.data.synth import midi_to_hz

    clips = genzoo.load(run).sample(len(NOTES), generator=torch.Generator().manual_seed(0),
                                    length=SAMPLE_RATE, label=torch.arange(len(NOTES)))  # fmt: skip
    worst = 0.0
    for clip, note in zip(clips, NOTES, strict=True):
        wave = clip[0].numpy()[SAMPLE_RATE // 10 :]
        power = np.abs(np.fft.rfft(wave * np.hanning(len(wave)))) ** 2
        freqs = np.fft.rfftfreq(len(wave), 1 / SAMPLE_RATE)
        audible = freqs > 50
        peak = freqs[audible][power[audible].argmax()]
        worst = max(worst, abs(1200 * np.log2(peak / midi_to_hz(note))))
    return {"worst_cents_off": worst}


FIVE_TO_FIFTEEN = {"min_class_share": (0.05, 1.0), "max_class_share": (0.0, 0.15)}
EVERY_RING_MODE = {"modes": (8, 8), "high_quality_share": (0.80, 1.0)}
EVERY_GRID_MODE = {"modes": (25, 25), "high_quality_share": (0.55, 1.0)}

FIGURES = [
    # Likelihoods on digits (README: VAE on digits, Exact likelihoods on digits). Seeds move them by
    # about 0.4 nats (the VAE's three seeds: 85.23 +- 0.36).
    Figure("vae", "digits", "test NLL 85.23 +- 0.36 nats", {"nll": (0, 86.5)}),
    Figure("pixelcnn", "digits", "test NLL 81.8 nats", {"nll": (0, 83.0)}),
    Figure("pixelcnn", "digits", "test NLL 79.5 nats", {"nll": (0, 80.7)}, preset="conditional"),
    Figure("realnvp", "digits", "test NLL 93.3 nats", {"nll": (0, 94.5)}),
    Figure("glow", "digits", "test NLL 98.6 nats", {"nll": (0, 99.8)}),
    Figure("dbn", "digits", "test NLL 93.3 nats (AIS)", {"nll": (0, 94.8)}),
    # Binarized MNIST-10k (README: Binarized MNIST-10k); needs the MNIST t10k file.
    Figure("pixelcnn", "mnist-binary", "test NLL 62.9 nats", {"nll": (0, 63.9)}, preset="binarized-mnist"),
    Figure("iwae", "mnist-binary", "test NLL 93.1 nats", {"nll": (0, 94.5)}, preset="binarized-mnist"),
    Figure("vae", "mnist-binary", "test NLL 97.3 nats", {"nll": (0, 98.7)}, preset="binarized-mnist"),
    Figure("dbn", "mnist-binary", "test NLL 92.6 nats (AIS)", {"nll": (0, 94.5)}, preset="binarized-mnist"),
    Figure("dbn", "mnist-binary", "test NLL 131.0 nats (AIS)", {"nll": (0, 133.0)}, preset="rbm"),
    Figure("glow", "mnist-binary", "test NLL 144.0 nats", {"nll": (0, 147.0)}, preset="binarized-mnist"),
    # GANs with their own choices for the data (README: Defaults only). 1000 samples, seed 0.
    Figure("dcgan", "toy2d-ring", "8/8 modes, 92.9% near one", EVERY_RING_MODE, ("modes",)),
    Figure("wgan-gp", "toy2d-ring", "8/8 modes, 95.0% near one", EVERY_RING_MODE, ("modes",)),
    Figure("sngan", "toy2d-ring", "8/8 modes, 88.9% near one", EVERY_RING_MODE, ("modes",)),
    Figure("dcgan", "toy2d-grid", "25/25 modes, 82.6% near one", EVERY_GRID_MODE, ("modes",)),
    Figure("dcgan", "digits", "every class 7.3% .. 13.8%", FIVE_TO_FIFTEEN, ("classes",)),
    Figure("ddpm", "digits", "every class 8.0% .. 12.3%", FIVE_TO_FIFTEEN, ("classes",)),
    # MNIST-10k samples (README: MNIST-10k); needs the MNIST t10k file.
    Figure("dcgan", "mnist", "every class 5.8% .. 13.5%", FIVE_TO_FIFTEEN, ("classes",), preset="mnist10k"),
    Figure("ddpm", "mnist", "every class 7.5% .. 14.2%", FIVE_TO_FIFTEEN, ("classes",), preset="mnist10k"),
    # Text, music and audio (README: Text, Dates to ISO 8601, JSB Chorales).
    Figure(
        "gpt",
        "shakespeare",
        "val loss 1.691 nats/token (2273 steps; the default 2000)",
        {"loss_per_token": (0, 1.75)},
        ("loss_per_token",),
        split="val",
    ),  # fmt: skip
    Figure("seq2seq", "dates", "exact match 99.9%", {"exact_match": (0.99, 1.0)}, ("exact_match",)),
    Figure("rnn-nade", "jsb", "test NLL 5.44 nats per frame", {"nll_per_frame": (0, 5.6)}),
    Figure(
        "wavenet",
        "notes",
        "every note's spectral peak within 4 cents",
        {"worst_cents_off": (0, 25)},
        (),
        measure=wavenet_pitch,
    ),  # fmt: skip
    # Tables (README: Synthetic tables beside SDV).
    Figure("gaussian-copula", "adult", "quality 0.912", {"quality_score": (0.90, 1.0)}, ("quality",)),
    Figure("tvae", "adult", "quality 0.901", {"quality_score": (0.885, 1.0)}, ("quality",), preset="adult"),
    Figure("ctgan", "adult", "quality 0.875", {"quality_score": (0.86, 1.0)}, ("quality",), preset="adult"),
    Figure("tabddpm", "adult", "quality 0.932", {"quality_score": (0.92, 1.0)}, ("quality",)),
    # Series (README: Time series). TimeGAN's discriminative score over 5 seeds: 0.029 +- 0.014.
    Figure(
        "diffusion-ts",
        "sines",
        "discriminative 0.029, predictive 0.094",
        {"discriminative_score": (0, 0.07), "predictive_score": (0, 0.1)},
        ("discriminative_score", "predictive_score"),
    ),  # fmt: skip
    Figure(
        "deepar",
        "sunspots",
        "scaled CRPS 0.873, 80% intervals cover 0.89",
        {"scaled_crps": (0, 0.95), "coverage": (0.75, 0.95)},
        ("crps", "coverage"),
        preset="yearly",
    ),  # fmt: skip
]

NEEDS_MNIST = {"mnist", "mnist-binary"}


@pytest.mark.slow
@pytest.mark.parametrize("figure", FIGURES, ids=[f.id for f in FIGURES])
def test_readme_figure(figure: Figure, tmp_path: Path):
    if figure.data in NEEDS_MNIST and find_shared_file("mnist-t10k-images-idx3-ubyte.gz") is None:
        pytest.skip("needs the MNIST t10k file in ../shared/data or $GENZOO_DATA (offline copy)")
    run = tmp_path / "run"
    genzoo.train(figure.model, figure.data, run, {"preview_samples": 0}, device="cpu", quiet=True,
                 preset=figure.preset)  # fmt: skip
    if figure.measure:
        result = figure.measure(run)
    else:
        result = genzoo.evaluate(
            run, split=figure.split, metrics=list(figure.metrics), quiet=True, device="cpu"
        )
    if "class_shares" in result:
        result.update(class_share_range(result))
    measured = {key: float(np.asarray(result[key]).mean()) for key in figure.bounds}
    print(f"{figure.id}: {measured} (README: {figure.readme})")  # shown with -s or -rA
    for key, (low, high) in figure.bounds.items():
        assert low <= measured[key] <= high, (
            f"{figure.id}: {key} {measured[key]:.4g}, README: {figure.readme}"
        )

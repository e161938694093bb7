"""WaveNet on the embedded `notes` audio: do generated clips sound at the training notes' pitches?

    python benchmarks/wavenet_notes.py [--seed 0] [--reuse] [--seconds 1.0] [--set key=value ...]

Trains a class-conditional WaveNet (the label is the note: C4, E4, G4, C5) with its default
config, generates one clip per note in fast mode, and finds the strongest peak of each clip's
spectrum (Hann window, first 0.1 s skipped). Target (issue 8): every peak lies on its note's
pitch, within 50 cents (a quarter tone). Also reports how much of each clip's spectral energy lies
within 50 cents of the note's harmonics, and the test NLL (bits per mu-law sample). Writes the
clips to results/wavenet_notes.wav and the spectra to results/wavenet_notes_spectra.png.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch
from common import RESULTS, logged_train_seconds, save, train_unless_reused

from genzoo.data.audio import NOTES, SAMPLE_RATE, write_wav
from genzoo.data.synth import midi_to_hz
from genzoo.evaluation import evaluate_run
from genzoo.models import load
from genzoo.settings import parse_assignments


def spectrum(wave: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray]:
    power = np.abs(np.fft.rfft(wave * np.hanning(len(wave)))) ** 2
    return np.fft.rfftfreq(len(wave), 1 / rate), power


def cents(f: float, ref: float) -> float:
    return 1200 * math.log2(f / ref)


def analyse(wave: np.ndarray, pitch: int, rate: int) -> dict:
    freqs, power = spectrum(wave[round(0.1 * rate) :], rate)
    audible = freqs > 50  # ignore DC and rumble
    peak = float(freqs[audible][power[audible].argmax()])
    f0 = midi_to_hz(pitch)
    nearest = min(NOTES, key=lambda p: abs(cents(peak, midi_to_hz(p))))
    harmonics = np.zeros_like(freqs, dtype=bool)
    for k in range(1, int(rate / 2 / f0) + 1):
        harmonics |= np.abs(1200 * np.log2(np.maximum(freqs, 1e-9) / (k * f0))) < 50
    return {
        "note": pitch,
        "note_hz": round(f0, 2),
        "peak_hz": round(peak, 2),
        "peak_cents_off": round(cents(peak, f0), 1),
        "nearest_training_note": nearest,
        "on_pitch": bool(abs(cents(peak, f0)) < 50),
        "energy_on_harmonics": round(float(power[harmonics & audible].sum() / power[audible].sum()), 3),
        "rms": round(float(np.sqrt(np.mean(wave**2))), 4),
    }


def plot(clips: list[np.ndarray], rate: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(clips), 1, figsize=(7, 1.6 * len(clips)), sharex=True, dpi=100)
    for ax, wave, pitch in zip(axes, clips, NOTES, strict=True):
        freqs, power = spectrum(wave[round(0.1 * rate) :], rate)
        ax.semilogy(freqs, power + 1e-12, lw=0.7)
        for p in NOTES:
            ax.axvline(midi_to_hz(p), color="C1" if p == pitch else "0.8", lw=0.8, ls="--")
        ax.set_ylabel(f"MIDI {pitch}", fontsize=8)
        ax.set_xlim(0, 1600)
    axes[-1].set_xlabel("Hz (dashed: training notes; orange: the note asked for)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reuse", action="store_true", help="evaluate an existing run instead of retraining")
    parser.add_argument("--seconds", type=float, default=1.0, help="length of each generated clip")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--work", type=Path, default=Path("runs/bench-wavenet-notes"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = {"seed": args.seed, **parse_assignments(args.set)}
    run = args.work / "wavenet"
    train_unless_reused("wavenet", "notes", run, settings, args.reuse)
    model = load(run)
    generator = torch.Generator().manual_seed(args.seed)
    length = round(args.seconds * SAMPLE_RATE)
    clips = model.sample(len(NOTES), generator=generator, length=length, label=torch.arange(len(NOTES)))
    clips = [c[0].numpy() for c in clips]
    write_wav(clips, RESULTS / "wavenet_notes.wav", SAMPLE_RATE)
    plot(clips, SAMPLE_RATE, RESULTS / "wavenet_notes_spectra.png")
    per_note = [analyse(c, p, SAMPLE_RATE) for c, p in zip(clips, NOTES, strict=True)]
    save(
        "wavenet_notes",
        {
            "command": "genzoo train wavenet --data notes --out R "
            + " ".join(f"--set {s}" for s in args.set)
            + f"; model.sample(4, length={length}, label=[0, 1, 2, 3])",
            "settings": settings,
            "train_seconds": logged_train_seconds(run),
            "sample_rate": SAMPLE_RATE,
            "clip_seconds": args.seconds,
            "all_on_pitch": all(r["on_pitch"] for r in per_note),
            "notes": per_note,
            "test": evaluate_run(run, split="test", metrics=["nll"]),
            "files": ["results/wavenet_notes.wav", "results/wavenet_notes_spectra.png"],
        },
    )


if __name__ == "__main__":
    main()

"""Samples as files a musician opens: MIDI for piano rolls, 16-bit WAV for audio and (synthesized) music.

What `genzoo sample --out x.mid|x.wav [--seconds S] [--primer P.mid]` needs beside the model:
the data's frame length or sample rate, kept by `MusicDataset` and `AudioDataset`.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import torch

from genzoo.data.audio import SAMPLE_RATE, AudioDataset, write_wav
from genzoo.data.base import Dataset
from genzoo.data.music import MusicDataset, read_midi, unpad, write_midi
from genzoo.data.synth import render_roll
from genzoo.errors import GenzooError

MEDIA_SUFFIXES = (".mid", ".midi", ".wav")


def media_options(model: Any, data: Dataset, seconds: float | None, primer: Path | None) -> dict[str, Any]:
    """`--seconds` as the model's length option (audio samples or music frames), `--primer` as a roll."""
    accepted = inspect.signature(model.sample).parameters
    options: dict[str, Any] = {}
    if seconds is not None:
        if seconds <= 0:
            raise GenzooError(f"--seconds must be > 0, got {seconds}")
        if isinstance(data, AudioDataset) and "length" in accepted:
            options["length"] = max(1, round(seconds * data.sample_rate))
        elif isinstance(data, MusicDataset) and "frames" in accepted:
            options["frames"] = max(1, round(seconds / data.frame_seconds))
        else:
            raise GenzooError(f"model '{model.name}' does not take --seconds (audio and music models do)")
    if primer is not None:
        if not isinstance(data, MusicDataset) or "primer" not in accepted:
            raise GenzooError(f"model '{model.name}' does not take --primer (music models do)")
        if not primer.is_file():
            raise GenzooError(f"primer '{primer}' does not exist; give a .mid file")
        roll = read_midi(primer, frames_per_beat=max(1, round(0.5 / data.frame_seconds)))
        options["primer"] = torch.from_numpy(roll).float()
        frames = options.get("frames", data.info.shape[0])
        if len(roll) >= frames:
            raise GenzooError(
                f"the primer is {len(roll)} frames long, the samples {frames}; ask for more with --seconds"
            )
    return options


def write_media(samples: torch.Tensor, data: Dataset, out: Path) -> None:
    """Write samples to `out` by its suffix: .mid/.midi (music) or .wav (audio, or music synthesized)."""
    suffix = out.suffix.lower()
    if isinstance(data, MusicDataset):
        rolls = [unpad(s) for s in samples]
        if suffix == ".wav":
            waves = [render_roll(r, data.frame_seconds, SAMPLE_RATE) for r in rolls]
            write_wav(waves, out, SAMPLE_RATE, gap_seconds=1.0)
        else:
            write_midi(rolls, out, data.frame_seconds)
    elif isinstance(data, AudioDataset):
        if suffix != ".wav":
            raise GenzooError(f"audio samples are written as .wav, got '{out.name}'")
        write_wav([s.numpy() for s in samples], out, data.sample_rate)
    else:
        raise GenzooError(
            f"'{out.name}': .mid and .wav are for music and audio data, not {data.info.modality}"
        )

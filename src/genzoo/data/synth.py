"""A small additive synthesizer: notes as sums of harmonics under an attack/decay envelope.

It renders the embedded `notes` audio dataset (so audio models train offline) and turns piano
rolls into audio (`genzoo sample --out x.wav` for music models). Pitches are MIDI numbers
(69 = A4 = 440 Hz, equal temperament).
"""

from __future__ import annotations

import numpy as np


def midi_to_hz(pitch: float) -> float:
    return 440.0 * 2.0 ** ((pitch - 69) / 12)


def tone(
    pitch: float,
    seconds: float,
    sample_rate: int,
    *,
    amplitude: float = 0.5,
    brightness: float = 1.5,
    phase: float = 0.0,
    attack: float = 0.01,
    decay: float = 1.5,
) -> np.ndarray:
    """One note: harmonics k = 1, 2, ... below Nyquist with amplitudes 1 / k**brightness,
    a linear attack of `attack` seconds and an exponential decay with time constant `decay` s."""
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    f0 = midi_to_hz(pitch)
    wave = np.zeros_like(t)
    for k in range(1, int(sample_rate / 2 / f0) + 1):
        wave += np.sin(2 * np.pi * k * f0 * t + k * phase) / k**brightness
    peak = np.abs(wave).max(initial=0.0)
    if peak == 0:  # the note is above the Nyquist frequency (or has no length): silence at this rate
        return np.zeros(len(t), dtype=np.float32)
    envelope = np.minimum(1.0, t / attack) * np.exp(-t / decay)
    return (amplitude * envelope * wave / peak).astype(np.float32)


def render_roll(
    roll: np.ndarray, frame_seconds: float, sample_rate: int, lowest_pitch: int = 21
) -> np.ndarray:
    """A (T, keys) piano roll -> mono audio in [-1, 1]: each run of held frames is one note."""
    roll = np.asarray(roll) > 0
    frames, keys = roll.shape
    tail = 0.3  # let the last notes ring out instead of clicking off
    out = np.zeros(round((frames * frame_seconds + tail) * sample_rate), dtype=np.float32)
    padded = np.vstack([np.zeros((1, keys), bool), roll, np.zeros((1, keys), bool)])
    change = np.diff(padded.astype(np.int8), axis=0)
    for key in range(keys):
        starts, ends = np.nonzero(change[:, key] == 1)[0], np.nonzero(change[:, key] == -1)[0]
        for f0, f1 in zip(starts, ends, strict=True):
            note = tone(lowest_pitch + key, (f1 - f0) * frame_seconds, sample_rate, amplitude=0.2, decay=1.0)
            release = np.linspace(1.0, 0.0, min(len(note), round(0.02 * sample_rate)), dtype=np.float32)
            note[len(note) - len(release) :] *= release  # no click at note-off
            begin = round(f0 * frame_seconds * sample_rate)
            out[begin : begin + len(note)] += note
    peak = np.abs(out).max()
    return out / peak * 0.9 if peak > 0.9 else out

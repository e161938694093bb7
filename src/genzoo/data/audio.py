"""Raw audio: folders of WAV files, the embedded synthesized `notes`, mu-law coding, WAV writing.

Examples are mono clips of fixed length, shape (1, L), values in [-1, 1] (continuous in the
dataset's units; WaveNet quantizes them itself with `mu_law_encode`). Labels are the class of a
clip: the note for `notes`, the subfolder (e.g. a speaker) for a WAV folder with subfolders, else -1.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from genzoo.data.base import DataInfo, Dataset
from genzoo.data.registry import register_dataset
from genzoo.data.synth import tone
from genzoo.errors import GenzooError

SAMPLE_RATE = 8000
NOTES = (60, 64, 67, 72)  # C4 E4 G4 C5: the pitches (MIDI numbers) of the embedded `notes` data
WAV_SUFFIXES = (".wav", ".flac", ".ogg")


class AudioDataset(Dataset):
    """A `Dataset` of (1, L) clips that also knows its sample rate."""

    def __init__(self, info: DataInfo, splits, sample_rate: int):
        super().__init__(info, splits)
        self.sample_rate = sample_rate


def mu_law_encode(x: torch.Tensor, levels: int = 256) -> torch.Tensor:
    """Audio in [-1, 1] -> integer codes 0..levels-1 (companded: fine steps near 0, coarse near +-1)."""
    mu = levels - 1
    y = torch.sign(x) * torch.log1p(mu * x.abs().clamp(max=1)) / math.log1p(mu)
    return ((y + 1) / 2 * mu + 0.5).floor().long().clamp(0, mu)


def mu_law_decode(codes: torch.Tensor, levels: int = 256) -> torch.Tensor:
    """Codes 0..levels-1 -> audio in [-1, 1] (the centre of each code's interval)."""
    mu = levels - 1
    y = codes.float() / mu * 2 - 1
    return torch.sign(y) * ((1 + mu) ** y.abs() - 1) / mu


def audio_dataset(
    name: str, splits: dict[str, tuple[torch.Tensor, torch.Tensor]], sample_rate: int, num_classes: int
) -> AudioDataset:
    length = next(iter(splits.values()))[0].shape[-1]
    info = DataInfo(name, "audio", (1, length), levels=None, low=-1.0, high=1.0, num_classes=num_classes)
    return AudioDataset(info, splits, sample_rate)


# ---- the embedded dataset --------------------------------------------------------------------
@register_dataset("notes")
def load_notes(sample_rate: int = SAMPLE_RATE, clip_samples: int = 1024, per_note: int = 60) -> AudioDataset:
    """Synthesized single notes (C4, E4, G4, C5), label = which note; per note 60 % train, 20 % val, 20 % test.

    Clips differ in loudness, timbre (how fast the harmonics fall off) and phase, so a model must
    learn the pitch, not one waveform.
    """
    rng = np.random.default_rng(0)  # fixed: the same clips on every machine
    clips, labels = [], []
    for _ in range(per_note):
        for label, pitch in enumerate(NOTES):
            wave = tone(
                pitch,
                clip_samples / sample_rate,
                sample_rate,
                amplitude=rng.uniform(0.3, 0.8),
                brightness=rng.uniform(1.0, 2.5),
                phase=rng.uniform(0, 2 * np.pi),
                attack=0.005,
                decay=rng.uniform(0.5, 2.0),
            )
            clips.append(wave)
            labels.append(label)
    x = torch.from_numpy(np.stack(clips)).unsqueeze(1)
    y = torch.tensor(labels)
    n = len(x)
    a, b = int(0.6 * n), int(0.8 * n)
    return audio_dataset(
        "notes",
        {"train": (x[:a], y[:a]), "val": (x[a:b], y[a:b]), "test": (x[b:], y[b:])},
        sample_rate,
        len(NOTES),
    )


# ---- WAV files -------------------------------------------------------------------------------
def read_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    """A sound file -> mono float32 in [-1, 1] at `sample_rate` (resampled with a polyphase filter)."""
    import soundfile
    from scipy.signal import resample_poly

    try:
        wave, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except Exception as err:  # soundfile raises its own error type for unreadable files
        raise GenzooError(f"cannot read '{path}' as audio ({err})") from err
    wave = wave.mean(1)
    if rate != sample_rate:
        ratio = Fraction(sample_rate, rate).limit_denominator(1000)
        wave = resample_poly(wave, ratio.numerator, ratio.denominator).astype(np.float32)
    return np.clip(wave, -1, 1)


def write_wav(waves: list[np.ndarray], path: str | Path, sample_rate: int, gap_seconds: float = 0.5) -> None:
    """Write clips (values in [-1, 1]) as one mono 16-bit PCM WAV, one after another with silent gaps."""
    import soundfile

    gap = np.zeros(round(gap_seconds * sample_rate), dtype=np.float32)
    parts = []
    for i, w in enumerate(waves):
        parts += [gap] if i else []
        parts.append(np.clip(np.asarray(w, dtype=np.float32).reshape(-1), -1, 1))
    soundfile.write(str(path), np.concatenate(parts), sample_rate, subtype="PCM_16")


def _audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in WAV_SUFFIXES and p.is_file())


def looks_like_audio_folder(path: Path) -> bool:
    return path.is_dir() and bool(_audio_files(path))


@register_dataset("audio-folder", reads=looks_like_audio_folder)
def load_audio_folder(
    path: str | Path,
    sample_rate: int = SAMPLE_RATE,
    clip_samples: int = 4096,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
) -> AudioDataset:
    """WAV (or FLAC/OGG) files cut into clips of `clip_samples`; files in subfolders are labelled by subfolder.

    Files are split (sorted by path) before cutting, so no file's clips land in two splits.
    """
    folder = Path(path)
    files = _audio_files(folder)
    classes = sorted({f.relative_to(folder).parts[0] for f in files if len(f.relative_to(folder).parts) > 1})
    if len(files) < 3:
        raise GenzooError(f"'{folder}' has {len(files)} audio files; a train/val/test split needs at least 3")
    n_test = max(1, round(test_fraction * len(files)))
    n_val = max(1, round(val_fraction * len(files)))
    groups = {
        "train": files[: -n_val - n_test],
        "val": files[-n_val - n_test : -n_test],
        "test": files[-n_test:],
    }
    splits = {}
    for split, group in groups.items():
        clips, labels = [], []
        for f in group:
            wave = read_audio(f, sample_rate)
            parts = f.relative_to(folder).parts
            label = classes.index(parts[0]) if len(parts) > 1 else -1
            for start in range(0, len(wave) - clip_samples + 1, clip_samples):
                clips.append(wave[start : start + clip_samples])
                labels.append(label)
        if not clips:
            raise GenzooError(
                f"'{folder}': no {split} file is {clip_samples} samples long at {sample_rate} Hz; "
                "lower --set data.clip_samples=..."
            )
        splits[split] = (torch.from_numpy(np.stack(clips)).unsqueeze(1), torch.tensor(labels))
    return audio_dataset(folder.name, splits, sample_rate, len(classes))

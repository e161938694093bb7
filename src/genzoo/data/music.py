"""Polyphonic music as 88-key piano rolls: the JSB chorales, any .mat of the same layout, MIDI folders.

A piece is a (T, 88) binary array, one row per time step, column k = MIDI pitch 21 + k (A0..C8).
Pieces differ in length, so every split is padded to the longest piece with rows of -1
(`PAD`); `frame_mask` tells real frames from padding. Models and metrics count real frames only.

The .mat layout is Boulanger-Lewandowski et al. (2012)'s: keys `traindata`, `validdata`,
`testdata`, each a 1 x N cell array of T x 88 arrays (JSB Chorales, Nottingham, MuseData,
Piano-midi.de are distributed that way). JSB frames are quarter notes; a frame lasts
`frame_seconds` (0.5 s, a quarter at 120 bpm) when written out as MIDI or audio.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from genzoo.data.base import DataInfo, Dataset, find_shared_file
from genzoo.data.registry import register_dataset
from genzoo.errors import GenzooError

NUM_KEYS = 88
LOWEST_PITCH = 21  # MIDI number of A0, the piano's lowest key
PAD = -1.0  # value of padding rows after a piece ends
FRAME_SECONDS = 0.5  # one frame when played: a quarter note at 120 bpm
MAT_SPLITS = {"train": "traindata", "val": "validdata", "test": "testdata"}
MIDI_SUFFIXES = (".mid", ".midi")


class MusicDataset(Dataset):
    """A `Dataset` of padded piano rolls that also knows how long a frame lasts when played."""

    def __init__(self, info: DataInfo, splits, frame_seconds: float = FRAME_SECONDS):
        super().__init__(info, splits)
        self.frame_seconds = frame_seconds


def frame_mask(x: torch.Tensor) -> torch.Tensor:
    """(N, T, 88) padded rolls -> (N, T) True on the real frames of each piece."""
    return x[..., 0] != PAD


def pad_rolls(rolls: list[np.ndarray], length: int) -> torch.Tensor:
    """Stack (T_i, 88) rolls into (N, length, 88), padding with `PAD` rows."""
    out = torch.full((len(rolls), length, NUM_KEYS), PAD)
    for i, roll in enumerate(rolls):
        out[i, : len(roll)] = torch.as_tensor(np.asarray(roll, dtype=np.float32))
    return out


def unpad(roll: torch.Tensor) -> np.ndarray:
    """One padded (T, 88) roll -> its real frames as a uint8 array."""
    return roll[frame_mask(roll)].clamp(0, 1).to(torch.uint8).numpy()


def music_dataset(name: str, splits: dict[str, list[np.ndarray]], frame_seconds: float) -> MusicDataset:
    for split, rolls in splits.items():
        if not rolls:
            raise GenzooError(f"music data '{name}' has no pieces in its {split} split")
        for roll in rolls:
            if roll.ndim != 2 or roll.shape[1] != NUM_KEYS:
                raise GenzooError(
                    f"music data '{name}': pieces must be T x {NUM_KEYS} piano rolls, got {roll.shape}"
                )
    length = max(len(r) for rolls in splits.values() for r in rolls)
    info = DataInfo(name, "music", (length, NUM_KEYS), levels=2, low=0.0, high=1.0)
    tensors = {
        k: (pad_rolls([(r > 0).astype(np.float32) for r in v], length), torch.full((len(v),), -1))
        for k, v in splits.items()
    }
    return MusicDataset(info, tensors, frame_seconds)


# ---- .mat piano rolls -----------------------------------------------------------------------
def read_mat(path: str | Path) -> dict[str, list[np.ndarray]]:
    """The three splits of a Boulanger-Lewandowski .mat file as lists of (T, 88) arrays."""
    from scipy.io import loadmat

    try:
        mat = loadmat(str(path))
    except Exception as err:  # scipy raises several types for a file that is not .mat
        raise GenzooError(f"cannot read '{path}' as a .mat file ({err})") from err
    missing = [key for key in MAT_SPLITS.values() if key not in mat]
    if missing:
        raise GenzooError(
            f"'{path}' lacks {', '.join(missing)}; a piano-roll .mat needs traindata, validdata and testdata"
        )
    return {split: [np.asarray(p) for p in mat[key].ravel()] for split, key in MAT_SPLITS.items()}


def looks_like_mat(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() == ".mat"


@register_dataset("piano-roll-mat", reads=looks_like_mat)
def load_mat(path: str | Path, frame_seconds: float = FRAME_SECONDS) -> MusicDataset:
    """Any .mat of the JSB layout (Nottingham, MuseData, Piano-midi.de, ...)."""
    return music_dataset(Path(path).stem, read_mat(path), frame_seconds)


@register_dataset("jsb")
def load_jsb(path: str = "", frame_seconds: float = FRAME_SECONDS) -> MusicDataset:
    """JSB Chorales (382 chorales, quarter-note frames; standard split 229 / 76 / 77)."""
    if path:
        found = Path(path).expanduser()
    else:
        found = find_shared_file("jsb_chorales.mat")
    if found is None or not found.is_file():
        raise GenzooError(
            f"JSB chorales not found ({found or 'no jsb_chorales.mat in ../shared/data or $GENZOO_DATA'}); "
            "put it there, or give its path with --set data.path=FILE.mat"
        )
    return music_dataset("jsb", read_mat(found), frame_seconds)


# ---- MIDI -----------------------------------------------------------------------------------
def read_midi(path: str | Path, frames_per_beat: int = 1) -> np.ndarray:
    """A MIDI file -> (T, 88) piano roll with `frames_per_beat` frames per quarter note.

    Notes outside the piano's range are dropped; every note lasts at least one frame.
    """
    import mido

    try:
        midi = mido.MidiFile(str(path))
    except Exception as err:  # mido raises OSError, EOFError, ValueError, KeyError ...
        raise GenzooError(f"cannot read '{path}' as a MIDI file ({err})") from err
    ticks_per_frame = midi.ticks_per_beat / frames_per_beat
    notes: list[tuple[int, float, float]] = []  # (pitch, start tick, end tick)
    for track in midi.tracks:
        tick, sounding = 0, {}
        for msg in track:
            tick += msg.time
            key = (getattr(msg, "channel", 0), getattr(msg, "note", -1))
            if msg.type == "note_on" and msg.velocity > 0:
                sounding.setdefault(key, tick)
            elif msg.type in ("note_off", "note_on") and key in sounding:
                notes.append((key[1], sounding.pop(key), tick))
    length = max((round(end / ticks_per_frame) for _, _, end in notes), default=0)
    roll = np.zeros((max(length, 1), NUM_KEYS), dtype=np.uint8)
    for pitch, start, end in notes:
        if LOWEST_PITCH <= pitch < LOWEST_PITCH + NUM_KEYS:
            first = round(start / ticks_per_frame)
            last = max(first + 1, round(end / ticks_per_frame))
            roll[first:last, pitch - LOWEST_PITCH] = 1
    return roll


def write_midi(
    rolls: list[np.ndarray], path: str | Path, frame_seconds: float = FRAME_SECONDS, gap_seconds: float = 2.0
) -> None:
    """Write piano rolls as one type-0 MIDI file, the pieces one after another with `gap_seconds` rests.

    A run of consecutive frames holding a key becomes one note (piano rolls do not mark re-attacks).
    """
    import mido

    ticks_per_beat, tempo = 480, 500_000  # 120 bpm: a beat is 0.5 s
    ticks_per_frame = round(frame_seconds / 0.5 * ticks_per_beat)
    events: list[tuple[int, int, int]] = []  # (tick, order: offs before ons, pitch)
    offset = 0
    for roll in rolls:
        roll = np.asarray(roll) > 0
        padded = np.vstack([np.zeros((1, NUM_KEYS), bool), roll, np.zeros((1, NUM_KEYS), bool)])
        change = np.diff(padded.astype(np.int8), axis=0)
        for frame, key in zip(*np.nonzero(change == 1), strict=True):
            events.append((offset + frame * ticks_per_frame, 1, LOWEST_PITCH + key))
        for frame, key in zip(*np.nonzero(change == -1), strict=True):
            events.append((offset + frame * ticks_per_frame, 0, LOWEST_PITCH + key))
        offset += len(roll) * ticks_per_frame + round(gap_seconds / 0.5 * ticks_per_beat)
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=tempo, time=0)])
    track.append(mido.Message("program_change", program=0, time=0))  # acoustic grand piano
    now = 0
    for tick, on, pitch in sorted(events):
        kind = "note_on" if on else "note_off"
        track.append(mido.Message(kind, note=int(pitch), velocity=80 if on else 0, time=int(tick - now)))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=0))
    midi = mido.MidiFile(type=0, ticks_per_beat=ticks_per_beat)
    midi.tracks.append(track)
    midi.save(str(path))


def looks_like_midi_folder(path: Path) -> bool:
    return path.is_dir() and any(p.suffix.lower() in MIDI_SUFFIXES for p in path.iterdir())


@register_dataset("midi-folder", reads=looks_like_midi_folder)
def load_midi_folder(
    path: str | Path, frames_per_beat: int = 1, val_fraction: float = 0.1, test_fraction: float = 0.1
) -> MusicDataset:
    """A folder of .mid files; sorted by name, the last `test_fraction` is test, the ones before it val."""
    files = sorted(p for p in Path(path).iterdir() if p.suffix.lower() in MIDI_SUFFIXES)
    if len(files) < 3:
        raise GenzooError(f"'{path}' has {len(files)} MIDI files; a train/val/test split needs at least 3")
    rolls = [read_midi(f, frames_per_beat) for f in files]
    n_test = max(1, round(test_fraction * len(rolls)))
    n_val = max(1, round(val_fraction * len(rolls)))
    n_train = len(rolls) - n_val - n_test
    if n_train < 1:
        raise GenzooError(f"'{path}': too few MIDI files for the val and test fractions asked")
    splits = {"train": rolls[:n_train], "val": rolls[n_train:-n_test], "test": rolls[-n_test:]}
    return music_dataset(Path(path).name, splits, FRAME_SECONDS / frames_per_beat)

"""Music: piano-roll data (.mat, MIDI), the RNN-NADE's exact likelihood and sampling, MIDI/WAV out."""

from __future__ import annotations

import itertools
import json
import wave

import mido
import numpy as np
import pytest
import torch
from PIL import Image
from scipy.io import savemat

from genzoo.cli import main
from genzoo.data import load_dataset
from genzoo.data.base import find_shared_file
from genzoo.data.music import LOWEST_PITCH, PAD, frame_mask, read_midi, write_midi
from genzoo.evaluation import evaluate_model
from genzoo.models.rnn_nade import RNNNADE, RNNNADEConfig
from genzoo.nn.nade import NADE

# Sequential generation with tiny models runs many small ops (see conftest.one_thread).
pytestmark = pytest.mark.usefixtures("one_thread")


def all_binary(n: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)))


def tiny_model(frames: int = 2, keys: int = 3, seed: int = 0) -> RNNNADE:
    torch.manual_seed(seed)
    config = RNNNADEConfig(data_shape=(frames, keys), rnn_hidden=8, nade_hidden=5, dropout=0.0)
    model = RNNNADE(config).eval()
    with torch.no_grad():  # biases away from zero, so a wrong normalisation would show
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    return model


def random_rolls(n: int, frames: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    rolls = []
    for length in rng.integers(4, frames + 1, n):
        roll = np.zeros((length, 88), np.uint8)
        for t in range(length):
            roll[t, rng.choice(np.arange(30, 70), 3, replace=False)] = 1
        rolls.append(roll)
    return rolls


def notes_in(path) -> list[tuple[int, float]]:
    """(pitch, seconds held) of every note of a MIDI file, read back with mido."""
    notes, now, sounding = [], 0.0, {}
    for msg in mido.MidiFile(str(path)):  # iterating a MidiFile gives times in seconds
        now += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            sounding[msg.note] = now
        elif msg.type in ("note_on", "note_off"):
            notes.append((msg.note, round(now - sounding.pop(msg.note), 6)))
    assert not sounding, "every note must end"
    return notes


@pytest.fixture
def mat_file(tmp_path):
    """A tiny corpus in the Boulanger-Lewandowski .mat layout (1 x N cell arrays of T x 88)."""

    def cells(rolls):
        out = np.empty((1, len(rolls)), dtype=object)
        for i, r in enumerate(rolls):
            out[0, i] = r
        return out

    path = tmp_path / "tiny.mat"
    savemat(
        path,
        {
            "traindata": cells(random_rolls(12, 10, 0)),
            "validdata": cells(random_rolls(3, 10, 1)),
            "testdata": cells(random_rolls(3, 12, 2)),
        },
    )
    return path


# ---- exact likelihood ------------------------------------------------------------------------
def test_nade_sums_to_one_over_all_vectors():
    torch.manual_seed(0)
    nade = NADE(4, 3)
    with torch.no_grad():
        nade.W.normal_(0, 1.0)
        nade.V.normal_(0, 1.0)
    v = all_binary(4)
    b, c = torch.randn(4).expand(16, 4), torch.randn(3).expand(16, 3)
    total = nade.log_prob(v, b, c, chunk=5).exp().sum()  # chunks of 5 exercise the split path
    assert torch.allclose(total, torch.tensor(1.0), atol=1e-5)


def test_rnn_nade_sums_to_one_over_all_pieces():
    """2 frames x 3 keys: 64 pieces, their probabilities must sum to 1 (notes in a frame are joint)."""
    model = tiny_model(frames=2, keys=3)
    pieces = all_binary(6).view(64, 2, 3)
    with torch.no_grad():
        assert torch.allclose(model.log_prob(pieces).exp().sum(), torch.tensor(1.0), atol=1e-5)
        # A piece that ends after one frame (padding after it) is scored on that frame alone.
        short = torch.cat([all_binary(3).view(8, 1, 3), torch.full((8, 1, 3), PAD)], 1)
        assert torch.allclose(model.log_prob(short).exp().sum(), torch.tensor(1.0), atol=1e-5)


def test_rnn_nade_is_not_independent_bernoullis():
    """A chord-only corpus is learnable only jointly: after training, p(all 3 keys) >> product of marginals."""
    torch.manual_seed(0)
    model = RNNNADE(RNNNADEConfig(data_shape=(2, 3), rnn_hidden=8, nade_hidden=8, dropout=0.0))
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.integers(0, 2, (32, 2, 1)), dtype=torch.float32).expand(32, 2, 3)  # all or none
    opt = torch.optim.Adam(model.parameters(), 0.05)
    for _ in range(80):
        loss = model.loss((x, None))["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        half_chord = torch.tensor([[[1.0, 1.0, 0.0]]])
        full_chord = torch.tensor([[[1.0, 1.0, 1.0]]])
        assert model.log_prob(full_chord).exp() > 0.35  # a first frame: all keys or none, each half the time
        assert model.log_prob(half_chord).exp() < 0.02  # independent keys would give 1/8 here


def test_samples_follow_the_model_distribution():
    model = tiny_model(frames=1, keys=3, seed=1)
    draws = model.sample(4000, generator=torch.Generator().manual_seed(0))[:, 0]
    codes = (draws * torch.tensor([4.0, 2.0, 1.0])).sum(1).long()
    empirical = torch.bincount(codes, minlength=8).float() / len(codes)
    with torch.no_grad():
        exact = model.log_prob(all_binary(3).view(8, 1, 3)).exp()
    assert (empirical - exact).abs().max() < 0.03


def test_sampling_keeps_the_primer_and_is_seeded():
    model = tiny_model(frames=6, keys=3)
    primer = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    a = model.sample(3, generator=torch.Generator().manual_seed(5), primer=primer, frames=8)
    b = model.sample(3, generator=torch.Generator().manual_seed(5), primer=primer, frames=8)
    assert a.shape == (3, 8, 3) and torch.equal(a, b)
    assert torch.equal(a[:, :2], primer.expand(3, 2, 3))
    warm = model.sample(200, generator=torch.Generator().manual_seed(0))
    cold = model.sample(200, generator=torch.Generator().manual_seed(0), temperature=0.01)
    assert len(torch.unique(cold.flatten(1), dim=0)) < len(torch.unique(warm.flatten(1), dim=0)) / 4


# ---- data --------------------------------------------------------------------------------------
@pytest.mark.skipif(
    find_shared_file("jsb_chorales.mat") is None,
    reason="needs jsb_chorales.mat in ../shared/data or $GENZOO_DATA",
)
def test_jsb_has_the_standard_split():
    data = load_dataset("jsb")
    sizes = {k: len(data.split(k)) for k in ("train", "val", "test")}
    assert sizes == {"train": 229, "val": 76, "test": 77}
    x = data.split("test").tensors[0]
    assert int(frame_mask(x).sum()) == 4725 and data.info.shape == (160, 88)
    real = x[frame_mask(x)]
    assert set(real.unique().tolist()) == {0.0, 1.0}


def test_any_mat_path_loads_and_pads(mat_file):
    data = load_dataset(str(mat_file))
    x = data.split("test").tensors[0]
    longest = max(int(frame_mask(data.split(s).tensors[0]).sum(1).max()) for s in ("train", "val", "test"))
    assert data.info.modality == "music" and data.info.shape == (longest, 88)
    lengths = frame_mask(x).sum(1)
    assert (x[~frame_mask(x)] == PAD).all() and lengths.min() >= 4 and len(set(lengths.tolist())) > 1


def test_midi_round_trip_and_durations(tmp_path):
    roll = np.zeros((8, 88), np.uint8)
    roll[0:4, 39] = 1  # C4 for 4 frames
    roll[2:3, 43] = 1  # E4 for 1 frame
    roll[5:8, 0] = 1  # A0, the lowest key, to the end
    roll[6:8, 87] = 1  # C8, the highest key
    path = tmp_path / "x.mid"
    write_midi([roll, roll], path, frame_seconds=0.5, gap_seconds=2.0)
    notes = notes_in(path)
    assert len(notes) == 8
    assert all(LOWEST_PITCH <= p <= 108 for p, _ in notes)
    assert sorted(set(notes)) == [(21, 1.5), (60, 2.0), (64, 0.5), (108, 1.0)]
    back = read_midi(path)
    assert np.array_equal(back[:8], roll) and np.array_equal(back[12:20], roll)  # 2 s gap = 4 frames


def test_midi_folder_loads(tmp_path):
    for i, roll in enumerate(random_rolls(5, 10, 3)):
        write_midi([roll], tmp_path / f"song{i}.mid")
    data = load_dataset(str(tmp_path))
    assert data.info.name == tmp_path.name and [len(data.split(s)) for s in ("train", "val", "test")] == [
        3,
        1,
        1,
    ]


# ---- metrics and CLI ---------------------------------------------------------------------------
def test_nll_per_frame_is_total_nll_over_real_frames(mat_file):
    data = load_dataset(str(mat_file))
    torch.manual_seed(0)
    model = RNNNADE.for_data(data.info, rnn_hidden=8, nade_hidden=4).eval()
    result = evaluate_model(model, data, split="test", metrics=["nll"])
    x = data.split("test").tensors[0]
    with torch.no_grad():
        total = -model.log_prob(x).sum()
    assert result["frames"] == int(frame_mask(x).sum())
    assert result["nll_per_frame"] == pytest.approx(float(total) / result["frames"], rel=1e-5)


def test_cli_train_sample_midi_wav_primer_evaluate(mat_file, tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", "rnn-nade", "--data", str(mat_file), "--out", str(run), "--max-steps", "3", "--quiet"]
    assert main([*argv, "--set", "rnn_hidden=8", "--set", "nade_hidden=4"]) == 0
    with Image.open(run / "samples.png") as preview:  # piano rolls of the final samples
        assert preview.format == "PNG" and preview.height > 100
    mid, wav = tmp_path / "out.mid", tmp_path / "out.wav"
    assert main(["sample", str(run), "-n", "2", "--out", str(mid), "--seconds", "4"]) == 0
    notes = notes_in(mid)
    assert notes and all(21 <= p <= 108 for p, _ in notes)
    assert all(0.5 <= d <= 4 and d / 0.5 == round(d / 0.5) for _, d in notes)  # whole frames, within a piece
    assert mido.MidiFile(str(mid)).length <= 2 * 4 + 2 + 0.01  # 2 pieces of 8 frames (4 s) and one 2 s gap
    primer = tmp_path / "primer.mid"
    write_midi([np.eye(88, dtype=np.uint8)[[40, 44, 47]]], primer)
    assert main(["sample", str(run), "-n", "1", "--out", str(mid), "--primer", str(primer)]) == 0
    assert np.array_equal(read_midi(mid)[:3], read_midi(primer))
    assert main(["sample", str(run), "-n", "2", "--out", str(wav), "--seconds", "2"]) == 0
    with wave.open(str(wav)) as w:
        assert (w.getsampwidth(), w.getnchannels(), w.getframerate()) == (2, 1, 8000)
        assert w.getnframes() > 2 * 2 * 8000
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    assert np.abs(pcm).max() > 1000  # audible, not silence (or NaN written as zeros)
    capsys.readouterr()
    assert main(["evaluate", str(run), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["nll_per_frame"] > 0 and result["nll_kind"] == "exact"
    assert main(["sample", str(run), "--out", str(mid), "--primer", str(tmp_path / "missing.mid")]) == 2

"""Audio: mu-law coding, causal convolutions, WaveNet's exact likelihood and fast = naive generation, WAV I/O."""

from __future__ import annotations

import wave

import numpy as np
import pytest
import soundfile
import torch
from PIL import Image

from genzoo.cli import main
from genzoo.data import load_dataset
from genzoo.data.audio import NOTES, mu_law_decode, mu_law_encode, write_wav
from genzoo.data.synth import midi_to_hz
from genzoo.models.wavenet import WaveNet, WaveNetConfig
from genzoo.nn.causal import CausalConv1d

# Sequential generation with tiny models runs many small ops (see conftest.one_thread).
pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_wavenet(stacks: int = 2, layers: int = 3, num_classes: int = 3, length: int = 64) -> WaveNet:
    torch.manual_seed(0)
    config = WaveNetConfig(
        data_shape=(1, length),
        stacks=stacks,
        layers=layers,
        residual_channels=8,
        gate_channels=8,
        skip_channels=8,
        head_channels=16,
        num_classes=num_classes,
    )
    return WaveNet(config).eval()


def peak_hz(x: np.ndarray, rate: int) -> float:
    power = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[power.argmax()])


# ---- mu-law ------------------------------------------------------------------------------------
def test_mu_law_codes_round_trip():
    codes = torch.arange(256)
    assert torch.equal(mu_law_encode(mu_law_decode(codes)), codes)
    x = torch.linspace(-1, 1, 10001)
    y = mu_law_decode(mu_law_encode(x))
    assert (y - x).abs().max() < 0.025  # half the coarsest step, near +-1
    quiet = x.abs() < 0.001
    assert (y - x)[quiet].abs().max() < 1e-4  # companding: steps 200x finer near silence
    assert mu_law_encode(torch.tensor([0.0])).item() in (127, 128)


# ---- causal convolutions -------------------------------------------------------------------------
@pytest.mark.parametrize("kernel,dilation", [(2, 1), (2, 4), (3, 2)])
def test_causal_conv_step_matches_forward(kernel, dilation):
    torch.manual_seed(0)
    conv = CausalConv1d(3, 5, kernel, dilation).double()
    x = torch.randn(2, 3, 20, dtype=torch.float64)
    full = conv(x)
    queue = conv.queue(2)
    steps = torch.stack([conv.step(x[:, :, t], queue) for t in range(20)], -1)
    assert torch.allclose(full, steps, atol=1e-12)
    x2 = x.clone()
    x2[:, :, 10] += 1.0  # the future does not leak into the past
    assert torch.equal(conv(x2)[:, :, :10], full[:, :, :10])


def test_wavenet_receptive_field_is_exact():
    model = tiny_wavenet(stacks=2, layers=3)
    rf = model.receptive_field
    assert rf == 2 * (1 + 2 + 4) + 1
    codes = torch.randint(256, (1, 40))
    label = torch.tensor([1])
    base = model.logits(codes, label)[:, :, 30]
    for position, changes in ((30 - rf, False), (30 - rf + 1, True), (31, False)):
        other = codes.clone()
        other[0, position] = (other[0, position] + 100) % 256
        changed = not torch.equal(model.logits(other, label)[:, :, 30], base)
        assert changed == changes, position


# ---- likelihood and generation -------------------------------------------------------------------
def test_wavenet_likelihood_sums_to_one_over_all_clips():
    """Two samples of 256 codes: the 65,536 clips' probabilities sum to 1 (given a class); one sample
    over the 256 codes sums to 1 also under the marginal over classes."""
    model = tiny_wavenet(stacks=1, layers=2, length=2)
    codes = torch.cartesian_prod(torch.arange(256), torch.arange(256))
    clips = mu_law_decode(codes).unsqueeze(1)
    single = mu_law_decode(torch.arange(256)).view(256, 1, 1)
    with torch.no_grad():
        conditional = model.log_prob(clips, torch.full((len(clips),), 2)).exp().sum()
        marginal = model.log_prob(single).exp().sum()
    assert torch.allclose(conditional, torch.tensor(1.0), atol=1e-4)
    assert torch.allclose(marginal, torch.tensor(1.0), atol=1e-4)


def test_fast_and_naive_generation_give_identical_samples():
    """Past the receptive field (15) so the naive window slides; float64 so rounding cannot flip a draw."""
    model = tiny_wavenet(stacks=2, layers=3).double()
    length = 3 * model.receptive_field + 7
    fast = model.sample(3, generator=torch.Generator().manual_seed(7), length=length)
    naive = model.sample(3, generator=torch.Generator().manual_seed(7), length=length, mode="naive")
    other = model.sample(3, generator=torch.Generator().manual_seed(8), length=length)
    assert fast.shape == (3, 1, length)
    assert torch.equal(fast, naive) and not torch.equal(fast, other)


def test_fast_generation_samples_the_model_distribution():
    """The first sample of a clip is drawn from softmax(logits at the start): compare frequencies."""
    model = tiny_wavenet(stacks=1, layers=2, length=1)
    with torch.no_grad():  # sharpen the output so the check has few categories to count
        model.head[3].weight.mul_(40)
    draws = model.sample(3000, generator=torch.Generator().manual_seed(0), label=1)
    codes = mu_law_encode(draws[:, 0, 0])
    start = torch.full((1, 1), 128)
    probs = torch.softmax(model.logits(start, torch.tensor([1]))[0, :, 0], 0)
    empirical = torch.bincount(codes, minlength=256).float() / len(codes)
    assert (empirical - probs).abs().max() < 0.03


# ---- data and files ------------------------------------------------------------------------------
def test_notes_dataset_is_at_the_note_pitches():
    data = load_dataset("notes")
    x, y = data.split("train").tensors
    assert data.info.modality == "audio" and data.info.shape[0] == 1 and data.sample_rate == 8000
    assert data.info.num_classes == len(NOTES) and set(y.tolist()) == set(range(len(NOTES)))
    for clip, label in zip(x[:8], y[:8], strict=True):
        f0 = midi_to_hz(NOTES[int(label)])
        assert abs(peak_hz(clip[0].numpy(), data.sample_rate) - f0) < 8  # one FFT bin at 1024 samples
    assert x.abs().max() <= 1


def test_wav_writer_is_16_bit_pcm_at_the_rate(tmp_path):
    path = tmp_path / "x.wav"
    clips = [np.sin(np.arange(1000) / 5.0) * 0.5, np.full(500, 2.0)]  # the second clips to [-1, 1]
    write_wav(clips, path, 16000, gap_seconds=0.25)
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16000)
        assert w.getnframes() == 1000 + 4000 + 500
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    assert pcm[-1] == 32767 and np.abs(pcm[1000:5000]).max() == 0


def test_audio_folder_is_resampled_split_and_labelled(tmp_path):
    rate = 16000
    t = np.arange(rate) / rate
    for speaker, f in (("alice", 300.0), ("bob", 500.0)):
        (tmp_path / speaker).mkdir()
        for i in range(3):
            soundfile.write(tmp_path / speaker / f"{i}.wav", 0.5 * np.sin(2 * np.pi * f * t), rate)
    data = load_dataset(str(tmp_path), sample_rate=8000, clip_samples=2000)
    assert data.sample_rate == 8000 and data.info.shape == (1, 2000) and data.info.num_classes == 2
    sizes = [len(data.split(s)) for s in ("train", "val", "test")]
    assert sizes == [16, 4, 4]  # 4 files, 1, 1; each 1 s at 8 kHz = 4 clips
    x, y = data.split("train").tensors
    freq = {int(label): peak_hz(clip[0].numpy(), 8000) for clip, label in zip(x, y, strict=True)}
    assert abs(freq[0] - 300) < 5 and abs(freq[1] - 500) < 5


def test_cli_train_and_sample_wav(tmp_path, capsys):
    run, out = tmp_path / "run", tmp_path / "out.wav"
    settings = ["--set", "layers=3", "--set", "residual_channels=8", "--set", "gate_channels=8"]
    argv = ["train", "wavenet", "--data", "notes", "--out", str(run), "--max-steps", "2", "--quiet"]
    assert main([*argv, *settings, "--set", "eval_batches=1"]) == 0
    with Image.open(run / "samples.png") as preview:  # waveforms of the final samples
        assert preview.format == "PNG" and preview.height > 100
    assert main(["sample", str(run), "-n", "2", "--out", str(out), "--seconds", "0.05", "--label", "1"]) == 0
    info = soundfile.info(str(out))
    assert (info.samplerate, info.channels, info.subtype) == (8000, 1, "PCM_16")
    assert info.frames == 2 * 400 + 4000  # two 0.05 s clips and a 0.5 s gap
    capsys.readouterr()
    assert main(["sample", str(run), "-n", "1", "--out", str(tmp_path / "x.mid")]) == 2
    assert "wav" in capsys.readouterr().err

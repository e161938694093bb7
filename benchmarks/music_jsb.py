"""RNN-NADE on JSB Chorales: test NLL per frame against published numbers, and sampled chorales as MIDI.

    python benchmarks/music_jsb.py [--seed 0] [--reuse] [--set key=value ...] [--work runs/bench-music-jsb]

Targets (issue 8): test nll_per_frame below 8.10 (TCN, Bai et al. 2018; LSTM 8.45), aim below 5.5
(RNN-NADE, Boulanger-Lewandowski et al. 2012, reports 5.19). nll_per_frame = total test NLL in nats
/ total number of test frames (4725), the convention of those papers. The model's likelihood is
exact (an LSTM over frames, a NADE over the 88 keys of each frame). Also writes 4 sampled chorales
(a primer of the first 8 frames of a test chorale, then the model) to results/music_jsb_samples.mid
and checks that the file loads in mido with notes on the piano.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from common import RESULTS, logged_train_seconds, save, train_unless_reused

from genzoo.data import load_dataset
from genzoo.data.music import LOWEST_PITCH, read_midi, unpad, write_midi
from genzoo.evaluation import evaluate_run
from genzoo.models import load
from genzoo.settings import parse_assignments

REFERENCE = {"RNN-NADE (Boulanger-Lewandowski 2012)": 5.19, "TCN (Bai 2018)": 8.10, "LSTM (Bai 2018)": 8.45}


def sample_midi(run: Path, seed: int) -> dict:
    model = load(run)
    data = load_dataset("jsb")
    primer = torch.as_tensor(unpad(data.split("test").tensors[0][0])[:8]).float()
    generator = torch.Generator().manual_seed(seed)
    rolls = model.sample(4, generator=generator, frames=64, primer=primer)
    path = RESULTS / "music_jsb_samples.mid"
    write_midi([r.numpy() for r in rolls], path, data.frame_seconds)
    back = read_midi(path)
    keys = back.nonzero()[1] + LOWEST_PITCH
    return {
        "file": str(path.relative_to(RESULTS.parent)),
        "pieces": 4,
        "frames_each": 64,
        "primer_frames": 8,
        "notes_per_frame": round(float(rolls.sum(-1).mean()), 3),
        "pitch_range": [int(keys.min()), int(keys.max())],
        "roundtrip_equal": bool((back[:64] == rolls[0].numpy()).all()),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reuse", action="store_true", help="evaluate an existing run instead of retraining")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 suits a shared 2-core CPU)")
    parser.add_argument("--work", type=Path, default=Path("runs/bench-music-jsb"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = {"seed": args.seed, **parse_assignments(args.set)}
    run = args.work / "rnn-nade"
    train_unless_reused("rnn-nade", "jsb", run, settings, args.reuse)
    started = time.perf_counter()
    result = evaluate_run(run, split="test", metrics=["nll"])
    save(
        "music_jsb",
        {
            "command": "genzoo train rnn-nade --data jsb --out R "
            + " ".join(f"--set {s}" for s in args.set)
            + "; genzoo evaluate R --split test --metrics nll",
            "settings": settings,
            "train_seconds": logged_train_seconds(run),
            "eval_seconds": round(time.perf_counter() - started, 2),
            "target_nll_per_frame": 8.10,
            "aim_nll_per_frame": 5.5,
            "reference_nll_per_frame": REFERENCE,
            **result,
            "samples": sample_midi(run, args.seed),
        },
    )


if __name__ == "__main__":
    main()

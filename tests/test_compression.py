"""`genzoo compress` / `decompress`: bit-exact round trips, sizes against the model's own NLL, files
made in another process, and every broken input as exit code 2 and one line."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from test_bad_inputs import assert_user_error

from genzoo.apps.compression import compress, decompress, pack, unpack
from genzoo.cli import main
from genzoo.data import load_dataset
from genzoo.errors import GenzooError
from genzoo.models import get_model_class, load

SMALL = ["--set", "channels=8", "--set", "n_layers=2", "--set", "head_channels=16", "--set", "eval_every=0"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two small PixelCNNs with different weights, a VAE, a GAN, and 24 test digits as .npy."""
    root = tmp_path_factory.mktemp("compress")
    for name, steps in (("pixelcnn", "30"), ("other", "1")):
        argv = [
            "train",
            "pixelcnn",
            "--data",
            "digits",
            "--out",
            str(root / name),
            "--max-steps",
            steps,
            "--quiet",
        ]
        assert main(argv + SMALL) == 0
    for name in ("vae", "dcgan"):
        argv = ["train", name, "--data", "digits", "--out", str(root / name), "--max-steps", "1", "--quiet"]
        assert main(argv) == 0
    np.save(root / "digits.npy", load_dataset("digits").split("test").tensors[0][:24].numpy())
    return root


def test_round_trip_is_bit_exact_and_as_small_as_the_nll(runs, tmp_path):
    x = torch.from_numpy(np.load(runs / "digits.npy"))
    result = compress(runs / "pixelcnn", x, out=tmp_path / "d.gzoo", quiet=True)
    assert torch.equal(decompress(runs / "pixelcnn", tmp_path / "d.gzoo", quiet=True), x)
    model = load(runs / "pixelcnn")
    with torch.no_grad():
        nll_bits = float(-model.log_prob(x).double().sum()) / math.log(2)
    dims = x.numel()
    assert result.nll_bits_per_dim == pytest.approx(nll_bits / dims, rel=1e-4)  # the coder aims at log_prob
    # The range coder's cost: a few words at the end and integer probabilities, not a percent.
    assert result.payload_bits_per_dim * dims <= nll_bits * 1.01 + 64
    assert (tmp_path / "d.gzoo").stat().st_size == len(result.data)


def test_a_file_made_in_another_process_decodes_here(runs, tmp_path):
    script = (
        "import numpy, torch, genzoo; "
        f"x = torch.from_numpy(numpy.load(r'{runs / 'digits.npy'}')); "
        f"genzoo.compress(r'{runs / 'pixelcnn'}', x, out=r'{tmp_path / 'p.gzoo'}', quiet=True)"
    )
    subprocess.run([sys.executable, "-c", script], check=True, env={"OMP_NUM_THREADS": "2", "PATH": ""})
    x = torch.from_numpy(np.load(runs / "digits.npy"))
    assert torch.equal(decompress(runs / "pixelcnn", tmp_path / "p.gzoo", quiet=True), x)


def test_cli_writes_npy_and_png_folders(runs, tmp_path, capsys):
    packed = tmp_path / "d.gzoo"
    assert (
        main(
            [
                "compress",
                str(runs / "pixelcnn"),
                "--data",
                str(runs / "digits.npy"),
                "--out",
                str(packed),
                "--json",
                "--quiet",
            ]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["count"] == 24 and summary["bytes"] == packed.stat().st_size
    assert (
        main(["decompress", str(runs / "pixelcnn"), str(packed), "--out", str(tmp_path / "x.npy"), "--quiet"])
        == 0
    )
    assert np.array_equal(np.load(tmp_path / "x.npy"), np.load(runs / "digits.npy"))
    assert (
        main(["decompress", str(runs / "pixelcnn"), str(packed), "--out", str(tmp_path / "pngs"), "--quiet"])
        == 0
    )
    assert len(list((tmp_path / "pngs").glob("*.png"))) == 24


def test_vae_files_are_coded_bits_back(runs, tmp_path, capsys):
    packed = tmp_path / "v.gzoo"
    argv = ["compress", str(runs / "vae"), "--data", str(runs / "digits.npy"), "--out", str(packed), "--json"]
    assert main([*argv, "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["initial_bits"] > 0 and summary["count"] == 24
    x = torch.from_numpy(np.load(runs / "digits.npy"))
    assert torch.equal(decompress(runs / "vae", packed, quiet=True), x)
    assert_user_error(
        capsys,
        ["decompress", str(runs / "pixelcnn"), str(packed), "--out", str(tmp_path / "x.npy")],
        "another run",
        [packed],
    )


def test_container_refuses_anything_altered():
    header, words = {"coder": "x", "count": 3}, np.arange(5, dtype=np.uint32)
    blob = pack(header, words)
    assert unpack(blob, "f")[0] == header and np.array_equal(unpack(blob, "f")[1], words)
    for broken in (
        blob[:-3],
        blob[:20],
        blob[:12] + bytes([blob[12] ^ 1]) + blob[13:],
        b"GZOO" + bytes(20),
        b"PK\x03\x04" * 10,
    ):
        with pytest.raises(GenzooError):
            unpack(broken, "f")


def test_a_conditional_pixelcnn_has_no_conditionals_to_code_with():
    model = get_model_class("pixelcnn").for_data(load_dataset("digits").info, conditional=True)
    for call in (
        lambda: model.conditional_steps(2),
        lambda: model.conditional_probs(torch.zeros(2, 1, 8, 8)),
    ):
        with pytest.raises(GenzooError, match="mixes its classes"):
            call()


@pytest.fixture(scope="module")
def broken(runs, tmp_path_factory):
    """Files a user can break, made once: a truncated, an altered, a foreign file, bad arrays."""
    tmp_path = tmp_path_factory.mktemp("broken")
    x = torch.from_numpy(np.load(runs / "digits.npy"))[:4]
    good = compress(runs / "pixelcnn", x, quiet=True).data
    (tmp_path / "truncated.gzoo").write_bytes(good[: len(good) // 2])
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0x10
    (tmp_path / "altered.gzoo").write_bytes(bytes(flipped))
    (tmp_path / "good.gzoo").write_bytes(good)
    header, words = unpack(good, "good")
    (tmp_path / "oldcoder.gzoo").write_bytes(pack({**header, "coder": "autoregressive-range"}, words))
    (tmp_path / "random.gzoo").write_bytes(np.random.default_rng(0).bytes(300))
    (tmp_path / "empty.gzoo").write_bytes(b"")
    np.save(tmp_path / "offgrid.npy", np.full((2, 1, 8, 8), 0.5, dtype=np.float32))
    np.save(tmp_path / "toolarge.npy", np.full((2, 1, 8, 8), 17, dtype=np.float32))
    np.save(tmp_path / "shape.npy", np.zeros((2, 1, 4, 4), dtype=np.float32))
    return tmp_path


BAD = [
    ("decompress {run} {tmp}/truncated.gzoo --out {tmp}/x.npy", "damaged or truncated"),
    ("decompress {run} {tmp}/altered.gzoo --out {tmp}/x.npy", "damaged or truncated"),
    ("decompress {run} {tmp}/random.gzoo --out {tmp}/x.npy", "not a genzoo compressed file"),
    ("decompress {run} {tmp}/empty.gzoo --out {tmp}/x.npy", "not a genzoo compressed file"),
    ("decompress {run} {tmp}/absent.gzoo --out {tmp}/x.npy", "does not exist"),
    ("decompress {runs}/other {tmp}/good.gzoo --out {tmp}/x.npy", "another run"),
    ("decompress {run} {tmp}/oldcoder.gzoo --out {tmp}/x.npy", "coder 'autoregressive-range', which"),
    ("decompress {run} {tmp}/good.gzoo --out {tmp}/x.png", ".npy file or a folder"),
    ("compress {run} --data {tmp}/offgrid.npy --out {tmp}/y.gzoo", "between the run's 17 levels"),
    ("compress {run} --data {tmp}/toolarge.npy --out {tmp}/y.gzoo", "outside 0..16"),
    ("compress {run} --data {tmp}/shape.npy --out {tmp}/y.gzoo", "shape"),
    ("compress {run} --data toy2d-ring --out {tmp}/y.gzoo", "levels"),
    ("compress {runs}/dcgan --data digits --out {tmp}/y.gzoo", "cannot code losslessly"),
    ("compress {run} --split tset --out {tmp}/y.gzoo", "unknown split"),
    ("compress {run} --out {tmp}", "directory"),
]


@pytest.mark.parametrize(
    ("command", "fragment"), BAD, ids=[b[0].split(" {tmp}/")[1] if "{tmp}/" in b[0] else b[0] for b in BAD]
)
def test_mistakes_are_one_line_and_exit_2(runs, broken, capsys, command, fragment):
    argv = command.format(run=runs / "pixelcnn", runs=runs, tmp=broken).split()
    assert_user_error(capsys, argv, fragment, [runs, broken])

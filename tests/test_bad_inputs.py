"""Files a user can break: each ends as exit code 2 and one line, never a traceback, never a changed file.

`CASES` is the table: a row names the case, a function that breaks a copy of a small trained run (or
writes a broken input) in the test's folder, a function building the argv from that path, and a
fragment the error line must contain. Add a row to cover a new file or a new way to break one.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from safetensors.torch import load_file, save_file

from genzoo.cli import main
from genzoo.errors import GenzooError
from genzoo.metrics.fid import GaussianStats
from genzoo.models import ModelConfig, get_model_class, load, model_names
from genzoo.settings import parse_value, read_config_file

# ---- the check every row makes ---------------------------------------------------------------


def file_hashes(*paths: Path) -> dict[str, str]:
    """sha256 of every file under `paths` (a file or a folder), by path."""
    hashes = {}
    for root in paths:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            hashes[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


def assert_user_error(capsys, argv: list[str], fragment: str, watched: list[Path]) -> str:
    """`genzoo argv` exits with 2 and one `genzoo: error:` line holding `fragment`, with no traceback,
    and leaves every file under `watched` as it was. Returns the error line."""
    capsys.readouterr()  # drop what preparing the case printed
    before = file_hashes(*watched)
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err, err
    assert code == 2, (code, err)
    assert err.endswith("\n") and err.count("\n") == 1, f"not one line: {err!r}"
    line = err.rstrip("\n")
    assert line.startswith("genzoo: error:"), line
    assert fragment in line, (fragment, line)
    assert file_hashes(*watched) == before, "a failed command changed its input files"
    return line


# ---- small trained runs, made once per module and copied for each case -------------------------

TEXT = " ".join(
    np.random.default_rng(0).choice(["the", "king", "of", "night", "speaks", "and", "we", "hear"], 300)
)


def _sets(*pairs: str) -> list[str]:
    return [arg for pair in pairs for arg in ("--set", pair)]


def train_gaussian(out: Path) -> list[str]:
    return ["train", "test-gaussian", "--data", "digits", "--out", str(out), "--max-steps", "2", "--quiet"]


def train_gpt(out: Path) -> list[str]:
    text = out.parent / "words.txt"
    text.write_text(TEXT + "\n")
    settings = _sets("block_size=8", "n_layer=1", "n_head=1", "n_embd=8", "batch_size=4", "row_length=64")
    return ["train", "gpt", "--data", str(text), "--out", str(out), "--max-steps", "2", "--quiet", *settings]


TRAINERS: dict[str, Callable[[Path], list[str]]] = {"gaussian": train_gaussian, "gpt": train_gpt}


class Workspace:
    """A test's folder, and copies of trained runs to break in it."""

    def __init__(self, tmp: Path, templates: Path):
        self.tmp, self.templates = tmp, templates

    def run(self, kind: str) -> Path:
        template = self.templates / kind / "run"
        if not template.is_dir():  # the first case that needs this kind trains it
            template.parent.mkdir()
            assert main(TRAINERS[kind](template)) == 0, f"training the {kind} template failed"
        copy = self.tmp / f"{kind}-run"
        shutil.copytree(template, copy)
        return copy


@pytest.fixture(scope="module")
def templates(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("templates")


@pytest.fixture
def workspace(gaussian_model, one_thread, tmp_path, templates) -> Workspace:
    return Workspace(tmp_path, templates)


# ---- ways to break a file ----------------------------------------------------------------------


def edit_json(path: Path, change: Callable[[dict], object]) -> None:
    payload = json.loads(path.read_text())
    path.write_text(json.dumps(change(payload)))


def config_not_utf8(ws: Workspace) -> Path:
    run = ws.run("gaussian")
    config = run / "config.json"  # as if an editor saved it in Latin-1
    config.write_bytes(config.read_bytes().replace(b"test-gaussian", "test-gaußian".encode("latin-1")))
    return run


def config_not_json(ws: Workspace) -> Path:
    run = ws.run("gaussian")
    (run / "config.json").write_text('{"model": "test-gaussian", "config": {')  # cut short
    return run


def config_not_object(ws: Workspace) -> Path:
    run = ws.run("gaussian")
    (run / "config.json").write_text("[1, 2, 3]")
    return run


def config_without_model(ws: Workspace) -> Path:
    run = ws.run("gaussian")
    edit_json(run / "config.json", lambda p: {"config": p["config"]})
    return run


def config_wrong_field_type(ws: Workspace) -> Path:
    run = ws.run("gaussian")
    edit_json(run / "config.json", lambda p: {**p, "config": {**p["config"], "data_shape": "1x8x8"}})
    return run


def config_unknown_model(ws: Workspace) -> Path:
    run = ws.run("gaussian")
    edit_json(run / "config.json", lambda p: {**p, "model": "no-such-model"})
    return run


def config_impossible_values(ws: Workspace) -> Path:
    run = ws.run("gpt")  # right types, but no network has 8 channels in 3 heads
    edit_json(run / "config.json", lambda p: {**p, "config": {**p["config"], "n_head": 3}})
    return run


def weights_wrong_shapes(ws: Workspace) -> Path:
    run = ws.run("gaussian")
    weights = run / "model.safetensors"  # the same keys, every tensor one larger in each dimension
    state = load_file(str(weights))
    save_file({k: torch.zeros([s + 1 for s in v.shape]) for k, v in state.items()}, str(weights))
    return run


def weights_missing_key(ws: Workspace) -> Path:
    run = ws.run("gaussian")
    weights = run / "model.safetensors"
    state = load_file(str(weights))
    del state["log_std"]
    save_file(state, str(weights))
    return run


def weights_unexpected_key(ws: Workspace) -> Path:
    run = ws.run("gaussian")
    weights = run / "model.safetensors"
    save_file({**load_file(str(weights)), "extra.weight": torch.zeros(3)}, str(weights))
    return run


def weights_not_safetensors(ws: Workspace) -> Path:
    run = ws.run("gaussian")
    (run / "model.safetensors").write_bytes(b"\x00\x01 not a safetensors file")
    return run


def tokenizer_not_utf8(ws: Workspace) -> Path:
    run = ws.run("gpt")
    (run / "tokenizer.json").write_bytes(b'{"kind": "char", "chars": "\xe9\xff"}')
    return run


def tokenizer_not_json(ws: Workspace) -> Path:
    run = ws.run("gpt")
    (run / "tokenizer.json").write_text('{"kind": "char", ')
    return run


def tokenizer_wrong_structure(ws: Workspace) -> Path:
    run = ws.run("gpt")
    (run / "tokenizer.json").write_text('{"kind": "char", "chars": 42}')
    return run


def tokenizer_other_vocabulary(ws: Workspace) -> Path:
    run = ws.run("gpt")
    (run / "tokenizer.json").write_text('{"kind": "char", "chars": "ab", "specials": []}')
    return run


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height 8-bit grey pixels, with almost no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(64)))
        + chunk(b"IEND", b"")
    )


def image_folder_with(name: str, content: bytes) -> Callable[[Workspace], Path]:
    def prepare(ws: Workspace) -> Path:
        folder = ws.tmp / "images"
        folder.mkdir()
        for i in range(3):
            Image.fromarray(np.full((8, 8), 40 * i, dtype=np.uint8)).save(folder / f"{i}.png")
        (folder / name).write_bytes(content)
        return folder

    return prepare


def truncated_png() -> bytes:
    """The first half of a 64x64 PNG of noise (the pixel data is cut off)."""
    buffer = io.BytesIO()
    pixels = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()[: len(buffer.getvalue()) // 2]


def yaml_file(content: bytes) -> Callable[[Workspace], Path]:
    def prepare(ws: Workspace) -> Path:
        path = ws.tmp / "settings.yaml"
        path.write_bytes(content)
        return path

    return prepare


# ---- how each command is called ----------------------------------------------------------------


def sample(run: Path, tmp: Path) -> list[str]:
    return ["sample", str(run), "-n", "4", "--out", str(tmp / "x.png")]


def sample_text(run: Path, tmp: Path) -> list[str]:
    return ["sample", str(run), "-n", "2", "--max-new-tokens", "4", "--out", str(tmp / "x.txt")]


def evaluate(run: Path, tmp: Path) -> list[str]:
    return ["evaluate", str(run), "--metrics", "nll", "--json"]


def train_vae_on(folder: Path, tmp: Path) -> list[str]:
    return ["train", "vae", "--data", str(folder), "--out", str(tmp / "out"), "--max-steps", "2", "--quiet"]


def train_with_config(config: Path, tmp: Path) -> list[str]:
    return [*train_gaussian(tmp / "out"), "--config", str(config)]


# ---- the table ---------------------------------------------------------------------------------

Prepare = Callable[[Workspace], Path]
Argv = Callable[[Path, Path], list[str]]
CASES: list[tuple[str, Prepare, Argv, str]] = [
    # config.json
    ("config-not-utf8", config_not_utf8, sample, "is not a valid genzoo config (not UTF-8"),
    ("config-not-json", config_not_json, evaluate, "is not a valid genzoo config (not JSON"),
    ("config-not-an-object", config_not_object, sample, 'needs an object with "model"'),
    ("config-without-model", config_without_model, evaluate, 'needs an object with "model"'),
    ("config-wrong-field-type", config_wrong_field_type, sample, "'data_shape' expects a list"),
    ("config-unknown-model", config_unknown_model, sample, "unknown model 'no-such-model'"),
    ("config-impossible-values", config_impossible_values, sample_text, "cannot be built from it: n_embd"),
    # model.safetensors
    ("weights-wrong-shapes", weights_wrong_shapes, evaluate, "do not match config.json (tensor 'mean'"),
    ("weights-missing-key", weights_missing_key, sample, "tensor 'log_std' is missing"),
    ("weights-unexpected-key", weights_unexpected_key, sample, "'extra.weight' is not part of this model"),
    ("weights-not-safetensors", weights_not_safetensors, evaluate, "is not a readable safetensors file"),
    # tokenizer.json
    ("tokenizer-not-utf8", tokenizer_not_utf8, sample_text, "tokenizer (not UTF-8"),
    ("tokenizer-not-json", tokenizer_not_json, sample_text, "tokenizer (not JSON"),
    ("tokenizer-wrong-structure", tokenizer_wrong_structure, sample_text, '"chars" (a string)'),
    ("tokenizer-other-vocabulary", tokenizer_other_vocabulary, sample_text, "has 2 tokens but config.json"),
    # image folders
    (
        "png-bomb",
        image_folder_with("bomb.png", png_claiming(20000, 20000)),
        train_vae_on,
        "too large to read",
    ),
    (
        "png-over-pixel-limit",
        image_folder_with("big.png", png_claiming(10000, 10000)),
        train_vae_on,
        "too large",
    ),
    ("png-truncated", image_folder_with("cut.png", truncated_png()), train_vae_on, "cannot read image"),
    # --config
    ("yaml-not-utf8", yaml_file(b"lr: 0.001\nnote: caf\xe9\n"), train_with_config, "is not UTF-8 text"),
    ("yaml-invalid", yaml_file(b"lr: [0.001, 2\n"), train_with_config, "is not valid YAML at line"),
]


@pytest.mark.parametrize("prepare, argv, fragment", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line(workspace, capsys, prepare, argv, fragment):
    target = prepare(workspace)
    line = assert_user_error(capsys, argv(target, workspace.tmp), fragment, [target])
    assert str(target) in line or target.name in line  # the line names the file (or the run) to fix


# ---- beyond the table --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    ["lr: 3e-4\n", "train:\n  lr: 3e-4\n", "train: {lr: 3.0e-4, betas: [0.9, 9.5e-1]}\n"],
    ids=["flat", "grouped", "flow"],
)
def test_config_file_reads_numbers_as_yaml_1_2(workspace, capsys, content):
    config = workspace.tmp / "settings.yaml"
    config.write_text(content)
    out = workspace.tmp / "out"
    assert main([*train_gaussian(out), "--config", str(config)]) == 0, capsys.readouterr().err
    train_settings = json.loads((out / "run.json").read_text())["train_settings"]
    assert train_settings["lr"] == pytest.approx(3e-4) and isinstance(train_settings["lr"], float)
    logged = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert all(row["lr"] <= 3e-4 + 1e-12 for row in logged if "lr" in row)


def test_yaml_numbers_and_strings(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(
        "lr: 3e-4\nbig: 1e5\nneg: -2.5E-3\nplain: 1.5\ncount: 7\nhidden: [1e2, 2]\n"
        "model: {beta: 5e-1}\nwords: [abc, 1.2.3, e5]\nquoted: '3e-4'\n"
    )
    assert read_config_file(path) == {
        "lr": 3e-4,
        "big": 1e5,
        "neg": -2.5e-3,
        "plain": 1.5,
        "count": 7,
        "hidden": [100.0, 2],
        "model.beta": 0.5,
        "words": ["abc", "1.2.3", "e5"],
        "quoted": "3e-4",
    }
    assert yaml.safe_load("lr: 3e-4") == {"lr": "3e-4"}, "the global SafeLoader must stay untouched"
    assert parse_value("[1e-3, 2]") == [1e-3, 2] and parse_value("3e-4") == 3e-4
    assert parse_value("1.2.3") == "1.2.3" and parse_value("e5") == "e5" and parse_value("010") == 10


def test_from_dict_checks_types():
    assert ModelConfig.from_dict({"data_shape": [1, 4, 4], "data_low": 0}) == ModelConfig(
        data_shape=(1, 4, 4), data_low=0.0
    )
    for bad in ({"data_shape": "1x8x8"}, {"data_levels": "17"}, {"num_classes": 2.5}, {"data_high": True}):
        with pytest.raises(GenzooError, match=f"'{next(iter(bad))}'") as info:
            ModelConfig.from_dict(bad)
        assert "\n" not in str(info.value)


def test_bad_value_of_an_old_config_key(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model": "vae", "config": {"train_k": "3"}}))
    (tmp_path / "model.safetensors").write_bytes(b"never read")
    with pytest.raises(GenzooError, match="is not a valid genzoo config") as info:
        load(tmp_path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", model_names())
def test_default_configs_round_trip(name):
    config_class = get_model_class(name).Config
    assert config_class.from_dict(json.loads(json.dumps(config_class().to_dict()))) == config_class()


@pytest.mark.parametrize("umask", [0o022, 0o027], ids=["umask-022", "umask-027"])
def test_weights_get_the_mode_of_other_files(gaussian_model, tmp_path, umask):
    model = gaussian_model(gaussian_model.Config(data_shape=(1, 4, 4)))
    stats = tmp_path / "stats.safetensors"
    old = os.umask(umask)
    try:
        model.save_pretrained(tmp_path / "run")
        GaussianStats.from_features(torch.randn(8, 3)).save(stats)
    finally:
        os.umask(old)
    for path in (tmp_path / "run" / "model.safetensors", tmp_path / "run" / "config.json", stats):
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask, (path.name, oct(path.stat().st_mode))


def test_trained_weights_are_as_readable_as_the_config(workspace):
    run = workspace.run("gaussian")  # copies keep the modes training gave
    assert (run / "model.safetensors").stat().st_mode == (run / "config.json").stat().st_mode


# ---- commands and runs: the second table -------------------------------------------------------
# A row: id, prepare(ws) -> the run or file the command must leave as it was, argv(that, tmp), the
# fragment. Commands that would create something (a new run, a report) aim at tmp/"new", which
# must not exist afterwards.


class Pickled:
    """What a hostile trainer_state.pt holds: an object whose unpickling runs a command."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def gaussian_run(ws: Workspace) -> Path:
    return ws.run("gaussian")


def state_hostile(ws: Workspace) -> Path:
    run = ws.run("gaussian")
    torch.save({"step": Pickled(ws.tmp / "pwned")}, run / "trainer_state.pt")
    return run


def state_of_another_model(ws: Workspace) -> Path:
    run = ws.run("gaussian")
    shutil.copy(ws.run("gpt") / "trainer_state.pt", run / "trainer_state.pt")
    return run


def state_truncated(ws: Workspace) -> Path:
    run = ws.run("gaussian")
    state = run / "trainer_state.pt"
    state.write_bytes(state.read_bytes()[:1000])
    return run


def a_file(ws: Workspace) -> Path:
    path = ws.tmp / "notes.txt"
    path.write_text("not a folder\n")
    return path


def read_only_folder(ws: Workspace) -> Path:
    """A folder nobody may write in. root writes anywhere it has permission bits for, so there the
    folder is /sys, which refuses new entries even to root."""
    if os.geteuid() == 0:
        return Path("/sys")
    folder = ws.tmp / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    return folder


def run_and_read_only_folder(ws: Workspace) -> Path:
    ws.run("gaussian")
    return read_only_folder(ws)


def run_and_a_file(ws: Workspace) -> Path:
    ws.run("gaussian")
    return a_file(ws)


def resume(run: Path, *extra: str) -> list[str]:
    return ["train", "test-gaussian", "--data", "digits", "--out", str(run), "--resume", "--quiet", *extra]


def new_gaussian(*extra: str) -> Argv:
    return lambda _, tmp: [*train_gaussian(tmp / "new"), *extra]


COMMAND_CASES: list[tuple[str, Prepare, Argv, str]] = [
    # huge values
    ("seed-huge-train", gaussian_run, new_gaussian("--seed", str(10**23)), "seed must be in 0 .. 2**32 - 1"),
    ("seed-huge-sample", gaussian_run, lambda r, t: [*sample(r, t), "--seed", str(10**23)], "seed must be"),
    ("seed-negative", gaussian_run, new_gaussian("--seed", "-1"), "seed must be in 0"),
    (
        "model-too-large",
        gaussian_run,
        lambda _, t: ["train", "vae", "--data", "digits", "--out", str(t / "new"), "--set", "latent_dim=10**9"],
        "setting 'latent_dim' expects int",
    ),
    (
        "model-too-large-for-memory",
        gaussian_run,
        lambda _, t: ["train", "vae", "--data", "digits", "--out", str(t / "new"), "--set", "latent_dim=1000000000"],
        "lower the size settings",
    ),
    ("sample-n-huge", gaussian_run, lambda r, t: ["sample", str(r), "-n", "100000000", "--out", str(t / "x.png")],
     "ask for fewer with -n"),
    # devices
    *(
        [
            ("sample-on-missing-cuda", gaussian_run, lambda r, t: [*sample(r, t), "--device", "cuda"], "no CUDA GPU"),
            ("evaluate-on-missing-cuda", gaussian_run, lambda r, t: [*evaluate(r, t), "--device", "cuda"], "no CUDA GPU"),
        ]
        if not torch.cuda.is_available()
        else []
    ),
    # where results go
    ("train-out-empty", gaussian_run, lambda _, t: ["train", "vae", "--data", "digits", "--out", ""], "must not be empty"),
    ("sample-out-empty", gaussian_run, lambda r, t: ["sample", str(r), "--out", ""], "must not be empty"),
    ("train-out-is-a-file", a_file, lambda f, t: ["train", "test-gaussian", "--data", "digits", "--out", str(f)], "is a file"),
    ("train-out-under-a-file", a_file, lambda f, t: train_gaussian(f / "run"), "which is a file"),
    ("sample-out-under-a-file", run_and_a_file, lambda f, t: ["sample", str(t / "gaussian-run"), "--out", str(f / "x.png")],
     "which is a file"),
    ("sample-out-is-a-folder", gaussian_run, lambda r, t: ["sample", str(r), "--out", str(r)], "is a directory"),
    ("train-out-read-only", read_only_folder, lambda d, t: train_gaussian(d / "genzoo-run"), "genzoo-run"),
    ("sample-out-read-only", run_and_read_only_folder, lambda d, t: ["sample", str(t / "gaussian-run"), "--out", str(d / "x.png")],
     "x.png"),
    # resuming
    ("resume-hostile-state", state_hostile, lambda r, t: resume(r), "is not a genzoo checkpoint"),
    ("resume-other-models-state", state_of_another_model, lambda r, t: resume(r), "not a genzoo checkpoint of this model"),
    ("resume-truncated-state", state_truncated, lambda r, t: resume(r), "is not a genzoo checkpoint"),
    ("resume-other-data", gaussian_run, lambda r, t: [*resume(r)[:2], "--data", "toy2d-ring", *resume(r)[4:]],
     "was trained on 'digits', not 'toy2d-ring'"),
    ("resume-model-setting", gaussian_run, lambda r, t: resume(r, "--set", "noisy_loss=false"), "keeps its model"),
    ("rerun-finished", gaussian_run, lambda r, t: train_gaussian(r), "already holds a run"),
    # flags that do not apply
    ("sample-prompt-to-an-image-model", gaussian_run, lambda r, t: [*sample(r, t), "--prompt", "once"],
     "does not take --prompt"),
    ("sample-input-to-an-image-model", gaussian_run, lambda r, t: [*sample(r, t), "--input", "x"], "does not take --input"),
    ("sample-seconds-to-text", lambda ws: ws.run("gpt"), lambda r, t: [*sample_text(r, t), "--seconds", "2"],
     "does not take --seconds"),
    ("sample-sampler-to-text", lambda ws: ws.run("gpt"), lambda r, t: [*sample_text(r, t), "--sampler", "ddim"],
     "does not take --sampler"),
    # usage mistakes argparse finds
    ("train-without-data", gaussian_run, lambda _, t: ["train", "vae", "--out", str(t / "new")], "--data"),
    ("unknown-flag", gaussian_run, lambda r, t: [*sample(r, t), "--temprature", "2"], "unrecognized arguments"),
    # compare checks everything before it trains anything
    ("compare-bad-runs", gaussian_run, lambda r, t: ["compare", "--data", "digits", "--models", "test-gaussian",
     "--max-steps", "2", "--runs", str(t / "nowhere"), "--out", str(t / "new")], "is not a genzoo run"),
    ("compare-runs-of-other-data", gaussian_run, lambda r, t: ["compare", "--data", "toy2d-ring", "--models",
     "test-gaussian", "--max-steps", "2", "--runs", str(r), "--out", str(t / "new")], "was trained on 'digits'"),
    ("compare-runs-hostile-state", state_hostile, lambda r, t: ["compare", "--data", "digits", "--models",
     "test-gaussian", "--max-steps", "2", "--runs", str(r), "--out", str(t / "new")], "is not a genzoo checkpoint"),
    ("compare-bad-setting", gaussian_run, lambda r, t: ["compare", "--data", "digits", "--models", "test-gaussian",
     "--max-steps", "2", "--set", "test-gaussian.lr=-1", "--out", str(t / "new")], "lr must be > 0"),
]  # fmt: skip


@pytest.mark.parametrize(
    "prepare, argv, fragment", [c[1:] for c in COMMAND_CASES], ids=[c[0] for c in COMMAND_CASES]
)
def test_bad_command_is_one_line(workspace, capsys, prepare, argv, fragment):
    target = prepare(workspace)
    watched = [target] if target.is_relative_to(workspace.tmp) else []
    assert_user_error(capsys, argv(target, workspace.tmp), fragment, watched)
    assert not (workspace.tmp / "new").exists()
    assert not (workspace.tmp / "pwned").exists()  # nothing in a checkpoint ever runs


def test_debug_after_the_command_shows_the_traceback(tmp_path):
    with pytest.raises(GenzooError, match="not a genzoo run"):
        main(["evaluate", str(tmp_path), "--debug"])

"""The CLI contract: commands, JSON output, and one clear line with exit code 2 for every user error."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

import numpy as np
import pytest

from genzoo.cli import main
from genzoo.errors import GenzooError


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_user_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("genzoo: error:"), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.fixture
def trained_run(gaussian_model, tmp_path, capsys):
    run = tmp_path / "run"
    code, out, _ = run_cli(
        capsys,
        "train",
        "test-gaussian",
        "--data",
        "digits",
        "--out",
        str(run),
        "--max-steps",
        "30",
        "--quiet",
        "--set",
        "lr=0.05",
    )
    assert code == 0 and "trained test-gaussian" in out
    return run


def test_list_json_has_the_contract_fields(capsys):
    code, out, _ = run_cli(capsys, "list", "--json")
    rows = json.loads(out)
    assert code == 0 and any(r["name"] == "vae" for r in rows)
    for row in rows:
        assert {"name", "family", "modalities", "log_prob"} <= row.keys()


def test_train_sample_evaluate(trained_run, tmp_path, capsys):
    code, out, _ = run_cli(capsys, "sample", str(trained_run), "-n", "10", "--out", str(tmp_path / "s.npy"))
    assert code == 0
    assert np.load(tmp_path / "s.npy").shape == (10, 1, 8, 8)
    code, _, _ = run_cli(capsys, "sample", str(trained_run), "-n", "16", "--out", str(tmp_path / "s.png"))
    assert code == 0 and (tmp_path / "s.png").stat().st_size > 100
    code, out, _ = run_cli(
        capsys, "evaluate", str(trained_run), "--split", "test", "--metrics", "nll", "--json"
    )
    result = json.loads(out)
    assert code == 0
    assert result["model"] == "test-gaussian" and result["split"] == "test" and result["n"] == 447
    assert result["nll_kind"] == "exact" and np.isfinite(result["nll"]) and np.isfinite(result["bpd"])


def test_sample_is_reproducible_for_a_seed(trained_run, tmp_path, capsys):
    for name in ("a", "b"):
        run_cli(
            capsys,
            "sample",
            str(trained_run),
            "-n",
            "5",
            "--seed",
            "7",
            "--out",
            str(tmp_path / f"{name}.npy"),
        )
    assert np.array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))


@pytest.mark.parametrize(
    "argv, fragments",
    [
        (["train", "vea", "--data", "digits"], ["unknown model 'vea'", "did you mean 'vae'"]),
        (["train", "vae", "--data", "digitz"], ["unknown dataset 'digitz'", "did you mean 'digits'"]),
        (["train", "vae", "--data", "./no/such/folder"], ["does not exist"]),
        (
            ["train", "vae", "--data", "digits", "--set", "latnet_dim=4"],
            ["unknown setting 'latnet_dim'", "latent_dim"],
        ),
        (["train", "vae", "--data", "digits", "--set", "lr=-0.1"], ["lr must be > 0"]),
        (["train", "vae", "--data", "digits", "--set", "batch_size=0"], ["batch_size must be > 0"]),
        (["train", "vae", "--data", "digits", "--set", "lr"], ["expects key=value"]),
        (["train", "vae", "--data", "digits", "--time-budget", "soon"], ["cannot read the duration"]),
    ],
)
def test_user_errors_exit_2_with_one_line(argv, fragments, tmp_path, capsys):
    code, _, err = run_cli(capsys, *argv, "--out", str(tmp_path / "run"))
    assert_user_error(code, err, *fragments)
    assert not (tmp_path / "run").exists()


def test_corrupt_idx_file(tmp_path, capsys):
    bad = tmp_path / "t10k-images-idx3-ubyte.gz"
    bad.write_bytes(gzip.compress(b"\x00\x00\x08\x03" + b"\x00" * 7))
    code, _, err = run_cli(capsys, "train", "vae", "--data", str(bad), "--out", str(tmp_path / "run"))
    assert_user_error(code, err, str(bad.name))


def test_empty_image_folder(tmp_path, capsys):
    (tmp_path / "images").mkdir()
    code, _, err = run_cli(
        capsys, "train", "vae", "--data", str(tmp_path / "images"), "--out", str(tmp_path / "r")
    )
    assert_user_error(code, err)


def test_not_a_run(tmp_path, capsys):
    for argv in (["evaluate", str(tmp_path)], ["sample", str(tmp_path), "--out", str(tmp_path / "x.png")]):
        code, _, err = run_cli(capsys, *argv)
        assert_user_error(code, err, "not a genzoo run")


def test_bad_sample_options(trained_run, tmp_path, capsys):
    code, _, err = run_cli(capsys, "sample", str(trained_run), "--out", str(tmp_path / "x.gif"))
    assert_user_error(code, err, ".png or .npy")
    code, _, err = run_cli(
        capsys, "sample", str(trained_run), "--out", str(tmp_path / "x.png"), "--top-k", "5"
    )
    assert_user_error(code, err, "does not take --top-k")
    code, _, err = run_cli(capsys, "evaluate", str(trained_run), "--metrics", "nlll")
    assert_user_error(code, err, "unknown metric 'nlll'", "did you mean 'nll'")


def test_existing_run_is_left_untouched(trained_run, capsys):
    before = {p.name: p.read_bytes() for p in trained_run.iterdir() if p.is_file()}
    code, _, err = run_cli(capsys, "train", "test-gaussian", "--data", "digits", "--out", str(trained_run))
    assert_user_error(code, err, "already holds a run")
    code, _, err = run_cli(
        capsys, "train", "test-gaussian", "--data", "digits", "--out", str(trained_run), "--set", "lr=-1"
    )
    assert_user_error(code, err)
    after = {p.name: p.read_bytes() for p in trained_run.iterdir() if p.is_file()}
    assert before == after


def test_nonfinite_loss_is_a_user_error(gaussian_model, tmp_path, capsys):
    code, _, err = run_cli(
        capsys,
        "train",
        "test-gaussian",
        "--data",
        "digits",
        "--out",
        str(tmp_path / "r"),
        "--quiet",
        "--set",
        "nan_after=0",
        "--set",
        "max_nonfinite=3",
    )
    assert_user_error(code, err, "non-finite", "lower the learning rate")


def test_console_script_prints_no_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "genzoo.cli", "evaluate", str(tmp_path)], capture_output=True, text=True
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "not a genzoo run" in proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "genzoo.cli", "--debug", "evaluate", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert "Traceback" in proc.stderr


def test_vae_stopped_and_resumed_matches_uninterrupted(tmp_path, capsys):
    """Issue 3's check, shortened: 40 steps straight equals 20 steps, then resume to 40."""
    common = ["--data", "digits", "--seed", "1", "--quiet", "--set", "eval_every=15"]
    assert main(["train", "vae", "--out", str(tmp_path / "a"), "--max-steps", "40", *common]) == 0
    assert main(["train", "vae", "--out", str(tmp_path / "b"), "--max-steps", "20", *common]) == 0
    assert (
        main(["train", "vae", "--out", str(tmp_path / "b"), "--max-steps", "40", "--resume", *common[:-2]])
        == 0
    )
    capsys.readouterr()
    a = (tmp_path / "a" / "model.safetensors").read_bytes()
    b = (tmp_path / "b" / "model.safetensors").read_bytes()
    assert a == b


def test_demo_writes_its_pictures(tmp_path, capsys):
    from genzoo.demo import main as demo_main
    from genzoo.train import train

    train("vae", "digits", tmp_path / "vae-digits", {"max_steps": 30, "iwae_k": 20}, quiet=True)
    demo_main(["--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "re-using the finished run" in out and "test NLL:" in out
    for name in ("samples", "reconstructions", "interpolations"):
        assert (tmp_path / f"{name}.png").stat().st_size > 200


def test_sample_with_sampler_label_and_guidance(ddpm_run, tmp_path, capsys):
    out = tmp_path / "s.npy"
    argv = ["sample", str(ddpm_run), "-n", "4", "--out", str(out), "--sampler", "ddim", "--steps", "5"]
    code, _, _ = run_cli(capsys, *argv, "--label", "3", "--guidance", "2", "--eta", "0.5")
    assert code == 0 and np.load(out).shape == (4, 1, 8, 8)
    code, _, err = run_cli(capsys, *argv, "--label", "12")
    assert_user_error(code, err, "label")


def test_inpaint_keeps_the_known_half(ddpm_run, tmp_path, capsys):
    from genzoo.data import load_dataset

    out = tmp_path / "filled.npy"
    code, stdout, _ = run_cli(
        capsys, "inpaint", str(ddpm_run), "--split", "test", "-n", "3", "--mask", "bottom-half",
        "--out", str(out), "--sampler", "ddim", "--steps", "5", "--resample", "2",
    )  # fmt: skip
    assert code == 0 and "3 inpainted" in stdout
    filled = np.load(out)
    original = load_dataset("digits").split("test").tensors[0][:3].numpy()
    assert filled.shape == original.shape
    assert np.array_equal(filled[:, :, :4], original[:, :, :4])
    assert not np.array_equal(filled[:, :, 4:], original[:, :, 4:])
    np.save(tmp_path / "x.npy", original[0])
    mask = np.zeros((8, 8), dtype=bool)
    mask[:, :2] = True
    np.save(tmp_path / "m.npy", mask)
    code, _, _ = run_cli(
        capsys, "inpaint", str(ddpm_run), "--images", str(tmp_path / "x.npy"),
        "--mask", str(tmp_path / "m.npy"), "--out", str(tmp_path / "one.png"), "--steps", "4", "--sampler", "ddim",
    )  # fmt: skip
    assert code == 0 and (tmp_path / "one.png").is_file()
    code, _, err = run_cli(
        capsys, "inpaint", str(ddpm_run), "--split", "test", "--mask", "diagonal", "--out", str(out)
    )
    assert_user_error(code, err, "--mask", "bottom-half")


@pytest.mark.parametrize("name", ["vae", "gpt", "ddpm", "dcgan", "dbn", "seq2seq", "rnn-nade", "wavenet"])
def test_config_prints_defaults_that_config_reads_back(name, tmp_path, capsys):
    from genzoo.models import get_model_class
    from genzoo.settings import read_config_file, route
    from genzoo.train.run import RunSpec, setting_fields

    assert main(["config", name]) == 0
    path = tmp_path / "settings.yaml"
    path.write_text(capsys.readouterr().out)
    routed = route(read_config_file(path), setting_fields(name, "digits"))
    cls = get_model_class(name)
    config = cls.Config.from_dict(routed["model"])
    assert config == cls.Config(**{k: getattr(config, k) for k in ("data_shape", "data_levels")})
    spec = RunSpec(name, "digits", {}, routed["model"], routed["train"])
    assert spec.train_config() == RunSpec(name, "digits").train_config()


def test_config_file_from_genzoo_config_trains(tmp_path, capsys):
    assert main(["config", "vae"]) == 0
    path = tmp_path / "vae.yaml"
    path.write_text(capsys.readouterr().out.replace("latent_dim: 16", "latent_dim: 5"))
    run = tmp_path / "run"
    argv = ["train", "vae", "--data", "digits", "--out", str(run), "--config", str(path), "--max-steps", "2"]
    assert main([*argv, "--quiet"]) == 0
    assert json.loads((run / "config.json").read_text())["config"]["latent_dim"] == 5


def test_unknown_setting_points_to_genzoo_config(tmp_path, capsys):
    code = main(["train", "vae", "--data", "digits", "--out", str(tmp_path / "r"), "--set", "latnet=3"])
    assert_user_error(code, capsys.readouterr().err, "`genzoo config MODEL` prints every setting")


def test_python_dash_m_and_a_closed_pipe():
    proc = subprocess.run([sys.executable, "-m", "genzoo", "list", "--json"], capture_output=True, text=True)
    assert proc.returncode == 0 and json.loads(proc.stdout)[0]["name"]
    shell = f"{sys.executable} -m genzoo list --json | head -1"
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", shell], capture_output=True, text=True)
    assert proc.stdout == "[\n" and proc.stderr == "" and proc.returncode == 0


def test_sample_and_evaluate_default_to_device_auto(trained_run, tmp_path, capsys):
    assert main(["sample", str(trained_run), "-n", "2", "--out", str(tmp_path / "x.npy")]) == 0
    assert main(["evaluate", str(trained_run), "--device", "auto", "--json"]) == 0


def test_every_command_is_one_library_call(trained_run, tmp_path, capsys):
    import genzoo

    x = genzoo.sample(trained_run, 5, seed=7)
    assert not list(tmp_path.glob("*.npy"))  # nothing written unless asked
    assert main(["sample", str(trained_run), "-n", "5", "--seed", "7", "--out", str(tmp_path / "c.npy")]) == 0
    assert np.array_equal(x.numpy(), np.load(tmp_path / "c.npy"))
    genzoo.sample(trained_run, 5, seed=7, out=tmp_path / "l.npy")
    assert np.array_equal(np.load(tmp_path / "l.npy"), np.load(tmp_path / "c.npy"))
    capsys.readouterr()
    assert main(["evaluate", str(trained_run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == genzoo.evaluate(trained_run, split="test", metrics=["nll"])
    with pytest.raises(GenzooError, match="does not take --prompt"):
        genzoo.sample(trained_run, 2, prompt="hello")


def test_evaluate_help_lists_every_metric():
    from genzoo.cli import EVALUATE_METRICS
    from genzoo.evaluation import ALL_METRICS

    assert [m for m in ALL_METRICS if m not in EVALUATE_METRICS] == []


def test_preview_samples_zero_skips_the_preview(tmp_path):
    argv = ["train", "vae", "--data", "digits", "--max-steps", "2", "--quiet", "--set", "eval_every=0"]
    assert main([*argv, "--out", str(tmp_path / "a"), "--set", "preview_samples=0"]) == 0
    assert main([*argv, "--out", str(tmp_path / "b"), "--set", "preview_samples=9"]) == 0
    assert not (tmp_path / "a" / "samples.png").exists() and (tmp_path / "a" / "README.md").is_file()
    assert (tmp_path / "b" / "samples.png").is_file()

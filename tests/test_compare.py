"""`genzoo compare` end to end on tiny runs: failures shown, finished runs reused, numbers exact on rerun."""

from __future__ import annotations

import json
import math

import pytest

from genzoo.cli import main
from genzoo.errors import GenzooError
from genzoo.report.compare import TRAIN_MARKER, CompareConfig, run_compare, summarize

# toy2d-ring: no domain classifier to train, and vectors, so an image-only model (glow) must fail.
# Smaller splits and fewer importance samples keep evaluation to seconds.
TINY = dict(
    data="toy2d-ring", data_options={"n_train": 2000, "n_test": 500}, num_samples=200, threads=1, quiet=True
)
VAE = {"vae": {"iwae_k": 20}}


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    """vae and dcgan on a 2-second budget (1 s of calibration), plus glow, which cannot take vectors."""
    out = tmp_path_factory.mktemp("compare") / "a"
    config = CompareConfig(
        out=out,
        models=["vae", "dcgan", "glow"],
        time_budget=2.0,
        calibration_seconds=1.0,
        settings=VAE,
        **TINY,
    )
    return config, run_compare(config)


def test_report_json_and_failure(calibrated):
    config, results = calibrated
    assert (config.out / "index.html").is_file()
    on_disk = json.loads((config.out / "results.json").read_text())
    assert on_disk["schema"] == "genzoo.compare/1" and set(on_disk["models"]) == {"vae", "dcgan", "glow"}
    glow = on_disk["models"]["glow"]
    assert glow["status"] == "failed" and "handles image data" in glow["reason"]
    vae, dcgan = on_disk["models"]["vae"], on_disk["models"]["dcgan"]
    assert vae["status"] == dcgan["status"] == "ok"
    assert vae["nll_kind"] == "estimate" and "nll" in vae["metrics"] and "nll" not in dcgan["metrics"]
    for summary in (vae, dcgan):
        for key in (
            "fid",
            "kid",
            "precision",
            "recall",
            "coverage",
            "memorized_share",
            "train_seconds",
            "modes",
        ):
            assert math.isfinite(summary["metrics"][key]["mean"]), key
        assert summary["metrics"]["params"]["mean"] > 0 and summary["metrics"]["peak_memory_mb"]["mean"] > 50
        assert summary["metrics"]["sample_seconds_per_100"]["mean"] > 0
    # Calibration turned the budget into steps, and the runs trained exactly those.
    for run in on_disk["runs"][:2]:
        assert run["calibration"]["seconds_per_step"] > 0 and run["steps_done"] == run["steps"]
    assert {e["model"] for e in on_disk["plan"].values()} == {"vae", "dcgan"}
    assert on_disk["recommendation"]["pick"] in ("vae", "dcgan")
    assert on_disk["recommendation"]["ranking"][-1]["model"] == "glow"


def test_rerun_reuses_finished_runs_and_steps_from_reproduces_exactly(calibrated, tmp_path):
    config, first = calibrated
    marker = config.out / "runs" / "vae" / "seed0" / TRAIN_MARKER
    stamp = marker.stat().st_mtime_ns
    # As if interrupted while training dcgan: its run directory is there, its marker not yet.
    (config.out / "runs" / "dcgan" / "seed0" / TRAIN_MARKER).unlink()
    again = run_compare(config)
    assert marker.stat().st_mtime_ns == stamp  # vae reused, not retrained
    assert (config.out / "runs" / "dcgan" / "seed0" / TRAIN_MARKER).is_file()  # dcgan trained again
    # A fresh directory trained from scratch with the first report's step counts: same numbers
    # (and in this process, so training in a worker process changes nothing either).
    fresh = CompareConfig(
        isolate=False,
        out=tmp_path / "b",
        models=["vae", "dcgan"],
        time_budget=2.0,
        steps_from=config.out,
        settings=VAE,
        **TINY,
    )
    second = run_compare(fresh)
    for model in ("vae", "dcgan"):
        metrics = first["models"][model]["metrics"]
        for key in ("fid", "kid", "precision", "recall", "coverage", "nll", "steps_done"):
            if key in metrics:
                assert again["models"][model]["metrics"][key] == metrics[key], (model, key)
                assert second["models"][model]["metrics"][key]["values"] == metrics[key]["values"], (
                    model,
                    key,
                )


def test_summary_means_and_spreads_over_repeats():
    records = [
        {"model": "vae", "seed": 0, "status": "ok", "train_seconds": 1.0, "metrics": {"fid": 10.0}},
        {"model": "vae", "seed": 1, "status": "ok", "train_seconds": 3.0, "metrics": {"fid": 14.0}},
        {"model": "vae", "seed": 2, "status": "failed", "reason": "boom"},
    ]
    s = summarize(records, num_classes=0)["vae"]
    assert s["status"] == "partial" and s["repeats_ok"] == 2 and s["failures"] == ["seed 2: boom"]
    assert s["metrics"]["fid"] == {"mean": 12.0, "std": math.sqrt(8.0), "values": [10.0, 14.0]}
    assert s["metrics"]["train_seconds"]["mean"] == 2.0


def test_user_errors(tmp_path, capsys):
    with pytest.raises(GenzooError, match="--repeats"):
        CompareConfig(data="digits", out=tmp_path, models=["vae"], repeats=0)
    with pytest.raises(GenzooError, match="priority"):
        CompareConfig(data="digits", out=tmp_path, models=["vae"], priority="looks")
    assert main(["compare", "--data", "digits", "--models", "vea", "--out", str(tmp_path / "r")]) == 2
    assert "unknown model 'vea'" in capsys.readouterr().err
    assert (
        main(["compare", "--data", "digits", "--models", "vae", "--set", "lr=1", "--out", str(tmp_path)]) == 2
    )
    assert "MODEL.KEY=VALUE" in capsys.readouterr().err


def test_existing_runs_join_the_comparison(calibrated, tmp_path):
    config, first = calibrated
    run = config.out / "runs" / "vae" / "seed0"
    results = run_compare(CompareConfig(out=tmp_path / "c", runs=[run], **TINY))
    vae = results["models"]["vae"]
    assert vae["status"] == "ok" and vae["metrics"]["fid"] == first["models"]["vae"]["metrics"]["fid"]
    assert vae["metrics"]["steps_done"] == first["models"]["vae"]["metrics"]["steps_done"]
    assert "peak_memory_mb" not in vae["metrics"]  # not measured for a run compare did not train
    with pytest.raises(GenzooError, match="trained on 'toy2d-ring'"):
        run_compare(CompareConfig(out=tmp_path / "d", data="toy2d-grid", runs=[run], quiet=True))


def test_cli_takes_steps_from_with_the_budget_it_was_calibrated_for():
    from genzoo.cli import build_parser

    args = build_parser().parse_args(
        [
            "compare",
            "--data",
            "digits",
            "--models",
            "vae",
            "--out",
            "r",
            "--time-budget",
            "2m",
            "--steps-from",
            "old",
        ]
    )
    assert args.time_budget == "2m" and str(args.steps_from) == "old"
    with pytest.raises(SystemExit):  # a fixed step count and a budget contradict each other
        build_parser().parse_args(
            ["compare", "--data", "digits", "--out", "r", "--time-budget", "2m", "--max-steps", "5"]
        )


def test_ray_executor_writes_the_local_executors_table(calibrated, tmp_path):
    """Each training a Ray task on a local instance (2 CPUs): same steps and seeds, same numbers,
    and the model that cannot train fails there as it does locally."""
    ray = pytest.importorskip("ray")
    config, first = calibrated
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        remote = run_compare(
            CompareConfig(
                out=tmp_path / "ray",
                models=["vae", "dcgan", "glow"],
                time_budget=2.0,
                steps_from=config.out,
                settings=VAE,
                executor="ray",
                **TINY,
            )
        )
    finally:
        ray.shutdown()
    assert remote["models"]["glow"]["status"] == first["models"]["glow"]["status"] == "failed"
    assert remote["models"]["glow"]["failures"] == first["models"]["glow"]["failures"]
    for model in ("vae", "dcgan"):
        metrics = first["models"][model]["metrics"]
        for key in ("fid", "kid", "precision", "recall", "coverage", "nll", "steps_done"):
            if key in metrics:
                assert remote["models"][model]["metrics"][key]["values"] == metrics[key]["values"], (
                    model,
                    key,
                )
    assert remote["recommendation"]["summary"] == first["recommendation"]["summary"]


def test_executor_is_checked_and_ray_is_optional(tmp_path, monkeypatch):
    with pytest.raises(GenzooError, match="--executor must be one of local, ray"):
        CompareConfig(data="digits", out=tmp_path, models=["vae"], executor="spark")
    monkeypatch.setitem(__import__("sys").modules, "ray", None)  # as if Ray were not installed
    code = main(["compare", "--data", "toy2d-ring", "--models", "vae", "--max-steps", "2", "--executor", "ray",
                 "--out", str(tmp_path / "r"), "--quiet"])  # fmt: skip
    assert code == 2
    assert not (tmp_path / "r").exists()  # refused before anything was written

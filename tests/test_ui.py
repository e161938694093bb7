"""The web UI's pieces without a browser: the workspace's confinement and upload checks, the job
queue (one training at a time, stop and resume, failures as one line), the settings form read from
every model's config, and `genzoo ui`'s bad flags."""

from __future__ import annotations

import io
import os
import stat
import time
import zipfile

import numpy as np
import pytest
from PIL import Image

from genzoo.cli import main
from genzoo.errors import GenzooError
from genzoo.models import model_names
from genzoo.ui.forms import changed_settings, read_option, sample_options, settings_fields
from genzoo.ui.jobs import JobQueue
from genzoo.ui.workspace import Limits, Workspace, safe_name


@pytest.fixture
def ws(tmp_path):
    return Workspace(
        tmp_path / "ws", Limits(upload_bytes=64 * 1024, unpacked_bytes=256 * 1024, archive_members=50)
    )


def write_zip(path, members: dict[str, bytes], links: tuple[str, ...] = ()) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
        for name, content in members.items():
            zipped.writestr(name, content)
        for name in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zipped.writestr(info, "/etc/passwd")


def png_bytes(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (8, 8), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "name", ["../../x", "..", "/etc/passwd", "", "  ", ".hidden", "a/b", "a\\b", "x" * 81, "a\x00b"]
)
def test_names_from_a_browser_cannot_leave_the_workspace(ws, name):
    with pytest.raises(GenzooError, match="not allowed"):
        safe_name(name)
    with pytest.raises(GenzooError):
        ws.folder("runs", name)


def test_paths_outside_the_workspace_are_refused_even_through_a_link(ws, tmp_path):
    (ws.root / "runs" / "escape").symlink_to(tmp_path)
    with pytest.raises(GenzooError, match="outside the workspace"):
        ws.folder("runs", "escape")
    assert ws.folder("runs", "fine-1.0").parent == ws.root / "runs"


def test_a_csv_upload_becomes_a_data_choice(ws, tmp_path):
    rows = "\n".join(f"{i},{i % 3},{i * 0.5}" for i in range(40))
    source = tmp_path / "upload-tmp"
    source.write_text("a,b,c\n" + rows + "\n")
    choice = ws.add_upload(source, "sales.csv")
    assert choice == "upload:sales.csv"
    assert choice in ws.data_choices()
    assert ws.data_source(choice) == str(ws.root / "data" / "sales.csv")
    with pytest.raises(GenzooError, match="exists already"):
        ws.add_upload(source, "sales.csv")


def test_a_zip_of_an_image_folder_is_unpacked_and_read(ws, tmp_path):
    archive = tmp_path / "faces.zip"
    write_zip(archive, {f"faces/{i}.png": png_bytes(i) for i in range(12)} | {"__MACOSX/._0.png": b"junk"})
    choice = ws.add_upload(archive, "faces.zip")
    assert sorted(p.name for p in (ws.root / "data" / "faces").iterdir())[:2] == ["0.png", "1.png"]
    from genzoo.data import load_dataset

    assert load_dataset(ws.data_source(choice)).info.modality == "image"


@pytest.mark.parametrize(
    ("members", "links", "message"),
    [
        ({"../evil.png": b"x"}, (), "outside itself"),
        ({"/abs/evil.png": b"x"}, (), "outside itself"),
        ({"ok.png": png_bytes(0)}, ("link.png",), "link"),
        ({f"{i}.png": png_bytes(i) for i in range(60)}, (), "holds 60 files"),
        ({"big.bin": bytes(300 * 1024)}, (), "unpacks to more than"),
        ({}, (), "holds no files"),
    ],
)
def test_hostile_archives_are_refused_and_nothing_is_left(ws, tmp_path, members, links, message):
    archive = tmp_path / "bad.zip"
    write_zip(archive, members, links)
    with pytest.raises(GenzooError, match=message):
        ws.add_upload(archive, "bad.zip")
    assert [p.name for p in (ws.root / "data").iterdir()] == []
    assert not (tmp_path / "evil.png").exists()


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (b"", "empty.csv", "is empty"),
        (b"x" * (65 * 1024), "huge.csv", "uploads up to"),
        (b"MZ\x90\x00", "tool.exe", "not a file genzoo reads"),
        (b"PK\x03\x04 truncated", "cut.zip", "could not be read"),
        (b"\x00\x01\xff\xfe", "binary.csv", "binary.csv"),
        (b"a,b\n1,2\n", "short.csv", "short.csv"),
    ],
)
def test_bad_uploads_are_one_line_and_leave_nothing(ws, tmp_path, content, name, message):
    source = tmp_path / "incoming"
    source.write_bytes(content)
    with pytest.raises(GenzooError, match=message) as caught:
        ws.add_upload(source, name)
    assert "\n" not in str(caught.value)
    assert str(ws.root) not in str(caught.value)  # the user's file name, not the server's path
    assert [p.name for p in (ws.root / "data").iterdir()] == []


def test_every_models_settings_form_round_trips_its_defaults():
    for model in model_names():
        fields = settings_fields(model)
        assert fields, model
        values = [f.shown() for f in fields]
        assert changed_settings(fields, values) == {}, model
        for field in fields:
            if field.kind == "choice":
                assert field.default in field.choices, (model, field.name)
    fields = settings_fields("vae")
    values = [f.shown() for f in fields]
    values[[f.name for f in fields].index("lr")] = 0.01
    assert changed_settings(fields, values) == {"train.lr": 0.01}
    with pytest.raises(GenzooError, match="needs a number"):
        changed_settings(fields, [None if f.name == "lr" else v for f, v in zip(fields, values, strict=True)])


def test_sample_options_follow_the_models_sample_signature():
    assert "prompt" in sample_options("gpt") and "sampler" not in sample_options("gpt")
    assert "sampler" in sample_options("ddpm") and "top_k" not in sample_options("ddpm")
    assert read_option("steps", "20") == 20 and read_option("temperature", "0.7") == 0.7
    with pytest.raises(GenzooError, match="whole number"):
        read_option("steps", "many")


def wait_for_step(ws, run: str, step: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    metrics = ws.root / "runs" / run / "metrics.jsonl"
    while time.monotonic() < deadline:
        if metrics.is_file() and f'"step": {step}' in metrics.read_text():
            return
        time.sleep(0.2)
    pytest.fail(f"{run} did not reach step {step}")


def test_jobs_run_one_at_a_time_stop_with_a_checkpoint_and_resume(ws, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    jobs = JobQueue(ws, device="cpu")
    try:
        slow = {"train.log_every": 10, "train.checkpoint_every": 20, "train.preview_samples": 0}
        first = jobs.submit_training("vae", "digits", "first", slow, max_steps=100_000)
        second = jobs.submit_training("vae", "digits", "second", {"train.preview_samples": 0}, max_steps=20)
        wait_for_step(ws, "first", 40)
        assert jobs.status(first.key)["state"] == "running"
        assert jobs.status(second.key) == {
            **jobs.status(second.key),
            "state": "queued",
            "message": "number 1 in the queue",
        }
        with pytest.raises(GenzooError, match="running already"):
            jobs.submit_training("vae", "digits", "first", {}, max_steps=5)
        jobs.stop(first.key)
        stopped = jobs.wait(first.key, 120)
        assert stopped["state"] == "stopped", stopped
        assert (ws.root / "runs" / "first" / "trainer_state.pt").is_file()
        done = jobs.wait(second.key, 180)
        assert done["state"] == "done" and done["percent"] == 100.0, done
        # Resume: the stopped run goes on from its checkpoint (here to a nearer end, via its own command).
        resumed = jobs.submit_training("", "", "first", {}, resume=True)
        wait_for_step(ws, "first", stopped["step"] + 10)
        jobs.stop(resumed.key)
        assert jobs.wait(resumed.key, 120)["state"] == "stopped"
    finally:
        jobs.close()


def test_a_failing_job_reports_its_one_line(ws):
    jobs = JobQueue(ws, device="cpu")
    try:
        job = jobs.submit_training("vae", "digits", "broken", {"model.latent_dim": -3}, max_steps=5)
        status = jobs.wait(job.key, 120)
        assert status["state"] == "failed"
        assert "latent_dim" in status["message"] and "Traceback" not in jobs.log(job.key)
        with pytest.raises(GenzooError, match="no run 'nothing' to resume"):
            jobs.submit_training("", "", "nothing", {}, resume=True)
        with pytest.raises(GenzooError, match="not allowed"):
            jobs.submit_training("vae", "digits", "../up", {}, max_steps=5)
    finally:
        jobs.close()


def test_the_train_page_plans_the_models_own_length_and_passes_presets(ws):
    from genzoo.ui.app import NO_PRESET, _Pages, _preset_choices

    jobs = JobQueue(ws, device="cpu")
    try:
        pages = _Pages(ws, jobs)
        # What the run would train: the class default, the GAN's choice for 2-d points, a preset's.
        assert pages.planned_steps("vae", "digits", NO_PRESET) == 4000
        assert pages.planned_steps("dcgan", "toy2d-ring", NO_PRESET) == 16000
        assert pages.planned_steps("pixelcnn", "digits", "conditional") == 1000
        assert pages.planned_steps("vae", "digits", "conditional") == 4000  # a stale preset: ignored
        assert _preset_choices("pixelcnn") == [NO_PRESET, "binarized-mnist", "conditional"]
        job = jobs.submit_training("pixelcnn", "digits", "cond", {"train.preview_samples": 0}, max_steps=2,
                                   preset="conditional")  # fmt: skip
        assert job.argv[job.argv.index("--preset") + 1] == "conditional"
        assert jobs.wait(job.key, 180)["state"] == "done"
        assert (ws.root / "runs" / "cond" / "run.json").read_text().count('"preset": "conditional"') == 1
    finally:
        jobs.close()


def test_the_job_queue_has_a_bounded_length(tmp_path):
    ws = Workspace(tmp_path / "ws", Limits(waiting_jobs=1))
    jobs = JobQueue(ws, device="cpu")
    try:
        jobs.submit_training("vae", "digits", "a", {"train.preview_samples": 0}, max_steps=100_000)
        wait_for_step(ws, "a", 50)
        jobs.submit_training("vae", "digits", "b", {}, max_steps=5)
        with pytest.raises(GenzooError, match="1 jobs are waiting already"):
            jobs.submit_training("vae", "digits", "c", {}, max_steps=5)
        assert jobs.stop("train-b").startswith("taken out of the queue")
    finally:
        jobs.close()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--port", "70000"], "--port must be 1-65535"),
        (["--max-samples", "0"], "--max-samples must be positive"),
        (["--max-upload-mb", "-1"], "--max-upload-mb must be positive"),
        (["--concurrency", "0"], "--concurrency must be positive"),
    ],
)
def test_ui_flags_are_checked(tmp_path, capsys, flags, message):
    assert main(["ui", "--workspace", str(tmp_path / "ws"), *flags]) == 2
    assert message in capsys.readouterr().err


def test_a_workspace_that_is_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["ui", "--workspace", str(tmp_path / "file")]) == 2
    assert "genzoo: error:" in capsys.readouterr().err
    assert os.listdir(tmp_path) == ["file"]


def test_one_server_per_workspace(tmp_path, capsys):
    from genzoo.train.lock import RunLock

    workspace = tmp_path / "ws"
    workspace.mkdir()
    with RunLock(workspace, flag="--workspace"):  # as a running `genzoo ui` holds it
        assert main(["ui", "--workspace", str(workspace), "--port", "7999"]) == 2
    err = capsys.readouterr().err
    assert "in use by another genzoo process" in err and "choose another --workspace" in err

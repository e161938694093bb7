"""`genzoo ui` end to end in a real Chromium, driven by Playwright: train from the page, sample and
compare the image with `genzoo sample` pixel for pixel, upload a CSV, train a table model on it and
download synthetic rows with its columns, and see the message for a bad upload. Screenshots are
left in test-artifacts/ui/. The page must fetch nothing from outside the machine.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from browser import ARTIFACTS, find_chromium

pytest.importorskip("gradio", reason="the ui extra (gradio) is not installed")
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

SHOTS = ARTIFACTS / "ui"
TRAINING_SECONDS = 240  # the longest a 100-step training may take from click to 100% on a busy CPU


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`genzoo ui` on a free loopback port with a fresh workspace; (url, workspace)."""
    workspace = tmp_path_factory.mktemp("ui-workspace")
    port = free_port()
    log = open(workspace.parent / "ui-server.log", "w")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "genzoo", "ui", "--workspace", str(workspace), "--port", str(port)]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 90
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"genzoo ui did not start: {Path(log.name).read_text()[-2000:]}")
            time.sleep(0.5)
    yield url, workspace
    process.terminate()
    process.wait(timeout=30)
    log.close()


@pytest.fixture(scope="module")
def browser():
    path, why = find_chromium()
    if path is None:
        pytest.skip(why)
    with playwright.sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=path, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server):
    """A fresh page on the UI; fails the test if it requested anything beyond loopback."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    url, _ = server
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
    tab = context.new_page()
    outside: list[str] = []
    tab.on(
        "request", lambda r: outside.append(r.url) if not r.url.startswith((url, "data:", "blob:")) else None
    )
    tab.goto(url, wait_until="load")
    tab.get_by_role("tab", name="Data").wait_for()
    yield tab
    context.close()
    assert not outside, f"the page fetched from outside the machine: {outside[:5]}"


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name, exact=True).click()


def pick(page, elem_id: str, value: str) -> None:
    """Choose `value` in a Gradio dropdown."""
    box = page.locator(f"#{elem_id} input")
    box.click()
    box.fill(value)
    page.get_by_role("option", name=value, exact=True).click()


def fill(page, elem_id: str, value: str) -> None:
    page.locator(f"#{elem_id} input, #{elem_id} textarea").first.fill(value)


def train_from_page(page, model: str, data: str, name: str, steps: int) -> None:
    open_tab(page, "Train")
    pick(page, "train-model", model)
    pick(page, "train-data", data)
    # Picking them sets the default steps and run name; wait for that before typing over them.
    default_name = f"{model}-{data.removeprefix('upload:')}"
    playwright.expect(page.locator("#train-name textarea, #train-name input").first).to_have_value(
        default_name
    )
    fill(page, "train-name", name)
    fill(page, "train-steps", str(steps))
    page.locator("#train-button").click()
    done = page.locator("#train-progress .genzoo-progress[data-state='done']")
    done.wait_for(timeout=TRAINING_SECONDS * 1000)
    assert "100%" in page.locator("#train-progress").inner_text()


def sample_from_page(page, run: str, n: int, seed: int) -> list[str]:
    """Generate on the Sample page; the download links' URLs."""
    open_tab(page, "Sample")
    page.locator("#sample-refresh").click()
    pick(page, "sample-run", run)
    fill(page, "sample-n", str(n))
    fill(page, "sample-seed", str(seed))
    page.locator("#sample-button").click()
    links = page.locator("#sample-files a")
    links.first.wait_for(timeout=60_000)
    return [links.nth(i).get_attribute("href") for i in range(links.count())]


def fetch(page, href: str) -> bytes:
    return page.request.get(href).body()


def test_train_then_sample_matches_the_cli(page, server, tmp_path):
    _, workspace = server
    train_from_page(page, "vae", "digits", "vae-ui", 100)
    page.screenshot(path=str(SHOTS / "train-vae-100-steps.png"), full_page=True)
    assert (workspace / "runs" / "vae-ui" / "model.safetensors").is_file()

    hrefs = sample_from_page(page, "vae-ui", 16, 0)
    page.screenshot(path=str(SHOTS / "sample-vae-seed0.png"), full_page=True)
    png = next(h for h in hrefs if h.split("?")[0].endswith(".png"))
    from PIL import Image

    shown = np.asarray(Image.open(io.BytesIO(fetch(page, png))))
    cli = tmp_path / "cli.png"
    run = workspace / "runs" / "vae-ui"
    done = subprocess.run(
        [sys.executable, "-m", "genzoo", "sample", str(run), "-n", "16", "--seed", "0", "--out", str(cli)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert np.array_equal(shown, np.asarray(Image.open(cli)))
    # A different seed gives a different image: the comparison above can fail.
    other = tmp_path / "seed1.png"
    subprocess.run([sys.executable, "-m", "genzoo", "sample", str(run), "-n", "16", "--seed", "1", "--out", str(other)],
                   check=True, capture_output=True)  # fmt: skip
    assert not np.array_equal(shown, np.asarray(Image.open(other)))


def test_upload_a_csv_train_a_table_model_and_download_rows(page, tmp_path):
    rng = np.random.default_rng(0)
    table = pd.DataFrame(
        {
            "age": rng.integers(18, 80, 300),
            "city": rng.choice(["Lyon", "Oslo", "Lima"], 300),
            "spend": rng.gamma(2.0, 30.0, 300).round(2),
        }
    )
    upload = tmp_path / "shop.csv"
    table.to_csv(upload, index=False)
    open_tab(page, "Data")
    page.locator("#data-upload input[type=file]").set_input_files(str(upload))
    page.get_by_text("added upload:shop.csv").wait_for(timeout=30_000)
    page.locator("#data-info").get_by_text("table").wait_for(timeout=30_000)
    page.screenshot(path=str(SHOTS / "data-upload-csv.png"), full_page=True)

    train_from_page(page, "tvae", "upload:shop.csv", "tvae-shop", 60)
    hrefs = sample_from_page(page, "tvae-shop", 40, 0)
    page.locator("#sample-table").wait_for()
    page.screenshot(path=str(SHOTS / "sample-table.png"), full_page=True)
    rows = pd.read_csv(io.BytesIO(fetch(page, hrefs[0])))
    assert list(rows.columns) == list(table.columns)
    assert len(rows) == 40
    assert set(rows["city"]) <= {"Lyon", "Oslo", "Lima"}


def test_a_bad_upload_is_a_message_in_the_page(page, server, tmp_path):
    _, workspace = server
    before = sorted(p.name for p in (workspace / "data").iterdir())
    bad = tmp_path / "broken.csv"
    bad.write_bytes(b"\x00\x01\x02 not a table \xff\xfe")
    open_tab(page, "Data")
    page.locator("#data-upload input[type=file]").set_input_files(str(bad))
    message = page.locator(".toast-body").filter(has_text="broken.csv")
    message.wait_for(timeout=30_000)
    page.screenshot(path=str(SHOTS / "data-upload-error.png"), full_page=True)
    text = message.inner_text()
    assert "Traceback" not in text and "broken.csv" in text
    assert sorted(p.name for p in (workspace / "data").iterdir()) == before  # nothing left behind


def test_compare_from_the_page_opens_its_report(page):
    open_tab(page, "Compare")
    pick(page, "compare-data", "toy2d-ring")
    fill(page, "compare-name", "ring")
    fill(page, "compare-budget", "3s")
    boxes = page.locator("#compare-models")
    for label in ("vae", "dcgan"):  # the defaults off, one fast model on
        boxes.get_by_label(label, exact=True).uncheck()
    boxes.get_by_label("maf", exact=True).check()
    page.locator("#compare-button").click()
    frame = page.frame_locator("#compare-report iframe")
    frame.locator("body").get_by_text("maf").first.wait_for(timeout=TRAINING_SECONDS * 1000)
    page.screenshot(path=str(SHOTS / "compare-report.png"), full_page=True)
    assert "done" in page.locator("#compare-status").inner_text()

"""The pages of `genzoo ui`, built with Gradio over the same library calls the CLI makes.

Data, Train, Runs, Sample, Compare and Apply are tabs of one page. Every button calls one library
function (`genzoo.sample`, `genzoo.anomaly`, ...) or queues one `genzoo` command (training and
compare, in genzoo.ui.jobs); no model logic lives here. A mistake a user can make arrives as a
GenzooError and is shown in the page as its one line; anything else is logged on the server and
shown as "unexpected error", never as a stack trace.
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import pandas as pd
import torch

import genzoo
from genzoo.errors import GenzooError
from genzoo.models import get_model_class, model_names
from genzoo.train.config import SEED_LIMIT, TrainConfig
from genzoo.train.run import RunSpec, new_run_spec
from genzoo.train.trainer import read_metrics
from genzoo.ui.forms import (
    SAMPLE_FIELDS,
    SAMPLERS,
    changed_settings,
    read_option,
    sample_options,
    settings_fields,
)
from genzoo.ui.jobs import JobQueue
from genzoo.ui.workspace import Workspace, safe_name
from genzoo.viz import image_grid, save_samples

LOG = logging.getLogger("genzoo.ui")
KEEP_OUTPUTS = 500  # files kept in outputs/ (the oldest go first), so a busy server's disk stays bounded
SHOWN_PIXELS = 256  # small images (8x8 digits) are enlarged to about this many pixels for the page


def user_errors(fn: Callable) -> Callable:
    """Show a GenzooError (or a file problem) as its message in the page; log anything else."""

    def shown(err: Exception) -> gr.Error:
        if isinstance(err, gr.Error):
            return err
        if isinstance(err, GenzooError):
            return gr.Error(str(err), print_exception=False)
        if isinstance(err, OSError):
            return gr.Error(f"{err.strerror or err}; check the workspace's free space", print_exception=False)
        LOG.exception("unexpected error in %s", fn.__name__)
        return gr.Error("unexpected error; the server's log has the details", print_exception=False)

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def streamed(*args):
            try:
                yield from fn(*args)
            except Exception as err:
                raise shown(err) from None

        return streamed

    @functools.wraps(fn)
    def wrapped(*args):
        try:
            return fn(*args)
        except Exception as err:
            raise shown(err) from None

    return wrapped


def build_app(workspace: Workspace, jobs: JobQueue) -> gr.Blocks:
    """The whole UI as one Blocks app (launched by `genzoo.ui.serve`)."""
    pages = _Pages(workspace, jobs)
    with gr.Blocks(title="genzoo", analytics_enabled=False, delete_cache=(3600, 3600)) as app:
        gr.Markdown(f"# genzoo\nWorkspace: `{workspace.root}`")
        with gr.Tabs():
            tabs = []
            for title, page in (("Data", pages.data_page), ("Train", pages.train_page), ("Runs", pages.runs_page),
                                ("Sample", pages.sample_page), ("Compare", pages.compare_page),
                                ("Apply", pages.apply_page)):  # fmt: skip
                with gr.Tab(title, id=title.lower()) as tab:
                    page()
                tabs.append(tab)
        # A run trained a moment ago is in every list as soon as a page opens.
        for trigger in [*(tab.select for tab in tabs), *(button.click for button in pages.refresh_buttons)]:
            trigger(pages.refresh, outputs=pages.lists())
        app.load(pages.refresh, outputs=pages.lists())
    return app


class _Pages:
    """Each page's widgets and handlers; the run and data lists are shared so all refresh together."""

    def __init__(self, workspace: Workspace, jobs: JobQueue):
        self.ws = workspace
        self.jobs = jobs
        self.data_lists: list[gr.Dropdown] = []
        self.run_lists: list[gr.Dropdown] = []
        self.refresh_buttons: list[gr.Button] = []

    def lists(self) -> list[gr.Dropdown]:
        return [*self.data_lists, *self.run_lists]

    def refresh(self) -> list[Any]:
        """Every data and run list, current; what each shows stays chosen."""
        data, runs = self.ws.data_choices(), self.ws.run_names()
        return [gr.Dropdown(choices=data) for _ in self.data_lists] + [
            gr.Dropdown(choices=runs) for _ in self.run_lists
        ]

    def planned_steps(self, model: str, data_choice: str | None, preset: str) -> int:
        """The steps a new run would train: the preset's or the family's choice for the data."""
        if preset not in (NO_PRESET, *get_model_class(model).presets):
            preset = NO_PRESET  # the model changed before its preset list did
        if not data_choice:
            return TrainConfig.from_dict(dict(get_model_class(model).train_defaults)).max_steps
        chosen = None if preset == NO_PRESET else preset
        spec, _ = new_run_spec(model, self.ws.data_source(data_choice), preset=chosen)
        return spec.train_config().max_steps

    def data_dropdown(self, label: str = "Data", elem_id: str | None = None) -> gr.Dropdown:
        dropdown = gr.Dropdown(
            self.ws.data_choices(), value="digits", label=label, elem_id=elem_id, interactive=True
        )
        self.data_lists.append(dropdown)
        return dropdown

    def run_dropdown(self, elem_id: str) -> gr.Dropdown:
        runs = self.ws.run_names()
        dropdown = gr.Dropdown(
            runs, value=runs[0] if runs else None, label="Run", elem_id=elem_id, interactive=True
        )
        self.run_lists.append(dropdown)
        return dropdown

    def refresh_button(self, elem_id: str) -> None:
        """A button that refreshes every list (wired in build_app, once every list exists)."""
        self.refresh_buttons.append(gr.Button("Refresh lists", size="sm", elem_id=elem_id))

    def output_file(self, stem: str, suffix: str) -> Path:
        """A new file in outputs/ (unique, so requests never share one); old ones are pruned."""
        folder = self.ws.root / "outputs"
        kept = sorted(folder.iterdir(), key=lambda p: p.stat().st_mtime)
        for old in kept[: max(0, len(kept) - KEEP_OUTPUTS)]:
            old.unlink(missing_ok=True)
        return self.ws.inside(folder / f"{safe_name(stem)}-{uuid.uuid4().hex[:8]}{suffix}")

    def run_path(self, name: str | None) -> Path:
        if not name:
            raise GenzooError("pick a run first (train one on the Train page)")
        run = self.ws.folder("runs", name)
        if not (run / "run.json").is_file():
            raise GenzooError(f"'{name}' is not a finished run; pick another or train it")
        return run

    # Data ---------------------------------------------------------------------------------------

    def data_page(self) -> None:
        gr.Markdown("Pick an embedded data set or upload your own: a .zip of a folder of images, WAVs or "
                    "MIDI files, a .csv table or series, a .txt text, a .tsv of pairs, a .mat of piano rolls.")  # fmt: skip
        with gr.Row():
            choice = self.data_dropdown(elem_id="data-choice")
            upload = gr.File(label="Upload", type="filepath", elem_id="data-upload")
        self.refresh_button("data-refresh")
        info = gr.Markdown(elem_id="data-info")
        image = gr.Image(label="Examples", type="filepath", interactive=False, visible=False)
        table = gr.Dataframe(label="First rows", visible=False, interactive=False)
        text = gr.Textbox(label="Beginning", lines=8, visible=False, interactive=False)
        shown = [info, image, table, text]

        @user_errors
        def preview(name: str | None) -> list[Any]:
            if not name:
                return [""] + [gr.update(visible=False)] * 3
            source = self.ws.data_source(name)
            dataset = genzoo.load_dataset(source)
            data = dataset.info
            sizes = ", ".join(f"{k} {len(dataset.split(k))}" for k in dataset.split_names)
            line = (f"**{name}**: {data.modality}, one example {tuple(data.shape)}, "
                    f"{data.levels or 'continuous'} levels, {data.num_classes or 'no'} classes; splits: {sizes}")  # fmt: skip
            picture = self.output_file("preview", ".png")
            save_samples(dataset.split("train").tensors[0][:64], data, picture)
            frame = getattr(dataset, "frames", {}).get("train")
            path = Path(source)
            snippet = path.read_text(errors="replace")[:2000] if path.suffix == ".txt" else None
            return [
                line,
                gr.update(value=str(picture), visible=True)
                if picture.is_file()
                else gr.update(visible=False),
                gr.update(value=frame.head(20), visible=True)
                if frame is not None
                else gr.update(visible=False),
                gr.update(value=snippet, visible=True) if snippet else gr.update(visible=False),
            ]

        @user_errors
        def add(file: str | None) -> list[Any]:
            if not file:
                return [gr.update()] * len(self.data_lists)
            added = self.ws.add_upload(file, Path(file).name)
            choices = self.ws.data_choices()
            gr.Info(f"added {added}")
            return [
                gr.Dropdown(choices=choices, value=added if d is choice else None) for d in self.data_lists
            ]

        choice.change(preview, inputs=choice, outputs=shown)
        upload.upload(add, inputs=upload, outputs=self.data_lists)

    # Train --------------------------------------------------------------------------------------

    def train_page(self) -> None:
        with gr.Row():
            # interactive=True: the Train button that reads them is made at render time, after
            # Gradio has decided which widgets are only ever outputs (and greyed those out).
            model = gr.Dropdown(
                model_names(), value="vae", label="Model", elem_id="train-model", interactive=True
            )
            data = self.data_dropdown(elem_id="train-data")
            preset = gr.Dropdown(
                _preset_choices("vae"),
                value=NO_PRESET,
                label="Preset",
                elem_id="train-preset",
                interactive=True,
            )
            name = gr.Textbox("vae-digits", label="Run name", elem_id="train-name", interactive=True)
        with gr.Row():
            steps = gr.Number(self.planned_steps("vae", "digits", NO_PRESET), precision=0, minimum=1, label="Steps",
                              elem_id="train-steps", interactive=True)  # fmt: skip
            budget = gr.Textbox(
                "", label="or a time budget (90s, 5m, 1h)", elem_id="train-budget", interactive=True
            )
            seed = gr.Number(
                0, precision=0, minimum=0, maximum=SEED_LIMIT - 1, label="Seed", interactive=True
            )
        job = gr.State("")
        timer = gr.Timer(1.0, active=False)

        @gr.render(inputs=model)
        def settings_form(model_name: str) -> None:
            fields = settings_fields(model_name)
            widgets = []
            with gr.Accordion(f"{model_name} settings (defaults from the model; change any)", open=False):
                for field in fields:
                    widgets.append(_widget(field))
            button = gr.Button("Train", variant="primary", elem_id="train-button")

            @user_errors
            def start(
                model_name, data_choice, preset_name, run_name, max_steps, time_budget, seed_value, *values
            ):
                # The planned length is the model's own choice: passing it would count as the
                # user's and drop the schedule chosen with it (genzoo.train.run.LENGTH_SETTINGS).
                planned = self.planned_steps(model_name, data_choice, preset_name)
                queued = self.jobs.submit_training(
                    model_name,
                    self.ws.data_source(data_choice),
                    safe_name(run_name, "run name"),
                    changed_settings(fields, list(values)),
                    max_steps=int(max_steps) if max_steps and int(max_steps) != planned else None,
                    time_budget=time_budget.strip() or None,
                    seed=int(seed_value or 0),
                    preset=None if preset_name == NO_PRESET else preset_name,
                )
                return queued.key, gr.Timer(active=True), _progress_html(self.jobs.status(queued.key))

            button.click(
                start,
                inputs=[model, data, preset, name, steps, budget, seed, *widgets],
                outputs=[job, timer, progress],
                concurrency_limit=None,
            )

        with gr.Row():
            stop = gr.Button("Stop", elem_id="train-stop")
            resume = gr.Button("Resume", elem_id="train-resume")
        progress = gr.HTML(elem_id="train-progress")
        curves = gr.LinePlot(x="step", y="value", color="curve", label="Loss", elem_id="train-curves")
        log = gr.Textbox(label="Log", lines=4, interactive=False)

        @user_errors
        def poll(key: str) -> list[Any]:
            if not key:
                return [gr.Timer(active=False), "", None, ""]
            status = self.jobs.status(key)
            run = self.ws.folder("runs", key.removeprefix("train-"))
            live = status["state"] in ("queued", "running")
            return [gr.Timer(active=live), _progress_html(status), _curves(run), self.jobs.log(key, 6)]

        @user_errors
        def stop_job(key: str) -> str:
            if not key:
                raise GenzooError("no training started from this page")
            return _message(self.jobs.stop(key))

        @user_errors
        def resume_job(run_name: str) -> tuple[str, gr.Timer, str]:
            queued = self.jobs.submit_training("", "", safe_name(run_name, "run name"), {}, resume=True)
            return queued.key, gr.Timer(active=True), _progress_html(self.jobs.status(queued.key))

        @user_errors
        def defaults_for(model_name: str, data_choice: str | None, preset_name: str) -> tuple[int, str]:
            steps = self.planned_steps(model_name, data_choice, preset_name)
            return steps, f"{model_name}-{(data_choice or 'data').removeprefix('upload:')}"

        def presets_for(model_name: str) -> gr.Dropdown:
            return gr.Dropdown(_preset_choices(model_name), value=NO_PRESET)

        model.change(presets_for, inputs=model, outputs=preset)
        for changed in (model, data, preset):
            changed.change(defaults_for, inputs=[model, data, preset], outputs=[steps, name])
        timer.tick(poll, inputs=job, outputs=[timer, progress, curves, log], concurrency_limit=None)
        stop.click(stop_job, inputs=job, outputs=progress)
        resume.click(resume_job, inputs=name, outputs=[job, timer, progress])

    # Runs ---------------------------------------------------------------------------------------

    def runs_page(self) -> None:
        run = self.run_dropdown("runs-run")
        self.refresh_button("runs-refresh")
        with gr.Row():
            curves = gr.Image(label="Curves", type="filepath", interactive=False)
            preview = gr.Image(label="Samples at the end of training", type="filepath", interactive=False)
        card = gr.Markdown(elem_id="runs-card")

        @user_errors
        def show(name: str | None) -> list[Any]:
            if not name:
                return [None, None, "No runs yet: train one on the Train page."]
            path = self.run_path(name)
            readme = path / "README.md"
            return [
                str(path / "curves.png") if (path / "curves.png").is_file() else None,
                str(path / "samples.png") if (path / "samples.png").is_file() else None,
                readme.read_text(errors="replace") if readme.is_file() else "(no model card yet)",
            ]

        run.change(show, inputs=run, outputs=[curves, preview, card])

    # Sample -------------------------------------------------------------------------------------

    def sample_page(self) -> None:
        limit = self.ws.limits.samples_per_request
        with gr.Row():
            run = self.run_dropdown("sample-run")
            n = gr.Number(16, precision=0, minimum=1, maximum=limit, label=f"Samples (up to {limit})",
                          elem_id="sample-n")  # fmt: skip
            seed = gr.Number(
                0, precision=0, minimum=0, maximum=SEED_LIMIT - 1, label="Seed", elem_id="sample-seed"
            )
        self.refresh_button("sample-refresh")
        with gr.Row():
            options = [_option_widget(name) for name in SAMPLE_FIELDS]
        button = gr.Button("Generate", variant="primary", elem_id="sample-button")
        image = gr.Image(label="Samples", type="filepath", interactive=False, elem_id="sample-image")
        table = gr.Dataframe(label="Rows", visible=False, interactive=False, elem_id="sample-table")
        text = gr.Textbox(label="Text", lines=12, visible=False, interactive=False, elem_id="sample-text")
        audio = gr.Audio(label="Audio", type="filepath", visible=False, interactive=False)
        files = gr.File(label="Download", file_count="multiple", interactive=False, elem_id="sample-files")

        def show_options(name: str | None) -> list[Any]:
            try:
                taken = sample_options(RunSpec.read(self.run_path(name)).model) if name else ()
            except GenzooError:
                taken = ()
            return [gr.update(visible=field in taken) for field in SAMPLE_FIELDS]

        @user_errors
        def draw(name, count, seed_value, *values):
            run_dir = self.run_path(name)
            count, seed_value = int(count or 0), int(seed_value or 0)
            if not 1 <= count <= limit:
                raise GenzooError(f"ask for 1 to {limit} samples per request on this server")
            model = RunSpec.read(run_dir).model
            taken = sample_options(model)
            given = {
                k: v
                for k, v in zip(SAMPLE_FIELDS, values, strict=True)
                if k in taken and str(v or "").strip()
            }
            chosen = {k: read_option(k, v) for k, v in given.items()}
            output = get_model_class(model).output
            hidden = gr.update(value=None, visible=False)
            nothing = {image: hidden, table: hidden, text: hidden, audio: hidden, files: None}
            if output == "text":
                yield from self._stream_text(run_dir, name, count, seed_value, chosen, nothing, text, files)
                return
            suffix = {"table": ".csv", "audio": ".wav", "piano-roll": ".mid", "series": ".csv"}.get(
                output, ".png"
            )
            out = self.output_file(f"{name}-seed{seed_value}", suffix)
            result = genzoo.sample(run_dir, count, seed=seed_value, out=out, quiet=True, **chosen)
            shown = {**nothing, files: [str(out)]}
            if output == "table":
                shown[table] = gr.update(value=result.head(50), visible=True)
            elif output == "audio":
                shown[audio] = gr.update(value=str(out), visible=True)
            elif output == "tensor":
                array = out.with_suffix(".npy")
                np.save(array, result.numpy())
                shown[files] = [str(out), str(array)] if out.is_file() else [str(array)]
                if out.is_file():  # vectors other than 2-d points have no picture
                    shown[image] = gr.update(value=str(out), visible=True)
            if output in ("series", "piano-roll"):
                picture = out.with_suffix(".png")
                save_samples(
                    torch.as_tensor(np.asarray(result)), RunSpec.read(run_dir).load_data().info, picture
                )
                shown[image] = gr.update(value=str(picture), visible=True)
            yield shown

        run.change(show_options, inputs=run, outputs=options)
        button.click(draw, inputs=[run, n, seed, *options], outputs=[image, table, text, audio, files])

    def _stream_text(self, run_dir, name, count, seed_value, chosen, nothing, text, files):
        """Text models: one sample is shown as it is generated; several at once when done."""
        out = self.output_file(f"{name}-seed{seed_value}", ".txt")
        pieces: list[str] = []
        done: dict[str, Any] = {}
        streams = (
            count == 1
            and "stream" in inspect.signature(get_model_class(RunSpec.read(run_dir).model).sample).parameters
        )

        def generate() -> None:
            try:
                extra = {"stream": pieces.append} if streams else {}
                done["samples"] = genzoo.sample(
                    run_dir, count, seed=seed_value, out=out, quiet=True, **chosen, **extra
                )
            except Exception as err:  # handed to the request's thread, which shows it
                done["error"] = err

        worker = threading.Thread(target=generate, daemon=True)
        worker.start()
        prompt = chosen.get("prompt", "")
        while worker.is_alive():
            worker.join(0.2)
            if pieces:
                yield {**nothing, text: gr.update(value=prompt + "".join(pieces), visible=True)}
        if "error" in done:
            raise done["error"]
        shown = prompt + "".join(pieces) if pieces else "\n\n----\n\n".join(done["samples"])
        yield {**nothing, text: gr.update(value=shown, visible=True), files: [str(out)]}

    # Compare ------------------------------------------------------------------------------------

    def compare_page(self) -> None:
        with gr.Row():
            data = self.data_dropdown(elem_id="compare-data")
            name = gr.Textbox("compare-digits", label="Report name", elem_id="compare-name")
            budget = gr.Textbox("30s", label="Time budget per model", elem_id="compare-budget")
        models = gr.CheckboxGroup(
            model_names(), value=["vae", "dcgan"], label="Models", elem_id="compare-models"
        )
        button = gr.Button("Start", variant="primary", elem_id="compare-button")
        job = gr.State("")
        timer = gr.Timer(2.0, active=False)
        status = gr.HTML(elem_id="compare-status")
        log = gr.Textbox(label="Log", lines=6, interactive=False)
        report = gr.HTML(elem_id="compare-report")

        @user_errors
        def start(data_choice, report_name, time_budget, chosen):
            queued = self.jobs.submit_compare(
                self.ws.data_source(data_choice), list(chosen or []), safe_name(report_name, "report name"),
                time_budget.strip() or "30s",
            )  # fmt: skip
            return queued.key, gr.Timer(active=True), _progress_html(self.jobs.status(queued.key)), ""

        @user_errors
        def poll(key: str) -> list[Any]:
            status_now = self.jobs.status(key)
            live = status_now["state"] in ("queued", "running")
            index = self.ws.folder("reports", key.removeprefix("compare-")) / "index.html"
            link = ""
            if index.is_file() and not live:
                url = f"/gradio_api/file={index}"
                link = (f'<p><a href="{url}" target="_blank">Open the report</a></p>'
                        f'<iframe src="{url}" style="width:100%;height:720px;border:1px solid #ccc"></iframe>')  # fmt: skip
            return [gr.Timer(active=live), _progress_html(status_now), self.jobs.log(key, 10), link]

        button.click(start, inputs=[data, name, budget, models], outputs=[job, timer, status, report])
        timer.tick(poll, inputs=job, outputs=[timer, status, log, report], concurrency_limit=None)

    # Apply --------------------------------------------------------------------------------------

    def apply_page(self) -> None:
        with gr.Tab("Inpaint"):
            self._inpaint_tab()
        with gr.Tab("Anomalies"):
            self._anomaly_tab()
        with gr.Tab("Compress"):
            self._compress_tab()
        with gr.Tab("Forecast"):
            self._forecast_tab()

    def _inpaint_tab(self) -> None:
        gr.Markdown(
            "Load a test image of the run's data, paint over the pixels to fill, press Fill (DDPM runs)."
        )
        with gr.Row():
            run = self.run_dropdown("inpaint-run")
            index = gr.Number(0, precision=0, minimum=0, label="Test image number")
            seed = gr.Number(0, precision=0, minimum=0, maximum=SEED_LIMIT - 1, label="Seed")
        load = gr.Button("Load image")
        editor = gr.ImageEditor(label="Paint the pixels to fill", type="numpy", image_mode="RGBA", layers=False,
                                sources=(), brush=gr.Brush(colors=["#ff0000"], color_mode="fixed"))  # fmt: skip
        fill = gr.Button("Fill", variant="primary")
        result = gr.Image(label="Original | filled", type="numpy", interactive=False)

        def image_of(name: str, number: int) -> tuple[torch.Tensor, Any]:
            data = RunSpec.read(self.run_path(name)).load_data()
            images = data.split("test").tensors[0]
            if data.info.modality != "image":
                raise GenzooError(f"run '{name}' was not trained on images")
            if not 0 <= int(number) < len(images):
                raise GenzooError(f"the test split has {len(images)} images: pick 0 to {len(images) - 1}")
            return images[int(number)], data.info

        @user_errors
        def load_image(name: str, number: int) -> dict[str, Any]:
            x, info = image_of(name, number)
            return {"background": _enlarged(x[None], info), "layers": [], "composite": None}

        @user_errors
        def fill_image(name: str, number: int, seed_value: int, painted: dict[str, Any] | None) -> np.ndarray:
            x, info = image_of(name, number)
            layers = (painted or {}).get("layers") or []
            if not layers or not any(layer[..., 3].any() for layer in layers):
                raise GenzooError("paint over the pixels to fill first")
            strokes = np.maximum.reduce([layer[..., 3] for layer in layers]) > 0
            h, w = x.shape[-2:]
            blocks = strokes[: h * (strokes.shape[0] // h), : w * (strokes.shape[1] // w)]
            mask = blocks.reshape(h, blocks.shape[0] // h, w, blocks.shape[1] // w).any(axis=(1, 3))
            filled = genzoo.inpaint(self.run_path(name), x, mask, seed=int(seed_value or 0), quiet=True)
            return _enlarged(torch.stack([x, filled[0]]), info)

        load.click(load_image, inputs=[run, index], outputs=editor)
        fill.click(fill_image, inputs=[run, index, seed, editor], outputs=result)

    def _anomaly_tab(self) -> None:
        with gr.Row():
            run = self.run_dropdown("anomaly-run")
            data = self.data_dropdown("Data to score", elem_id="anomaly-data")
            split = gr.Dropdown(["test", "val", "train", "all"], value="test", label="Split")
        with gr.Row():
            score = gr.Dropdown(["auto"], value="auto", label="Score", allow_custom_value=True)
            contamination = gr.Number(0.05, minimum=0.0001, maximum=0.4999, label="Contamination")
        button = gr.Button("Score", variant="primary", elem_id="anomaly-button")
        summary = gr.JSON(label="Summary")
        with gr.Row():
            histogram = gr.Image(label="Scores", type="filepath", interactive=False)
            extremes = gr.Image(label="Most (top) and least anomalous", type="filepath", interactive=False)
        files = gr.File(label="Scores (CSV)", interactive=False)

        def scores_of(name: str | None) -> gr.Dropdown:
            try:
                kinds = get_model_class(RunSpec.read(self.run_path(name)).model).score_kinds()
            except GenzooError:
                kinds = ()
            return gr.Dropdown(choices=["auto", *kinds], value="auto")

        @user_errors
        def run_scores(name, data_choice, split_name, kind, share):
            out = self.output_file(f"{name}-scores", ".csv")
            report = genzoo.anomaly(
                self.run_path(name), self.ws.data_source(data_choice), split=split_name, score=kind,
                contamination=float(share), out=out, quiet=True,
            )  # fmt: skip
            pictures = [out.with_name(f"{out.stem}_{part}.png") for part in ("histogram", "extremes")]
            return [report.summary, *(str(p) if p.is_file() else None for p in pictures), str(out)]

        run.change(scores_of, inputs=run, outputs=score)
        button.click(run_scores, inputs=[run, data, split, score, contamination],
                     outputs=[summary, histogram, extremes, files])  # fmt: skip

    def _compress_tab(self) -> None:
        with gr.Row():
            run = self.run_dropdown("compress-run")
            data = self.data_dropdown("Data to compress", elem_id="compress-data")
            split = gr.Dropdown(["test", "val", "train", "all"], value="test", label="Split")
        button = gr.Button("Compress", variant="primary")
        summary = gr.JSON(label="Sizes")
        packed = gr.File(label="Compressed file (.gzoo)", interactive=False)
        gr.Markdown("Decompress: upload a .gzoo made with the run above.")
        upload = gr.File(label=".gzoo file", type="filepath", file_types=[".gzoo"])
        unpack = gr.Button("Decompress")
        unpacked = gr.File(label="Decompressed (.npy)", interactive=False)

        @user_errors
        def compress(name, data_choice, split_name):
            out = self.output_file(f"{name}-{split_name}", ".gzoo")
            result = genzoo.compress(self.run_path(name), self.ws.data_source(data_choice), split=split_name,
                                     out=out, quiet=True)  # fmt: skip
            return result.summary(), str(out)

        @user_errors
        def decompress(name, file):
            if not file:
                raise GenzooError("upload a .gzoo file first")
            out = self.output_file(f"{name}-decompressed", ".npy")
            genzoo.decompress(self.run_path(name), file, out=out, quiet=True)
            return str(out)

        button.click(compress, inputs=[run, data, split], outputs=[summary, packed])
        unpack.click(decompress, inputs=[run, upload], outputs=unpacked)

    def _forecast_tab(self) -> None:
        with gr.Row():
            run = self.run_dropdown("forecast-run")
            data = self.data_dropdown("Series (the run's own if it is the same)", elem_id="forecast-data")
            horizon = gr.Number(12, precision=0, minimum=1, label="Horizon (steps)")
            paths = gr.Number(200, precision=0, minimum=10, maximum=2000, label="Sample paths")
        button = gr.Button("Forecast", variant="primary")
        fan = gr.Image(label="Fan chart", type="filepath", interactive=False)
        table = gr.Dataframe(label="Quantiles", interactive=False)
        files = gr.File(label="Forecast (CSV)", interactive=False)

        @user_errors
        def run_forecast(name, data_choice, steps, samples):
            out = self.output_file(f"{name}-forecast", ".csv")
            result = genzoo.forecast(self.run_path(name), self.ws.data_source(data_choice), horizon=int(steps),
                                     samples=int(samples), out=out, quiet=True)  # fmt: skip
            charts = [f for f in result.summary.get("files", []) if str(f).endswith(".png")]
            return (charts[0] if charts else None), result.frame.head(200), str(out)

        button.click(run_forecast, inputs=[run, data, horizon, paths], outputs=[fan, table, files])


NO_PRESET = "(none: the model's defaults)"


def _preset_choices(model: str) -> list[str]:
    """The Train page's presets for `model` (`genzoo list --presets`), after the defaults."""
    return [NO_PRESET, *sorted(get_model_class(model).presets)]


def _widget(field) -> gr.components.Component:
    label = f"{field.name} ({field.scope})"
    if field.kind == "choice":
        return gr.Dropdown(list(field.choices), value=field.default, label=label)
    if field.kind == "bool":
        return gr.Checkbox(value=field.default, label=label)
    if field.kind in ("int", "float"):
        return gr.Number(value=field.default, precision=0 if field.kind == "int" else None, label=label)
    return gr.Textbox(value=field.shown(), label=label + (" (YAML)" if field.kind == "yaml" else ""))


def _option_widget(name: str) -> gr.components.Component:
    """Blank means "the model's default" (a number box cannot be blank, so options are text boxes)."""
    if name == "sampler":
        return gr.Dropdown(["", *SAMPLERS], value="", label=name, visible=False, interactive=True)
    return gr.Textbox("", label=name, placeholder="the model's default", visible=False, interactive=True)


def _progress_html(status: dict[str, Any]) -> str:
    """A progress bar and one line: state, step of total, percent, and the job's last message."""
    percent = status.get("percent")
    parts = [status["state"]]
    if status.get("step") is not None:
        parts.append(f"step {status['step']}" + (f" / {status['total']}" if status.get("total") else ""))
    if percent is not None:
        parts.append(f"{percent:.0f}%")
    bar = f'<progress max="100" value="{percent or 0:.0f}" style="width:100%"></progress>'
    message = f"<div>{_escape(status['message'])}</div>" if status.get("message") else ""
    return f'<div class="genzoo-progress" data-state="{status["state"]}">{bar}<b>{" · ".join(parts)}</b>{message}</div>'


def _message(text: str) -> str:
    return f"<div>{_escape(text)}</div>"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _curves(run: Path) -> pd.DataFrame | None:
    """The training loss and validation loss against step, long format for a LinePlot."""
    rows = []
    for record in read_metrics(run / "metrics.jsonl"):
        for key in ("loss", "val_loss"):
            if isinstance(record.get(key), (int, float)):
                rows.append({"step": record["step"], "value": float(record[key]), "curve": key})
    return pd.DataFrame(rows) if rows else None


def _enlarged(images: torch.Tensor, info: Any) -> np.ndarray:
    """Images side by side as RGBA, enlarged by a whole factor so small ones can be seen and painted."""
    grid = image_grid(images, info.low, info.high, ncol=len(images), pad=0)
    grid = np.repeat(grid[..., None], 3, axis=-1) if grid.ndim == 2 else grid
    scale = max(1, SHOWN_PIXELS // images.shape[-2])
    grid = grid.repeat(scale, axis=0).repeat(scale, axis=1)
    return np.concatenate([grid, np.full(grid.shape[:2] + (1,), 255, np.uint8)], axis=-1)

"""What every benchmark records beside its numbers: the machine, versions, and where the JSON goes."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import torch

import genzoo
from genzoo.errors import GenzooError

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "genzoo": genzoo.__version__,
        "commit": commit,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def save(name: str, result: dict) -> Path:
    """Write RESULTS/name.json (with the machine) and print it."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {**result, "machine": machine()}
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(json.dumps(payload, indent=2))
    print(f"saved {path}")
    return path


def earlier_runs(name: str) -> dict:
    """The "runs" of RESULTS/name.json, so a script that evaluates a few runs at a time keeps the
    ones earlier (or concurrent) invocations saved."""
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()).get("runs", {}) if path.is_file() else {}


def logged_train_seconds(run: Path) -> float | None:
    """Training wall time the Trainer logged in RUN/metrics.jsonl (carried across resumes), so a
    reused run still reports what it cost."""
    log = run / "metrics.jsonl"
    if not log.is_file():
        return None
    times = [json.loads(line).get("time") for line in log.read_text().splitlines()]
    return max((t for t in times if t is not None), default=None)


def save_grid(name: str, images: torch.Tensor, low: float, high: float, ncol: int) -> Path:
    """Write RESULTS/name.png, a grid of images for the README."""
    from genzoo.viz import save_image_grid

    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.png"
    save_image_grid(images, path, low, high, ncol=ncol)
    return path


def half_completions(run: Path, data, n: int, seeds: list[int], candidates: int, grid: str) -> dict:
    """Give a PixelCNN run the top half of the first `n` test images and let it draw the bottom
    half, judged by genzoo's domain classifier:

    - `label_agreement`: exact samples of p(bottom | top), the mean over sampling `seeds` (each
      seed's figure in `label_agreement_by_seed` when there are several);
    - mode-seeking, first seed only: a conditional model completes with its most probable label
      given the top half (and reports its mean p(true label | top half)); an unconditional one
      keeps the most probable of `candidates` draws when `candidates` > 1.

    `top_half_svc_estimate` is a yardstick for exact samples of the true p(bottom | top) on the
    same images (see that function). Writes RESULTS/grid.png (rows: the real images, their given
    top halves, the first seed's exact-sampling completions)."""
    from genzoo.metrics import classifier_cache_dir, domain_classifier_for
    from genzoo.models import load

    model = load(run)
    classifier = domain_classifier_for(data, classifier_cache_dir())
    x, y = (t[:n] for t in data.split("test").tensors)
    half = x.shape[-2] // 2
    known = torch.zeros(x.shape[-2:], dtype=torch.bool)
    known[:half] = True

    def agreement(images: torch.Tensor) -> float:
        return round(float((classifier.predict(images) == y).float().mean()), 4)

    def completed(seed: int, **options) -> torch.Tensor:
        return model.complete(x, known, generator=torch.Generator().manual_seed(seed), **options)

    first = completed(seeds[0])
    shown = x[:10].clone()
    shown[..., half:, :] = data.info.low
    save_grid(grid, torch.cat([x[:10], shown, first[:10]]), data.info.low, data.info.high, ncol=10)
    by_seed = [agreement(first)] + [agreement(completed(seed)) for seed in seeds[1:]]
    result = {
        "n": len(x),
        "given": f"top half (rows 0-{half - 1})",
        "label_agreement": round(sum(by_seed) / len(by_seed), 4),
    }
    if len(seeds) > 1:
        result["label_agreement_by_seed"] = dict(zip(map(str, seeds), by_seed, strict=True))
    if model.config.conditional:
        posterior = model.label_posterior(x, known)
        result["model_top_half_label_probability"] = round(float(posterior[range(len(y)), y].mean()), 4)
        result["label_agreement_most_probable_label"] = agreement(
            completed(seeds[0], label=posterior.argmax(1))
        )
    elif candidates > 1:
        result[f"label_agreement_most_probable_of_{candidates}"] = agreement(
            completed(seeds[0], candidates=candidates)
        )
    return {
        **result,
        "classifier_accuracy_on_real": agreement(x),
        "top_half_svc_estimate": top_half_svc_estimate(data, x, y),
    }


def top_half_svc_estimate(data, x: torch.Tensor, y: torch.Tensor) -> float:
    """An estimate of how often exact samples of the true p(bottom | top) would show the true digit:
    the mean probability of the true class given only the top half, from a calibrated SVC fitted on
    train + val top halves. It is only as sharp as that SVC: a model whose p(digit | top) is better
    informed can score above it."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import SVC

    half = x.shape[-2] // 2

    def top(images: torch.Tensor):
        return images[..., :half, :].flatten(1).float().numpy()

    fit_x, fit_y = zip(*(data.split(s).tensors for s in ("train", "val")), strict=True)
    model = CalibratedClassifierCV(SVC(C=10.0), method="isotonic", ensemble=False)
    model.fit(top(torch.cat(fit_x)), torch.cat(fit_y).numpy())
    probs = model.predict_proba(top(x))
    return round(float(probs[range(len(y)), y.numpy()].mean()), 4)


def train_unless_reused(
    model: str,
    data: str,
    run: Path,
    settings: dict,
    reuse: bool,
    device: str = "auto",
    preset: str | None = None,
) -> Path:
    """Train `model` on `data` into `run` from scratch (with the family's `preset`, if named, under
    `settings`), or keep the finished run there when `reuse` (the benchmarks' --reuse: evaluate again
    without retraining) and it was trained with these settings: a run left by another configuration
    is trained again, not scored as this one."""
    import shutil

    from genzoo.models import get_model_class
    from genzoo.train import train

    wanted = {**(get_model_class(model).preset(preset).settings if preset else {}), **settings}
    if not (reuse and (run / "model.safetensors").is_file() and _trained_with(run, model, data, wanted)):
        shutil.rmtree(run, ignore_errors=True)
        train(model, data, run, settings, device=device, quiet=True, preset=preset)
    return run


def _trained_with(run: Path, model: str, data: str, settings: dict) -> bool:
    """Whether the run was trained with this model, data and every one of these settings: recorded in
    RUN/run.json, or left at a default that has that value (a seed of 0 the CLI did not record)."""
    from genzoo.train.run import RunSpec

    try:
        spec = json.loads((run / "run.json").read_text())
        effective = {
            "model_settings": json.loads((run / "config.json").read_text())["config"],
            "train_settings": RunSpec.read(run).train_config().to_dict(),
        }
    except (OSError, ValueError, KeyError, GenzooError):
        return False
    recorded = {}
    for scope, key in (("data", "data_options"), ("model", "model_settings"), ("train", "train_settings")):
        values = {**effective.get(key, {}), **spec.get(key, {})}
        recorded.update(values)
        recorded.update({f"{scope}.{k}": v for k, v in values.items()})  # dotted --set names
    same = all(json.dumps(recorded.get(k)) == json.dumps(v) for k, v in settings.items())
    return spec.get("model") == model and spec.get("data") == str(data) and same

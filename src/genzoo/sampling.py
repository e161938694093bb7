"""`genzoo sample` and `genzoo inpaint` as library calls: draw from a trained run, return what was
drawn, and write it to a file only when asked.

>>> images = genzoo.sample("runs/vae", 16, seed=0)                       # doctest: +SKIP
>>> texts = genzoo.sample("runs/gpt", 2, prompt="ROMEO:", out="s.txt")   # doctest: +SKIP
>>> filled = genzoo.inpaint("runs/ddpm", split="test", n=8, mask="bottom-half")  # doctest: +SKIP
"""

from __future__ import annotations

import inspect
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from genzoo.data.media import MEDIA_SUFFIXES, media_options, write_media
from genzoo.errors import GenzooError
from genzoo.files import check_writable
from genzoo.memory import FLOAT_BYTES, check_fits
from genzoo.models.base import atomic_write_text
from genzoo.progress import reporting
from genzoo.train.run import RunSpec, load_run

MASK_REGIONS = ("bottom-half", "top-half", "left-half", "right-half", "center")
ARRAY_SUFFIXES = (".png", ".npy")
TABLE_SUFFIXES = (".csv", ".tsv")
SERIES_SUFFIXES = (".npy", ".csv", ".png")
# Option names whose command-line flag is spelled otherwise, for error messages.
FLAGS = {"inputs": "--input"}


def sample(
    run: str | Path,
    n: int | None = None,
    *,
    seed: int = 0,
    device: str = "auto",
    out: str | Path | None = None,
    seconds: float | None = None,
    primer: str | Path | None = None,
    quiet: bool = False,
    **options: Any,
) -> torch.Tensor | list[str] | pd.DataFrame:
    """`n` samples of a trained run (default 64, or 1 for text models), seeded: a tensor in the
    data's units, strings for text models, a DataFrame for table models. `out` also writes them:
    .png (grid or scatter), .npy, .mid or .wav (music, audio), .txt (text), .csv or .tsv (tables). `options` go to the model's `sample()`
    (temperature, sampler, steps, label, prompt, ...); one it does not take is a GenzooError.
    Long sampling loops show progress on stderr unless `quiet`."""
    if n is not None and n <= 0:
        raise GenzooError("-n must be a positive number of samples")
    out = Path(out) if out is not None else None
    if out is not None:
        check_out_file(out)
    model, spec = load_run(run, device=device)
    check_options(model.sample, options, spec.model)
    if model.output == "table" and out is not None and out.suffix.lower() not in TABLE_SUFFIXES:
        raise GenzooError(f"--out for a table model must end in .csv or .tsv, got '{out.name}'")
    if model.output == "series" and out is not None and out.suffix.lower() not in SERIES_SUFFIXES:
        raise GenzooError(f"--out for a series model must end in .npy, .csv or .png, got '{out.name}'")
    text = is_text(spec)
    n = n or (1 if text else 64)
    # The samples, and about as much again in the network's activations while drawing them.
    check_fits(
        2 * FLOAT_BYTES * n * math.prod(model.config.data_shape),
        f"drawing {n} samples",
        "ask for fewer with -n",
    )
    if text and (seconds is not None or primer is not None):
        flag = "--seconds" if seconds is not None else "--primer"
        raise GenzooError(f"model '{spec.model}' does not take {flag} (audio and music models do)")
    if text and out is not None and out.suffix.lower() != ".txt":
        raise GenzooError(f"--out for a text model must end in .txt, got '{out.name}'")
    if not text and out is not None and model.output == "tensor" and out.suffix.lower() not in MEDIA_SUFFIXES:
        check_array_suffix(out)  # .mid and .wav are checked against the data by write_media
    if seconds is not None or primer is not None:
        options.update(media_options(model, spec.load_data(), seconds, Path(primer) if primer else None))
    generator = torch.Generator(device=model.device).manual_seed(seed)
    with reporting(f"sample {spec.model}", quiet):
        samples = model.sample(n, generator=generator, **options)
    if not text:
        samples = samples.cpu()
    if model.output == "table":
        return _table_samples(model, samples, out)
    if model.output == "series":
        return _series_samples(model, samples, out)
    if out is not None:
        write_samples(samples, spec, out)
    return samples


def _table_samples(model, rows: torch.Tensor, out: Path | None) -> pd.DataFrame:
    """Rows as a DataFrame with the input's columns, dtypes and categories; `attrs["where"]` says
    how many rows had a condition's value set directly (see genzoo.models.tabular)."""
    frame = model.schema.decode(rows)
    frame.attrs["where"] = dict(model.last_where_report)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        text = frame.to_csv(index=False, sep="\t" if out.suffix.lower() == ".tsv" else ",")
        atomic_write_text(out, text)
    return frame


def _series_samples(model, windows: torch.Tensor, out: Path | None) -> torch.Tensor:
    """Windows (n, L, F) back in the series' own units (the run's scaler undone); `out` writes them as
    .npy, as a long CSV (window, step, one column per feature) or as a plot of the first few."""
    schema = model.schema
    values = torch.as_tensor(schema.unscale(windows.double().numpy())) if schema else windows.double()
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        suffix = out.suffix.lower()
        if suffix == ".npy":
            np.save(out, values.numpy())
        elif suffix == ".csv":
            n, length, count = values.shape
            names = schema.features if schema else [f"f{j}" for j in range(count)]
            frame = pd.DataFrame(values.reshape(n * length, count).numpy(), columns=names)
            frame.insert(0, "step", np.tile(np.arange(length), n))
            frame.insert(0, "window", np.repeat(np.arange(n), length))
            atomic_write_text(out, frame.to_csv(index=False))
        else:
            from genzoo.viz import save_traces

            save_traces(values.float(), out, "series")
    return values.float()


def inpaint(
    run: str | Path,
    images: torch.Tensor | np.ndarray | None = None,
    mask: str | torch.Tensor | np.ndarray = "bottom-half",
    *,
    split: str | None = None,
    n: int = 16,
    seed: int = 0,
    device: str = "auto",
    out: str | Path | None = None,
    quiet: bool = False,
    **options: Any,
) -> torch.Tensor:
    """Fill the masked pixels of `images` ((N, C, H, W) or (C, H, W), data units), or of the first
    `n` images of the run's `split`. `mask`: a region name (`MASK_REGIONS`), a .npy path or an
    (H, W) boolean array, True where pixels are filled. `out` also writes them (.png or .npy).
    Progress on stderr unless `quiet`."""
    out = Path(out) if out is not None else None
    if out is not None:
        check_array_suffix(out)
        check_out_file(out)
    model, spec = load_run(run, device=device)
    if not model.can_inpaint:
        raise GenzooError(f"model '{spec.model}' cannot inpaint; train a ddpm")
    if images is None:
        if split is None:
            raise GenzooError("give images to fill, or --split to take the first -n images of the run's data")
        if n <= 0:
            raise GenzooError("-n must be a positive number of images")
        images = spec.load_data().split(split).tensors[0][:n]
    images = torch.as_tensor(images).float()
    if images.dim() == 3:
        images = images.unsqueeze(0)
    mask = (
        region_mask(mask, tuple(images.shape[-2:])) if isinstance(mask, str) else torch.as_tensor(mask).bool()
    )
    check_options(model.inpaint, options, spec.model)
    generator = torch.Generator(device=model.device).manual_seed(seed)
    with reporting(f"inpaint {spec.model}", quiet):
        filled = model.inpaint(images, mask, generator=generator, **options).cpu()
    if out is not None:
        write_samples(filled, spec, out)
    return filled


def region_mask(region: str, size: tuple[int, int]) -> torch.Tensor:
    """An (H, W) boolean mask, True where pixels are filled: a named region or a .npy file."""
    h, w = size
    mask = torch.zeros(h, w, dtype=torch.bool)
    if region == "bottom-half":
        mask[h // 2 :] = True
    elif region == "top-half":
        mask[: h // 2] = True
    elif region == "left-half":
        mask[:, : w // 2] = True
    elif region == "right-half":
        mask[:, w // 2 :] = True
    elif region == "center":
        mask[h // 4 : h - h // 4, w // 4 : w - w // 4] = True
    elif region.endswith(".npy"):
        mask = torch.from_numpy(read_npy(Path(region))).bool()
    else:
        raise GenzooError(f"--mask must be one of {', '.join(MASK_REGIONS)} or a .npy file, got '{region}'")
    return mask


def read_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise GenzooError(f"cannot read '{path}' as a .npy array ({err})") from err


def is_text(spec: RunSpec) -> bool:
    from genzoo.models import get_model_class

    return get_model_class(spec.model).output == "text"


def check_options(method, options: dict[str, Any], model_name: str) -> None:
    """Every option must be a parameter of the model's method: none is silently ignored."""
    accepted = inspect.signature(method).parameters
    for key in options:
        if key not in accepted:
            flag = FLAGS.get(key, f"--{key.replace('_', '-')}")
            raise GenzooError(f"model '{model_name}' does not take {flag}")


def check_out_file(out: Path) -> None:
    if out.is_dir():
        raise GenzooError(f"--out '{out}' is a directory; give a file name such as samples.png")
    check_writable(out, "--out")


def check_array_suffix(out: Path) -> None:
    if out.suffix.lower() not in ARRAY_SUFFIXES:
        raise GenzooError(f"--out must end in .png or .npy, got '{out.name}'")


def write_samples(samples: torch.Tensor | list[str], spec: RunSpec, out: Path) -> None:
    """By suffix: .txt (text), .npy (raw), .mid/.wav (music, audio), else a PNG grid or scatter."""
    from genzoo.viz import save_samples

    out.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(samples, list):
        out.write_text("\n".join(samples) + "\n")
    elif out.suffix.lower() == ".npy":
        np.save(out, samples.numpy())
    elif out.suffix.lower() in MEDIA_SUFFIXES:
        write_media(samples, spec.load_data(), out)
    else:
        save_samples(samples, spec.load_data().info, out)

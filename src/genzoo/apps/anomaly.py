"""`genzoo anomaly`: any trained run as an anomaly / out-of-distribution detector.

A score per example, higher for what looks less like the training data, from whatever the model
offers through the contract (`score_kinds`, `anomaly_score`, `anomaly_map`):

- `nll`: -log p(x) (exact, a bound or an estimate, as the family has it); per token for text and
  per frame for music, so that a long line or piece is not an anomaly for its length alone.
- `reconstruction` (VAEs), `critic` (GANs), `denoising` (diffusion), `mahalanobis` (the Gaussian
  copula): the family's own scores.
- Three corrections of the NLL for the failure Nalisnick et al. (2019) showed, that a model of one
  data set can give a simpler, different one a *higher* likelihood:
  - `likelihood-ratio` (Ren et al. 2019): nll minus the nll of a background model (a run trained on
    the same data with a share of its values replaced by noise, `--set data.mutation=0.2`), which
    explains away what is common to all inputs (smooth backgrounds, few strokes). Several background
    runs act as one, their equal-weight mixture: each explains away what it models best (a general-
    domain background the smoothness of natural images, a mutated twin the training data's own).
  - `complexity` (Serra et al. 2020): the NLL in bits minus the bits of a lossless PNG of the
    image, i.e. how much better the model codes x than a generic compressor does.
  - `typicality` (Nalisnick et al. 2019b, per example): how far the NLL is from the mean NLL of
    held-out training-like data, in either direction: too likely is as suspicious as too unlikely.

A threshold turns scores into flags: by default the 95th percentile of the run's own validation
split (5% of normal data flagged), `fpr=` another share, or `contamination=` the share of the
scored data expected to be anomalous (PyOD's convention).

>>> report = genzoo.anomaly("runs/vae-0", "digits", split="test", out="scores.csv")  # doctest: +SKIP
>>> report.summary["auroc"]  # when labels were given or the run was trained on some classes only
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from genzoo.data import Dataset, load_dataset
from genzoo.data.music import frame_mask
from genzoo.data.options import parse_classes, without_common
from genzoo.data.tabular import TABLE_SUFFIXES, read_table
from genzoo.errors import GenzooError, unknown_name
from genzoo.files import check_writable, read_utf8
from genzoo.metrics.anomaly import detection_metrics
from genzoo.models.base import GenerativeModel
from genzoo.progress import reporting, track
from genzoo.train.run import RunSpec, load_run

CORRECTIONS = ("likelihood-ratio", "typicality", "complexity")  # built on "nll"
SCORES = ("auto", "nll", *CORRECTIONS, "reconstruction", "critic", "denoising", "mahalanobis")
DEFAULT_FPR = 0.05
SPLITS = ("all", "train", "val", "test")
LN2 = math.log(2.0)
# `auto` corrects an image model's NLL by a PNG's size from 16x16 pixels up: on 8x8 digits a PNG is
# mostly its fixed overhead, and the correction lowered one-class AUROC (benchmarks/anomaly_oneclass.py).
MIN_PNG_PIXELS = 256
Examples = torch.Tensor | list[torch.Tensor]  # a batch, or lines of text of different lengths


# ---- scoring ---------------------------------------------------------------------------------
Background = GenerativeModel | Sequence[GenerativeModel] | None  # one background run, or a mixture


def mixture_nll(nlls: np.ndarray) -> np.ndarray:
    """-log of the equal mixture (1/K) sum_k p_k(x), from the K models' NLLs (K, N); one model: its NLL."""
    return math.log(len(nlls)) - np.logaddexp.reduce(-nlls, axis=0)


def _as_list(background: Background) -> list[GenerativeModel]:
    if background is None:
        return []
    return [background] if isinstance(background, GenerativeModel) else list(background)


def choose_score(model: GenerativeModel, background: Background = None) -> tuple[str, str]:
    """The score `auto` means for `model`, and why. A diffusion model's likelihood is a bound summed
    over all its noise levels (a thousand network passes per example): its denoising score is used."""
    kinds = model.score_kinds()
    if "nll" in kinds and _as_list(background):
        return "likelihood-ratio", "a background run was given: nll minus its nll (Ren et al. 2019)"
    shape = tuple(model.config.data_shape)
    usable = "nll" in kinds and model.log_prob_kind != "bound"
    if usable and model.config.data_levels and len(shape) == 3 and shape[1] * shape[2] >= MIN_PNG_PIXELS:
        return "complexity", (
            "an image model with a likelihood: its NLL in bits minus a PNG's (Serra et al. 2020) does not "
            "favour simple images the way the raw likelihood does"
        )
    if usable:
        return "nll", f"the model's {model.log_prob_kind} negative log-likelihood"
    for kind, why in (
        ("reconstruction", "the autoencoder's reconstruction error in its own likelihood"),
        ("denoising", "the diffusion model's error in predicting the noise, over several noise levels"),
        ("mahalanobis", "the copula's distance of the row's normal scores from the training rows'"),
        ("critic", "the GAN's critic: minus its score for looking like training data"),
        ("nll", f"the model's {model.log_prob_kind} negative log-likelihood"),
    ):
        if kind in kinds:
            return kind, why
    raise GenzooError(f"model '{model.name}' offers no anomaly score")


def complexity_bits(x: torch.Tensor, low: float, high: float) -> np.ndarray:
    """Bits of each image (N, C, H, W) as a lossless 8-bit PNG at the strongest compression: the
    generic compressor Serra et al. (2020) measure input complexity with."""
    from PIL import Image

    if x.dim() != 4 or x.shape[1] not in (1, 3):
        raise GenzooError("the complexity score codes images with 1 or 3 channels as PNG")
    pixels = ((x.float() - low) / (high - low)).clamp(0, 1).mul(255).round().byte().numpy()
    bits = np.empty(len(x))
    for i, image in enumerate(pixels):
        buffer = io.BytesIO()
        array = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
        Image.fromarray(array).save(buffer, format="PNG", optimize=True)
        bits[i] = 8 * buffer.tell()
    return bits


@dataclass
class Scorer:
    """One score kind of one model, fitted to reference (normal, held-out) data: the corrections'
    statistics and the reference scores a threshold is calibrated on."""

    model: GenerativeModel
    kind: str
    background: Background = None  # likelihood-ratio: a run, or several (their equal-weight mixture)
    batch_size: int = 256
    reference: np.ndarray | None = field(default=None, repr=False)  # scores of the reference data
    center: float | None = None  # typicality: the reference's mean NLL

    def __post_init__(self) -> None:
        if self.kind not in SCORES or self.kind == "auto":
            raise unknown_name("anomaly score", self.kind, [s for s in SCORES if s != "auto"])
        base = "nll" if self.kind in CORRECTIONS else self.kind
        offered = self.model.score_kinds()
        if base not in offered:
            needs = " (it corrects the NLL)" if self.kind in CORRECTIONS else ""
            raise GenzooError(
                f"a {self.model.name} run has no '{self.kind}' score{needs}; it offers: "
                f"{', '.join(offered) or 'none'}"
            )
        if self.kind == "likelihood-ratio":
            self._check_background()
        if self.kind == "complexity" and not (
            self.model.config.data_levels and len(self.model.config.data_shape) == 3
        ):
            raise GenzooError("the complexity score compares with a PNG of the image: it is for image data")

    def _check_background(self) -> None:
        backgrounds = _as_list(self.background)
        if not backgrounds:
            raise GenzooError(
                "likelihood-ratio needs a background run (--background RUN): the same model trained on "
                "the same data with noise in it, e.g. `genzoo train MODEL --data DATA --set data.mutation=0.2`"
            )
        for bg in backgrounds:
            if "nll" not in bg.score_kinds():
                raise GenzooError(f"the background run ('{bg.name}') has no likelihood")
            ours, theirs = self.model.config, bg.config
            if (tuple(ours.data_shape), ours.data_levels) != (tuple(theirs.data_shape), theirs.data_levels):
                raise GenzooError(
                    f"the background run models data of shape {tuple(theirs.data_shape)} with "
                    f"{theirs.data_levels} levels, the run {tuple(ours.data_shape)} with {ours.data_levels}; "
                    "train it on data of the same shape and levels"
                )

    def _raw(self, model: GenerativeModel, x: Examples, kind: str) -> np.ndarray:
        # Lines of text and pieces of music differ in length: their NLL is per token and per frame,
        # so that length alone is no anomaly. Lines are scored one at a time.
        batches = [row[None] for row in x] if isinstance(x, list) else list(x.split(self.batch_size))
        parts = []
        for batch in track(batches, unit="batch"):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)  # dequantization and importance noise: the same on every call
                scores = model.anomaly_score(batch.to(model.device), kind).detach().double().cpu()
            if kind == "nll" and model.output == "text":
                scores = scores / model.scored_dims(tuple(batch.shape[1:]))
            elif kind == "nll" and model.output == "piano-roll":
                scores = scores / frame_mask(batch).sum(1).clamp(min=1)
            parts.append(scores)
        scores = torch.cat(parts).numpy() if parts else np.empty(0)
        if not np.isfinite(scores).all():
            bad = int((~np.isfinite(scores)).sum())
            raise GenzooError(
                f"the model gave {bad} non-finite '{kind}' score(s); check that the data match what it was trained on"
            )
        return scores

    def columns(self, x: Examples) -> dict[str, np.ndarray]:
        """`score` per example, with what it was computed from (nll, png_bits, background_nll)."""
        if self.kind not in CORRECTIONS:
            return {"score": self._raw(self.model, x, self.kind)}
        nll = self._raw(self.model, x, "nll")
        if self.kind == "likelihood-ratio":
            background = mixture_nll(np.stack([self._raw(bg, x, "nll") for bg in _as_list(self.background)]))
            return {"score": nll - background, "nll": nll, "background_nll": background}
        if self.kind == "complexity":
            bits = complexity_bits(x, self.model.config.data_low, self.model.config.data_high)
            return {"score": nll / LN2 - bits, "nll": nll, "png_bits": bits}
        if self.center is None:
            raise GenzooError("typicality needs reference data: call fit() first")
        return {"score": np.abs(nll - self.center), "nll": nll}

    def fit(self, reference: Examples) -> Scorer:
        """Learn from held-out normal data: the typical NLL, and the scores thresholds come from."""
        if len(reference) == 0:
            raise GenzooError("the reference (validation) data are empty; a threshold needs some")
        if self.kind == "typicality":
            nll = self._raw(self.model, reference, "nll")
            self.center = float(nll.mean())
            self.reference = np.abs(nll - self.center)
        else:
            self.reference = self.columns(reference)["score"]
        return self

    def score(self, x: Examples) -> np.ndarray:
        return self.columns(x)["score"]


def threshold_for(
    reference: np.ndarray | None, scores: np.ndarray, fpr: float | None, contamination: float | None
) -> tuple[float, str]:
    """The score above which an example is flagged, and the rule that set it."""
    check_threshold_options(fpr, contamination)
    if contamination is not None:
        return float(np.quantile(scores, 1 - contamination)), f"top {contamination:g} of the scored data"
    fpr = DEFAULT_FPR if fpr is None else fpr
    return (
        float(np.quantile(reference, 1 - fpr)),
        f"{fpr:g} of the run's validation split above it (false-positive rate on normal data)",
    )


def check_threshold_options(fpr: float | None, contamination: float | None) -> None:
    if fpr is not None and contamination is not None:
        raise GenzooError("give --fpr or --contamination, not both")
    if contamination is not None and not 0 < contamination < 0.5:
        raise GenzooError(f"--contamination is the share of anomalies, in (0, 0.5); got {contamination}")
    if fpr is not None and not 0 < fpr < 1:
        raise GenzooError(f"--fpr is the share of normal data flagged, in (0, 1); got {fpr}")


# ---- the command -----------------------------------------------------------------------------
@dataclass
class AnomalyReport:
    """What `anomaly` found: one row per example in `frame` (score, flag, ...), the JSON `summary`."""

    frame: pd.DataFrame
    summary: dict[str, Any]
    examples: torch.Tensor = field(repr=False)


def anomaly(
    run: str | Path,
    data: str | Path | None = None,
    *,
    split: str = "all",
    score: str = "auto",
    fpr: float | None = None,
    contamination: float | None = None,
    labels: str | Path | None = None,
    background: str | Path | Sequence[str | Path] | None = None,
    out: str | Path | None = None,
    batch_size: int = 256,
    device: str = "auto",
    quiet: bool = False,
) -> AnomalyReport:
    """Score every example of `data` (default: the run's own data; `split` picks part of a dataset
    with splits) with `run`, flag those above a threshold calibrated on the run's validation split,
    and with `labels` (a file of 0/1 per example, or a table column; 1 = anomaly) measure AUROC,
    AUPRC, precision and recall. A run trained with `data.train_classes` is its own label: classes
    outside them are the anomalies. `out` (.csv) also writes the rows, a histogram PNG beside it
    and, for images, the most and least anomalous examples and per-pixel maps."""
    if score not in SCORES:
        raise unknown_name("anomaly score", score, SCORES)
    check_threshold_options(fpr, contamination)
    if split not in SPLITS:
        raise unknown_name("split", split, SPLITS)
    out = Path(out) if out is not None else None
    if out is not None:
        if out.suffix.lower() != ".csv":
            raise GenzooError(f"--out must be a .csv file of scores, got '{out.name}'")
        if out.is_dir():
            raise GenzooError(f"--out '{out}' is a directory; give a file name such as scores.csv")
        check_writable(out, "--out")
    model, spec = load_run(run, device=device)
    paths = [background] if isinstance(background, str | Path) else list(background or [])
    bg_models = [load_run(path, device=device)[0] for path in paths]
    kind, reason = choose_score(model, bg_models) if score == "auto" else (score, "asked for")
    scorer = Scorer(model, kind, bg_models, batch_size=batch_size)
    examples, rows, table_frame = _scored_data(model, spec, data, split)
    label_values, label_source = _labels(labels, spec, rows, table_frame)
    if contamination is None or kind == "typicality":  # else the threshold needs the scored data only
        with reporting("scoring the validation split", quiet):
            scorer.fit(_reference(spec, model))
    with reporting("scoring", quiet):
        columns = scorer.columns(examples)
    threshold, rule = threshold_for(scorer.reference, columns["score"], fpr, contamination)
    flags = columns["score"] > threshold
    frame = pd.concat([rows.reset_index(drop=True), pd.DataFrame(columns)], axis=1)
    frame["flag"] = flags.astype(int)
    summary: dict[str, Any] = {
        "model": spec.model,
        "data": str(data if data is not None else spec.data),
        "split": split,
        "n": len(frame),
        "score": kind,
        "reason": reason,
        "threshold": threshold,
        "threshold_rule": rule,
        "flagged": int(flags.sum()),
        "reference_n": 0 if scorer.reference is None else len(scorer.reference),
    }
    if label_values is not None:
        frame["label"] = label_values
        summary.update(detection_metrics(columns["score"], label_values, flags))
        summary["labels"] = label_source
    report = AnomalyReport(frame, summary, examples)
    if out is not None:
        summary["files"] = write_report(report, model, out)
    return report


def _reference(spec: RunSpec, model: GenerativeModel) -> torch.Tensor:
    """The run's own validation split, as it was trained (its classes), without mutation noise."""
    try:
        dataset = load_dataset(
            spec.data,
            prefer=spec.data_modalities(),
            **without_common(spec.data_options, keep=("train_classes",)),
        )
    except GenzooError as err:
        raise GenzooError(
            f"the run's training data '{spec.data}' cannot be read ({err}); its validation split sets the "
            "threshold: restore it, or threshold on the scored data with --contamination"
        ) from None
    name = "val" if "val" in dataset.split_names else dataset.split_names[-1]
    return dataset.split(name).tensors[0]


def _scored_data(
    model: GenerativeModel, spec: RunSpec, data: str | Path | None, split: str
) -> tuple[torch.Tensor, pd.DataFrame, pd.DataFrame | None]:
    """The examples to score, a frame naming each (index, split, class), and a table file's frame."""
    source = str(data) if data is not None else spec.data
    if (
        model.output == "text"
        and not model.takes_inputs
        and data is not None
        and Path(source).expanduser().suffix.lower() == ".txt"
    ):
        return _text_lines(model, Path(source).expanduser(), split)
    if model.output == "table" and Path(source).expanduser().suffix.lower() in TABLE_SUFFIXES:
        path = Path(source).expanduser()
        if not path.is_file():
            raise GenzooError(f"data file '{path}' does not exist")
        if split != "all":
            raise GenzooError("a table file is scored whole: drop --split")
        frame = read_table(path)
        missing = [c for c in model.schema.names if c not in frame.columns]
        if missing:
            raise GenzooError(
                f"'{path.name}' lacks the column(s) the run was trained on: {', '.join(missing)}"
            )
        return model.schema.encode(frame), pd.DataFrame({"index": np.arange(len(frame))}), frame
    options = spec.data_options if source == spec.data else {}
    dataset = load_dataset(source, prefer=spec.data_modalities(), **without_common(options))
    _check_matches(dataset, model, source)
    names = dataset.split_names if split == "all" else (split,)
    parts = [(name, *dataset.split(name).tensors) for name in names]
    x = torch.cat([p[1] for p in parts])
    if len(x) == 0:
        raise GenzooError(f"'{source}' has no examples to score in split '{split}'")
    rows = pd.DataFrame(
        {
            "index": np.concatenate([np.arange(len(p[1])) for p in parts]),
            "split": np.concatenate([[p[0]] * len(p[1]) for p in parts]),
            "class": torch.cat([p[2] for p in parts]).numpy(),
        }
    )
    if not (rows["class"] >= 0).any():
        rows = rows.drop(columns="class")
    return x, rows, _table_rows(dataset, names)


def _text_lines(
    model: GenerativeModel, path: Path, split: str
) -> tuple[list[torch.Tensor], pd.DataFrame, None]:
    """A text file scored line by line (lines of fewer than two tokens have nothing to score)."""
    if not path.is_file():
        raise GenzooError(f"data file '{path}' does not exist")
    if split != "all":
        raise GenzooError("a text file is scored whole, line by line: drop --split")
    lines = read_utf8(path, "text file ").splitlines()
    rows, numbers = [], []
    for number, line in enumerate(lines, start=1):
        tokens = model.tokenizer.encode(line) if line.strip() else []
        if len(tokens) >= 2:
            rows.append(torch.tensor(tokens))
            numbers.append(number)
    if not rows:
        raise GenzooError(f"'{path.name}' has no line of two or more tokens to score")
    return rows, pd.DataFrame({"line": numbers}), None


def _table_rows(dataset: Dataset, names: tuple[str, ...]) -> pd.DataFrame | None:
    frames = getattr(dataset, "frames", None)
    return pd.concat([frames[n] for n in names], ignore_index=True) if frames else None


def _check_matches(dataset: Dataset, model: GenerativeModel, source: str) -> None:
    info, config = dataset.info, model.config
    if tuple(info.shape) != tuple(config.data_shape) or info.levels != config.data_levels:
        raise GenzooError(
            f"'{source}' holds data of shape {tuple(info.shape)} with {info.levels} levels, but the run was "
            f"trained on shape {tuple(config.data_shape)} with {config.data_levels} levels; "
            "score data like the training data"
        )
    if model.output == "table" and info.table != config.table:
        raise GenzooError(f"'{source}' has other columns than the run's table; score a file with its columns")


def _labels(
    labels: str | Path | None, spec: RunSpec, rows: pd.DataFrame, table_frame: pd.DataFrame | None
) -> tuple[np.ndarray | None, str | None]:
    """0/1 per scored example (1 = anomaly) and where they came from, or (None, None)."""
    n = len(rows)
    if labels is None:
        classes = spec.data_options.get("train_classes")
        if classes is None or "class" not in rows:
            return None, None
        normal = parse_classes(classes)
        return (~rows["class"].isin(normal)).to_numpy().astype(int), f"classes other than {normal}"
    text = str(labels)
    if table_frame is not None and text in table_frame.columns:
        values, source = table_frame[text].tolist(), f"column '{text}'"
    else:
        path = Path(text).expanduser()
        if not path.is_file():
            where = " or a column of the table" if table_frame is not None else ""
            raise GenzooError(f"--labels '{text}' is not a file{where}; give one 0/1 label per example")
        lines = [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines()]
        values = [line.split(",")[-1].strip() for line in lines if line]
        if values and _label_value(values[0]) is None:
            values = values[1:]  # a header
        source = f"file '{path.name}'"
    if len(values) != n:
        raise GenzooError(
            f"--labels gives {len(values)} labels for {n} scored examples; give one per example"
        )
    parsed = [_label_value(v) for v in values]
    bad = next((v for v, p in zip(values, parsed, strict=True) if p is None), None)
    if bad is not None:
        raise GenzooError(f"labels must be 0/1 or true/false (1 = anomaly); found {bad!r}")
    return np.array(parsed, dtype=int), source


def _label_value(value: Any) -> int | None:
    text = str(value).strip().lower()
    if text in ("1", "1.0", "true", "yes"):
        return 1
    if text in ("0", "0.0", "false", "no"):
        return 0
    return None


# ---- what a user looks at --------------------------------------------------------------------
EXTREMES = 16  # images shown at each end of the ranking
MAPS = 8  # per-pixel maps shown


def write_report(report: AnomalyReport, model: GenerativeModel, out: Path) -> list[str]:
    """The CSV, a histogram of the scores with the threshold, and for images the most and least
    anomalous examples and the per-pixel maps of the most anomalous; returns the paths written."""
    from genzoo.viz import save_anomaly_maps, save_extremes, save_score_histogram

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    report.frame.to_csv(tmp, index=False)
    tmp.replace(out)
    written = [str(out)]
    frame, summary = report.frame, report.summary
    histogram = out.with_name(f"{out.stem}_histogram.png")
    labels = frame["label"].to_numpy() if "label" in frame else None
    save_score_histogram(frame["score"].to_numpy(), summary["threshold"], histogram, summary["score"], labels)
    written.append(str(histogram))
    config = model.config
    if len(config.data_shape) == 3 and model.output == "tensor":
        order = np.argsort(-frame["score"].to_numpy(), kind="stable")
        extremes = out.with_name(f"{out.stem}_extremes.png")
        save_extremes(report.examples, order, extremes, config.data_low, config.data_high, EXTREMES)
        written.append(str(extremes))
        if model.has_anomaly_map:
            top = torch.as_tensor(order[:MAPS].copy())
            with torch.no_grad():
                maps = model.anomaly_map(report.examples[top].to(model.device)).cpu()
            path = out.with_name(f"{out.stem}_maps.png")
            save_anomaly_maps(report.examples[top], maps, path, config.data_low, config.data_high)
            written.append(str(path))
    return written


__all__ = ["AnomalyReport", "Scorer", "anomaly", "choose_score", "complexity_bits", "threshold_for"]

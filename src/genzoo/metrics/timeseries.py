"""Metrics for time series: how real synthetic windows look, and how good probabilistic forecasts are.

Synthetic windows (arrays or tensors of shape (N, L, F), real and synthetic in the same scaled units):

- `discriminative_score`: TimeGAN's post-hoc discriminator (Yoon et al. 2019). A small GRU learns to
  tell real windows from synthetic ones; the score is |held-out accuracy - 0.5|, 0 is best.
- `predictive_score`: TimeGAN's "train on synthetic, test on real". A GRU trained on the synthetic
  windows predicts the last feature one step ahead; the score is its MAE on the real windows, lower is
  better (compare it with the same score of real-on-real).

Forecasts (numpy arrays or tensors; a horizon (H,) or (H, F), sample paths (S, H) or (S, H, F)):

- `mase`, `smape`, `crps_from_samples`, `coverage`, and `forecast_metrics`, which gathers them for one
  forecast from its sample paths.

Keys are named as in DESIGN.md. Every random choice comes from a seeded `torch.Generator`; the global
RNG is never touched. Threads are the caller's business (`torch.set_num_threads`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genzoo.errors import GenzooError
from genzoo.progress import track

ArrayLike = Any  # a torch.Tensor or anything numpy.asarray understands
Progress = Callable[[int, int], None]  # progress(done, total), called as training steps finish

TRAIN_SHARE = 0.8  # TimeGAN's train/test division of both real and synthetic windows
MIN_WINDOWS = 10  # for the discriminator: 8 to train on and 2 held out, of each kind
EVAL_CHUNK = 4096  # windows per forward pass when scoring: bounds memory on large sets
SIDE_BY_SIDE_UNITS = 64  # repeats train side by side while their GRUs have this many units in all


# ----------------------------------------------------------------------------- input checks


def _windows(x: ArrayLike, name: str, min_windows: int = 1, min_steps: int = 1) -> Tensor:
    """`x` as a CPU float32 tensor (N, L, F), with a clear error for a wrong shape or NaN/inf."""
    try:
        # A copy for arrays: from_numpy would share (and warn about) read-only or foreign memory.
        t = x.detach().cpu() if isinstance(x, Tensor) else torch.tensor(np.asarray(x, dtype=np.float32))
    except (TypeError, ValueError) as err:
        raise GenzooError(f"{name} must be an array of numbers of shape (N, L, F): {err}") from err
    if t.ndim != 3:
        raise GenzooError(
            f"{name} must be windows of shape (N, L, F) (windows, time steps, features), got shape "
            f"{tuple(t.shape)}; add a feature axis with x[..., None] for a univariate series"
        )
    t = t.to(torch.float32)
    if len(t) < min_windows:
        raise GenzooError(f"{name} has {len(t)} windows; the metric needs at least {min_windows}")
    if t.shape[1] < min_steps or t.shape[2] < 1:
        raise GenzooError(
            f"{name} windows have shape {tuple(t.shape[1:])}; the metric needs at least {min_steps} "
            "time steps and 1 feature"
        )
    if not torch.isfinite(t).all():
        raise GenzooError(f"{name} contains NaN or infinite values; drop or fill them before measuring")
    return t


def _same_shape(real: Tensor, synthetic: Tensor) -> None:
    if real.shape[1:] != synthetic.shape[1:]:
        raise GenzooError(
            f"real windows have shape (L, F) = {tuple(real.shape[1:])} but synthetic ones "
            f"{tuple(synthetic.shape[1:])}; sample windows of the real data's length and features"
        )


def _positive(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise GenzooError(f"{name} must be a positive integer, got {value!r}")
    return value


def _hidden_size(features: int, hidden_size: int | None) -> int:
    # TimeGAN uses int(F / 2) units: 0 for one feature (no network at all) and 2-3 for its sines (5)
    # and stocks (6), so small that the discriminator can miss differences it would see with a few
    # more. We keep the paper's width where it is sensible and never go below 4: still tiny and fast,
    # and for F >= 8 the paper's own number. Pass `hidden_size=features // 2` for the paper's exact one.
    if hidden_size is not None:
        return _positive(hidden_size, "hidden_size")
    return max(features // 2, 4)


# ----------------------------------------------------------------------------- the small GRUs


class _SideBySide(nn.Module):
    """`copies` independent GRU networks (a GRU, then a linear layer to one output) run as one.

    These networks are tiny (a few units), so on a CPU their cost is the per-step overhead of the
    recurrence, not arithmetic. Copy c reads features [c F, (c + 1) F) of the input and owns block
    c of every weight; the blocks between copies are zero and their gradients are masked, so they
    stay zero (Adam moves nothing whose gradient is always 0) and the copies never see each other.
    Trained side by side, R repeats cost about what one does.

    Each copy's blocks are drawn from its own generator, in the same order and range as PyTorch's
    defaults for one network (uniform in +-1/sqrt(hidden)), so a repeat's network does not depend
    on which other repeats share its group. The modules are built on the meta device so that their
    constructors draw nothing from the global RNG.
    """

    def __init__(self, inputs: int, hidden: int, layers: int, generators: list[torch.Generator]):
        super().__init__()
        self.copies = copies = len(generators)
        self.rnn = nn.GRU(
            copies * inputs, copies * hidden, num_layers=layers, batch_first=True, device="meta"
        )
        self.head = nn.Linear(copies * hidden, copies, device="meta")
        self.to_empty(device="cpu")
        bound = 1.0 / math.sqrt(hidden)
        self.masks: list[Tensor | None] = []
        with torch.no_grad():
            for name, parameter in self.named_parameters():
                gates = 3 if name.startswith("rnn.") else 1  # a GRU stacks its r, z and n rows
                blocks = parameter.zero_().view(gates, copies, -1, *parameter.shape[1:])
                if parameter.ndim == 2:  # a weight: (gates, copy, out, copy, in)
                    blocks = blocks.view(*blocks.shape[:3], copies, -1)
                    mask = torch.zeros_like(blocks)
                for c, generator in enumerate(generators):
                    own = blocks[:, c, :, c] if parameter.ndim == 2 else blocks[:, c]
                    own.uniform_(-bound, bound, generator=generator)
                    if parameter.ndim == 2:
                        mask[:, c, :, c] = 1
                self.masks.append(mask.view_as(parameter) if parameter.ndim == 2 else None)

    def keep_apart(self) -> None:
        """After backward: zero the gradients that would connect one copy to another."""
        for parameter, mask in zip(self.parameters(), self.masks, strict=True):
            if mask is not None and parameter.grad is not None:
                parameter.grad.mul_(mask)

    def last(self, x: Tensor) -> Tensor:
        """(N, L, copies F) -> (N, copies): each copy's output from its top layer's last state."""
        _, state = self.rnn(x)
        return self.head(state[-1])

    def every_step(self, x: Tensor) -> Tensor:
        """(N, L, copies F) -> (N, L, copies): each copy's output at every step."""
        out, _ = self.rnn(x)
        return self.head(out)


def _groups(repeats: int, hidden: int) -> list[range]:
    # Side by side, each step multiplies copies^2 times the weights of one network, zero blocks
    # included: free while the whole stays this narrow, slower than one by one when it is wide.
    size = max(1, min(repeats, SIDE_BY_SIDE_UNITS // hidden))
    return [range(start, min(start + size, repeats)) for start in range(0, repeats, size)]


def _generators(seed: int, repeats: int) -> list[torch.Generator]:
    """One generator per repeat, seeded from `seed`: repeat r is the same whatever `repeats` is."""
    seeds = torch.randint(2**62, (repeats,), generator=torch.Generator().manual_seed(seed))
    return [torch.Generator().manual_seed(int(s)) for s in seeds]


def _batch(n: int, size: int, generator: torch.Generator) -> Tensor:
    """`size` distinct indices below `n` (all of them when there are fewer), as TimeGAN draws them."""
    return torch.randperm(n, generator=generator)[: min(size, n)]


def _side_by_side(parts: list[Tensor]) -> Tensor:
    """Each copy's windows (N, L, F), as the input (N, L, copies F) of a `_SideBySide`."""
    return torch.cat(parts, dim=2)


def _train(model: _SideBySide, loss_of: Callable[[], Tensor], steps: Iterator[None], iterations: int) -> None:
    optimizer = torch.optim.Adam(model.parameters())  # TimeGAN's: Adam with its default settings
    for _ in range(iterations):
        loss = loss_of()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        model.keep_apart()
        optimizer.step()
        next(steps)


def _steps(total: int, progress: Progress | None) -> Iterator[None]:
    """Take one item as each training step ends: it is counted by `genzoo.progress.track` (shown
    inside a command's `reporting` block) and passed to `progress(done, total)` about every 1%."""
    every = max(1, total // 100)
    for done, _ in enumerate(track(range(total), total=total), start=1):
        if progress is not None and (done % every == 0 or done == total):
            progress(done, total)
        yield


@torch.no_grad()
def _in_chunks(forward: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    return torch.cat([forward(chunk) for chunk in x.split(EVAL_CHUNK)])


def _summary(name: str, scores: list[float]) -> dict[str, Any]:
    # The population std (ddof=0), which is defined for one repeat too.
    return {name: float(np.mean(scores)), f"{name}_std": float(np.std(scores)), "repeats": len(scores)}


# ----------------------------------------------------------------------------- discriminative score


def _discriminate(
    real: Tensor,
    fake: Tensor,
    gens: list[torch.Generator],
    hidden: int,
    iterations: int,
    batch_size: int,
    layers: int,
    steps: Iterator[None],
) -> list[float]:
    """The discriminative scores of one group of repeats, trained side by side."""
    n = min(len(real), len(fake))
    n_train = int(n * TRAIN_SHARE)
    # Each kind gets its own shuffle: the subsample and its train/test division in one draw.
    orders = [
        (torch.randperm(len(real), generator=g)[:n], torch.randperm(len(fake), generator=g)[:n]) for g in gens
    ]
    real_train = [real[a[:n_train]] for a, _ in orders]
    fake_train = [fake[b[:n_train]] for _, b in orders]
    model = _SideBySide(real.shape[2], hidden, layers, gens)

    def loss() -> Tensor:
        real_x = _side_by_side(
            [w[_batch(n_train, batch_size, g)] for w, g in zip(real_train, gens, strict=True)]
        )
        fake_x = _side_by_side(
            [w[_batch(n_train, batch_size, g)] for w, g in zip(fake_train, gens, strict=True)]
        )
        logits = model.last(torch.cat([real_x, fake_x]))
        labels = torch.cat([torch.ones(len(real_x), 1), torch.zeros(len(fake_x), 1)]).expand(-1, len(gens))
        # Per copy, the mean loss on each kind, summed (TimeGAN's loss); then summed over copies.
        return F.binary_cross_entropy_with_logits(logits, labels, reduction="sum") / len(real_x)

    _train(model, loss, steps, iterations)
    real_test = _side_by_side([real[a[n_train:]] for a, _ in orders])
    fake_test = _side_by_side([fake[b[n_train:]] for _, b in orders])
    right = (_in_chunks(model.last, real_test) > 0).sum(0) + (_in_chunks(model.last, fake_test) <= 0).sum(0)
    return [abs(k / (len(real_test) + len(fake_test)) - 0.5) for k in right.tolist()]


def discriminative_score(
    real: ArrayLike,
    synthetic: ArrayLike,
    *,
    repeats: int = 5,
    iterations: int = 2000,
    batch_size: int = 128,
    seed: int = 0,
    hidden_size: int | None = None,
    layers: int = 2,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """TimeGAN's discriminative score: |accuracy - 0.5| of a post-hoc real-vs-synthetic classifier.

    Each repeat draws the same number of real and synthetic windows, min(len(real), len(synthetic))
    (a seeded subsample of the larger set: with unequal sets, guessing the larger class alone would
    beat 0.5), splits each 80/20, trains a GRU classifier of `layers` layers with Adam for `iterations` steps of
    `batch_size` real plus `batch_size` synthetic windows, and scores it on the held-out windows of
    both kinds. 0 means the classifier could not tell them apart; 0.5 means it always could.
    TimeGAN's classifier has one GRU layer of F // 2 units; ours has `layers` (two) of at least 4
    (`_hidden_size`), so it tells more apart: `layers=1, hidden_size=F // 2` is the paper's own, the
    one its published scores (and Diffusion-TS's, which reuse its code) were measured with.

    Returns {"discriminative_score": mean, "discriminative_score_std": std, "repeats": n} over
    `repeats` seeds drawn from `seed`. `progress(done, total)` counts training steps; repeats that
    train side by side share theirs.
    """
    real_w = _windows(real, "real", MIN_WINDOWS)
    fake_w = _windows(synthetic, "synthetic", MIN_WINDOWS)
    _same_shape(real_w, fake_w)
    repeats, iterations = _positive(repeats, "repeats"), _positive(iterations, "iterations")
    batch_size, layers = _positive(batch_size, "batch_size"), _positive(layers, "layers")
    hidden = _hidden_size(real_w.shape[2], hidden_size)
    generators = _generators(seed, repeats)
    groups = _groups(repeats, hidden)
    steps = _steps(len(groups) * iterations, progress)
    scores: list[float] = []
    for group in groups:
        gens = [generators[r] for r in group]
        scores += _discriminate(real_w, fake_w, gens, hidden, iterations, batch_size, layers, steps)
    steps.close()
    return _summary("discriminative_score", scores)


# ----------------------------------------------------------------------------- predictive score


def _predictive_pairs(windows: Tensor) -> tuple[Tensor, Tensor]:
    """Inputs (N, L-1, F-1): every feature but the last at steps 0..L-2; targets (N, L-1): the last
    feature at steps 1..L-1 (TimeGAN's task). A univariate window has no other feature to read, so
    its input is the feature itself: a plain one-step-ahead forecast."""
    inputs = windows[:, :-1, :-1] if windows.shape[2] > 1 else windows[:, :-1]
    return inputs, windows[:, 1:, -1]


def _predict(
    fake_x: Tensor,
    fake_y: Tensor,
    real_x: Tensor,
    real_y: Tensor,
    gens: list[torch.Generator],
    hidden: int,
    iterations: int,
    batch_size: int,
    steps: Iterator[None],
) -> list[float]:
    """The predictive scores of one group of repeats, trained side by side."""
    model = _SideBySide(fake_x.shape[2], hidden, 1, gens)

    def forward(x: Tensor) -> Tensor:
        return torch.sigmoid(model.every_step(x))  # TimeGAN's: the windows are min-max scaled to 0..1

    def loss() -> Tensor:
        rows = [_batch(len(fake_x), batch_size, g) for g in gens]
        prediction = forward(_side_by_side([fake_x[r] for r in rows]))
        target = torch.stack([fake_y[r] for r in rows], dim=2)
        return (prediction - target).abs().mean((0, 1)).sum()  # each copy's MAE, summed

    _train(model, loss, steps, iterations)
    prediction = _in_chunks(forward, real_x.repeat(1, 1, len(gens)))
    # Every real window has L-1 targets, so TimeGAN's mean of per-window MAEs is the overall mean.
    return (prediction - real_y[..., None]).abs().mean((0, 1)).tolist()


def predictive_score(
    real: ArrayLike,
    synthetic: ArrayLike,
    *,
    repeats: int = 5,
    iterations: int = 5000,
    batch_size: int = 128,
    seed: int = 0,
    hidden_size: int | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """TimeGAN's predictive score: train on synthetic, test on real.

    A 1-layer GRU (as TimeGAN's) reads the first F-1 features at steps 0..L-2 of a window and
    predicts the last feature at steps 1..L-1, through a sigmoid as TimeGAN's (the windows are
    min-max scaled to 0..1). It is trained with Adam on the absolute error for `iterations` batches
    of `batch_size` synthetic windows, then scored by its mean absolute error on every real window.
    For one feature (F == 1) it reads that feature and predicts its next value. Lower is better;
    the same score with the real windows as "synthetic" is the floor to compare with.

    Returns {"predictive_score": mean, "predictive_score_std": std, "repeats": n} over `repeats`
    seeds drawn from `seed`. `progress(done, total)` counts training steps, as in
    `discriminative_score`.
    """
    real_w = _windows(real, "real", 1, min_steps=2)
    fake_w = _windows(synthetic, "synthetic", 1, min_steps=2)
    _same_shape(real_w, fake_w)
    repeats, iterations = _positive(repeats, "repeats"), _positive(iterations, "iterations")
    batch_size = _positive(batch_size, "batch_size")
    fake_x, fake_y = _predictive_pairs(fake_w)
    real_x, real_y = _predictive_pairs(real_w)
    hidden = _hidden_size(real_w.shape[2], hidden_size)
    generators = _generators(seed, repeats)
    groups = _groups(repeats, hidden)
    steps = _steps(len(groups) * iterations, progress)
    scores: list[float] = []
    for group in groups:
        gens = [generators[r] for r in group]
        scores += _predict(fake_x, fake_y, real_x, real_y, gens, hidden, iterations, batch_size, steps)
    steps.close()
    return _summary("predictive_score", scores)


# ----------------------------------------------------------------------------- forecast metrics


def _array(x: ArrayLike, name: str) -> np.ndarray:
    a = x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)
    try:
        a = a.astype(np.float64)
    except (TypeError, ValueError) as err:
        raise GenzooError(f"{name} must hold numbers, got {a.dtype} values") from err
    if a.size == 0:
        raise GenzooError(f"{name} is empty (shape {a.shape}); give at least one value")
    if not np.isfinite(a).all():
        raise GenzooError(f"{name} contains NaN or infinite values; drop or fill them before measuring")
    return a


def _horizon(y_true: ArrayLike) -> np.ndarray:
    y = _array(y_true, "y_true")
    if y.ndim not in (1, 2):
        raise GenzooError(
            f"y_true must be a horizon of shape (H,) or (H, F), got shape {y.shape}; "
            "measure one forecast at a time"
        )
    return y


def _matching(x: ArrayLike, name: str, shape: tuple[int, ...]) -> np.ndarray:
    a = _array(x, name)
    if a.shape != shape:
        raise GenzooError(
            f"{name} has shape {a.shape} but y_true has shape {shape}; give one value per target"
        )
    return a


def naive_scale(insample: ArrayLike, season: int = 1, features: int | None = None) -> np.ndarray:
    """Per feature, the in-sample MAE of the seasonal naive forecast (y[t] predicted by y[t-season]):
    the denominator of MASE. A scalar-shaped array () for a univariate series, else (F,)."""
    history = _array(insample, "insample")
    if isinstance(season, bool) or not isinstance(season, int) or season < 1:
        raise GenzooError(f"season must be a positive integer, got {season!r}")
    if (features is None and history.ndim != 1) or (
        features is not None and history.shape[1:] != (features,)
    ):
        want = "(T,)" if features is None else f"(T, {features})"
        raise GenzooError(f"insample must have shape {want} to match the forecast, got shape {history.shape}")
    if len(history) <= season:
        raise GenzooError(
            f"insample has {len(history)} steps; the seasonal naive forecast with season {season} "
            f"needs at least {season + 1}"
        )
    scale = np.abs(history[season:] - history[:-season]).mean(axis=0)
    if np.any(scale == 0):
        where = "" if scale.ndim == 0 else f" for feature {int(np.flatnonzero(scale == 0)[0])}"
        raise GenzooError(
            f"the in-sample seasonal naive forecast (season {season}) is exact{where} (a constant or "
            "perfectly periodic history), so MASE divides by zero; use smape or crps instead"
        )
    return scale


def mase(y_true: ArrayLike, y_pred: ArrayLike, insample: ArrayLike, season: int = 1) -> float:
    """Mean absolute scaled error: the forecast's MAE over the in-sample MAE of the seasonal naive
    forecast with lag `season`. For (H, F) each feature is scaled by its own naive MAE, then the
    scaled errors are averaged (features in different units stay comparable)."""
    y = _horizon(y_true)
    pred = _matching(y_pred, "y_pred", y.shape)
    scale = naive_scale(insample, season, y.shape[1] if y.ndim == 2 else None)
    return float((np.abs(y - pred) / scale).mean())


def smape(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Symmetric MAPE as the M4 competition defines it, in percent (0..200): the mean of
    200 |y - y_hat| / (|y| + |y_hat|); a term where both are 0 is a perfect forecast and counts 0."""
    y = _horizon(y_true)
    pred = _matching(y_pred, "y_pred", y.shape)
    denominator = np.abs(y) + np.abs(pred)
    terms = np.divide(200 * np.abs(y - pred), denominator, out=np.zeros_like(y), where=denominator > 0)
    return float(terms.mean())


def _samples(samples: ArrayLike, shape: tuple[int, ...]) -> np.ndarray:
    s = _array(samples, "samples")
    if s.shape[1:] != shape:
        raise GenzooError(
            f"samples have shape {s.shape} but y_true has shape {shape}; give samples of shape "
            f"(S, {', '.join(map(str, shape))}), the sample paths along the first axis"
        )
    if len(s) < 2:
        raise GenzooError(
            f"samples hold {len(s)} sample path; a distribution needs at least 2 (for a point forecast "
            "use mase or smape)"
        )
    return s


def crps_from_samples(samples: ArrayLike, y_true: ArrayLike) -> np.ndarray:
    """The continuous ranked probability score of the empirical distribution of `samples` (S, ...)
    at each point of `y_true` (...): CRPS = E|X - y| - 0.5 E|X - X'|, exactly, in y's units, as an
    array of y_true's shape (take `.mean()` for the mean). Lower is better; it is the MAE for a
    point forecast.

    E|X - X'| over all S^2 pairs would be quadratic in S; over the sorted samples x_(1) <= ... <=
    x_(S) it is (2 / S^2) sum_i (2i - S - 1) x_(i), so the cost is that of a sort, O(S log S).
    """
    y = _array(y_true, "y_true")
    s = np.sort(_samples(samples, y.shape), axis=0)
    count = len(s)
    to_truth = np.abs(s - y).mean(axis=0)
    weights = (2 * np.arange(1, count + 1) - count - 1).reshape((count,) + (1,) * y.ndim)
    spread = 2 * (weights * s).sum(axis=0) / count**2
    return to_truth - 0.5 * spread


def coverage(lower: ArrayLike, upper: ArrayLike, y_true: ArrayLike) -> float:
    """The share of `y_true` inside the closed intervals [lower, upper] (a nominal 80% interval
    should cover about 0.8)."""
    y = _array(y_true, "y_true")
    low, high = _matching(lower, "lower", y.shape), _matching(upper, "upper", y.shape)
    if np.any(low > high):
        raise GenzooError("some lower bounds are above their upper bounds; pass lower first, then upper")
    return float(((low <= y) & (y <= high)).mean())


def forecast_metrics(
    samples: ArrayLike, y_true: ArrayLike, insample: ArrayLike, season: int = 1, interval: float = 0.8
) -> dict[str, Any]:
    """Scores of one probabilistic forecast, from its sample paths `samples` (S, H) or (S, H, F)
    against the truth `y_true` (H,) or (H, F), after the history `insample` (T,) or (T, F).

    - `mase`, `smape`: of the samples' median, the point forecast.
    - `crps`: the mean CRPS, in the series' units.
    - `scaled_crps`: the CRPS of each point over its feature's in-sample seasonal naive MAE (the
      MASE denominator), then averaged: unit-free, so series in different units can be averaged
      (geometrically, as MASE usually is).
    - `coverage`: the share of the truth inside the central `interval` of the samples (between
      their (1 - interval) / 2 and (1 + interval) / 2 quantiles), with `interval` itself.
    """
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not 0 < interval < 1:
        raise GenzooError(f"interval must be a share between 0 and 1 (0.8 for 80%), got {interval!r}")
    y = _horizon(y_true)
    paths = _samples(samples, y.shape)
    scale = naive_scale(insample, season, y.shape[1] if y.ndim == 2 else None)
    median = np.median(paths, axis=0)
    crps = crps_from_samples(paths, y)
    low, high = np.quantile(paths, [(1 - interval) / 2, (1 + interval) / 2], axis=0)
    return {
        "mase": float((np.abs(y - median) / scale).mean()),
        "smape": smape(y, median),
        "crps": float(crps.mean()),
        "scaled_crps": float((crps / scale).mean()),
        "coverage": coverage(low, high, y),
        "interval": float(interval),
    }

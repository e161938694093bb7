"""Progress of a long loop (training, sampling, evaluation, compare), one way for every command.

On a terminal it is a tqdm bar. Where stderr is not a terminal (Jupyter, nohup, CI logs) a bar
would be a mess of carriage returns, so it prints plain lines instead, about every 10% of the
run or every 30 s, whichever comes first:

    genzoo: train vae step 400/2000 (20%), loss 98.2, 12.3 s, about 49 s left

`quiet=True` prints nothing at all.

>>> with Progress(total=100, desc="sample ddpm", quiet=False) as progress:  # doctest: +SKIP
...     for _ in range(100):
...         progress.update(1)

The long loops inside models (a sampler's denoising steps, a PixelCNN's rows, a language model's
tokens, a diffusion bound's T terms) iterate through `track`, which shows progress only while a
command asked for it with `reporting`; called from a user's own code a model stays silent. Only the
outermost tracked loop reports, so a loop inside a tracked loop adds no second bar.

>>> with reporting("sample ddpm"):           # doctest: +SKIP
...     model.sample(64)                      # genzoo: sample ddpm step 100/1000 (10%), ...
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TextIO, TypeVar

T = TypeVar("T")
# What `reporting` asked for: the description and quietness, and whether a tracked loop is running.
_REPORTING: ContextVar[dict[str, Any] | None] = ContextVar("genzoo_reporting", default=None)


@contextmanager
def reporting(desc: str, quiet: bool = False) -> Iterator[None]:
    """Show the progress of loops run through `track` inside this block, as `desc`."""
    token = _REPORTING.set({"desc": desc, "quiet": quiet, "busy": False})
    try:
        yield
    finally:
        _REPORTING.reset(token)


def track(items: Iterable[T], total: int | None = None, unit: str = "step") -> Iterator[T]:
    """`items`, one by one; counted on a `Progress` when inside `reporting` and no outer loop is."""
    state = _REPORTING.get()
    if state is None or state["busy"] or state["quiet"]:
        yield from items
        return
    state["busy"] = True
    count = total if total is not None else len(items)  # type: ignore[arg-type]
    progress = Progress(count, state["desc"], unit=unit)
    try:
        for item in items:
            try:
                yield item
            except GeneratorExit:  # the loop stopped early (`break`, `return`): this item was its last
                progress.update(1)
                raise
            progress.update(1)
    finally:
        progress.close()
        state["busy"] = False


class Progress:
    """`total` units of work called `unit` ("step"), `initial` of them done already (a resume).

    `elapsed` is the seconds the work took before this session (shown, not used for the estimate).
    `set_postfix(loss=...)` adds values to the bar and to the next line; `update(n)` counts work.
    """

    def __init__(
        self,
        total: int,
        desc: str,
        quiet: bool = False,
        *,
        initial: int = 0,
        unit: str = "step",
        elapsed: float = 0.0,
        stream: TextIO | None = None,
        every_fraction: float = 0.1,
        every_seconds: float = 30.0,
        clock: Callable[[], float] = time.perf_counter,
    ):
        self.total, self.desc, self.unit = max(0, int(total)), desc, unit
        self.n = self.initial = int(initial)
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet or self.stream is None
        self.every_fraction, self.every_seconds = every_fraction, every_seconds
        self.clock = clock
        self.postfix: dict[str, Any] = {}
        self.before = elapsed
        self.started = self.last_time = clock()
        self.last_n = self.n
        self.last_mark = self._mark(self.n)
        self.bar = None
        if not self.quiet and _is_terminal(self.stream):
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=self.total,
                initial=self.initial,
                desc=desc,
                unit=unit,
                file=self.stream,
                dynamic_ncols=True,
            )
        self.lines = not self.quiet and self.bar is None  # plain lines instead of a bar

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(done=exc_type is None)

    def set_postfix(self, **values: Any) -> None:
        """Values shown after the count (`loss=98.2`); numbers are shown to 4 significant digits."""
        self.postfix.update(values)
        if self.bar is not None:
            self.bar.set_postfix({k: _number(v) for k, v in self.postfix.items()}, refresh=False)

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.bar is not None:
            self.bar.update(n)
        elif self.lines:
            now = self.clock()
            if self._mark(self.n) > self.last_mark or now - self.last_time >= self.every_seconds:
                self._line(now)

    def close(self, done: bool = True) -> None:
        """End the bar; a run that stopped between lines (a time limit) gets its last line."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        elif self.lines and done and self.n != self.last_n:
            self._line(self.clock())
        self.lines = False

    # ---- plain lines ----------------------------------------------------------------
    def _mark(self, n: int) -> int:
        """How many `every_fraction`s of the total `n` has passed: a line is due when this grows."""
        if self.total <= 0:
            return 0
        return math.floor(n / (self.every_fraction * self.total) + 1e-9)  # 1e-9: 3 of 30 is 10%

    def _line(self, now: float) -> None:
        parts = [f"{self.desc} {self.unit} {self.n}/{self.total}"]
        if self.total > 0:
            parts[0] += f" ({math.floor(100 * self.n / self.total)}%)"
        parts += [f"{k} {_number(v)}" for k, v in self.postfix.items()]
        spent = now - self.started
        parts.append(_duration(self.before + spent))
        if self.initial < self.n < self.total:
            left = spent / (self.n - self.initial) * (self.total - self.n)
            parts.append(f"about {_duration(left)} left")
        try:
            print(f"genzoo: {', '.join(parts)}", file=self.stream, flush=True)
        except (OSError, ValueError):  # a closed or broken stream: progress is not worth failing for
            self.lines = False
        self.last_time, self.last_n, self.last_mark = now, self.n, self._mark(self.n)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _duration(seconds: float) -> str:
    """12.3 s, 4.5 min, 2.1 h: short, and precise enough for an estimate."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"

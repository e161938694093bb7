"""Errors a user can cause. The CLI turns these into exit code 2 and one line."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class GenzooError(Exception):
    """A problem with the user's input: unknown name, bad file, bad value.

    The message must say what was wrong and what to do about it.
    """


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """A ' (did you mean 'x'?)' hint, or '' when nothing is close."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""


def unknown_name(kind: str, name: str, choices: Iterable[str]) -> GenzooError:
    choices = sorted(choices)
    return GenzooError(
        f"unknown {kind} '{name}'{did_you_mean(name, choices)}; choose one of: {', '.join(choices)}"
    )


def first_line(err: BaseException | str, limit: int = 160) -> str:
    """The first non-empty line of an error's text, cut to `limit` characters: what a one-line
    GenzooError keeps of a third-party exception (torch and PIL write paragraphs)."""
    text = str(err).strip()
    line = text.splitlines()[0].strip() if text else type(err).__name__
    return line if len(line) <= limit else line[: limit - 3].rstrip() + "..."

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

"""Progress: a bar on a terminal, plain lines elsewhere, and the long loops inside models reporting
through `track` only when a command asked for it."""

from __future__ import annotations

import io
import re

import pytest

from genzoo.cli import main
from genzoo.progress import Progress, reporting, track

LINE = re.compile(r"genzoo: (\S+ \S+) (\S+) (\d+)/(\d+)")


class _Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_prints_every_30_seconds_on_a_slow_run():
    stream, clock = io.StringIO(), _Clock()
    with Progress(1000, "sample ddpm", stream=stream, clock=clock) as progress:
        for _ in range(50):  # 5% of the run, 12 s a step: a line at 36 s, 72 s, ... and every 10%
            clock.now += 12.0
            progress.update(1)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "genzoo: sample ddpm step 3/1000 (0%), 36.0 s, about 3.3 h left"
    assert len(lines) == 17  # 16 at 30 s intervals (3 steps each), then the last on close
    assert lines[-1] == "genzoo: sample ddpm step 50/1000 (5%), 10.0 min, about 3.2 h left"


def test_progress_on_a_terminal_is_a_bar_and_quiet_is_silent():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    with Progress(10, "train x", stream=terminal) as progress:
        progress.set_postfix(loss=1.5)
        progress.update(10)
    assert "genzoo:" not in terminal.getvalue() and "10/10" in terminal.getvalue()
    for stream in (Terminal(), io.StringIO()):
        with Progress(10, "train x", quiet=True, stream=stream) as progress:
            progress.update(10)
        assert stream.getvalue() == ""


def test_track_is_silent_unless_a_command_asked(capsys):
    assert list(track(range(5))) == [0, 1, 2, 3, 4]
    assert capsys.readouterr().err == ""
    with reporting("sample x", quiet=True):
        assert list(track(range(5))) == [0, 1, 2, 3, 4]
    assert capsys.readouterr().err == ""


def test_track_reports_the_outer_loop_only_and_counts_an_early_stop(capsys):
    with reporting("sample x"):
        seen = [(i, j) for i in track(range(10), unit="row") for j in track(range(3))]
        for i in track(range(20), unit="token"):
            if i == 9:
                break
    assert len(seen) == 30
    lines = [LINE.match(line).groups() for line in capsys.readouterr().err.splitlines()]
    assert ("sample x", "row", "10", "10") in lines and all(unit != "step" for _, unit, _, _ in lines)
    assert lines[-1] == ("sample x", "token", "10", "20")  # the item the loop stopped at counts


def test_track_after_reporting_is_silent_again(capsys):
    with reporting("sample x"):
        pass
    list(track(range(3)))
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    "command",
    [
        ["sample", "{run}", "-n", "2", "--out", "{tmp}/s.npy"],
        ["inpaint", "{run}", "--split", "test", "-n", "2", "--mask", "center", "--out", "{tmp}/f.npy"],
        ["evaluate", "{run}", "--metrics", "nll"],
    ],
    ids=["sample", "inpaint", "evaluate"],
)
def test_long_commands_show_progress_lines_unless_quiet(ddpm_run, tmp_path, capsys, command):
    command = [part.format(run=ddpm_run, tmp=tmp_path) for part in command]
    assert main(command) == 0
    lines = [LINE.match(line) for line in capsys.readouterr().err.splitlines()]
    assert lines and all(lines), "every stderr line is a progress line"
    assert lines[-1].group(1) == f"{command[0]} ddpm" and lines[-1].group(3) == lines[-1].group(4)
    assert main([*command, "--quiet"]) == 0
    assert capsys.readouterr().err == ""

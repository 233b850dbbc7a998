"""The stage timer: a line per stage on a terminal, none in a log; no source paths (issue #22)."""

from __future__ import annotations

import io

from rich.console import Console

from fairmerge.study.timing import StageTimer


def test_stage_line_names_the_stage_without_a_source_path() -> None:
    stream = io.StringIO()
    timer = StageTimer(Console(file=stream, width=200, force_terminal=True, color_system=None))
    with timer("train"):
        pass
    text = stream.getvalue()
    assert timer.progress and text.startswith("train: ") and text.rstrip().endswith(" s")
    assert "timing.py" not in text
    assert set(timer.rounded()) == {"train"}


def test_a_log_gets_no_line_per_stage_and_no_progress_bars() -> None:
    """Not a terminal (a log, CI, a pipe): the closing time per stage is the only timing output."""
    stream = io.StringIO()
    timer = StageTimer(Console(file=stream, width=200, force_terminal=False))
    with timer("train: fft"):
        pass
    assert stream.getvalue() == "" and not timer.progress
    assert set(timer.rounded()) == {"train: fft"} and not StageTimer().progress

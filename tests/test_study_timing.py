"""The stage timer's console lines carry no source paths (issue #22: no source paths in run output)."""

from __future__ import annotations

import io

from rich.console import Console

from fairmerge.study.timing import StageTimer


def test_stage_line_names_the_stage_without_a_source_path() -> None:
    stream = io.StringIO()
    timer = StageTimer(Console(file=stream, width=200, force_terminal=False))
    with timer("train"):
        pass
    text = stream.getvalue()
    assert text.startswith("train: ") and text.rstrip().endswith(" s")
    assert "timing.py" not in text
    assert set(timer.rounded()) == {"train"}

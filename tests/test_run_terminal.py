"""What ``fairmerge run --fast`` prints, start to end, fits one screen (issue #25, item 5).

Reads the shared ``fast_study`` run (a child process writing to a 120-column log, not a terminal):
no study of its own.
"""

from __future__ import annotations

import math
from pathlib import Path

SCREEN_LINES, SCREEN_COLUMNS = 60, 120


def screen_lines(text: str) -> int:
    """Lines the text takes at 120 columns; a carriage return (a progress bar's redraw) counts as a line."""
    lines = text.replace("\r", "\n").splitlines()
    return sum(max(1, math.ceil(len(line) / SCREEN_COLUMNS)) for line in lines)


def test_the_whole_output_of_run_fast_fits_60_lines_at_120_columns(fast_study: tuple[Path, Path]) -> None:
    out, _ = fast_study
    stdout = (out.parent / "stdout.txt").read_text()
    stderr = (out.parent / "stderr.txt").read_text()
    text = stdout + stderr
    assert screen_lines(text) <= SCREEN_LINES, text
    # no per-item progress in a log: no bars, no line per fine-tune or per stage
    assert "samples/s" not in text and "it/s" not in text and "epoch(s)" not in text
    assert "sweep: merge (val):" not in text
    # what the compact lines keep: split sizes, the small groups, where the per-group table is
    lines = stderr.splitlines()
    assert lines[0].startswith("hatexplain (hate): train 15,383 / val 1,922 / test 1,924 examples")
    assert any(
        line.startswith("groups under 30 posts (min_group_size): ") and "gender/Men 6" in line
        for line in lines
    )
    assert any("fairmerge data summary hatexplain -o label_scheme=hate" in line for line in lines)
    assert any(line.startswith("time per stage (s): train ") for line in lines)


def test_screen_lines_counts_wrapped_lines_and_redraws() -> None:
    assert screen_lines("a\n" + "b" * 121 + "\n") == 3
    assert screen_lines("bar 10%\rbar 20%\n") == 2

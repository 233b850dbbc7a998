"""Wall time per study stage, printed at the end of a run and stored in summary.json."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from rich.console import Console


class StageTimer:
    """Accumulates seconds per named stage; on a terminal, says when each stage ends.

    With a console that is a terminal, each stage's end is one line and the fine-tunes timed
    under it show their progress bars (:attr:`progress`). Anywhere else (a log, CI, a pipe) nothing
    is printed per stage or per fine-tune: the run's closing lines give the time per stage once,
    so the whole output of ``run --fast`` stays one screen.
    """

    def __init__(self, console: Console | None = None) -> None:
        self.seconds: dict[str, float] = {}
        self.console = console

    @property
    def progress(self) -> bool:
        """Whether per-item progress (bars, one line per fine-tune) goes to the console."""
        return self.console is not None and self.console.is_terminal

    @contextlib.contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            self.seconds[stage] = self.seconds.get(stage, 0.0) + elapsed
            if self.console is not None and self.progress:
                self.console.print(f"{stage}: {elapsed:.1f} s", markup=False)  # fft[balanced] is no tag

    def rounded(self) -> dict[str, float]:
        return {stage: round(value, 1) for stage, value in self.seconds.items()}

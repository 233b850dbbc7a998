"""Wall time per study stage, printed at the end of a run and stored in summary.json."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from rich.console import Console


class StageTimer:
    """Accumulates seconds per named stage; with a console, says when each stage ends."""

    def __init__(self, console: Console | None = None) -> None:
        self.seconds: dict[str, float] = {}
        self.console = console

    @contextlib.contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            self.seconds[stage] = self.seconds.get(stage, 0.0) + elapsed
            if self.console is not None:
                self.console.print(f"{stage}: {elapsed:.1f} s", markup=False)  # fft[balanced] is no tag

    def rounded(self) -> dict[str, float]:
        return {stage: round(value, 1) for stage, value in self.seconds.items()}

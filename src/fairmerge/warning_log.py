"""Python warnings, each distinct one printed once: with a count and what it covered, no source path.

A command runs inside :class:`WarningCollector` (the CLI's ``main`` does this), which records every
warning instead of printing it and prints one line per distinct (category, message) when the
command ends (not when it fails: then the error line is all)::

    warning: UndefinedMetricWarning: undefined (NaN): … (104 times; split: test, val; model: fft, merge)

Code that knows what it is working on labels the warnings raised inside it with
:func:`warning_context`, e.g. ``with warning_context(split="val", model="merge"):`` around one
evaluation; the labels are collected per distinct warning.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import TextIO

_CONTEXT: contextvars.ContextVar[tuple[tuple[str, str], ...]] = contextvars.ContextVar(
    "fairmerge_warning_context", default=()
)


@contextlib.contextmanager
def warning_context(**labels: object) -> Iterator[None]:
    """Label the warnings raised in the block (``split="val"``, ``model="fft"``, …); nests."""
    token = _CONTEXT.set(_CONTEXT.get() + tuple((k, str(v)) for k, v in labels.items()))
    try:
        yield
    finally:
        _CONTEXT.reset(token)


@dataclass
class _Seen:
    count: int = 0
    labels: dict[str, list[str]] = field(default_factory=dict)

    def add(self, context: tuple[tuple[str, str], ...]) -> None:
        self.count += 1
        for key, value in context:
            values = self.labels.setdefault(key, [])
            if value not in values:
                values.append(value)


def format_warning(category: str, message: str, count: int, labels: dict[str, list[str]]) -> str:
    """One line: ``warning: Category: message (N times; key: a, b)`` (count and labels when any)."""
    text = " ".join(message.split())
    details = [f"{count} times"] if count > 1 else []
    details += [f"{key}: {', '.join(sorted(values))}" for key, values in labels.items()]
    return f"warning: {category}: {text}" + (f" ({'; '.join(details)})" if details else "")


class WarningCollector:
    """Record the process's Python warnings in a ``with`` block; print each distinct one once at its end.

    When the block fails (an exception other than Ctrl-C or a zero exit), nothing is printed: the
    failing command's one error line is its whole message. Filters that ignore a warning still
    apply; warnings that would be shown once per source line are all counted.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream
        self.seen: dict[tuple[str, str], _Seen] = {}
        self._guard: warnings.catch_warnings[None] | None = None

    def _record(
        self,
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        key = (category.__name__, str(message))
        self.seen.setdefault(key, _Seen()).add(_CONTEXT.get())

    def lines(self) -> list[str]:
        """The formatted lines, in the order the warnings first appeared."""
        return [format_warning(c, m, s.count, s.labels) for (c, m), s in self.seen.items()]

    def __enter__(self) -> WarningCollector:
        self._guard = warnings.catch_warnings()
        self._guard.__enter__()
        warnings.filterwarnings("always", append=True)  # after the ignores: count every occurrence
        warnings.showwarning = self._record
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._guard is not None
        self._guard.__exit__(kind, exc, traceback)
        if exc is not None and not isinstance(exc, KeyboardInterrupt) and getattr(exc, "exit_code", 1) != 0:
            return  # a failing command prints its one error line, nothing else
        stream = self.stream or sys.stderr
        for line in self.lines():
            stream.write(line + "\n")
        stream.flush()

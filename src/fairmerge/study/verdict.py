"""A short written verdict, generated from the numbers (never hand-written into the report)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any


def _fmt(value: float) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def strategy_verdict(
    fft: Mapping[str, Any],
    candidates: Sequence[Mapping[str, Any]],
    tests: Mapping[str, Mapping[str, Mapping[str, Mapping[str, float]]]],
    attributes: Sequence[str],
    *,
    accuracy_margin: float = 0.02,
) -> str:
    """Which merged models keep test accuracy within ``accuracy_margin`` of FFT with a lower EOD.

    ``candidates`` are headline rows (with ``model``, ``accuracy`` and ``{attr}_eod``); ``tests`` maps
    a model label to its paired-bootstrap result per attribute vs FFT (``{attr: {"eod": {...}}}``).
    """
    lines = []
    winners = []
    for row in candidates:
        close = row["accuracy"] >= fft["accuracy"] - accuracy_margin
        lower = [a for a in attributes if row.get(f"{a}_eod", math.nan) < fft.get(f"{a}_eod", math.nan)]
        if close and lower:
            winners.append(row["model"])
            for attribute in lower:
                test = tests.get(row["model"], {}).get(attribute, {}).get("eod", {})
                significant = test and test["ci_high"] < 0
                lines.append(
                    f"{row['model']}: accuracy {_fmt(row['accuracy'])} vs FFT {_fmt(fft['accuracy'])}; "
                    f"{attribute} EOD {_fmt(row[f'{attribute}_eod'])} vs FFT {_fmt(fft[f'{attribute}_eod'])} "
                    + (
                        f"(paired bootstrap Δ {_fmt(test['delta'])}, 95% CI [{_fmt(test['ci_low'])}, "
                        f"{_fmt(test['ci_high'])}]: "
                        + ("the reduction is outside the CI." if significant else "within noise.")
                        + ")"
                        if test
                        else "(no paired test available)."
                    )
                )
    if not winners:
        best = max(candidates, key=lambda r: r["accuracy"], default=None)
        summary = (
            f"No merged model keeps test accuracy within {accuracy_margin:.2f} of FFT "
            f"({_fmt(fft['accuracy'])}) while lowering EOD on {', '.join(attributes)}."
        )
        if best is not None:
            summary += f" The most accurate is {best['model']} at {_fmt(best['accuracy'])}."
        return summary
    return (
        f"Within {accuracy_margin:.2f} of FFT's test accuracy with a lower EOD: {', '.join(winners)}. "
        + " ".join(lines)
    )

"""The comparison table: one row per model, Δaccuracy / ΔDPD / ΔEOD vs FFT per attribute, with marks.

Each cell is the estimate, a mark of where its interval lies (▼ lower, ▲ higher, ○ no detectable
difference, n/a undefined with a numbered reason) and the comparison's role (P primary, S secondary,
E exploratory), then the interval on a second line. A secondary whose interval excludes 0 without
Holm rejecting is tagged ``ns``. Models whose selected point edits nothing (λ = 0: θ_base or FFT)
are listed apart. The same table is printed in the terminal and shown in the report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from fairmerge.report.tables import NA, fmt_number, is_missing
from fairmerge.study.verdict import classify, interval_mark, role_of

MARKS = {"lower": "▼", "higher": "▲", "no detectable difference": "○", "undefined": NA}
ROLES = {"primary": "P", "secondary": "S", "exploratory": "E"}
LEGEND = (
    "▼ interval below 0 (lower than FFT), ▲ above 0 (higher), ○ includes 0 (no detectable difference), "
    "n/a undefined (reason below). P primary (tested alone at α), S secondary (Holm over the secondaries; "
    "ns: interval excludes 0 but Holm does not reject), E exploratory (interval only, no claim)."
)
_METRIC_TITLES = {"accuracy": "Δacc", "dpd": "ΔDPD", "eod": "ΔEOD"}


@dataclass(frozen=True)
class ComparisonMatrix:
    """``edits`` and ``unedited`` (same columns; ``model`` first), and the numbered undefined reasons."""

    edits: pd.DataFrame
    unedited: pd.DataFrame
    reasons: list[str]


def comparison_matrix(
    comparisons: Sequence[Mapping[str, Any]], unedited: Mapping[str, str], *, alpha: float = 0.05
) -> ComparisonMatrix:
    """The table of ``summary.json``'s ``comparisons``; ``unedited`` maps each model whose selected
    point edits nothing to what it is (``StudySummary.unedited``)."""
    columns = _columns(comparisons)
    reasons: list[str] = []
    cells: dict[str, dict[str, str]] = {}
    for row in comparisons:
        model = str(row["model"])
        cells.setdefault(model, {"model": model})[columns[_key(row)]] = _cell(row, reasons, alpha)
    titles = ["model", *columns.values()]
    edits = [row for model, row in cells.items() if model not in unedited]
    points = [
        row | {"model": f"{model} = {unedited[model]}"} for model, row in cells.items() if model in unedited
    ]
    return ComparisonMatrix(
        pd.DataFrame(edits, columns=titles, dtype=object).fillna(""),
        pd.DataFrame(points, columns=titles, dtype=object).fillna(""),
        reasons,
    )


def _key(row: Mapping[str, Any]) -> tuple[str, str]:
    return str(row["attribute"]), str(row["metric"])


def _columns(comparisons: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], str]:
    """(attribute, metric) → column title, accuracy first; a DPD title carries the labels' own DPD."""
    keys = sorted(
        dict.fromkeys(_key(r) for r in comparisons), key=lambda k: (k[1] != "accuracy", k[0] == "all")
    )
    labels = {_key(r): r.get("labels_dpd") for r in comparisons if not is_missing(r.get("labels_dpd"))}
    titles = {}
    for attribute, metric in keys:
        title = (
            _METRIC_TITLES.get(metric, metric)
            if attribute == "all"
            else f"{attribute} {_METRIC_TITLES.get(metric, metric)}"
        )
        if (attribute, metric) in labels:
            title += f" (labels {fmt_number(labels[attribute, metric], 2)})"
        titles[attribute, metric] = title
    return titles


def _cell(row: Mapping[str, Any], reasons: list[str], alpha: float) -> str:
    mark, role = interval_mark(row), role_of(row)
    tag = ROLES.get(role, role)
    if mark == "undefined":
        reason = str(row.get("reason") or "too few qualifying groups or posts")
        if reason not in reasons:
            reasons.append(reason)
        return f"{NA} ({reasons.index(reason) + 1}) {tag}"
    if role == "secondary" and classify(row, alpha=alpha) == "not significant after Holm":
        tag += " ns"
    estimate = f"{float(row['delta']):+.3f}"
    return f"{estimate} {MARKS[mark]} {tag}\n[{fmt_number(row['ci_low'])}, {fmt_number(row['ci_high'])}]"

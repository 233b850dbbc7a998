"""From a searcher's validation front to its one selected point and its test scores.

The configured selection rule picks from the front (:func:`fairmerge.sweep.selection.select_point`
on the front's validation metrics). Only the front's points are scored on test, once each (the
:class:`Evaluations` cache makes a second request free and uncounted), with intervals.
``pareto_front.csv`` holds one row per front point and split.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import pandas as pd

from fairmerge.atomic import atomic_write_text
from fairmerge.errors import DataError
from fairmerge.search.problem import Evaluations, ScoredPoint, SearchResult
from fairmerge.sweep.selection import Rule, Selection, point_metrics, select_point


def select_from_front(
    result: SearchResult,
    evaluations: Evaluations,
    rule: Rule,
    *,
    epsilon: float = 0.1,
    delta: float = 0.02,
    reference_accuracy: float | None = None,
    attributes: Sequence[str] | None = None,
) -> tuple[ScoredPoint, Selection]:
    """The front point the rule picks on validation (ties: the smaller edit, max |λ|)."""
    if not result.front:
        raise DataError(f"{result.method}: the search found no point with defined objectives")
    rows = [point_metrics(evaluations.frame(p.coefficients)) for p in result.front]
    table = pd.DataFrame(rows)
    table.insert(0, "lambda", [max(abs(c) for c in p.coefficients) for p in result.front])
    selection = select_point(
        table,
        rule,
        epsilon=epsilon,
        delta=delta,
        reference_accuracy=reference_accuracy,
        attributes=attributes,
    )
    return result.front[int(selection.index)], selection  # type: ignore[call-overload]


def score_front_on_test(result: SearchResult, evaluations: Evaluations) -> list[ScoredPoint]:
    """Each front point's objectives on test, with intervals (each model scored on test once)."""
    return [evaluations(p.coefficients, "test", p.info) for p in result.front]


def front_frame(result: SearchResult, test: Sequence[ScoredPoint] = ()) -> pd.DataFrame:
    """``pareto_front.csv`` rows: model, point, split, λ per name, value/ci_low/ci_high per objective."""
    rows = []
    for split, points in (("val", result.front), ("test", list(test))):
        for index, point in enumerate(points):
            row: dict[str, object] = {"model": result.method, "point": index, "split": split}
            row.update(
                {f"lambda_{n}": c for n, c in zip(result.space.names, point.coefficients, strict=True)}
            )
            row.update({k: v for k, v in point.info.items()})
            for objective, value, (low, high) in zip(
                result.objectives, point.values, point.intervals, strict=True
            ):
                row[objective.name] = value
                row[f"{objective.name}_ci_low"] = low
                row[f"{objective.name}_ci_high"] = high
            rows.append(row)
    return pd.DataFrame(rows)


def write_front_csv(path: str | os.PathLike[str], frames: Sequence[pd.DataFrame]) -> None:
    """Every searcher's front in one CSV, written atomically."""
    atomic_write_text(path, pd.concat(list(frames), ignore_index=True).to_csv(index=False))

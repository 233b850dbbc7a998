"""The one declaration of every rate and gap fairmerge reports, and of their wide column names.

A :class:`Rate` is computed for every group (and overall) from confusion cells; a :class:`Gap` is
computed once per attribute from the groups that qualify for its rate. Each is declared once here
with its display name, its cells or its aggregation, the count a group needs to qualify and its
direction; ``group_metrics``, the study's tables and the report read them from here. Adding a
metric is one :func:`register` call (``tests/test_fairness_registry.py`` registers a toy one).

Wide tables (one row per model) name a per-attribute value ``{attribute}_{metric}``:
:func:`wide_column` builds such a name and :func:`split_wide_column` parses it, nowhere else.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

Cell = Literal["tp", "fp", "fn", "tn"]
CELLS: tuple[Cell, ...] = ("tp", "fp", "fn", "tn")
"""Confusion cells, in the order of the count arrays of :mod:`fairmerge.fairness.metrics`."""

Qualifier = Literal["posts", "positives", "negatives"]
"""What a group needs enough of to enter a gap over a rate: min_group_size posts, min_positives
positives or min_negatives negatives (:class:`fairmerge.fairness.metrics.Thresholds`)."""

Aggregation = Literal["spread", "min", "count", "max"]
"""How a gap is made: max − min of a rate over qualifying groups (``spread``), its minimum
(``min``), the number of qualifying groups (``count``), or the max of other gaps (``max``)."""

Direction = Literal["higher", "lower", "none"]


@dataclass(frozen=True)
class Rate:
    """A per-group metric: sum of ``numerator`` cells over sum of ``denominator`` cells (NaN when
    that is 0); with no denominator it is a count (``n``)."""

    name: str
    display: str
    numerator: tuple[Cell, ...]
    denominator: tuple[Cell, ...] = ()
    qualifies_by: Qualifier = "posts"
    direction: Direction = "none"

    @property
    def is_count(self) -> bool:
        return not self.denominator


@dataclass(frozen=True)
class Gap:
    """A per-attribute metric (group ``all``) aggregated from ``source`` (a rate, or gaps for ``max``)."""

    name: str
    display: str
    source: tuple[str, ...]
    aggregation: Aggregation
    direction: Direction = "lower"
    headline: bool = False
    """Shown in the headline tables (summary.json ``headline``, the report) next to accuracy."""

    @property
    def is_count(self) -> bool:
        return self.aggregation == "count"


_RATES: dict[str, Rate] = {}
_GAPS: dict[str, Gap] = {}


def register(metric: Rate | Gap) -> None:
    """Declare a metric; it then appears in ``group_metrics`` frames, ``metrics.csv`` and the report."""
    if metric.name in _RATES or metric.name in _GAPS:
        raise ValueError(f"metric {metric.name!r} is already registered")
    if isinstance(metric, Rate):
        _RATES[metric.name] = metric
        return
    # a ``max`` gap may name gaps declared after it (EOD is reported before the TPR and FPR gaps)
    missing = [] if metric.aggregation == "max" else [s for s in metric.source if s not in _RATES]
    if missing or not metric.source:
        raise ValueError(f"gap {metric.name!r} aggregates unknown metrics {missing or '()'}")
    _GAPS[metric.name] = metric


def unregister(name: str) -> None:
    """Remove a metric (nothing may depend on it)."""
    users = [g.name for g in _GAPS.values() if name in g.source]
    if users:
        raise ValueError(f"metric {name!r} is used by {users}")
    _RATES.pop(name, None)
    _GAPS.pop(name, None)


@contextlib.contextmanager
def registered(*metrics: Rate | Gap) -> Iterator[None]:
    """Metrics registered for the duration of a ``with`` block (tests, experiments)."""
    for metric in metrics:
        register(metric)
    try:
        yield
    finally:
        for metric in reversed(metrics):
            unregister(metric.name)


def rates() -> tuple[Rate, ...]:
    """Every per-group metric, in reporting order."""
    return tuple(_RATES.values())


def gaps() -> tuple[Gap, ...]:
    """Every per-attribute metric, in reporting order."""
    return tuple(_GAPS.values())


def headline_gaps() -> tuple[str, ...]:
    """The per-attribute metrics of every headline row (``{attribute}_{gap}`` columns)."""
    return tuple(g.name for g in _GAPS.values() if g.headline)


def rate_names() -> tuple[str, ...]:
    return tuple(_RATES)


def gap_names() -> tuple[str, ...]:
    return tuple(_GAPS)


def count_names() -> frozenset[str]:
    """Metrics that are counts: reported without an interval."""
    metrics: list[Rate | Gap] = [*rates(), *gaps()]
    return frozenset(m.name for m in metrics if m.is_count)


def display_name(name: str) -> str | None:
    """The declared display name of a metric, or None for a name that is not a registered metric."""
    metric = _RATES.get(name) or _GAPS.get(name)
    return None if metric is None else metric.display


def direction(name: str) -> Direction:
    metric = _RATES.get(name) or _GAPS.get(name)
    return "none" if metric is None else metric.direction


def wide_column(attribute: str, metric: str, suffix: str = "") -> str:
    """The wide-table column of an attribute's metric: ``race_dpd`` (``race_dpd_ci_low`` with a suffix)."""
    return f"{attribute}_{metric}{suffix}"


def split_wide_column(column: str, attributes: Sequence[str]) -> tuple[str, str] | None:
    """``race_dpd`` → ``("race", "dpd")`` for one of ``attributes`` (longest name first), else None."""
    for attribute in sorted(attributes, key=len, reverse=True):
        prefix = f"{attribute}_"
        if column.startswith(prefix) and len(column) > len(prefix):
            return attribute, column[len(prefix) :]
    return None


def attributes_with(columns: Sequence[str], metrics: Sequence[str]) -> list[str]:
    """Attributes that have a wide column for every one of ``metrics``, sorted."""
    found: set[str] | None = None
    for metric in metrics:
        ending = f"_{metric}"
        have = {c[: -len(ending)] for c in columns if c.endswith(ending) and len(c) > len(ending)}
        found = have if found is None else found & have
    return sorted(found or ())


for _metric in (
    Rate("n", "n", CELLS),
    Rate("accuracy", "accuracy", ("tp", "tn"), CELLS, "posts", "higher"),
    Rate("selection_rate", "selection rate", ("tp", "fp"), CELLS, "posts"),
    Rate("tpr", "TPR", ("tp",), ("tp", "fn"), "positives", "higher"),
    Rate("fpr", "FPR", ("fp",), ("fp", "tn"), "negatives", "lower"),
    Gap("n_groups", "groups in gaps", ("selection_rate",), "count", "none"),
    Gap("n_groups_tpr", "groups in TPR gap", ("tpr",), "count", "none"),
    Gap("n_groups_fpr", "groups in FPR gap", ("fpr",), "count", "none"),
    Gap("dpd", "DPD", ("selection_rate",), "spread", headline=True),
    Gap("eod", "EOD", ("tpr_gap", "fpr_gap"), "max", headline=True),
    Gap("tpr_gap", "TPR gap", ("tpr",), "spread"),
    Gap("fpr_gap", "FPR gap", ("fpr",), "spread"),
    Gap("worst_group_accuracy", "worst-group accuracy", ("accuracy",), "min", "higher", headline=True),
):
    register(_metric)

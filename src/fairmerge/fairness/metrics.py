"""Group-fairness metrics over overlapping group membership, with bootstrap confidence intervals.

fairlearn's ``MetricFrame`` assumes one sensitive value per example; hate-speech posts can target
several groups of one attribute, or none. Here each group's rates are computed over the posts that
target it, from confusion counts that are matrix products of the membership matrices — the same
products, weighted by bootstrap multiplicities, give the confidence intervals (see ``bootstrap``).
Where groups do not overlap and every group qualifies, DPD and EOD equal fairlearn's
``demographic_parity_difference`` and ``equalized_odds_difference``.

Which groups enter a gap depends on the rate: a selection rate (DPD, worst-group accuracy) needs
``min_group_size`` posts, a TPR ``min_positives`` positives, an FPR ``min_negatives`` negatives.
The defaults and the interval method come from ``benchmarks/ci_coverage.py`` (docs/statistics.md).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fairmerge.errors import ConfigError, DataError
from fairmerge.fairness import registry
from fairmerge.fairness.bootstrap import INTERVALS, Interval, bootstrap_interval, bootstrap_sums
from fairmerge.fairness.proportions import wilson_interval

OVERALL = "all"
"""Attribute and group name of the rows that describe all examples or a whole attribute."""

GROUP_METRICS = registry.rate_names()
"""The built-in metrics reported for every group (and overall); registered ones: ``registry.rates()``."""

ATTRIBUTE_METRICS = registry.gap_names()
"""The built-in metrics reported once per attribute (group ``all``), over the groups that qualify;
registered ones: ``registry.gaps()``."""

COUNT_METRICS = registry.count_names()
"""The built-in counts: reported without an interval."""

MIN_GROUP_SIZE = 30
"""Default posts a group needs to enter DPD and worst-group accuracy."""
MIN_POSITIVES = 20
"""Default positives a group needs to enter the TPR gap (docs/statistics.md)."""
MIN_NEGATIVES = 20
"""Default negatives a group needs to enter the FPR gap (docs/statistics.md)."""
DEFAULT_INTERVAL: Interval = "basic"
"""Interval method of :func:`group_metrics` (coverage measured in benchmarks/ci_coverage.py)."""

QUALIFYING_COLUMNS = ["attribute", "metric", "group", "n", "positives", "negatives", "entered", "reason"]

COLUMNS = ["attribute", "group", "metric", "value", "ci_low", "ci_high"]
CONTRACT_COLUMNS = ["model", "lambda", "split", *COLUMNS]
"""The columns of every ``metrics.csv`` fairmerge writes (DESIGN.md): tidy rows with model, λ, split."""

# Confusion cells, in the order of the count arrays below.
_TP, _FP, _FN, _TN = range(4)


class UndefinedMetricWarning(UserWarning):
    """A rate or gap has no defined value (no positives, no negatives, too few groups): it is NaN."""


@dataclass(frozen=True)
class Thresholds:
    """How many posts, positives and negatives a group needs to enter each gap."""

    min_group_size: int = MIN_GROUP_SIZE
    min_positives: int = MIN_POSITIVES
    min_negatives: int = MIN_NEGATIVES

    def qualifying(self, counts: np.ndarray) -> dict[str, np.ndarray]:
        """Per registered rate, which columns enter its gaps, from full-sample confusion counts (4, C)."""
        positives = counts[_TP] + counts[_FN]
        negatives = counts[_FP] + counts[_TN]
        enough = {
            "posts": positives + negatives >= self.min_group_size,
            "positives": positives >= self.min_positives,
            "negatives": negatives >= self.min_negatives,
        }
        return {rate.name: enough[rate.qualifies_by] for rate in registry.rates()}


@dataclass(frozen=True)
class _Layout:
    """Where each attribute's groups sit among the columns of the stacked membership matrix."""

    names: list[tuple[str, str]]  # (attribute, group) per column; column 0 is the overall column
    spans: dict[str, slice]


def group_metrics(
    labels: np.ndarray,
    predictions: np.ndarray,
    memberships: Mapping[str, pd.DataFrame],
    *,
    min_group_size: int = MIN_GROUP_SIZE,
    min_positives: int = MIN_POSITIVES,
    min_negatives: int = MIN_NEGATIVES,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    interval: Interval = DEFAULT_INTERVAL,
) -> pd.DataFrame:
    """Per-group rates and per-attribute gaps, with bootstrap intervals.

    Parameters
    ----------
    labels, predictions : array of 0/1, length n
    memberships : mapping attribute -> boolean DataFrame (n × groups); a post may belong to any
        number of groups of an attribute.
    min_group_size : a group enters DPD and worst-group accuracy only with at least this many
        posts; smaller groups are still reported.
    min_positives, min_negatives : a group enters the TPR gap only with at least this many
        positives, the FPR gap only with this many negatives (:func:`qualifying_groups` lists
        which groups entered each gap and why the others did not).
    n_resamples : bootstrap resamples of posts for the gaps' intervals (one draw shared by every
        group, so overlapping groups stay consistent); 0 gives no intervals (NaN), for fast sweeps.
    confidence : nominal coverage of the intervals.
    seed : seed of the bootstrap draw.
    interval : the gaps' bootstrap interval: ``basic`` (default: the best measured coverage of the
        bootstrap methods, docs/statistics.md), ``bca``, ``bc`` or ``percentile`` (see
        :func:`fairmerge.fairness.bootstrap.bootstrap_interval`); clipped to [0, 1]. Rates (accuracy,
        selection rate, TPR, FPR of a group) get the Wilson score interval (:func:`rate_intervals`).

    Returns
    -------
    Tidy frame with columns ``attribute, group, metric, value, ci_low, ci_high``:
    overall rows (attribute and group ``all``) with n, accuracy, selection_rate, tpr, fpr; for each
    attribute and group the same five metrics; for each attribute (group ``all``) ``n_groups``,
    ``n_groups_tpr``, ``n_groups_fpr`` (groups entering DPD, the TPR gap, the FPR gap), ``dpd``
    (max - min selection rate), ``tpr_gap``, ``fpr_gap``, ``eod`` (max of the two gaps; NaN when
    either is) and ``worst_group_accuracy``. Undefined values are NaN and raise an
    :class:`UndefinedMetricWarning`, never 0. Counts have no interval.

    Gaps are a max minus a min over noisy group rates, so they are biased upward at small counts
    and their resamples sit above the estimate; the ``basic`` interval (2·estimate − quantiles)
    reflects that bias downwards. Even so gap intervals stay below nominal coverage at HateXplain's
    group sizes (docs/statistics.md): read gaps next to their permutation noise floor
    (:func:`fairmerge.fairness.noise.noise_floor`).
    """
    y, yhat = _check_binary(labels, "labels"), _check_binary(predictions, "predictions")
    if y.shape != yhat.shape:
        raise DataError(f"labels ({y.size}) and predictions ({yhat.size}) differ in length")
    if y.size == 0:
        raise DataError("cannot compute metrics on zero examples")
    check_options(
        min_group_size=min_group_size,
        min_positives=min_positives,
        min_negatives=min_negatives,
        n_resamples=n_resamples,
        confidence=confidence,
        interval=interval,
    )
    thresholds = Thresholds(min_group_size, min_positives, min_negatives)

    members, layout = _stack_memberships(memberships, y.size)
    design = _design(y, yhat, members)
    n_columns = members.shape[1]

    counts = design.sum(axis=0).reshape(4, n_columns)
    point = _rates(counts)
    qualifies = thresholds.qualifying(counts)
    attr_point = _attribute_metrics(point, qualifies, layout)
    _warn_undefined(point, attr_point, layout)

    group_ci: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    attr_ci: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
    if n_resamples > 0:
        boot_counts = bootstrap_sums(design, n_resamples=n_resamples, seed=seed).reshape(
            n_resamples, 4, n_columns
        )
        attr_boot = _attribute_metrics(_rates(np.moveaxis(boot_counts, 1, 0)), qualifies, layout)
        attr_jack = _jackknife(design, counts, qualifies, layout)[1] if interval == "bca" else {}
        counts_only = registry.count_names()
        group_ci = rate_intervals(counts, confidence)
        for key, samples in attr_boot.items():
            if key[1] not in counts_only:
                attr_ci[key] = bootstrap_interval(
                    samples[:, None],
                    attr_point[key],
                    confidence,
                    method=interval,
                    jackknife=None if key not in attr_jack else attr_jack[key][:, None],
                    support=(0.0, 1.0),
                )
                attr_ci[key] = (attr_ci[key][0][0], attr_ci[key][1][0])

    nan = float("nan")
    rows: list[tuple[str, str, str, float, float, float]] = []
    for column, (attribute, group) in enumerate(layout.names):
        for metric in registry.rate_names():
            low, high = group_ci.get(metric, (None, None))
            rows.append(
                (
                    attribute,
                    group,
                    metric,
                    float(point[metric][column]),
                    nan if low is None else float(low[column]),
                    nan if high is None else float(high[column]),
                )
            )
        if column > 0 and column == layout.spans[attribute].stop - 1:
            for metric in registry.gap_names():
                low, high = attr_ci.get((attribute, metric), (None, None))
                rows.append(
                    (
                        attribute,
                        OVERALL,
                        metric,
                        float(attr_point[attribute, metric]),
                        nan if low is None else float(low),
                        nan if high is None else float(high),
                    )
                )
    # Attributes with no group at all still get their per-attribute rows.
    for attribute, span in layout.spans.items():
        if span.start == span.stop:
            rows.extend(
                (attribute, OVERALL, m, float(attr_point[attribute, m]), nan, nan)
                for m in registry.gap_names()
            )
    return pd.DataFrame(rows, columns=COLUMNS)


def headline(frame: pd.DataFrame) -> dict[str, float]:
    """Flat summary of a :func:`group_metrics` frame for model selection and tables.

    Keys: ``accuracy`` and, per attribute, ``{attr}_{gap}`` for every headline gap of the registry
    (``dpd``, ``eod``, ``worst_group_accuracy`` and any registered one).
    """
    values = frame.set_index(["attribute", "group", "metric"])["value"]
    out = {"accuracy": float(values[(OVERALL, OVERALL, "accuracy")])}
    for attribute in dict.fromkeys(frame["attribute"]):
        if attribute == OVERALL:
            continue
        for metric in registry.headline_gaps():
            out[registry.wide_column(attribute, metric)] = float(values[(attribute, OVERALL, metric)])
    return out


def qualifying_groups(
    labels: np.ndarray,
    memberships: Mapping[str, pd.DataFrame],
    *,
    min_group_size: int = MIN_GROUP_SIZE,
    min_positives: int = MIN_POSITIVES,
    min_negatives: int = MIN_NEGATIVES,
) -> pd.DataFrame:
    """Which groups enter each gap of each attribute, and why the others do not.

    One row per (attribute, metric, group) with metric ``dpd`` (selection rates; the same groups
    enter worst-group accuracy), ``tpr_gap`` and ``fpr_gap`` (EOD uses both): the group's n,
    positives and negatives, ``entered`` and a ``reason`` such as ``"11 positives < min_positives
    20"`` (empty when the group entered). Depends on the labels only, never on a model.
    """
    y = _check_binary(labels, "labels")
    check_options(min_group_size=min_group_size, min_positives=min_positives, min_negatives=min_negatives)
    members, layout = _stack_memberships(memberships, y.size)
    positives = (members * y[:, None]).sum(axis=0)
    sizes = members.sum(axis=0)
    negatives = sizes - positives
    needs = {
        "dpd": (sizes, min_group_size, "posts", "min_group_size"),
        "tpr_gap": (positives, min_positives, "positives", "min_positives"),
        "fpr_gap": (negatives, min_negatives, "negatives", "min_negatives"),
    }
    rows = []
    for attribute, span in layout.spans.items():
        for metric, (have, need, what, option) in needs.items():
            for column in range(span.start, span.stop):
                entered = bool(have[column] >= need)
                reason = "" if entered else f"{int(have[column])} {what} < {option} {need}"
                rows.append(
                    (
                        attribute,
                        metric,
                        layout.names[column][1],
                        int(sizes[column]),
                        int(positives[column]),
                        int(negatives[column]),
                        entered,
                        reason,
                    )
                )
    return pd.DataFrame(rows, columns=QUALIFYING_COLUMNS)


def check_options(
    *,
    min_group_size: int = MIN_GROUP_SIZE,
    min_positives: int = MIN_POSITIVES,
    min_negatives: int = MIN_NEGATIVES,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    interval: str = DEFAULT_INTERVAL,
) -> None:
    """Reject option values :func:`group_metrics` cannot use (callers check before costly work)."""
    for name, value in (
        ("min_group_size", min_group_size),
        ("min_positives", min_positives),
        ("min_negatives", min_negatives),
    ):
        if value < 1:
            raise ConfigError(f"{name} must be >= 1, got {value}")
    if interval not in INTERVALS:
        raise ConfigError(f"interval must be one of {list(INTERVALS)}, got {interval!r}")
    if n_resamples < 0:
        raise ConfigError(f"n_resamples must be >= 0, got {n_resamples}")
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"confidence must be in (0, 1), got {confidence}")


def _check_binary(values: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise DataError(f"{name} must be one-dimensional, got shape {array.shape}")
    if array.size and not np.isin(array, (0, 1)).all():
        other = sorted(set(np.unique(array).tolist()) - {0, 1})[:5]
        raise DataError(f"{name} must be binary 0/1, found values such as {other}")
    return array.astype(np.int64)


def _stack_memberships(memberships: Mapping[str, pd.DataFrame], n: int) -> tuple[np.ndarray, _Layout]:
    """One n × C 0/1 matrix: a column of ones (overall), then every attribute's group columns."""
    blocks = [np.ones((n, 1), dtype=np.int64)]
    names: list[tuple[str, str]] = [(OVERALL, OVERALL)]
    spans: dict[str, slice] = {}
    for attribute, frame in memberships.items():
        if attribute == OVERALL:
            raise DataError(f"attribute name {OVERALL!r} is reserved for the overall rows")
        if len(frame) != n:
            raise DataError(f"membership of attribute {attribute!r} has {len(frame)} rows, expected {n}")
        groups = [str(g) for g in frame.columns]
        if OVERALL in groups:
            raise DataError(f"attribute {attribute!r} has a group named {OVERALL!r}, which is reserved")
        if len(set(groups)) != len(groups):
            raise DataError(f"attribute {attribute!r} has duplicate group names")
        block = frame.to_numpy()
        if block.size and not np.isin(block, (0, 1)).all():
            raise DataError(f"membership of attribute {attribute!r} must be boolean")
        start = len(names)
        blocks.append(block.astype(np.int64).reshape(n, len(groups)))
        names.extend((attribute, g) for g in groups)
        spans[attribute] = slice(start, len(names))
    return np.concatenate(blocks, axis=1), _Layout(names, spans)


def _design(y: np.ndarray, yhat: np.ndarray, members: np.ndarray) -> np.ndarray:
    """n × 4C indicators: ``design[i, k * C + c] = 1`` when post i is in column c and in confusion cell k."""
    cells = np.stack([y & yhat, (1 - y) & yhat, y & (1 - yhat), (1 - y) & (1 - yhat)], axis=1)
    return (cells[:, :, None] * members[:, None, :]).reshape(y.size, -1).astype(np.float64)


def _jackknife(
    design: np.ndarray, counts: np.ndarray, qualifies: Mapping[str, np.ndarray], layout: _Layout
) -> tuple[dict[str, np.ndarray], dict[tuple[str, str], np.ndarray]]:
    """Leave-one-post-out rates and gaps (BCa's acceleration): the full counts minus each row."""
    loo = np.moveaxis((counts.reshape(1, -1) - design).reshape(design.shape[0], 4, -1), 1, 0)
    rates = _rates(loo)
    return rates, _attribute_metrics(rates, qualifies, layout)


def rates(counts: np.ndarray) -> dict[str, np.ndarray]:
    """Every registered rate from confusion counts shaped (4, ...): NaN where a denominator is 0."""
    cells = dict(zip(registry.CELLS, counts, strict=True))
    out = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        for rate in registry.rates():
            numerator = _cell_sum(cells, rate.numerator)
            if rate.is_count:
                out[rate.name] = numerator
            else:
                denominator = _cell_sum(cells, rate.denominator)
                out[rate.name] = np.where(denominator > 0, numerator / denominator, np.nan)
    return out


def rate_intervals(counts: np.ndarray, confidence: float = 0.95) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Wilson score interval of every registered (non-count) rate from confusion counts (4, C).

    A rate is successes over trials of one group, so it gets the binomial score interval
    (:func:`fairmerge.fairness.proportions.wilson_interval`), not a bootstrap one: the basic
    bootstrap covered overall accuracy 0.93–0.94 at nominal 0.95 on HateXplain's test split, where
    Wilson covers 0.95 (docs/statistics.md §2). NaN where the rate is undefined.
    """
    cells = dict(zip(registry.CELLS, counts, strict=True))
    return {
        rate.name: wilson_interval(
            _cell_sum(cells, rate.numerator), _cell_sum(cells, rate.denominator), confidence
        )
        for rate in registry.rates()
        if not rate.is_count
    }


def _cell_sum(cells: Mapping[str, np.ndarray], names: Sequence[str]) -> np.ndarray:
    total = cells[names[0]]
    for name in names[1:]:
        total = total + cells[name]
    return total


_rates = rates  # the name noise.py, comparisons.py and benchmarks/ci_coverage.py import


def _spread(values: np.ndarray) -> np.ndarray:
    """max - min over the last axis ignoring NaN; NaN where fewer than two values are defined."""
    defined = ~np.isnan(values)
    high = np.where(defined, values, -np.inf).max(axis=-1, initial=-np.inf)
    low = np.where(defined, values, np.inf).min(axis=-1, initial=np.inf)
    return np.where(defined.sum(axis=-1) >= 2, high - low, np.nan)


def attribute_metrics(
    rates: dict[str, np.ndarray], qualifies: Mapping[str, np.ndarray], layout: _Layout
) -> dict[tuple[str, str], np.ndarray]:
    """Every registered gap of every attribute, each over the groups that qualify for its rate.

    Which groups qualify is decided once, on the full sample; in a bootstrap resample a qualifying
    group whose rate happens to be undefined is left out of that resample's gap.
    """
    out: dict[tuple[str, str], np.ndarray] = {}
    for attribute, span in layout.spans.items():
        values: dict[str, np.ndarray] = {}
        for gap in registry.gaps():
            if not _base_rates(gap.name) <= rates.keys():  # the caller computed only some rates
                continue  # (e.g. the power simulation's four): it gets the gaps those support
            out[attribute, gap.name] = _gap(gap.name, rates, qualifies, span, values)
    return out


def _gap(
    name: str,
    rates: dict[str, np.ndarray],
    qualifies: Mapping[str, np.ndarray],
    span: slice,
    done: dict[str, np.ndarray],
) -> np.ndarray:
    """One gap over the columns of ``span``, memoised in ``done`` (``max`` gaps reuse other gaps)."""
    if name in done:
        return done[name]
    gap = next((g for g in registry.gaps() if g.name == name), None)
    if gap is None:
        raise ValueError(f"gap aggregates unknown gap {name!r}")
    if gap.aggregation == "max":
        parts = [_gap(source, rates, qualifies, span, done) for source in gap.source]
        value = parts[0]
        for part in parts[1:]:
            value = np.maximum(value, part)  # NaN if any part is NaN
    else:
        rate = gap.source[0]
        keep = np.flatnonzero(qualifies[rate][span]) + span.start
        picked = rates[rate][..., keep]
        if gap.aggregation == "count":
            value = np.asarray(float(qualifies[rate][span].sum()))
        elif gap.aggregation == "spread":
            value = _spread(picked)
        else:
            value = _lowest(picked)
    done[name] = value
    return value


def _base_rates(name: str) -> set[str]:
    """The rates a gap is computed from (through the gaps a ``max`` gap takes)."""
    gap = next(g for g in registry.gaps() if g.name == name)
    if gap.aggregation == "max":
        return set().union(*(_base_rates(source) for source in gap.source))
    return {gap.source[0]}


def _lowest(values: np.ndarray) -> np.ndarray:
    """min over the last axis ignoring NaN; NaN where no value is defined."""
    defined = ~np.isnan(values)
    low = np.where(defined, values, np.inf).min(axis=-1, initial=np.inf)
    return np.where(defined.any(axis=-1), low, np.nan)


_attribute_metrics = attribute_metrics  # the name noise.py, comparisons.py and benchmarks import


def _warn_undefined(
    point: dict[str, np.ndarray], attr_point: dict[tuple[str, str], np.ndarray], layout: _Layout
) -> None:
    """One warning listing every undefined rate and gap of the full-sample estimate."""
    counts = registry.count_names()
    undefined = [
        f"{metric} of {attribute}/{group}"
        for column, (attribute, group) in enumerate(layout.names)
        for metric in registry.rate_names()
        if metric not in counts and np.isnan(point[metric][column])
    ]
    undefined += [
        f"{metric} of {attribute}"
        for (attribute, metric), value in attr_point.items()
        if metric not in counts and np.isnan(value)
    ]
    if undefined:
        warnings.warn(
            "undefined (NaN): "
            + ", ".join(undefined)
            + " — no positives (TPR), no negatives (FPR), no posts, or fewer than two groups qualify"
            " (min_group_size posts for DPD, min_positives for the TPR gap, min_negatives for the FPR gap)",
            UndefinedMetricWarning,
            stacklevel=3,
        )

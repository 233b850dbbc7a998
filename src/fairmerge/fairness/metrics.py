"""Group-fairness metrics over overlapping group membership, with bootstrap confidence intervals.

fairlearn's ``MetricFrame`` assumes one sensitive value per example; hate-speech posts can target
several groups of one attribute, or none. Here each group's rates are computed over the posts that
target it, from confusion counts that are matrix products of the membership matrices — the same
products, weighted by bootstrap multiplicities, give the confidence intervals (see ``bootstrap``).
Where groups do not overlap and every rate is defined, DPD and EOD equal fairlearn's
``demographic_parity_difference`` and ``equalized_odds_difference``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fairmerge.errors import ConfigError, DataError
from fairmerge.fairness.bootstrap import bootstrap_sums, percentile_interval

OVERALL = "all"
"""Attribute and group name of the rows that describe all examples or a whole attribute."""

GROUP_METRICS = ("n", "accuracy", "selection_rate", "tpr", "fpr")
"""Metrics reported for every group (and overall)."""

ATTRIBUTE_METRICS = ("n_groups", "dpd", "eod", "tpr_gap", "fpr_gap", "worst_group_accuracy")
"""Metrics reported once per attribute (group ``all``), over the groups that qualify."""

COLUMNS = ["attribute", "group", "metric", "value", "ci_low", "ci_high"]

# Confusion cells, in the order of the count arrays below.
_TP, _FP, _FN, _TN = range(4)


class UndefinedMetricWarning(UserWarning):
    """A rate or gap has no defined value (no positives, no negatives, too few groups): it is NaN."""


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
    min_group_size: int = 30,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Per-group rates and per-attribute gaps, with percentile bootstrap intervals.

    Parameters
    ----------
    labels, predictions : array of 0/1, length n
    memberships : mapping attribute -> boolean DataFrame (n × groups); a post may belong to any
        number of groups of an attribute.
    min_group_size : a group enters an attribute's gaps and worst-group accuracy only when it has
        at least this many posts (and the rate is defined); smaller groups are still reported.
    n_resamples : bootstrap resamples of posts (one draw shared by every group, so overlapping
        groups stay consistent); 0 gives no intervals (NaN), for fast sweeps.
    confidence : coverage of the percentile intervals.
    seed : seed of the bootstrap draw.

    Returns
    -------
    Tidy frame with columns ``attribute, group, metric, value, ci_low, ci_high``:
    overall rows (attribute and group ``all``) with n, accuracy, selection_rate, tpr, fpr; for each
    attribute and group the same five metrics; for each attribute (group ``all``) ``n_groups`` (groups
    with n >= min_group_size), ``dpd`` (max - min selection rate), ``tpr_gap``, ``fpr_gap``, ``eod``
    (max of the two gaps; NaN when either is) and ``worst_group_accuracy``. Undefined values are NaN
    and raise an :class:`UndefinedMetricWarning`, never 0. Counts (n, n_groups) have no interval.

    Gaps are a max minus a min over noisy group rates, so their bootstrap distribution sits above
    the point estimate when the true gap is small: a gap's interval may not contain its value.
    """
    y, yhat = _check_binary(labels, "labels"), _check_binary(predictions, "predictions")
    if y.shape != yhat.shape:
        raise DataError(f"labels ({y.size}) and predictions ({yhat.size}) differ in length")
    if y.size == 0:
        raise DataError("cannot compute metrics on zero examples")
    check_options(min_group_size=min_group_size, n_resamples=n_resamples, confidence=confidence)

    members, layout = _stack_memberships(memberships, y.size)
    cells = np.stack([y & yhat, (1 - y) & yhat, y & (1 - yhat), (1 - y) & (1 - yhat)], axis=1)
    # design[i, k * C + c] = 1 when post i is in column c and falls in confusion cell k.
    design = (cells[:, :, None] * members[:, None, :]).reshape(y.size, -1).astype(np.float64)
    n_columns = members.shape[1]

    counts = design.sum(axis=0).reshape(4, n_columns)
    point = _rates(counts)
    qualifies = point["n"] >= min_group_size
    attr_point = _attribute_metrics(point, qualifies, layout)
    _warn_undefined(point, attr_point, layout)

    if n_resamples > 0:
        boot_counts = bootstrap_sums(design, n_resamples=n_resamples, seed=seed).reshape(
            n_resamples, 4, n_columns
        )
        boot = _rates(np.moveaxis(boot_counts, 1, 0))
        attr_boot = _attribute_metrics(boot, qualifies, layout)
        group_ci = {m: percentile_interval(boot[m], confidence) for m in GROUP_METRICS if m != "n"}
        attr_ci = {
            (a, m): percentile_interval(v, confidence) for (a, m), v in attr_boot.items() if m != "n_groups"
        }
    else:
        group_ci, attr_ci = {}, {}

    nan = float("nan")
    rows: list[tuple[str, str, str, float, float, float]] = []
    for column, (attribute, group) in enumerate(layout.names):
        for metric in GROUP_METRICS:
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
            for metric in ATTRIBUTE_METRICS:
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
                (attribute, OVERALL, m, float(attr_point[attribute, m]), nan, nan) for m in ATTRIBUTE_METRICS
            )
    return pd.DataFrame(rows, columns=COLUMNS)


def headline(frame: pd.DataFrame) -> dict[str, float]:
    """Flat summary of a :func:`group_metrics` frame for model selection and tables.

    Keys: ``accuracy`` and, per attribute, ``{attr}_dpd``, ``{attr}_eod``,
    ``{attr}_worst_group_accuracy``.
    """
    values = frame.set_index(["attribute", "group", "metric"])["value"]
    out = {"accuracy": float(values[(OVERALL, OVERALL, "accuracy")])}
    for attribute in dict.fromkeys(frame["attribute"]):
        if attribute == OVERALL:
            continue
        for metric in ("dpd", "eod", "worst_group_accuracy"):
            out[f"{attribute}_{metric}"] = float(values[(attribute, OVERALL, metric)])
    return out


def check_options(*, min_group_size: int = 30, n_resamples: int = 1000, confidence: float = 0.95) -> None:
    """Reject option values :func:`group_metrics` cannot use (callers check before costly work)."""
    if min_group_size < 1:
        raise ConfigError(f"min_group_size must be >= 1, got {min_group_size}")
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


def _rates(counts: np.ndarray) -> dict[str, np.ndarray]:
    """Group metrics from confusion counts shaped (4, ...): NaN where a denominator is 0."""
    tp, fp, fn, tn = counts[_TP], counts[_FP], counts[_FN], counts[_TN]
    n = tp + fp + fn + tn
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "n": n,
            "accuracy": np.where(n > 0, (tp + tn) / n, np.nan),
            "selection_rate": np.where(n > 0, (tp + fp) / n, np.nan),
            "tpr": np.where(tp + fn > 0, tp / (tp + fn), np.nan),
            "fpr": np.where(fp + tn > 0, fp / (fp + tn), np.nan),
        }


def _spread(values: np.ndarray) -> np.ndarray:
    """max - min over the last axis ignoring NaN; NaN where fewer than two values are defined."""
    defined = ~np.isnan(values)
    high = np.where(defined, values, -np.inf).max(axis=-1, initial=-np.inf)
    low = np.where(defined, values, np.inf).min(axis=-1, initial=np.inf)
    return np.where(defined.sum(axis=-1) >= 2, high - low, np.nan)


def _attribute_metrics(
    rates: dict[str, np.ndarray], qualifies: np.ndarray, layout: _Layout
) -> dict[tuple[str, str], np.ndarray]:
    """Per-attribute gaps over qualifying groups (n >= min size in the full sample).

    Which groups qualify is decided once, on the full sample; in a bootstrap resample a qualifying
    group whose rate happens to be undefined is left out of that resample's gap.
    """
    out: dict[tuple[str, str], np.ndarray] = {}
    for attribute, span in layout.spans.items():
        keep = np.flatnonzero(qualifies[span]) + span.start

        def pick(metric: str, keep: np.ndarray = keep) -> np.ndarray:
            return rates[metric][..., keep]

        tpr_gap, fpr_gap = _spread(pick("tpr")), _spread(pick("fpr"))
        accuracy = pick("accuracy")
        defined = ~np.isnan(accuracy)
        worst = np.where(defined, accuracy, np.inf).min(axis=-1, initial=np.inf)
        out[attribute, "n_groups"] = np.asarray(float(keep.size))
        out[attribute, "dpd"] = _spread(pick("selection_rate"))
        out[attribute, "tpr_gap"] = tpr_gap
        out[attribute, "fpr_gap"] = fpr_gap
        out[attribute, "eod"] = np.maximum(tpr_gap, fpr_gap)  # NaN if either gap is NaN
        out[attribute, "worst_group_accuracy"] = np.where(defined.any(axis=-1), worst, np.nan)
    return out


def _warn_undefined(
    point: dict[str, np.ndarray], attr_point: dict[tuple[str, str], np.ndarray], layout: _Layout
) -> None:
    """One warning listing every undefined rate and gap of the full-sample estimate."""
    undefined = [
        f"{metric} of {attribute}/{group}"
        for column, (attribute, group) in enumerate(layout.names)
        for metric in GROUP_METRICS[1:]
        if np.isnan(point[metric][column])
    ]
    undefined += [
        f"{metric} of {attribute}"
        for (attribute, metric), value in attr_point.items()
        if metric != "n_groups" and np.isnan(value)
    ]
    if undefined:
        warnings.warn(
            "undefined (NaN): "
            + ", ".join(undefined)
            + " — no positives (TPR), no negatives (FPR), no posts, or fewer than two qualifying groups",
            UndefinedMetricWarning,
            stacklevel=3,
        )

"""Gap intervals that keep their coverage at a true gap of 0, by inverting a calibrated test.

A max − min gap is ≥ 0, so a true gap of 0 sits on the boundary of its range, where bootstrap
intervals of an upward-biased max − min statistic rarely reach down to 0 (basic: 0.80–0.85 coverage
at HateXplain's race sizes). The interval here combines two pieces:

- **lower end**: 0 when the permutation test of "no gap" does not reject at α — the test is
  calibrated under unequal base rates (:func:`fairmerge.fairness.noise.noise_floor`, within-label
  shuffle, for EOD; a label-free shuffle of predictions for DPD, whose null "selection is
  independent of the group" is exactly DPD's zero) — else the **pairwise** lower end
  (:func:`pairwise_lower_ends`): a max − min gap is at least every pairwise difference r_g − r_h of
  its qualifying groups, and a difference of two rates is smooth, so its basic bootstrap bound is
  accurate where the max − min's is not (the max over several small groups is biased upward more
  than its bootstrap can see: the basic lower end missed a true EOD of 0.3 one time in five). The
  pairwise bounds are simultaneous (Bonferroni over the pairs), so their maximum is a valid bound.
  At a true gap of 0 the interval covers with probability ≥ 1 − α, the test's own guarantee;
- **upper end**: the larger of the basic and percentile upper ends (the percentile end guards the
  cases where the basic reflection over-corrects the upward bias).

The interval is conservative where the test rarely rejects. Coverage is measured by
``benchmarks/ci_coverage.py`` (method ``inverted``).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd

from fairmerge.fairness.bootstrap import bootstrap_sums
from fairmerge.fairness.metrics import (
    MIN_GROUP_SIZE,
    MIN_NEGATIVES,
    MIN_POSITIVES,
    OVERALL,
    Thresholds,
    _check_binary,
    _design,
    _rates,
    _stack_memberships,
    group_metrics,
)
from fairmerge.fairness.noise import noise_floor

GAPS = ("dpd", "eod")
PAIRWISE_RATES = {"dpd": ("selection_rate",), "eod": ("tpr", "fpr")}
"""The rates whose pairwise differences bound each gap from below."""


def gap_intervals(
    labels: np.ndarray,
    predictions: np.ndarray,
    memberships: Mapping[str, pd.DataFrame],
    *,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    n_permutations: int = 1000,
    seed: int = 0,
    min_group_size: int = MIN_GROUP_SIZE,
    min_positives: int = MIN_POSITIVES,
    min_negatives: int = MIN_NEGATIVES,
) -> pd.DataFrame:
    """Per attribute, ``dpd`` and ``eod`` with the test-inverted interval (rows of ``group_metrics``' layout).

    Columns ``attribute, group, metric, value, ci_low, ci_high`` plus ``perm_p`` (the p-value of the
    test of a zero gap). NaN where the gap is undefined.
    """
    options = {
        "min_group_size": min_group_size,
        "min_positives": min_positives,
        "min_negatives": min_negatives,
    }
    basic, percentile = (
        group_metrics(
            labels,
            predictions,
            memberships,
            n_resamples=n_resamples,
            confidence=confidence,
            seed=seed,
            interval=method,
            **options,
        )
        for method in ("basic", "percentile")
    )
    within = noise_floor(
        labels, predictions, memberships, n_permutations=n_permutations, seed=seed, **options
    )
    label_free = label_free_tests(
        labels, predictions, memberships, n_permutations=n_permutations, seed=seed, **options
    )
    lows = pairwise_lower_ends(
        labels, predictions, memberships, confidence=confidence, n_resamples=n_resamples, seed=seed, **options
    )
    return inverted(basic, percentile, within, label_free, lows, confidence)


def pairwise_lower_ends(
    labels: np.ndarray,
    predictions: np.ndarray,
    memberships: Mapping[str, pd.DataFrame],
    *,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
    min_group_size: int = MIN_GROUP_SIZE,
    min_positives: int = MIN_POSITIVES,
    min_negatives: int = MIN_NEGATIVES,
) -> dict[tuple[str, str], float]:
    """Per (attribute, ``dpd`` / ``eod``), the largest simultaneous lower bound of a pairwise difference.

    For every ordered pair of groups that enter the gap's rate (selection rate for DPD; TPR and FPR
    for EOD, pooled into one family), the basic bootstrap lower bound of r_g − r_h at level
    (1 − confidence) / 2 split evenly over the pairs (Bonferroni); the bound is the largest of them,
    at least 0. Same bootstrap draw as :func:`group_metrics` with this ``seed``. NaN when fewer than
    two groups enter a rate the gap needs.
    """
    y, yhat = _check_binary(labels, "labels"), _check_binary(predictions, "predictions")
    members, layout = _stack_memberships(memberships, y.size)
    design = _design(y, yhat, members)
    columns = members.shape[1]
    counts = design.sum(axis=0).reshape(4, columns)
    qualifies = Thresholds(min_group_size, min_positives, min_negatives).qualifying(counts)
    point = _rates(counts)
    sums = bootstrap_sums(design, n_resamples=n_resamples, seed=seed)
    boot = _rates(np.moveaxis(sums.reshape(n_resamples, 4, columns), 1, 0))
    lows: dict[tuple[str, str], float] = {}
    for attribute, span in layout.spans.items():
        for gap, rates in PAIRWISE_RATES.items():
            groups = {rate: np.flatnonzero(qualifies[rate][span]) + span.start for rate in rates}
            if any(len(g) < 2 for g in groups.values()):
                lows[attribute, gap] = float("nan")
                continue
            n_pairs = sum(len(g) * (len(g) - 1) for g in groups.values())
            level = 1 - (1 - confidence) / 2 / n_pairs
            bound = 0.0
            for rate, g in groups.items():
                difference = point[rate][g][:, None] - point[rate][g][None, :]
                resampled = boot[rate][:, g][:, :, None] - boot[rate][:, g][:, None, :]
                with warnings.catch_warnings():  # a pair undefined in every resample: NaN, skipped
                    warnings.simplefilter("ignore", RuntimeWarning)
                    low = 2 * difference - np.nanquantile(resampled, level, axis=0)
                off_diagonal = ~np.eye(len(g), dtype=bool)
                bound = max(bound, float(np.nanmax(np.where(off_diagonal, low, -np.inf))))
            lows[attribute, gap] = bound
    return lows


def label_free_tests(
    labels: np.ndarray,
    predictions: np.ndarray,
    memberships: Mapping[str, pd.DataFrame],
    **options: int,
) -> pd.DataFrame:
    """:func:`noise_floor` under the label-free null (predictions shuffled against groups): DPD's test.

    With every label set to 0 the within-label shuffle is one shuffle of all predictions. Only its
    ``dpd_*`` rows mean anything (DPD's groups qualify by size alone, so the zeroed labels do not
    change them); its EOD rows are undefined.
    """
    return noise_floor(np.zeros_like(np.asarray(labels)), predictions, memberships, **options)


def inverted(
    basic: pd.DataFrame,
    percentile: pd.DataFrame,
    within: pd.DataFrame,
    label_free: pd.DataFrame,
    lows: Mapping[tuple[str, str], float],
    confidence: float = 0.95,
) -> pd.DataFrame:
    """The inverted ``dpd`` / ``eod`` rows from their pieces (one draw and one permutation set each).

    ``basic`` and ``percentile`` are :func:`group_metrics` frames of the same predictions (same seed,
    so the same bootstrap draw), ``within`` and ``label_free`` their :func:`noise_floor` rows under the
    within-label null (EOD's test) and the label-free null (DPD's test); ``lows`` the
    :func:`pairwise_lower_ends` of the same predictions.
    """
    rows = []
    for attribute in dict.fromkeys(basic["attribute"]):
        if attribute == OVERALL:
            continue
        for gap in GAPS:
            low_row, high_row = (_row(frame, attribute, gap) for frame in (basic, percentile))
            tests = label_free if gap == "dpd" else within
            p = float(_row(tests, attribute, f"{gap}_perm_p")["value"])
            low, high = invert(lows[attribute, gap], low_row["ci_high"], high_row["ci_high"], p, confidence)
            if np.isnan(low_row["value"]):
                low = high = float("nan")
            rows.append((attribute, OVERALL, gap, float(low_row["value"]), low, high, p))
    return pd.DataFrame(
        rows, columns=["attribute", "group", "metric", "value", "ci_low", "ci_high", "perm_p"]
    )


def invert(
    pairwise_low: float, basic_high: float, percentile_high: float, p_zero: float, confidence: float
) -> tuple[float, float]:
    """The interval from its pieces (module docstring): 0 below unless the zero-gap test rejects."""
    low = float(pairwise_low) if p_zero < 1 - confidence else 0.0
    return low, max(float(basic_high), float(percentile_high))


def _row(frame: pd.DataFrame, attribute: str, metric: str) -> pd.Series:
    mask = (frame["attribute"] == attribute) & (frame["group"] == OVERALL) & (frame["metric"] == metric)
    return frame[mask].iloc[0]

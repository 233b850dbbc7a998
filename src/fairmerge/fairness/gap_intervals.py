"""Gap intervals that keep their coverage at a true gap of 0, by inverting a calibrated test.

A max − min gap is ≥ 0, so a true gap of 0 sits on the boundary of its range, where bootstrap
intervals of an upward-biased max − min statistic rarely reach down to 0 (basic: 0.80–0.85 coverage
at HateXplain's race sizes). The interval here combines two pieces:

- **lower end**: 0 when the permutation test of "no gap" does not reject at α — the test is
  calibrated under unequal base rates (:func:`fairmerge.fairness.noise.noise_floor`, within-label
  shuffle, for EOD; a label-free shuffle of predictions for DPD, whose null "selection is
  independent of the group" is exactly DPD's zero) — else the basic bootstrap's lower end. At a true
  gap of 0 the interval therefore covers with probability ≥ 1 − α, the test's own guarantee;
- **upper end**: the larger of the basic and percentile upper ends (the percentile end guards the
  cases where the basic reflection over-corrects the upward bias).

The interval is conservative where the test rarely rejects. Coverage is measured by
``benchmarks/ci_coverage.py`` (method ``inverted``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from fairmerge.fairness.metrics import (
    MIN_GROUP_SIZE,
    MIN_NEGATIVES,
    MIN_POSITIVES,
    OVERALL,
    group_metrics,
)
from fairmerge.fairness.noise import noise_floor

GAPS = ("dpd", "eod")


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
    return inverted(basic, percentile, within, label_free, confidence)


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
    confidence: float = 0.95,
) -> pd.DataFrame:
    """The inverted ``dpd`` / ``eod`` rows from their pieces (one draw and one permutation set each).

    ``basic`` and ``percentile`` are :func:`group_metrics` frames of the same predictions (same seed,
    so the same bootstrap draw), ``within`` and ``label_free`` their :func:`noise_floor` rows under the
    within-label null (EOD's test) and the label-free null (DPD's test).
    """
    rows = []
    for attribute in dict.fromkeys(basic["attribute"]):
        if attribute == OVERALL:
            continue
        for gap in GAPS:
            low_row, high_row = (_row(frame, attribute, gap) for frame in (basic, percentile))
            tests = label_free if gap == "dpd" else within
            p = float(_row(tests, attribute, f"{gap}_perm_p")["value"])
            low, high = invert(low_row["ci_low"], low_row["ci_high"], high_row["ci_high"], p, confidence)
            if np.isnan(low_row["value"]):
                low = high = float("nan")
            rows.append((attribute, OVERALL, gap, float(low_row["value"]), low, high, p))
    return pd.DataFrame(
        rows, columns=["attribute", "group", "metric", "value", "ci_low", "ci_high", "perm_p"]
    )


def invert(
    basic_low: float, basic_high: float, percentile_high: float, p_zero: float, confidence: float
) -> tuple[float, float]:
    """The interval from its pieces (module docstring): 0 below unless the zero-gap test rejects."""
    low = float(basic_low) if p_zero < 1 - confidence else 0.0
    return low, max(float(basic_high), float(percentile_high))


def _row(frame: pd.DataFrame, attribute: str, metric: str) -> pd.Series:
    mask = (frame["attribute"] == attribute) & (frame["group"] == OVERALL) & (frame["metric"] == metric)
    return frame[mask].iloc[0]

"""Gap intervals that reach nominal coverage at small groups: simultaneous pairwise bounds plus a test.

A max − min gap is ≥ 0 and biased upward (the max over several small noisy groups), so bootstrap
intervals of the gap itself miss: at HateXplain's race sizes the basic interval covered 0.80–0.85,
and its reflection is too high on one side and too low on the other. The interval here rests on the
pairwise differences r_g − r_h of the qualifying groups instead, each a difference of two binomial
proportions, bounded with **Newcombe's hybrid score interval** (Newcombe 1998, "Interval estimation
for the difference between independent proportions: comparison of eleven methods", Stat. Med.
17:873–890, method 10: Wilson score limits of each rate, combined by the square-and-add rule; it
keeps close to nominal coverage at the counts of small groups, where Wald-type and bootstrap
bounds do not):

- **upper end**: the largest upper bound of r_g − r_h over all ordered pairs, each at one-sided
  level α/2. The true gap *is* the difference of one (unknown, fixed) pair, and that pair's bound
  alone covers it with probability ≥ 1 − α/2; the maximum is higher still. No multiplicity
  correction is needed;
- **lower end**: 0 when the permutation test of "no gap" does not reject at α (EOD: the
  within-label test of :func:`fairmerge.fairness.noise.noise_floor`; DPD: a label-free shuffle of
  predictions, whose null "selection is independent of the group" is exactly DPD = 0), else the
  largest lower bound of r_g − r_h over the ordered pairs, each at one-sided level α/2 divided by
  the number of ordered pairs (Bonferroni: the gap is at least every pairwise difference, so the
  bounds must hold simultaneously for their maximum to be a bound). At a true gap of 0 the interval
  covers with probability ≥ 1 − α, the test's own guarantee.

EOD pools its TPR and FPR pairs into one family (EOD is the largest of all of them). Overlapping
groups share posts, which correlates their rates positively and makes the independent-proportions
bound conservative (:mod:`fairmerge.fairness.proportions`). The intervals need no resampling.
Coverage is measured by ``benchmarks/ci_coverage.py`` (method ``inverted``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from fairmerge.fairness import registry
from fairmerge.fairness.metrics import (
    MIN_GROUP_SIZE,
    MIN_NEGATIVES,
    MIN_POSITIVES,
    OVERALL,
    Thresholds,
    _cell_sum,
    _check_binary,
    _design,
    _stack_memberships,
    group_metrics,
)
from fairmerge.fairness.noise import noise_floor
from fairmerge.fairness.proportions import difference_bounds

GAPS = ("dpd", "eod")
PAIRWISE_RATES = {"dpd": ("selection_rate",), "eod": ("tpr", "fpr")}
"""The rates whose pairwise differences bound each gap."""


def gap_intervals(
    labels: np.ndarray,
    predictions: np.ndarray,
    memberships: Mapping[str, pd.DataFrame],
    *,
    confidence: float = 0.95,
    n_permutations: int = 1000,
    seed: int = 0,
    min_group_size: int = MIN_GROUP_SIZE,
    min_positives: int = MIN_POSITIVES,
    min_negatives: int = MIN_NEGATIVES,
) -> pd.DataFrame:
    """Per attribute, ``dpd`` and ``eod`` with the interval of the module docstring.

    Columns ``attribute, group, metric, value, ci_low, ci_high`` plus ``perm_p`` (the p-value of the
    test of a zero gap; ``n_permutations`` and ``seed`` are the test's). NaN where the gap is undefined.
    """
    options = {
        "min_group_size": min_group_size,
        "min_positives": min_positives,
        "min_negatives": min_negatives,
    }
    values = group_metrics(
        labels,
        predictions,
        memberships,
        n_resamples=0,
        min_group_size=min_group_size,
        min_positives=min_positives,
        min_negatives=min_negatives,
    )
    within = noise_floor(
        labels, predictions, memberships, n_permutations=n_permutations, seed=seed, **options
    )
    label_free = label_free_tests(
        labels, predictions, memberships, n_permutations=n_permutations, seed=seed, **options
    )
    bounds = pairwise_bounds(labels, predictions, memberships, confidence=confidence, **options)
    return inverted(values, within, label_free, bounds, confidence)


def pairwise_bounds(
    labels: np.ndarray,
    predictions: np.ndarray,
    memberships: Mapping[str, pd.DataFrame],
    *,
    confidence: float = 0.95,
    min_group_size: int = MIN_GROUP_SIZE,
    min_positives: int = MIN_POSITIVES,
    min_negatives: int = MIN_NEGATIVES,
) -> dict[tuple[str, str], tuple[float, float]]:
    """Per (attribute, ``dpd`` / ``eod``): (largest simultaneous lower bound, largest upper bound).

    Over every ordered pair of groups that enter the gap's rate (selection rate for DPD; TPR and
    FPR for EOD, pooled into one family), Newcombe's hybrid score bounds of r_g − r_h: the lower
    ones at one-sided level (1 − confidence) / 2 split evenly over the pairs (Bonferroni), the upper
    ones at (1 − confidence) / 2 each (module docstring). The lower bound is at least 0, the upper
    at most 1. (NaN, NaN) when fewer than two groups enter a rate the gap needs.
    """
    y, yhat = _check_binary(labels, "labels"), _check_binary(predictions, "predictions")
    members, layout = _stack_memberships(memberships, y.size)
    counts = _design(y, yhat, members).sum(axis=0).reshape(4, members.shape[1])
    qualifies = Thresholds(min_group_size, min_positives, min_negatives).qualifying(counts)
    cells = dict(zip(registry.CELLS, counts, strict=True))
    fractions = {
        r.name: (_cell_sum(cells, r.numerator), _cell_sum(cells, r.denominator))
        for r in registry.rates()
        if r.name in {rate for rates in PAIRWISE_RATES.values() for rate in rates}
    }
    alpha = 1.0 - confidence
    bounds: dict[tuple[str, str], tuple[float, float]] = {}
    for attribute, span in layout.spans.items():
        for gap, rates in PAIRWISE_RATES.items():
            groups = {rate: np.flatnonzero(qualifies[rate][span]) + span.start for rate in rates}
            if any(len(g) < 2 for g in groups.values()):
                bounds[attribute, gap] = (float("nan"), float("nan"))
                continue
            n_pairs = sum(len(g) * (len(g) - 1) for g in groups.values())
            low, high = 0.0, 0.0
            for rate, g in groups.items():
                successes, trials = (np.rint(c[g]).astype(np.int64) for c in fractions[rate])
                off_diagonal = ~np.eye(len(g), dtype=bool)
                lower, _ = difference_bounds(successes, trials, alpha / 2 / n_pairs)
                _, upper = difference_bounds(successes, trials, alpha / 2)
                low = max(low, float(lower[off_diagonal].max()))
                high = max(high, float(upper[off_diagonal].max()))
            bounds[attribute, gap] = (low, min(high, 1.0))
    return bounds


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
    values: pd.DataFrame,
    within: pd.DataFrame,
    label_free: pd.DataFrame,
    bounds: Mapping[tuple[str, str], tuple[float, float]],
    confidence: float = 0.95,
) -> pd.DataFrame:
    """The ``dpd`` / ``eod`` rows with the interval of the module docstring, from its pieces.

    ``values`` is a :func:`group_metrics` frame of the predictions (its gap values are kept),
    ``within`` and ``label_free`` their :func:`noise_floor` rows under the within-label null (EOD's
    test) and the label-free null (DPD's test); ``bounds`` their :func:`pairwise_bounds`.
    """
    rows = []
    for attribute in dict.fromkeys(values["attribute"]):
        if attribute == OVERALL:
            continue
        for gap in GAPS:
            value = float(_row(values, attribute, gap)["value"])
            tests = label_free if gap == "dpd" else within
            p = float(_row(tests, attribute, f"{gap}_perm_p")["value"])
            low, high = invert(*bounds[attribute, gap], p, confidence)
            if np.isnan(value):
                low = high = float("nan")
            rows.append((attribute, OVERALL, gap, value, low, high, p))
    return pd.DataFrame(
        rows, columns=["attribute", "group", "metric", "value", "ci_low", "ci_high", "perm_p"]
    )


def invert(
    pairwise_low: float, pairwise_high: float, p_zero: float, confidence: float
) -> tuple[float, float]:
    """The interval from its pieces (module docstring): 0 below unless the zero-gap test rejects."""
    low = float(pairwise_low) if p_zero < 1 - confidence else 0.0
    return low, float(pairwise_high)


def _row(frame: pd.DataFrame, attribute: str, metric: str) -> pd.Series:
    mask = (frame["attribute"] == attribute) & (frame["group"] == OVERALL) & (frame["metric"] == metric)
    return frame[mask].iloc[0]

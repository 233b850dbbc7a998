"""Test-inverted gap intervals: a true gap of 0 is covered at the test's level; a real gap is not zeroed."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from fairmerge.fairness import group_metrics
from fairmerge.fairness.gap_intervals import gap_intervals, invert, pairwise_lower_ends


def _data(rng: np.random.Generator, gap: float, n: int = 600) -> tuple[np.ndarray, np.ndarray, dict]:
    group = rng.integers(0, 3, n)
    labels = (rng.random(n) < np.array([0.7, 0.4, 0.2])[group]).astype(int)  # unequal base rates
    rate = np.where(labels == 1, 0.7 - gap * (group == 0), 0.2 + gap * (group == 0))
    predictions = (rng.random(n) < rate).astype(int)
    return labels, predictions, {"a": pd.DataFrame({f"g{k}": group == k for k in range(3)})}


def test_true_zero_eod_is_covered_at_nominal_level_where_basic_is_not() -> None:
    rng = np.random.default_rng(0)
    covered, basic_covered, reps = 0, 0, 60
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for r in range(reps):
            labels, predictions, membership = _data(rng, 0.0, n=300)
            rows = gap_intervals(labels, predictions, membership, n_resamples=200, n_permutations=200, seed=r)
            eod = rows[rows["metric"] == "eod"].iloc[0]
            covered += eod["ci_low"] == 0.0
            basic = group_metrics(labels, predictions, membership, n_resamples=200, seed=r)
            basic_covered += float(basic[basic["metric"] == "eod"]["ci_low"].iloc[0]) <= 1e-12
    assert covered / reps >= 0.88  # the within-label test's level; 60 replicates
    assert covered > basic_covered


def test_a_large_gap_keeps_its_bootstrap_lower_end() -> None:
    labels, predictions, membership = _data(np.random.default_rng(1), 0.3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = gap_intervals(labels, predictions, membership, n_resamples=300, n_permutations=300)
    eod = rows[rows["metric"] == "eod"].iloc[0]
    assert eod["perm_p"] < 0.01 and 0 < eod["ci_low"] < eod["value"] < eod["ci_high"]
    assert invert(0.1, 0.3, 0.4, 0.5, 0.95) == (0.0, 0.4) and invert(0.1, 0.3, 0.2, 0.01, 0.95) == (0.1, 0.3)


def test_the_lower_end_is_the_largest_simultaneous_pairwise_bound() -> None:
    labels, predictions, membership = _data(np.random.default_rng(2), 0.3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = gap_intervals(labels, predictions, membership, n_resamples=300, n_permutations=300, seed=4)
        lows = pairwise_lower_ends(labels, predictions, membership, n_resamples=300, seed=4)
        wider = pairwise_lower_ends(
            labels, predictions, membership, n_resamples=300, seed=4, confidence=0.999
        )
    eod = rows[rows["metric"] == "eod"].iloc[0]
    assert eod["ci_low"] == lows["a", "eod"] > 0  # the test rejects: the pairwise bound is the lower end
    assert wider["a", "eod"] < lows["a", "eod"] < eod["value"]  # a bound: below the estimate, lower at 99.9 %

"""The paired bootstrap of gap differences agrees with a direct computation and is paired."""

import numpy as np
import pandas as pd
from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference

from fairmerge.study.multiseed import aggregate_seeds, paired_gap_test


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = 600
    group = rng.integers(0, 3, size=n)
    labels = rng.integers(0, 2, size=n)
    pred_a = np.where(rng.random(n) < 0.8, labels, 1 - labels)
    pred_b = np.where(group == 0, 1, pred_a)  # B flags every post of group 0: larger gaps
    membership = pd.DataFrame({f"g{k}": group == k for k in range(3)})
    return labels, pred_a, pred_b, membership, group


def test_observed_delta_matches_fairlearn() -> None:
    labels, pred_a, pred_b, membership, group = _data()
    result = paired_gap_test(labels, [pred_a], [pred_b], membership, n_resamples=300, seed=1)
    dpd = demographic_parity_difference(
        labels, pred_a, sensitive_features=group
    ) - demographic_parity_difference(labels, pred_b, sensitive_features=group)
    eod = equalized_odds_difference(labels, pred_a, sensitive_features=group) - equalized_odds_difference(
        labels, pred_b, sensitive_features=group
    )
    assert abs(result["dpd"]["delta"] - dpd) < 1e-12
    assert abs(result["eod"]["delta"] - eod) < 1e-12
    # B is far less fair: the interval excludes 0 and the p-value is small
    assert result["dpd"]["ci_high"] < 0 and result["dpd"]["p_value"] < 0.01


def test_identical_methods_give_zero_delta_and_degenerate_interval() -> None:
    labels, pred_a, _, membership, _ = _data()
    result = paired_gap_test(labels, [pred_a, pred_a], [pred_a, pred_a], membership, n_resamples=200)
    for metric in ("dpd", "eod"):
        assert result[metric]["delta"] == 0.0
        assert result[metric]["ci_low"] == 0.0 and result[metric]["ci_high"] == 0.0


def test_aggregate_seeds_mean_and_std() -> None:
    rows = [
        [{"model": "fft", "accuracy": 0.8, "race_dpd": 0.2}],
        [{"model": "fft", "accuracy": 0.6, "race_dpd": 0.4}],
    ]
    table = aggregate_seeds(rows).set_index("metric")
    assert np.isclose(table.loc["accuracy", "mean"], 0.7)
    assert np.isclose(table.loc["accuracy", "std"], np.std([0.8, 0.6], ddof=1))
    assert table.loc["race_dpd", "n_seeds"] == 2

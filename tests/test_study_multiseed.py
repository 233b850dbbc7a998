"""Seed aggregation of headline metrics: mean, std and seed count per model and metric."""

import numpy as np

from fairmerge.study.multiseed import aggregate_seeds


def test_aggregate_seeds_mean_and_std() -> None:
    rows = [
        [{"model": "fft", "accuracy": 0.8, "race_dpd": 0.2}],
        [{"model": "fft", "accuracy": 0.6, "race_dpd": 0.4}],
    ]
    table = aggregate_seeds(rows).set_index("metric")
    assert np.isclose(table.loc["accuracy", "mean"], 0.7)
    assert np.isclose(table.loc["accuracy", "std"], np.std([0.8, 0.6], ddof=1))
    assert table.loc["race_dpd", "n_seeds"] == 2

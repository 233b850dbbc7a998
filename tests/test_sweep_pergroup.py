"""Per-group coefficient search: seeded (reproducible), budgeted, never worse than its uniform start."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest

from fairmerge.errors import ConfigError
from fairmerge.fairness import group_metrics
from fairmerge.sweep import search_group_coefficients

N = 300
NAMES = ["A", "B", "C"]
OPTIMUM = np.array([0.2, 0.7, 0.45])


def make_evaluate(calls: list[list[float]]):
    """Metrics of a fake merged model whose errors grow with the distance of λ from OPTIMUM."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, N)
    u = rng.permutation((np.arange(N) + 0.5) / N)
    groups = rng.integers(0, 3, N)
    race = pd.DataFrame({g: groups == i for i, g in enumerate(NAMES)})
    gender = pd.DataFrame({"W": groups == 0, "M": np.arange(N) < 3})  # M too small: gender gaps undefined

    def evaluate(lambdas: Sequence[float]) -> pd.DataFrame:
        calls.append(list(lambdas))
        lam = np.asarray(lambdas)
        flip = np.clip(np.abs(lam - OPTIMUM)[groups] + 0.05 * lam[groups], 0, 1)
        predictions = np.where(u < flip, 1 - labels, labels)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frame = group_metrics(labels, predictions, {"race": race, "gender": gender}, n_resamples=0)
        return frame.assign(split="val")

    return evaluate


def test_search_is_reproducible_and_never_worse_than_the_uniform_start() -> None:
    runs = []
    for _ in range(2):
        calls: list[list[float]] = []
        with pytest.warns(UserWarning, match="gender"):
            result = search_group_coefficients(
                make_evaluate(calls), NAMES, n_trials=12, seed=3, rule="constrained", epsilon=0.15, start=0.4
            )
        runs.append((result, calls))
    (first, calls_a), (second, calls_b) = runs
    pd.testing.assert_frame_equal(first.trials, second.trials)
    assert calls_a == calls_b and len(calls_a) == 12
    assert first.best == second.best
    assert calls_a[0] == [0.4, 0.4, 0.4]
    trials = first.trials
    assert list(trials["trial"]) == list(range(12))
    assert trials["start"].tolist() == [True] + [False] * 11
    assert {f"lambda_{n}" for n in NAMES} | {"objective", "accuracy", "race_dpd", "race_eod"} <= set(trials)
    assert first.value >= first.start_value == trials["objective"].iloc[0]
    assert first.value == trials["objective"].max()
    assert all(0.0 <= v <= 1.0 for v in first.best.values())


def test_search_improves_on_a_poor_start_for_accuracy() -> None:
    result = search_group_coefficients(
        make_evaluate([]), NAMES, n_trials=15, seed=0, rule="accuracy", start=1.0
    )
    assert result.value > result.start_value


def test_worst_group_objective_and_bad_arguments() -> None:
    result = search_group_coefficients(make_evaluate([]), NAMES, n_trials=4, seed=0, rule="worst_group")
    assert np.isnan(result.start_value) and not result.trials["start"].any()
    with pytest.raises(ConfigError):
        search_group_coefficients(make_evaluate([]), NAMES, start=[0.1, 0.2])
    with pytest.raises(ConfigError):
        search_group_coefficients(make_evaluate([]), NAMES, start=2.0)
    with pytest.raises(ConfigError):
        search_group_coefficients(make_evaluate([]), ["A", "A"])
    with pytest.raises(ConfigError):
        search_group_coefficients(make_evaluate([]), NAMES, n_trials=0)

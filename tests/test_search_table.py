"""The ranking table: test objectives match the reported metrics, and the bootstrap behaves."""

from __future__ import annotations

import numpy as np
import pytest

from fairmerge.data.types import TextSplit
from fairmerge.fairness import group_metrics, headline
from fairmerge.search import (
    CoefficientSpace,
    ResampledObjectives,
    ScoredPoint,
    SearchResult,
    hypervolume,
    hypervolume_table,
    objectives_of,
)

OBJECTIVES = objectives_of(["accuracy", "race_dpd", "race_eod"])
REFERENCE = (0.3, 0.3, 0.3)


def _split(n: int = 400, seed: int = 0) -> TextSplit:
    rng = np.random.default_rng(seed)
    groups = rng.choice(["A", "B", "C", ""], size=n, p=[0.3, 0.3, 0.1, 0.3])
    race = [frozenset({g}) if g else frozenset() for g in groups]
    return TextSplit([str(i) for i in range(n)], ["x"] * n, rng.integers(0, 2, n), {"race": race})


def _predictions(split: TextSplit, n_points: int, skill: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    right = rng.random((n_points, len(split))) < skill
    return np.where(right, split.labels, 1 - split.labels)


def _result(method: str, n_points: int) -> SearchResult:
    point = ScoredPoint((0.5,), (0.8, 0.1, 0.1), ((0.7, 0.9),) * 3)
    return SearchResult(
        method, [point] * n_points, [point] * n_points, 10, 1.0, CoefficientSpace(("g",)), OBJECTIVES
    )


def test_full_sample_objectives_equal_the_reported_metrics() -> None:
    split = _split()
    scorer = ResampledObjectives(split.labels, split.memberships(["race"]), OBJECTIVES, min_group_size=30)
    predictions = _predictions(split, 1, 0.7, 1)[0]
    values = headline(group_metrics(split.labels, predictions, split.memberships(["race"]), n_resamples=0))
    goodness = scorer.goodness(predictions, np.ones((1, len(split))))[0]
    np.testing.assert_allclose(goodness, [values["accuracy"], 1 - values["race_dpd"], 1 - values["race_eod"]])


def test_table_ranks_methods_with_intervals_over_posts_and_seeds() -> None:
    split = _split()
    scorer = ResampledObjectives(split.labels, split.memberships(["race"]), OBJECTIVES, min_group_size=30)
    results = {"weak": [_result("weak", 3)] * 2, "strong": [_result("strong", 3)] * 2}
    predictions = {
        "weak": [_predictions(split, 3, 0.6, s) for s in range(2)],
        "strong": [_predictions(split, 3, 0.85, s + 10) for s in range(2)],
    }
    table = hypervolume_table(results, predictions, scorer, REFERENCE, n_resamples=300, seed=0)
    assert list(table.method) == ["strong", "weak"] and list(table["rank"]) == [1, 2]
    for row in table.itertuples():
        assert row.hv_test_ci_low < row.hv_test < row.hv_test_ci_high
    strong = [
        hypervolume(np.stack([scorer.goodness(p, np.ones((1, len(split))))[0] for p in front]), REFERENCE)
        for front in predictions["strong"]
    ]
    assert table.hv_test.iloc[0] == pytest.approx(np.mean(strong))
    assert table.hv_val.iloc[0] == pytest.approx(hypervolume([[0.8, 0.9, 0.9]], REFERENCE))
    without = hypervolume_table(results, predictions, scorer, REFERENCE, n_resamples=0)
    assert without.hv_test_ci_low.isna().all() and list(without.hv_test) == list(table.hv_test)

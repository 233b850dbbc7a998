"""Grid, TPE and NSGA-II on a synthetic problem with a known front; budgets, caching, test scoring."""

from __future__ import annotations

import numpy as np
import pytest
from search_synthetic import REFERENCE, synthetic_evaluations, true_front_hypervolume

from fairmerge.errors import ConfigError
from fairmerge.search import (
    front_frame,
    front_hypervolume,
    grid_search,
    nsga2_search,
    score_front_on_test,
    select_from_front,
    tpe_search,
)


def test_nsga2_recovers_the_known_front() -> None:
    evaluations, _ = synthetic_evaluations()
    result = nsga2_search(evaluations, 160, seed=0, population_size=16)
    assert result.n_evaluations == evaluations.counts["val"] == 160
    x0, x1 = np.array([p.coefficients for p in result.front]).T
    assert np.median(x1) < 0.05  # the Pareto set is x1 = 0 ...
    assert x0.min() < 0.1 and x0.max() > 0.9 and np.diff(np.sort(x0)).max() < 0.2  # ... spanned over x0
    truth = true_front_hypervolume()
    found = front_hypervolume(result.front, result.objectives, REFERENCE)
    assert 0.85 * truth < found <= 1.01 * truth  # a finite set of points under the continuous front
    grid = grid_search(synthetic_evaluations()[0], 160)  # x0 = x1: on the Pareto set only at 0
    assert front_hypervolume(grid.front, grid.objectives, REFERENCE) < 0.8 * found


def test_nsga2_is_seeded() -> None:
    first = nsga2_search(synthetic_evaluations()[0], 24, seed=3)
    again = nsga2_search(synthetic_evaluations()[0], 24, seed=3)
    other = nsga2_search(synthetic_evaluations()[0], 24, seed=4)
    assert [p.coefficients for p in first.points] == [p.coefficients for p in again.points]
    assert [p.coefficients for p in first.points] != [p.coefficients for p in other.points]


def test_grid_and_tpe_spend_the_budget_through_the_cache() -> None:
    evaluations, spy = synthetic_evaluations()
    grid = grid_search(evaluations, 5)
    assert grid.n_evaluations == 5 and [p.coefficients[0] for p in grid.points] == [0, 0.25, 0.5, 0.75, 1]
    tpe = tpe_search(evaluations, 6, seed=0, start_lambda=0.5)
    assert tpe.points[0].coefficients == (0.5, 0.5)
    assert tpe.n_evaluations == 6  # its own budget, though its start was already scored by the grid ...
    assert evaluations.counts["val"] == len(spy.calls) == len(set(spy.calls)) == 10  # ... once


def test_only_front_points_are_scored_on_test_once_each() -> None:
    evaluations, spy = synthetic_evaluations()
    result = nsga2_search(evaluations, 40, seed=1)
    test = score_front_on_test(result, evaluations)
    test_again = score_front_on_test(result, evaluations)
    tested = [c for c, split in spy.calls if split == "test"]
    assert sorted(tested) == sorted(p.coefficients for p in result.front)
    assert evaluations.counts["test"] == len(result.front) and test == test_again
    assert all(
        t.values[0] == pytest.approx(v.values[0] - 0.02) for t, v in zip(test, result.front, strict=True)
    )
    frame = front_frame(result, test)
    assert list(frame.split.value_counts().sort_index()) == [len(result.front)] * 2
    assert {"lambda_race:A", "race_dpd_ci_low", "race_dpd_ci_high"} <= set(frame.columns)


def test_selection_rule_picks_from_the_front() -> None:
    evaluations, _ = synthetic_evaluations()
    result = nsga2_search(evaluations, 40, seed=2)
    point, selection = select_from_front(result, evaluations, "constrained", epsilon=0.1)
    assert point in result.front and selection.feasible
    best = max(p.values[0] for p in result.front if max(p.values[1:]) <= 0.1)
    assert point.values[0] == best
    accurate, _ = select_from_front(result, evaluations, "accuracy")
    assert accurate.values[0] == max(p.values[0] for p in result.front)


def test_bad_budget_and_coefficients_are_one_line_errors() -> None:
    evaluations, _ = synthetic_evaluations()
    with pytest.raises(ConfigError, match="budget must be >= 1"):
        grid_search(evaluations, 0)
    with pytest.raises(ConfigError, match="expected 2 finite coefficients"):
        evaluations([0.1])
    with pytest.raises(ConfigError, match="finite"):
        evaluations([0.1, float("nan")])

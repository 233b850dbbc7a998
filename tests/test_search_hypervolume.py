"""Exact hypervolume against optuna's (private) implementation and a brute-force cell count."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from fairmerge.errors import ConfigError
from fairmerge.search.hypervolume import hypervolume

optuna_hv = pytest.importorskip("optuna._hypervolume").compute_hypervolume


@pytest.mark.parametrize("dims", [2, 3, 4])
@pytest.mark.parametrize("seed", range(5))
def test_matches_optuna_on_random_sets(dims: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    points = rng.uniform(0.2, 1.0, size=(int(rng.integers(1, 30)), dims))
    reference = np.full(dims, 0.2)
    # optuna minimises: negate, and its reference is the negated one
    expected = optuna_hv(-points, -reference)
    assert hypervolume(points, reference) == pytest.approx(expected, rel=1e-12)


def test_matches_a_brute_force_count_of_unit_cells() -> None:
    rng = np.random.default_rng(7)
    points = rng.integers(1, 9, size=(12, 3)).astype(float)
    cells = sum(
        1
        for corner in itertools.product(range(8), repeat=3)
        if (points >= np.array(corner) + 1).all(axis=1).any()  # the cell [c, c+1]^3 is dominated
    )
    assert hypervolume(points, [0.0, 0.0, 0.0]) == cells


def test_edge_cases() -> None:
    assert hypervolume(np.empty((0, 3)), [0.5, 0.5, 0.5]) == 0.0
    assert hypervolume([[0.4, 0.9, 0.9]], [0.5, 0.5, 0.5]) == 0.0  # worse than the reference in one objective
    assert hypervolume([[np.nan, 1.0, 1.0], [1.0, 1.0, 1.0]], [0.5] * 3) == pytest.approx(0.125)
    assert hypervolume([[1.0, 1.0, 1.0], [0.7, 0.7, 0.7]], [0.5] * 3) == pytest.approx(
        0.125
    )  # dominated adds 0
    with pytest.raises(ConfigError, match="reference point"):
        hypervolume([[1.0, 1.0]], [np.inf, 0.0])

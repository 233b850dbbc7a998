"""The vectorised bootstrap: resample counts, weighted sums, and NaN-aware percentile intervals."""

from __future__ import annotations

import numpy as np
import pytest

from fairmerge.errors import ConfigError
from fairmerge.fairness.bootstrap import _distinct_rows, bootstrap_sums, percentile_interval, resample_counts


def test_resample_counts_are_draws_with_replacement() -> None:
    counts = resample_counts(50, 30, np.random.default_rng(0))
    assert counts.shape == (30, 50)
    assert (counts.sum(axis=1) == 50).all()
    draws = np.random.default_rng(0).integers(0, 50, size=(30, 50))
    expected = np.stack([np.bincount(row, minlength=50) for row in draws])
    np.testing.assert_array_equal(counts, expected)


def test_bootstrap_sums_equal_sums_over_resampled_rows() -> None:
    values = np.random.default_rng(1).normal(size=(40, 3))
    sums = bootstrap_sums(values, n_resamples=25, seed=9, chunk_size=7)
    rng = np.random.default_rng(9)
    expected = []
    for size in (7, 7, 7, 4):
        for row in rng.integers(0, 40, size=(size, 40)):
            expected.append(values[row].sum(axis=0))
    np.testing.assert_allclose(sums, np.array(expected), rtol=0, atol=1e-12)


def test_bootstrap_sums_of_an_indicator_design_equal_the_count_matrix_product_exactly() -> None:
    """The distinct-row shortcut: the same draw, and the same sums to the last bit, as counts @ values."""
    rng = np.random.default_rng(3)
    values = (rng.random((300, 12)) < 0.3).astype(np.float64)  # 0/1 rows: few distinct ones repeat
    values[:40] = values[40:80]
    sums = bootstrap_sums(values, n_resamples=130, seed=5, chunk_size=50)
    draws = np.random.default_rng(5)
    expected = np.concatenate([resample_counts(300, size, draws) @ values for size in (50, 50, 30)])
    np.testing.assert_array_equal(sums, expected)


def test_a_repeated_draw_is_served_equal_and_unshared() -> None:
    values = (np.random.default_rng(4).random((80, 5)) < 0.5).astype(np.float64)
    first = bootstrap_sums(values, n_resamples=20, seed=1)
    first[:] = -1.0  # a caller that writes into its result must not change the next caller's
    again = bootstrap_sums(values, n_resamples=20, seed=1)
    np.testing.assert_array_equal(again, resample_counts(80, 20, np.random.default_rng(1)) @ values)
    assert not np.array_equal(bootstrap_sums(values, n_resamples=20, seed=2), again)


def test_distinct_rows_survive_a_projection_collision() -> None:
    projection = np.random.default_rng(0).random(2) + 0.5  # _distinct_rows' projection
    values = np.array([[projection[1], 0.0], [0.0, projection[0]], [projection[1], 0.0]])
    patterns, index = _distinct_rows(values)  # rows 0 and 1 share a key: the exact sort decides
    assert patterns.shape == (2, 2)
    np.testing.assert_array_equal(patterns[index], values)


def test_percentile_interval_equals_numpy_and_skips_nan() -> None:
    rng = np.random.default_rng(2)
    samples = rng.normal(size=(101, 6))
    samples[rng.random(samples.shape) < 0.2] = np.nan
    samples[:, 5] = np.nan  # never defined
    samples[1:, 4] = np.nan  # defined once
    low, high = percentile_interval(samples, 0.9)
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        expected = np.nanpercentile(samples, [5, 95], axis=0)
    np.testing.assert_allclose(low, expected[0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(high, expected[1], rtol=0, atol=1e-12)
    assert np.isnan(low[5]) and low[4] == high[4] == samples[0, 4]


@pytest.mark.parametrize("kwargs", [{"n_resamples": 0}, {"n_resamples": 5, "chunk_size": 0}])
def test_bad_options_are_rejected(kwargs: dict[str, int]) -> None:
    with pytest.raises(ConfigError):
        bootstrap_sums(np.ones((3, 2)), **kwargs)
    with pytest.raises(ConfigError, match="confidence"):
        percentile_interval(np.ones((3, 2)), 1.0)

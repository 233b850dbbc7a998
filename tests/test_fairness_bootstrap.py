"""The vectorised bootstrap: resample counts, weighted sums, and NaN-aware percentile intervals."""

from __future__ import annotations

import numpy as np
import pytest

from fairmerge.errors import ConfigError
from fairmerge.fairness.bootstrap import bootstrap_sums, percentile_interval, resample_counts


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

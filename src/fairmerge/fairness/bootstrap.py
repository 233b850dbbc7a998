"""Vectorised percentile bootstrap over examples.

Every statistic fairmerge bootstraps is a ratio of weighted sums over examples (counts of true
positives, false positives, … inside a group). A resample of the examples is therefore a vector of
multiplicities ``w`` (how often each example was drawn), and all the sums of one resample are one
product ``w @ X``. Drawing ``B`` resamples as a ``B × n`` count matrix turns the whole bootstrap into
a few matrix products instead of a Python loop over resamples and groups; because all statistics
share the same draw, overlapping groups stay consistent within a resample.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from fairmerge.errors import ConfigError


def resample_counts(n: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """``n_resamples × n`` multiplicities of ``n`` examples drawn with replacement, ``n`` per row."""
    draws = rng.integers(0, n, size=(n_resamples, n))
    draws += (np.arange(n_resamples) * n)[:, None]
    # One bincount over offset indices counts every row at once (much faster than rng.multinomial
    # with n equal probabilities, and the same distribution).
    return np.bincount(draws.ravel(), minlength=n_resamples * n).reshape(n_resamples, n)


def _chunks(total: int, size: int) -> Iterator[int]:
    done = 0
    while done < total:
        yield min(size, total - done)
        done += size


def bootstrap_sums(
    values: np.ndarray,
    *,
    n_resamples: int,
    seed: int = 0,
    chunk_size: int = 250,
) -> np.ndarray:
    """Column sums of ``values`` (n × k) under ``n_resamples`` bootstrap resamples of its rows.

    Returns a ``n_resamples × k`` array. Resamples are drawn ``chunk_size`` at a time so memory stays
    at ``chunk_size × n`` counts whatever the number of resamples; the result depends only on
    ``seed`` (and ``chunk_size``).
    """
    if n_resamples < 1:
        raise ConfigError(f"n_resamples must be >= 1, got {n_resamples}")
    if chunk_size < 1:
        raise ConfigError(f"chunk_size must be >= 1, got {chunk_size}")
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] == 0:
        raise ConfigError(f"values must be a non-empty n × k matrix, got shape {values.shape}")
    n = values.shape[0]
    rng = np.random.default_rng(seed)
    out = np.empty((n_resamples, values.shape[1]), dtype=np.float64)
    start = 0
    for size in _chunks(n_resamples, chunk_size):
        weights = resample_counts(n, size, rng).astype(np.float64)
        out[start : start + size] = weights @ values
        start += size
    return out


def percentile_interval(samples: np.ndarray, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of ``samples`` along axis 0, ignoring NaN resamples.

    A resample in which a statistic is undefined (e.g. a TPR when no positive was drawn) is left
    out of that statistic's interval; when no resample defines it the interval is NaN. Same
    ``linear`` interpolation as ``np.percentile``, but vectorised over columns with NaNs
    (``np.nanpercentile`` loops over columns in Python).
    """
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"confidence must be in (0, 1), got {confidence}")
    samples = np.asarray(samples, dtype=np.float64)
    ordered = np.sort(samples, axis=0)  # NaN sort last
    valid = np.sum(~np.isnan(samples), axis=0)
    alpha = (1.0 - confidence) / 2.0
    bounds = []
    for q in (alpha, 1.0 - alpha):
        position = (np.maximum(valid, 1) - 1) * q
        below = np.floor(position).astype(np.int64)
        above = np.minimum(below + 1, np.maximum(valid - 1, 0))
        frac = position - below
        lo = np.take_along_axis(ordered, below[None, ...], axis=0)[0]
        hi = np.take_along_axis(ordered, above[None, ...], axis=0)[0]
        value = lo + (hi - lo) * frac
        bounds.append(np.where(valid > 0, value, np.nan))
    return bounds[0], bounds[1]

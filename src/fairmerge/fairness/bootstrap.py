"""Vectorised bootstrap over examples, with percentile and bias-corrected (BC, BCa) intervals.

Every statistic fairmerge bootstraps is a ratio of weighted sums over examples (counts of true
positives, false positives, … inside a group). A resample of the examples is therefore a vector of
multiplicities ``w`` (how often each example was drawn), and all the sums of one resample are one
product ``w @ X``. Drawing ``B`` resamples as a ``B × n`` count matrix turns the whole bootstrap into
a few matrix products instead of a Python loop over resamples and groups; because all statistics
share the same draw, overlapping groups stay consistent within a resample. The rows of ``X`` are
0/1 indicators with few distinct values, so the counts are taken over distinct rows (a ``B × P``
matrix, P in the dozens) rather than over examples.

Intervals: ``percentile`` reads the resamples' quantiles; ``basic`` reflects them about the
estimate; ``bc`` and ``bca`` (Efron 1987) shift the quantile levels by the fraction of resamples
below the estimate (bias) and, for ``bca``, by a jackknife acceleration (skew). A max − min gap of
noisy group rates is biased upward, and its resamples sit above the estimate; the bias correction
moves the interval down. Which method reaches nominal coverage at the study's group sizes is
measured by ``benchmarks/ci_coverage.py`` (docs/statistics.md). scipy.stats.bootstrap computes
BCa too, but one statistic at a time from the data, recomputing the jackknife each call; here
every rate and gap of a frame shares one draw and one closed-form jackknife of count sums.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Literal

import numpy as np
from scipy.special import ndtr, ndtri

from fairmerge.errors import ConfigError

Interval = Literal["percentile", "basic", "bc", "bca"]
INTERVALS: tuple[Interval, ...] = ("percentile", "basic", "bc", "bca")


def resample_counts(n: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """``n_resamples × n`` multiplicities of ``n`` examples drawn with replacement, ``n`` per row."""
    return _row_counts(_draw_rows(n, n_resamples, rng), n)


def _draw_rows(n: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """The indices of ``n_resamples`` resamples of ``n`` rows (``n_resamples × n``): the one random draw."""
    return rng.integers(0, n, size=(n_resamples, n))


def _row_counts(keys: np.ndarray, n_keys: int) -> np.ndarray:
    """How often each of ``n_keys`` keys occurs in each row of ``keys``, as a ``rows × n_keys`` matrix.

    One bincount over keys offset by their row counts every row at once (much faster than
    rng.multinomial with equal probabilities or a loop over rows).
    """
    offset = keys + (np.arange(keys.shape[0]) * n_keys)[:, None]
    return np.bincount(offset.ravel(), minlength=keys.shape[0] * n_keys).reshape(keys.shape[0], n_keys)


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
    ``values``, ``seed`` and ``chunk_size`` (a repeated request is served from memory, below).
    """
    if n_resamples < 1:
        raise ConfigError(f"n_resamples must be >= 1, got {n_resamples}")
    if chunk_size < 1:
        raise ConfigError(f"chunk_size must be >= 1, got {chunk_size}")
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] == 0:
        raise ConfigError(f"values must be a non-empty n × k matrix, got shape {values.shape}")
    digest = hashlib.blake2b(values.tobytes(), digest_size=16).digest()
    key = (digest, values.shape, n_resamples, seed, chunk_size)
    sums = _RECENT_SUMS.get(key)
    if sums is None:
        sums = _RECENT_SUMS[key] = _draw_sums(values, n_resamples, seed, chunk_size)
        while len(_RECENT_SUMS) > _RECENT_LIMIT:
            _RECENT_SUMS.pop(next(iter(_RECENT_SUMS)), None)
    return sums.copy()


_RECENT_SUMS: dict[tuple[object, ...], np.ndarray] = {}
_RECENT_LIMIT = 8
"""The last sums :func:`bootstrap_sums` drew, by (values, resamples, seed, chunk size).

A result depends only on these, and one model's predictions can ask for the same draw more than once
(``group_metrics`` with two interval methods, or scored again with the study's seed): the repeats
are served from here instead of resampling again. Oldest out first.
"""


def _draw_sums(values: np.ndarray, n_resamples: int, seed: int, chunk_size: int) -> np.ndarray:
    """:func:`bootstrap_sums` without the memory of recent draws."""
    n = values.shape[0]
    # Rows repeat (the fairness designs are 0/1 indicators of a confusion cell and a group set, so a
    # few dozen distinct rows among thousands of posts): count the distinct rows a resample draws
    # and multiply those counts by the distinct rows. Same draw, and for integer values the same
    # sums to the last bit (integer sums are exact in float64), at a fraction of the cost.
    patterns, pattern_of_row = _distinct_rows(values)
    rng = np.random.default_rng(seed)
    out = np.empty((n_resamples, values.shape[1]), dtype=np.float64)
    start = 0
    for size in _chunks(n_resamples, chunk_size):
        drawn = pattern_of_row[_draw_rows(n, size, rng)]
        out[start : start + size] = _row_counts(drawn, patterns.shape[0]).astype(np.float64) @ patterns
        start += size
    return out


def _distinct_rows(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of ``values`` and each row's index among them (``np.unique(axis=0)``'s answer).

    Rows are keyed by a random projection (a 1-D sort, far cheaper than ``np.unique``'s row sort);
    the keys are checked to rebuild ``values`` exactly, and the exact row sort runs when they do not.
    """
    projection = np.random.default_rng(0).random(values.shape[1]) + 0.5
    _, first, inverse = np.unique(values @ projection, return_index=True, return_inverse=True)
    patterns = values[first]
    if np.array_equal(patterns[inverse], values, equal_nan=True):
        return patterns, inverse
    patterns, inverse = np.unique(values, axis=0, return_inverse=True)
    return patterns, inverse.reshape(values.shape[0])


def percentile_interval(samples: np.ndarray, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of ``samples`` along axis 0, ignoring NaN resamples.

    A resample in which a statistic is undefined (e.g. a TPR when no positive was drawn) is left
    out of that statistic's interval; when no resample defines it the interval is NaN. Same
    ``linear`` interpolation as ``np.percentile``, but vectorised over columns with NaNs
    (``np.nanpercentile`` loops over columns in Python).
    """
    _check_confidence(confidence)
    alpha = (1.0 - confidence) / 2.0
    return _quantiles(samples, np.asarray(alpha)), _quantiles(samples, np.asarray(1.0 - alpha))


def bootstrap_interval(
    samples: np.ndarray,
    estimate: np.ndarray,
    confidence: float = 0.95,
    *,
    method: Interval = "basic",
    jackknife: np.ndarray | None = None,
    support: tuple[float, float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Interval of each column of ``samples`` (resamples × statistics) around ``estimate``.

    ``jackknife`` (leave-one-out values, examples × statistics) gives BCa its acceleration; it is
    required for ``bca`` only. ``support`` clips the interval to the statistic's range (rates and
    gaps lie in [0, 1]; the ``basic`` reflection can leave it, and clipping to a range the truth
    lies in never lowers coverage). NaN resamples are ignored, as in :func:`percentile_interval`;
    a statistic whose estimate is NaN gets a NaN interval.
    """
    _check_confidence(confidence)
    if method not in INTERVALS:
        raise ConfigError(f"interval method must be one of {list(INTERVALS)}, got {method!r}")
    samples = np.asarray(samples, dtype=np.float64)
    estimate = np.broadcast_to(np.asarray(estimate, dtype=np.float64), samples.shape[1:])
    alpha = (1.0 - confidence) / 2.0
    if method == "percentile":
        low, high = percentile_interval(samples, confidence)
    elif method == "basic":
        low = 2 * estimate - _quantiles(samples, np.asarray(1.0 - alpha))
        high = 2 * estimate - _quantiles(samples, np.asarray(alpha))
    else:
        if method == "bca" and jackknife is None:
            raise ConfigError("the bca interval needs jackknife values")
        z0 = _bias_z(samples, estimate)
        accel = _acceleration(np.asarray(jackknife)) if method == "bca" else np.zeros_like(z0)
        levels = []
        for q in (alpha, 1.0 - alpha):
            z = ndtri(q)
            with np.errstate(divide="ignore", invalid="ignore"):
                levels.append(ndtr(z0 + (z0 + z) / (1.0 - accel * (z0 + z))))
        low, high = _quantiles(samples, levels[0]), _quantiles(samples, levels[1])
    if support is not None:
        low, high = np.clip(low, *support), np.clip(high, *support)
    undefined = np.isnan(estimate)
    return np.where(undefined, np.nan, low), np.where(undefined, np.nan, high)


def _bias_z(samples: np.ndarray, estimate: np.ndarray) -> np.ndarray:
    """Φ⁻¹ of the share of defined resamples below the estimate (ties count half), clipped.

    Ties matter: counts make many resamples equal the estimate exactly. The share is clipped to
    [1/(2B), 1 − 1/(2B)] so a resample cloud entirely on one side gives a finite shift.
    """
    valid = ~np.isnan(samples)
    count = np.maximum(valid.sum(axis=0), 1)
    with np.errstate(invalid="ignore"):
        below = ((samples < estimate) & valid).sum(axis=0) + 0.5 * ((samples == estimate) & valid).sum(axis=0)
    share = np.clip(below / count, 0.5 / count, 1.0 - 0.5 / count)
    return np.asarray(ndtri(share))


def _acceleration(jackknife: np.ndarray) -> np.ndarray:
    """Efron's acceleration from leave-one-out values: Σd³ / (6 (Σd²)^1.5), d = mean − θ₍ᵢ₎."""
    jack = np.asarray(jackknife, dtype=np.float64)
    defined = ~np.isnan(jack)
    with np.errstate(invalid="ignore", divide="ignore"):
        d = np.nansum(jack, axis=0) / defined.sum(axis=0) - jack
        num = np.nansum(d**3, axis=0)
        den = 6.0 * np.nansum(d**2, axis=0) ** 1.5
        accel = np.where(den > 0, num / den, 0.0)
    return np.nan_to_num(accel, nan=0.0)


def _quantiles(samples: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Per-column quantile at level ``q`` (scalar or one per column), NaN-aware, linear interpolation."""
    samples = np.asarray(samples, dtype=np.float64)
    ordered = np.sort(samples, axis=0)  # NaN sort last
    valid = np.sum(~np.isnan(samples), axis=0)
    level = np.nan_to_num(np.broadcast_to(np.asarray(q, dtype=np.float64), valid.shape), nan=0.5)
    position = (np.maximum(valid, 1) - 1) * np.clip(level, 0.0, 1.0)
    below = np.floor(position).astype(np.int64)
    above = np.minimum(below + 1, np.maximum(valid - 1, 0))
    frac = position - below
    lo = np.take_along_axis(ordered, below[None, ...], axis=0)[0]
    hi = np.take_along_axis(ordered, above[None, ...], axis=0)[0]
    with np.errstate(invalid="ignore"):
        value = lo + (hi - lo) * frac
    return np.where(valid > 0, value, np.nan)


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"confidence must be in (0, 1), got {confidence}")

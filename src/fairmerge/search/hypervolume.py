"""Exact hypervolume of a set of points (all objectives larger-is-better) above a reference point.

Written by hand because optuna's public API has none: the installed optuna (5.1) computes it in
``optuna._hypervolume.compute_hypervolume``, a private module (leading underscore, no stability
promise; it minimises, and raises on points worse than the reference). pymoo has one but is not a
dependency. The tests check this one against optuna's private function and a brute-force count.

The algorithm slices along the last objective (HSO): sort the points by it, descending; between
consecutive values the dominated region is a (d−1)-dimensional hypervolume times the slice's
height. Exact, O(n^(d−1) log n): fronts here hold tens of points and d ≤ 4.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fairmerge.errors import ConfigError
from fairmerge.search.problem import Objective, ScoredPoint


def hypervolume(points: np.ndarray | Sequence[Sequence[float]], reference: Sequence[float]) -> float:
    """Volume of the region dominated by ``points`` (n × d, larger is better) and above ``reference``.

    Points with a NaN are left out; coordinates below the reference are clipped to it (such a
    point adds nothing in that direction). An empty set has volume 0.
    """
    ref = np.asarray(reference, dtype=float)
    values = np.asarray(points, dtype=float).reshape(-1, ref.size)
    if ref.ndim != 1 or ref.size == 0 or not np.isfinite(ref).all():
        raise ConfigError(f"the reference point must be a finite vector, got {list(reference)}")
    values = values[~np.isnan(values).any(axis=1)]
    values = np.maximum(values, ref)
    values = values[(values > ref).all(axis=1)]
    if len(values) == 0:
        return 0.0
    return _slice(np.unique(values, axis=0) - ref)


def _slice(values: np.ndarray) -> float:
    """Hypervolume above the origin of non-negative points (n × d)."""
    if values.shape[1] == 1:
        return float(values.max())
    order = np.argsort(-values[:, -1], kind="stable")
    values = values[order]
    heights = np.append(values[:, -1], 0.0)
    total = 0.0
    for i in range(len(values)):
        step = heights[i] - heights[i + 1]
        if step > 0:  # the points at or above this height span the slice's (d−1)-volume
            total += step * _slice(values[: i + 1, :-1])
    return total


def front_hypervolume(
    front: Sequence[ScoredPoint], objectives: Sequence[Objective], reference: Sequence[float]
) -> float:
    """Hypervolume of scored points in goodness coordinates (accuracy, 1 − gap, ...)."""
    goodness = np.array(
        [[o.goodness(v) for o, v in zip(objectives, p.values, strict=True)] for p in front], dtype=float
    )
    return hypervolume(goodness.reshape(-1, len(objectives)), reference)

"""The table that ranks the searchers: hypervolume on validation and on test, with a bootstrap interval.

Hypervolume is taken in (accuracy, 1 − gap, ...) coordinates against the declared reference point.
The validation hypervolume is that of each seed's validation front; the test hypervolume is that of
the same front's points scored on test. Its interval is a two-level bootstrap: each replicate draws
test posts with replacement (one draw shared by every point, seed and method, so they stay
comparable) and seeds with replacement, recomputes every point's objectives on the drawn posts
(groups qualify as on the full sample, as in :func:`fairmerge.fairness.group_metrics`), and averages
the drawn seeds' hypervolumes. The interval is the percentile one; its coverage has not been measured.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from fairmerge.atomic import atomic_write_text
from fairmerge.errors import ConfigError
from fairmerge.fairness.bootstrap import resample_counts
from fairmerge.fairness.metrics import (
    MIN_NEGATIVES,
    MIN_POSITIVES,
    Thresholds,
    _attribute_metrics,
    _design,
    _rates,
    _stack_memberships,
)
from fairmerge.search.hypervolume import front_hypervolume, hypervolume
from fairmerge.search.problem import Objective, SearchResult


class ResampledObjectives:
    """Objectives of 0/1 test predictions under weighted resamples of the test posts."""

    def __init__(
        self,
        labels: np.ndarray,
        memberships: Mapping[str, pd.DataFrame],
        objectives: Sequence[Objective],
        *,
        min_group_size: int,
        min_positives: int = MIN_POSITIVES,
        min_negatives: int = MIN_NEGATIVES,
    ) -> None:
        self.labels = np.asarray(labels, dtype=np.int64)
        self.members, self.layout = _stack_memberships(memberships, self.labels.size)
        self.objectives = tuple(objectives)
        self.thresholds = Thresholds(min_group_size, min_positives, min_negatives)

    def goodness(self, predictions: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """(resamples × objectives) goodness values of one model's predictions under ``weights``
        (resamples × posts multiplicities; a row of ones is the full sample)."""
        design = _design(self.labels, np.asarray(predictions, dtype=np.int64), self.members)
        columns = self.members.shape[1]
        full = design.sum(axis=0).reshape(4, columns)
        counts = np.moveaxis((weights @ design).reshape(len(weights), 4, columns), 1, 0)
        rates = _rates(counts)
        gaps = _attribute_metrics(rates, self.thresholds.qualifying(full), self.layout)
        values = []
        for objective in self.objectives:
            attribute, _, metric = objective.row
            value = rates["accuracy"][..., 0] if objective.name == "accuracy" else gaps[attribute, metric]
            values.append(np.broadcast_to(value if objective.maximize else 1.0 - value, (len(weights),)))
        return np.stack(values, axis=1)


def hypervolume_table(
    results: Mapping[str, Sequence[SearchResult]],
    test_predictions: Mapping[str, Sequence[np.ndarray]],
    scorer: ResampledObjectives,
    reference: Sequence[float],
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """One row per method, ranked by test hypervolume (mean over seeds).

    ``results[method]`` holds one :class:`SearchResult` per seed; ``test_predictions[method]`` the
    same seeds' front predictions on test (front points × posts, 0/1), in front order.
    Columns: rank, method, hv_val, hv_test, hv_test_ci_low, hv_test_ci_high, front_size,
    n_evaluations, wall_s (means over seeds), n_seeds.
    """
    if set(results) != set(test_predictions):
        raise ConfigError("results and test predictions must name the same methods")
    n_posts = scorer.labels.size
    rng = np.random.default_rng(seed)
    weights = resample_counts(n_posts, n_resamples, rng).astype(np.float64) if n_resamples else None
    n_seeds = {len(r) for r in results.values()}
    if len(n_seeds) != 1:
        raise ConfigError(f"every method needs the same number of seeds, got {sorted(n_seeds)}")
    seed_draws = rng.integers(0, n_seeds.pop(), size=(n_resamples, len(next(iter(results.values())))))
    rows = []
    for method, runs in results.items():
        fronts = test_predictions[method]
        full = [_front_goodness(scorer, front, np.ones((1, n_posts))) for front in fronts]
        test_hv = [hypervolume(g[0], reference) for g in full]
        row = {
            "method": method,
            "hv_val": float(np.mean([front_hypervolume(r.front, r.objectives, reference) for r in runs])),
            "hv_test": float(np.mean(test_hv)),
            "hv_test_ci_low": np.nan,
            "hv_test_ci_high": np.nan,
            "front_size": float(np.mean([len(r.front) for r in runs])),
            "n_evaluations": float(np.mean([r.n_evaluations for r in runs])),
            "wall_s": float(np.mean([r.wall_s for r in runs])),
            "n_seeds": len(runs),
        }
        if weights is not None:
            per_seed = np.array(
                [[hypervolume(g, reference) for g in _front_goodness(scorer, f, weights)] for f in fronts]
            )  # seeds × resamples
            replicates = per_seed[seed_draws, np.arange(n_resamples)[:, None]].mean(axis=1)
            alpha = (1 - confidence) / 2
            row["hv_test_ci_low"], row["hv_test_ci_high"] = np.quantile(replicates, [alpha, 1 - alpha])
        rows.append(row)
    table = pd.DataFrame(rows).sort_values("hv_test", ascending=False, kind="stable")
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    return table.reset_index(drop=True)


def _front_goodness(scorer: ResampledObjectives, front: np.ndarray, weights: np.ndarray) -> list[np.ndarray]:
    """Per resample, the front's goodness matrix (points × objectives)."""
    per_point = [scorer.goodness(p, weights) for p in np.atleast_2d(front)] if len(front) else []
    if not per_point:
        return [np.empty((0, len(scorer.objectives))) for _ in range(len(weights))]
    stacked = np.stack(per_point, axis=1)  # resamples × points × objectives
    return list(stacked)


def write_hypervolume_csv(path: str | os.PathLike[str], table: pd.DataFrame) -> None:
    atomic_write_text(path, table.to_csv(index=False))


def summary_records(table: pd.DataFrame) -> list[dict[str, object]]:
    """The table as ``summary.json["search"]`` records."""
    return [{str(k): v for k, v in row.items()} for row in table.to_dict(orient="records")]

"""The score function a study stage hands to :class:`fairmerge.search.problem.Evaluations`.

It writes a point into the one evaluated model (through :class:`BlockMerger`), scores the split's
posts (cached under the point's key by the split evaluator, so a resumed run does no forward pass
twice) and returns the tidy metrics with bootstrap intervals. The split evaluators are the study's
:class:`fairmerge.study.evaluator.SplitEvaluator` (or anything with the same two methods).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import numpy as np
import pandas as pd
import torch

from fairmerge.fairness.calibration import predict_at
from fairmerge.search.problem import BlockMerger, Coefficients, ScoredPoint, Split


class SplitScorer(Protocol):
    """What the search needs of a split evaluator."""

    def scores(self, model: torch.nn.Module, key: str, prepare: Callable[[], object]) -> np.ndarray: ...

    def metrics(
        self, scores: np.ndarray, *, threshold: float = 0.5, n_resamples: int = 0, seed: int = 0
    ) -> pd.DataFrame: ...


def point_key(method_prefix: str, coefficients: Coefficients) -> str:
    """The score-cache key of a point: one per coefficients, shared by every searcher."""
    return f"{method_prefix}|" + ",".join(f"{c:.4f}" for c in coefficients)


class MergerScoreFn:
    """A :data:`ScoreFn` over the study's split evaluators (argmax decisions, intervals on each split).

    Keeps each scored point's P(y=1) on test, for the ranking table's bootstrap
    (:meth:`test_predictions`); validation scores are not kept (there are budget-many of them).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        merger: BlockMerger,
        splits: Mapping[Split, SplitScorer],
        *,
        n_resamples: Mapping[Split, int],
        seed: int,
        key_prefix: str = "search",
    ) -> None:
        self.model, self.merger, self.splits = model, merger, splits
        self.n_resamples, self.seed, self.key_prefix = n_resamples, seed, key_prefix
        self.test_scores: dict[Coefficients, np.ndarray] = {}

    def __call__(self, coefficients: Coefficients, split: Split) -> pd.DataFrame:
        evaluator = self.splits[split]
        scores = evaluator.scores(
            self.model,
            point_key(self.key_prefix, coefficients),
            lambda: self.merger.set_coefficients(coefficients),
        )
        if split == "test":
            self.test_scores[coefficients] = scores
        return evaluator.metrics(scores, n_resamples=self.n_resamples[split], seed=self.seed)

    def test_predictions(self, points: Sequence[ScoredPoint], threshold: float = 0.5) -> np.ndarray:
        """0/1 test predictions of already test-scored points (points × posts)."""
        return np.stack([predict_at(self.test_scores[p.coefficients], threshold) for p in points])

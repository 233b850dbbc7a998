"""The score function a study stage hands to :class:`fairmerge.search.problem.Evaluations`.

It asks a cached point scorer for a point's P(y=1) on a split and returns the tidy metrics with
bootstrap intervals. The study's scorer (``fairmerge.study.stages.search.SearchPoints``) looks the
point up in the score cache and, only on a miss, has the study's one workspace write it into the
model; this module neither holds a model nor writes weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import pandas as pd

from fairmerge.fairness.calibration import predict_at
from fairmerge.search.problem import Coefficients, ScoredPoint, Split


class PointScorer(Protocol):
    """What the search needs of a cached scorer: a point's scores on a split, and their metrics."""

    def scores(self, coefficients: Coefficients, split: Split) -> np.ndarray: ...

    def metrics(self, scores: np.ndarray, split: Split) -> pd.DataFrame: ...


class CachedScoreFn:
    """A :data:`ScoreFn` over a :class:`PointScorer` (argmax decisions, intervals on each split).

    Keeps each scored point's P(y=1) on test, for the ranking table's bootstrap
    (:meth:`test_predictions`); validation scores are the scorer's business.
    """

    def __init__(self, scorer: PointScorer) -> None:
        self.scorer = scorer
        self.test_scores: dict[Coefficients, np.ndarray] = {}

    def __call__(self, coefficients: Coefficients, split: Split) -> pd.DataFrame:
        scores = self.scorer.scores(coefficients, split)
        if split == "test":
            self.test_scores[coefficients] = scores
        return self.scorer.metrics(scores, split)

    def test_predictions(self, points: Sequence[ScoredPoint], threshold: float = 0.5) -> np.ndarray:
        """0/1 test predictions of already test-scored points (points × posts)."""
        return np.stack([predict_at(self.test_scores[p.coefficients], threshold) for p in points])

"""The evaluator that turns candidates into their metric rows.

:class:`PointEvaluator` turns a candidate's scores (from the cached
:class:`~fairmerge.study.scorer.CandidateScorer`) into its metrics on validation (both decisions:
argmax and a validation-chosen threshold) or, once it is selected, on test, and returns them as an
immutable :class:`~fairmerge.study.metric_rows.MetricRows`; it keeps none.
:class:`~fairmerge.study.candidate.Candidate` is re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from fairmerge.evaluation import split_metrics
from fairmerge.fairness.calibration import choose_threshold, predict_at
from fairmerge.labels import Decision, ModelLabel
from fairmerge.study.candidate import Candidate
from fairmerge.study.evaluator import SplitEvaluator
from fairmerge.study.metric_rows import MetricRows
from fairmerge.study.scorer import CandidateScorer
from fairmerge.warning_log import warning_context

__all__ = ["Candidate", "MetricRows", "PointEvaluator"]


@dataclass
class PointEvaluator:
    """Turns the scores of one seed's candidates (:class:`CandidateScorer`) into metric rows."""

    scorer: CandidateScorer
    calibrate: bool
    calibration_objective: Literal["accuracy", "balanced_accuracy"]
    test_resamples: int
    test_permutations: int

    @property
    def val(self) -> SplitEvaluator:
        return self.scorer.val

    @property
    def test(self) -> SplitEvaluator:
        return self.scorer.test

    @property
    def seed(self) -> int:
        return self.scorer.seed

    @property
    def decisions(self) -> list[Decision]:
        return ["argmax", "calibrated"] if self.calibrate else ["argmax"]

    @property
    def val_resamples(self) -> int:
        return min(self.test_resamples, 200)

    def _metrics(
        self,
        split: SplitEvaluator,
        scores: np.ndarray,
        threshold: float,
        resamples: int,
        permutations: int,
        model: ModelLabel,
    ) -> pd.DataFrame:
        """The reported rows (:func:`fairmerge.evaluation.split_metrics`, the one evaluate path):
        group metrics with intervals, every gap's noise floor and p-value, the labels' own DPD. On
        test, where intervals are reported, the DPD and EOD intervals are the test-inverted ones;
        on val, where they only feed selection diagnostics, the cheaper basic bootstrap's."""
        with warning_context(split=split.name, model=model):
            frame = split_metrics(
                split.split,
                scores,
                threshold=threshold,
                attributes=split.attributes,
                thresholds=split.thresholds,
                n_resamples=resamples,
                n_permutations=permutations,
                seed=self.seed,
                gap_intervals="inverted" if split.name == "test" else "basic",
            )
        frame.insert(0, "split", split.name)
        return frame

    def validate(self, point: Candidate) -> MetricRows:
        """A point's val rows under every decision (argmax first)."""
        scores = self.scorer.scores(point, "val")
        resamples, permutations = self.val_resamples, min(self.test_permutations, 200)
        argmax = self._metrics(self.val, scores, 0.5, resamples, permutations, point.label)
        rows = MetricRows.of(point.label, point.lam, argmax, predict_at(scores, 0.5))
        if not self.calibrate:
            return rows
        threshold = self.threshold(point)
        label = point.label.with_decision("calibrated")
        calibrated = self._metrics(self.val, scores, threshold, resamples, permutations, label)
        return rows + MetricRows.of(label, point.lam, calibrated, predict_at(scores, threshold))

    def threshold(self, point: Candidate) -> float:
        """The decision threshold chosen on the point's val scores."""
        return choose_threshold(
            self.val.split.labels, self.scorer.scores(point, "val"), objective=self.calibration_objective
        )

    def test_once(
        self, point: Candidate, decision: Decision, label: ModelLabel | None = None
    ) -> tuple[MetricRows, np.ndarray]:
        """A selected point's test rows (with CIs), under ``label`` if given (else the point's label
        with ``decision``), and its test predictions."""
        scores = self.scorer.scores(point, "test")
        threshold = 0.5 if decision == "argmax" else self.threshold(point)
        label = label or point.label.with_decision(decision)
        frame = self._metrics(
            self.test, scores, threshold, self.test_resamples, self.test_permutations, label
        )
        return MetricRows.of(label, point.lam, frame), predict_at(scores, threshold)

    def test_predictions(self, label: ModelLabel, predictions: np.ndarray) -> MetricRows:
        """The test rows of fixed 0/1 predictions (a post-processing baseline)."""
        frame = self._metrics(
            self.test, predictions.astype(np.float64), 0.5, self.test_resamples, self.test_permutations, label
        )
        return MetricRows.of(label, None, frame)

"""The ledger of candidates' metric rows, and the evaluator that fills it.

:class:`PointEvaluator` turns a candidate's scores (from the cached
:class:`~fairmerge.study.scorer.CandidateScorer`) into its metrics on validation (both decisions:
argmax and a validation-chosen threshold) or, once it is selected, on test, and appends tidy rows
to a :class:`MetricLedger`. :class:`~fairmerge.study.candidate.Candidate` is re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from fairmerge.evaluation import split_metrics
from fairmerge.fairness.calibration import choose_threshold, predict_at
from fairmerge.labels import Decision, ModelLabel
from fairmerge.study.candidate import Candidate
from fairmerge.study.evaluator import SplitEvaluator
from fairmerge.study.scorer import CandidateScorer
from fairmerge.warning_log import warning_context

__all__ = ["Candidate", "MetricLedger", "PointEvaluator"]


@dataclass
class MetricLedger:
    """The tidy metric rows of every evaluated point, in evaluation order, and the constant ones."""

    frames: list[pd.DataFrame] = field(default_factory=list)
    constant: dict[str, set[float]] = field(default_factory=dict)
    _table: pd.DataFrame | None = field(default=None, repr=False)
    """The concatenated frames, rebuilt only after a new frame was added (selection reads it often)."""

    def add(self, label: ModelLabel, lam: float | None, frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        frame.insert(0, "model", str(label))
        frame.insert(1, "lambda", np.nan if lam is None else lam)
        self.frames.append(frame)
        self._table = None
        return frame

    def note_constant(self, label: ModelLabel, lam: float | None, predictions: np.ndarray) -> None:
        """Remember points that label every val post alike: trivially 'fair' (DPD = EOD = 0)."""
        if lam is not None and predictions.min() == predictions.max():
            self.constant.setdefault(str(label), set()).add(round(lam, 6))

    def is_constant(self, label: ModelLabel, lam: float) -> bool:
        return round(lam, 6) in self.constant.get(str(label), set())

    def accuracy(self, label: ModelLabel, lam: float | None = None, split: str = "val") -> float:
        """Overall accuracy of one recorded point (NaN when absent); ``lam=None`` for λ-free models."""
        rows = self.rows(label, split)
        rows = rows[(rows.attribute == "all") & (rows.metric == "accuracy")]
        rows = rows[rows["lambda"].isna()] if lam is None else rows[rows["lambda"].round(6) == round(lam, 6)]
        return float(rows.value.iloc[0]) if len(rows) else float("nan")

    def table(self) -> pd.DataFrame:
        if self._table is None:
            self._table = pd.concat(self.frames, ignore_index=True)
        return self._table

    def rows(self, label: ModelLabel, split: str) -> pd.DataFrame:
        frame = self.table()
        return frame[(frame.model == str(label)) & (frame.split == split)]


@dataclass
class PointEvaluator:
    """Turns the scores of one seed's candidates (:class:`CandidateScorer`) into recorded metrics."""

    scorer: CandidateScorer
    ledger: MetricLedger
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

    def validate(self, point: Candidate) -> pd.DataFrame:
        """Record a point's val metrics under every decision; return the argmax rows (with model, λ)."""
        scores = self.scorer.scores(point, "val")
        resamples, permutations = self.val_resamples, min(self.test_permutations, 200)
        argmax = self._metrics(self.val, scores, 0.5, resamples, permutations, point.label)
        recorded = self.ledger.add(point.label, point.lam, argmax)
        self.ledger.note_constant(point.label, point.lam, predict_at(scores, 0.5))
        if self.calibrate:
            threshold = self.threshold(point)
            label = point.label.with_decision("calibrated")
            self.ledger.note_constant(label, point.lam, predict_at(scores, threshold))
            calibrated = self._metrics(self.val, scores, threshold, resamples, permutations, label)
            self.ledger.add(label, point.lam, calibrated)
        return recorded

    def threshold(self, point: Candidate) -> float:
        """The decision threshold chosen on the point's val scores."""
        return choose_threshold(
            self.val.split.labels, self.scorer.scores(point, "val"), objective=self.calibration_objective
        )

    def test_once(
        self,
        point: Candidate,
        decision: Decision,
        prepare: Callable[[], object] | None = None,
        label: ModelLabel | None = None,
    ) -> np.ndarray:
        """Record a selected point's test metrics (with CIs) once, under ``label`` if given (else the
        point's label with ``decision``); return its test predictions.

        ``prepare`` is for points the workspace does not hold (the coefficient searches write theirs
        through their own merger, ``stages/search.py``): it writes the point on a cache miss.
        """
        if prepare is None:
            scores = self.scorer.scores(point, "test")
        else:
            scores = self.test.scores(self.scorer.workspace.model, self.scorer.key(point), prepare)
        threshold = 0.5 if decision == "argmax" else self.threshold(point)
        label = label or point.label.with_decision(decision)
        frame = self._metrics(
            self.test, scores, threshold, self.test_resamples, self.test_permutations, label
        )
        self.ledger.add(label, point.lam, frame)
        return predict_at(scores, threshold)

    def test_predictions(self, label: ModelLabel, predictions: np.ndarray) -> None:
        """Record the test metrics of fixed 0/1 predictions (a post-processing baseline)."""
        frame = self._metrics(
            self.test, predictions.astype(np.float64), 0.5, self.test_resamples, self.test_permutations, label
        )
        self.ledger.add(label, None, frame)

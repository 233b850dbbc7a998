"""Candidate models as values, the ledger of their metric rows, and the evaluator that fills it.

A :class:`Candidate` is one candidate (a label and its coefficients). :class:`PointEvaluator` scores a
point on validation (both decisions: argmax and a validation-chosen threshold) or, once it is
selected, on test, and appends tidy rows to a :class:`MetricLedger`. Scores are cached per point.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from transformers import PreTrainedModel

from fairmerge.evaluation import split_metrics
from fairmerge.fairness.calibration import choose_threshold, predict_at
from fairmerge.labels import Decision, ModelLabel
from fairmerge.study.evaluator import SplitEvaluator
from fairmerge.warning_log import warning_context

Prepare = Callable[[], object]
"""Writes a point's weights into the evaluated model (runs only when its scores are not cached)."""


@dataclass(frozen=True)
class Candidate:
    """One candidate model: its family label (argmax decision), its uniform λ (None for per-group
    coefficients or a λ-free model), the coefficient of each vector, the workspace state it starts
    from (θ_base, FFT, a recipe's θ_base, or the baseline itself) and per-group λ_g by vector name."""

    label: ModelLabel
    lam: float | None
    coefficients: tuple[float, ...] | None
    start: str
    lambdas: dict[str, float] | None = None

    @property
    def key(self) -> str:
        """The candidate's score-cache key, built here only: its start state when it edits nothing
        (a baseline, or a uniform λ = 0), else its label with λ or every λ_g."""
        if self.coefficients is None:
            return self.start
        if self.lam is None:
            return f"{self.label}|" + ",".join(f"{x:.4f}" for x in self.coefficients)
        return self.start if self.lam == 0 else f"{self.label}|lam={self.lam:.4f}"


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
    """Scores points of one seed on the study's val and test splits and records their metrics."""

    val: SplitEvaluator
    test: SplitEvaluator
    model: PreTrainedModel
    seed: int
    ledger: MetricLedger
    calibrate: bool
    calibration_objective: Literal["accuracy", "balanced_accuracy"]
    test_resamples: int
    test_permutations: int
    shared: frozenset[str] = frozenset()
    """Score keys of models that do not depend on the seed (a linear-probed θ_base): scored once."""
    val_scores: dict[str, np.ndarray] = field(default_factory=dict)
    test_scores: dict[str, np.ndarray] = field(default_factory=dict)

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

    def _key(self, point: Candidate) -> str:
        return f"shared|{point.key}" if point.key in self.shared else f"seed{self.seed}|{point.key}"

    def scores(self, point: Candidate, split: str, prepare: Prepare) -> np.ndarray:
        """P(y=1) of a point on ``split`` (``val`` or ``test``), from the score cache; not recorded."""
        evaluator = self.val if split == "val" else self.test
        return evaluator.scores(self.model, self._key(point), prepare)

    def val_point_scores(self, point: Candidate, prepare: Prepare) -> np.ndarray:
        """P(y=1) on val of a point (cached); not recorded (per-group search trials)."""
        return self.val.scores(self.model, self._key(point), prepare)

    def validate(self, point: Candidate, prepare: Prepare) -> pd.DataFrame:
        """Record a point's val metrics under every decision; return the argmax rows (with model, λ)."""
        scores = self.val_point_scores(point, prepare)
        self.val_scores[point.key] = scores
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
            self.val.split.labels, self.val_scores[point.key], objective=self.calibration_objective
        )

    def test_once(
        self, point: Candidate, decision: Decision, prepare: Prepare, label: ModelLabel | None = None
    ) -> np.ndarray:
        """Record a selected point's test metrics (with CIs) once, under ``label`` if given (else the
        point's label with ``decision``); return its test predictions."""
        scores = self.test.scores(self.model, self._key(point), prepare)
        self.test_scores[point.key] = scores
        threshold = 0.5 if decision == "argmax" else self.threshold(point)
        label = label or point.label.with_decision(decision)
        frame = self._metrics(
            self.test, scores, threshold, self.test_resamples, self.test_permutations, label
        )
        self.ledger.add(label, point.lam, frame)
        return predict_at(scores, threshold)

    def test_metrics_unrecorded(self, point: Candidate, prepare: Prepare) -> pd.DataFrame:
        """A point's argmax test metrics (with CIs), not recorded: for the selection-sensitivity table."""
        scores = self.test.scores(self.model, self._key(point), prepare)
        return self.test.metrics(scores, n_resamples=self.test_resamples, seed=self.seed)

    def test_predictions(self, label: ModelLabel, predictions: np.ndarray) -> None:
        """Record the test metrics of fixed 0/1 predictions (a post-processing baseline)."""
        frame = self._metrics(
            self.test, predictions.astype(np.float64), 0.5, self.test_resamples, self.test_permutations, label
        )
        self.ledger.add(label, None, frame)

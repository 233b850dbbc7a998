"""Selection on validation, then one test evaluation per selected model (and the post-processing baseline)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from fairmerge.fairness.calibration import sensitive_values, threshold_optimizer_baseline
from fairmerge.labels import Decision, ModelLabel
from fairmerge.study.candidate import Candidate
from fairmerge.study.metric_rows import MetricRows
from fairmerge.study.outputs import headline_row
from fairmerge.study.points import PointEvaluator
from fairmerge.study.policy import SelectionPolicy
from fairmerge.study.sweeps import FamilySweep
from fairmerge.sweep.selection import rule_names


@dataclass(frozen=True)
class SelectedModel:
    """What selection chose for one label (family × decision) and why."""

    label: ModelLabel
    lam: float | None
    lambdas: dict[str, float] | None
    rule: str
    feasible: bool
    reason: str

    @property
    def unedited(self) -> str | None:
        """The model the selected point is when it edits nothing: θ_base for a merge at λ = 0 (or
        every λ_g = 0), FFT for an injection at λ = 0; None for a real edit or a λ-free model."""
        coefficients = list(self.lambdas.values()) if self.lambdas else [self.lam]
        if any(c is None or c != 0 for c in coefficients):
            return None
        return {"merge": "θ_base", "merge_pergroup": "θ_base", "inject": "FFT"}.get(self.label.family)

    def to_dict(self) -> dict[str, Any]:
        return {
            "lambda": self.lam,
            "lambdas": self.lambdas,
            "rule": self.rule,
            "feasible": self.feasible,
            "reason": self.reason,
            "unedited": self.unedited,
        }


@dataclass(frozen=True)
class Tested:
    """What testing selected models produced: their test rows, what was selected and why, and each
    tested label's 0/1 test predictions."""

    rows: MetricRows = field(default_factory=MetricRows)
    selected: Mapping[str, SelectedModel] = field(default_factory=dict)
    predictions: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __add__(self, other: Tested) -> Tested:
        return Tested(
            self.rows + other.rows,
            {**self.selected, **other.selected},
            {**self.predictions, **other.predictions},
        )


def _tested(
    evaluator: PointEvaluator,
    point: Candidate,
    decision: Decision,
    label: ModelLabel,
    selected: SelectedModel | None = None,
) -> Tested:
    """One point tested once under ``label``."""
    rows, predictions = evaluator.test_once(point, decision, label=label)
    return Tested(rows, {} if selected is None else {str(label): selected}, {str(label): predictions})


def baselines_on_test(evaluator: PointEvaluator, names: Sequence[str]) -> Tested:
    """The λ-free baselines on test under every decision."""
    tested = Tested()
    for name in names:
        point = Candidate(ModelLabel.parse(name), None, None, start=name)
        for decision in evaluator.decisions:
            tested += _tested(evaluator, point, decision, point.label.with_decision(decision))
    return tested


def families_on_test(
    evaluator: PointEvaluator,
    policy: SelectionPolicy,
    families: Sequence[FamilySweep],
) -> Tested:
    """Select each family's point on val (from its own rows) under each decision, then evaluate it
    on test once.

    Test rows carry the sweep's ``test_label`` (``inject:worst`` for the worst group's injection).
    """
    tested = Tested()
    for family in families:
        for decision in evaluator.decisions:
            reported = family.test_label.with_decision(decision)
            selection = policy.select_family(family.label.with_decision(decision), family.rows)
            point = family.point_at(selection.lam)
            why = SelectedModel(
                reported, point.lam, None, selection.rule, selection.feasible, selection.reason
            )
            tested += _tested(evaluator, point, decision, reported, why)
    return tested


def pergroup_on_test(
    evaluator: PointEvaluator,
    point: Candidate,
    *,
    rule: str,
    n_trials: int,
) -> Tested:
    """The per-group search's best point on test under every decision."""
    tested = Tested()
    for decision in evaluator.decisions:
        label = point.label.with_decision(decision)
        why = SelectedModel(
            label,
            None,
            point.lambdas,
            f"per-group TPE search ({rule})",
            True,
            f"{n_trials} trials on validation",
        )
        tested += _tested(evaluator, point, decision, label, why)
    return tested


def threshold_optimizer_on_test(
    evaluator: PointEvaluator, attribute: str | None, attributes: Sequence[str]
) -> Tested:
    """fairlearn's ThresholdOptimizer on FFT's val and test scores: the post-processing baseline."""
    if not attribute or attribute not in attributes:
        return Tested()
    fft = Candidate(ModelLabel("fft"), None, None, start="fft")
    val, test = evaluator.val.split, evaluator.test.split
    predictions = threshold_optimizer_baseline(
        evaluator.scorer.scores(fft, "val"),
        val.labels,
        sensitive_values(val.groups[attribute]),
        evaluator.scorer.scores(fft, "test"),
        sensitive_values(test.groups[attribute]),
        seed=evaluator.seed,
    )
    label = ModelLabel("threshold_optimizer")
    return Tested(evaluator.test_predictions(label, predictions), {}, {str(label): predictions})


def selected_table(selected: Mapping[str, SelectedModel]) -> dict[str, dict[str, Any]]:
    """``summary.json``'s ``selected`` mapping."""
    return {label: model.to_dict() for label, model in selected.items()}


def selection_sensitivity(
    evaluator: PointEvaluator,
    policy: SelectionPolicy,
    families: Sequence[FamilySweep],
    attributes: list[str],
) -> pd.DataFrame:
    """Test headline metrics of each family's point under every selection rule (argmax decision).

    A sensitivity analysis, not a result: the study's rule picked the reported point; this table
    shows how much that choice matters. A point chosen by several rules is evaluated once.
    """
    rows = []
    for family in families:
        for rule in rule_names():
            alternative = replace(policy, section=policy.section.model_copy(update={"rule": rule}))
            selection = alternative.select_family(family.label, family.rows)
            point = family.point_at(selection.lam)
            frame = evaluator.scorer.frame(point, "test", n_resamples=evaluator.test_resamples)
            frame.insert(0, "model", str(family.test_label))
            frame.insert(1, "lambda", point.lam)
            row = headline_row(frame, str(family.test_label), attributes)
            rows.append(
                {
                    "rule": rule,
                    "study_rule": rule == policy.section.rule,
                    "feasible": selection.feasible,
                    **row,
                }
            )
    return pd.DataFrame(rows)

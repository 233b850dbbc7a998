"""Selection on validation, then one test evaluation per selected model (and the post-processing baseline)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from fairmerge.fairness.calibration import sensitive_values, threshold_optimizer_baseline
from fairmerge.labels import ModelLabel
from fairmerge.study.candidate import Candidate
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


def baselines_on_test(evaluator: PointEvaluator, names: Sequence[str]) -> dict[str, np.ndarray]:
    """Test predictions of the λ-free baselines under every decision."""
    predictions = {}
    for name in names:
        point = Candidate(ModelLabel.parse(name), None, None, start=name)
        for decision in evaluator.decisions:
            label = str(point.label.with_decision(decision))
            predictions[label] = evaluator.test_once(point, decision)
    return predictions


def families_on_test(
    evaluator: PointEvaluator,
    policy: SelectionPolicy,
    families: Sequence[FamilySweep],
) -> tuple[dict[str, SelectedModel], dict[str, np.ndarray]]:
    """Select each family's point on val under each decision, then evaluate it on test once.

    Test rows carry the sweep's ``test_label`` (``inject:worst`` for the worst group's injection).
    """
    selected: dict[str, SelectedModel] = {}
    predictions: dict[str, np.ndarray] = {}
    for family in families:
        for decision in evaluator.decisions:
            label = family.label.with_decision(decision)
            reported = family.test_label.with_decision(decision)
            selection = policy.select_family(label, evaluator.ledger)
            point = family.point_at(selection.lam)
            predictions[str(reported)] = evaluator.test_once(point, decision, label=reported)
            selected[str(reported)] = SelectedModel(
                reported, point.lam, None, selection.rule, selection.feasible, selection.reason
            )
    return selected, predictions


def pergroup_on_test(
    evaluator: PointEvaluator,
    point: Candidate,
    *,
    rule: str,
    n_trials: int,
) -> tuple[dict[str, SelectedModel], dict[str, np.ndarray]]:
    """Test predictions of the per-group search's best point under every decision."""
    selected, predictions = {}, {}
    for decision in evaluator.decisions:
        label = point.label.with_decision(decision)
        predictions[str(label)] = evaluator.test_once(point, decision)
        selected[str(label)] = SelectedModel(
            label,
            None,
            point.lambdas,
            f"per-group TPE search ({rule})",
            True,
            f"{n_trials} trials on validation",
        )
    return selected, predictions


def threshold_optimizer_on_test(
    evaluator: PointEvaluator, attribute: str | None, attributes: Sequence[str]
) -> dict[str, np.ndarray]:
    """fairlearn's ThresholdOptimizer on FFT's val and test scores: the post-processing baseline."""
    if not attribute or attribute not in attributes:
        return {}
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
    evaluator.test_predictions(ModelLabel("threshold_optimizer"), predictions)
    return {"threshold_optimizer": predictions}


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
            selection = alternative.select_family(family.label, evaluator.ledger)
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

"""The study's validation sweeps: uniform-λ merges, per-group coefficients, and injection into FFT.

Each function takes the workspace, registers the family's vectors there
(:meth:`~fairmerge.study.stages.workspace.Workspace.add_vectors`) and returns the candidates it
evaluated with their val rows; the evaluator's scorer asks the workspace to write each candidate
only on a cache miss.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fairmerge.errors import DataError
from fairmerge.labels import ModelLabel
from fairmerge.study.candidate import Candidate
from fairmerge.study.metric_rows import MetricRows
from fairmerge.study.points import PointEvaluator
from fairmerge.study.policy import SelectionPolicy
from fairmerge.sweep.grid import refined_grid
from fairmerge.sweep.pergroup import search_group_coefficients
from fairmerge.vectors import TaskVector

if TYPE_CHECKING:  # the stages package imports this module
    from fairmerge.study.stages.workspace import Workspace

WORST = "worst"


@dataclass(frozen=True)
class FamilySweep:
    """The val points of one family (a label's argmax variant), their val rows under every
    decision and the family's test label."""

    label: ModelLabel
    points: tuple[Candidate, ...]
    rows: MetricRows
    test_label: ModelLabel

    def point_at(self, lam: float) -> Candidate:
        return next(p for p in self.points if p.lam is not None and np.isclose(p.lam, lam))


def merge_sweep(
    evaluator: PointEvaluator,
    policy: SelectionPolicy,
    workspace: Workspace,
    vectors: Sequence[TaskVector],
    label: ModelLabel,
    lambdas: Sequence[float],
    *,
    refine_rounds: int,
    merge_options: Mapping[str, Any],
    start: str = "base",
) -> FamilySweep:
    """θ_start + λ·Σ τ_g over the λ grid (plus refinement around the selected point) on val.

    ``merge_options`` are the merge engine's ``method`` / ``density`` / ``seed``
    (``SweepSection.merge_options``). The workspace keeps only Σ τ_g (``uniform``), so memory does
    not grow with the number of vectors.
    """
    workspace.add_vectors(str(label), start, vectors, uniform=True, **merge_options)
    points: list[Candidate] = []
    evaluated: list[MetricRows] = []

    def evaluate_at(lam: float) -> pd.DataFrame:
        point = Candidate(label, lam, (lam,) * len(vectors), start=start)  # λ = 0 is θ_start itself
        points.append(point)
        evaluated.append(evaluator.validate(point))
        return evaluated[-1].rows(label, "val").drop(columns=["model", "lambda"])

    refined_grid(
        lambdas,
        evaluate_at,
        refine_rounds=refine_rounds,
        selector=lambda table: policy.select(table, label, MetricRows.concat(evaluated)),
        progress=False,
    )
    return FamilySweep(label, tuple(points), MetricRows.concat(evaluated), label)


def pergroup_search(
    evaluator: PointEvaluator,
    policy: SelectionPolicy,
    workspace: Workspace,
    vectors: Mapping[str, TaskVector],
    *,
    uniform_lambda: float,
    n_trials: int,
    high: float,
    merge_options: Mapping[str, Any],
) -> tuple[Candidate, MetricRows, pd.DataFrame]:
    """One λ_g per subgroup vector, searched on val with a seeded, budgeted TPE; returns the best
    point, its val rows and every trial.

    ``merge_options`` as in :func:`merge_sweep`. Lazy vectors are streamed from their checkpoints
    at every trial rather than held in memory.
    """
    names = list(vectors)
    label = ModelLabel("merge_pergroup")
    workspace.add_vectors(str(label), "base", list(vectors.values()), **merge_options)

    def objective(lambdas: Sequence[float]) -> pd.DataFrame:
        return evaluator.scorer.frame(Candidate(label, None, tuple(lambdas), start="base"), "val")

    section = policy.section
    result = search_group_coefficients(
        objective,
        names,
        n_trials=n_trials,
        rule=section.rule,
        epsilon=section.epsilon,
        delta=section.delta,
        reference_accuracy=policy.reference_accuracy,
        start=[uniform_lambda] * len(names),
        high=high,
        seed=evaluator.seed,
    )
    best = tuple(result.best[name] for name in names)
    point = Candidate(label, None, best, "base", dict(result.best))
    return point, evaluator.validate(point), result.trials


def worst_group(
    fft_val: pd.DataFrame,
    attributes: Sequence[str],
    vector_labels: Mapping[tuple[str, str], str],
    *,
    qualifying: pd.DataFrame,
    min_group_size: int,
    criterion: str,
) -> dict[str, str]:
    """The group with a vector that FFT serves worst on val (accuracy, or EOD contribution).

    Only a group that enters every gap can be the worst: ``qualifying`` is
    :func:`fairmerge.fairness.metrics.qualifying_groups` of the val labels under the study's
    ``min_group_size`` / ``min_positives`` / ``min_negatives``. The EOD contribution is measured
    against the median of every group with ``min_group_size`` posts, as before that filter.
    """
    entered = qualifying.groupby(["attribute", "group"])["entered"].all()
    candidates = []
    for attribute in attributes:
        rows = fft_val[fft_val.attribute == attribute].pivot_table(
            index="group", columns="metric", values="value"
        )
        rows = rows[(rows.get("n", 0) >= min_group_size) & (rows.index != "all")]
        for group, row in rows.iterrows():
            name = vector_labels.get((attribute, str(group)))
            if name is None or not entered.get((attribute, str(group)), False):
                continue
            if criterion == "accuracy":
                badness = -float(row["accuracy"])
            else:  # distance of the group's TPR/FPR from the other groups' median: its share of EOD
                badness = max(abs(float(row[m]) - float(np.nanmedian(rows[m]))) for m in ("tpr", "fpr"))
            if not np.isnan(badness):
                candidates.append((badness, attribute, str(group), name))
    if not candidates:
        raise DataError(
            "no subgroup with a task vector has enough validation posts, positives and negatives "
            "(evaluation.min_group_size, min_positives, min_negatives) to rank groups"
        )
    _, attribute, group, name = max(candidates)
    return {"attribute": attribute, "group": group, "label": name, "criterion": criterion}


def injection_sweeps(
    evaluator: PointEvaluator,
    workspace: Workspace,
    vectors: Mapping[str, TaskVector],
    names: Sequence[str],
    lambdas: Sequence[float],
) -> dict[str, FamilySweep]:
    """θ_FFT + λ·τ_g on val, for each vector name in ``names``.

    Whichever group is the worst differs between seeds, so its selected point is tested (and
    compared across seeds) as ``inject:worst``; the group each seed chose is in ``worst_group``.
    """
    sweeps: dict[str, FamilySweep] = {}
    for name in names:
        label = ModelLabel("inject", group=name)
        workspace.add_vectors(str(label), "fft", [vectors[name]], uniform=True)
        points = tuple(Candidate(label, float(lam), (float(lam),), start="fft") for lam in lambdas)
        rows = MetricRows.concat(evaluator.validate(point) for point in points)
        sweeps[name] = FamilySweep(label, points, rows, ModelLabel("inject", group=WORST))
    return sweeps

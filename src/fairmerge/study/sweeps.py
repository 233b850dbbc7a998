"""The study's validation sweeps: uniform-λ merges, per-group coefficients, and injection into FFT.

Each function takes the models and vectors it needs and returns the points it evaluated; one model
stays in memory and :class:`InPlaceMerger` rewrites its weights for every point.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from fairmerge.errors import DataError
from fairmerge.labels import ModelLabel
from fairmerge.study.points import Candidate, PointEvaluator
from fairmerge.study.policy import SelectionPolicy
from fairmerge.sweep.grid import sweep
from fairmerge.sweep.pergroup import search_group_coefficients
from fairmerge.vectors import InPlaceMerger, TaskVector

WORST = "worst"


@dataclass(frozen=True)
class FamilySweep:
    """The val points of one family (a label's argmax variant) and the merger that reproduces them."""

    label: ModelLabel
    points: list[Candidate]
    merger: InPlaceMerger
    val_table: pd.DataFrame
    test_label: ModelLabel
    load_start: Callable[[], None]
    """Loads the state the family starts from (θ_base or θ_FFT) into the model."""

    def point_at(self, lam: float) -> Candidate:
        return next(p for p in self.points if p.lam is not None and np.isclose(p.lam, lam))

    def prepare_at(self, lam: float) -> Callable[[], None]:
        """A function that writes the family's point at ``lam`` into the model."""

        def prepare() -> None:
            self.load_start()
            self.merger.set_coefficients(lam)

        return prepare


def merge_sweep(
    evaluator: PointEvaluator,
    policy: SelectionPolicy,
    model: torch.nn.Module,
    base: Mapping[str, Tensor],
    vectors: Sequence[TaskVector],
    label: ModelLabel,
    lambdas: Sequence[float],
    *,
    refine_rounds: int,
    load_start: Callable[[], None],
    merge_options: Mapping[str, Any],
    base_key: str = "base",
) -> FamilySweep:
    """θ_base + λ·Σ τ_g over the λ grid (plus refinement around the selected point) on val.

    ``merge_options`` are the merge engine's ``method`` / ``density`` / ``seed``
    (``SweepSection.merge_options``). The merger keeps only Σ τ_g (``uniform``), so memory does not
    grow with the number of vectors.
    """
    merger = InPlaceMerger(model, base, list(vectors), uniform=True, **merge_options)
    points: list[Candidate] = []

    def evaluate(_model: torch.nn.Module) -> pd.DataFrame:
        lam = float(merger.coefficients[0])
        point = Candidate(label, lam, (lam,) * len(vectors), start=base_key)  # λ = 0 is θ_base itself
        points.append(point)
        frame = evaluator.validate(point, lambda: None)
        return frame.drop(columns=["model", "lambda"])

    table = sweep(
        merger,
        lambdas,
        evaluate,
        refine_rounds=refine_rounds,
        selector=lambda points_table: policy.select(points_table, label, evaluator.ledger),
        progress=False,
    )
    return FamilySweep(label, points, merger, table, label, load_start)


def pergroup_search(
    evaluator: PointEvaluator,
    policy: SelectionPolicy,
    model: torch.nn.Module,
    base: Mapping[str, Tensor],
    vectors: Mapping[str, TaskVector],
    *,
    uniform_lambda: float,
    n_trials: int,
    high: float,
    merge_options: Mapping[str, Any],
) -> tuple[Candidate, InPlaceMerger, pd.DataFrame]:
    """One λ_g per subgroup vector, searched on val with a seeded, budgeted TPE; returns the best.

    ``merge_options`` as in :func:`merge_sweep`. Lazy vectors are streamed from their checkpoints
    at every trial rather than held in memory.
    """
    names = list(vectors)
    merger = InPlaceMerger(model, base, list(vectors.values()), **merge_options)
    label = ModelLabel("merge_pergroup")

    def objective(lambdas: Sequence[float]) -> pd.DataFrame:
        point = Candidate(label, None, tuple(lambdas), start="base")
        scores = evaluator.val_point_scores(point, lambda: merger.set_coefficients(list(lambdas)))
        return evaluator.val.metrics(scores, seed=evaluator.seed)

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
    evaluator.validate(point, lambda: merger.set_coefficients(list(best)))
    return point, merger, result.trials


def worst_group(
    fft_val: pd.DataFrame,
    attributes: Sequence[str],
    vector_labels: Mapping[tuple[str, str], str],
    *,
    min_group_size: int,
    criterion: str,
) -> dict[str, str]:
    """The group with a vector that FFT serves worst on val (accuracy, or EOD contribution)."""
    candidates = []
    for attribute in attributes:
        rows = fft_val[fft_val.attribute == attribute].pivot_table(
            index="group", columns="metric", values="value"
        )
        rows = rows[(rows.get("n", 0) >= min_group_size) & (rows.index != "all")]
        for group, row in rows.iterrows():
            name = vector_labels.get((attribute, str(group)))
            if name is None:
                continue
            if criterion == "accuracy":
                badness = -float(row["accuracy"])
            else:  # distance of the group's TPR/FPR from the other groups' median: its share of EOD
                badness = max(abs(float(row[m]) - float(np.nanmedian(rows[m]))) for m in ("tpr", "fpr"))
            if not np.isnan(badness):
                candidates.append((badness, attribute, str(group), name))
    if not candidates:
        raise DataError("no subgroup with a task vector has enough validation posts to rank groups")
    _, attribute, group, name = max(candidates)
    return {"attribute": attribute, "group": group, "label": name, "criterion": criterion}


def injection_sweeps(
    evaluator: PointEvaluator,
    model: torch.nn.Module,
    fft_state: Mapping[str, Tensor],
    vectors: Mapping[str, TaskVector],
    names: Sequence[str],
    lambdas: Sequence[float],
    *,
    load_start: Callable[[], None],
) -> dict[str, FamilySweep]:
    """θ_FFT + λ·τ_g on val, for each vector name in ``names``.

    Whichever group is the worst differs between seeds, so its selected point is tested (and
    compared across seeds) as ``inject:worst``; the group each seed chose is in ``worst_group``.
    """
    sweeps: dict[str, FamilySweep] = {}
    for name in names:
        label = ModelLabel("inject", group=name)
        merger = InPlaceMerger(model, fft_state, [vectors[name]], uniform=True)
        points = []
        for lam in lambdas:
            point = Candidate(label, float(lam), (float(lam),), start="fft")
            evaluator.validate(point, partial(merger.set_coefficients, float(lam)))
            points.append(point)
        merger.restore()
        rows = evaluator.ledger.rows(label, "val")
        sweeps[name] = FamilySweep(label, points, merger, rows, ModelLabel("inject", group=WORST), load_start)
    return sweeps

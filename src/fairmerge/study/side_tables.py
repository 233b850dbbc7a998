"""The study's side tables: vector similarity, the λ–DPD bound, and the strategy comparison."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch

from fairmerge.fairness.registry import wide_column
from fairmerge.labels import Decision, ModelLabel
from fairmerge.study.config import ResolvedRecipe
from fairmerge.study.metric_rows import MetricRows
from fairmerge.study.outputs import headline_row
from fairmerge.sweep.bound import dpd_bound_table, pergroup_bound_table
from fairmerge.vectors import TaskVector
from fairmerge.vectors.task_vector import cosine_from_gram, gram_matrix


@dataclass(frozen=True)
class VectorGeometry:
    """Inner products of a recipe's subgroup vectors, from one pass over their tensors."""

    names: list[str]
    gram: torch.Tensor

    @classmethod
    def of(cls, vectors: Mapping[str, TaskVector]) -> VectorGeometry:
        return cls(list(vectors), gram_matrix(list(vectors.values())))

    def similarity(self) -> pd.DataFrame:
        """Cosine similarity between every pair of subgroup vectors."""
        return pd.DataFrame(cosine_from_gram(self.gram), index=self.names, columns=self.names)

    def norms(self) -> dict[str, float]:
        return {name: math.sqrt(float(g)) for name, g in zip(self.names, self.gram.diagonal(), strict=True)}

    def merged_norm(self, convention: str) -> float:
        """‖Σ_g τ_g‖ (``sum``) or ‖(1/G)·Σ_g τ_g‖ (``mean``): the vector a uniform merge scales by λ."""
        scale = 1.0 if convention == "sum" else 1.0 / len(self.names)
        return scale * math.sqrt(max(float(self.gram.sum()), 0.0))


def bound_table(
    metrics: pd.DataFrame,
    tau_norm: float,
    attributes: Sequence[str],
    *,
    base_grid: Sequence[float],
    min_group_size: int,
) -> pd.DataFrame:
    """Observed val DPD on the merge path next to the empirical Lipschitz bound (‖τ‖ = ``tau_norm``).

    The constants come from the base λ grid only; refinement points are held out and are the only
    λ at which the bound is checked (``held_out``). A sweep without refinement holds out every
    other grid point instead.
    """
    val = metrics[(metrics.model == "merge") & (metrics.split == "val")]
    refined = not set(val["lambda"].round(6)) <= {round(x, 6) for x in base_grid}
    # without refinement points, every other grid λ is held out (sweep.bound's default)
    estimate_on = base_grid if refined else None
    return pd.concat(
        [
            dpd_bound_table(val, tau_norm, attribute, estimate_on=estimate_on, min_group_size=min_group_size)
            for attribute in attributes
        ],
        ignore_index=True,
    )


def pergroup_bound(
    trials: pd.DataFrame, norms: Mapping[str, float], bound: pd.DataFrame, attributes: Sequence[str]
) -> pd.DataFrame:
    """Proposition 1 checked on every per-group search trial (none of them entered the constants)."""
    tables = []
    for attribute in attributes:
        path = bound[bound.attribute == attribute]
        anchor = path[path["lambda"] == 0.0]
        if (
            wide_column(attribute, "dpd") not in trials.columns
            or anchor.empty
            or pd.isna(path["lipschitz_max"].iloc[0])
        ):
            continue  # undefined gap (e.g. a single qualifying group): nothing to bound
        tables.append(
            pergroup_bound_table(
                trials,
                norms,
                attribute,
                lipschitz=float(path["lipschitz_max"].iloc[0]),
                reference_dpd=float(anchor["observed_dpd"].iloc[0]),
            )
        )
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def degenerate_reason(
    evaluated: MetricRows, label: ModelLabel, lam: float | None, base_accuracy: float
) -> str:
    """Why a validation point cannot be read as a fair model ('' when it can).

    A constant predictor has DPD = EOD = 0 by construction; a point below θ_base's accuracy has
    lost more than the edit could give back. Either is flagged, whatever its gaps.
    """
    if lam is None:
        return ""
    if evaluated.is_constant(label, lam):
        return "constant predictions on validation"
    accuracy = evaluated.accuracy(label, lam)
    if accuracy < base_accuracy:
        return f"validation accuracy {accuracy:.3f} below θ_base's {base_accuracy:.3f}"
    return ""


def degenerate_points(
    evaluated: MetricRows, labels: Sequence[ModelLabel], base_accuracy: float
) -> pd.DataFrame:
    """Every flagged validation point of the swept families, with its reason."""
    rows = []
    for label in labels:
        for lam in evaluated.rows(label, "val")["lambda"].dropna().unique():
            reason = degenerate_reason(evaluated, label, float(lam), base_accuracy)
            if reason:
                rows.append({"model": str(label), "lambda": float(lam), "reason": reason})
    return pd.DataFrame(rows, columns=["model", "lambda", "reason"])


def recipe_table(
    evaluated: MetricRows,
    recipes: Sequence[tuple[ResolvedRecipe, ModelLabel]],
    decisions: Sequence[Decision],
    attributes: list[str],
    base_accuracy: float,
) -> pd.DataFrame:
    """One row per (recipe, decision): strategy, head, λ convention, the val-selected λ, its test
    headline metrics, whether the selected point is degenerate, and whether every λ > 0 is."""
    rows: list[dict[str, Any]] = []
    for recipe, label in recipes:
        for decision in decisions:
            variant = label.with_decision(decision)
            row = headline_row(evaluated.frame, str(variant), attributes)
            swept = [float(x) for x in evaluated.rows(variant, "val")["lambda"].dropna().unique() if x > 0]
            flags = [degenerate_reason(evaluated, variant, lam, base_accuracy) for lam in swept]
            rows.append(
                {
                    "strategy": recipe.strategy,
                    "head": recipe.head,
                    "convention": recipe.convention,
                    "decision": decision,
                    **row,
                    "degenerate": degenerate_reason(evaluated, variant, row["lambda"], base_accuracy),
                    "degenerate_everywhere": bool(flags) and all(flags),
                }
            )
    return pd.DataFrame(rows)

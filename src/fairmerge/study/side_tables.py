"""The study's side tables: vector similarity, the λ–DPD bound, and the strategy comparison."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from fairmerge.labels import ModelLabel
from fairmerge.study.outputs import headline_row
from fairmerge.sweep.bound import dpd_bound_table, pergroup_bound_table
from fairmerge.vectors import TaskVector


def similarity_table(vectors: Mapping[str, TaskVector]) -> pd.DataFrame:
    """Cosine similarity between every pair of subgroup vectors."""
    labels = list(vectors)
    matrix = [[vectors[a].cosine_similarity(vectors[b]) for b in labels] for a in labels]
    return pd.DataFrame(matrix, index=labels, columns=labels)


def bound_table(
    metrics: pd.DataFrame,
    vectors: Sequence[TaskVector],
    attributes: Sequence[str],
    *,
    base_grid: Sequence[float],
    min_group_size: int,
) -> pd.DataFrame:
    """Observed val DPD on the merge path next to the empirical Lipschitz bound.

    The constants come from the base λ grid only; refinement points are held out and are the only
    λ at which the bound is checked (``held_out``).
    """
    total = sum(vectors[1:], vectors[0])
    tau_norm = float(total.norm())
    val = metrics[(metrics.model == "merge") & (metrics.split == "val")]
    return pd.concat(
        [
            dpd_bound_table(val, tau_norm, attribute, estimate_on=base_grid, min_group_size=min_group_size)
            for attribute in attributes
        ],
        ignore_index=True,
    )


def pergroup_bound(
    trials: pd.DataFrame, vectors: Mapping[str, TaskVector], bound: pd.DataFrame, attributes: Sequence[str]
) -> pd.DataFrame:
    """Proposition 1 checked on every per-group search trial (none of them entered the constants)."""
    norms = {name: float(vector.norm()) for name, vector in vectors.items()}
    tables = []
    for attribute in attributes:
        path = bound[bound.attribute == attribute]
        anchor = path[path["lambda"] == 0.0]
        if f"{attribute}_dpd" not in trials.columns or anchor.empty or pd.isna(path["lipschitz_max"].iloc[0]):
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


def strategy_table(
    metrics: pd.DataFrame,
    families: Sequence[tuple[str, ModelLabel]],
    decisions: Sequence[str],
    attributes: list[str],
) -> pd.DataFrame:
    """One row per (strategy, decision): the val-selected λ and its test headline metrics."""
    rows: list[dict[str, Any]] = []
    for strategy, label in families:
        for decision in decisions:
            row = headline_row(metrics, str(label.with_decision(decision)), attributes)  # type: ignore[arg-type]
            rows.append({"strategy": strategy, "decision": decision, **row})
    return pd.DataFrame(rows)

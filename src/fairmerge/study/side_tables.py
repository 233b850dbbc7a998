"""The study's side tables: vector similarity, the λ–DPD bound, and the strategy comparison."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from fairmerge.labels import ModelLabel
from fairmerge.study.outputs import headline_row
from fairmerge.sweep.bound import dpd_bound_table
from fairmerge.vectors import TaskVector


def similarity_table(vectors: Mapping[str, TaskVector]) -> pd.DataFrame:
    """Cosine similarity between every pair of subgroup vectors."""
    labels = list(vectors)
    matrix = [[vectors[a].cosine_similarity(vectors[b]) for b in labels] for a in labels]
    return pd.DataFrame(matrix, index=labels, columns=labels)


def bound_table(
    metrics: pd.DataFrame, vectors: Sequence[TaskVector], attributes: Sequence[str]
) -> pd.DataFrame:
    """Observed val DPD on the merge path next to the empirical Lipschitz bound."""
    total = sum(vectors[1:], vectors[0])
    tau_norm = float(total.norm())
    val = metrics[(metrics.model == "merge") & (metrics.split == "val")]
    return pd.concat(
        [dpd_bound_table(val, tau_norm, attribute) for attribute in attributes], ignore_index=True
    )


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

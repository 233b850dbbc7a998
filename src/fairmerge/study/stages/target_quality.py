"""Stage: precision / recall of the weak training targets behind each subgroup vector, where gold exists.

A dataset whose train split carries weak group labels (``TextSplit.weak_groups``: HateXplain's
train targets come from a third-party file, its val/test posts carry gold ones) can score its weak
assignment against gold; the dataset registry names the measure that does
(:func:`fairmerge.data.registry.weak_target_quality`). Datasets with gold training targets get None.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, cast

from fairmerge.data.registry import weak_target_quality
from fairmerge.study.stages.base import SeedContext, SeedState, Stage, need


def vector_target_quality(
    context: SeedContext, vectors: dict[tuple[str, str], str]
) -> list[dict[str, Any]] | None:
    """One row per subgroup vector whose group has a gold-measured weak-target quality."""
    if not context.dataset["train"].weak_groups:
        return None
    quality = weak_target_quality(context.dataset.name, context.data_dir)
    if quality is None:
        return None
    rows = cast(list[dict[str, Any]], quality.to_dict(orient="records"))
    return [
        {**row, "vector": vectors[key], "flag": "low precision (< 0.5)" if row["low_precision"] else ""}
        for row in rows
        if (key := (row["attribute"], row["group"])) in vectors
    ]


def run(context: SeedContext, state: SeedState) -> SeedState:
    trained = need(state.trained, "the trained models")
    return replace(state, target_quality=vector_target_quality(context, trained.vector_groups))


STAGE = Stage("target quality", "weak training targets against gold (datasets with weak targets)", run)

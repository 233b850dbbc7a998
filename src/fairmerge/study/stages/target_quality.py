"""Stage: precision / recall of the weak training targets behind each subgroup vector, where gold exists.

A dataset whose train split carries weak group labels (``TextSplit.weak_groups``: HateXplain's
train targets come from a third-party file, its val/test posts carry gold ones) can score its weak
assignment against gold; :data:`WEAK_TARGET_QUALITY` names the function that does, per dataset.
Datasets with gold training targets get None.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, cast

import pandas as pd

from fairmerge.fairness import hatexplain_target_quality
from fairmerge.study.stages.base import SeedContext, SeedState, Stage, need

WEAK_TARGET_QUALITY: dict[str, Callable[..., pd.DataFrame]] = {"hatexplain": hatexplain_target_quality}
"""Dataset name → its weak-target quality measure (``data_dir`` → one row per attribute and group).
It belongs with the dataset's loader in ``fairmerge.data``'s registry; it is here until that has a hook."""


def vector_target_quality(
    context: SeedContext, vectors: dict[tuple[str, str], str]
) -> list[dict[str, Any]] | None:
    """One row per subgroup vector whose group has a gold-measured weak-target quality."""
    measure = WEAK_TARGET_QUALITY.get(context.dataset.name)
    if measure is None or not context.dataset["train"].weak_groups:
        return None
    rows = cast(list[dict[str, Any]], measure(context.data_dir).to_dict(orient="records"))
    return [
        {**row, "vector": vectors[key], "flag": "low precision (< 0.5)" if row["low_precision"] else ""}
        for row in rows
        if (key := (row["attribute"], row["group"])) in vectors
    ]


def run(context: SeedContext, state: SeedState) -> SeedState:
    trained = need(state.trained, "the trained models")
    return replace(state, target_quality=vector_target_quality(context, trained.vector_groups))


STAGE = Stage("target quality", "weak training targets against gold (datasets with weak targets)", run)

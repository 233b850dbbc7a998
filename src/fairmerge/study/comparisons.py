"""Every method against FFT on test, over seeds: Δ accuracy, Δ DPD and Δ EOD with intervals.

Each comparison resamples seeds and test posts (:func:`fairmerge.fairness.compare_to_reference`),
the declared primary comparison keeps its own p-value and all others are Holm-adjusted. A model
missing from some seeds is compared over the seeds that have it, and says how many.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from fairmerge.fairness import compare_to_reference, comparison_table, minimum_detectable_difference
from fairmerge.study.config import StudyConfig
from fairmerge.study.seed_run import SeedOutcome

REFERENCE = "fft"
_NOT_COMPARED = ("fft", "base", "base@calibrated")


def compared_models(outcomes: Sequence[SeedOutcome]) -> list[str]:
    """Every test-evaluated model but FFT and θ_base, in first-seen order over seeds."""
    seen = dict.fromkeys(m for o in outcomes for m in o.test_predictions)
    return [m for m in seen if m not in _NOT_COMPARED]


def compare_with_fft(outcomes: Sequence[SeedOutcome], config: StudyConfig) -> pd.DataFrame:
    """The comparison table (``fairmerge.fairness.COMPARISON_COLUMNS``) of every model vs FFT."""
    rows: list[dict[str, Any]] = []
    evaluation = config.evaluation
    for model in compared_models(outcomes):
        having = [o for o in outcomes if model in o.test_predictions]
        first = having[0]
        for metric in ("accuracy", "dpd", "eod"):
            for attribute in ["all"] if metric == "accuracy" else config.attributes:
                result = compare_to_reference(
                    first.test_labels,
                    None if metric == "accuracy" else first.test_memberships[attribute],
                    [o.test_predictions[model] for o in having],
                    [o.test_predictions[REFERENCE] for o in having],
                    metric=metric,  # type: ignore[arg-type]
                    n_resamples=evaluation.n_resamples or 1000,
                    seed=config.seed,
                    min_group_size=evaluation.min_group_size,
                )
                rows.append({"model": model, "attribute": attribute, "metric": metric, **result})
    primary = config.primary.model_dump()
    declared = any(
        r["model"] == primary["model"]
        and r["attribute"] == primary["attribute"]
        and r["metric"] == primary["metric"]
        for r in rows
    )
    return comparison_table(rows, primary=primary if declared else None)


def detectable_differences(outcome: SeedOutcome, config: StudyConfig) -> dict[str, dict[str, float]]:
    """Per attribute, the smallest ΔDPD / ΔEOD the test split can detect (80 % power, α = 0.05)."""
    return minimum_detectable_difference(
        outcome.test_labels, outcome.test_memberships, min_group_size=config.evaluation.min_group_size
    )

"""Every method against FFT on test, over seeds: Δ accuracy, Δ DPD and Δ EOD with intervals.

Each comparison resamples seeds and test posts (:func:`fairmerge.fairness.compare_to_reference`),
the declared primary comparison keeps its own p-value and all others are Holm-adjusted. A model
missing from some seeds is compared over the seeds that have it, and says how many.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import pandas as pd

from fairmerge.fairness import minimum_detectable_difference, qualifying_groups
from fairmerge.fairness.comparisons import compare_all
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
    first = outcomes[0]
    methods = {
        model: {o.seed: o.test_predictions[model] for o in outcomes if model in o.test_predictions}
        for model in compared_models(outcomes)
    }
    return compare_all(
        first.test_labels,
        first.test_memberships,
        methods,
        {o.seed: o.test_predictions[REFERENCE] for o in outcomes},
        primary=config.primary.model_dump(),
        n_resamples=config.evaluation.n_resamples or 1000,
        seed=config.derived_seeds(first.seed).comparisons,
        min_group_size=config.evaluation.min_group_size,
    )


def unedited_selections(outcomes: Sequence[SeedOutcome]) -> dict[str, tuple[str, list[int]]]:
    """Models whose selected point edits nothing on some seed: the model it is, and those seeds."""
    found: dict[str, tuple[str, list[int]]] = {}
    for outcome in outcomes:
        for label, selected in outcome.selected.items():
            if (what := selected.unedited) is not None:
                found.setdefault(label, (what, []))[1].append(outcome.seed)
    return found


def detectable_differences(outcome: SeedOutcome, config: StudyConfig) -> dict[str, dict[str, float]]:
    """Per attribute, the smallest ΔDPD / ΔEOD the test split can detect (80 % power, α = 0.05)."""
    return minimum_detectable_difference(
        outcome.test_labels, outcome.test_memberships, min_group_size=config.evaluation.min_group_size
    )


def gap_groups(outcome: SeedOutcome, config: StudyConfig) -> list[dict[str, Any]]:
    """Which test groups entered each gap (DPD, TPR gap, FPR gap) and why the others did not."""
    table = qualifying_groups(
        outcome.test_labels, outcome.test_memberships, min_group_size=config.evaluation.min_group_size
    )
    return cast(list[dict[str, Any]], table.to_dict(orient="records"))

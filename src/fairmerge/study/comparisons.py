"""Every method against FFT on test, over seeds: Δ accuracy, Δ DPD and Δ EOD with intervals.

Each comparison is a fiducial interval over seeds with a paired post bootstrap's variance, and its
dual p-value (:func:`fairmerge.fairness.compare_to_reference`); the declared primary keeps its own
p-value, the secondaries are Holm-adjusted among themselves and every other comparison is
exploratory. A model missing from some seeds is compared over the seeds that have it, and says how
many.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np
import pandas as pd

from fairmerge.fairness import qualifying_groups
from fairmerge.fairness.comparisons import compare_all
from fairmerge.fairness.power import minimum_detectable_difference, simulated_power
from fairmerge.study.config import StudyConfig
from fairmerge.study.seed_run import SeedOutcome

REFERENCE = "fft"
OUT_OF_REACH = "out of reach"  # an MDE no simulated effect reaches (80 % power)
_NOT_COMPARED = ("fft", "base", "base@calibrated")


def compared_models(outcomes: Sequence[SeedOutcome]) -> list[str]:
    """Every test-evaluated model but FFT and θ_base, in first-seen order over seeds."""
    seen = dict.fromkeys(m for o in outcomes for m in o.test_predictions)
    return [m for m in seen if m not in _NOT_COMPARED]


def compare_with_fft(outcomes: Sequence[SeedOutcome], config: StudyConfig) -> pd.DataFrame:
    """The comparison table (``fairmerge.fairness.COMPARISON_COLUMNS``) of every model vs FFT.

    The declared family is ``config.primary`` plus ``config.secondary``; every other row is
    exploratory.
    """
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
        secondary=[comparison.model_dump() for comparison in config.secondary],
        n_resamples=max(config.evaluation.n_resamples or 1000, 200),
        seed=config.derived_seeds(first.seed).comparisons,
        min_group_size=config.evaluation.min_group_size,
        min_positives=config.evaluation.min_positives,
        min_negatives=config.evaluation.min_negatives,
    )


def unedited_selections(outcomes: Sequence[SeedOutcome]) -> dict[str, tuple[str, list[int]]]:
    """Models whose selected point edits nothing on some seed: the model it is, and those seeds."""
    found: dict[str, tuple[str, list[int]]] = {}
    for outcome in outcomes:
        for label, selected in outcome.selected.items():
            if (what := selected.unedited) is not None:
                found.setdefault(label, (what, []))[1].append(outcome.seed)
    return found


def detectable_differences(
    outcome: SeedOutcome, config: StudyConfig, *, n_seeds: int, attributes: Sequence[str] | None = None
) -> dict[str, dict[str, float | str]]:
    """Per attribute, the smallest |ΔDPD| / |ΔEOD| the comparison test detects (80 % power, α = 0.05).

    Simulated for the test actually used, at this test split's group sizes and class counts and
    ``n_seeds`` seeds; ``inf`` when out of reach, NaN when undefined
    (:func:`fairmerge.fairness.power.minimum_detectable_difference`). ``attributes`` limits the
    (simulated, so not free: seconds per attribute and gap) search; default every attribute.
    """
    memberships = outcome.test_memberships
    if attributes is not None:
        memberships = {a: memberships[a] for a in attributes}
    found = minimum_detectable_difference(
        outcome.test_labels,
        memberships,
        n_seeds=n_seeds,
        simulations=config.power.simulations,
        seed=config.derived_seeds(outcome.seed).comparisons,
        min_group_size=config.evaluation.min_group_size,
        min_positives=config.evaluation.min_positives,
        min_negatives=config.evaluation.min_negatives,
    )
    return {
        attribute: {gap: OUT_OF_REACH if value == float("inf") else value for gap, value in gaps.items()}
        for attribute, gaps in found.items()
    }


def primary_power(outcome: SeedOutcome, config: StudyConfig, *, n_seeds: int) -> dict[str, float]:
    """Simulated power of the declared primary comparison to detect ``config.power.effect``.

    At this test split's group sizes and class counts, with ``n_seeds`` seeds, for the test the
    study actually runs (:func:`fairmerge.fairness.power.simulated_power`).
    """
    return primary_power_on(
        outcome.test_labels,
        outcome.test_memberships,
        config,
        n_seeds=n_seeds,
        seed=config.derived_seeds(outcome.seed).comparisons,
    )


def primary_power_on(
    labels: np.ndarray,
    memberships: Mapping[str, pd.DataFrame],
    config: StudyConfig,
    *,
    n_seeds: int,
    seed: int,
) -> dict[str, float]:
    """:func:`primary_power` from a test split's labels and memberships (the dry run has no outcome)."""
    primary = config.primary
    membership = None if primary.attribute == "all" else memberships[primary.attribute]
    return simulated_power(
        labels,
        membership,
        metric=primary.metric,
        n_seeds=n_seeds,
        effect=config.power.effect,
        simulations=config.power.simulations,
        seed=seed,
        min_group_size=config.evaluation.min_group_size,
        min_positives=config.evaluation.min_positives,
        min_negatives=config.evaluation.min_negatives,
    )


def gap_groups(outcome: SeedOutcome, config: StudyConfig) -> list[dict[str, Any]]:
    """Which test groups entered each gap (DPD, TPR gap, FPR gap) and why the others did not."""
    table = qualifying_groups(
        outcome.test_labels,
        outcome.test_memberships,
        min_group_size=config.evaluation.min_group_size,
        min_positives=config.evaluation.min_positives,
        min_negatives=config.evaluation.min_negatives,
    )
    return cast(list[dict[str, Any]], table.to_dict(orient="records"))

"""Every method against FFT on test, over seeds: Δ accuracy, Δ DPD and Δ EOD with intervals.

Each comparison is a t-test over seeds with a paired post bootstrap
(:func:`fairmerge.fairness.compare_to_reference`); the declared primary keeps its own p-value, the
secondaries are Holm-adjusted among themselves and every other comparison is exploratory. A model
missing from some seeds is compared over the seeds that have it, and says how many.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, cast

import pandas as pd

from fairmerge.fairness import hatexplain_target_quality, qualifying_groups
from fairmerge.fairness.comparisons import compare_all, default_secondaries
from fairmerge.fairness.metrics import MIN_NEGATIVES, MIN_POSITIVES
from fairmerge.fairness.power import minimum_detectable_difference
from fairmerge.study.config import StudyConfig
from fairmerge.study.seed_run import SeedOutcome

REFERENCE = "fft"
_NOT_COMPARED = ("fft", "base", "base@calibrated")


def compared_models(outcomes: Sequence[SeedOutcome]) -> list[str]:
    """Every test-evaluated model but FFT and θ_base, in first-seen order over seeds."""
    seen = dict.fromkeys(m for o in outcomes for m in o.test_predictions)
    return [m for m in seen if m not in _NOT_COMPARED]


def compare_with_fft(
    outcomes: Sequence[SeedOutcome],
    config: StudyConfig,
    *,
    secondary: Sequence[Mapping[str, str]] | None = None,
    min_positives: int = MIN_POSITIVES,
    min_negatives: int = MIN_NEGATIVES,
) -> pd.DataFrame:
    """The comparison table (``fairmerge.fairness.COMPARISON_COLUMNS``) of every model vs FFT.

    The family is ``config.primary`` plus ``secondary`` (default: the primary model's accuracy, DPD
    and EOD on the primary's attribute, :func:`~fairmerge.fairness.comparisons.default_secondaries`);
    every other row is exploratory.
    """
    first = outcomes[0]
    methods = {
        model: {o.seed: o.test_predictions[model] for o in outcomes if model in o.test_predictions}
        for model in compared_models(outcomes)
    }
    primary = config.primary.model_dump()
    return compare_all(
        first.test_labels,
        first.test_memberships,
        methods,
        {o.seed: o.test_predictions[REFERENCE] for o in outcomes},
        primary=primary,
        secondary=default_secondaries(primary, config.attributes) if secondary is None else secondary,
        n_resamples=max(config.evaluation.n_resamples or 1000, 200),
        seed=config.seed,
        min_group_size=config.evaluation.min_group_size,
        min_positives=min_positives,
        min_negatives=min_negatives,
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
    outcome: SeedOutcome,
    config: StudyConfig,
    *,
    n_seeds: int | None = None,
    simulations: int = 200,
    attributes: Sequence[str] | None = None,
    min_positives: int = MIN_POSITIVES,
    min_negatives: int = MIN_NEGATIVES,
) -> dict[str, dict[str, float]]:
    """Per attribute, the smallest |ΔDPD| / |ΔEOD| the comparison test detects (80 % power, α = 0.05).

    Simulated for the test actually used, at this test split's group sizes and class counts and
    ``n_seeds`` seeds (default: the study's); ``inf`` when out of reach, NaN when undefined
    (:func:`fairmerge.fairness.power.minimum_detectable_difference`). ``attributes`` limits the
    (simulated, so not free: seconds per attribute and gap) search; default every attribute.
    """
    memberships = outcome.test_memberships
    if attributes is not None:
        memberships = {a: memberships[a] for a in attributes}
    return minimum_detectable_difference(
        outcome.test_labels,
        memberships,
        n_seeds=n_seeds if n_seeds is not None else len(config.seeds or [config.seed]),
        simulations=simulations,
        seed=config.seed,
        min_group_size=config.evaluation.min_group_size,
        min_positives=min_positives,
        min_negatives=min_negatives,
    )


def vector_target_quality(
    dataset_name: str, data_dir: str | os.PathLike[str] | None, outcome: SeedOutcome
) -> list[dict[str, Any]] | None:
    """Precision / recall of the weak training targets behind each subgroup vector, where gold exists.

    HateXplain's train targets come from a third-party file; its val/test posts carry gold targets,
    so the weak assignment can be scored there. Other datasets' training targets are gold: None.
    """
    if dataset_name != "hatexplain":
        return None
    quality = hatexplain_target_quality(data_dir)
    names = {pair: name for name, pair in outcome.vectors.items()}
    return [
        {**row, "vector": names[key], "flag": "low precision (< 0.5)" if row["low_precision"] else ""}
        for row in cast(list[dict[str, Any]], quality.to_dict(orient="records"))
        if (key := (row["attribute"], row["group"])) in names
    ]


def gap_groups(outcome: SeedOutcome, config: StudyConfig) -> list[dict[str, Any]]:
    """Which test groups entered each gap (DPD, TPR gap, FPR gap) and why the others did not."""
    table = qualifying_groups(
        outcome.test_labels, outcome.test_memberships, min_group_size=config.evaluation.min_group_size
    )
    return cast(list[dict[str, Any]], table.to_dict(orient="records"))

"""One seed of the study: the stages of :data:`fairmerge.study.stages.STAGES`, run in order.

The order mirrors the paper (FFT and LoRA baselines, subgroup task vectors, the uniform-λ merge
θ_base + λ·Σ τ_g, injection θ_FFT + λ·τ_g) and adds what it left open: per-group coefficients,
validation-only selection under explicit rules, calibrated decision thresholds, subgroup
training-set strategies, a post-processing baseline and the empirical λ–DPD bound.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from fairmerge.search.outcome import SeedSearch
from fairmerge.study.stages import STAGES, SeedContext, SeedState, Stage
from fairmerge.study.stages.base import metric_rows, need
from fairmerge.study.testing import SelectedModel
from fairmerge.study.timing import StageTimer


@dataclass
class SeedOutcome:
    """Everything one seed produced, ready to be written out."""

    seed: int
    metrics: pd.DataFrame
    selected: dict[str, SelectedModel]
    worst_group: dict[str, str]
    similarity: pd.DataFrame
    bound: pd.DataFrame
    pergroup_bound: pd.DataFrame
    strategies: pd.DataFrame
    degenerate: pd.DataFrame
    pergroup_trials: pd.DataFrame
    sensitivity: pd.DataFrame
    test_predictions: dict[str, np.ndarray]
    test_labels: np.ndarray
    test_memberships: dict[str, pd.DataFrame]
    timings: StageTimer
    checkpoints: dict[str, str] = field(default_factory=dict)
    histories: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    """Each fine-tune's validation curve (for plots/training_curves.png)."""
    vectors: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Subgroup vector name → (attribute, group)."""
    search: SeedSearch | None = None
    """The coefficient searches (a config with a ``search:`` section only)."""
    target_quality: list[dict[str, Any]] | None = None
    """Weak training targets against gold, per subgroup vector (None where targets are gold)."""
    precision: dict[str, Any] | None = None
    """The scoring-precision check and choice (:mod:`fairmerge.study.stages.precision`)."""


def run_pipeline(context: SeedContext, stages: Sequence[Stage] = STAGES) -> SeedOutcome:
    """The whole study for one seed: every stage in order, each timed under its name."""
    timer = StageTimer(context.console)
    state = SeedState()
    for stage in stages:
        with timer(stage.name):
            state = stage.run(context, state)
    return _outcome(context, state, timer)


def _outcome(context: SeedContext, state: SeedState, timer: StageTimer) -> SeedOutcome:
    trained, lab = need(state.trained, "the trained models"), need(state.lab, "the workspace")
    tables = need(state.tables, "the side tables")
    test, attributes = lab.evaluator.test, context.config.attributes
    return SeedOutcome(
        seed=context.seed,
        metrics=metric_rows(state).frame,
        selected=dict(state.tested.selected),
        worst_group=dict(need(state.worst, "the worst group")),
        similarity=tables.similarity,
        bound=tables.bound,
        pergroup_bound=tables.pergroup_bound,
        strategies=tables.strategies,
        degenerate=tables.degenerate,
        pergroup_trials=need(state.pergroup, "the per-group search").trials,
        sensitivity=state.sensitivity,
        test_predictions=dict(state.tested.predictions),
        test_labels=test.split.labels,
        test_memberships=test.split.memberships(attributes),
        timings=timer,
        checkpoints={"base": str(trained.base), "fft": str(trained.fft), "lora": str(trained.lora)},
        histories=trained.histories(),
        vectors={name: pair for pair, name in trained.vector_groups.items()},
        target_quality=state.target_quality,
        search=state.search,
        precision=None if state.precision is None else state.precision.to_dict(),
    )

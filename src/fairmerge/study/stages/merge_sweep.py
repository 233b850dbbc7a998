"""Stage: the uniform merge θ_base + λ·Σ τ_g over the λ grid (plus refinement) on validation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from fairmerge.labels import ModelLabel
from fairmerge.study.policy import SelectionPolicy
from fairmerge.study.stages.base import SeedContext, SeedState, Stage, need
from fairmerge.study.stages.workspace import Lab, for_model, merged_vectors, state_name
from fairmerge.study.sweeps import FamilySweep, merge_sweep
from fairmerge.study.training_stage import TrainedModels

MAIN = ""
"""The main recipe's name in ``TrainedModels.recipes``."""


def family_sweep(
    lab: Lab,
    policy: SelectionPolicy,
    trained: TrainedModels,
    recipe: str,
    label: ModelLabel,
    lambdas: Sequence[float],
    refine: int,
    merge_options: Mapping[str, Any],
) -> FamilySweep:
    """One recipe's uniform merge swept on validation from the θ_base it starts from, merged by
    ``merge_options`` (:func:`merge_options`)."""
    models = trained.recipes[recipe]
    start = state_name(models, trained.main)
    workspace = lab.workspace
    vectors = merged_vectors(lab.vectors[recipe], models.recipe.convention)
    return merge_sweep(
        lab.evaluator,
        policy,
        workspace,
        [for_model(v, workspace.keys) for v in vectors],
        label,
        lambdas,
        refine_rounds=refine,
        merge_options=merge_options,
        start=start,
    )


def merge_options(context: SeedContext) -> dict[str, Any]:
    """The merge engine's options for this seed: ``sweep.method``, ``sweep.density``, the merge seed."""
    config = context.config
    return config.sweep.merge_options(config.derived_seeds(context.seed))


def run(context: SeedContext, state: SeedState) -> SeedState:
    sweep = context.config.sweep
    merged = family_sweep(
        need(state.lab, "the workspace"),
        need(state.policy, "the selection policy"),
        need(state.trained, "the trained models"),
        MAIN,
        ModelLabel("merge"),
        sweep.lambdas,
        sweep.refine_rounds,
        merge_options(context),
    )
    return replace(state, merged=merged)


STAGE = Stage("sweep: merge (val)", "sweep: merge θ_base + λ·Σ τ_g (validation)", run)

"""Stage: the uniform merge θ_base + λ·Σ τ_g over the λ grid (plus refinement) on validation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

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
) -> FamilySweep:
    """One recipe's uniform merge swept on validation from the θ_base it starts from."""
    models = trained.recipes[recipe]
    start = state_name(models, trained.main)
    workspace = lab.workspace
    workspace.load(start)
    vectors = merged_vectors(lab.vectors[recipe], models.recipe.convention)
    return merge_sweep(
        lab.evaluator,
        policy,
        workspace.model,
        workspace.states[start],
        [for_model(v, workspace.keys) for v in vectors],
        label,
        lambdas,
        refine_rounds=refine,
        load_start=workspace.loader(start),
        base_key=start,
    )


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
    )
    return replace(state, merged=merged)


STAGE = Stage("sweep: merge (val)", "sweep: merge θ_base + λ·Σ τ_g (validation)", run)

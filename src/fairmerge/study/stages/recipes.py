"""Stage: the compared subgroup training-set recipes (strategy × head × λ convention) on validation."""

from __future__ import annotations

from dataclasses import replace

from fairmerge.labels import ModelLabel
from fairmerge.study.stages.base import SeedContext, SeedState, Stage, need
from fairmerge.study.stages.merge_sweep import family_sweep, merge_options


def run(context: SeedContext, state: SeedState) -> SeedState:
    lab, policy = need(state.lab, "the workspace"), need(state.policy, "the selection policy")
    trained = need(state.trained, "the trained models")
    lambdas = context.config.sweep.compare_lambdas
    options = merge_options(context)
    compared = {
        recipe.name: family_sweep(
            lab, policy, trained, recipe.name, ModelLabel("merge", strategy=recipe.name), lambdas, 0, options
        )
        for recipe in context.config.compared_recipes()
    }
    return replace(state, compared=compared)


STAGE = Stage("sweep: strategies (val)", "sweep: compared subgroup strategies (validation)", run)

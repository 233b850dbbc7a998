"""Stage: vector similarity, the λ–DPD bound (uniform and per-group), the recipe comparison and
the degenerate validation points."""

from __future__ import annotations

from dataclasses import replace

from fairmerge.labels import ModelLabel
from fairmerge.study.side_tables import (
    VectorGeometry,
    bound_table,
    degenerate_points,
    pergroup_bound,
    recipe_table,
)
from fairmerge.study.stages.base import SeedContext, SeedState, Stage, metric_rows, need
from fairmerge.study.stages.merge_sweep import MAIN
from fairmerge.study.stages.results import SideTables


def run(context: SeedContext, state: SeedState) -> SeedState:
    lab, trained = need(state.lab, "the workspace"), need(state.trained, "the trained models")
    trials = need(state.pergroup, "the per-group search").trials
    config, evaluated = context.config, metric_rows(state)
    geometry = VectorGeometry.of(lab.vectors[MAIN])
    bound = bound_table(
        evaluated.frame,
        geometry.merged_norm(trained.main.recipe.convention),
        config.attributes,
        base_grid=config.sweep.lambdas,
        min_group_size=config.evaluation.min_group_size,
    )
    base_accuracy = evaluated.accuracy(ModelLabel("base"))
    recipe_labels = [(trained.main.recipe, ModelLabel("merge"))] + [
        (r, ModelLabel("merge", strategy=r.name)) for r in config.compared_recipes()
    ]
    decisions = lab.evaluator.decisions
    tables = SideTables(
        similarity=geometry.similarity(),
        bound=bound,
        pergroup_bound=pergroup_bound(trials, geometry.norms(), bound, config.attributes),
        strategies=recipe_table(evaluated, recipe_labels, decisions, config.attributes, base_accuracy),
        degenerate=degenerate_points(
            evaluated,
            [label.with_decision(d) for _, label in recipe_labels for d in decisions],
            base_accuracy,
        ),
    )
    return replace(state, tables=tables)


STAGE = Stage("side tables", "side tables: vector similarity, λ–DPD bound, recipes, degenerate points", run)

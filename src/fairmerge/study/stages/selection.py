"""Stage: select each family's point on validation, then evaluate every selected model on test once."""

from __future__ import annotations

from dataclasses import replace

from fairmerge.study.stages.base import SeedContext, SeedState, Stage, need
from fairmerge.study.stages.baselines import baseline_models
from fairmerge.study.sweeps import FamilySweep
from fairmerge.study.testing import baselines_on_test, families_on_test, pergroup_on_test


def selected_families(state: SeedState) -> list[FamilySweep]:
    """The swept families whose selected point is tested: merge, the worst group's injection, the
    compared recipes (in this order)."""
    worst = need(state.worst, "the worst group")
    injected = need(state.injected, "the injection sweeps")
    return [
        need(state.merged, "the merge sweep"),
        injected[worst["label"]],
        *need(state.compared, "").values(),
    ]


def run(context: SeedContext, state: SeedState) -> SeedState:
    lab, policy = need(state.lab, "the workspace"), need(state.policy, "the selection policy")
    pergroup = need(state.pergroup, "the per-group search")
    predictions = baselines_on_test(lab.evaluator, baseline_models(context.config))
    selected, family_predictions = families_on_test(lab.evaluator, policy, selected_families(state))
    predictions.update(family_predictions)
    pergroup_selected, pergroup_predictions = pergroup_on_test(
        lab.evaluator,
        pergroup.point,
        rule=context.config.selection.rule,
        n_trials=context.config.sweep.pergroup_trials,
    )
    selected.update(pergroup_selected)
    predictions.update(pergroup_predictions)
    return replace(state, selected=selected, predictions=predictions)


STAGE = Stage("select + test", "select on validation, then test each selected model once", run)

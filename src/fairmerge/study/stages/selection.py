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
    tested = (
        baselines_on_test(lab.evaluator, baseline_models(context.config))
        + families_on_test(lab.evaluator, policy, selected_families(state))
        + pergroup_on_test(
            lab.evaluator,
            pergroup.point,
            rule=context.config.selection.rule,
            n_trials=context.config.sweep.pergroup_trials,
        )
    )
    return replace(state, tested=state.tested + tested)


STAGE = Stage("select + test", "select on validation, then test each selected model once", run)

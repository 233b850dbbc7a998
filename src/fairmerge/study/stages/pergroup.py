"""Stage: one coefficient λ_g per subgroup vector, searched on validation (seeded TPE)."""

from __future__ import annotations

from dataclasses import replace

from fairmerge.labels import ModelLabel
from fairmerge.study.stages.base import SeedContext, SeedState, Stage, need
from fairmerge.study.stages.merge_sweep import MAIN, merge_options
from fairmerge.study.stages.results import PergroupResult
from fairmerge.study.sweeps import pergroup_search


def run(context: SeedContext, state: SeedState) -> SeedState:
    lab, policy = need(state.lab, "the workspace"), need(state.policy, "the selection policy")
    merged = need(state.merged, "the merge sweep")
    sweep = context.config.sweep
    point, rows, trials = pergroup_search(
        lab.evaluator,
        policy,
        lab.workspace,
        lab.for_merger(MAIN),
        uniform_lambda=policy.select_family(ModelLabel("merge"), merged.rows).lam,
        n_trials=sweep.pergroup_trials,
        high=max(sweep.lambdas),
        merge_options=merge_options(context),
    )
    return replace(state, pergroup=PergroupResult(point, rows, trials))


STAGE = Stage(
    "sweep: per-group coefficients (val)", "sweep: per-group coefficients λ_g (validation, TPE)", run
)

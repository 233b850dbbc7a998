"""Stage: each family's test headline under every registered selection rule (sensitivity analysis)."""

from __future__ import annotations

from dataclasses import replace

from fairmerge.study.stages.base import SeedContext, SeedState, Stage, need
from fairmerge.study.stages.selection import selected_families
from fairmerge.study.testing import selection_sensitivity


def run(context: SeedContext, state: SeedState) -> SeedState:
    if not context.config.selection.sensitivity:
        return state
    lab, policy = need(state.lab, "the workspace"), need(state.policy, "the selection policy")
    families = selected_families(state)[:2]  # merge and the worst group's injection
    table = selection_sensitivity(lab.evaluator, policy, families, context.config.attributes)
    return replace(state, sensitivity=table)


STAGE = Stage(
    "selection sensitivity (test)", "selection sensitivity: every rule's pick on test (when enabled)", run
)

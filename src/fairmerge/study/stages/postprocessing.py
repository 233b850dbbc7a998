"""Stage: fairlearn's ThresholdOptimizer on FFT's scores, the post-processing baseline (test)."""

from __future__ import annotations

from dataclasses import replace

from fairmerge.study.stages.base import SeedContext, SeedState, Stage, need
from fairmerge.study.testing import threshold_optimizer_on_test


def run(context: SeedContext, state: SeedState) -> SeedState:
    lab = need(state.lab, "the workspace")
    config = context.config
    tested = threshold_optimizer_on_test(
        lab.evaluator,
        config.evaluation.threshold_optimizer_attribute,
        config.attributes,
    )
    return replace(state, tested=state.tested + tested)


STAGE = Stage(
    "post-processing (test)", "post-processing baseline: ThresholdOptimizer on FFT's scores (test)", run
)

"""Stage: θ_FFT + λ·τ_g on validation, for the group FFT serves worst (or every group)."""

from __future__ import annotations

from dataclasses import replace

from fairmerge.fairness.metrics import qualifying_groups
from fairmerge.labels import ModelLabel
from fairmerge.study.stages.base import SeedContext, SeedState, Stage, need
from fairmerge.study.stages.merge_sweep import MAIN
from fairmerge.study.sweeps import injection_sweeps, worst_group


def run(context: SeedContext, state: SeedState) -> SeedState:
    lab, trained = need(state.lab, "the workspace"), need(state.trained, "the trained models")
    config, sweep = context.config, context.config.sweep
    val = lab.evaluator.val
    worst = worst_group(
        need(state.baselines, "the baselines' val rows").rows(ModelLabel("fft"), "val"),
        config.attributes,
        trained.vector_groups,
        qualifying=qualifying_groups(
            val.split.labels, val.split.memberships(config.attributes), **val.threshold_options
        ),
        min_group_size=config.evaluation.min_group_size,
        criterion=sweep.worst_group_criterion,
    )
    names = list(lab.vectors[MAIN]) if sweep.inject_all_groups else [worst["label"]]
    injected = injection_sweeps(
        lab.evaluator, lab.workspace, lab.for_merger(MAIN), names, sweep.injection_lambdas
    )
    return replace(state, worst=worst, injected=injected)


STAGE = Stage("sweep: injection (val)", "sweep: injection θ_FFT + λ·τ_g (validation)", run)

"""Stage: θ_base, FFT and LoRA on validation; FFT's rows set the selection policy's reference."""

from __future__ import annotations

from dataclasses import replace

from fairmerge.labels import ModelLabel
from fairmerge.study.points import Candidate
from fairmerge.study.policy import SelectionPolicy
from fairmerge.study.stages.base import SeedContext, SeedState, Stage, need

BASELINES = ("base", "fft", "lora")


def run(context: SeedContext, state: SeedState) -> SeedState:
    lab = need(state.lab, "the workspace")
    for name in BASELINES:
        lab.evaluator.validate(
            Candidate(ModelLabel(name), None, None, start=name), lab.workspace.loader(name, always=True)
        )
    config = context.config
    policy = SelectionPolicy.from_fft(
        config.selection,
        lab.ledger.rows(ModelLabel("fft"), "val"),
        config.attributes,
        config.evaluation.min_group_size,
    )
    return replace(state, policy=policy)


STAGE = Stage("evaluate: baselines (val)", "evaluate: baselines on validation", run)

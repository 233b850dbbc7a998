"""Stage: θ_base, FFT, LoRA and the extra reference families on validation; FFT's rows set the
selection policy's reference."""

from __future__ import annotations

from dataclasses import replace

from fairmerge.labels import ModelLabel
from fairmerge.study.candidate import Candidate
from fairmerge.study.config import StudyConfig
from fairmerge.study.metric_rows import MetricRows
from fairmerge.study.policy import SelectionPolicy
from fairmerge.study.stages.base import SeedContext, SeedState, Stage, need

BASELINES = ("base", "fft", "lora")


def baseline_models(config: StudyConfig) -> tuple[str, ...]:
    """The λ-free models evaluated on val and test: ``BASELINES`` and ``baselines:``' families."""
    return (*BASELINES, *config.baseline_models())


def run(context: SeedContext, state: SeedState) -> SeedState:
    lab = need(state.lab, "the workspace")
    rows = MetricRows.concat(
        lab.evaluator.validate(Candidate(ModelLabel.parse(name), None, None, start=name))
        for name in baseline_models(context.config)
    )
    config = context.config
    policy = SelectionPolicy.from_fft(
        config.selection,
        rows.rows(ModelLabel("fft"), "val"),
        config.attributes,
        config.evaluation.min_group_size,
    )
    return replace(state, baselines=rows, policy=policy)


STAGE = Stage(
    "evaluate: baselines (val)", "evaluate: base, fft, lora and the baselines: families on validation", run
)

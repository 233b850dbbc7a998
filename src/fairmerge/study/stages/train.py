"""Stage: train (or fetch from the cache) every fine-tune of the seed."""

from __future__ import annotations

from dataclasses import replace

from fairmerge.errors import DataError
from fairmerge.study.stages.base import SeedContext, SeedState, Stage
from fairmerge.study.timing import StageTimer
from fairmerge.study.training_stage import train_models


def run(context: SeedContext, state: SeedState) -> SeedState:
    config = context.config
    timer = StageTimer(context.console)  # on a terminal, says when each fine-tune ends
    trained = train_models(
        config, context.dataset, context.seed, context.training_cache, timer, progress=timer.progress
    )
    if not trained.main.finetunes:
        raise DataError(
            f"no subgroup of {config.vector_attributes()} has >= "
            f"{config.subgroups.min_train_size} training posts"
        )
    return replace(state, trained=trained)


STAGE = Stage(
    "train",
    "train: base, fft, lora, the baselines: families, one fine-tune per subgroup and strategy (cached)",
    run,
)

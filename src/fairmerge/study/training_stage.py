"""The study's fine-tunes for one seed: θ_base, FFT, LoRA and one fine-tune per subgroup and strategy.

All of them go through the content-addressed training cache, so a re-run trains nothing twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from fairmerge.data.types import GroupedTextDataset
from fairmerge.study.config import StudyConfig
from fairmerge.study.timing import StageTimer
from fairmerge.training import TrainingCache, make_base_checkpoint, train_fft, train_lora, train_subgroups


@dataclass(frozen=True)
class TrainedModels:
    """Checkpoint directories of one seed; subgroup fine-tunes by strategy, then by vector name."""

    base: Path
    fft: Path
    lora: Path
    subgroups: dict[str, dict[str, Path]]
    vector_groups: dict[tuple[str, str], str]
    """(attribute, group) → vector name, for the groups that have a vector."""


def vector_names(pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """A readable name per (attribute, group): the group, or ``attribute:group`` where names clash."""
    pairs = list(dict.fromkeys(pairs))
    counts: dict[str, int] = {}
    for _, group in pairs:
        counts[group] = counts.get(group, 0) + 1
    return {(a, g): g if counts[g] == 1 else f"{a}:{g}" for a, g in pairs}


def train_models(
    config: StudyConfig, dataset: GroupedTextDataset, seed: int, cache: TrainingCache, timer: StageTimer
) -> TrainedModels:
    """Train (or fetch from the cache) every fine-tune the study needs for ``seed``."""
    with timer("train: base"):
        base = make_base_checkpoint(config.model, seed=seed, cache=cache)
    with timer("train: fft"):
        fft = train_fft(dataset, base_dir=base, config=config.fft.replace(seed=seed), cache=cache)
    with timer("train: lora"):
        lora = train_lora(dataset, base_dir=base, config=config.lora.replace(seed=seed), cache=cache)
    trained: dict[str, dict[tuple[str, str], Path]] = {}
    for strategy in [config.subgroups.strategy, *config.subgroups.compare]:
        with timer(f"train: subgroups ({strategy})"):
            trained[strategy] = train_subgroups(
                dataset,
                config.attributes,
                base_dir=base,
                config=config.subgroups.train.replace(seed=seed),
                strategy=strategy,
                min_train_size=config.subgroups.min_train_size,
                cache=cache,
                method=config.subgroups.method,
            )
    names = vector_names(pair for dirs in trained.values() for pair in dirs)
    subgroups = {s: {names[pair]: path for pair, path in dirs.items()} for s, dirs in trained.items()}
    main = trained[config.subgroups.strategy]
    return TrainedModels(base, fft, lora, subgroups, {pair: names[pair] for pair in main})

"""The study's own view of a dataset split, so any checkpoint can be re-scored on it.

``fairmerge evaluate CKPT --dataset hatexplain --split test`` reads the split exactly as ``fairmerge
run`` does for the study config of that dataset: the same loader options, attributes, evaluation
subset (``--fast`` profiles score subsets of val and test) and evaluation settings (max_length,
min_group_size, bootstrap resamples and seed), so its metrics.csv rows reproduce the study's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fairmerge.data import SPLITS, TextSplit
from fairmerge.errors import ConfigError
from fairmerge.precision import Precision

if TYPE_CHECKING:
    from fairmerge.study.config import StudyConfig


@dataclass(frozen=True)
class StudySplit:
    """One split as the study evaluates it, with the settings its test metrics use."""

    split: TextSplit
    name: str
    config_name: str
    attributes: list[str]
    max_length: int
    min_group_size: int
    n_resamples: int
    batch_size: int
    seed: int
    precision: Precision


def study_config_for(dataset: str, config: str | Path | None = None, *, fast: bool = False) -> StudyConfig:
    """``config`` (a YAML path or built-in name) or else the first built-in config (``default``
    first) that studies ``dataset``; its ``fast:`` profile with ``fast``."""
    from fairmerge.study.config import builtin_config_names, load_config

    if config is not None:
        chosen = load_config(config, fast=fast)
        if chosen.dataset.name != dataset:
            raise ConfigError(f"config {config} studies dataset {chosen.dataset.name!r}, not {dataset!r}")
        return chosen
    names = sorted(builtin_config_names(), key=lambda name: name != "default")
    for name in names:
        candidate = load_config(name, fast=fast)
        if candidate.dataset.name == dataset:
            return candidate
    raise ConfigError(
        f"no built-in study config uses dataset {dataset!r}; pass --config FILE "
        f"(built-in: {', '.join(names)})"
    )


def study_split(
    dataset: str,
    split: str,
    data_dir: str | os.PathLike[str] | None,
    *,
    config: str | Path | None = None,
    fast: bool = False,
) -> StudySplit:
    """Split ``split`` of ``dataset`` as the study config (see :func:`study_config_for`) reads it."""
    from fairmerge.study.evaluator import evaluation_view
    from fairmerge.study.run import load_study_dataset

    if split not in SPLITS:
        raise ConfigError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    study = study_config_for(dataset, config, fast=fast)
    loaded = load_study_dataset(study, data_dir)
    evaluation = study.evaluation
    view = evaluation_view(loaded, evaluation.max_val_samples, evaluation.max_test_samples, study.attributes)
    return StudySplit(
        split=view[split],
        name=split,
        config_name=study.name,
        attributes=list(study.attributes),
        max_length=evaluation.max_length,
        min_group_size=evaluation.min_group_size,
        n_resamples=evaluation.n_resamples,
        batch_size=evaluation.batch_size,
        seed=study.seeds[0],
        precision=evaluation.precision,
    )

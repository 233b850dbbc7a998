"""The study's own view of a dataset split, so any checkpoint can be re-scored on it.

``fairmerge evaluate CKPT --dataset hatexplain --split test`` reads the split exactly as ``fairmerge
run`` does for the study config of that dataset: the same loader options, attributes, evaluation
subset (``--fast`` profiles score subsets of val and test) and evaluation settings (max_length,
group thresholds, bootstrap resamples, permutations and seed), so its metrics.csv rows reproduce the
study's. A model that ``fairmerge export`` wrote records its run's config and seed (fairmerge.json):
:func:`exported_run` reads them, so its run's own settings apply without naming them.
"""

from __future__ import annotations

import json
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
    min_positives: int
    min_negatives: int
    n_resamples: int
    n_permutations: int
    batch_size: int
    seed: int
    precision: Precision


@dataclass(frozen=True)
class ExportedRun:
    """What an exported model's fairmerge.json says about the run it came from."""

    config: StudyConfig
    seed: int


EXPORT_RECORD = "fairmerge.json"
"""The record ``fairmerge export`` writes next to the weights (fairmerge.export.recipe)."""


def exported_run(model: str | os.PathLike[str] | None) -> ExportedRun | None:
    """The run config and seed recorded by ``fairmerge export`` in ``model``'s folder; None for any
    other checkpoint (no record, a hub id) or a record written before exports recorded the config."""
    from fairmerge.study.config import validate_config

    file = Path(str(model)) / EXPORT_RECORD if model is not None else None
    if file is None or not file.is_file():
        return None
    try:
        record = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{file} cannot be read as JSON ({exc})") from None
    if not isinstance(record, dict) or "study_config" not in record:
        return None
    return ExportedRun(validate_config(record["study_config"], f"{file} study_config"), int(record["seed"]))


def study_config_for(
    dataset: str, config: str | Path | StudyConfig | None = None, *, fast: bool = False
) -> StudyConfig:
    """``config`` (a YAML path, built-in name or config) or else the first built-in config
    (``default`` first) that studies ``dataset``; its ``fast:`` profile with ``fast``."""
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
    config: str | Path | StudyConfig | None = None,
    fast: bool = False,
    seed: int | None = None,
) -> StudySplit:
    """Split ``split`` of ``dataset`` as the study config (see :func:`study_config_for`) reads it,
    with the settings of seed ``seed``'s metrics (default: the config's first seed)."""
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
        min_positives=evaluation.min_positives,
        min_negatives=evaluation.min_negatives,
        n_resamples=evaluation.n_resamples,
        n_permutations=evaluation.n_permutations,
        batch_size=evaluation.batch_size,
        seed=study.seeds[0] if seed is None else seed,
        # auto's bf16 is the study's only after its check on θ_base; a split scored outside a run has
        # no θ_base to check, so auto is fp32 here (an exported model's record holds its run's choice)
        precision="fp32" if evaluation.precision == "auto" else evaluation.precision,
    )

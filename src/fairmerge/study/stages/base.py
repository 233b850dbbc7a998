"""What every stage of one seed shares: the :class:`Stage` declaration, its context and its state.

A stage reads the values earlier stages produced from an immutable :class:`SeedState` and returns
a new state with its own values set (``dataclasses.replace``); nothing else passes between stages.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pandas as pd
from rich.console import Console

from fairmerge.data.types import GroupedTextDataset
from fairmerge.search.outcome import SeedSearch
from fairmerge.study.config import StudyConfig
from fairmerge.study.policy import SelectionPolicy
from fairmerge.study.score_cache import ScoreCache
from fairmerge.study.stages.results import PergroupResult, SideTables
from fairmerge.study.stages.workspace import Lab
from fairmerge.study.sweeps import FamilySweep
from fairmerge.study.testing import SelectedModel
from fairmerge.study.training_stage import TrainedModels
from fairmerge.training import TrainingCache

if TYPE_CHECKING:  # the precision stage imports this module
    from fairmerge.study.stages.precision import PrecisionCheck

T = TypeVar("T")


@dataclass(frozen=True)
class SeedContext:
    """The inputs of one seed's study that no stage changes."""

    config: StudyConfig
    dataset: GroupedTextDataset
    seed: int
    training_cache: TrainingCache
    score_cache: ScoreCache
    console: Console | None = None
    data_dir: str | Path | None = None
    """Where the dataset was read from (for measures that read more of its files)."""


@dataclass(frozen=True)
class SeedState:
    """The values the stages of one seed have produced so far (None: that stage has not run)."""

    trained: TrainedModels | None = None
    lab: Lab | None = None
    policy: SelectionPolicy | None = None
    merged: FamilySweep | None = None
    pergroup: PergroupResult | None = None
    worst: Mapping[str, str] | None = None
    injected: Mapping[str, FamilySweep] | None = None
    compared: Mapping[str, FamilySweep] | None = None
    selected: Mapping[str, SelectedModel] = field(default_factory=dict)
    predictions: Mapping[str, np.ndarray] = field(default_factory=dict)
    sensitivity: pd.DataFrame = field(default_factory=pd.DataFrame)
    tables: SideTables | None = None
    target_quality: list[dict[str, Any]] | None = None
    search: SeedSearch | None = None
    precision: PrecisionCheck | None = None


def need(value: T | None, what: str) -> T:
    """A value an earlier stage produced (an error naming it when the stages ran out of order)."""
    if value is None:
        raise RuntimeError(f"stage order: {what} is needed before it was produced")
    return value


@dataclass(frozen=True)
class Stage:
    """One step of the study: its name (timings, progress), its plan (``--dry-run``) and its run."""

    name: str
    plan: str
    run: Callable[[SeedContext, SeedState], SeedState]

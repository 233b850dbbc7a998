"""What every stage of one seed shares: the :class:`Stage` declaration, its context and its state.

A stage reads the values earlier stages produced from an immutable :class:`SeedState` and returns
a new state with its own values set (``dataclasses.replace``); nothing else passes between stages.
Each evaluating stage's metric rows are part of its result (:class:`MetricRows`);
:func:`metric_rows` gathers them, in pipeline order, for the side tables and ``metrics.csv``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pandas as pd
from rich.console import Console

from fairmerge.data.types import GroupedTextDataset
from fairmerge.search.outcome import SeedSearch
from fairmerge.study.config import StudyConfig
from fairmerge.study.metric_rows import MetricRows
from fairmerge.study.policy import SelectionPolicy
from fairmerge.study.score_cache import ScoreCache
from fairmerge.study.stages.results import PergroupResult, SideTables
from fairmerge.study.stages.workspace import Lab
from fairmerge.study.sweeps import FamilySweep
from fairmerge.study.testing import Tested
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
    baselines: MetricRows | None = None
    """The λ-free models' val rows."""
    policy: SelectionPolicy | None = None
    merged: FamilySweep | None = None
    pergroup: PergroupResult | None = None
    worst: Mapping[str, str] | None = None
    injected: Mapping[str, FamilySweep] | None = None
    compared: Mapping[str, FamilySweep] | None = None
    tested: Tested = field(default_factory=Tested)
    """Every model tested so far: test rows, what was selected and why, test predictions."""
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


def metric_rows(state: SeedState) -> MetricRows:
    """Every metric row the stages have produced so far, in pipeline order (val, then test)."""
    swept = (state.merged, state.pergroup, *(state.injected or {}).values(), *(state.compared or {}).values())
    val = [state.baselines, *(result.rows for result in swept if result is not None)]
    return MetricRows.concat([*(rows for rows in val if rows is not None), state.tested.rows])

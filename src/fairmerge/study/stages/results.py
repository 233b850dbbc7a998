"""Immutable results of the stages that produce more than one value."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from fairmerge.study.candidate import Candidate
from fairmerge.study.metric_rows import MetricRows


@dataclass(frozen=True)
class PergroupResult:
    """The per-group search's best point on validation, its val rows and every trial."""

    point: Candidate
    rows: MetricRows
    trials: pd.DataFrame


@dataclass(frozen=True)
class SideTables:
    """The seed's side tables (similarity.csv, bound.csv, bound_pergroup.csv, strategies.csv,
    degenerate.csv)."""

    similarity: pd.DataFrame
    bound: pd.DataFrame
    pergroup_bound: pd.DataFrame
    strategies: pd.DataFrame
    degenerate: pd.DataFrame

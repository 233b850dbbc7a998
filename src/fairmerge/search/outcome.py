"""What the searches of one study seed produced, and the study-level outputs built from every seed.

A :class:`SeedSearch` is one seed's searchers: each method's validation result, its front scored on
test and those points' 0/1 test predictions, and the point the selection rule took from the front.
:func:`search_outputs` turns the seeds into ``pareto_front.csv`` rows (every seed), the ranking
table (``hypervolume.csv``, ``summary.json["search"]``) and writes both atomically.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from fairmerge.search.config import SearchConfig
from fairmerge.search.front import front_frame, write_front_csv
from fairmerge.search.problem import ScoredPoint, SearchResult, objectives_of
from fairmerge.search.table import ResampledObjectives, hypervolume_table, write_hypervolume_csv


@dataclass(frozen=True)
class SeedSearch:
    """One seed's searches, by method (in the configured order)."""

    seed: int
    results: Mapping[str, SearchResult]
    test_fronts: Mapping[str, list[ScoredPoint]]
    front_predictions: Mapping[str, np.ndarray]
    """Method → the front's 0/1 test predictions (front points × posts), in front order."""
    selected: Mapping[str, ScoredPoint]
    evaluations: Mapping[str, int] = field(default_factory=dict)
    """Distinct models scored per split by the seed's shared scorer (val, test)."""


def front_rows(runs: Sequence[SeedSearch]) -> pd.DataFrame:
    """``pareto_front.csv``: every seed's fronts (val and test rows), with ``seed`` and ``selected``."""
    frames = []
    for run in runs:
        for method, result in run.results.items():
            frame = front_frame(result, run.test_fronts[method])
            chosen = run.selected[method].coefficients if method in run.selected else None
            frame.insert(0, "seed", run.seed)
            frame["selected"] = [result.front[i].coefficients == chosen for i in frame["point"]]
            frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def search_table(
    runs: Sequence[SeedSearch],
    config: SearchConfig,
    labels: np.ndarray,
    memberships: Mapping[str, pd.DataFrame],
    *,
    min_group_size: int,
    seed: int,
) -> pd.DataFrame:
    """The ranking table over every seed (test posts shared by the seeds: the study's test split)."""
    methods = list(runs[0].results)
    scorer = ResampledObjectives(
        labels, memberships, objectives_of(config.objectives), min_group_size=min_group_size
    )
    return hypervolume_table(
        {m: [r.results[m] for r in runs] for m in methods},
        {m: [r.front_predictions[m] for r in runs] for m in methods},
        scorer,
        config.reference_point,
        n_resamples=config.n_resamples,
        seed=seed,
    )


def write_search_outputs(folder: Path, fronts: pd.DataFrame, table: pd.DataFrame) -> None:
    """``pareto_front.csv`` and ``hypervolume.csv`` in ``folder`` (atomically)."""
    write_front_csv(folder / "pareto_front.csv", [fronts])
    write_hypervolume_csv(folder / "hypervolume.csv", table)

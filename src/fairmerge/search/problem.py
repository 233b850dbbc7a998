"""The search problem as values: coefficient space, objectives, scored points, and a cached scorer.

A point is a tuple of coefficients, one per (group vector, layer block), in the order of
:attr:`CoefficientSpace.names`. The model at a point is ``θ_base + Σ_{g,b} λ_{g,b} τ_{g,b}`` where
``τ_{g,b}`` is vector g restricted to block b. A *score function* (the study's evaluator, or any
callable) maps coefficients and a split to the model's tidy metric rows; :class:`Evaluations`
rounds the coefficients, caches, counts model evaluations per split (the budget every searcher
shares), and reads the objectives with their intervals off the tidy rows.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from fairmerge.errors import ConfigError, DataError
from fairmerge.fairness import OVERALL
from fairmerge.search.config import BlockScheme
from fairmerge.sweep.selection import pareto_front
from fairmerge.vectors import InPlaceMerger
from fairmerge.vectors.task_vector import is_head_key

Split = Literal["val", "test"]
Coefficients = tuple[float, ...]
ScoreFn = Callable[[Coefficients, Split], pd.DataFrame]
"""Writes the point's weights into the model and returns its tidy metrics (attribute, group, metric,
value, ci_low, ci_high) on the split."""

BLOCKS: dict[str, tuple[str, ...]] = {
    "whole": ("all",),
    "quarters": ("embeddings", "lower", "upper", "head"),
}
_INDEXED = re.compile(r"\.(\d+)\.")


@dataclass(frozen=True)
class Objective:
    """``accuracy`` (maximised) or a gap ``<attribute>_dpd`` / ``<attribute>_eod`` (minimised)."""

    name: str

    @property
    def maximize(self) -> bool:
        return not self.name.endswith(("_dpd", "_eod"))

    @property
    def row(self) -> tuple[str, str, str]:
        """(attribute, group, metric) of the tidy row holding the value."""
        if self.name == "accuracy":
            return (OVERALL, OVERALL, "accuracy")
        attribute, metric = self.name.rsplit("_", 1)
        return (attribute, OVERALL, metric)

    def goodness(self, value: float) -> float:
        """The value on a larger-is-better scale in [0, 1] (1 − gap for gaps): hypervolume coordinates."""
        return value if self.maximize else 1.0 - value


def objectives_of(names: Sequence[str]) -> tuple[Objective, ...]:
    return tuple(Objective(n) for n in names)


@dataclass(frozen=True)
class CoefficientSpace:
    """One coefficient per (group, block), each in [low, high]."""

    groups: tuple[str, ...]
    blocks: tuple[str, ...] = ("all",)
    low: float = 0.0
    high: float = 1.0

    def __post_init__(self) -> None:
        if not self.groups or len(set(self.groups)) != len(self.groups):
            raise ConfigError(f"groups must be non-empty and unique, got {list(self.groups)}")
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise ConfigError(f"need finite low < high, got [{self.low}, {self.high}]")

    @property
    def names(self) -> list[str]:
        """Coefficient names, group-major: ``race:African`` or ``race:African@lower``."""
        if self.blocks == ("all",):
            return list(self.groups)
        return [f"{g}@{b}" for g in self.groups for b in self.blocks]

    @property
    def size(self) -> int:
        return len(self.groups) * len(self.blocks)

    def uniform(self, lam: float) -> Coefficients:
        return (float(lam),) * self.size

    def matrix(self, coefficients: Sequence[float]) -> np.ndarray:
        """Coefficients as a groups × blocks array."""
        if len(coefficients) != self.size:
            raise ConfigError(f"expected {self.size} coefficients ({self.names}), got {len(coefficients)}")
        return np.asarray(coefficients, dtype=float).reshape(len(self.groups), len(self.blocks))


def block_of(key: str, scheme: BlockScheme, n_layers: int) -> str:
    """The block of a parameter: ``embeddings``, ``lower`` / ``upper`` half of the indexed layers,
    or ``head`` (classifier, pooler, final norm: everything after the layers)."""
    if scheme == "whole":
        return "all"
    match = _INDEXED.search(key)
    if match is not None and not is_head_key(key):
        return "lower" if int(match.group(1)) < n_layers / 2 else "upper"
    return "embeddings" if "embed" in key or "stem" in key else "head"


def blocks_of_keys(keys: Sequence[str], scheme: BlockScheme) -> dict[str, str]:
    """Key → block, with the number of layers read off the keys' largest layer index."""
    indices = [int(m.group(1)) for k in keys if (m := _INDEXED.search(k)) and not is_head_key(k)]
    n_layers = max(indices) + 1 if indices else 0
    return {k: block_of(k, scheme, n_layers) for k in keys}


class BlockMerger:
    """Writes ``θ_base + Σ λ_{g,b} τ_{g,b}`` into a model: one :class:`InPlaceMerger` per block, each
    touching only its block's tensors (so the same kernel, and the same bits, as every other sweep).

    Memory: one base copy and the vectors once in total, split across the blocks.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        base: Mapping[str, Tensor],
        vectors: Mapping[str, Mapping[str, Tensor]],
        space: CoefficientSpace,
        scheme: BlockScheme,
    ) -> None:
        if tuple(vectors) != space.groups:
            raise ConfigError(f"vectors {list(vectors)} do not match the space's groups {list(space.groups)}")
        keys = list(next(iter(vectors.values())))
        block = blocks_of_keys(keys, scheme)
        self.space = space
        self._mergers: dict[str, InPlaceMerger] = {}
        for name in space.blocks:
            mine = [k for k in keys if block[k] == name]
            if mine:
                parts = [{k: v[k] for k in mine} for v in vectors.values()]
                self._mergers[name] = InPlaceMerger(model, base, parts)

    def set_coefficients(self, coefficients: Sequence[float]) -> None:
        matrix = self.space.matrix(coefficients)
        for b, name in enumerate(self.space.blocks):
            if name in self._mergers:
                self._mergers[name].set_coefficients([float(x) for x in matrix[:, b]])

    def restore(self) -> None:
        for merger in self._mergers.values():
            merger.restore()


@dataclass(frozen=True)
class ScoredPoint:
    """A point's coefficients, objective values and their intervals on one split."""

    coefficients: Coefficients
    values: tuple[float, ...]
    intervals: tuple[tuple[float, float], ...]
    split: Split = "val"
    info: Mapping[str, float] = field(default_factory=dict)
    """Searcher-specific extras (e.g. the learned search's μ)."""

    @property
    def defined(self) -> bool:
        return not any(math.isnan(v) for v in self.values)


def read_objectives(
    tidy: pd.DataFrame, objectives: Sequence[Objective]
) -> tuple[tuple[float, ...], tuple[tuple[float, float], ...]]:
    """Each objective's value and (ci_low, ci_high) from a model's tidy metric rows (NaN if absent)."""
    values, intervals = [], []
    for objective in objectives:
        attribute, group, metric = objective.row
        rows = tidy[(tidy["attribute"] == attribute) & (tidy["group"] == group) & (tidy["metric"] == metric)]
        if rows.empty:
            raise DataError(f"metrics lack the row {objective.row} for objective {objective.name!r}")
        row = rows.iloc[0]
        values.append(float(row["value"]))
        intervals.append((float(row.get("ci_low", np.nan)), float(row.get("ci_high", np.nan))))
    return tuple(values), tuple(intervals)


class Evaluations:
    """Cached, counted scoring of points: the one way every searcher evaluates a model.

    Coefficients are rounded to ``decimals`` before scoring (the cache key is the point scored).
    ``counts[split]`` is the number of distinct models scored on the split (compute actually spent;
    each searcher reports its own budget use as the distinct points it scored).
    """

    def __init__(
        self,
        score: ScoreFn,
        space: CoefficientSpace,
        objectives: Sequence[Objective],
        *,
        decimals: int = 4,
    ) -> None:
        self.score = score
        self.space = space
        self.objectives = tuple(objectives)
        self.decimals = decimals
        self.counts: dict[str, int] = {"val": 0, "test": 0}
        self._frames: dict[tuple[Split, Coefficients], pd.DataFrame] = {}

    def key(self, coefficients: Sequence[float]) -> Coefficients:
        values = np.asarray(coefficients, dtype=float)
        if values.shape != (self.space.size,) or not np.isfinite(values).all():
            raise ConfigError(f"expected {self.space.size} finite coefficients, got {list(values)}")
        return tuple(round(float(x), self.decimals) + 0.0 for x in values)  # + 0.0: no -0.0 keys

    def cached(self, coefficients: Sequence[float], split: Split = "val") -> bool:
        return (split, self.key(coefficients)) in self._frames

    def frame(self, coefficients: Sequence[float], split: Split = "val") -> pd.DataFrame:
        """The point's tidy metrics on ``split`` (scored once; later calls are cache hits)."""
        key = self.key(coefficients)
        if (split, key) not in self._frames:
            self._frames[split, key] = self.score(key, split)
            self.counts[split] += 1
        return self._frames[split, key]

    def __call__(
        self, coefficients: Sequence[float], split: Split = "val", info: Mapping[str, float] | None = None
    ) -> ScoredPoint:
        key = self.key(coefficients)
        values, intervals = read_objectives(self.frame(key, split), self.objectives)
        return ScoredPoint(key, values, intervals, split, dict(info or {}))


def front_of(points: Sequence[ScoredPoint], objectives: Sequence[Objective]) -> list[ScoredPoint]:
    """The non-dominated points with defined objectives (duplicates of a point kept once, in order)."""
    unique = list({p.coefficients: p for p in reversed(points)}.values())[::-1]
    if not unique:
        return []
    names = [o.name for o in objectives]
    table = pd.DataFrame([p.values for p in unique], columns=names)
    keep = pareto_front(table, names, [o.maximize for o in objectives]).index
    return [unique[i] for i in keep]


@dataclass(frozen=True)
class SearchResult:
    """What one searcher did on validation: every point it scored, its front, and its cost."""

    method: str
    points: list[ScoredPoint]
    front: list[ScoredPoint]
    n_evaluations: int
    wall_s: float
    space: CoefficientSpace
    objectives: tuple[Objective, ...]

"""The metric rows of evaluated candidates as an immutable value.

Each stage returns the rows it evaluated in its own result (a :class:`MetricRows`); whoever reads
them (selection, the side tables, ``metrics.csv``) is handed them explicitly. Combining two values
builds a new one: no object writes rows that another reads later.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from fairmerge.labels import ModelLabel


def _empty() -> pd.DataFrame:
    return pd.DataFrame()


@dataclass(frozen=True)
class MetricRows:
    """Tidy metric rows (model, lambda, split, attribute, group, metric, value, …) in evaluation
    order, and the points that label every validation post alike (never changed once built)."""

    frame: pd.DataFrame = field(default_factory=_empty)
    constant: frozenset[tuple[str, float]] = frozenset()
    """(model, λ rounded to 6 places) of each point with constant predictions on validation:
    trivially 'fair' (DPD = EOD = 0)."""

    @classmethod
    def of(
        cls, label: ModelLabel, lam: float | None, frame: pd.DataFrame, predictions: np.ndarray | None = None
    ) -> MetricRows:
        """One point's rows under ``label`` and λ; ``predictions`` (its val decisions) mark it
        constant when they are all alike."""
        frame = frame.copy()
        frame.insert(0, "model", str(label))
        frame.insert(1, "lambda", np.nan if lam is None else lam)
        constant: frozenset[tuple[str, float]] = frozenset()
        if lam is not None and predictions is not None and predictions.min() == predictions.max():
            constant = frozenset({(str(label), round(lam, 6))})
        return cls(frame, constant)

    @classmethod
    def concat(cls, parts: Iterable[MetricRows]) -> MetricRows:
        """The rows of ``parts``, in order, as one value."""
        parts = list(parts)
        frames = [part.frame for part in parts if len(part.frame)]
        frame = pd.concat(frames, ignore_index=True) if frames else _empty()
        return cls(frame, frozenset().union(*(part.constant for part in parts)))

    def __add__(self, other: MetricRows) -> MetricRows:
        return MetricRows.concat([self, other])

    def rows(self, label: ModelLabel, split: str) -> pd.DataFrame:
        """The rows of one model (family × decision) on one split."""
        frame = self.frame
        if frame.empty:
            return frame
        return frame[(frame.model == str(label)) & (frame.split == split)]

    def is_constant(self, label: ModelLabel, lam: float) -> bool:
        return (str(label), round(lam, 6)) in self.constant

    def accuracy(self, label: ModelLabel, lam: float | None = None, split: str = "val") -> float:
        """Overall accuracy of one point (NaN when absent); ``lam=None`` for λ-free models."""
        rows = self.rows(label, split)
        if rows.empty:
            return float("nan")
        rows = rows[(rows.attribute == "all") & (rows.metric == "accuracy")]
        rows = rows[rows["lambda"].isna()] if lam is None else rows[rows["lambda"].round(6) == round(lam, 6)]
        return float(rows.value.iloc[0]) if len(rows) else float("nan")

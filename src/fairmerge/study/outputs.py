"""Turns a study's results into its files: metrics.csv, summary.json, side tables, the report."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fairmerge.atomic import atomic_write_text
from fairmerge.fairness import registry
from fairmerge.fairness.metrics import CONTRACT_COLUMNS
from fairmerge.fairness.registry import wide_column

METRICS_COLUMNS = CONTRACT_COLUMNS


def _cell(frame: pd.DataFrame, attribute: str, group: str, metric: str) -> tuple[float, float, float]:
    rows = frame[(frame.attribute == attribute) & (frame.group == group) & (frame.metric == metric)]
    if rows.empty:
        return (math.nan, math.nan, math.nan)
    row = rows.iloc[0]
    return float(row.value), float(row.ci_low), float(row.ci_high)


def headline_row(
    metrics: pd.DataFrame, model: str, attributes: list[str], split: str = "test"
) -> dict[str, Any]:
    """Flat headline metrics of one model on one split: accuracy, worst-group accuracy, gaps, CIs."""
    frame = metrics[(metrics.model == model) & (metrics.split == split)]
    lam = frame["lambda"].iloc[0] if not frame.empty else math.nan
    row: dict[str, Any] = {"model": model, "lambda": None if pd.isna(lam) else float(lam)}
    value, low, high = _cell(frame, "all", "all", "accuracy")
    row.update(accuracy=value, accuracy_ci_low=low, accuracy_ci_high=high)
    row["n"] = _cell(frame, "all", "all", "n")[0]
    worst = []
    for attribute in attributes:
        for metric in registry.headline_gaps():
            value, low, high = _cell(frame, attribute, "all", metric)
            row[wide_column(attribute, metric)] = value
            row[wide_column(attribute, metric, "_ci_low")] = low
            row[wide_column(attribute, metric, "_ci_high")] = high
        for metric in (
            "dpd_noise_floor",
            "eod_noise_floor",
            "dpd_perm_p",
            "eod_perm_p",
            "n_groups",
            "labels_dpd",
        ):
            row[wide_column(attribute, metric)] = _cell(frame, attribute, "all", metric)[0]
        worst.append(row[wide_column(attribute, "worst_group_accuracy")])
    finite = [w for w in worst if not math.isnan(w)]
    row["worst_group_accuracy"] = min(finite) if finite else math.nan
    return row


def headline_table(metrics: pd.DataFrame, attributes: list[str]) -> list[dict[str, Any]]:
    """Headline rows for every model evaluated on test, in a stable reading order."""
    models = list(dict.fromkeys(metrics[metrics.split == "test"].model))
    return [headline_row(metrics, model, attributes) for model in models]


def to_json_safe(value: Any) -> Any:
    """NaN/inf become null and numpy scalars plain Python, so summary.json is strict JSON."""
    if isinstance(value, dict):
        return {str(k): to_json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_table(path: Path, frame: pd.DataFrame, *, index: bool = False) -> None:
    atomic_write_text(path, frame.to_csv(index=index))


def write_json(path: Path, payload: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(to_json_safe(payload), indent=2, allow_nan=False) + "\n")

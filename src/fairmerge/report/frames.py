"""Read the tidy metrics table for the report: model labels, λ curves and baseline values.

``metrics`` is the tidy ``metrics.csv`` of DESIGN.md (columns ``model, lambda, split, attribute,
group, metric, value, ci_low, ci_high``). Model labels are read back into :class:`fairmerge.labels.ModelLabel`
values; the report groups them by variant (family and strategy) and by decision.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from fairmerge.errors import DataError
from fairmerge.fairness.metrics import CONTRACT_COLUMNS
from fairmerge.labels import CALIBRATED_SUFFIX, ModelLabel
from fairmerge.study.summary import SelectedEntry
from fairmerge.sweep.selection import pareto_front as non_dominated

METRIC_COLUMNS: tuple[str, ...] = tuple(CONTRACT_COLUMNS)


def parse_model(label: str) -> ModelLabel:
    """Split e.g. ``inject:African@calibrated`` into family ``inject``, group ``African``, calibrated."""
    return ModelLabel.parse(label)


def with_decision(family_label: str, calibrated: bool) -> str:
    """The label of ``family_label`` under the given decision (``fft`` → ``fft@calibrated``)."""
    return family_label + CALIBRATED_SUFFIX if calibrated else family_label


def validate_metrics(metrics: pd.DataFrame) -> pd.DataFrame:
    """Check the tidy columns and return a copy with numeric ``lambda``/``value``/CI columns."""
    if not isinstance(metrics, pd.DataFrame):
        raise DataError(f"metrics must be a pandas DataFrame, got {type(metrics).__name__}")
    missing = [c for c in METRIC_COLUMNS if c not in metrics.columns]
    if missing:
        raise DataError(f"metrics is missing columns {missing}; expected {list(METRIC_COLUMNS)}")
    out = metrics.copy()
    for col in ("lambda", "value", "ci_low", "ci_high"):
        try:
            out[col] = pd.to_numeric(out[col]).astype(float)
        except (TypeError, ValueError) as exc:
            raise DataError(f"metrics column {col!r} must be numeric (NaN allowed): {exc}") from exc
    for col in ("model", "split", "attribute", "group", "metric"):
        out[col] = out[col].astype(str)
    return out


def models_present(metrics: pd.DataFrame, *, family: str, split: str = "val") -> list[ModelLabel]:
    """The labels of ``family`` that have swept (non-NaN λ) rows on ``split``, in first-seen order."""
    rows = metrics[(metrics["split"] == split) & metrics["lambda"].notna()]
    labels = [parse_model(m) for m in pd.unique(rows["model"])]
    return [lab for lab in labels if lab.variant == family]


def curve(
    metrics: pd.DataFrame,
    *,
    model: str,
    metric: str,
    split: str = "val",
    attribute: str = "all",
    group: str = "all",
) -> pd.DataFrame:
    """Rows of one metric along λ for one model: columns ``lambda, value, ci_low, ci_high``, sorted by λ."""
    sel = metrics[
        (metrics["model"] == model)
        & (metrics["split"] == split)
        & (metrics["metric"] == metric)
        & (metrics["attribute"] == attribute)
        & (metrics["group"] == group)
        & metrics["lambda"].notna()
    ]
    out = sel[["lambda", "value", "ci_low", "ci_high"]].drop_duplicates("lambda", keep="last")
    return out.sort_values("lambda").reset_index(drop=True)


def point_value(
    metrics: pd.DataFrame,
    *,
    model: str,
    metric: str,
    split: str = "val",
    attribute: str = "all",
    group: str = "all",
    lam: float | None = None,
) -> float:
    """One value (NaN when absent). ``lam=None`` means the λ-free (baseline) row."""
    sel = metrics[
        (metrics["model"] == model)
        & (metrics["split"] == split)
        & (metrics["metric"] == metric)
        & (metrics["attribute"] == attribute)
        & (metrics["group"] == group)
    ]
    if lam is None:
        sel = sel[sel["lambda"].isna()]
    else:
        sel = sel[np.isclose(sel["lambda"].to_numpy(dtype=float), lam, rtol=0.0, atol=1e-9)]
    return float(sel["value"].iloc[-1]) if len(sel) else math.nan


def attributes_of(metrics: pd.DataFrame) -> list[str]:
    """The attributes with group rows, in first-seen order."""
    attrs = metrics.loc[metrics["attribute"] != "all", "attribute"]
    return [str(a) for a in pd.unique(attrs)]


def groups_of(metrics: pd.DataFrame, attribute: str) -> list[str]:
    """The groups of ``attribute`` (excluding the ``all`` row), in first-seen order."""
    rows = metrics[(metrics["attribute"] == attribute) & (metrics["group"] != "all")]
    return [str(g) for g in pd.unique(rows["group"])]


def attribute_of_group(metrics: pd.DataFrame, group: str) -> str | None:
    """The attribute whose groups include ``group`` (the first one when several do)."""
    rows = metrics[(metrics["group"] == group) & (metrics["attribute"] != "all")]
    return str(rows["attribute"].iloc[0]) if len(rows) else None


def group_sizes(metrics: pd.DataFrame, split: str) -> pd.Series:
    """Group sizes ``n`` on ``split`` indexed by (attribute, group).

    Group membership does not depend on the model, so any model's rows give the sizes; FFT's are
    preferred, then the first model seen.
    """
    rows = metrics[(metrics["split"] == split) & (metrics["metric"] == "n") & (metrics["group"] != "all")]
    if rows.empty:
        return pd.Series(dtype=float)
    models = list(pd.unique(rows["model"]))
    model = "fft" if "fft" in models else models[0]
    rows = rows[rows["model"] == model]
    first_lambda = rows.groupby(["attribute", "group"], sort=False)["value"].first()
    return first_lambda.astype(float)


def selected_lambda(selected: Mapping[str, SelectedEntry], label: str) -> float | None:
    """The single λ selected for ``label`` (None when absent, per-group or undefined)."""
    entry = selected.get(label)
    if entry is None or entry.lam is None or math.isnan(entry.lam):
        return None
    return entry.lam


def pareto_mask(accuracy: Iterable[float], gap: Iterable[float]) -> np.ndarray:
    """Boolean mask of the points not dominated in (max accuracy, min gap); NaN points are never on it."""
    points = pd.DataFrame({"accuracy": list(accuracy), "gap": list(gap)}, dtype=float)
    front = non_dominated(points, ["accuracy", "gap"], [True, False])
    return np.asarray(points.index.isin(front.index))

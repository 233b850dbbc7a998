"""Turn the study's numbers into display tables: values with CIs, "n/a" for undefined, readable headers.

Cells become strings here; HTML escaping happens once, when the table is rendered.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from fairmerge.report.frames import parse_model

NA = "n/a"
CI_LOW, CI_HIGH = "_ci_low", "_ci_high"
MEAN, STD = "_mean", "_std"
METRIC_NAMES: dict[str, str] = {
    "lambda": "λ",
    "accuracy": "accuracy",
    "worst_group_accuracy": "worst-group accuracy",
    "selection_rate": "selection rate",
    "dpd": "DPD",
    "eod": "EOD",
    "tpr": "TPR",
    "fpr": "FPR",
    "n_groups": "groups in gaps",
    "n": "n",
}


def is_missing(value: Any) -> bool:
    """None, NaN and pandas NA count as missing."""
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def fmt_number(value: Any, digits: int = 3) -> str:
    """A number for display: integers as integers, floats with ``digits`` decimals, missing as n/a."""
    if is_missing(value):
        return NA
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        v = float(value)
        if math.isinf(v):
            return "∞" if v > 0 else "−∞"
        return f"{v:.{digits}f}"
    return str(value)


def fmt_lambda(value: Any) -> str:
    """λ with at most 3 decimals (0.3, 0.125, 1.0), a per-group mapping as ``g=λ`` pairs, missing as n/a."""
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={fmt_lambda(v)}" for k, v in value.items()) or NA
    if is_missing(value):
        return NA
    try:
        text = f"{float(value):.3f}".rstrip("0")
    except (TypeError, ValueError):
        return str(value)
    return text + "0" if text.endswith(".") else text


def fmt_with_ci(value: Any, low: Any, high: Any) -> str:
    """``0.832 [0.815, 0.849]``; the bracket is dropped when the CI is missing."""
    text = fmt_number(value)
    if text == NA or is_missing(low) or is_missing(high):
        return text
    return f"{text} [{fmt_number(low)}, {fmt_number(high)}]"


def column_title(name: str, attributes: Sequence[str] = ()) -> str:
    """A readable header: ``race_dpd`` → ``race DPD``, ``worst_group_accuracy`` → ``worst-group accuracy``."""
    for attr in sorted(attributes, key=len, reverse=True):
        prefix = f"{attr}_"
        if name.startswith(prefix) and name[len(prefix):] in METRIC_NAMES:
            return f"{attr} {METRIC_NAMES[name[len(prefix):]]}"
    return METRIC_NAMES.get(name, name.replace("_", " "))


def format_metric_table(frame: pd.DataFrame, attributes: Sequence[str] = ()) -> pd.DataFrame:
    """Display strings for a table whose metric columns may come with ``_ci_low``/``_ci_high`` and
    ``_mean``/``_std`` companions: each family is merged into one cell (``v [lo, hi]``, ``m ± s``)."""
    columns = list(frame.columns)
    merged = {c for c in columns if c.endswith((CI_LOW, CI_HIGH))
              and c.rsplit("_ci_", 1)[0] in columns}
    merged |= {c for c in columns if c.endswith(STD) and c[: -len(STD)] + MEAN in columns}
    out: dict[str, list[str]] = {}
    for col in columns:
        if col in merged:
            continue
        values = frame[col].tolist()
        if col == "lambda" or col.endswith("_lambda"):
            cells = [fmt_lambda(v) for v in values]
        elif f"{col}{CI_LOW}" in columns and f"{col}{CI_HIGH}" in columns:
            cells = [fmt_with_ci(v, lo, hi) for v, lo, hi in
                     zip(values, frame[f"{col}{CI_LOW}"], frame[f"{col}{CI_HIGH}"], strict=True)]
        elif col.endswith(MEAN) and f"{col[: -len(MEAN)]}{STD}" in columns:
            std = frame[f"{col[: -len(MEAN)]}{STD}"]
            cells = [NA if is_missing(m) else fmt_number(m) + ("" if is_missing(s) else f" ± {fmt_number(s)}")
                     for m, s in zip(values, std, strict=True)]
            col_title = column_title(col[: -len(MEAN)], attributes) + " (mean ± std)"
            out[col_title] = cells
            continue
        else:
            cells = [fmt_cell(v) for v in values]
        out[column_title(col, attributes)] = cells
    return pd.DataFrame(out, index=range(len(frame)))


def fmt_cell(value: Any) -> str:
    """Any scalar for display (numbers formatted, containers joined, missing as n/a)."""
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {fmt_cell(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(fmt_cell(v) for v in value)
    return fmt_number(value)


def fmt_plain(value: Any) -> str:
    """A setting or identifier for display: full precision (``1e-05`` stays readable), lists joined."""
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {fmt_plain(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(fmt_plain(v) for v in value)
    if is_missing(value):
        return NA
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def headline_table(summary: Mapping[str, Any], attributes: Sequence[str]) -> pd.DataFrame:
    """The headline test table; a model without a single λ shows its per-group λ from ``selected``."""
    rows = [dict(r) for r in summary.get("headline") or []]
    selected = summary.get("selected") or {}
    for row in rows:
        entry = selected.get(str(row.get("model")))
        if is_missing(row.get("lambda")) and isinstance(entry, Mapping) and entry.get("lambdas"):
            row["lambda"] = dict(entry["lambdas"])
    return format_metric_table(pd.DataFrame(rows), attributes)


def group_size_table(sizes: Mapping[str, pd.Series]) -> pd.DataFrame:
    """Group sizes per split (columns ``n (val)``, ``n (test)``) indexed by attribute and group."""
    present = {split: s for split, s in sizes.items() if len(s)}
    if not present:
        return pd.DataFrame()
    frame = pd.concat({f"n ({split})": s for split, s in present.items()}, axis=1)
    frame.index = frame.index.set_names(["attribute", "group"])
    frame = frame.reset_index()
    for col in frame.columns[2:]:
        frame[col] = [fmt_number(int(v)) if not is_missing(v) else NA for v in frame[col]]
    return frame


def strategy_table(
    strategies: pd.DataFrame, summary: Mapping[str, Any], attributes: Sequence[str]
) -> pd.DataFrame:
    """The strategy comparison table, with the headline's reference rows (FFT, LoRA, ThresholdOptimizer,
    both decisions) appended when the strategies frame does not already hold them."""
    frame = strategies.copy()
    known = set(frame["strategy"].astype(str)) if "strategy" in frame.columns else set()
    references = []
    for row in summary.get("headline") or []:
        label = parse_model(str(row.get("model")))
        if label.family in {"fft", "lora", "threshold_optimizer"} and not known & {label.family, label.label}:
            ref = {k: v for k, v in row.items() if k in frame.columns}
            ref["strategy"] = f"{label.family} (reference)"
            ref["decision"] = label.decision
            references.append(ref)
    if references:
        frame = pd.concat([frame, pd.DataFrame(references)], ignore_index=True)
    first = [c for c in ("strategy", "decision", "lambda") if c in frame.columns]
    frame = frame[first + [c for c in frame.columns if c not in first]]
    return format_metric_table(frame, attributes)


def records_table(rows: Sequence[Mapping[str, Any]], attributes: Sequence[str] = ()) -> pd.DataFrame:
    """A list of dict rows (multi-seed statistics, selections) as a display table."""
    return format_metric_table(pd.DataFrame([dict(r) for r in rows]), attributes)

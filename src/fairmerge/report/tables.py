"""Turn the study's numbers into display tables: values with CIs, "n/a" for undefined, readable headers.

Cells become strings here; HTML escaping happens once, when the table is rendered.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from fairmerge.fairness import registry
from fairmerge.fairness.registry import split_wide_column, wide_column
from fairmerge.report.frames import parse_model
from fairmerge.study.summary import SelectedEntry

NA = "n/a"
CI_LOW, CI_HIGH = "_ci_low", "_ci_high"
MEAN, STD = "_mean", "_std"
# identifying and overall columns, shown first in every metrics table
LEAD_COLUMNS: tuple[str, ...] = (
    "strategy",
    "head",
    "convention",
    "degenerate",
    "decision",
    "model",
    "lambda",
    "accuracy",
    "worst_group_accuracy",
)
# names of the report's own columns; metrics' display names are declared in fairmerge.fairness.registry
METRIC_NAMES: dict[str, str] = {
    "lambda": "λ",
    "dpd_noise_floor": "DPD noise floor",
    "eod_noise_floor": "EOD noise floor",
    "p_holm": "p (Holm)",
    "n_seeds": "seeds",
    "p_value": "p-value",
    "delta": "Δ",
    "fft": "FFT",
    "lora": "LoRA",
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


def fmt_significant(value: Any, digits: int = 3) -> str:
    """A number of any scale with ``digits`` significant digits (Lipschitz constants, norms)."""
    if is_missing(value):
        return NA
    try:
        return f"{float(value):.{digits}g}"
    except (TypeError, ValueError):
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


def fmt_estimate(value: Any, *, std: Any = None, low: Any = None, high: Any = None) -> str:
    """``0.832 ± 0.010 [0.815, 0.849]``; a missing spread or CI is dropped, a missing value is n/a."""
    text = fmt_number(value)
    if text == NA:
        return text
    if not is_missing(std):
        text += f" ± {fmt_number(std)}"
    if not (is_missing(low) or is_missing(high)):
        text += f" [{fmt_number(low)}, {fmt_number(high)}]"
    return text


def _title(metric: str) -> str | None:
    """A metric's display name: the registry's declaration, else the report's own names."""
    return registry.display_name(metric) or METRIC_NAMES.get(metric)


def column_title(name: str, attributes: Sequence[str] = ()) -> str:
    """A readable header: ``race_dpd`` → ``race DPD``, ``worst_group_accuracy`` → ``worst-group accuracy``."""
    parsed = split_wide_column(name, attributes)
    if parsed is not None and _title(parsed[1]) is not None:
        return f"{parsed[0]} {_title(parsed[1])}"
    return _title(name) or name.replace("_", " ")


def _is_count(column: str) -> bool:
    return column in {"n", "n_seeds", "n_groups"} or column.endswith(("_n_groups", "_n"))


def fmt_count(value: Any) -> str:
    """A count stored as a float (``1924.0``) shown as ``1924``; missing as n/a."""
    if is_missing(value):
        return NA
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return str(int(number)) if number.is_integer() else fmt_number(number)


def metric_title(name: str, attributes: Sequence[str] = ()) -> str:
    """A metric name from a long table: ``race_dpd_minus_fft`` → ``race DPD − FFT``."""
    head, sep, tail = str(name).partition("_minus_")
    title = column_title(head, attributes)
    return f"{title} − {_title(tail) or tail.upper()}" if sep else title


def _companions(column: str, columns: Sequence[str]) -> tuple[str | None, str | None, str | None]:
    """The (std, ci_low, ci_high) columns that belong to ``column``, if any.

    Wide tables name them after the metric (``race_dpd_ci_low``, ``accuracy_std`` next to
    ``accuracy_mean``); long tables (one ``metric`` column) have bare ``std``/``ci_low``/``ci_high``
    that belong to their single value column (``mean``, ``value`` or ``delta``).
    """
    owner = next((c for c in ("mean", "value", "delta") if c in columns), None)
    bare = column == owner
    base = column[: -len(MEAN)] if column.endswith(MEAN) else None
    std = f"{base}{STD}" if base and f"{base}{STD}" in columns else None
    if std is None and bare and "std" in columns:
        std = "std"
    if f"{column}{CI_LOW}" in columns and f"{column}{CI_HIGH}" in columns:
        return std, f"{column}{CI_LOW}", f"{column}{CI_HIGH}"
    if bare and "ci_low" in columns and "ci_high" in columns:
        return std, "ci_low", "ci_high"
    return std, None, None


def order_columns(columns: Sequence[str], attributes: Sequence[str]) -> list[str]:
    """Identifiers, λ, accuracy and worst-group accuracy first, then each attribute's gaps together."""
    metrics = [*_headline_per_attribute()[:-1], "worst_group_accuracy", "n_groups"]
    per_attribute = [wide_column(a, m) for a in attributes for m in metrics]
    first = [c for c in [*LEAD_COLUMNS, *per_attribute] if c in columns]
    return first + [c for c in columns if c not in first]


def format_metric_table(frame: pd.DataFrame, attributes: Sequence[str] = ()) -> pd.DataFrame:
    """Display strings for a metrics table, wide (``race_dpd`` + ``race_dpd_ci_low``…) or long
    (``metric, mean, std, ci_low, ci_high``): each value and its spread / CI share one cell
    (``m ± s [lo, hi]``); counts are integers; missing values are n/a."""
    columns = order_columns([str(c) for c in frame.columns], attributes)
    frame = frame.set_axis([str(c) for c in frame.columns], axis=1)
    owned = {c for col in columns for c in _companions(col, columns) if c}
    out: dict[str, list[str]] = {}
    for col in columns:
        if col in owned:
            continue
        std, low, high = _companions(col, columns)
        values = frame[col].tolist()
        title = column_title(col[: -len(MEAN)] if col.endswith(MEAN) else col, attributes)
        if col == "lambda" or col.endswith("_lambda"):
            cells = [fmt_lambda(v) for v in values]
        elif col == "metric":
            cells = [metric_title(v, attributes) for v in values]
        elif _is_count(col):
            cells = [fmt_count(v) for v in values]
        elif std or low:
            spread = frame[std] if std else [None] * len(values)
            lows = frame[low] if low and high else [None] * len(values)
            highs = frame[high] if low and high else [None] * len(values)
            cells = [
                fmt_estimate(v, std=sd, low=lo, high=hi)
                for v, sd, lo, hi in zip(values, spread, lows, highs, strict=True)
            ]
            if std:
                title = "mean ± std" if col == "mean" else f"{title} (mean ± std)"
        else:
            cells = [fmt_cell(v) for v in values]
        out[title] = cells
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


def select_columns(
    frame: pd.DataFrame, attributes: Sequence[str], per_attribute: Sequence[str]
) -> pd.DataFrame:
    """Keep the identifying and overall columns and ``{attribute}_{metric}`` for ``per_attribute``,
    each with its CI companions: the report's tables stay readable, the CSV/JSON keep everything."""
    keep = [*LEAD_COLUMNS, *(wide_column(a, m) for a in attributes for m in per_attribute)]
    wanted = {c for k in keep for c in (k, f"{k}{CI_LOW}", f"{k}{CI_HIGH}")}
    return frame[[c for c in frame.columns if c in wanted]]


def _headline_per_attribute() -> list[str]:
    """Each headline gap with its noise floor (where one is computed), then the groups in the gaps."""
    gaps = [g for g in registry.headline_gaps() if g != "worst_group_accuracy"]
    return [*(m for g in gaps for m in (g, f"{g}_noise_floor")), "n_groups"]


def display_headline(
    headline: Sequence[Mapping[str, Any]], selected: Mapping[str, SelectedEntry], attributes: Sequence[str]
) -> pd.DataFrame:
    """The headline test table: model, λ, accuracy, worst-group accuracy, DPD / EOD and the number of
    groups in the gaps per attribute. A model without a single λ shows its per-group λ from ``selected``."""
    rows = [dict(r) for r in headline]
    for row in rows:
        entry = selected.get(str(row.get("model")))
        if is_missing(row.get("lambda")) and entry is not None and entry.lambdas:
            row["lambda"] = dict(entry.lambdas)
    frame = select_columns(pd.DataFrame(rows), attributes, _headline_per_attribute())
    return format_metric_table(frame, attributes)


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


def strategy_display(
    strategies: pd.DataFrame,
    headline: Sequence[Mapping[str, Any]],
    attributes: Sequence[str],
) -> pd.DataFrame:
    """The strategy comparison table, with the headline's reference rows (FFT, LoRA, the baseline
    families such as ``fft[group_dro]``, ThresholdOptimizer; both decisions) appended when the
    strategies frame does not already hold them. Each reference is named as itself (its variant).

    ``headline``: ``StudySummary.headline``'s rows."""
    frame = strategies.copy()
    known = set(frame["strategy"].astype(str)) if "strategy" in frame.columns else set()
    references = []
    for row in headline:
        label = parse_model(str(row.get("model")))
        if label.family in {"fft", "lora", "threshold_optimizer"} and not known & {
            label.variant,
            label.label,
        }:
            ref = {k: v for k, v in row.items() if k in frame.columns}
            ref["strategy"] = f"{label.variant} (reference)"  # fft[balanced] is not a second fft
            ref["decision"] = label.decision
            references.append(ref)
    if references:
        frame = pd.concat([frame, pd.DataFrame(references)], ignore_index=True)
    return format_metric_table(select_columns(frame, attributes, ("dpd", "eod")), attributes)


def records_table(rows: Sequence[Mapping[str, Any]], attributes: Sequence[str] = ()) -> pd.DataFrame:
    """A list of dict rows (selections, wide multi-seed rows) as a display table."""
    return format_metric_table(pd.DataFrame([dict(r) for r in rows]), attributes)


def multi_seed_tables(rows: Sequence[Mapping[str, Any]], attributes: Sequence[str]) -> list[pd.DataFrame]:
    """The multi-seed rows as display tables.

    Long rows (``model, metric, mean, std`` and, for paired tests, ``ci_low, ci_high, p_value``) give
    two tables: mean ± std per model of the headline metrics, and the paired tests. Wide rows are
    shown as they are.
    """
    frame = pd.DataFrame([dict(r) for r in rows])
    if not {"model", "metric", "mean"} <= set(frame.columns):
        return [format_metric_table(frame, attributes)]
    is_test = pd.Series(False, index=frame.index)
    for column in ("p_value", "ci_low"):
        if column in frame.columns:
            is_test |= frame[column].notna()
    is_test |= frame["metric"].astype(str).str.contains("_minus_")
    tables = []
    spread = frame[~is_test]
    if len(spread):
        metrics = [
            m
            for m in (
                "lambda",
                "accuracy",
                "worst_group_accuracy",
                *(wide_column(a, g) for a in attributes for g in ("dpd", "eod")),
            )
            if m in set(spread["metric"])
        ]
        std = spread["std"] if "std" in spread.columns else pd.Series(math.nan, index=spread.index)
        cells = spread.assign(cell=[fmt_estimate(m, std=s) for m, s in zip(spread["mean"], std, strict=True)])
        wide = cells.pivot_table(index="model", columns="metric", values="cell", aggfunc="first", sort=False)
        wide = wide.reindex(columns=metrics).fillna(NA)
        wide.columns = [f"{column_title(m, attributes)} (mean ± std)" for m in metrics]
        tables.append(wide.reset_index())
    tests = frame[is_test]
    if len(tests):
        tables.append(
            format_metric_table(
                tests.drop(columns=["std"], errors="ignore").rename(columns={"mean": "delta"}), attributes
            )
        )
    return tables


def comparison_display(comparisons: Sequence[Mapping[str, Any]], outcomes: Sequence[str]) -> pd.DataFrame:
    """Every method-vs-FFT comparison: Δ with its interval, raw and Holm p-values, seeds, outcome."""
    rows = []
    for row, outcome in zip(comparisons, outcomes, strict=True):
        rows.append(
            {
                "model": str(row.get("model")),
                "attribute": str(row.get("attribute")),
                "metric": _title(str(row.get("metric"))) or str(row.get("metric")),
                "Δ vs FFT [95% CI]": fmt_estimate(
                    row.get("delta"), low=row.get("ci_low"), high=row.get("ci_high")
                ),
                "p": fmt_number(row.get("p_value")),
                "p (Holm)": "primary" if row.get("primary") else fmt_number(row.get("p_holm")),
                "seeds": fmt_count(row.get("n_seeds")),
                "outcome": outcome,
            }
        )
    return pd.DataFrame(rows)

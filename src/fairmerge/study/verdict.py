"""A short written verdict, generated from the numbers (never hand-written into the report).

:func:`comparison_verdict` is built from intervals and the declared family (the ``role`` column
of :func:`fairmerge.fairness.comparison_table`). A primary or secondary comparison is **lower** or
**higher** than the reference when its (Holm-adjusted, for secondaries) test rejects;
**not significant after Holm** when its interval excludes 0 but the adjusted test does not reject
(never called "no detectable difference"); **no detectable difference** only when its interval
includes 0, quoted with the MDE of the test used. Every other comparison is **exploratory**: its
interval is reported, no significance is claimed. Undefined comparisons say so. DPD is quoted next
to the labels' own DPD on the same posts. It never headlines a point estimate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import pandas as pd

Outcome = Literal[
    "lower", "higher", "not significant after Holm", "no detectable difference", "exploratory", "undefined"
]
_NAMES = {"accuracy": "accuracy", "dpd": "DPD", "eod": "EOD"}


def _fmt(value: Any) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def classify(row: Mapping[Any, Any], *, alpha: float = 0.05) -> Outcome:
    """Outcome of one comparison row (``ci_low, ci_high, p_holm``, ``role``) at family-wise level ``alpha``.

    Without a ``role`` the row is the primary when ``primary`` is true, else a secondary.
    """
    role = role_of(row)
    if _missing(row.get("ci_low")) or _missing(row.get("ci_high")):
        return "undefined"
    if role == "exploratory":
        return "exploratory"
    if _missing(row.get("p_holm")):
        return "undefined"
    low, high, p = (float(row[k]) for k in ("ci_low", "ci_high", "p_holm"))
    excludes_zero = high < 0 or low > 0
    if p < alpha and excludes_zero:
        return "lower" if high < 0 else "higher"
    return "not significant after Holm" if excludes_zero else "no detectable difference"


def role_of(row: Mapping[Any, Any]) -> str:
    """``primary``, ``secondary`` or ``exploratory``; without a ``role``, from the ``primary`` flag."""
    return str(row.get("role") or ("primary" if bool(row.get("primary")) else "secondary"))


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def verdict_table(comparisons: pd.DataFrame, *, alpha: float = 0.05) -> pd.DataFrame:
    """``comparisons`` with an ``outcome`` column (see :func:`classify`)."""
    frame = comparisons.copy()
    frame["outcome"] = [classify(row, alpha=alpha) for row in frame.to_dict(orient="records")]
    return frame


def comparison_verdict(
    comparisons: pd.DataFrame,
    *,
    accuracy_margin: float,
    mde: Mapping[str, Mapping[str, float | str]],
    reference: str = "FFT",
    alpha: float = 0.05,
    confidence: float = 0.95,
    unedited: Mapping[str, tuple[str, Sequence[int]]] | None = None,
    n_seeds: int = 1,
) -> str:
    """The written verdict: a headline of which models are detectably fairer, then every comparison.

    ``comparisons``: rows of :func:`fairmerge.fairness.comparison_table` (``model, attribute, metric,
    ci_low, ci_high, p_value, p_holm, primary``). ``accuracy_margin`` is the δ the selection rule used:
    a model keeps accuracy when the lower end of its Δaccuracy interval is at least −δ. ``mde`` maps
    an attribute to ``{"dpd": ..., "eod": ...}`` (:func:`fairmerge.fairness.minimum_detectable_difference`);
    a row's own ``mde`` column (the comparison's measured MDE), when present, is quoted instead.
    ``unedited`` maps a model to the model its selected point really is (θ_base for a merge at λ = 0)
    and the seeds where it is, out of ``n_seeds``: the verdict says so before any comparison.
    """
    table = verdict_table(comparisons, alpha=alpha)
    level = f"{confidence:.0%}"
    fairer: list[str] = []
    sentences: list[str] = []
    for model, rows in table.groupby("model", sort=False):
        parts = []
        keeps = _keeps_accuracy(rows, accuracy_margin)
        for row in rows.to_dict(orient="records"):
            parts.append(_sentence(row, reference, level, mde, accuracy_margin))
            if row["metric"] != "accuracy" and row["outcome"] == "lower" and keeps:
                fairer.append(f"{model} ({row['attribute']} {_NAMES[row['metric']]})")
        sentences.append(f"{model} vs {reference}: " + "; ".join(parts) + ".")
    head = (
        f"Detectably fairer than {reference} on test while keeping accuracy within {accuracy_margin:.2f}: "
        + ", ".join(fairer)
        + "."
        if fairer
        else f"No model is detectably fairer than {reference} on test while keeping accuracy within "
        f"{accuracy_margin:.2f}."
    )
    tally = _tally(table, alpha)
    return head + tally + _unedited_words(unedited or {}, n_seeds, reference) + " " + " ".join(sentences)


def _tally(table: pd.DataFrame, alpha: float) -> str:
    """How many comparisons of each role there are, the primary named, and how many of each outcome."""
    counts = table["outcome"].value_counts()
    primary = table[table["primary"].astype(bool)] if "primary" in table else table.iloc[:0]
    secondaries = int((table["role"] == "secondary").sum()) if "role" in table else len(table) - len(primary)
    return (
        f" Of {len(table)} comparisons (primary"
        + (
            f": {primary.iloc[0]['model']} {primary.iloc[0]['attribute']} "
            f"{_NAMES.get(str(primary.iloc[0]['metric']), primary.iloc[0]['metric'])}, tested alone at "
            f"α = {alpha:g}"
            if len(primary)
            else ": none declared"
        )
        + f"; {secondaries} secondary, Holm-corrected at α = {alpha:g}; the rest exploratory): "
        f"{int(counts.get('lower', 0))} lower, {int(counts.get('higher', 0))} higher, "
        f"{int(counts.get('not significant after Holm', 0))} with an interval excluding 0 but not "
        f"significant after Holm, {int(counts.get('no detectable difference', 0))} with no detectable "
        f"difference, {int(counts.get('exploratory', 0))} exploratory, "
        f"{int(counts.get('undefined', 0))} undefined."
    )


def _unedited_words(unedited: Mapping[str, tuple[str, Sequence[int]]], n_seeds: int, reference: str) -> str:
    """A sentence per model whose selected point edits nothing, so no reader takes it for an edit."""
    words = []
    for model, (what, seeds) in unedited.items():
        where = f"on seed {seeds[0]}" if len(seeds) == 1 else "on seeds " + ", ".join(map(str, seeds))
        words.append(
            f" {model}: {where} (of {n_seeds}) validation selected λ = 0, which is {what} itself, not an "
            f"edit, so there its comparison with {reference} measures {what}."
        )
    return "".join(words)


def _keeps_accuracy(rows: pd.DataFrame, margin: float) -> bool:
    accuracy = rows[rows["metric"] == "accuracy"]
    if accuracy.empty or pd.isna(accuracy["ci_low"].iloc[0]):
        return False
    return bool(float(accuracy["ci_low"].iloc[0]) >= -margin)


def _sentence(
    row: Mapping[Any, Any],
    reference: str,
    level: str,
    mde: Mapping[str, Mapping[str, float | str]],
    margin: float,
) -> str:
    metric = str(row["metric"])
    name = (
        _NAMES.get(metric, metric)
        if metric == "accuracy"
        else f"{row['attribute']} {_NAMES.get(metric, metric)}"
    )
    outcome = row["outcome"]
    if outcome == "undefined":
        return f"{name} undefined (too few qualifying groups or posts; no test)"
    p_name = "p (primary)" if bool(row.get("primary")) else "Holm p"
    bounds = f"{level} CI of the difference [{_fmt(row['ci_low'])}, {_fmt(row['ci_high'])}]"
    interval = f"{bounds}, {p_name} = {_fmt(row['p_holm'])}"
    if outcome == "lower":
        text = f"{name} lower than {reference} ({interval})"
    elif outcome == "higher":
        text = f"{name} higher than {reference} ({interval})"
    elif outcome == "exploratory":
        side = (
            "below 0"
            if float(row["ci_high"]) < 0
            else "above 0"
            if float(row["ci_low"]) > 0
            else "includes 0"
        )
        text = f"{name} (exploratory, no test claimed): {bounds}, {side}"
    elif outcome == "not significant after Holm":
        side = "below" if float(row["ci_high"]) < 0 else "above"
        text = (
            f"{name}: the unadjusted {level} interval lies {side} 0 ({interval}), but the difference is not "
            f"significant after Holm's correction for the secondary comparisons: suggestive, not a finding"
        )
    else:
        text = f"{name}: no detectable difference from {reference} (the interval includes 0: {interval}"
        text += _detectable(row, metric, mde) + ")"
    return text + _caveats(row, metric, margin)


def _detectable(row: Mapping[Any, Any], metric: str, mde: Mapping[str, Mapping[str, float | str]]) -> str:
    """What size of difference the comparison could have detected (its own MDE, else the attribute's)."""
    smallest = row.get("mde")
    if smallest is None or pd.isna(smallest):
        smallest = mde.get(str(row["attribute"]), {}).get(metric)
    what = f"Δ{_NAMES.get(metric, metric)}"
    if isinstance(smallest, str):  # "out of reach": no simulated effect is detected
        return f"; no {what} is detectable here with 80 % power"
    if smallest is None or math.isnan(smallest):
        return ""
    if smallest < 1:
        return (
            f"; the test used detects a |{what}| of {smallest:.2f} with 80 % power; "
            "smaller ones can be missed"
        )
    return f"; no {what} is detectable here with 80 % power"


def _caveats(row: Mapping[Any, Any], metric: str, margin: float) -> str:
    """The labels' own DPD next to a DPD difference; whether an accuracy difference stays within δ."""
    text = ""
    labels_gap = row.get("labels_dpd")
    if metric == "dpd" and not _missing(labels_gap):
        text += (
            f" [DPD of the true labels on the same posts: {float(row['labels_dpd']):.3f}; a perfect "
            "classifier has this DPD, so a DPD difference measures distance from the labels' own gap, "
            "not bias alone]"
        )
    if metric == "accuracy" and not pd.isna(row["ci_low"]):
        text += (
            f", within δ = {margin:.2f}"
            if float(row["ci_low"]) >= -margin
            else f", a loss larger than δ = {margin:.2f} is not ruled out"
        )
    return text


Mark = Literal["lower", "higher", "no detectable difference", "undefined"]


def interval_mark(row: Mapping[Any, Any]) -> Mark:
    """Where a comparison's interval lies: below 0, above 0, across 0, or undefined.

    The table marks every row this way; whether the mark is a claim depends on the row's role
    (only a primary, or a secondary Holm rejects, is one: :func:`classify`).
    """
    if _missing(row.get("ci_low")) or _missing(row.get("ci_high")):
        return "undefined"
    if float(row["ci_high"]) < 0:
        return "lower"
    return "higher" if float(row["ci_low"]) > 0 else "no detectable difference"


def _name(row: Mapping[Any, Any]) -> str:
    metric = _NAMES.get(str(row["metric"]), str(row["metric"]))
    return metric if row["metric"] == "accuracy" else f"{row['attribute']} {metric}"


def _estimate(row: Mapping[Any, Any]) -> str:
    """``Δ = -0.050, 95% CI [-0.080, -0.020]``."""
    return f"Δ = {float(row['delta']):+.3f}, 95% CI [{_fmt(row['ci_low'])}, {_fmt(row['ci_high'])}]"


def headline_text(summary: Mapping[str, Any], *, reference: str = "FFT", alpha: float = 0.05) -> str:
    """At most three sentences: the primary's answer, the design's power for it, and whether any edit
    is both within δ of the reference's accuracy and detectably fairer (``summary.json`` content)."""
    rows = list(summary.get("comparisons") or [])
    delta = float((summary.get("selection") or {}).get("delta", 0.0))
    primary = next((r for r in rows if role_of(r) == "primary"), None)
    sentences = (
        _primary_sentence(primary, reference, alpha),
        _power_sentence(summary.get("power"), primary),
        _fairer_sentence(rows, summary.get("selected") or {}, delta, reference, alpha),
    )
    return " ".join(sentences)


def _primary_sentence(row: Mapping[str, Any] | None, reference: str, alpha: float) -> str:
    if row is None:
        return "No primary comparison was declared."
    what = f"Primary comparison, {row['model']} vs {reference} on {_name(row)}:"
    outcome = classify(row, alpha=alpha)
    if outcome == "undefined":
        return f"{what} undefined ({row.get('reason') or 'too few qualifying groups or posts'}); no test."
    if outcome not in ("lower", "higher"):  # a primary is tested alone: never "not significant after Holm"
        outcome = "no detectable difference"
    return f"{what} {outcome} ({_estimate(row)}, p = {_fmt(row.get('p_holm'))})."


def _power_sentence(power: Any, primary: Mapping[str, Any] | None) -> str:
    if primary is None or not isinstance(power, Mapping) or _missing(power.get("power")):
        return "The design's power for it was not simulated."
    seeds = power.get("n_seeds")
    with_seeds = f" with {seeds} seed{'s' if seeds != 1 else ''}" if seeds else ""
    return (
        f"The design{with_seeds} detects a true |Δ| of {abs(float(power['effect'])):.2f} there with power "
        f"{float(power['power']):.0%} (simulated)."
    )


def _fairer_sentence(
    rows: Sequence[Mapping[str, Any]],
    selected: Mapping[str, Any],
    margin: float,
    reference: str,
    alpha: float,
) -> str:
    """Edits (not unedited λ = 0 points) whose declared gap test rejects downwards, accuracy within δ."""
    unedited = {m for m, entry in selected.items() if isinstance(entry, Mapping) and entry.get("unedited")}
    by_model: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_model.setdefault(str(row["model"]), []).append(row)
    fairer = []
    for model, model_rows in by_model.items():
        if model in unedited or not _keeps_accuracy(pd.DataFrame(model_rows), margin):
            continue
        fairer += [
            f"{model} on {_name(r)} ({_estimate(r)})"
            for r in model_rows
            if r["metric"] != "accuracy" and classify(r, alpha=alpha) == "lower"
        ]
    if fairer:
        named = "; ".join(fairer)
        return f"Within δ = {margin:.2f} of {reference}'s accuracy and detectably fairer: {named}."
    return f"No edit is both within δ = {margin:.2f} of {reference}'s accuracy and detectably fairer."

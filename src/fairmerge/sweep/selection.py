"""Choose a merge coefficient from validation metrics: selection rules and Pareto fronts.

Everything here works on a *points* table, one row per candidate (a λ of a sweep, or a baseline),
with columns ``lambda``, ``accuracy``, ``worst_group_accuracy`` and per attribute ``<attr>_dpd``,
``<attr>_eod``, ``<attr>_worst_group_accuracy`` (plus ``model`` when the metrics had it), built
from the tidy metric frames by `points_from_metrics`. Undefined (NaN) metrics never win, and
ties go to the smaller edit (smaller |λ|, then smaller λ, then the earlier row), so a selection is
a deterministic function of the validation table.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fairmerge.errors import ConfigError, DataError
from fairmerge.fairness import OVERALL, headline
from fairmerge.fairness.registry import attributes_with, wide_column

Rule = str
"""A selection rule's name: a built-in one or any added with :func:`register_rule` (:func:`rule_names`)."""
GAP_METRICS = ("dpd", "eod")
_TIDY_COLUMNS = ("attribute", "group", "metric", "value")


@dataclass(frozen=True)
class Selection:
    """The point a rule chose.

    ``index`` is the row label in the points table, ``lam`` its λ, ``value`` the rule's objective
    there (accuracy, max gap or worst-group accuracy). ``feasible`` is False when no point met the
    rule's constraint and the least-violating one was taken instead; ``reason`` says why in words.
    """

    rule: str
    index: Hashable
    lam: float
    value: float
    feasible: bool
    reason: str


def point_metrics(tidy: pd.DataFrame) -> dict[str, float]:
    """Headline metrics of ONE evaluated model from its tidy frame (``group == 'all'`` rows).

    ``worst_group_accuracy`` is the minimum over attributes of each attribute's worst-group
    accuracy (attributes where it is undefined are skipped; NaN if undefined everywhere).
    """
    _check_tidy(tidy)
    rows = tidy[tidy["group"] == OVERALL]
    duplicated = rows.duplicated(["attribute", "metric"], keep=False)
    if duplicated.any():
        dup = rows[duplicated].iloc[0]
        raise DataError(
            f"metrics hold several rows for attribute {dup['attribute']!r}, metric {dup['metric']!r}: "
            "pass one model, one split, one λ at a time"
        )
    try:
        values = headline(rows)
    except KeyError as exc:
        raise DataError(f"metrics lack the row {exc.args[0]} (attribute, group, metric)") from exc
    attributes = [a for a in dict.fromkeys(rows["attribute"]) if a != OVERALL]
    worst = [values[wide_column(a, "worst_group_accuracy")] for a in attributes]
    worst = [v for v in worst if not np.isnan(v)]
    return {
        "accuracy": values["accuracy"],
        "worst_group_accuracy": min(worst) if worst else float("nan"),
        **{k: v for k, v in values.items() if k != "accuracy"},
    }


def points_from_metrics(tidy: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, λ) of a tidy metrics frame that has a ``lambda`` column.

    The frame must hold one split only (select on validation: filter ``split == 'val'`` first).
    Rows keep the order in which the points first appear.
    """
    _check_tidy(tidy)
    if "lambda" not in tidy.columns:
        raise DataError("metrics have no 'lambda' column; add one per evaluated point (sweep() does)")
    if "split" in tidy.columns and tidy["split"].nunique(dropna=False) > 1:
        raise DataError(f"metrics hold several splits {sorted(tidy['split'].unique())}; filter to one first")
    keys = [c for c in ("model", "lambda") if c in tidy.columns]
    records = []
    for key, rows in tidy.groupby(keys, sort=False, dropna=False):
        key_values = key if isinstance(key, tuple) else (key,)
        records.append({**dict(zip(keys, key_values, strict=True)), **point_metrics(rows)})
    if not records:
        raise DataError("metrics frame is empty")
    points = pd.DataFrame.from_records(records)
    points["lambda"] = points["lambda"].astype(float)
    return points


def fairness_attributes(points: pd.DataFrame) -> list[str]:
    """Attributes that have both ``<attr>_dpd`` and ``<attr>_eod`` columns, sorted."""
    return attributes_with([str(c) for c in points.columns], GAP_METRICS)


def max_gap(points: pd.DataFrame, attributes: Sequence[str] | None = None) -> pd.Series:
    """max over attributes of max(DPD, EOD) per point; NaN when any of them is undefined."""
    columns = [wide_column(a, m) for a in _attributes(points, attributes) for m in GAP_METRICS]
    return points[columns].max(axis=1, skipna=False)


def constraint_violation(
    points: pd.DataFrame, epsilon: float, attributes: Sequence[str] | None = None
) -> pd.Series:
    """max(0, DPD − ε, EOD − ε) over attributes per point; +inf when a gap is undefined."""
    return (max_gap(points, attributes) - epsilon).clip(lower=0.0).fillna(np.inf)


@dataclass(frozen=True)
class RuleInputs:
    """What a rule may read besides the points: the knobs of the ``selection`` config section."""

    epsilon: float = 0.1
    delta: float = 0.02
    reference_accuracy: float | None = None
    attributes: Sequence[str] | None = None
    penalty: float = 10.0


@dataclass(frozen=True)
class SelectionRule:
    """A way to choose a point on validation, declared once: ``select`` picks a row (ties to the
    smaller edit, :func:`_choose`), ``score`` turns the rule into one number per point (higher is
    better) for searches that need a scalar objective (per-group coefficients)."""

    name: str
    select: Callable[[pd.DataFrame, RuleInputs], Selection]
    score: Callable[[pd.DataFrame, RuleInputs], pd.Series]
    needs_gaps: bool = False
    """True when the rule reads DPD / EOD (it cannot apply where no attribute has a defined gap)."""


_RULES: dict[str, SelectionRule] = {}


def register_rule(rule: SelectionRule) -> None:
    """Declare a selection rule; ``selection.rule`` and the sensitivity table then know it."""
    if rule.name in _RULES:
        raise ValueError(f"selection rule {rule.name!r} is already registered")
    _RULES[rule.name] = rule


def unregister_rule(name: str) -> None:
    """Remove a registered rule (tests, experiments)."""
    _RULES.pop(name, None)


def rule_names() -> tuple[str, ...]:
    """Every registered rule, in registration order."""
    return tuple(_RULES)


def get_rule(name: str) -> SelectionRule:
    """The registered rule called ``name`` (a one-line error naming the known ones otherwise)."""
    if name not in _RULES:
        raise ConfigError(f"unknown selection rule {name!r}; expected one of {list(_RULES)}")
    return _RULES[name]


def rule_scores(
    points: pd.DataFrame,
    rule: str,
    *,
    epsilon: float = 0.1,
    delta: float = 0.02,
    reference_accuracy: float | None = None,
    penalty: float = 10.0,
    attributes: Sequence[str] | None = None,
) -> pd.Series:
    """A rule turned into one score per point (higher is better, −inf when undefined)."""
    inputs = RuleInputs(epsilon, delta, reference_accuracy, attributes, penalty)
    return get_rule(rule).score(points, inputs).astype(float).fillna(-np.inf)


def select_point(
    points: pd.DataFrame,
    rule: str,
    *,
    epsilon: float = 0.1,
    delta: float = 0.02,
    reference_accuracy: float | None = None,
    attributes: Sequence[str] | None = None,
) -> Selection:
    """Pick one point of ``points`` (validation metrics) by ``rule`` (see each rule's function)."""
    chosen = get_rule(rule)
    if points.empty:
        raise DataError("no points to select from")
    for column in ("lambda", "accuracy", "worst_group_accuracy"):
        if column not in points.columns:
            raise DataError(f"points table has no {column!r} column (build it with points_from_metrics)")
    return chosen.select(points, RuleInputs(epsilon, delta, reference_accuracy, attributes))


def _select_accuracy(points: pd.DataFrame, inputs: RuleInputs) -> Selection:
    """Max validation accuracy."""
    accuracy = points["accuracy"].to_numpy(dtype=float)
    return _choose(points, "accuracy", accuracy, None, "max validation accuracy")


def _select_worst_group(points: pd.DataFrame, inputs: RuleInputs) -> Selection:
    """Max worst-group accuracy (the minimum over attributes)."""
    wga = points["worst_group_accuracy"].to_numpy(dtype=float)
    return _choose(points, "worst_group", wga, None, "max validation worst-group accuracy")


def _select_constrained(points: pd.DataFrame, inputs: RuleInputs) -> Selection:
    """Max accuracy s.t. DPD ≤ ε and EOD ≤ ε for every attribute; if no point qualifies, the point
    with the smallest violation (then highest accuracy), flagged infeasible."""
    attrs, epsilon = _attributes(points, inputs.attributes), inputs.epsilon
    accuracy = points["accuracy"].to_numpy(dtype=float)
    violation = constraint_violation(points, epsilon, attrs).to_numpy(dtype=float)
    feasible = violation == 0
    if feasible.any():
        return _choose(points, "constrained", accuracy, feasible, f"max accuracy with DPD, EOD ≤ {epsilon:g}")
    pick = _order(points, [violation, -np.nan_to_num(accuracy, nan=-np.inf)])
    return _selection(
        points,
        "constrained",
        pick,
        accuracy[pick],
        False,
        f"no point has DPD and EOD ≤ {epsilon:g} for {attrs}; "
        f"took the smallest violation ({violation[pick]:.4g} above ε)",
    )


def _select_fairest(points: pd.DataFrame, inputs: RuleInputs) -> Selection:
    """Min over points of max(DPD, EOD) over attributes s.t. accuracy ≥ reference − δ (FFT's
    validation accuracy); if none qualifies, the most accurate point, flagged infeasible."""
    attrs = _attributes(points, inputs.attributes)
    accuracy = points["accuracy"].to_numpy(dtype=float)
    floor = _reference(inputs.reference_accuracy) - inputs.delta
    gap = max_gap(points, attrs).to_numpy(dtype=float)
    feasible = accuracy >= floor
    if feasible.any():
        reason = f"min max(DPD, EOD) with accuracy ≥ {floor:.4g}"
        return _choose(points, "fairest", -gap, feasible, reason, sign=-1.0)
    pick = _order(points, [-np.nan_to_num(accuracy, nan=-np.inf)])
    return _selection(
        points,
        "fairest",
        pick,
        gap[pick],
        False,
        f"no point reaches accuracy ≥ {floor:.4g} (reference {inputs.reference_accuracy:.4g} − "
        f"δ {inputs.delta:g}); took the most accurate point ({accuracy[pick]:.4g})",
    )


def _score_constrained(points: pd.DataFrame, inputs: RuleInputs) -> pd.Series:
    """Accuracy − penalty · violation of DPD, EOD ≤ ε."""
    violation = constraint_violation(points, inputs.epsilon, inputs.attributes)
    return points["accuracy"] - inputs.penalty * violation


def _score_fairest(points: pd.DataFrame, inputs: RuleInputs) -> pd.Series:
    """−max gap − penalty · max(0, reference − δ − accuracy)."""
    shortfall = (_reference(inputs.reference_accuracy) - inputs.delta - points["accuracy"]).clip(lower=0.0)
    return -max_gap(points, inputs.attributes) - inputs.penalty * shortfall


for _rule in (
    SelectionRule("accuracy", _select_accuracy, lambda points, _: points["accuracy"].astype(float)),
    SelectionRule("constrained", _select_constrained, _score_constrained, needs_gaps=True),
    SelectionRule("fairest", _select_fairest, _score_fairest, needs_gaps=True),
    SelectionRule(
        "worst_group", _select_worst_group, lambda points, _: points["worst_group_accuracy"].astype(float)
    ),
):
    register_rule(_rule)

RULES: tuple[str, ...] = rule_names()
"""The built-in rules (``rule_names()`` lists registered ones too)."""


def pareto_front(
    points: pd.DataFrame, objective_cols: Sequence[str], maximize: Sequence[bool]
) -> pd.DataFrame:
    """Rows of ``points`` that no other row dominates (original order and index kept).

    A row dominates another when it is at least as good in every objective and strictly better in
    one. Rows with a NaN objective are never on the front. E.g. accuracy vs DPD:
    ``pareto_front(points, ["accuracy", "race_dpd"], [True, False])``.
    """
    if len(objective_cols) != len(maximize) or not objective_cols:
        raise ConfigError(
            "pareto_front needs one maximize flag per objective column, and at least one column"
        )
    missing = [c for c in objective_cols if c not in points.columns]
    if missing:
        raise DataError(f"points table has no column {missing[0]!r}")
    signs = np.where(np.asarray(maximize, dtype=bool), 1.0, -1.0)
    values = points[list(objective_cols)].to_numpy(dtype=float) * signs  # larger is better everywhere
    defined = ~np.isnan(values).any(axis=1)
    vals = values[defined]
    # Pairwise comparison: n is a grid of candidates (tens to hundreds), so O(n²) memory is fine.
    at_least = (vals[:, None, :] >= vals[None, :, :]).all(axis=2)  # [j, i]: j ≥ i everywhere
    better = (vals[:, None, :] > vals[None, :, :]).any(axis=2)
    dominated = (at_least & better).any(axis=0)
    mask = np.zeros(len(points), dtype=bool)
    mask[np.flatnonzero(defined)[~dominated]] = True
    return points.loc[mask]


def _choose(
    points: pd.DataFrame,
    rule: str,
    objective: np.ndarray,
    feasible: np.ndarray | None,
    reason: str,
    *,
    sign: float = 1.0,
) -> Selection:
    """Maximise ``objective`` over the feasible rows (NaN = worst), ties to the smaller edit."""
    score = np.nan_to_num(objective, nan=-np.inf)
    if feasible is not None:
        score = np.where(feasible, score, -np.inf)
    pick = _order(points, [-score])
    defined = bool(np.isfinite(score[pick]))
    return _selection(
        points,
        rule,
        pick,
        sign * objective[pick],
        defined,
        reason if defined else f"{reason}: undefined (NaN) at every point",
    )


def _selection(
    points: pd.DataFrame, rule: str, position: int, value: float, feasible: bool, reason: str
) -> Selection:
    lam = float(points["lambda"].to_numpy(dtype=float)[position])
    return Selection(rule, points.index[position], lam, float(value), feasible, reason)


def _order(points: pd.DataFrame, keys: list[np.ndarray]) -> int:
    """Row position minimising ``keys`` lexicographically, then |λ|, then λ, then position."""
    lam = points["lambda"].to_numpy(dtype=float)
    abs_lam = np.where(np.isnan(lam), np.inf, np.abs(lam))
    lam_key = np.where(np.isnan(lam), np.inf, lam)
    columns = [np.asarray(k, dtype=float) for k in keys] + [abs_lam, lam_key, np.arange(len(points))]
    return int(np.lexsort(columns[::-1])[0])  # lexsort sorts by its last key first


def _attributes(points: pd.DataFrame, attributes: Sequence[str] | None) -> list[str]:
    if attributes is not None:
        if not attributes:
            raise ConfigError("no attribute to compute fairness gaps over (attributes is empty)")
        missing = [a for a in attributes if a not in fairness_attributes(points)]
        if missing:
            raise ConfigError(f"points table has no DPD/EOD columns for attribute {missing[0]!r}")
        return list(attributes)
    found = fairness_attributes(points)
    usable = [a for a in found if points[[wide_column(a, "dpd"), wide_column(a, "eod")]].notna().any().all()]
    for attribute in sorted(set(found) - set(usable)):
        warnings.warn(
            f"attribute {attribute!r}: DPD or EOD is undefined at every point; left out of the selection",
            stacklevel=3,
        )
    if not usable:
        raise DataError("points table has no attribute with defined DPD and EOD columns")
    return usable


def _reference(reference_accuracy: float | None) -> float:
    if reference_accuracy is None or np.isnan(reference_accuracy):
        raise ConfigError("rule 'fairest' needs reference_accuracy (the FFT model's validation accuracy)")
    return float(reference_accuracy)


def _check_tidy(tidy: pd.DataFrame) -> None:
    missing = [c for c in _TIDY_COLUMNS if c not in tidy.columns]
    if missing:
        raise DataError(f"metrics frame lacks column {missing[0]!r}; expected {list(_TIDY_COLUMNS)}")

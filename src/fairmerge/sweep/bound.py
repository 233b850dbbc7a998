"""The empirical λ–DPD bound along a merge path θ(λ) = θ_0 + λ·τ (derivation: docs/bound.md).

If group g's selection rate s_g is L_g-Lipschitz along the unit direction τ/‖τ‖, then
|s_g(λ) − s_g(λ₀)| ≤ L_g·|λ − λ₀|·‖τ‖ and DPD(λ) ≤ DPD(λ₀) + (L_(1) + L_(2))·|λ − λ₀|·‖τ‖ with
L_(1) ≥ L_(2) the two largest constants. L_g is *estimated* by finite differences over the base
λ grid only; on that grid the bound holds by construction (triangle inequality along the grid),
so it is checked only at held-out λ (refinement points, or every other grid point when there are
none), where it can fail: selection rates are step functions of the weights. A bound above 1 is
vacuous (DPD ≤ 1 always) and marked so.

``pergroup_bound_table`` checks the per-group form (Proposition 1 of the study),
DPD(θ(λ)) ≤ DPD(reference) + 2·L·Σ_g |λ_g − λ_ref|·‖τ_g‖, on the per-group search's trials, with
L estimated on the uniform path: every trial is a held-out check.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from fairmerge.errors import ConfigError, DataError
from fairmerge.fairness import OVERALL, UndefinedMetricWarning
from fairmerge.fairness.registry import wide_column

BOUND_COLUMNS = [
    "lambda",
    "attribute",
    "observed_dpd",
    "bound",
    "bound_2lmax",
    "lipschitz_max",
    "lipschitz_second",
    "lipschitz_group",
    "tau_norm",
    "distance",
    "anchor_lambda",
    "in_estimation",
    "held_out",
    "holds",
    "vacuous",
    "method",
]
PERGROUP_BOUND_COLUMNS = [
    "trial",
    "attribute",
    "observed_dpd",
    "bound",
    "lipschitz",
    "distance",
    "reference_lambda",
    "reference_dpd",
    "held_out",
    "holds",
    "vacuous",
    "method",
]
_TOLERANCE = 1e-12  # float noise when the bound is tight by construction


def lipschitz_constants(
    curves: pd.DataFrame, tau_norm: float, estimate_on: Sequence[float] | np.ndarray | None = None
) -> pd.Series:
    """max |Δ curve| / (Δλ · ‖τ‖) over consecutive λ of the estimation grid, per column.

    ``curves`` is indexed by λ (one column per group, or one DPD column). Pairs with a NaN end are
    skipped; a column with no defined pair gets NaN.
    """
    _check_norm(tau_norm)
    grid = _estimation_grid(curves.index.to_numpy(dtype=float), estimate_on)
    on_grid = curves.loc[curves.index.isin(grid)].sort_index()
    steps = np.diff(on_grid.index.to_numpy(dtype=float))
    slopes = on_grid.diff().iloc[1:].abs().div(steps * tau_norm, axis=0)
    return slopes.max(axis=0, skipna=True)


def dpd_bound_table(
    points_or_tidy: pd.DataFrame,
    tau_norm: float,
    attribute: str,
    *,
    anchor: float = 0.0,
    estimate_on: Sequence[float] | None = None,
    min_group_size: int = 30,
) -> pd.DataFrame:
    """Observed DPD of ``attribute`` at every λ next to the bound from λ, ‖τ‖ and Lipschitz estimates.

    ``points_or_tidy``: tidy metrics of ONE path (one model family, one split) with a ``lambda``
    column — the per-group selection rates give one constant per group (``method='groups'``) — or
    a points table with ``<attribute>_dpd`` (one constant for DPD itself, ``method='dpd'``).
    ``tau_norm`` is ‖Σ τ‖ (the direction of the path). ``anchor`` is λ₀ (0: the unedited model)
    and must have been evaluated. ``estimate_on`` is the base λ grid the constants are estimated on
    (pass the sweep's grid; the refinement points are then held out); without it every other
    evaluated λ (from the anchor's side) is held out. ``holds`` is set only at held-out λ
    (``held_out`` True) — on the estimation grid it would hold by construction — and ``vacuous``
    marks bounds above 1. ``min_group_size`` must match the one the metrics were computed with:
    only groups that enter the DPD count.
    """
    _check_norm(tau_norm)
    if "lambda" not in points_or_tidy.columns:
        raise DataError("bound input has no 'lambda' column")
    _check_single(points_or_tidy, "split")
    _check_single(points_or_tidy, "model")
    if {"metric", "group", "attribute"} <= set(points_or_tidy.columns):
        rates, observed = _group_curves(points_or_tidy, attribute, min_group_size)
        method = "groups"
    else:
        column = wide_column(attribute, "dpd")
        if column not in points_or_tidy.columns:
            raise DataError(f"points table has no column {column!r}")
        observed = points_or_tidy.groupby("lambda")[column].first().astype(float)
        rates = observed.to_frame("dpd")
        method = "dpd"
    lambdas = observed.index.to_numpy(dtype=float)
    if not np.isclose(lambdas, anchor).any():
        raise DataError(f"anchor λ={anchor:g} was not evaluated; evaluated λ: {sorted(lambdas.tolist())}")
    anchor_value = float(observed.iloc[int(np.argmin(np.abs(lambdas - anchor)))])
    grid = _estimation_grid(lambdas, _base_grid(lambdas, anchor) if estimate_on is None else estimate_on)
    if not np.isclose(grid, anchor).any():
        raise ConfigError(f"estimate_on must include the anchor λ={anchor:g}")

    constants = lipschitz_constants(rates, tau_norm, grid).dropna().sort_values(ascending=False)
    first = float(constants.iloc[0]) if len(constants) else float("nan")
    if method == "groups":
        second = float(constants.iloc[1]) if len(constants) > 1 else float("nan")  # a gap needs two groups
        pair = first + second
    else:  # the DPD curve's own constant already covers both extreme groups
        second, pair = float("nan"), first
    distance = np.abs(lambdas - anchor) * tau_norm
    table = pd.DataFrame(
        {
            "lambda": lambdas,
            "attribute": attribute,
            "observed_dpd": observed.to_numpy(dtype=float),
            "bound": anchor_value + pair * distance,
            "bound_2lmax": anchor_value + 2 * first * distance if method == "groups" else np.nan,
            "lipschitz_max": first,
            "lipschitz_second": second,
            "lipschitz_group": str(constants.index[0]) if len(constants) and method == "groups" else "",
            "tau_norm": tau_norm,
            "distance": distance,
            "anchor_lambda": anchor,
            "in_estimation": np.isin(lambdas, grid),
        }
    )
    table["held_out"] = ~table["in_estimation"]
    holds = (table["observed_dpd"] <= table["bound"] + _TOLERANCE).astype("boolean")
    table["holds"] = holds.mask(table["observed_dpd"].isna() | table["bound"].isna() | table["in_estimation"])
    table["vacuous"] = (table["bound"] > 1.0).astype("boolean").mask(table["bound"].isna())
    table["method"] = method
    return table[BOUND_COLUMNS].sort_values("lambda", ignore_index=True)


def pergroup_bound_table(
    trials: pd.DataFrame,
    tau_norms: Mapping[str, float],
    attribute: str,
    *,
    lipschitz: float,
    reference_dpd: float,
    reference_lambda: float = 0.0,
) -> pd.DataFrame:
    """Proposition 1 on per-group coefficient trials: DPD ≤ DPD(ref) + 2·L·Σ_g |λ_g − λ_ref|·‖τ_g‖.

    ``trials``: the per-group search's trials (``lambda_<name>`` per vector and ``<attribute>_dpd``,
    as :func:`fairmerge.sweep.search_group_coefficients` returns them). ``tau_norms`` maps each
    vector name to ‖τ_g‖. ``lipschitz`` is L, the largest per-group selection-rate constant
    estimated on the uniform merge path's base grid (``lipschitz_max`` of :func:`dpd_bound_table`),
    and ``reference_dpd`` the DPD at the uniform point λ_g = ``reference_lambda`` (0: the base
    model). No trial enters the estimate of L, so every row is a held-out check.

    By the triangle inequality Σ_g |Δλ_g|·‖τ_g‖ ≥ ‖Σ_g Δλ_g τ_g‖, so under (A) with one constant L
    for every direction in the span of the vectors the bound follows as in docs/bound.md; L is
    only measured along the uniform direction, which is what the check tests.
    """
    column = wide_column(attribute, "dpd")
    if column not in trials.columns:
        raise DataError(f"trials have no column {column!r}")
    names = [c.removeprefix("lambda_") for c in trials.columns if c.startswith("lambda_")]
    if not names:
        raise DataError("trials have no lambda_<vector> columns")
    missing = sorted(set(names) - set(tau_norms))
    if missing:
        raise DataError(f"no ‖τ‖ given for vectors {missing}")
    for name in names:
        _check_norm(float(tau_norms[name]))
    coefficients = trials[[f"lambda_{n}" for n in names]].to_numpy(dtype=float)
    norms = np.array([float(tau_norms[n]) for n in names])
    distance = (np.abs(coefficients - reference_lambda) * norms).sum(axis=1)
    observed = trials[column].to_numpy(dtype=float)
    bound = reference_dpd + 2.0 * lipschitz * distance
    table = pd.DataFrame(
        {
            "trial": trials["trial"].to_numpy() if "trial" in trials.columns else np.arange(len(trials)),
            "attribute": attribute,
            "observed_dpd": observed,
            "bound": bound,
            "lipschitz": lipschitz,
            "distance": distance,
            "reference_lambda": reference_lambda,
            "reference_dpd": reference_dpd,
            "held_out": True,
        }
    )
    undefined = np.isnan(observed) | np.isnan(bound)
    table["holds"] = pd.array(observed <= bound + _TOLERANCE, dtype="boolean")
    table["holds"] = table["holds"].mask(undefined)
    table["vacuous"] = pd.array(bound > 1.0, dtype="boolean")
    table["vacuous"] = table["vacuous"].mask(np.isnan(bound))
    table["method"] = "proposition1"
    return table[PERGROUP_BOUND_COLUMNS]


def bound_checks(table: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Per attribute: held-out checks made, how many hold, and how many bounds are vacuous (> 1)."""
    out: dict[str, dict[str, int]] = {}
    for attribute, part in table.groupby("attribute", sort=False):
        held = part[part["held_out"].astype(bool)]
        checked = held["holds"].dropna().astype(bool)
        out[str(attribute)] = {
            "held_out": len(held),
            "checked": len(checked),
            "holds": int(checked.sum()),
            "vacuous": int(part["vacuous"].fillna(False).astype(bool).sum()),
        }
    return out


def _base_grid(lambdas: np.ndarray, anchor: float) -> np.ndarray:
    """Every other evaluated λ counted from the anchor (the anchor included): the rest is held out.

    With fewer than three evaluated λ nothing can be held out, and every λ is used.
    """
    ordered = np.unique(lambdas)
    if ordered.size < 3:
        return ordered
    start = int(np.argmin(np.abs(ordered - anchor)))
    keep = (np.arange(ordered.size) - start) % 2 == 0
    return ordered[keep]


def _group_curves(tidy: pd.DataFrame, attribute: str, min_group_size: int) -> tuple[pd.DataFrame, pd.Series]:
    """Selection rate per (λ, qualifying group) and the observed DPD per λ."""
    rows = tidy[tidy["attribute"] == attribute]
    if rows.empty:
        raise DataError(f"metrics have no rows for attribute {attribute!r}")
    groups = rows[rows["group"] != OVERALL]
    rates = groups[groups["metric"] == "selection_rate"].pivot_table(
        index="lambda", columns="group", values="value", aggfunc="first", dropna=False
    )
    sizes = groups[groups["metric"] == "n"].groupby("group")["value"].max()
    if len(sizes):
        rates = rates[[g for g in rates.columns if sizes.get(g, 0) >= min_group_size]]
    if rates.shape[1] < 2:
        warnings.warn(
            f"attribute {attribute!r} has fewer than two groups with at least {min_group_size} examples: "
            "its DPD and the bound are undefined (NaN)",
            UndefinedMetricWarning,
            stacklevel=3,
        )
    dpd_rows = rows[(rows["group"] == OVERALL) & (rows["metric"] == "dpd")]
    if len(dpd_rows):
        observed = dpd_rows.groupby("lambda")["value"].first().astype(float)
    else:
        observed = rates.max(axis=1) - rates.min(axis=1)
    return rates.reindex(observed.index), observed.sort_index()


def _estimation_grid(lambdas: np.ndarray, estimate_on: Sequence[float] | np.ndarray | None) -> np.ndarray:
    if estimate_on is None:
        grid = np.unique(lambdas)
    else:
        wanted = np.asarray(list(estimate_on), dtype=float)
        grid = np.unique(lambdas[np.isclose(lambdas[:, None], wanted[None, :]).any(axis=1)])
        if len(grid) < len(np.unique(wanted)):
            raise DataError(f"estimate_on has λ values that were not evaluated: {sorted(wanted.tolist())}")
    if len(grid) < 2:
        raise DataError("need at least two evaluated λ to estimate a Lipschitz constant")
    return grid


def _check_norm(tau_norm: float) -> None:
    if not (math.isfinite(tau_norm) and tau_norm > 0):
        raise ConfigError(f"tau_norm must be a positive finite number, got {tau_norm}")


def _check_single(frame: pd.DataFrame, column: str) -> None:
    if column in frame.columns and frame[column].nunique(dropna=False) > 1:
        raise DataError(
            f"bound input mixes several {column}s {sorted(map(str, frame[column].unique()))}; pass one"
        )

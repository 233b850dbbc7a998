"""The empirical λ–DPD bound: columns, constants, holds on its estimation grid by construction."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fairmerge.errors import ConfigError, DataError
from fairmerge.sweep import dpd_bound_table, lipschitz_constants
from fairmerge.sweep.bound import BOUND_COLUMNS

GRID = [0.0, 0.25, 0.5, 0.75, 1.0]
MIDPOINTS = [0.125, 0.375, 0.625, 0.875]


def rates(lam: float) -> dict[str, float]:
    """Selection rates per group along a path: smooth, a jump, and a flat group."""
    return {"A": 0.2 + 0.5 * lam**2, "B": 0.3 + (0.3 if lam > 0.6 else 0.0), "C": 0.4, "tiny": 0.9 * lam}


def tidy(lambdas: list[float]) -> pd.DataFrame:
    rows = []
    for lam in lambdas:
        r = rates(lam)
        sizes = {"A": 100, "B": 80, "C": 60, "tiny": 5}
        for group, value in r.items():
            rows.append((lam, "race", group, "selection_rate", value))
            rows.append((lam, "race", group, "n", sizes[group]))
        qualifying = [r[g] for g in ("A", "B", "C")]
        rows.append((lam, "race", "all", "dpd", max(qualifying) - min(qualifying)))
        rows.append((lam, "all", "all", "accuracy", 0.8))
    frame = pd.DataFrame(rows, columns=["lambda", "attribute", "group", "metric", "value"])
    return frame.assign(ci_low=np.nan, ci_high=np.nan, model="merge", split="val")


def test_bound_table_columns_and_constants() -> None:
    table = dpd_bound_table(tidy(GRID), tau_norm=2.0, attribute="race")
    assert list(table.columns) == BOUND_COLUMNS
    assert list(table["lambda"]) == GRID
    # A: largest step 0.75 -> 1.0 changes the rate by 0.5 * (1 - 0.5625) = 0.21875 over Δλ‖τ‖ = 0.5
    # B: the jump of 0.3 between 0.5 and 0.75: 0.3 / 0.5 = 0.6 (largest); C is flat; tiny is excluded.
    assert table["lipschitz_max"].iloc[0] == pytest.approx(0.6)
    assert table["lipschitz_second"].iloc[0] == pytest.approx(0.4375)
    assert table["lipschitz_group"].iloc[0] == "B"
    dpd0 = 0.2
    expected = dpd0 + (0.6 + 0.4375) * np.asarray(GRID) * 2.0
    np.testing.assert_allclose(table["bound"], expected)
    np.testing.assert_allclose(table["bound_2lmax"], dpd0 + 2 * 0.6 * np.asarray(GRID) * 2.0)
    assert (table["bound"] <= table["bound_2lmax"] + 1e-12).all()
    assert table["in_estimation"].all() and (table["method"] == "groups").all()


def test_bound_holds_by_construction_on_the_estimation_grid_and_midpoints_are_a_reported_check() -> None:
    frame = tidy(sorted(GRID + MIDPOINTS))
    table = dpd_bound_table(frame, tau_norm=0.7, attribute="race", estimate_on=GRID)
    on_grid = table[table["in_estimation"]]
    held_out = table[~table["in_estimation"]]
    assert list(on_grid["lambda"]) == GRID and list(held_out["lambda"]) == MIDPOINTS
    # By construction: the constants are the largest slopes between consecutive grid points, and the
    # triangle inequality along the grid gives |s_g(λ) - s_g(0)| <= L_g λ ‖τ‖ at every grid point.
    assert on_grid["holds"].all()
    # Held out: a check, not a law. Here the rates are monotone between grid points, so it holds too.
    assert held_out["holds"].notna().all()


def test_points_table_uses_one_constant_for_dpd() -> None:
    points = pd.DataFrame({"lambda": GRID, "race_dpd": [0.1, 0.3, 0.2, 0.2, 0.6], "accuracy": 0.8})
    table = dpd_bound_table(points, tau_norm=1.0, attribute="race")
    assert (table["method"] == "dpd").all()
    assert table["lipschitz_max"].iloc[0] == pytest.approx(0.4 / 0.25)
    assert table["lipschitz_second"].isna().all()
    assert table["holds"].all()


def test_lipschitz_constants_skip_nan_pairs() -> None:
    curves = pd.DataFrame({"A": [0.0, 0.1, np.nan, 0.5], "B": [0.2, np.nan, np.nan, np.nan]}, index=GRID[:4])
    constants = lipschitz_constants(curves, tau_norm=1.0)
    assert constants["A"] == pytest.approx(0.4)
    assert np.isnan(constants["B"])


def test_attribute_without_two_qualifying_groups_gives_nan_not_an_error() -> None:
    with pytest.warns(UserWarning, match="fewer than two groups"):
        table = dpd_bound_table(tidy(GRID), 1.0, "race", min_group_size=90)  # only A has >= 90 posts
    assert table["bound"].isna().all() and table["holds"].isna().all()


def test_bad_inputs_raise() -> None:
    frame = tidy(GRID)
    with pytest.raises(DataError, match="anchor"):
        dpd_bound_table(frame[frame["lambda"] > 0], 1.0, "race")
    with pytest.raises(ConfigError, match="tau_norm"):
        dpd_bound_table(frame, 0.0, "race")
    with pytest.raises(DataError, match="gender"):
        dpd_bound_table(frame, 1.0, "gender")
    with pytest.raises(DataError, match="split"):
        dpd_bound_table(pd.concat([frame, frame.assign(split="test")]), 1.0, "race")
    with pytest.raises(ConfigError, match="anchor"):
        dpd_bound_table(frame, 1.0, "race", estimate_on=[0.5, 1.0])
    with pytest.raises(DataError, match="not evaluated"):
        dpd_bound_table(frame, 1.0, "race", estimate_on=[0.0, 0.3])

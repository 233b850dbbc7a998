"""The empirical λ–DPD bound: constants from the base grid, checked only at held-out λ; Proposition 1."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fairmerge.errors import ConfigError, DataError
from fairmerge.sweep import dpd_bound_table, lipschitz_constants
from fairmerge.sweep.bound import BOUND_COLUMNS, PERGROUP_BOUND_COLUMNS, bound_checks, pergroup_bound_table

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
    table = dpd_bound_table(tidy(GRID), tau_norm=2.0, attribute="race", estimate_on=GRID)
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
    # Every λ was used for the estimate: nothing is held out, so nothing is checked.
    assert not table["held_out"].any() and table["holds"].isna().all()
    assert table["vacuous"].tolist() == (expected > 1).tolist()


def test_bound_is_checked_only_at_held_out_lambda() -> None:
    frame = tidy(sorted(GRID + MIDPOINTS))
    table = dpd_bound_table(frame, tau_norm=0.7, attribute="race", estimate_on=GRID)
    on_grid = table[~table["held_out"]]
    held_out = table[table["held_out"]]
    assert list(on_grid["lambda"]) == GRID and list(held_out["lambda"]) == MIDPOINTS
    # On the estimation grid the bound holds by construction: it is not reported as a check.
    assert on_grid["holds"].isna().all()
    # Held out: a check, not a law. Here the rates are monotone between grid points, so it holds.
    assert held_out["holds"].notna().all() and held_out["holds"].all()
    checks = bound_checks(table)["race"]
    assert checks["held_out"] == checks["checked"] == 4 and checks["holds"] == 4
    # The constants come from the base grid only: the held-out points do not change them.
    grid_only = dpd_bound_table(tidy(GRID), tau_norm=0.7, attribute="race", estimate_on=GRID)
    assert table["lipschitz_max"].iloc[0] == grid_only["lipschitz_max"].iloc[0]
    assert table["lipschitz_second"].iloc[0] == grid_only["lipschitz_second"].iloc[0]


def test_without_a_base_grid_every_other_lambda_is_held_out_and_a_bound_can_fail() -> None:
    # DPD is flat on 0, 0.5, 1.0 and spikes between them: the constant from the base grid is 0.
    points = pd.DataFrame({"lambda": GRID, "race_dpd": [0.1, 0.5, 0.1, 0.1, 0.1]})
    table = dpd_bound_table(points, tau_norm=1.0, attribute="race")
    assert table.loc[table["held_out"], "lambda"].tolist() == [0.25, 0.75]
    assert table["lipschitz_max"].iloc[0] == pytest.approx(0.0)
    assert table.set_index("lambda")["holds"].loc[[0.25, 0.75]].tolist() == [False, True]
    assert bound_checks(table)["race"] == {"held_out": 2, "checked": 2, "holds": 1, "vacuous": 0}


def test_points_table_uses_one_constant_for_dpd() -> None:
    points = pd.DataFrame({"lambda": GRID, "race_dpd": [0.1, 0.3, 0.2, 0.2, 0.6], "accuracy": 0.8})
    table = dpd_bound_table(points, tau_norm=1.0, attribute="race", estimate_on=[0.0, 0.5, 1.0])
    assert (table["method"] == "dpd").all()
    assert table["lipschitz_max"].iloc[0] == pytest.approx(0.4 / 0.5)
    assert table["lipschitz_second"].isna().all()
    assert table.loc[table["held_out"], "holds"].all()
    assert table.set_index("lambda")["vacuous"].loc[[0.0, 1.0]].tolist() == [False, False]


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


def test_proposition_1_on_per_group_trials() -> None:
    trials = pd.DataFrame(
        {
            "trial": [0, 1, 2],
            "lambda_a": [0.5, 0.2, 1.0],
            "lambda_b": [0.5, 0.0, 1.0],
            "race_dpd": [0.30, 0.12, 0.95],
        }
    )
    table = pergroup_bound_table(
        trials, {"a": 2.0, "b": 1.0}, "race", lipschitz=0.1, reference_dpd=0.1, reference_lambda=0.0
    )
    assert list(table.columns) == PERGROUP_BOUND_COLUMNS
    # distance = |λ_a|·2 + |λ_b|·1; bound = 0.1 + 2·0.1·distance
    np.testing.assert_allclose(table["distance"], [1.5, 0.4, 3.0])
    np.testing.assert_allclose(table["bound"], [0.4, 0.18, 0.7])
    assert table["held_out"].all()
    assert table["holds"].tolist() == [True, True, False]
    assert not table["vacuous"].any()
    assert bound_checks(table)["race"]["holds"] == 2
    with pytest.raises(DataError, match="no ‖τ‖"):
        pergroup_bound_table(trials, {"a": 1.0}, "race", lipschitz=0.1, reference_dpd=0.1)
    with pytest.raises(DataError, match="gender_dpd"):
        pergroup_bound_table(trials, {"a": 1.0, "b": 1.0}, "gender", lipschitz=0.1, reference_dpd=0.1)

"""Selection rules and Pareto fronts on hand-made points tables; points built from real metric frames."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fairmerge.errors import ConfigError, DataError
from fairmerge.fairness import group_metrics
from fairmerge.sweep import pareto_front, points_from_metrics, rule_scores, select_point

NAN = float("nan")


def points(rows: list[tuple[float, float, float, float, float]]) -> pd.DataFrame:
    """(lambda, accuracy, worst_group_accuracy, race_dpd, race_eod) per row."""
    frame = pd.DataFrame(rows, columns=["lambda", "accuracy", "worst_group_accuracy", "race_dpd", "race_eod"])
    frame["race_worst_group_accuracy"] = frame["worst_group_accuracy"]
    return frame


TABLE = points(
    [
        (0.0, 0.60, 0.40, 0.05, 0.08),
        (0.2, 0.70, 0.55, 0.09, 0.12),
        (0.4, 0.80, 0.50, 0.30, 0.20),
        (0.6, 0.75, 0.65, 0.08, 0.09),
        (0.8, 0.78, 0.45, 0.40, 0.50),
    ]
)


def test_accuracy_rule_takes_max_accuracy() -> None:
    chosen = select_point(TABLE, "accuracy")
    assert (chosen.lam, chosen.value, chosen.feasible) == (0.4, 0.80, True)
    assert chosen.index == 2


def test_constrained_rule_takes_most_accurate_feasible_point() -> None:
    chosen = select_point(TABLE, "constrained", epsilon=0.1)
    assert (chosen.lam, chosen.value, chosen.feasible) == (0.6, 0.75, True)


def test_constrained_rule_without_feasible_point_flags_and_takes_smallest_violation() -> None:
    chosen = select_point(TABLE, "constrained", epsilon=0.01)
    assert not chosen.feasible
    assert chosen.lam == 0.0  # violation 0.07, the smallest
    assert "no point" in chosen.reason


def test_fairest_rule_minimises_max_gap_above_the_accuracy_floor() -> None:
    chosen = select_point(TABLE, "fairest", reference_accuracy=0.80, delta=0.06)
    # accuracy >= 0.74: λ 0.4 (gap 0.30), 0.6 (gap 0.09), 0.8 (gap 0.50)
    assert (chosen.lam, chosen.value, chosen.feasible) == (0.6, 0.09, True)
    infeasible = select_point(TABLE, "fairest", reference_accuracy=0.95, delta=0.01)
    assert not infeasible.feasible and infeasible.lam == 0.4
    with pytest.raises(ConfigError, match="reference_accuracy"):
        select_point(TABLE, "fairest")


def test_worst_group_rule() -> None:
    chosen = select_point(TABLE, "worst_group")
    assert (chosen.lam, chosen.value) == (0.6, 0.65)


def test_nan_never_wins() -> None:
    table = TABLE.copy()
    table.loc[4, ["accuracy", "worst_group_accuracy"]] = NAN
    table.loc[3, "race_eod"] = NAN
    table.loc[0, "accuracy"] = 0.99
    table.loc[0, "race_dpd"] = NAN
    assert select_point(table, "accuracy").lam == 0.0
    table.loc[0, "accuracy"] = NAN
    assert select_point(table, "accuracy").lam == 0.4
    assert select_point(table, "worst_group").lam == 0.6
    table.loc[3, "worst_group_accuracy"] = NAN
    assert select_point(table, "worst_group").lam == 0.2
    # λ 0.6 has NaN EOD and λ 0.0 NaN DPD: neither is feasible; λ 0.2 is.
    assert select_point(table, "constrained", epsilon=0.2).lam == 0.2
    assert select_point(table, "fairest", reference_accuracy=0.7, delta=0.05).lam == 0.2
    scores = rule_scores(table, "constrained", epsilon=0.2)
    assert scores[0] == -np.inf and scores[3] == -np.inf and np.isfinite(scores[1])


def test_all_nan_is_reported_not_chosen_silently() -> None:
    table = TABLE.assign(worst_group_accuracy=NAN)
    chosen = select_point(table, "worst_group")
    assert not chosen.feasible and "undefined" in chosen.reason


def test_ties_go_to_the_smaller_edit() -> None:
    table = points(
        [
            (0.8, 0.7, 0.5, 0.05, 0.05),
            (-0.3, 0.7, 0.5, 0.05, 0.05),
            (0.3, 0.7, 0.5, 0.05, 0.05),
            (0.5, 0.7, 0.5, 0.05, 0.05),
        ]
    )
    for rule in ("accuracy", "constrained", "worst_group"):
        assert select_point(table, rule).lam == -0.3  # |λ| ties -> smaller λ
    assert select_point(table.iloc[[0, 2, 3]], "accuracy").lam == 0.3
    assert select_point(table, "fairest", reference_accuracy=0.7).lam == -0.3


def test_attribute_undefined_everywhere_is_left_out_with_a_warning() -> None:
    table = TABLE.assign(gender_dpd=NAN, gender_eod=NAN, gender_worst_group_accuracy=NAN)
    with pytest.warns(UserWarning, match="gender"):
        chosen = select_point(table, "constrained", epsilon=0.1)
    assert chosen.lam == 0.6
    with pytest.raises(ConfigError, match="rule"):
        select_point(TABLE, "best")  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6), st.integers(0, 6)), min_size=1, max_size=25),
    st.lists(st.booleans(), min_size=3, max_size=3),
)
def test_pareto_front_is_exactly_the_non_dominated_set(
    rows: list[tuple[int, int, int]], flags: list[bool]
) -> None:
    table = pd.DataFrame(rows, columns=["a", "b", "c"], dtype=float)
    table.index = table.index * 10 + 3  # a non-default index must be kept
    front = pareto_front(table, ["a", "b", "c"], flags)
    signs = np.where(flags, 1.0, -1.0)
    values = table.to_numpy() * signs

    def dominated(i: int) -> bool:
        other = np.delete(values, i, axis=0)
        return bool(((other >= values[i]).all(axis=1) & (other > values[i]).any(axis=1)).any())

    on_front = table.index.isin(front.index)
    assert on_front.any()
    for i in range(len(table)):
        assert dominated(i) != on_front[i]


def test_pareto_front_accuracy_vs_dpd_skips_nan() -> None:
    table = TABLE.copy()
    table.loc[1, "race_dpd"] = NAN
    front = pareto_front(table, ["accuracy", "race_dpd"], [True, False])
    assert list(front["lambda"]) == [0.0, 0.4, 0.6]


def _metric_frame(seed: int, flip: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 400
    labels = rng.integers(0, 2, n)
    predictions = np.where(rng.random(n) < flip, 1 - labels, labels)
    groups = rng.integers(0, 3, n)
    race = pd.DataFrame({g: groups == i for i, g in enumerate(["A", "B", "C"])})
    gender = pd.DataFrame({"W": groups == 0, "M": rng.random(n) < 0.01})  # M too small: gaps undefined
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return group_metrics(labels, predictions, {"race": race, "gender": gender}, n_resamples=0)


def test_points_from_metrics_builds_one_row_per_point() -> None:
    frames = []
    for lam, flip in [(0.0, 0.4), (0.5, 0.1), (1.0, 0.25)]:
        frames.append(_metric_frame(0, flip).assign(model="merge", split="val", **{"lambda": lam}))
    tidy = pd.concat(frames, ignore_index=True)
    table = points_from_metrics(tidy)
    assert list(table["lambda"]) == [0.0, 0.5, 1.0]
    assert set(table.columns) >= {
        "model",
        "lambda",
        "accuracy",
        "worst_group_accuracy",
        "race_dpd",
        "race_eod",
        "gender_dpd",
        "gender_eod",
    }
    row = table.iloc[1]
    values = frames[1].set_index(["attribute", "group", "metric"])["value"]
    assert row["accuracy"] == values[("all", "all", "accuracy")]
    assert row["race_dpd"] == values[("race", "all", "dpd")]
    assert np.isnan(row["gender_dpd"])
    assert row["worst_group_accuracy"] == min(
        values[("race", "all", "worst_group_accuracy")], values[("gender", "all", "worst_group_accuracy")]
    )
    with pytest.warns(UserWarning, match="gender"):
        assert select_point(table, "accuracy").lam == 0.5 == select_point(table, "constrained", epsilon=1).lam
    with pytest.raises(DataError, match="splits"):
        points_from_metrics(pd.concat([tidy, tidy.assign(split="test")]))
    with pytest.raises(DataError, match="lambda"):
        points_from_metrics(tidy.drop(columns="lambda"))


def test_a_new_rule_is_one_function_and_its_registration() -> None:
    from fairmerge.sweep.selection import (
        RuleInputs,
        Selection,
        SelectionRule,
        _choose,
        register_rule,
        rule_names,
        unregister_rule,
    )

    def select_smallest_edit(points: pd.DataFrame, inputs: RuleInputs) -> Selection:
        edit = -np.abs(points["lambda"].to_numpy(dtype=float))
        return _choose(points, "smallest_edit", edit, None, "smallest |λ|")

    points = pd.DataFrame(
        {"lambda": [0.5, -0.25, 1.0], "accuracy": [0.9, 0.7, 0.95], "worst_group_accuracy": [0.8, 0.6, 0.9]}
    )
    register_rule(
        SelectionRule("smallest_edit", select_smallest_edit, lambda p, _: -p["lambda"].abs().astype(float))
    )
    try:
        assert "smallest_edit" in rule_names()
        assert select_point(points, "smallest_edit").lam == -0.25
        assert rule_scores(points, "smallest_edit").tolist() == [-0.5, -0.25, -1.0]
        with pytest.raises(ValueError, match="already registered"):
            register_rule(SelectionRule("smallest_edit", select_smallest_edit, lambda p, _: p["lambda"]))
    finally:
        unregister_rule("smallest_edit")
    with pytest.raises(ConfigError, match="unknown selection rule 'smallest_edit'"):
        select_point(points, "smallest_edit")

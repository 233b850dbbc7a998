"""Group metrics: overlapping groups, undefined rates, small groups, and agreement with fairlearn."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from fairmerge.errors import ConfigError, DataError
from fairmerge.fairness import UndefinedMetricWarning, group_metrics, headline, qualifying_groups


def _value(frame: pd.DataFrame, attribute: str, group: str, metric: str) -> float:
    row = frame[(frame.attribute == attribute) & (frame.group == group) & (frame.metric == metric)]
    assert len(row) == 1, (attribute, group, metric)
    return float(row["value"].iloc[0])


@st.composite
def disjoint_groups(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, predictions and one group per example, every group holding both classes."""
    labels, predictions, groups = [], [], []
    for g in range(draw(st.integers(2, 5))):
        size = draw(st.integers(2, 25))
        y = draw(st.lists(st.integers(0, 1), min_size=size, max_size=size))
        y[0], y[1] = 0, 1  # both classes: TPR and FPR are defined in every group
        labels += y
        predictions += draw(st.lists(st.integers(0, 1), min_size=size, max_size=size))
        groups += [f"g{g}"] * size
    order = draw(st.permutations(range(len(labels))))
    return np.array(labels)[order], np.array(predictions)[order], np.array(groups)[order]


@settings(max_examples=60, deadline=None)
@given(disjoint_groups())
def test_matches_fairlearn_on_disjoint_groups(data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    labels, predictions, groups = data
    membership = pd.get_dummies(pd.Series(groups)).astype(bool)
    frame = group_metrics(
        labels,
        predictions,
        {"a": membership},
        min_group_size=1,
        min_positives=1,
        min_negatives=1,
        n_resamples=0,
    )
    dpd = demographic_parity_difference(labels, predictions, sensitive_features=groups)
    eod = equalized_odds_difference(labels, predictions, sensitive_features=groups)
    assert abs(_value(frame, "a", "all", "dpd") - dpd) <= 1e-12
    assert abs(_value(frame, "a", "all", "eod") - eod) <= 1e-12
    assert _value(frame, "all", "all", "accuracy") == pytest.approx(np.mean(labels == predictions), abs=1e-12)


def test_overlapping_groups_use_each_groups_posts() -> None:
    # Posts 0-3 target A, posts 2-5 target B: posts 2 and 3 count in both.
    labels = np.array([1, 0, 1, 0, 1, 0, 1])
    predictions = np.array([1, 1, 0, 0, 1, 1, 0])
    membership = pd.DataFrame({"A": [1, 1, 1, 1, 0, 0, 0], "B": [0, 0, 1, 1, 1, 1, 0]}, dtype=bool)
    frame = group_metrics(
        labels,
        predictions,
        {"race": membership},
        min_group_size=1,
        min_positives=1,
        min_negatives=1,
        n_resamples=0,
    )
    for group in ("A", "B"):
        mask = membership[group].to_numpy()
        y, p = labels[mask], predictions[mask]
        assert _value(frame, "race", group, "n") == mask.sum() == 4
        assert _value(frame, "race", group, "accuracy") == np.mean(y == p)
        assert _value(frame, "race", group, "selection_rate") == np.mean(p)
        assert _value(frame, "race", group, "tpr") == p[y == 1].mean()
        assert _value(frame, "race", group, "fpr") == p[y == 0].mean()
    # A: sel .5, tpr .5, fpr .5 ; B: sel .5, tpr .5, fpr .5 -> all gaps 0, computed (not NaN).
    assert _value(frame, "race", "all", "dpd") == 0.0
    assert _value(frame, "race", "all", "n_groups") == 2
    assert _value(frame, "all", "all", "n") == 7


def test_single_class_group_is_nan_with_warning_never_zero() -> None:
    labels = np.array([1, 1, 1, 0, 1, 0, 1, 0])
    predictions = np.array([1, 0, 1, 1, 1, 0, 0, 0])
    membership = pd.DataFrame(
        {"only_pos": [1, 1, 1, 0, 0, 0, 0, 0], "mixed": [0, 0, 0, 1, 1, 1, 1, 1]}, dtype=bool
    )
    with pytest.warns(UndefinedMetricWarning, match="fpr of g/only_pos"):
        frame = group_metrics(
            labels,
            predictions,
            {"g": membership},
            min_group_size=1,
            min_positives=1,
            min_negatives=1,
            n_resamples=50,
        )
    fpr = frame[(frame.group == "only_pos") & (frame.metric == "fpr")].iloc[0]
    assert np.isnan(fpr["value"]) and np.isnan(fpr["ci_low"]) and np.isnan(fpr["ci_high"])
    assert _value(frame, "g", "only_pos", "tpr") == pytest.approx(2 / 3)
    # Only one group has a defined FPR: the FPR gap, and so EOD, are undefined rather than 0.
    assert np.isnan(_value(frame, "g", "all", "fpr_gap"))
    assert np.isnan(_value(frame, "g", "all", "eod"))
    assert _value(frame, "g", "all", "tpr_gap") == pytest.approx(abs(2 / 3 - 1 / 2))


def test_tiny_groups_are_reported_but_excluded_from_gaps() -> None:
    rng = np.random.default_rng(1)
    n = 200
    labels = rng.integers(0, 2, n)
    predictions = rng.integers(0, 2, n)
    groups = np.array(["big1"] * 90 + ["big2"] * 90 + ["tiny"] * 20)
    predictions[groups == "tiny"] = 1  # selection rate 1: would dominate DPD if it counted
    membership = pd.get_dummies(pd.Series(groups)).astype(bool)
    frame = group_metrics(labels, predictions, {"a": membership}, min_group_size=30, n_resamples=0)
    assert _value(frame, "a", "tiny", "n") == 20
    assert _value(frame, "a", "tiny", "selection_rate") == 1.0
    assert _value(frame, "a", "all", "n_groups") == 2
    big = [predictions[groups == g].mean() for g in ("big1", "big2")]
    assert _value(frame, "a", "all", "dpd") == pytest.approx(abs(big[0] - big[1]), abs=1e-12)
    accuracies = [np.mean(labels[groups == g] == predictions[groups == g]) for g in ("big1", "big2")]
    assert _value(frame, "a", "all", "worst_group_accuracy") == pytest.approx(min(accuracies))


def test_fewer_than_two_qualifying_groups_gives_nan_gaps_and_a_warning() -> None:
    labels = np.array([0, 1] * 20)
    predictions = np.array([0, 1, 1, 1] * 10)
    membership = pd.DataFrame({"big": [True] * 35 + [False] * 5, "small": [False] * 35 + [True] * 5})
    with pytest.warns(UndefinedMetricWarning, match="dpd of a"):
        frame = group_metrics(labels, predictions, {"a": membership}, min_group_size=30, n_resamples=20)
    for metric in ("dpd", "eod", "tpr_gap", "fpr_gap"):
        assert np.isnan(_value(frame, "a", "all", metric))
    assert _value(frame, "a", "all", "n_groups") == 1
    assert _value(frame, "a", "all", "worst_group_accuracy") == pytest.approx(
        np.mean(labels[:35] == predictions[:35])
    )


def test_no_warning_when_everything_is_defined() -> None:
    rng = np.random.default_rng(2)
    labels, predictions = np.tile([0, 1], 100), rng.integers(0, 2, 200)
    membership = pd.DataFrame({"x": np.arange(200) < 100, "y": np.arange(200) >= 80})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        group_metrics(labels, predictions, {"a": membership}, n_resamples=100)


def test_gap_bootstrap_matches_a_plain_loop_and_rates_get_the_wilson_interval() -> None:
    rng = np.random.default_rng(3)
    n, resamples = 60, 40
    labels, predictions = rng.integers(0, 2, n), rng.integers(0, 2, n)
    membership = pd.DataFrame({"A": rng.random(n) < 0.6, "B": rng.random(n) < 0.6})
    frame = group_metrics(
        labels,
        predictions,
        {"a": membership},
        min_group_size=1,
        n_resamples=resamples,
        seed=7,
        interval="percentile",
    )
    # Same draw as the vectorised path: integer indices from default_rng(seed), one row per resample.
    draws = np.random.default_rng(7).integers(0, n, size=(resamples, n))
    dpd = []
    for idx in draws:
        p = predictions[idx]
        m = membership.to_numpy()[idx]
        sel = [p[m[:, j]].mean() for j in range(2)]
        dpd.append(max(sel) - min(sel))
    row = frame[(frame.group == "all") & (frame.attribute == "a") & (frame.metric == "dpd")].iloc[0]
    assert row["ci_low"] == pytest.approx(np.percentile(dpd, 2.5), abs=1e-12)
    assert row["ci_high"] == pytest.approx(np.percentile(dpd, 97.5), abs=1e-12)
    for j, g in enumerate(("A", "B")):  # a rate gets scipy's Wilson score interval, not a bootstrap one
        row = frame[(frame.group == g) & (frame.metric == "tpr")].iloc[0]
        positives = membership.to_numpy()[:, j] & (labels == 1)
        hits = int(predictions[positives].sum())
        wilson = stats.binomtest(hits, int(positives.sum())).proportion_ci(0.95, method="wilson")
        assert (row["ci_low"], row["ci_high"]) == pytest.approx((wilson.low, wilson.high), abs=1e-12)


def test_bootstrap_is_seeded_and_optional() -> None:
    rng = np.random.default_rng(4)
    labels, predictions = rng.integers(0, 2, 300), rng.integers(0, 2, 300)
    membership = {"a": pd.DataFrame({"x": rng.random(300) < 0.5, "y": rng.random(300) < 0.5})}
    first = group_metrics(labels, predictions, membership, n_resamples=200, seed=5)
    again = group_metrics(labels, predictions, membership, n_resamples=200, seed=5)
    other = group_metrics(labels, predictions, membership, n_resamples=200, seed=6)
    pd.testing.assert_frame_equal(first, again)
    assert not first["ci_low"].equals(other["ci_low"])
    rates = first[first.metric.isin(["accuracy", "selection_rate", "tpr", "fpr"])]
    assert ((rates.ci_low <= rates.value) & (rates.value <= rates.ci_high)).all()
    none = group_metrics(labels, predictions, membership, n_resamples=0)
    assert none[["ci_low", "ci_high"]].isna().all().all()
    pd.testing.assert_series_equal(none["value"], first["value"])


def test_frame_layout_and_headline() -> None:
    rng = np.random.default_rng(6)
    labels, predictions = np.tile([0, 1], 50), rng.integers(0, 2, 100)
    memberships = {
        "race": pd.DataFrame({"A": np.arange(100) < 50, "B": np.arange(100) >= 40}),
        "gender": pd.DataFrame({"W": np.arange(100) % 4 < 2, "M": np.arange(100) % 3 == 0}),
    }
    frame = group_metrics(labels, predictions, memberships, n_resamples=0)
    assert list(frame.columns) == ["attribute", "group", "metric", "value", "ci_low", "ci_high"]
    assert not frame.duplicated(["attribute", "group", "metric"]).any()
    flat = headline(frame)
    assert set(flat) == {
        "accuracy",
        *(f"{a}_{m}" for a in ("race", "gender") for m in ("dpd", "eod", "worst_group_accuracy")),
    }
    assert flat["race_dpd"] == _value(frame, "race", "all", "dpd")


@pytest.mark.parametrize(
    ("labels", "predictions", "membership", "message"),
    [
        ([0, 1, 1], [0, 1], pd.DataFrame({"g": [True] * 3}), "differ in length"),
        ([0, 2, 1], [0, 1, 1], pd.DataFrame({"g": [True] * 3}), "labels must be binary"),
        ([0, 1, 1], [0, 1, 1], pd.DataFrame({"g": [True] * 2}), "has 2 rows, expected 3"),
        ([0, 1, 1], [0, 1, 1], pd.DataFrame({"all": [True] * 3}), "reserved"),
        ([0, 1, 1], [0, 1, 1], pd.DataFrame({"g": [0, 5, 1]}), "must be boolean"),
    ],
)
def test_bad_input_names_the_problem(
    labels: list[int], predictions: list[int], membership: pd.DataFrame, message: str
) -> None:
    with pytest.raises(DataError, match=message):
        group_metrics(np.array(labels), np.array(predictions), {"a": membership}, n_resamples=0)


def test_qualifying_groups_follow_class_counts() -> None:
    # A: 40 posts, 30 positives / 10 negatives; B: 40 posts, 10 / 30; C: 12 posts, 6 / 6.
    labels = np.array([1] * 30 + [0] * 10 + [1] * 10 + [0] * 30 + [1] * 6 + [0] * 6)
    group = np.array(["A"] * 40 + ["B"] * 40 + ["C"] * 12)
    membership = pd.get_dummies(pd.Series(group)).astype(bool)
    rng = np.random.default_rng(8)
    predictions = rng.integers(0, 2, labels.size)
    kwargs = {"min_group_size": 30, "min_positives": 20, "min_negatives": 20}
    table = qualifying_groups(labels, {"a": membership}, **kwargs).set_index(["metric", "group"])
    assert table.loc[("dpd", "A"), "entered"] and table.loc[("dpd", "B"), "entered"]
    assert not table.loc[("dpd", "C"), "entered"] and table.loc[("dpd", "C"), "reason"] == (
        "12 posts < min_group_size 30"
    )
    assert table.loc[("tpr_gap", "A"), "entered"] and not table.loc[("tpr_gap", "B"), "entered"]
    assert table.loc[("tpr_gap", "B"), "reason"] == "10 positives < min_positives 20"
    assert table.loc[("fpr_gap", "B"), "entered"] and not table.loc[("fpr_gap", "A"), "entered"]
    assert table.loc[("fpr_gap", "A"), "reason"] == "10 negatives < min_negatives 20"
    assert table.loc[("tpr_gap", "A"), ["n", "positives", "negatives"]].tolist() == [40, 30, 10]
    # group_metrics uses the same groups: only A enters the TPR gap, so it (and EOD) is undefined.
    with pytest.warns(UndefinedMetricWarning, match="tpr_gap of a"):
        frame = group_metrics(labels, predictions, {"a": membership}, n_resamples=0, **kwargs)
    assert _value(frame, "a", "all", "n_groups_tpr") == 1 and _value(frame, "a", "all", "n_groups_fpr") == 1
    assert np.isnan(_value(frame, "a", "all", "eod"))
    loose = group_metrics(
        labels, predictions, {"a": membership}, n_resamples=0, min_positives=10, min_negatives=10
    )
    tpr = [predictions[(group == g) & (labels == 1)].mean() for g in ("A", "B")]
    assert _value(loose, "a", "all", "tpr_gap") == pytest.approx(abs(tpr[0] - tpr[1]))


def test_interval_methods_and_clipping() -> None:
    rng = np.random.default_rng(9)
    labels, predictions = rng.integers(0, 2, 400), rng.integers(0, 2, 400)
    membership = {"a": pd.DataFrame({"x": np.arange(400) < 200, "y": np.arange(400) >= 200})}
    for interval in ("percentile", "basic", "bc", "bca"):
        frame = group_metrics(labels, predictions, membership, n_resamples=200, interval=interval)
        defined = frame.dropna(subset=["ci_low"])
        assert ((defined.ci_low >= 0) & (defined.ci_high <= 1) & (defined.ci_low <= defined.ci_high)).all()
    with pytest.raises(ConfigError, match="interval"):
        group_metrics(labels, predictions, membership, interval="normal")  # type: ignore[arg-type]

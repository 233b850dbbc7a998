"""Method-vs-reference comparisons: seed variance, honest one-seed fallback, NaN when undefined, Holm."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import equalized_odds_difference

from fairmerge.errors import ConfigError, DataError
from fairmerge.fairness import compare_all, compare_to_reference, comparison_table, holm

N = 600


def _data(seed: int = 0) -> tuple[np.ndarray, pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 3, N)
    labels = rng.integers(0, 2, N)
    return labels, pd.DataFrame({f"g{k}": group == k for k in range(3)}), group


def _model(labels: np.ndarray, rng: np.random.Generator, accuracy: float) -> np.ndarray:
    return np.where(rng.random(labels.size) < accuracy, labels, 1 - labels)


def test_one_seed_is_a_paired_post_bootstrap_and_says_so() -> None:
    labels, membership, group = _data()
    rng = np.random.default_rng(1)
    method, reference = _model(labels, rng, 0.8), _model(labels, rng, 0.7)
    result = compare_to_reference(labels, membership, [method], [reference], metric="eod", n_resamples=300)
    expected = equalized_odds_difference(
        labels, method, sensitive_features=group
    ) - equalized_odds_difference(labels, reference, sensitive_features=group)
    assert result["delta"] == pytest.approx(expected, abs=1e-12)
    assert result["n_seeds"] == 1 and "one seed" in result["method"]
    assert np.isnan(result["t_low"]) and result["ci_low"] <= result["ci_high"]
    acc = compare_to_reference(labels, None, [method], [reference], metric="accuracy", n_resamples=300)
    assert acc["delta"] == pytest.approx(np.mean(method == labels) - np.mean(reference == labels))
    assert acc["ci_low"] > 0 and acc["p_value"] < 0.01


def test_seed_variance_widens_the_interval() -> None:
    labels, membership, _ = _data()
    rng = np.random.default_rng(2)
    reference = [_model(labels, rng, 0.75) for _ in range(3)]
    # Three seeds of one method whose accuracy differs a lot from seed to seed.
    method = [_model(labels, rng, a) for a in (0.65, 0.75, 0.85)]
    three = compare_to_reference(labels, membership, method, reference, metric="accuracy", n_resamples=400)
    one = compare_to_reference(
        labels, membership, method[1:2], reference[1:2], metric="accuracy", n_resamples=400
    )
    assert three["n_seeds"] == 3 and "two-level bootstrap" in three["method"]
    assert three["ci_high"] - three["ci_low"] > 2 * (one["ci_high"] - one["ci_low"])
    assert three["ci_low"] < 0 < three["ci_high"] and three["p_value"] > 0.05
    assert three["ci_low"] <= three["t_low"] and three["ci_high"] >= three["t_high"]
    assert len(three["seed_deltas"]) == 3


def test_identical_copies_of_one_seed_add_no_variance_and_identical_models_give_zero() -> None:
    labels, membership, _ = _data()
    rng = np.random.default_rng(3)
    method, reference = _model(labels, rng, 0.8), _model(labels, rng, 0.7)
    one = compare_to_reference(
        labels, membership, [method], [reference], metric="dpd", n_resamples=200, seed=4
    )
    same = compare_to_reference(labels, membership, [reference], [reference], metric="dpd", n_resamples=200)
    assert same["delta"] == 0.0 and same["ci_low"] == same["ci_high"] == 0.0 and same["p_value"] == 1.0
    assert one["n_seeds"] == 1


def test_undefined_comparison_is_nan_never_zero_and_null_in_json() -> None:
    labels, _, _ = _data()
    tiny = pd.DataFrame({"men": np.arange(N) < 6, "women": np.arange(N) >= 400})
    rng = np.random.default_rng(5)
    result = compare_to_reference(
        labels, tiny, [_model(labels, rng, 0.8)], [_model(labels, rng, 0.7)], metric="eod", n_resamples=50
    )
    assert all(np.isnan(result[k]) for k in ("delta", "ci_low", "ci_high", "p_value"))
    assert "fewer than two groups" in result["reason"]
    table = comparison_table([{**result, "model": "merge", "attribute": "gender", "metric": "eod"}])
    record = json.loads(table.to_json(orient="records"))[0]
    assert record["delta"] is None and record["p_holm"] is None and record["primary"] is False


def test_bad_inputs() -> None:
    labels, membership, _ = _data()
    with pytest.raises(DataError, match="same positive number"):
        compare_to_reference(labels, membership, [labels], [], metric="dpd")
    with pytest.raises(ConfigError, match="metric"):
        compare_to_reference(labels, membership, [labels], [labels], metric="auc")  # type: ignore[arg-type]
    with pytest.raises(DataError, match="membership"):
        compare_to_reference(labels, None, [labels], [labels], metric="eod")


def test_holm_matches_the_step_down_rule_and_skips_nan() -> None:
    adjusted = holm([0.01, 0.04, np.nan, 0.03])
    np.testing.assert_allclose(adjusted[[0, 1, 3]], [0.03, 0.06, 0.06])
    assert np.isnan(adjusted[2])
    np.testing.assert_allclose(holm([0.5, 0.9]), [1.0, 1.0])


def test_comparison_table_keeps_the_primary_unadjusted() -> None:
    rows = [
        {"model": "merge", "attribute": "race", "metric": "eod", "delta": -0.1, "p_value": 0.02},
        {"model": "merge", "attribute": "race", "metric": "dpd", "delta": -0.1, "p_value": 0.02},
        {"model": "merge", "attribute": "all", "metric": "accuracy", "delta": 0.0, "p_value": 0.5},
    ]
    table = comparison_table(rows, {"model": "merge", "attribute": "race", "metric": "eod"})
    assert table["primary"].tolist() == [True, False, False]
    assert table["p_holm"].tolist() == pytest.approx([0.02, 0.04, 0.5])
    assert list(table.columns[:9]) == [
        "model",
        "attribute",
        "metric",
        "delta",
        "ci_low",
        "ci_high",
        "p_value",
        "p_holm",
        "primary",
    ]
    with pytest.raises(ConfigError, match="primary"):
        comparison_table(rows, {"model": "fft", "attribute": "race", "metric": "eod"})


def test_compare_all_pairs_on_shared_seeds_and_never_crashes_on_a_missing_family() -> None:
    labels, membership, _ = _data()
    rng = np.random.default_rng(6)
    reference = {s: _model(labels, rng, 0.75) for s in (0, 1, 2)}
    methods = {
        "merge": {s: _model(labels, rng, 0.8) for s in (0, 1, 2)},
        "inject:worst": {0: _model(labels, rng, 0.7), 2: _model(labels, rng, 0.7)},  # absent from seed 1
        "only_seed_9": {9: _model(labels, rng, 0.7)},
    }
    tiny = pd.DataFrame({"men": np.arange(N) < 6, "women": np.arange(N) >= 400})
    table = compare_all(
        labels,
        {"race": membership, "gender": tiny},
        methods,
        reference,
        primary={"model": "merge", "attribute": "race", "metric": "eod"},
        n_resamples=100,
    )
    assert len(table) == 3 * 5  # accuracy + (race, gender) × (dpd, eod) per model
    merge = table[table["model"] == "merge"].set_index(["attribute", "metric"])
    assert merge.loc[("race", "eod"), "primary"] and merge.loc[("all", "accuracy"), "n_seeds"] == 3
    inject = table[table["model"] == "inject:worst"]
    assert (inject["n_seeds"] == 2).all() and (inject["seeds"] == "0,2").all()
    gender = table[table["attribute"] == "gender"]
    assert gender["delta"].isna().all() and gender["p_holm"].isna().all()
    lonely = table[table["model"] == "only_seed_9"]
    assert lonely["delta"].isna().all() and (lonely["reason"] == "no seed shared with the reference").all()

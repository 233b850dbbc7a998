"""Method-vs-reference comparisons: seed variance, honest one-seed fallback, NaN when undefined, Holm."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import equalized_odds_difference
from scipy import optimize, stats

from fairmerge.data import load_dataset
from fairmerge.errors import ConfigError, DataError
from fairmerge.fairness import compare_all, compare_to_reference, comparison_table, holm
from fairmerge.fairness.base_rates import labels_dpd
from fairmerge.fairness.bootstrap import resample_counts
from fairmerge.fairness.comparisons import default_secondaries, seed_mean_p_value, seed_mean_test
from fairmerge.fairness.simulation import CoupledModels, Population, draw_predictions, effect_for, true_deltas

N = 600


@pytest.fixture(scope="module")
def hatexplain_race(data_dir: Path) -> tuple[np.ndarray, pd.DataFrame]:
    split = load_dataset("hatexplain", data_dir)["test"]
    return split.labels, split.membership("race")


def _data(seed: int = 0) -> tuple[np.ndarray, pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 3, N)
    labels = rng.integers(0, 2, N)
    return labels, pd.DataFrame({f"g{k}": group == k for k in range(3)}), group


def _model(labels: np.ndarray, rng: np.random.Generator, accuracy: float) -> np.ndarray:
    return np.where(rng.random(labels.size) < accuracy, labels, 1 - labels)


def test_one_seed_delta_is_fairlearns_and_says_seed_variance_is_not_estimated() -> None:
    labels, membership, group = _data()
    rng = np.random.default_rng(1)
    method, reference = _model(labels, rng, 0.8), _model(labels, rng, 0.7)
    result = compare_to_reference(labels, membership, [method], [reference], metric="eod", n_resamples=300)
    expected = equalized_odds_difference(
        labels, method, sensitive_features=group
    ) - equalized_odds_difference(labels, reference, sensitive_features=group)
    assert result["delta"] == pytest.approx(expected, abs=1e-12)
    assert result["n_seeds"] == 1 and "one seed" in result["method"] and np.isinf(result["df"])
    acc = compare_to_reference(labels, None, [method], [reference], metric="accuracy", n_resamples=300)
    assert acc["delta"] == pytest.approx(np.mean(method == labels) - np.mean(reference == labels))
    assert acc["ci_low"] > 0 and acc["p_value"] < 0.01


def _reference_loop(
    labels: np.ndarray, group: np.ndarray, methods: list, references: list, b: int, seed: int
) -> tuple[float, float, float]:
    """The comparison by hand: a loop over the same post draws, fairlearn's EOD, the pivot over U."""
    rng = np.random.default_rng(seed)
    draws = np.concatenate([resample_counts(labels.size, min(250, b - k), rng) for k in range(0, b, 250)])
    rows = []
    for counts in draws:  # bootstrap_sums' draws, in its chunks of 250
        idx = np.repeat(np.arange(labels.size), counts)
        rows.append(
            [
                equalized_odds_difference(labels[idx], m[idx], sensitive_features=group[idx])
                - equalized_odds_difference(labels[idx], r[idx], sensitive_features=group[idx])
                for m, r in zip(methods, references, strict=True)
            ]
        )
    replicates = np.asarray(rows)
    s = len(methods)
    cov = np.cov(replicates, rowvar=False)
    shared = max((cov.sum() - np.trace(cov)) / (s * (s - 1)), 0.0)  # a negative estimate counts as 0
    observed = [
        equalized_odds_difference(labels, m, sensitive_features=group)
        - equalized_odds_difference(labels, r, sensitive_features=group)
        for m, r in zip(methods, references, strict=True)
    ]
    between = np.var(observed, ddof=1) / s
    half = _fiducial_quantile_by_conditioning_on_u(0.025, shared, between, s)
    delta = float(np.mean(observed))
    return delta - half, delta + half, 2 * _fiducial_tail_by_conditioning_on_u(abs(delta), shared, between, s)


def _fiducial_tail_by_conditioning_on_u(a: float, shared: float, between: float, s: int) -> float:
    """P(Z·√(V + (S−1)·between/U) ≥ a), U ~ χ²_{S−1}: integrated over U (the module integrates over Z)."""
    return float(
        stats.chi2(s - 1).expect(
            lambda u: stats.norm.sf(a / np.sqrt(shared + (s - 1) * between / u)), epsabs=1e-13, epsrel=1e-11
        )
    )


def _fiducial_quantile_by_conditioning_on_u(level: float, shared: float, between: float, s: int) -> float:
    return float(
        optimize.brentq(
            lambda a: _fiducial_tail_by_conditioning_on_u(a, shared, between, s) - level, 0, 100, xtol=1e-13
        )
    )


def test_interval_and_p_equal_a_reference_loop_and_are_duals() -> None:
    labels, membership, group = _data()
    rng = np.random.default_rng(2)
    # Each seed is a base model with 10 % of its predictions redrawn: the seeds share post-level
    # noise (V_posts > 0) and differ from each other (s² > 0), so both parts of the variance count.
    bases = _model(labels, rng, 0.75), _model(labels, rng, 0.8)
    reference, method = (
        [np.where(rng.random(N) < 0.1, rng.integers(0, 2, N), base) for _ in range(3)] for base in bases
    )
    result = compare_to_reference(labels, membership, method, reference, metric="eod", n_resamples=40, seed=7)
    low, high, p = _reference_loop(labels, group, method, reference, 40, 7)
    assert (result["ci_low"], result["ci_high"], result["p_value"]) == pytest.approx((low, high, p), abs=1e-8)
    assert result["se_posts"] > 0 and result["se_seeds"] > 0  # both parts of the variance are exercised
    # Duality: the p-value of a Δ̄ at the interval's end is exactly 1 − confidence.
    at_end = seed_mean_p_value(np.asarray(result["seed_deltas"]) - result["ci_high"], result["se_posts"] ** 2)
    assert at_end == pytest.approx(0.05, abs=1e-9)


def test_fiducial_interval_is_t_without_post_variance_and_normal_without_seed_variance() -> None:
    deltas = np.array([0.1, 0.25, -0.05])
    s = deltas.std(ddof=1) / np.sqrt(3)
    only_seeds = seed_mean_test(deltas, 0.0, 400)
    assert only_seeds["ci_high"] - only_seeds["delta"] == pytest.approx(stats.t.ppf(0.975, 2) * s, rel=1e-9)
    assert only_seeds["p_value"] == pytest.approx(2 * stats.t.sf(deltas.mean() / s, 2), rel=1e-9)
    only_posts = seed_mean_test(np.full(3, 0.1), 0.01, 400)
    assert only_posts["ci_high"] - 0.1 == pytest.approx(stats.norm.ppf(0.975) * 0.1, rel=1e-9)


def test_fiducial_interval_covers_where_the_plug_in_satterthwaite_interval_does_not() -> None:
    """Δ_s = P + e_s (normal), S = 3, seed part 10× the post part (the shares of the calibration benchmark).

    The plug-in Satterthwaite t covers about 0.92 of the time; the fiducial interval about 0.957.
    Coverage of 0 is read from the dual p-value at the truth. 3,000 replicates: SE 0.004.
    """
    rng = np.random.default_rng(11)
    reps, s, post, seed_part = 3000, 3, 1.0, 10.0
    deltas = rng.normal(0, np.sqrt(post), (reps, 1)) + rng.normal(0, np.sqrt(seed_part * s), (reps, s))
    fiducial = np.mean([seed_mean_p_value(d, post) >= 0.05 for d in deltas])
    between = deltas.var(axis=1, ddof=1) / s
    df = (post + between) ** 2 / (between**2 / (s - 1))
    satterthwaite = np.mean(np.abs(deltas.mean(axis=1)) <= stats.t.ppf(0.975, df) * np.sqrt(post + between))
    assert satterthwaite < 0.935
    assert 0.945 <= fiducial <= 0.97


def test_three_identical_seeds_give_the_one_seed_interval_and_different_seeds_widen_it() -> None:
    labels, membership, _ = _data()
    rng = np.random.default_rng(3)
    method, reference = _model(labels, rng, 0.8), _model(labels, rng, 0.7)
    for metric in ("eod", "dpd", "accuracy"):
        one = compare_to_reference(labels, membership, [method], [reference], metric=metric, n_resamples=300)
        three = compare_to_reference(
            labels, membership, [method] * 3, [reference] * 3, metric=metric, n_resamples=300
        )
        for key in ("delta", "ci_low", "ci_high", "p_value", "se"):
            assert three[key] == pytest.approx(one[key], abs=1e-12), (metric, key)
    spread = [_model(labels, rng, a) for a in (0.65, 0.8, 0.95)]
    wide = compare_to_reference(
        labels, membership, spread, [reference] * 3, metric="accuracy", n_resamples=300
    )
    narrow = compare_to_reference(
        labels, membership, [method], [reference], metric="accuracy", n_resamples=300
    )
    assert wide["ci_high"] - wide["ci_low"] > 2 * (narrow["ci_high"] - narrow["ci_low"])
    assert wide["df"] < 10 and wide["se_seeds"] > wide["se_posts"]
    same = compare_to_reference(labels, membership, [reference], [reference], metric="dpd", n_resamples=200)
    assert same["delta"] == 0.0 and same["ci_low"] == same["ci_high"] == 0.0 and same["p_value"] == 1.0


def test_calibrated_against_simulated_truth_on_the_real_split(
    hatexplain_race: tuple[np.ndarray, pd.DataFrame],
) -> None:
    """Type-I error and coverage of the study's test under the coupled-classifier simulation."""
    labels, membership = hatexplain_race
    pop = Population.from_split(labels, membership)
    models = CoupledModels()
    rng = np.random.default_rng(0)
    effect = effect_for(pop, models, kind="eod", target=0.2)
    truth = true_deltas(pop, models, kind="eod", effect=effect)["eod"]
    rejected, covered, reps = 0, 0, 120
    for r in range(reps):
        for shift, target in ((0.0, 0.0), (effect, truth)):
            y, members, method, reference = draw_predictions(
                pop, models, kind="eod", effect=shift, n_seeds=3, rng=rng
            )
            result = compare_to_reference(
                y,
                pd.DataFrame(members.astype(bool)),
                method,
                reference,
                metric="eod",
                n_resamples=200,
                seed=r,
            )
            if shift == 0.0:
                rejected += result["p_value"] < 0.05
            else:
                covered += result["ci_low"] <= target <= result["ci_high"]
    assert rejected / reps <= 0.11  # nominal 0.05; 120 replicates: SE 0.02
    assert covered / reps >= 0.88


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


def test_family_primary_alone_holm_over_secondaries_rest_exploratory() -> None:
    rows = [
        {"model": "merge", "attribute": "race", "metric": "eod", "delta": -0.1, "p_value": 0.02},
        {"model": "merge", "attribute": "race", "metric": "dpd", "delta": -0.1, "p_value": 0.02},
        {"model": "merge", "attribute": "all", "metric": "accuracy", "delta": 0.0, "p_value": 0.5},
        {"model": "lora", "attribute": "race", "metric": "eod", "delta": -0.3, "p_value": 0.001},
    ]
    primary = {"model": "merge", "attribute": "race", "metric": "eod"}
    secondary = [
        {"model": "merge", "attribute": "race", "metric": "dpd"},
        {"model": "merge", "attribute": "all", "metric": "accuracy"},
    ]
    table = comparison_table(rows, primary, secondary)
    assert table["primary"].tolist() == [True, False, False, False]
    assert table["role"].tolist() == ["primary", "secondary", "secondary", "exploratory"]
    p_holm = table["p_holm"].tolist()
    assert p_holm[:3] == pytest.approx([0.02, 0.04, 0.5]) and np.isnan(p_holm[3])
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
    with pytest.raises(ConfigError, match="declared comparison"):
        comparison_table(rows, {"model": "fft", "attribute": "race", "metric": "eod"})
    assert default_secondaries(primary, ["race"]) == [
        {"model": "merge", "attribute": "all", "metric": "accuracy"},
        {"model": "merge", "attribute": "race", "metric": "dpd"},
    ]


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
    assert merge.loc[("race", "dpd"), "labels_dpd"] == pytest.approx(
        labels_dpd(labels, {"race": membership})["race"]
    )
    assert np.isnan(merge.loc[("race", "eod"), "labels_dpd"])
    assert (table[table["model"] != "merge"]["role"] == "exploratory").all()
    inject = table[table["model"] == "inject:worst"]
    assert (inject["n_seeds"] == 2).all() and (inject["seeds"] == "0,2").all()
    gender = table[table["attribute"] == "gender"]
    assert gender["delta"].isna().all() and gender["p_holm"].isna().all()
    lonely = table[table["model"] == "only_seed_9"]
    assert lonely["delta"].isna().all() and (lonely["reason"] == "no seed shared with the reference").all()

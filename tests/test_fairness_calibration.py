"""Validation-chosen thresholds and the ThresholdOptimizer baseline on cached scores."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fairmerge.data.types import TextSplit
from fairmerge.errors import ConfigError, DataError
from fairmerge.evaluation import evaluate_calibrated
from fairmerge.fairness.calibration import (
    NO_GROUP,
    SEVERAL_GROUPS,
    CachedScoreClassifier,
    choose_threshold,
    predict_at,
    sensitive_values,
    threshold_optimizer_baseline,
)


def _accuracy(labels: np.ndarray, scores: np.ndarray, threshold: float) -> float:
    return float(np.mean(predict_at(scores, threshold) == labels))


def _balanced(labels: np.ndarray, scores: np.ndarray, threshold: float) -> float:
    p = predict_at(scores, threshold)
    return float((p[labels == 1].mean() + (1 - p[labels == 0]).mean()) / 2)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 1), st.integers(0, 20)), min_size=2, max_size=60),
    st.sampled_from(["accuracy", "balanced_accuracy"]),
)
def test_threshold_is_optimal_on_validation(pairs: list[tuple[int, int]], objective: str) -> None:
    labels = np.array([y for y, _ in pairs])
    scores = np.array([s / 20 for _, s in pairs])  # ties on purpose
    if objective == "balanced_accuracy" and len(set(labels.tolist())) < 2:
        with pytest.raises(DataError, match="single class"):
            choose_threshold(labels, scores, objective)  # type: ignore[arg-type]
        return
    threshold = choose_threshold(labels, scores, objective)  # type: ignore[arg-type]
    metric = _accuracy if objective == "accuracy" else _balanced
    # Every decision a threshold can make on these scores: below all, between, and above all.
    grid = np.concatenate([[-1.0], np.arange(41) / 40, [2.0]])
    assert metric(labels, scores, threshold) >= max(metric(labels, scores, t) for t in grid) - 1e-12


def test_separable_scores_get_a_threshold_between_the_classes() -> None:
    labels = np.array([0, 0, 0, 1, 1])
    scores = np.array([0.1, 0.6, 0.7, 0.8, 0.95])
    assert choose_threshold(labels, scores) == pytest.approx(0.75)
    # Ties in accuracy go to the candidate closest to the argmax threshold 0.5.
    assert choose_threshold(np.array([0, 1]), np.array([0.2, 0.9])) == pytest.approx(0.55)


def test_balanced_accuracy_shifts_the_threshold_for_rare_positives() -> None:
    rng = np.random.default_rng(0)
    labels = (rng.random(2000) < 0.1).astype(int)
    scores = np.clip(0.35 * labels + rng.normal(0.3, 0.12, 2000), 0, 1)
    accuracy_t = choose_threshold(labels, scores, "accuracy")
    balanced_t = choose_threshold(labels, scores, "balanced_accuracy")
    assert balanced_t < accuracy_t
    assert _balanced(labels, scores, balanced_t) > _balanced(labels, scores, accuracy_t)


def test_threshold_uses_validation_only() -> None:
    rng = np.random.default_rng(1)

    def split(labels: np.ndarray) -> TextSplit:
        n = len(labels)
        groups = [frozenset({"A"}) if i % 2 else frozenset({"B"}) for i in range(n)]
        return TextSplit([str(i) for i in range(n)], ["t"] * n, labels, {"a": groups})

    val_labels = rng.integers(0, 2, 200)
    val_scores = np.clip(0.4 * val_labels + rng.random(200) * 0.6, 0, 1)
    test_labels = rng.integers(0, 2, 200)
    test_scores = np.clip(0.4 * test_labels + rng.random(200) * 0.6, 0, 1)
    val = split(val_labels)
    first = evaluate_calibrated(val, val_scores, split(test_labels), test_scores, n_resamples=0)
    flipped = evaluate_calibrated(val, val_scores, split(1 - test_labels), test_scores, n_resamples=0)
    assert first.threshold == flipped.threshold == choose_threshold(val_labels, val_scores)
    accuracy = first.test.query("attribute == 'all' and metric == 'accuracy'")["value"].iloc[0]
    accuracy_flipped = flipped.test.query("attribute == 'all' and metric == 'accuracy'")["value"].iloc[0]
    assert accuracy == pytest.approx(1 - accuracy_flipped)


def test_bad_threshold_input() -> None:
    with pytest.raises(ConfigError, match="objective"):
        choose_threshold(np.array([0, 1]), np.array([0.1, 0.9]), "f1")  # type: ignore[arg-type]
    with pytest.raises(DataError, match="NaN"):
        choose_threshold(np.array([0, 1]), np.array([0.1, np.nan]))
    with pytest.raises(DataError, match="equal"):
        choose_threshold(np.array([0, 1, 1]), np.array([0.1, 0.9]))


def test_sensitive_values_one_per_post() -> None:
    groups = [frozenset({"A"}), frozenset(), frozenset({"A", "B"}), frozenset({"B"})]
    assert sensitive_values(groups).tolist() == ["A", NO_GROUP, SEVERAL_GROUPS, "B"]


def test_cached_score_classifier_returns_the_cached_scores() -> None:
    scores = np.array([0.1, 0.7, 0.5])
    estimator = CachedScoreClassifier().fit(scores[:, None], np.array([0, 1, 0]))
    np.testing.assert_array_equal(estimator.predict_proba(scores[:, None])[:, 1], scores)
    np.testing.assert_array_equal(estimator.predict(scores[:, None]), [0, 1, 0])


def _biased_scores(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scores that are shifted upwards for group B: argmax selects B far more often."""
    groups = rng.choice(np.array(["A", "B"], dtype=object), n)
    labels = (rng.random(n) < 0.4).astype(int)
    scores = np.clip(0.3 * labels + 0.25 * (groups == "B") + rng.random(n) * 0.5, 0, 1)
    return scores, labels, groups


def test_threshold_optimizer_reduces_the_gap_it_targets() -> None:
    rng = np.random.default_rng(2)
    val_scores, val_labels, val_groups = _biased_scores(rng, 3000)
    test_scores, _, test_groups = _biased_scores(rng, 3000)

    def dpd(predictions: np.ndarray) -> float:
        return abs(predictions[test_groups == "A"].mean() - predictions[test_groups == "B"].mean())

    fair = threshold_optimizer_baseline(
        val_scores, val_labels, val_groups, test_scores, test_groups, constraint="demographic_parity", seed=0
    )
    assert set(np.unique(fair)) <= {0, 1} and fair.shape == test_scores.shape
    assert dpd(fair) < 0.05 < dpd(predict_at(test_scores, 0.5))
    again = threshold_optimizer_baseline(
        val_scores, val_labels, val_groups, test_scores, test_groups, constraint="demographic_parity", seed=0
    )
    np.testing.assert_array_equal(fair, again)


def test_threshold_optimizer_folds_unusable_categories() -> None:
    rng = np.random.default_rng(3)
    val_scores, val_labels, val_groups = _biased_scores(rng, 600)
    test_scores, _, test_groups = _biased_scores(rng, 200)
    val_groups[:3], val_labels[:3] = "tiny", 1  # one class only in validation
    test_groups[:2] = "unseen"
    with pytest.warns(UserWarning, match=r"folding categories \['tiny', 'unseen'\]"):
        predictions = threshold_optimizer_baseline(
            val_scores, val_labels, val_groups, test_scores, test_groups, constraint="equalized_odds"
        )
    assert predictions.shape == (200,)
    with pytest.raises(DataError, match="no sensitive category has both classes"):
        threshold_optimizer_baseline(
            val_scores, np.ones_like(val_labels), val_groups, test_scores, test_groups
        )
    with pytest.raises(ConfigError, match="constraint"):
        threshold_optimizer_baseline(
            val_scores,
            val_labels,
            val_groups,
            test_scores,
            test_groups,
            constraint="parity",  # type: ignore[arg-type]
        )

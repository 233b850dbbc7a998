"""Decision thresholds chosen on validation scores, and fairlearn's ThresholdOptimizer baseline.

Both work on cached P(y=1) scores, so no model is run again. A prediction is positive when
``score > threshold``; with threshold 0.5 this is exactly the argmax of a two-class softmax.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Literal

import numpy as np
from fairlearn.postprocessing import ThresholdOptimizer
from sklearn.base import BaseEstimator, ClassifierMixin

from fairmerge.errors import ConfigError, DataError

Objective = Literal["accuracy", "balanced_accuracy"]
Constraint = Literal["equalized_odds", "demographic_parity"]

NO_GROUP = "(none)"
"""Sensitive value of posts that target no group of the attribute."""
SEVERAL_GROUPS = "(multiple)"
"""Sensitive value of posts that target more than one group of the attribute."""
OTHER = "(other)"
"""Sensitive value that :func:`threshold_optimizer_baseline` folds unusable categories into."""


def predict_at(scores: np.ndarray, threshold: float) -> np.ndarray:
    """0/1 decisions ``score > threshold`` (threshold 0.5 = argmax of two-class probabilities)."""
    return (np.asarray(scores, dtype=np.float64) > threshold).astype(np.int64)


def choose_threshold(
    labels_val: np.ndarray, scores_val: np.ndarray, objective: Objective = "accuracy"
) -> float:
    """Threshold that maximises ``objective`` on validation data (only validation data enters).

    Candidates are midpoints between consecutive distinct validation scores (plus one threshold
    below all scores and one at the highest), so every distinct split of the validation set is
    tried once and the chosen threshold sits as far as possible from the scores it separates.
    Ties go to the candidate closest to 0.5, the argmax decision.
    """
    if objective not in ("accuracy", "balanced_accuracy"):
        raise ConfigError(f"objective must be 'accuracy' or 'balanced_accuracy', got {objective!r}")
    y = np.asarray(labels_val)
    s = np.asarray(scores_val, dtype=np.float64)
    if y.ndim != 1 or y.shape != s.shape or y.size == 0:
        raise DataError(
            f"validation labels {y.shape} and scores {s.shape} must be equal, non-empty 1-d arrays"
        )
    if not np.isin(y, (0, 1)).all():
        raise DataError("validation labels must be binary 0/1")
    if not np.isfinite(s).all():
        raise DataError("validation scores contain NaN or infinite values")
    positives = int(y.sum())
    negatives = y.size - positives
    if objective == "balanced_accuracy" and (positives == 0 or negatives == 0):
        raise DataError("balanced accuracy is undefined: validation labels contain a single class")

    distinct, inverse = np.unique(s, return_inverse=True)
    pos_at = np.bincount(inverse, weights=y, minlength=distinct.size)
    neg_at = np.bincount(inverse, weights=1 - y, minlength=distinct.size)
    # Candidate j predicts positive for the scores above distinct[j - 1] (j = 0: everything).
    tp = np.concatenate([[positives], positives - np.cumsum(pos_at)])
    fp = np.concatenate([[negatives], negatives - np.cumsum(neg_at)])
    tn = negatives - fp
    candidates = np.concatenate(
        [[np.nextafter(distinct[0], -np.inf)], (distinct[:-1] + distinct[1:]) / 2, [distinct[-1]]]
    )
    value = (tp + tn) / y.size if objective == "accuracy" else (tp / positives + tn / negatives) / 2
    best = np.flatnonzero(value >= value.max() - 1e-12)
    return float(candidates[best[np.argmin(np.abs(candidates[best] - 0.5))]])


def sensitive_values(groups: Sequence[frozenset[str]]) -> np.ndarray:
    """One sensitive value per post from set-valued membership of one attribute.

    ThresholdOptimizer needs exactly one sensitive value per post. A post that targets exactly one
    group gets that group; a post that targets none gets ``"(none)"``; a post that targets several
    gets ``"(multiple)"`` (a category of its own, so every post keeps a prediction).
    """
    return np.array(
        [next(iter(m)) if len(m) == 1 else (NO_GROUP if not m else SEVERAL_GROUPS) for m in groups],
        dtype=object,
    )


class CachedScoreClassifier(ClassifierMixin, BaseEstimator):
    """A prefit classifier whose single input column *is* its P(y=1) score.

    Lets ThresholdOptimizer post-process cached model scores without re-running the model.
    """

    def fit(self, X: np.ndarray, y: np.ndarray) -> CachedScoreClassifier:
        self.classes_ = np.array([0, 1])
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return True

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        score = np.asarray(X, dtype=np.float64).reshape(len(X), -1)[:, 0]
        return np.column_stack([1.0 - score, score])

    def predict(self, X: np.ndarray) -> np.ndarray:
        return predict_at(self.predict_proba(X)[:, 1], 0.5)


def threshold_optimizer_baseline(
    val_scores: np.ndarray,
    val_labels: np.ndarray,
    val_sensitive: np.ndarray,
    test_scores: np.ndarray,
    test_sensitive: np.ndarray,
    *,
    constraint: Constraint = "equalized_odds",
    objective: Literal["accuracy_score", "balanced_accuracy_score"] = "accuracy_score",
    seed: int = 0,
) -> np.ndarray:
    """Test predictions of fairlearn's ThresholdOptimizer fitted on validation scores.

    Per-group (randomised) thresholds are fitted on the validation scores, labels and one sensitive
    value per post (see :func:`sensitive_values`), then applied to the test scores. Categories that
    ThresholdOptimizer cannot fit — a single class in validation, or absent from validation but
    present in test — are folded into ``"(other)"`` (into the largest usable category when
    ``"(other)"`` would still hold one class) with a warning. ``seed`` fixes the randomised choice
    between the two thresholds ThresholdOptimizer may mix for a group.
    """
    if constraint not in ("equalized_odds", "demographic_parity"):
        raise ConfigError(f"constraint must be 'equalized_odds' or 'demographic_parity', got {constraint!r}")
    vs, ts = np.asarray(val_scores, dtype=np.float64), np.asarray(test_scores, dtype=np.float64)
    vy = np.asarray(val_labels)
    vg = np.asarray(val_sensitive, dtype=object)
    tg = np.asarray(test_sensitive, dtype=object)
    if not (vs.shape == vy.shape == vg.shape) or vs.ndim != 1 or vs.size == 0:
        raise DataError(
            f"validation scores {vs.shape}, labels {vy.shape} and sensitive values {vg.shape} "
            "must be equal, non-empty 1-d arrays"
        )
    if ts.shape != tg.shape or ts.ndim != 1:
        raise DataError(f"test scores {ts.shape} and sensitive values {tg.shape} must be equal 1-d arrays")
    if not np.isin(vy, (0, 1)).all():
        raise DataError("validation labels must be binary 0/1")
    vg, tg = _fold_unusable(vy, vg, tg)

    optimizer = ThresholdOptimizer(
        estimator=CachedScoreClassifier().fit(vs[:, None], vy),
        constraints=constraint,
        objective=objective,
        prefit=True,
        predict_method="predict_proba",
    )
    optimizer.fit(vs[:, None], vy.astype(np.int64), sensitive_features=vg)
    predictions = optimizer.predict(ts[:, None], sensitive_features=tg, random_state=seed)
    return np.asarray(predictions, dtype=np.int64)


def _fold_unusable(labels: np.ndarray, val: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fold categories ThresholdOptimizer cannot fit into ``"(other)"`` (see the caller).

    When ``"(other)"`` itself has a single class of validation labels, it is folded further into
    the largest usable category (in practice ``"(none)"``, the posts that target no group).
    """
    usable = {g for g in set(val) if len(set(labels[val == g])) == 2}
    if not usable:
        raise DataError("ThresholdOptimizer cannot fit: no sensitive category has both classes in validation")
    unusable = sorted(str(g) for g in set(val) | set(test) if g not in usable)
    if not unusable:
        return val, test
    target = OTHER
    if len(set(labels[~np.isin(val, list(usable))])) < 2:
        values, sizes = np.unique(val[np.isin(val, list(usable))].astype(str), return_counts=True)
        target = str(values[np.argmax(sizes)])
    warnings.warn(
        f"ThresholdOptimizer: folding categories {unusable} into {target!r} "
        "(single class in validation, or absent from validation)",
        UserWarning,
        stacklevel=3,
    )
    fold = np.vectorize(lambda g: g if g in usable else target, otypes=[object])
    return fold(val), fold(test)

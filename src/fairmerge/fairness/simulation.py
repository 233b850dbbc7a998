"""Two coupled classifiers over seeds on a real split's posts: the truth the tests are measured against.

Used by the power analysis (:mod:`fairmerge.fairness.power`), ``benchmarks/comparison_calibration.py``
and the calibration tests. The population is the split itself (its labels and one attribute's
membership, overlaps included); a simulated test split is a bootstrap draw of its posts, so group
sizes and class counts vary as they would between test splits of that size.

A model m trained with seed s predicts 1 on post i when

    a_m(i) + u_{m,s}(i) + √c · z_i + √(1 − c) · ε_{m,s,i} > 0,

- ``a_m(i) = Φ⁻¹(rate)``: the model's TPR (y = 1) or FPR (y = 0) for post i's group. Every group
  has ``tpr`` / ``fpr`` except the *shifted* group (the group with most positives among those that
  enter the TPR gap), whose rates the reference moves by ``reference_gap`` and the method by
  ``reference_gap + effect`` (``kind`` says how: ``eod`` lowers TPR and raises FPR, ``dpd`` raises
  both, ``accuracy`` does the ``eod`` move on every post);
- ``u_{m,s}(i)``: a seed's shift of the group's probit rate (the mean of the post's groups' shifts,
  or the no-group shift), N(0, ``seed_sd``²) per group, label, model and seed; a method seed's shift
  correlates with the same seed's reference shift by ``seed_coupling``;
- ``z_i``: the post's difficulty, shared by both models and every seed (post-level coupling ``c``);
- ``ε``: noise of one model and seed on one post.

Whatever ``c``, P(ŷ = 1) = Φ(a + u), so the population rates (and the truth) do not depend on the
coupling; the coupling only sets how much the two models' errors on the same posts cancel in Δ.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy.stats import norm

from fairmerge.errors import DataError
from fairmerge.fairness.metrics import (
    MIN_GROUP_SIZE,
    MIN_NEGATIVES,
    MIN_POSITIVES,
    Thresholds,
    _attribute_metrics,
    _check_binary,
    _stack_memberships,
)

Kind = Literal["eod", "dpd", "accuracy"]


@dataclass(frozen=True)
class CoupledModels:
    """How the simulated reference and method behave (see the module docstring)."""

    tpr: float = 0.75
    fpr: float = 0.15
    reference_gap: float = 0.35
    seed_sd: float = 0.15
    seed_coupling: float = 0.5
    coupling: float = 0.6


@dataclass(frozen=True)
class Population:
    """A split's posts for one attribute: labels, membership, and which group is shifted."""

    labels: np.ndarray
    members: np.ndarray  # n × G 0/1
    shifted: int
    thresholds: Thresholds

    @classmethod
    def from_split(
        cls,
        labels: np.ndarray,
        membership: pd.DataFrame,
        *,
        min_group_size: int = MIN_GROUP_SIZE,
        min_positives: int = MIN_POSITIVES,
        min_negatives: int = MIN_NEGATIVES,
    ) -> Population:
        y = _check_binary(labels, "labels")
        members = membership.to_numpy().astype(np.int64)
        if members.shape != (y.size, membership.shape[1]) or members.shape[1] < 2:
            raise DataError(f"need a membership frame with {y.size} rows and at least two groups")
        positives = members[y == 1].sum(axis=0)
        entering = positives >= min_positives
        shifted = int(np.argmax(np.where(entering, positives, -1)))
        return cls(y, members, shifted, Thresholds(min_group_size, min_positives, min_negatives))

    def draw(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """A test split of the same size: a bootstrap draw of the posts (labels, members)."""
        rows = rng.integers(0, self.labels.size, self.labels.size)
        return self.labels[rows], self.members[rows]


def _base_probits(
    pop: Population, labels: np.ndarray, members: np.ndarray, models: CoupledModels, kind: Kind, gap: float
) -> np.ndarray:
    """a(i): Φ⁻¹ of each post's TPR or FPR for a model whose shifted group moves by ``gap``."""
    moved = np.ones(labels.size, bool) if kind == "accuracy" else members[:, pop.shifted] == 1
    tpr_move = gap if kind == "dpd" else -gap
    rate = np.where(labels == 1, models.tpr + tpr_move * moved, models.fpr + gap * moved)
    return np.asarray(norm.ppf(np.clip(rate, 1e-4, 1 - 1e-4)))


def _seed_shifts(members: np.ndarray, labels: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Per-post shifts (..., n) from per-group shifts (..., 2, G + 1): the mean over a post's groups."""
    weights = np.concatenate([members, (members.sum(axis=1) == 0)[:, None]], axis=1).astype(np.float64)
    weights /= weights.sum(axis=1, keepdims=True)
    by_label = shifts @ weights.T  # (..., 2, n)
    return np.where(labels == 1, by_label[..., 1, :], by_label[..., 0, :])


def _paired_models(
    models: CoupledModels, effect: float, groups: int, n_seeds: int, rng: np.random.Generator
) -> list[tuple[float, np.ndarray]]:
    """(gap, per-group seed shifts (seeds, 2, groups)) of the method, then of the reference."""
    reference = rng.normal(0, models.seed_sd, (n_seeds, 2, groups))
    fresh = rng.normal(0, models.seed_sd, (n_seeds, 2, groups))
    r = models.seed_coupling
    method = r * reference + np.sqrt(1 - r * r) * fresh
    return [(models.reference_gap + effect, method), (models.reference_gap, reference)]


def draw_predictions(
    pop: Population,
    models: CoupledModels,
    *,
    kind: Kind,
    effect: float,
    n_seeds: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """One simulated test split: labels, members, method predictions and reference predictions per seed."""
    labels, members = pop.draw(rng)
    z = rng.standard_normal(labels.size)
    out = []
    for gap, shift in _paired_models(models, effect, members.shape[1] + 1, n_seeds, rng):
        latent = _base_probits(pop, labels, members, models, kind, gap) + _seed_shifts(members, labels, shift)
        noise = rng.standard_normal((n_seeds, labels.size))
        score = latent + np.sqrt(models.coupling) * z + np.sqrt(1 - models.coupling) * noise
        out.append([(row > 0).astype(np.int64) for row in score])
    return labels, members, out[0], out[1]


def true_deltas(
    pop: Population, models: CoupledModels, *, kind: Kind, effect: float, n_seeds: int = 4000, seed: int = 0
) -> dict[str, float]:
    """E over seeds of metric(method) − metric(reference) on the whole population (the estimand).

    Each seed's population rates are Φ(a + u) averaged over the group's posts; gaps use the groups
    that qualify on the population's own counts.
    """
    rng = np.random.default_rng(seed)
    members = pop.members
    stacked, layout = _stack_memberships({"a": pd.DataFrame(members)}, pop.labels.size)
    y = pop.labels
    empty = np.zeros(stacked.shape[1])
    counts = np.stack([stacked[y == 1].sum(0), empty, empty, stacked[y == 0].sum(0)])  # TP, FP, FN, TN
    qualifies = pop.thresholds.qualifying(counts)
    # The same seed shifts for both models (common random numbers): both expectations are over the
    # same N(0, seed_sd²) shifts, so the truth is exactly 0 when the effect is 0.
    shift = rng.normal(0, models.seed_sd, (n_seeds, 2, members.shape[1] + 1))
    values = []
    for gap in (models.reference_gap + effect, models.reference_gap):
        p = norm.cdf(_base_probits(pop, y, members, models, kind, gap) + _seed_shifts(members, y, shift))
        pos, neg = stacked * (y == 1)[:, None], stacked * (y == 0)[:, None]
        tp, fp = p @ pos, p @ neg
        n_pos, n_neg = pos.sum(0), neg.sum(0)
        rates = {
            "selection_rate": (tp + fp) / np.maximum(n_pos + n_neg, 1),
            "accuracy": (tp + (n_neg - fp)) / np.maximum(n_pos + n_neg, 1),
            "tpr": tp / np.maximum(n_pos, 1),
            "fpr": fp / np.maximum(n_neg, 1),
        }
        gaps = _attribute_metrics(rates, qualifies, layout)
        values.append({"accuracy": rates["accuracy"][:, 0], "dpd": gaps["a", "dpd"], "eod": gaps["a", "eod"]})
    return {k: float(np.mean(values[0][k] - values[1][k])) for k in ("accuracy", "dpd", "eod")}


DIRECTION = {"eod": -1.0, "dpd": -1.0, "accuracy": 1.0}
"""Sign of the ``effect`` that lowers the kind's metric (a fairer gap; for accuracy, a loss)."""


def largest_effect(models: CoupledModels) -> float:
    """The largest |effect| searched: the method's shifted group reaches the others' rates.

    Beyond it the shifted group overshoots and the true ΔEOD shrinks again (not monotone).
    """
    return models.reference_gap


def effect_for(
    pop: Population, models: CoupledModels, *, kind: Kind, target: float, n_seeds: int = 1000
) -> float:
    """The ``effect`` whose true Δ (of metric ``kind``) is −|``target``| (bisection on |effect|).

    Raises ``DataError`` when no effect within :func:`largest_effect` reaches it.
    """
    metric = kind
    low, high = 0.0, largest_effect(models)
    if true_deltas(pop, models, kind=kind, effect=DIRECTION[kind] * high, n_seeds=n_seeds)[metric] > -abs(
        target
    ):
        raise DataError(f"the simulation cannot produce a true Δ{kind} of {-abs(target):.3f} on this split")
    for _ in range(10):
        middle = (low + high) / 2
        value = true_deltas(pop, models, kind=kind, effect=DIRECTION[kind] * middle, n_seeds=n_seeds)[metric]
        low, high = (middle, high) if value > -abs(target) else (low, middle)
    return DIRECTION[kind] * (low + high) / 2

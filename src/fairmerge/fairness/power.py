"""Power and minimum detectable difference of the comparison test actually used, by simulation.

The comparison (:func:`fairmerge.fairness.comparisons.compare_to_reference`) tests the seed-mean Δ
with Var = V_posts + s²_seeds / S and the fiducial distribution of the seed mean (a t with S − 1 df
for the seed part). Its power depends on the split's group sizes and class counts, on the number of
seeds (the heavy t tail with S − 1 df when seed variance dominates) and on how the models vary, so it
is simulated, not read off a formula: two coupled classifiers over seeds
(:mod:`fairmerge.fairness.simulation`) are drawn on bootstrap copies of the split's own posts, and
each simulated study runs the same test.

To take seconds, not minutes, V_posts — the bootstrap part, which barely varies between simulated
studies of one design — is the mean of ``calibration_runs`` full bootstrap runs; every other
simulated study computes only its per-seed Δs and calls the same test's p-value
(:func:`~fairmerge.fairness.comparisons.seed_mean_p_value`). ``benchmarks/comparison_calibration.py``
checks this shortcut against the full procedure.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from fairmerge.errors import ConfigError
from fairmerge.fairness.comparisons import Metric, _compare, seed_mean_p_value
from fairmerge.fairness.metrics import (
    MIN_GROUP_SIZE,
    MIN_NEGATIVES,
    MIN_POSITIVES,
    Thresholds,
    qualifying_groups,
)
from fairmerge.fairness.simulation import (
    DIRECTION,
    CoupledModels,
    Population,
    draw_predictions,
    effect_for,
    largest_effect,
    true_deltas,
)

_SEARCH_STEPS = 6  # bisection steps of the MDE over |effect| (precision: largest effect / 64)


def simulated_power(
    labels: np.ndarray,
    membership: pd.DataFrame | None,
    *,
    metric: Metric,
    n_seeds: int,
    effect: float,
    alpha: float = 0.05,
    simulations: int = 300,
    calibration_runs: int = 8,
    n_resamples: int = 1000,
    models: CoupledModels = CoupledModels(),
    seed: int = 0,
    min_group_size: int = MIN_GROUP_SIZE,
    min_positives: int = MIN_POSITIVES,
    min_negatives: int = MIN_NEGATIVES,
) -> dict[str, float]:
    """Share of simulated studies in which the comparison detects a true Δ``metric`` of −|effect|.

    ``labels`` / ``membership`` are the test split (one attribute; ``None`` or any frame for
    accuracy, whose simulated effect acts on every post). Detected = p < ``alpha`` with Δ̄ on the
    true side. Returns ``power``, its Monte-Carlo ``se``, the ``effect`` (true Δ) and ``n_seeds``;
    ``power`` is NaN when the gap is undefined on this split (fewer than two qualifying groups).
    """
    pop, thresholds = _population(labels, membership, min_group_size, min_positives, min_negatives)
    if metric != "accuracy" and not _gap_defined(pop, metric):  # e.g. SBIC race EOD: no negatives
        nan = float("nan")
        return {
            "power": nan,
            "se": nan,
            "effect": -abs(effect),
            "n_seeds": n_seeds,
            "alpha": alpha,
            "simulations": simulations,
        }
    shift = effect_for(pop, models, kind=metric, target=effect)
    detected = _detections(
        pop,
        models,
        metric,
        shift,
        n_seeds,
        alpha,
        simulations,
        calibration_runs,
        n_resamples,
        thresholds,
        seed,
    )
    power = float(np.mean(detected))
    return {
        "power": power,
        "se": float(np.sqrt(power * (1 - power) / simulations)),
        "effect": -abs(effect),
        "n_seeds": n_seeds,
        "alpha": alpha,
        "simulations": simulations,
    }


def simulated_mde(
    labels: np.ndarray,
    membership: pd.DataFrame | None,
    *,
    metric: Metric,
    n_seeds: int,
    power: float = 0.8,
    alpha: float = 0.05,
    simulations: int = 200,
    calibration_runs: int = 4,
    n_resamples: int = 1000,
    models: CoupledModels = CoupledModels(),
    seed: int = 0,
    min_group_size: int = MIN_GROUP_SIZE,
    min_positives: int = MIN_POSITIVES,
    min_negatives: int = MIN_NEGATIVES,
) -> float:
    """Smallest true |Δ``metric``| the comparison detects with ``power`` (simulated; bisection).

    ``inf`` when even the largest effect the simulation can produce is detected less often than
    ``power`` (e.g. EOD with three seeds on a small split), NaN when the gap is undefined (fewer
    than two qualifying groups).
    """
    if not 0.0 < power < 1.0:
        raise ConfigError(f"power must be in (0, 1), got {power}")
    pop, thresholds = _population(labels, membership, min_group_size, min_positives, min_negatives)
    if metric != "accuracy" and not _gap_defined(pop, metric):
        return float("nan")

    def detects(magnitude: float) -> bool:
        hits = _detections(
            pop,
            models,
            metric,
            DIRECTION[metric] * magnitude,
            n_seeds,
            alpha,
            simulations,
            calibration_runs,
            n_resamples,
            thresholds,
            seed,
        )
        return float(np.mean(hits)) >= power

    low, high = 0.0, largest_effect(models)
    if not detects(high):
        return float("inf")
    for _ in range(_SEARCH_STEPS):
        middle = (low + high) / 2
        low, high = (low, middle) if detects(middle) else (middle, high)
    return abs(true_deltas(pop, models, kind=metric, effect=DIRECTION[metric] * high, n_seeds=1000)[metric])


def minimum_detectable_difference(
    labels: np.ndarray,
    memberships: Mapping[str, pd.DataFrame],
    *,
    n_seeds: int = 3,
    power: float = 0.8,
    alpha: float = 0.05,
    simulations: int = 200,
    seed: int = 0,
    min_group_size: int = MIN_GROUP_SIZE,
    min_positives: int = MIN_POSITIVES,
    min_negatives: int = MIN_NEGATIVES,
) -> dict[str, dict[str, float]]:
    """Per attribute, the simulated MDE (:func:`simulated_mde`) of ΔDPD and ΔEOD with ``n_seeds`` seeds."""
    options = {
        "n_seeds": n_seeds,
        "power": power,
        "alpha": alpha,
        "simulations": simulations,
        "seed": seed,
        "min_group_size": min_group_size,
        "min_positives": min_positives,
        "min_negatives": min_negatives,
    }
    return {
        attribute: {
            metric: simulated_mde(labels, membership, metric=metric, **options)  # type: ignore[arg-type]
            for metric in ("dpd", "eod")
        }
        for attribute, membership in memberships.items()
    }


def _population(
    labels: np.ndarray,
    membership: pd.DataFrame | None,
    min_group_size: int,
    min_positives: int,
    min_negatives: int,
) -> tuple[Population, Thresholds]:
    if membership is None or membership.shape[1] < 2:  # accuracy: any two-column frame will do
        membership = pd.DataFrame(
            {"a": np.arange(len(labels)) % 2 == 0, "b": np.arange(len(labels)) % 2 == 1}
        )
    thresholds = Thresholds(min_group_size, min_positives, min_negatives)
    pop = Population.from_split(
        labels,
        membership,
        min_group_size=min_group_size,
        min_positives=min_positives,
        min_negatives=min_negatives,
    )
    return pop, thresholds


def _gap_defined(pop: Population, metric: str) -> bool:
    table = qualifying_groups(
        pop.labels,
        {"a": pd.DataFrame(pop.members.astype(bool))},
        min_group_size=pop.thresholds.min_group_size,
        min_positives=pop.thresholds.min_positives,
        min_negatives=pop.thresholds.min_negatives,
    )
    entered = table[table["entered"]].groupby("metric").size()
    needs = ("dpd",) if metric == "dpd" else ("tpr_gap", "fpr_gap")
    return all(entered.get(n, 0) >= 2 for n in needs)


def _detections(
    pop: Population,
    models: CoupledModels,
    metric: Metric,
    shift: float,
    n_seeds: int,
    alpha: float,
    simulations: int,
    calibration_runs: int,
    n_resamples: int,
    thresholds: Thresholds,
    seed: int,
) -> np.ndarray:
    """Per simulated study: did the test reject with Δ̄ < 0 (the side every simulated effect moves to)?"""
    if simulations < 1 or calibration_runs < 1:
        raise ConfigError(
            f"simulations and calibration_runs must be >= 1, got {simulations}, {calibration_runs}"
        )
    rng = np.random.default_rng([seed, n_seeds])
    variances, detected = [], np.zeros(simulations, dtype=bool)
    studies = []
    for run in range(simulations):
        labels, members, method, reference = draw_predictions(
            pop, models, kind=metric, effect=shift, n_seeds=n_seeds, rng=rng
        )
        full = run < calibration_runs
        result = _compare(
            labels,
            pd.DataFrame(members.astype(bool)),
            method,
            reference,
            metrics=(metric,),
            n_resamples=n_resamples if full else 2,
            confidence=1 - alpha,
            seed=run,
            thresholds=thresholds,
        )[metric]
        if full and not np.isnan(result["se_posts"]):  # se_posts = √V_posts
            variances.append(result["se_posts"] ** 2)
        studies.append(result["seed_deltas"])
    post_variance = float(np.mean(variances))
    for run, deltas in enumerate(studies):
        if not np.isnan(deltas).any():
            p_value = seed_mean_p_value(np.asarray(deltas), post_variance)
            detected[run] = p_value < alpha and np.mean(deltas) < 0
    return detected

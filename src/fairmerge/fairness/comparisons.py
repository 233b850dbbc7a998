"""Method-vs-reference comparisons over seeds and test posts, with a declared family and Holm.

A comparison asks whether a *method* (a training recipe run with S seeds) differs from a reference
(FFT, run with the same seeds) in accuracy, DPD or EOD on one test split. Δ̄ is the mean over seeds
of metric(method) − metric(reference), both scored on the same posts. Its variance model:

    Var(Δ̄) = V_posts + s²_seeds / S,

- ``V_posts``: the post-level variance of Δ̄ that every seed shares. One bootstrap draw of the test
  posts is shared by every model and seed (paired: both models scored on the same posts in each
  draw); V_posts is the mean covariance of two seeds' Δs across draws (:func:`shared_post_variance`;
  with one seed, the variance of its Δ);
- ``s²_seeds``: the sample variance of the S per-seed Δs. Because every seed is scored on the same
  posts, it holds the seed-to-seed variance *and* the post-level noise that differs between seeds,
  which is why V_posts keeps only the shared part (the bootstrap variance of the seed mean would
  count that noise twice: Var_boot(Δ̄) = V_posts + (mean Var_boot(Δ_s) − V_posts) / S).

The interval and the p-value come from the fiducial distribution of Δ̄ (:mod:`fairmerge.fairness.fiducial`:
Weerahandi's generalized pivot, Δ̄ − Z·√(V_posts + (S − 1)s²/(S·U)), U ~ χ²_{S−1}): the t interval with
S − 1 df when V_posts is 0, the normal one when s² is 0 (one seed, or identical seeds), duals of
each other, analytic (no resampling floor on p). It replaced the plug-in Satterthwaite t interval,
which covered 0.93 at nominal 0.95 with 3 seeds (the df estimated from s² grows exactly when s² is
too small); Satterthwaite's ν is still reported as ``df``, a description of how much of the variance
rests on the seeds. Calibration (coverage, type-I error, power) is measured by
``benchmarks/comparison_calibration.py`` (docs/statistics.md).

A study declares its family: one **primary** comparison (tested at α, unadjusted), a short list of
**secondary** ones (Holm over the secondaries only), and every other comparison is **exploratory**:
reported with its interval, ``p_holm`` null, no claim of significance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from fairmerge.errors import ConfigError, DataError
from fairmerge.fairness import fiducial
from fairmerge.fairness.base_rates import labels_dpd
from fairmerge.fairness.bootstrap import bootstrap_sums
from fairmerge.fairness.metrics import (
    MIN_GROUP_SIZE,
    MIN_NEGATIVES,
    MIN_POSITIVES,
    OVERALL,
    Thresholds,
    _attribute_metrics,
    _check_binary,
    _design,
    _rates,
    _stack_memberships,
)

Metric = Literal["accuracy", "dpd", "eod"]
Role = Literal["primary", "secondary", "exploratory"]
METRICS: tuple[Metric, ...] = ("accuracy", "dpd", "eod")
COMPARISON_COLUMNS = [
    "model",
    "attribute",
    "metric",
    "delta",
    "ci_low",
    "ci_high",
    "p_value",
    "p_holm",
    "primary",
    "role",
    "n_seeds",
    "se",
    "se_posts",
    "se_seeds",
    "df",
    "mde",
    "labels_dpd",
    "method",
]
_ATTRIBUTE = "attribute"  # internal name of the one attribute a comparison looks at
_POWER = 0.8  # power at which each comparison's own MDE is quoted


def compare_to_reference(
    labels: np.ndarray,
    membership: pd.DataFrame | None,
    method_predictions_by_seed: Sequence[np.ndarray],
    reference_predictions_by_seed: Sequence[np.ndarray],
    *,
    metric: Metric,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    min_group_size: int = MIN_GROUP_SIZE,
    min_positives: int = MIN_POSITIVES,
    min_negatives: int = MIN_NEGATIVES,
) -> dict[str, Any]:
    """Δ̄ = mean over paired seeds of metric(method) − metric(reference), with its interval and p.

    ``method_predictions_by_seed[i]`` and ``reference_predictions_by_seed[i]`` are seed i's 0/1
    test predictions (same posts, same order as ``labels``); ``membership`` is one attribute's
    boolean posts × groups frame (ignored for ``accuracy``). Groups enter DPD / EOD as in
    :func:`~fairmerge.fairness.group_metrics` with the same thresholds. ``n_resamples`` bootstrap
    draws of the posts estimate the post-level variance only (the p-value is analytic).

    Returns ``delta, ci_low, ci_high, p_value`` (two-sided; interval and p are duals), ``se``,
    ``se_posts``, ``se_seeds`` (√(s²/S); 0 with one seed), ``df`` (Satterthwaite's effective df;
    ``inf`` when seed variance is 0 or not estimated), ``mde`` (the |Δ| this test detects with about
    80 % power: the interval's half-width plus the fiducial distribution's 80 % quantile, the analogue
    of (t_{1−α/2} + t_{0.8})·SE), ``n_seeds``, ``seed_deltas``, ``method`` and ``reason`` (why a
    comparison is undefined, else empty). Undefined comparisons — a gap with fewer than two
    qualifying groups — are NaN throughout, never 0.
    """
    return _compare(
        labels,
        membership,
        method_predictions_by_seed,
        reference_predictions_by_seed,
        metrics=(metric,),
        n_resamples=n_resamples,
        confidence=confidence,
        seed=seed,
        thresholds=Thresholds(min_group_size, min_positives, min_negatives),
    )[metric]


def _compare(
    labels: np.ndarray,
    membership: pd.DataFrame | None,
    method_predictions_by_seed: Sequence[np.ndarray],
    reference_predictions_by_seed: Sequence[np.ndarray],
    *,
    metrics: Sequence[Metric],
    n_resamples: int,
    confidence: float,
    seed: int,
    thresholds: Thresholds,
) -> dict[str, dict[str, Any]]:
    """:func:`compare_to_reference` for several metrics of one attribute from one bootstrap draw."""
    if any(m not in METRICS for m in metrics):
        raise ConfigError(f"metric must be one of {list(METRICS)}, got {list(metrics)!r}")
    if n_resamples < 2:
        raise ConfigError(f"n_resamples must be >= 2 (they estimate a variance), got {n_resamples}")
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"confidence must be in (0, 1), got {confidence}")
    methods, references = list(method_predictions_by_seed), list(reference_predictions_by_seed)
    if not methods or len(methods) != len(references):
        raise DataError(
            f"need the same positive number of method and reference seeds, got {len(methods)} and "
            f"{len(references)}"
        )
    y = _check_binary(labels, "labels")
    predictions = [_check_binary(p, "predictions") for p in (*methods, *references)]
    if any(p.shape != y.shape for p in predictions):
        raise DataError(f"every prediction vector must have the {y.size} labels' length")
    if membership is None:
        if any(m != "accuracy" for m in metrics):
            raise DataError(f"metrics {list(metrics)} need a group membership frame")
        membership = pd.DataFrame(index=range(y.size))
    members, layout = _stack_memberships({_ATTRIBUTE: membership}, y.size)
    n_seeds = len(methods)
    design = np.hstack([_design(y, p, members) for p in predictions])
    columns = members.shape[1]
    qualifies = thresholds.qualifying(_design(y, predictions[0], members).sum(axis=0).reshape(4, columns))

    def statistic(sums: np.ndarray) -> dict[str, np.ndarray]:
        """Per metric, (replicates, seeds) Δs from count sums shaped (replicates, 2S · 4C)."""
        counts = np.moveaxis(sums.reshape(sums.shape[0], 2 * n_seeds, 4, columns), 2, 0)
        rates = _rates(counts)
        gaps = _attribute_metrics(rates, qualifies, layout) if columns > 1 else {}
        values = {m: rates["accuracy"][..., 0] if m == "accuracy" else gaps[_ATTRIBUTE, m] for m in metrics}
        return {m: v[:, :n_seeds] - v[:, n_seeds:] for m, v in values.items()}

    observed = statistic(design.sum(axis=0, keepdims=True))
    replicates = statistic(bootstrap_sums(design, n_resamples=n_resamples, seed=seed))
    out: dict[str, dict[str, Any]] = {}
    for metric in metrics:
        seed_deltas = observed[metric][0]
        if np.isnan(seed_deltas).any():
            out[metric] = _undefined(n_seeds, _reason(metric, membership, thresholds))
            continue
        draws = replicates[metric][~np.isnan(replicates[metric]).any(axis=1)]
        out[metric] = seed_mean_test(seed_deltas, shared_post_variance(draws), draws.shape[0], confidence)
    return out


def shared_post_variance(draws: np.ndarray) -> float:
    """V_posts: the post-level variance every seed shares, from bootstrap Δs shaped (replicates, S).

    With one seed, the bootstrap variance of its Δ. With S > 1, the mean covariance between two
    seeds' Δs over the same post draws: the post-level noise common to all seeds. The rest of the
    post-level noise differs from seed to seed and is already part of the between-seed variance,
    so adding the bootstrap variance of the seed mean instead would count it twice.
    """
    if draws.shape[0] < 2:
        return float("nan")
    covariance = np.atleast_2d(np.cov(draws, rowvar=False))
    n_seeds = covariance.shape[0]
    if n_seeds == 1:
        return float(covariance[0, 0])
    return float((covariance.sum() - np.trace(covariance)) / (n_seeds * (n_seeds - 1)))


def seed_mean_test(
    seed_deltas: np.ndarray,
    post_variance: float,
    n_resamples: int,
    confidence: float = 0.95,
    *,
    with_mde: bool = True,
) -> dict[str, Any]:
    """The test of Δ̄ = mean(seed_deltas) under Var(Δ̄) = V_posts + s²_seeds / S (module docstring).

    ``post_variance`` is V_posts (:func:`shared_post_variance` of ``n_resamples`` bootstrap
    replicates). The interval and p-value come from the fiducial distribution of Δ̄
    (:mod:`fairmerge.fairness.fiducial`); ``df`` is Satterthwaite's effective df, reported to say how
    much of the variance rests on the S − 1 df of the seeds. Used by :func:`compare_to_reference`;
    the power simulation runs the same test through :func:`seed_mean_p_value`. ``with_mde=False``
    skips the MDE.
    """
    deltas = np.asarray(seed_deltas, dtype=np.float64)
    n_seeds = deltas.size
    delta = float(deltas.mean())
    post_variance, seed_variance = _variance_parts(deltas, post_variance)
    variance = post_variance + seed_variance
    se = float(np.sqrt(variance))
    if seed_variance > 0:
        df = variance**2 / (seed_variance**2 / (n_seeds - 1) + post_variance**2 / max(n_resamples - 1, 1))
    else:
        df = float("inf")
    alpha = 1.0 - confidence
    if se > 0:
        half = fiducial.quantile(alpha / 2, post_variance, seed_variance, n_seeds)
        p_value = seed_mean_p_value(deltas, post_variance)
        power_quantile = fiducial.quantile(1 - _POWER, post_variance, seed_variance, n_seeds)
        mde = half + power_quantile if with_mde else np.nan
    else:  # no variance at all (identical models): Δ̄ is exact
        half, p_value, mde = 0.0, 1.0 if delta == 0 else 0.0, 0.0
    what = (
        f"{n_seeds} paired seeds: Var = shared post-level variance (paired bootstrap) + between-seed "
        f"variance / {n_seeds}, fiducial interval (t with {n_seeds - 1} df for the seed part)"
        if n_seeds > 1
        else "paired post bootstrap variance, normal quantile (one seed: seed variance not estimated)"
    )
    return {
        "delta": delta,
        "ci_low": delta - half,
        "ci_high": delta + half,
        "p_value": p_value,
        "n_seeds": n_seeds,
        "se": se,
        "se_posts": float(np.sqrt(post_variance)),
        "se_seeds": float(np.sqrt(seed_variance)),
        "df": df,
        "mde": float(mde),
        "method": what,
        "seed_deltas": [float(d) for d in deltas],
        "reason": "",
    }


def seed_mean_p_value(seed_deltas: np.ndarray, post_variance: float) -> float:
    """Two-sided p-value of Δ̄ = 0: 2 · P(R beyond 0) under Δ̄'s fiducial distribution (the CI's dual).

    The p-value of :func:`seed_mean_test` alone (one tail integral, no quantile search): the power
    simulation calls it thousands of times.
    """
    deltas = np.asarray(seed_deltas, dtype=np.float64)
    post_variance, seed_variance = _variance_parts(deltas, post_variance)
    delta = float(deltas.mean())
    if post_variance + seed_variance == 0:
        return 1.0 if delta == 0 else 0.0
    return min(1.0, 2 * fiducial.tail(abs(delta), post_variance, seed_variance, deltas.size))


def _variance_parts(deltas: np.ndarray, post_variance: float) -> tuple[float, float]:
    """(V_posts, s²_seeds / S) of a seed mean; a negative V_posts estimate counts as 0."""
    seed_variance = float(np.var(deltas, ddof=1)) / deltas.size if deltas.size > 1 else 0.0
    return max(float(post_variance), 0.0), seed_variance


Declared = Mapping[str, str]
"""One declared comparison: ``{"model", "attribute", "metric"}`` (accuracy has attribute ``all``)."""


def compare_all(
    labels: np.ndarray,
    memberships: Mapping[str, pd.DataFrame],
    method_predictions: Mapping[str, Mapping[int, np.ndarray]],
    reference_predictions: Mapping[int, np.ndarray],
    *,
    primary: Declared | None = None,
    secondary: Sequence[Declared] = (),
    metrics: Sequence[Metric] = METRICS,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    min_group_size: int = MIN_GROUP_SIZE,
    min_positives: int = MIN_POSITIVES,
    min_negatives: int = MIN_NEGATIVES,
) -> pd.DataFrame:
    """Every model against the reference: accuracy once, DPD and EOD per attribute, one family.

    ``method_predictions`` maps a model label to ``{seed: test predictions}``; ``reference_predictions``
    is ``{seed: predictions}`` of the reference. Each model is paired with the reference on the seeds
    both have (``n_seeds`` and ``seeds`` say which); a model sharing no seed with the reference gets
    NaN rows with a reason. ``primary`` and ``secondary`` declare the family (see
    :func:`comparison_table`). DPD rows carry ``labels_dpd``, the DPD of the true labels on the
    same posts (a perfect classifier's DPD). Returns :func:`comparison_table`'s frame plus
    ``seeds`` and ``reason``.
    """
    thresholds = Thresholds(min_group_size, min_positives, min_negatives)
    label_gaps = labels_dpd(
        labels,
        memberships,
        min_group_size=min_group_size,
        min_positives=min_positives,
        min_negatives=min_negatives,
    )
    wanted = [m for m in metrics if m != "accuracy"]
    rows: list[dict[str, Any]] = []
    for model, by_seed in method_predictions.items():
        seeds = sorted(set(by_seed) & set(reference_predictions))
        targets: list[tuple[str, pd.DataFrame | None, Sequence[Metric]]] = (
            [(OVERALL, None, ("accuracy",))] if "accuracy" in metrics else []
        )
        targets += [(a, memberships[a], wanted) for a in memberships if wanted]
        for attribute, membership, asked in targets:
            if seeds:
                results = _compare(
                    labels,
                    membership,
                    [by_seed[s] for s in seeds],
                    [reference_predictions[s] for s in seeds],
                    metrics=asked,
                    n_resamples=n_resamples,
                    confidence=confidence,
                    seed=seed,
                    thresholds=thresholds,
                )
            else:
                results = {m: _undefined(0, "no seed shared with the reference") for m in asked}
            for metric in asked:
                rows.append(
                    {
                        **results[metric],
                        "model": model,
                        "attribute": attribute,
                        "metric": metric,
                        "labels_dpd": label_gaps.get(attribute, float("nan"))
                        if metric == "dpd"
                        else float("nan"),
                        "seeds": ",".join(map(str, seeds)),
                    }
                )
    table = comparison_table(rows, primary, secondary)
    table["seeds"] = [r["seeds"] for r in rows]
    table["reason"] = [r["reason"] for r in rows]
    return table


def default_secondaries(primary: Declared, attributes: Sequence[str]) -> list[dict[str, str]]:
    """The primary model's accuracy, DPD and EOD on the primary's attribute (or the first attribute).

    The primary itself is left out of its secondaries.
    """
    attribute = primary["attribute"] if primary["attribute"] != OVERALL else attributes[0]
    family = [
        {"model": primary["model"], "attribute": OVERALL, "metric": "accuracy"},
        {"model": primary["model"], "attribute": attribute, "metric": "dpd"},
        {"model": primary["model"], "attribute": attribute, "metric": "eod"},
    ]
    return [c for c in family if dict(c) != dict(primary)]


def holm(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values; NaN (undefined comparisons) stay NaN and do not count.

    Hand-written because statsmodels (``multipletests(method="holm")``) is not a dependency and
    scipy only ships Benjamini–Hochberg (``false_discovery_control``), which controls the false
    discovery rate, not the family-wise error rate Holm controls.
    """
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    defined = np.flatnonzero(~np.isnan(p))
    order = defined[np.argsort(p[defined], kind="stable")]
    m = order.size
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(scaled)
    return out


def comparison_table(
    comparisons: Sequence[Mapping[str, Any]],
    primary: Declared | None = None,
    secondary: Sequence[Declared] = (),
) -> pd.DataFrame:
    """One row per comparison with its role in the declared family and Holm-adjusted p-values.

    ``comparisons`` are :func:`compare_to_reference` results with ``model``, ``attribute`` and
    ``metric`` keys added. ``primary`` (``{"model", "attribute", "metric"}``) is tested alone at α:
    ``p_holm = p_value``. ``secondary`` comparisons are Holm-adjusted among themselves (undefined
    ones do not count). Every other row is ``exploratory``: its interval is reported, its
    ``p_holm`` is NaN (null in JSON) and no claim of significance is made. ``role`` says which;
    ``primary`` is the boolean of the old contract. A declared comparison that matches no row is a
    configuration error.
    """
    frame = pd.DataFrame([{c: row.get(c) for c in COMPARISON_COLUMNS} for row in comparisons])
    frame = frame.reindex(columns=COMPARISON_COLUMNS)
    is_primary = _matches(frame, [primary] if primary is not None else [])
    is_secondary = _matches(frame, secondary) & ~is_primary
    p = frame["p_value"].astype(float).to_numpy()
    adjusted = np.full(p.shape, np.nan)
    adjusted[is_primary] = p[is_primary]
    adjusted[is_secondary] = holm(p[is_secondary])
    frame["p_holm"] = adjusted
    frame["primary"] = is_primary
    frame["role"] = np.where(is_primary, "primary", np.where(is_secondary, "secondary", "exploratory"))
    return frame


def _matches(frame: pd.DataFrame, declared: Sequence[Declared]) -> np.ndarray:
    """Rows of ``frame`` that are one of the ``declared`` comparisons; each must match a row."""
    found = np.zeros(len(frame), dtype=bool)
    for wanted in declared:
        hit = (
            (frame["model"] == wanted.get("model"))
            & (frame["attribute"] == wanted.get("attribute"))
            & (frame["metric"] == wanted.get("metric"))
        ).to_numpy()
        if not hit.any():
            raise ConfigError(f"the declared comparison {dict(wanted)} is not among the comparisons made")
        found |= hit
    return found


def _undefined(n_seeds: int, reason: str) -> dict[str, Any]:
    nan = float("nan")
    return {
        "delta": nan,
        "ci_low": nan,
        "ci_high": nan,
        "p_value": nan,
        "n_seeds": n_seeds,
        "se": nan,
        "se_posts": nan,
        "se_seeds": nan,
        "df": nan,
        "method": "undefined",
        "mde": nan,
        "seed_deltas": [nan] * n_seeds,
        "reason": reason,
    }


def _reason(metric: str, membership: pd.DataFrame, thresholds: Thresholds) -> str:
    need = {
        "dpd": f"{thresholds.min_group_size} posts",
        "eod": f"{thresholds.min_positives} positives and two with {thresholds.min_negatives} negatives",
    }.get(metric, "")
    if metric == "accuracy":
        return "accuracy undefined"
    return f"{metric} undefined: fewer than two groups of {list(map(str, membership.columns))} with {need}"

"""Method-vs-reference comparisons that carry seed variance, and Holm's multiplicity correction.

A comparison asks whether a *method* (a training recipe run with several seeds) differs from a
reference (FFT, run with the same seeds) in accuracy, DPD or EOD on one test split. Two sources of
noise enter: which test posts were drawn, and which seed trained the models. ``compare_to_reference``
estimates both:

- a **two-level bootstrap**: each replicate resamples the seeds (with replacement), then the test
  posts (one draw shared by every model, so the method–reference pairing on the same posts is
  kept); the replicate's Δ is the mean over the drawn seeds of metric(method) − metric(reference);
- a **per-seed t-interval** on the seeds' observed Δs (seed variance only, with the right small-
  sample width for 2–5 seeds, which the bootstrap of so few seeds understates).

With two or more seeds the reported interval is the wider envelope of the two and the p-value the
larger, so the comparison is never more confident than either view. With one seed only the post
bootstrap remains and ``method`` says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from fairmerge.errors import ConfigError, DataError
from fairmerge.fairness.bootstrap import bootstrap_sums, percentile_interval
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
    "n_seeds",
    "mde",
    "method",
]
_ATTRIBUTE = "attribute"  # internal name of the one attribute a comparison looks at


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
    """Δ = metric(method) − metric(reference), averaged over paired seeds, with an interval.

    ``method_predictions_by_seed[i]`` and ``reference_predictions_by_seed[i]`` are seed i's 0/1
    test predictions (same posts, same order as ``labels``); ``membership`` is one attribute's
    boolean posts × groups frame (ignored for ``accuracy``). Groups enter DPD / EOD as in
    :func:`~fairmerge.fairness.group_metrics` with the same thresholds.

    Returns ``delta, ci_low, ci_high, p_value`` (two-sided, 0 is "no difference"), ``n_seeds``,
    ``method`` (how the interval was made), ``mde`` (the smallest |Δ| this comparison would detect
    with 80 % power at α = 1 − confidence: (z_{1−α/2} + z_{0.8}) · the standard error implied by
    the interval's width), ``seed_deltas``, the two views separately
    (``bootstrap_low, bootstrap_high, bootstrap_p, t_low, t_high, t_p``; t fields NaN with one
    seed) and ``reason`` (why a comparison is undefined, else empty). Undefined comparisons —
    a gap with fewer than two qualifying groups — are NaN throughout, never 0.
    """
    if metric not in METRICS:
        raise ConfigError(f"metric must be one of {list(METRICS)}, got {metric!r}")
    if n_resamples < 1:
        raise ConfigError(f"n_resamples must be >= 1, got {n_resamples}")
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
    if metric == "accuracy" or membership is None:
        if metric != "accuracy":
            raise DataError(f"metric {metric!r} needs a group membership frame")
        membership = pd.DataFrame(index=range(y.size))
    members, layout = _stack_memberships({_ATTRIBUTE: membership}, y.size)
    n_seeds = len(methods)
    design = np.hstack([_design(y, p, members) for p in predictions])
    columns = members.shape[1]
    thresholds = Thresholds(min_group_size, min_positives, min_negatives)
    qualifies = thresholds.qualifying(_design(y, predictions[0], members).sum(axis=0).reshape(4, columns))

    def statistic(sums: np.ndarray) -> np.ndarray:
        """(replicates, 2 · seeds) metric values from count sums shaped (replicates, 2S · 4C)."""
        counts = np.moveaxis(sums.reshape(sums.shape[0], 2 * n_seeds, 4, columns), 2, 0)
        rates = _rates(counts)
        if metric == "accuracy":
            return rates["accuracy"][..., 0]
        return _attribute_metrics(rates, qualifies, layout)[_ATTRIBUTE, metric]

    observed = statistic(design.sum(axis=0, keepdims=True))[0]
    seed_deltas = observed[:n_seeds] - observed[n_seeds:]
    if np.isnan(seed_deltas).any():
        return _undefined(n_seeds, _reason(metric, membership, thresholds))

    per_seed = statistic(bootstrap_sums(design, n_resamples=n_resamples, seed=seed))
    deltas = per_seed[:, :n_seeds] - per_seed[:, n_seeds:]
    rng = np.random.default_rng([seed, 1])
    if n_seeds > 1:
        drawn = rng.integers(0, n_seeds, size=(n_resamples, n_seeds))
        replicate = np.take_along_axis(deltas, drawn, axis=1).mean(axis=1)
    else:
        replicate = deltas[:, 0]
    low, high = (float(v[0]) for v in percentile_interval(replicate[:, None], confidence))
    valid = replicate[~np.isnan(replicate)]
    tail = min(int(np.sum(valid <= 0)), int(np.sum(valid >= 0)))
    p_boot = min(1.0, 2 * (1 + tail) / (1 + valid.size)) if valid.size else float("nan")
    delta = float(seed_deltas.mean())
    result: dict[str, Any] = {
        "delta": delta,
        "ci_low": low,
        "ci_high": high,
        "p_value": p_boot,
        "n_seeds": n_seeds,
        "method": "paired bootstrap over test posts (one seed: seed variance not estimated)",
        "seed_deltas": [float(d) for d in seed_deltas],
        "bootstrap_low": low,
        "bootstrap_high": high,
        "bootstrap_p": p_boot,
        "t_low": float("nan"),
        "t_high": float("nan"),
        "t_p": float("nan"),
        "reason": "",
    }
    if n_seeds > 1:
        spread = float(np.std(seed_deltas, ddof=1))
        half = float(stats.t.ppf(0.5 + confidence / 2, n_seeds - 1)) * spread / np.sqrt(n_seeds)
        t_p = float(stats.ttest_1samp(seed_deltas, 0.0).pvalue) if spread > 0 else float("nan")
        result.update(t_low=delta - half, t_high=delta + half, t_p=t_p)
        result["ci_low"] = min(low, delta - half)
        result["ci_high"] = max(high, delta + half)
        result["p_value"] = max(p_boot, t_p) if not np.isnan(t_p) else p_boot
        result["method"] = (
            f"two-level bootstrap (seeds, then test posts) and a t-interval over {n_seeds} seeds' "
            "deltas: the wider interval and the larger p-value"
        )
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    result["mde"] = (z + float(stats.norm.ppf(0.8))) * (result["ci_high"] - result["ci_low"]) / (2 * z)
    return result


def compare_all(
    labels: np.ndarray,
    memberships: Mapping[str, pd.DataFrame],
    method_predictions: Mapping[str, Mapping[int, np.ndarray]],
    reference_predictions: Mapping[int, np.ndarray],
    *,
    primary: Mapping[str, str] | None = None,
    metrics: Sequence[Metric] = METRICS,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    min_group_size: int = MIN_GROUP_SIZE,
    min_positives: int = MIN_POSITIVES,
    min_negatives: int = MIN_NEGATIVES,
) -> pd.DataFrame:
    """Every model against the reference: accuracy once, DPD and EOD per attribute, Holm-corrected.

    ``method_predictions`` maps a model label to ``{seed: test predictions}``; ``reference_predictions``
    is ``{seed: predictions}`` of the reference. Each model is paired with the reference on the seeds
    both have (``n_seeds`` and ``seeds`` say which), so a family missing from some seeds is compared
    on the others; a model sharing no seed with the reference gets NaN rows with a reason. Returns
    :func:`comparison_table`'s frame plus ``seeds`` and ``reason``.
    """
    rows: list[dict[str, Any]] = []
    options = {
        "n_resamples": n_resamples,
        "confidence": confidence,
        "seed": seed,
        "min_group_size": min_group_size,
        "min_positives": min_positives,
        "min_negatives": min_negatives,
    }
    for model, by_seed in method_predictions.items():
        seeds = sorted(set(by_seed) & set(reference_predictions))
        targets: list[tuple[str, Metric]] = [(OVERALL, "accuracy")] if "accuracy" in metrics else []
        targets += [(a, m) for a in memberships for m in metrics if m != "accuracy"]
        for attribute, metric in targets:
            if seeds:
                result = compare_to_reference(
                    labels,
                    None if metric == "accuracy" else memberships[attribute],
                    [by_seed[s] for s in seeds],
                    [reference_predictions[s] for s in seeds],
                    metric=metric,
                    **options,  # type: ignore[arg-type]
                )
            else:
                result = _undefined(0, "no seed shared with the reference")
            rows.append(
                {
                    **result,
                    "model": model,
                    "attribute": attribute,
                    "metric": metric,
                    "seeds": ",".join(map(str, seeds)),
                }
            )
    table = comparison_table(rows, primary)
    table["seeds"] = [r["seeds"] for r in rows]
    table["reason"] = [r["reason"] for r in rows]
    return table


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
    comparisons: Sequence[Mapping[str, Any]], primary: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """One row per comparison with Holm-adjusted p-values; the declared primary is not adjusted.

    ``comparisons`` are :func:`compare_to_reference` results with ``model``, ``attribute`` and
    ``metric`` keys added. ``primary`` (``{"model", "attribute", "metric"}``) names the one
    comparison the study was designed to test: it keeps its own p-value (``p_holm = p_value``),
    every other defined comparison is adjusted with Holm over the others. Undefined comparisons
    keep NaN everywhere (null in JSON).
    """
    frame = pd.DataFrame([{c: row.get(c) for c in COMPARISON_COLUMNS} for row in comparisons])
    frame = frame.reindex(columns=COMPARISON_COLUMNS)
    is_primary = np.zeros(len(frame), dtype=bool)
    if primary is not None:
        is_primary = (
            (frame["model"] == primary.get("model"))
            & (frame["attribute"] == primary.get("attribute"))
            & (frame["metric"] == primary.get("metric"))
        ).to_numpy()
        if not is_primary.any():
            raise ConfigError(f"the primary comparison {dict(primary)} is not among the comparisons made")
    p = frame["p_value"].astype(float).to_numpy()
    adjusted = p.copy()
    others = ~is_primary
    adjusted[others] = holm(p[others])
    frame["p_holm"] = adjusted
    frame["primary"] = is_primary
    return frame


def _undefined(n_seeds: int, reason: str) -> dict[str, Any]:
    nan = float("nan")
    return {
        "delta": nan,
        "ci_low": nan,
        "ci_high": nan,
        "p_value": nan,
        "n_seeds": n_seeds,
        "method": "undefined",
        "mde": nan,
        "seed_deltas": [nan] * n_seeds,
        "bootstrap_low": nan,
        "bootstrap_high": nan,
        "bootstrap_p": nan,
        "t_low": nan,
        "t_high": nan,
        "t_p": nan,
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

"""Across seeds: mean ± std of the headline metrics and a paired bootstrap test of gap differences.

The paired test resamples test posts once per replicate and applies the same resample to both
methods and every seed, so the interval of Δ = gap(A) − gap(B) (averaged over seeds) accounts for
the correlation between methods evaluated on the same posts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from fairmerge.fairness.bootstrap import bootstrap_sums, percentile_interval


def aggregate_seeds(headlines: Sequence[Sequence[Mapping[str, object]]]) -> pd.DataFrame:
    """Mean, std and count over seeds of every numeric headline column, per model."""
    frame = pd.concat(
        [pd.DataFrame(list(rows)).assign(seed_index=i) for i, rows in enumerate(headlines)], ignore_index=True
    )
    numeric = [
        c for c in frame.columns if c not in ("model", "seed_index") and not c.endswith(("_low", "_high"))
    ]
    long = frame.melt(id_vars=["model"], value_vars=numeric, var_name="metric").dropna(subset=["value"])
    long["value"] = long["value"].astype(float)
    grouped = long.groupby(["model", "metric"], sort=False)["value"]
    return grouped.agg(mean="mean", std="std", n_seeds="count").reset_index()


def _gap_samples(sums: np.ndarray, n_groups: int, qualifying: np.ndarray) -> dict[str, np.ndarray]:
    """DPD and EOD per resample from per-group count sums (columns laid out by ``_columns``)."""
    counts = sums.reshape(sums.shape[0], n_groups, 6)
    with np.errstate(invalid="ignore", divide="ignore"):
        selection = counts[..., 1] / counts[..., 0]
        tpr = counts[..., 3] / counts[..., 2]
        fpr = counts[..., 5] / counts[..., 4]

    def spread(rate: np.ndarray) -> np.ndarray:
        rate = rate[:, qualifying]
        return np.nanmax(rate, axis=1) - np.nanmin(rate, axis=1)

    with np.errstate(invalid="ignore"):
        return {"dpd": spread(selection), "eod": np.fmax(spread(tpr), spread(fpr))}


def _columns(labels: np.ndarray, predictions: np.ndarray, membership: np.ndarray) -> np.ndarray:
    """Per-post indicator columns, six per group: n, predicted+, positives, TP, negatives, FP."""
    y, p = labels.astype(bool), predictions.astype(bool)
    blocks = []
    for g in range(membership.shape[1]):
        m = membership[:, g]
        blocks += [m, m & p, m & y, m & y & p, m & ~y, m & ~y & p]
    return np.column_stack(blocks).astype(np.float64)


def paired_gap_test(
    labels: np.ndarray,
    predictions_a: Sequence[np.ndarray],
    predictions_b: Sequence[np.ndarray],
    membership: pd.DataFrame,
    *,
    min_group_size: int = 30,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Paired bootstrap of Δ gap = gap(A) − gap(B), averaged over seeds, for DPD and EOD.

    ``predictions_a[i]`` and ``predictions_b[i]`` are seed ``i``'s test predictions of the two
    methods. Returns, per metric, the observed Δ, its percentile CI and a two-sided bootstrap
    p-value (twice the smaller tail mass at 0). Groups qualify as in the point estimates: at least
    ``min_group_size`` posts, and both classes present.
    """
    member = membership.to_numpy(dtype=bool)
    qualifying = (member.sum(axis=0) >= min_group_size) & (member & labels[:, None].astype(bool)).any(axis=0)
    qualifying &= (member & ~labels[:, None].astype(bool)).any(axis=0)
    n_groups = member.shape[1]
    blocks = [_columns(labels, p, member) for p in [*predictions_a, *predictions_b]]
    sums = bootstrap_sums(np.hstack(blocks), n_resamples=n_resamples, seed=seed)
    full = np.hstack(blocks).sum(axis=0, keepdims=True)
    width = n_groups * 6
    seeds = len(predictions_a)
    result: dict[str, dict[str, float]] = {}
    for metric in ("dpd", "eod"):
        deltas, observed = [], []
        for i in range(seeds):
            a, b = i * width, (seeds + i) * width
            gaps_a = _gap_samples(sums[:, a : a + width], n_groups, qualifying)[metric]
            gaps_b = _gap_samples(sums[:, b : b + width], n_groups, qualifying)[metric]
            deltas.append(gaps_a - gaps_b)
            obs_a = _gap_samples(full[:, a : a + width], n_groups, qualifying)[metric]
            obs_b = _gap_samples(full[:, b : b + width], n_groups, qualifying)[metric]
            observed.append(float((obs_a - obs_b)[0]))
        delta = np.mean(deltas, axis=0)
        low, high = percentile_interval(delta[:, None], confidence)
        valid = delta[~np.isnan(delta)]
        p = 2 * min((valid <= 0).mean(), (valid >= 0).mean()) if valid.size else float("nan")
        result[metric] = {
            "delta": float(np.mean(observed)),
            "ci_low": float(low[0]),
            "ci_high": float(high[0]),
            "p_value": float(min(p, 1.0)),
        }
    return result

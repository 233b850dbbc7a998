"""Across seeds: mean ± std of the headline metrics, and the old entry point of the paired gap test.

The comparison itself lives in :mod:`fairmerge.fairness.comparisons` (two-level bootstrap over
seeds and posts, plus a per-seed t-interval).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from fairmerge.fairness.comparisons import compare_to_reference


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
) -> dict[str, dict[str, Any]]:
    """Δ gap = gap(A) − gap(B) for DPD and EOD, over paired seeds (see ``compare_to_reference``).

    ``predictions_a[i]`` and ``predictions_b[i]`` are seed ``i``'s test predictions of the two
    methods. Kept for the study's current caller; new code calls
    :func:`fairmerge.fairness.compare_to_reference`, which also carries seed variance.
    """
    return {
        metric: compare_to_reference(
            labels,
            membership,
            predictions_a,
            predictions_b,
            metric=metric,
            min_group_size=min_group_size,
            n_resamples=n_resamples,
            confidence=confidence,
            seed=seed,
        )
        for metric in ("dpd", "eod")
    }

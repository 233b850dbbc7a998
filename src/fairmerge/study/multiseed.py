"""Across seeds: mean ± std of the headline metrics.

Method-vs-reference comparisons over seeds live in :mod:`fairmerge.fairness.comparisons`
(two-level bootstrap over seeds and posts, plus a per-seed t-interval).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd


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

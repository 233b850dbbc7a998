"""The metric rows fairmerge reports for one model's decisions on one split, in one function.

``fairmerge run`` (every evaluated point, validation and test), ``fairmerge evaluate`` and
``fm.evaluate`` all call :func:`reported_metrics`, so a checkpoint re-scored on the study's split
gets the study's rows: group metrics with bootstrap intervals, each gap's permutation noise floor
and p-value, the labels' own DPD, and (``gap_intervals="inverted"``, what test reports) the DPD and
EOD intervals of :mod:`fairmerge.fairness.gap_intervals` (pairwise score bounds and the zero-gap test).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Literal

import numpy as np
import pandas as pd

from fairmerge.fairness.base_rates import labels_dpd
from fairmerge.fairness.gap_intervals import inverted, label_free_tests, pairwise_bounds
from fairmerge.fairness.metrics import COLUMNS, OVERALL, Thresholds, group_metrics
from fairmerge.fairness.noise import noise_floor

GapIntervals = Literal["basic", "inverted"]
"""The DPD / EOD interval: the basic bootstrap's (validation, selection diagnostics) or the one of
:mod:`fairmerge.fairness.gap_intervals` (reported test rows; its coverage is measured)."""


def reported_metrics(
    labels: np.ndarray,
    predictions: np.ndarray,
    memberships: Mapping[str, pd.DataFrame],
    *,
    thresholds: Thresholds = Thresholds(),
    n_resamples: int = 1000,
    n_permutations: int = 1000,
    seed: int = 0,
    gap_intervals: GapIntervals = "inverted",
) -> pd.DataFrame:
    """Tidy rows (``attribute, group, metric, value, ci_low, ci_high``) of 0/1 ``predictions``.

    In order: :func:`~fairmerge.fairness.group_metrics` (``n_resamples`` = 0: no intervals), the
    :func:`~fairmerge.fairness.noise_floor` rows (``n_permutations``), one ``labels_dpd`` row per
    attribute. One ``seed`` for every bootstrap draw and permutation set. With ``"inverted"`` and
    resamples, the DPD and EOD intervals are those of :mod:`fairmerge.fairness.gap_intervals`.
    """
    options = dataclasses.asdict(thresholds)
    frame = group_metrics(labels, predictions, memberships, n_resamples=n_resamples, seed=seed, **options)
    floors = noise_floor(
        labels, predictions, memberships, n_permutations=n_permutations, seed=seed, **options
    )
    if gap_intervals == "inverted" and n_resamples > 0:
        frame = _with_inverted_gaps(
            frame, floors, labels, predictions, memberships, n_permutations, seed, options
        )
    return pd.concat([frame, floors, _labels_dpd_rows(labels, memberships, options)], ignore_index=True)


def _with_inverted_gaps(
    frame: pd.DataFrame,
    floors: pd.DataFrame,
    labels: np.ndarray,
    predictions: np.ndarray,
    memberships: Mapping[str, pd.DataFrame],
    n_permutations: int,
    seed: int,
    options: dict[str, int],
) -> pd.DataFrame:
    """``frame`` (basic intervals) with its DPD and EOD intervals replaced by the gap_intervals ones.

    Reuses the frame's values and the within-label noise floor; adds the pairwise score bounds and
    the label-free test of DPD (same seed).
    """
    bounds = pairwise_bounds(labels, predictions, memberships, **options)
    tests = label_free_tests(
        labels, predictions, memberships, n_permutations=n_permutations, seed=seed, **options
    )
    gaps = inverted(frame, floors, tests, bounds)
    key = ["attribute", "group", "metric"]
    inverted_ends = gaps.set_index(key)[["ci_low", "ci_high"]]
    rows = pd.MultiIndex.from_frame(frame[key])
    found = rows.isin(inverted_ends.index)
    frame = frame.copy()
    for end in ("ci_low", "ci_high"):
        values = frame[end].to_numpy(copy=True)
        values[found] = inverted_ends[end].reindex(rows[found]).to_numpy()
        frame[end] = values
    return frame


def _labels_dpd_rows(
    labels: np.ndarray, memberships: Mapping[str, pd.DataFrame], options: dict[str, int]
) -> pd.DataFrame:
    """One ``labels_dpd`` row per attribute: the DPD of the true labels over the same groups as the
    model's DPD (what a perfect classifier's DPD would be); no interval."""
    nan = float("nan")
    gaps = labels_dpd(labels, memberships, **options)
    rows = [(attribute, OVERALL, "labels_dpd", value, nan, nan) for attribute, value in gaps.items()]
    return pd.DataFrame(rows, columns=COLUMNS)

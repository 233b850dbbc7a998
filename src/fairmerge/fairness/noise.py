"""The noise floor of a gap: its distribution when groups are treated alike given the label.

A max − min gap over small groups is large even when every group is treated the same. The
permutation null measures how large: keep each post's label and prediction, shuffle which posts
belong to which groups **within each label stratum** (membership rows are exchanged only between
posts with the same label, so every group keeps its size *and* its positives and negatives; whole
rows, so overlapping groups keep their overlap), and recompute the gap. The null hypothesis is
"the prediction is independent of group membership given the label" — equal TPR and equal FPR
across groups. It is the exact null of EOD. For DPD it is the null "the classifier treats groups
alike given the label", whose DPD is what the groups' different base rates produce by themselves
(a classifier with equal TPR and FPR still has a DPD when hate rates differ between groups).
Shuffling whole rows across labels, the previous null, also reshuffled each group's class balance
(HateXplain's Hispanic group: 24 positives became ~10), which inflated the EOD floor and cost power.

``noise_floor`` reports the null's 95th percentile (a gap below it is indistinguishable from
treating groups alike) and the permutation p-value of the observed gap. Its false-positive rate
under unequal base rates is measured in ``benchmarks/ci_coverage.py`` (docs/statistics.md).

Exchanging membership rows within a stratum is the same in distribution as shuffling the posts'
confusion cells among the posts of that stratum against fixed rows, so the group counts of B
permutations are one gather of the shuffled cells at the groups' member rows and one ``bincount``
— no Python loop over permutations or groups, and no BLAS call (which stalls when other processes
hold the cores). Only the stratum being shuffled is copied, and only the cells at member rows are
gathered (posts in no group never enter a count).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from fairmerge.errors import ConfigError, DataError
from fairmerge.fairness.metrics import (
    COLUMNS,
    MIN_GROUP_SIZE,
    MIN_NEGATIVES,
    MIN_POSITIVES,
    OVERALL,
    Thresholds,
    _attribute_metrics,
    _check_binary,
    _rates,
    _stack_memberships,
    check_options,
)

NOISE_METRICS = ("dpd_noise_floor", "eod_noise_floor", "dpd_perm_p", "eod_perm_p")
"""Metric names of :func:`noise_floor`'s rows (one of each per attribute, group ``all``)."""


def noise_floor(
    labels: np.ndarray,
    predictions: np.ndarray,
    memberships: Mapping[str, pd.DataFrame],
    *,
    n_permutations: int = 1000,
    quantile: float = 0.95,
    seed: int = 0,
    min_group_size: int = MIN_GROUP_SIZE,
    min_positives: int = MIN_POSITIVES,
    min_negatives: int = MIN_NEGATIVES,
    chunk_size: int = 250,
) -> pd.DataFrame:
    """Permutation noise floor and p-value of every attribute's DPD and EOD (within-label null).

    Rows (same columns as :func:`~fairmerge.fairness.group_metrics`; group ``all``, no interval):
    ``dpd_noise_floor`` / ``eod_noise_floor`` (the ``quantile`` of the null), ``dpd_perm_p`` /
    ``eod_perm_p`` ((1 + #null ≥ observed) / (1 + B), never 0). Groups enter the gaps as in
    ``group_metrics`` with the same thresholds, decided once on the observed data. A gap that is
    undefined (fewer than two qualifying groups) gets NaN rows.
    """
    y, yhat = _check_binary(labels, "labels"), _check_binary(predictions, "predictions")
    if y.shape != yhat.shape or y.size == 0:
        raise DataError(f"labels ({y.size}) and predictions ({yhat.size}) must be equal and non-empty")
    check_options(min_group_size=min_group_size, min_positives=min_positives, min_negatives=min_negatives)
    if n_permutations < 1:
        raise ConfigError(f"n_permutations must be >= 1, got {n_permutations}")
    if not 0.0 < quantile < 1.0:
        raise ConfigError(f"quantile must be in (0, 1), got {quantile}")
    members, layout = _stack_memberships(memberships, y.size)
    cell = ((1 - y) + 2 * (1 - yhat)).astype(np.int64)  # 0 TP, 1 FP, 2 FN, 3 TN, as metrics._rates
    observed_counts = np.stack([members[cell == k].sum(axis=0) for k in range(4)]).astype(np.float64)
    qualifies = Thresholds(min_group_size, min_positives, min_negatives).qualifying(observed_counts)
    observed = _attribute_metrics(_rates(observed_counts), qualifies, layout)

    # Group counts of a permutation: the shuffled cells at each group's member rows, counted with
    # one bincount over (permutation, column, cell) keys. Column 0 (all posts) never changes.
    member_rows, columns = np.nonzero(members[:, 1:])
    n_columns = members.shape[1]
    strata = [_Stratum(np.flatnonzero(y == label), cell, member_rows) for label in (0, 1)]
    first_keys = (np.arange(min(chunk_size, n_permutations))[:, None] * (n_columns - 1) + columns) * 4
    rng = np.random.default_rng(seed)
    nulls: dict[tuple[str, str], list[np.ndarray]] = {}
    done = 0
    while done < n_permutations:
        size = min(chunk_size, n_permutations - done)
        member_cells = np.empty((size, member_rows.size), dtype=np.int64)
        for stratum in strata:  # cells move only between posts with the same label
            member_cells[:, stratum.members] = stratum.shuffle(size, rng)
        keys = first_keys[:size] + member_cells
        groups = np.bincount(keys.ravel(), minlength=size * (n_columns - 1) * 4).reshape(size, -1, 4)
        counts = np.empty((4, size, n_columns))
        counts[:, :, 0] = observed_counts[:, :1]
        counts[:, :, 1:] = np.moveaxis(groups, 2, 0)
        for key, values in _attribute_metrics(_rates(counts), qualifies, layout).items():
            nulls.setdefault(key, []).append(values)
        done += size

    nan = float("nan")
    rows = []
    for attribute in layout.spans:
        for gap in ("dpd", "eod"):
            value = float(observed[attribute, gap])
            null = np.concatenate(nulls[attribute, gap])
            null = null[~np.isnan(null)]
            if np.isnan(value) or null.size == 0:
                floor = p_value = nan
            else:
                floor = float(np.quantile(null, quantile))
                p_value = float((1 + np.sum(null >= value - 1e-12)) / (1 + null.size))
            rows.append((attribute, OVERALL, f"{gap}_noise_floor", floor, nan, nan))
            rows.append((attribute, OVERALL, f"{gap}_perm_p", p_value, nan, nan))
    return pd.DataFrame(rows, columns=COLUMNS)


class _Stratum:
    """The posts of one label, and where the group members among them sit."""

    def __init__(self, posts: np.ndarray, cell: np.ndarray, member_rows: np.ndarray) -> None:
        self.cells = cell[posts]
        self.members = np.flatnonzero(np.isin(member_rows, posts))  # entries of member_rows it holds
        self.positions = np.searchsorted(posts, member_rows[self.members])  # their places in ``posts``

    def shuffle(self, size: int, rng: np.random.Generator) -> np.ndarray:
        """``size`` independent shuffles of the stratum's cells, read at its member entries.

        The same generator calls as shuffling every post's row of a ``size × n`` array within the
        stratum (``rng.permuted`` draws depend on the length only), without copying the other posts.
        """
        shuffled = np.broadcast_to(self.cells, (size, self.cells.size)).copy()
        rng.permuted(shuffled, axis=1, out=shuffled)
        return shuffled[:, self.positions]

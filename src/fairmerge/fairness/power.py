"""Power: the smallest change in DPD or EOD a test split can detect (normal approximation).

A change in a gap between two models is detected by a two-sided test at level α. When the change
moves the rate of one of the two groups that define the gap, its standard error is that of a
difference of two differences of proportions. We use the normal approximation, not a simulation,
so the study can report it for every attribute at no cost:

    MDE = (z_{1−α/2} + z_{power}) · √(2 · (1 − ρ) · (v/n_a + v/n_b)),

with n_a ≤ n_b the two smallest denominators among the groups that enter the gap (posts for DPD,
positives for the TPR gap, negatives for the FPR gap: the groups that make a max − min gap noisy),
v = rate·(1 − rate) (0.25 at the default rate 0.5, the worst case) and 2·(1 − ρ) for two models
whose group-rate estimates correlate by ρ (default 0: independent errors, an upper end; two models
scored on the same posts correlate positively, which lowers the variance, while seed variance
raises it). This is the split's design-based MDE, known before any model is trained; each
comparison also reports its own MDE from its measured standard error
(:func:`fairmerge.fairness.compare_to_reference`). EOD's MDE is the larger of the TPR- and
FPR-gap MDEs, since either gap can define EOD.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy.stats import norm

from fairmerge.errors import ConfigError
from fairmerge.fairness.metrics import MIN_GROUP_SIZE, MIN_NEGATIVES, MIN_POSITIVES, qualifying_groups

_DENOMINATOR = {"dpd": "n", "tpr_gap": "positives", "fpr_gap": "negatives"}


def minimum_detectable_difference(
    labels: np.ndarray,
    memberships: Mapping[str, pd.DataFrame],
    *,
    power: float = 0.8,
    alpha: float = 0.05,
    rate: float = 0.5,
    correlation: float = 0.0,
    min_group_size: int = MIN_GROUP_SIZE,
    min_positives: int = MIN_POSITIVES,
    min_negatives: int = MIN_NEGATIVES,
) -> dict[str, dict[str, float]]:
    """Per attribute, the MDE of ``dpd``, ``eod``, ``tpr_gap`` and ``fpr_gap`` (NaN if undefined).

    ``labels`` and ``memberships`` describe the test split; ``rate`` is the assumed group rate
    (0.5 maximises the variance, so the MDE is an upper end) and ``correlation`` ρ that of the two
    models' group-rate estimates. Groups qualify with the same thresholds as
    :func:`~fairmerge.fairness.group_metrics`.
    """
    if not 0.0 < power < 1.0 or not 0.0 < alpha < 1.0:
        raise ConfigError(f"power and alpha must be in (0, 1), got {power} and {alpha}")
    if not 0.0 < rate < 1.0:
        raise ConfigError(f"rate must be in (0, 1), got {rate}")
    if not -1.0 <= correlation < 1.0:
        raise ConfigError(f"correlation must be in [-1, 1), got {correlation}")
    table = qualifying_groups(
        labels,
        memberships,
        min_group_size=min_group_size,
        min_positives=min_positives,
        min_negatives=min_negatives,
    )
    multiplier = float(norm.ppf(1 - alpha / 2) + norm.ppf(power))
    variance = rate * (1 - rate) * 2 * (1 - correlation)
    out: dict[str, dict[str, float]] = {}
    for attribute in memberships:
        rows = table[(table["attribute"] == attribute) & table["entered"]]
        result: dict[str, float] = {}
        for metric, column in _DENOMINATOR.items():
            sizes = np.sort(rows.loc[rows["metric"] == metric, column].to_numpy(dtype=float))
            if sizes.size < 2:
                result[metric] = float("nan")
            else:
                result[metric] = multiplier * float(np.sqrt(variance / sizes[0] + variance / sizes[1]))
        result["eod"] = float(np.maximum(result["tpr_gap"], result["fpr_gap"]))  # NaN if either is
        out[attribute] = {m: result[m] for m in ("dpd", "eod", "tpr_gap", "fpr_gap")}
    return out

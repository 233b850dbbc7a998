"""The labels' own gaps: what a perfect classifier's DPD would be on the same posts.

A DPD compares selection rates, and groups whose posts are hateful at different rates have
different selection rates even under a perfect classifier (HateXplain race: 0.21–0.72, so a perfect
classifier's race DPD is about 0.5). Every DPD is read next to this value.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from fairmerge.fairness.metrics import (
    MIN_GROUP_SIZE,
    MIN_NEGATIVES,
    MIN_POSITIVES,
    Thresholds,
    _attribute_metrics,
    _check_binary,
    _design,
    _rates,
    _stack_memberships,
)


def labels_dpd(
    labels: np.ndarray,
    memberships: Mapping[str, pd.DataFrame],
    *,
    min_group_size: int = MIN_GROUP_SIZE,
    min_positives: int = MIN_POSITIVES,
    min_negatives: int = MIN_NEGATIVES,
) -> dict[str, float]:
    """Per attribute, the DPD of the true labels (max − min positive rate over the groups DPD uses).

    Same groups as every model's DPD on these posts (:func:`~fairmerge.fairness.group_metrics`);
    NaN when fewer than two groups qualify.
    """
    y = _check_binary(labels, "labels")
    members, layout = _stack_memberships(memberships, y.size)
    counts = _design(y, y, members).sum(axis=0).reshape(4, members.shape[1])
    qualifies = Thresholds(min_group_size, min_positives, min_negatives).qualifying(counts)
    gaps = _attribute_metrics(_rates(counts), qualifies, layout)
    return {attribute: float(gaps[attribute, "dpd"]) for attribute in layout.spans}

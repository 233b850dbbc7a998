"""Differentiable stand-ins for the gaps, on soft predictions p = P(y=1), for the learned search.

The reported gaps threshold predictions (0/1), so they have no gradient. Here a group's selection
rate is its mean p, its TPR the mean p over its positives, its FPR the mean p over its negatives;
DPD is max − min selection rate, EOD the larger of the TPR and FPR spreads, over the groups that
qualify on the whole validation split (the same size thresholds as
:func:`fairmerge.fairness.group_metrics`). On a batch, a qualifying group with no post of the
needed kind is left out of that batch's spread; a spread over fewer than two groups is 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from fairmerge.data.types import TextSplit
from fairmerge.errors import ConfigError
from fairmerge.fairness.metrics import MIN_NEGATIVES, MIN_POSITIVES
from fairmerge.search.problem import Objective


@dataclass(frozen=True)
class GapTarget:
    """One gap objective: the kind (``dpd`` / ``eod``) and the qualifying groups' membership."""

    name: str
    kind: str
    members: Tensor  # n × groups, float 0/1, qualifying groups only (for the selection rate)
    tpr_members: Tensor  # n × groups qualifying for the TPR gap
    fpr_members: Tensor  # n × groups qualifying for the FPR gap


@dataclass(frozen=True)
class GroupTargets:
    """Labels of the validation posts and one :class:`GapTarget` per gap objective."""

    labels: Tensor  # n, long
    gaps: tuple[GapTarget, ...]

    def __len__(self) -> int:
        return int(self.labels.numel())


def group_targets(
    split: TextSplit,
    objectives: Sequence[Objective],
    *,
    min_group_size: int,
    min_positives: int = MIN_POSITIVES,
    min_negatives: int = MIN_NEGATIVES,
) -> GroupTargets:
    """The surrogate's targets on a split, with groups qualifying as in the reported metrics."""
    labels = np.asarray(split.labels, dtype=np.int64)
    gaps = []
    for objective in objectives:
        if objective.maximize:
            continue
        attribute, kind = objective.row[0], objective.row[2]
        if attribute not in split.attributes:
            raise ConfigError(f"objective {objective.name!r}: the split has no attribute {attribute!r}")
        members = split.membership(attribute).to_numpy(dtype=bool)
        positives = (members & (labels[:, None] == 1)).sum(axis=0)
        negatives = (members & (labels[:, None] == 0)).sum(axis=0)

        def kept(mask: np.ndarray, members: np.ndarray = members) -> Tensor:
            return torch.from_numpy(members[:, mask].astype(np.float32))

        gaps.append(
            GapTarget(
                objective.name,
                kind,
                kept(members.sum(axis=0) >= min_group_size),
                kept(positives >= min_positives),
                kept(negatives >= min_negatives),
            )
        )
    return GroupTargets(torch.from_numpy(labels), tuple(gaps))


def _spread(p: Tensor, members: Tensor) -> Tensor:
    """max − min over groups of the mean of ``p`` in each group present in the batch (0 if < 2)."""
    counts = members.sum(dim=0)
    present = counts > 0
    if int(present.sum()) < 2:
        return p.new_zeros(())
    rates = (members[:, present].T @ p) / counts[present]
    return rates.max() - rates.min()


def soft_gap(p: Tensor, labels: Tensor, target: GapTarget, rows: Tensor) -> Tensor:
    """The target's soft gap on the batch ``rows`` (indices into the split) with soft predictions ``p``."""
    if target.kind == "dpd":
        return _spread(p, target.members[rows].to(p))
    positive = (labels == 1).to(p)[:, None]
    tpr = _spread(p, target.tpr_members[rows].to(p) * positive)
    fpr = _spread(p, target.fpr_members[rows].to(p) * (1 - positive))
    return torch.maximum(tpr, fpr)

"""Training objectives that treat the groups of one attribute as equals: group-balanced loss
weights and Group DRO.

Groups for training are the attribute's groups in the training split plus one more,
``UNGROUPED``, holding the examples in no group of the attribute (on HateXplain most posts target
no race), so no example drops out of training. Membership may overlap: a post in two groups is a
member of both.

``balanced``
    Every group contributes equally: the loss is the mean over the G non-empty groups of each
    group's mean loss, (1/G)·Σ_g (1/n_g)·Σ_{i∈g} ℓ_i. As per-example weights that is
    w_i = Σ_{g∋i} 1/(G·n_g) (scaled to mean 1 for the loop), which is also the probability of
    drawing example i by first drawing a group uniformly, then one of its members uniformly
    (group-balanced sampling): every group is drawn with probability 1/G, whatever its size. With
    overlap a post collects weight from each of its groups.
``group_dro``
    Online Group DRO (Sagawa, Koh, Hashimoto & Liang, "Distributionally Robust Neural Networks for
    Group Shifts", ICLR 2020, Algorithm 1): group weights q (uniform at the start) follow an
    exponentiated-gradient step on each batch, q_g ← q_g·exp(η·loss_g), normalised, where loss_g
    is the mean loss of the batch's members of g (0 for a group absent from the batch, which then
    loses weight relative to the others, as in the paper's code); the model minimises Σ_g q_g·loss_g.
    η (``dro_step_size``) defaults to the paper's code's 0.01 here; the study's ``baselines:``
    default is 1.0, because q moves by exp(η·Σ_t loss_g,t): over the ~50 steps of one epoch of its
    budgets, group losses that differ by 0.1 shift log q by 0.05 at η = 0.01 (q stays uniform, the
    fine-tune is plain FFT) and by 5 at η = 1. The paper's group adjustment C/√n_g and its strong
    ℓ2 penalty are not used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from fairmerge.data.types import TextSplit
from fairmerge.errors import ConfigError

GroupWeighting = Literal["balanced", "group_dro"]
GROUP_WEIGHTINGS: tuple[str, ...] = ("balanced", "group_dro")
UNGROUPED = "(none)"
"""The training group of the examples that belong to no group of the attribute."""
DEFAULT_DRO_STEP_SIZE = 0.01


@dataclass(frozen=True)
class GroupObjective:
    """How a fine-tune weighs the groups of ``attribute``: ``balanced``, or ``group_dro`` with step η."""

    weighting: GroupWeighting
    attribute: str
    dro_step_size: float = DEFAULT_DRO_STEP_SIZE

    def __post_init__(self) -> None:
        if self.weighting not in GROUP_WEIGHTINGS:
            raise ConfigError(
                f"group weighting must be one of {list(GROUP_WEIGHTINGS)}, got {self.weighting!r}"
            )
        if not isinstance(self.attribute, str) or not self.attribute:
            raise ConfigError(f"a group objective needs an attribute name, got {self.attribute!r}")
        step = self.dro_step_size
        if (
            isinstance(step, bool)
            or not isinstance(step, int | float)
            or not math.isfinite(step)
            or step <= 0
        ):
            raise ConfigError(f"dro_step_size must be a finite number > 0, got {step!r}")

    def key(self) -> dict[str, Any]:
        """What enters a training cache key (the step size only where it acts)."""
        key: dict[str, Any] = {"weighting": self.weighting, "attribute": self.attribute}
        if self.weighting == "group_dro":
            key["dro_step_size"] = float(self.dro_step_size)
        return key


def training_groups(split: TextSplit, attribute: str) -> tuple[list[str], np.ndarray]:
    """The training groups of ``attribute`` in ``split`` and their membership (examples × groups).

    The attribute's groups that occur, then ``UNGROUPED`` if any example is in none of them.
    """
    frame = split.membership(attribute)
    names, members = list(frame.columns), frame.to_numpy(dtype=bool)
    if UNGROUPED in names:
        raise ConfigError(f"attribute {attribute!r} has a group named {UNGROUPED!r}, reserved for 'no group'")
    ungrouped = ~members.any(axis=1)
    if ungrouped.any():
        names.append(UNGROUPED)
        members = np.column_stack([members, ungrouped])
    return names, members


def group_balanced_weights(members: np.ndarray) -> np.ndarray:
    """Per-example weights w_i = Σ_{g∋i} 1/(G·n_g), scaled to mean 1 (module docstring).

    ``members`` is a boolean (examples × groups) matrix in which every example is in at least one
    group (see :func:`training_groups`); empty groups are left out of G.
    """
    members = np.asarray(members, dtype=bool)
    if members.ndim != 2 or members.shape[0] == 0:
        raise ConfigError(
            f"membership must be a non-empty (examples × groups) matrix, got shape {members.shape}"
        )
    if not members.any(axis=1).all():
        raise ConfigError("every example must be in at least one training group (see training_groups)")
    sizes = members.sum(axis=0)
    present = sizes > 0
    per_group = np.zeros(members.shape[1])
    per_group[present] = 1.0 / (present.sum() * sizes[present])
    weights = members @ per_group
    return weights * (len(weights) / weights.sum())


class GroupDRO:
    """Online Group DRO weights over training groups, and the robust loss of a batch (module docstring).

    ``members`` is the (training examples × groups) membership; :meth:`loss` takes the batch's
    per-example losses and the batch's example positions. The weights are kept in log space
    (the same update, without overflow over long runs).
    """

    def __init__(self, group_names: list[str], members: np.ndarray, step_size: float = DEFAULT_DRO_STEP_SIZE):
        members = np.asarray(members, dtype=bool)
        if members.ndim != 2 or members.shape[1] != len(group_names) or not group_names:
            raise ConfigError(
                f"membership of shape {members.shape} does not fit {len(group_names)} group names"
            )
        self.group_names = list(group_names)
        self.step_size = float(step_size)
        self._members = torch.tensor(members, dtype=torch.float32)  # a copy: members may be read-only
        self._log_q = torch.full((len(group_names),), -math.log(len(group_names)), dtype=torch.float64)

    @property
    def n_examples(self) -> int:
        """Rows of the membership: the training examples the batch positions refer to."""
        return int(self._members.shape[0])

    @property
    def weights(self) -> dict[str, float]:
        """The current group weights q (sum to 1)."""
        return dict(zip(self.group_names, self._log_q.exp().tolist(), strict=True))

    def loss(self, losses: torch.Tensor, idx: np.ndarray) -> torch.Tensor:
        """Update q from this batch's group losses, then return Σ_g q_g·loss_g (differentiable)."""
        members = self._members[torch.as_tensor(idx)].to(losses.device)
        counts = members.sum(dim=0)
        group_loss = (members.T @ losses) / counts.clamp(min=1.0)
        with torch.no_grad():
            self._log_q += self.step_size * group_loss.detach().to(self._log_q)
            self._log_q -= torch.logsumexp(self._log_q, dim=0)
        return group_loss @ self._log_q.exp().to(group_loss)

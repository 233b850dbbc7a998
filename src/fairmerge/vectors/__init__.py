"""Task vectors τ = θ_ft − θ_base, their algebra, and merging (in memory or streamed out of core).

Entry points: :class:`TaskVector`, the functions of :mod:`fairmerge.vectors.merge`, and
:class:`InPlaceMerger` (the same merge written into a live model, for sweeps).
"""

from fairmerge.vectors.checkpoint_io import CheckpointReader, TensorSpec
from fairmerge.vectors.inplace import InPlaceMerger
from fairmerge.vectors.merge import (
    METHODS,
    MergeMethod,
    inject,
    merge_checkpoints,
    merge_state_dict,
    validate_merge_args,
)
from fairmerge.vectors.task_vector import TaskVector, is_head_key

__all__ = [
    "METHODS",
    "CheckpointReader",
    "InPlaceMerger",
    "MergeMethod",
    "TaskVector",
    "TensorSpec",
    "inject",
    "is_head_key",
    "merge_checkpoints",
    "merge_state_dict",
    "validate_merge_args",
]

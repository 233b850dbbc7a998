"""Geometry of task vectors: norms, inner products, cosines, the Gram matrix, sign conflicts.

Everything is computed in fp32 per tensor and summed in fp64; each delta is read once per call
(a lazy vector re-reads its files on every access).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import torch

from fairmerge.vectors.checks import check_same
from fairmerge.vectors.keys import layer_of

if TYPE_CHECKING:
    from fairmerge.vectors.task_vector import TaskVector


def per_tensor_norms(vector: TaskVector) -> dict[str, float]:
    """L2 norm of each delta (computed in fp32)."""
    return {k: float(torch.linalg.vector_norm(vector[k].float())) for k in vector}


def per_layer_norms(vector: TaskVector) -> dict[str, float]:
    """L2 norm per layer (``...layer.3``), other parameters grouped by their module."""
    squares: dict[str, float] = {}
    for key, value in per_tensor_norms(vector).items():
        layer = layer_of(key)
        squares[layer] = squares.get(layer, 0.0) + value**2
    return {layer: math.sqrt(s) for layer, s in squares.items()}


def norm(vector: TaskVector) -> float:
    """Global L2 norm over all deltas."""
    return math.sqrt(sum(v**2 for v in per_tensor_norms(vector).values()))


def dot(a: TaskVector, b: TaskVector) -> float:
    """Inner product ⟨a, b⟩ over all deltas (fp32 per tensor, summed in fp64)."""
    check_same(a.specs, b.specs, "dot")
    return sum(float(torch.dot(a[k].float().reshape(-1), b[k].float().reshape(-1))) for k in a)


def gram_matrix(vectors: Sequence[TaskVector]) -> torch.Tensor:
    """⟨τ_i, τ_j⟩ for every pair (float64, G × G), in one pass over the vectors' tensors.

    Each delta is read once (a lazy vector re-reads its checkpoints on every access, so pairwise
    :func:`dot` calls would read each one G times); peak memory is G copies of the largest tensor.
    Norms are the square roots of the diagonal, and ‖Σ_i c_i τ_i‖² = cᵀ·G·c.
    """
    if not vectors:
        return torch.zeros(0, 0, dtype=torch.float64)
    first = vectors[0]
    for other in vectors[1:]:
        check_same(first.specs, other.specs, "gram_matrix")
    gram = torch.zeros(len(vectors), len(vectors), dtype=torch.float64)
    for key in first:
        stacked = torch.stack([vector[key].float().reshape(-1) for vector in vectors])
        gram += (stacked @ stacked.T).double()
    return gram


def cosine_from_gram(gram: torch.Tensor) -> list[list[float]]:
    """Pairwise cosine similarities from a :func:`gram_matrix`; a zero vector's row and column are NaN."""
    norms = gram.diagonal().sqrt()
    if bool((norms == 0).any()):
        warnings.warn("cosine similarity with a zero task vector is undefined; returning NaN", stacklevel=2)
    return (gram / torch.outer(norms, norms)).tolist()  # 0 / 0 = NaN where a vector is zero


def cosine_similarity(a: TaskVector, b: TaskVector) -> float:
    """⟨a, b⟩ / (‖a‖‖b‖); NaN with a warning when either vector is zero."""
    check_same(a.specs, b.specs, "cosine_similarity")
    return cosine_from_gram(gram_matrix([a, b]))[0][1]


def sign_conflict_rate(a: TaskVector, b: TaskVector) -> float:
    """Share of coordinates, among those non-zero in both vectors, whose signs disagree.

    NaN with a warning when no coordinate is non-zero in both.
    """
    check_same(a.specs, b.specs, "sign_conflict_rate")
    conflicts, both = 0, 0
    for key in a:
        x, y = a[key], b[key]
        nonzero = (x != 0) & (y != 0)
        both += int(nonzero.sum())
        conflicts += int((nonzero & (torch.signbit(x) != torch.signbit(y))).sum())
    if both == 0:
        warnings.warn(
            "no coordinate is non-zero in both task vectors; sign conflict rate is NaN", stacklevel=3
        )
        return math.nan
    return conflicts / both


def summary(vector: TaskVector, kind: Literal["layer", "tensor"] = "layer") -> dict[str, Any]:
    """Size and norms, for ``fairmerge inspect`` and reports."""
    norms = per_layer_norms(vector) if kind == "layer" else per_tensor_norms(vector)
    return {
        "tensors": len(vector),
        "parameters": vector.num_parameters,
        "bytes": vector.nbytes,
        "dtypes": [str(d).removeprefix("torch.") for d in vector.dtypes],
        "norm": math.sqrt(sum(v**2 for v in norms.values())),
        "norms": norms,
        "metadata": dict(vector.metadata),
    }

"""Orthonormalised subgroup vectors (after FairMerging, ICML 2026; the idea, not a reproduction).

FairMerging's abstract describes fairness-aware coefficients over orthogonally normalised task
vectors; its method is not public, so this is our reading of the idea: an orthonormal basis
Q = M τ of the span of the subgroup vectors τ_1..τ_G, from the eigendecomposition of their Gram
matrix (G_ij = <τ_i, τ_j>, summed over tensors, float64): with G = U S Uᵀ, M = S^(-1/2) Uᵀ gives
Q Qᵀ = I. Directions with eigenvalue below ``rtol`` × the largest are dropped (the vectors are
then not independent), with the rank reported. Coefficients c over Q map back to per-vector
coefficients λ = c M, so a point learned over the basis is scored and reported like any other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from fairmerge.errors import VectorError


@dataclass(frozen=True)
class OrthonormalBasis:
    """``mixing`` (rank × G, float64): basis vector j is Σ_i mixing[j, i] τ_i. ``scale``: the vectors'
    root-mean-square norm, so that one unit of a coefficient on ``scale · Q_j`` moves the weights as
    far as one typical vector does."""

    mixing: Tensor
    scale: float

    @property
    def rank(self) -> int:
        return int(self.mixing.shape[0])

    def to_vector_coefficients(self) -> Tensor:
        """The (rank × G) map from coefficients over ``scale · Q`` to coefficients over the vectors."""
        return self.scale * self.mixing


def gram_matrix(vectors: Sequence[Mapping[str, Tensor]], keys: Sequence[str]) -> Tensor:
    """<τ_i, τ_j> summed over ``keys``, in float64, one tensor at a time (no flattened copy)."""
    n = len(vectors)
    gram = torch.zeros(n, n, dtype=torch.float64)
    for key in keys:
        flat = torch.stack([v[key].detach().reshape(-1).to(torch.float64) for v in vectors])
        gram += (flat @ flat.T).cpu()
    return gram


def orthonormal_basis(
    vectors: Sequence[Mapping[str, Tensor]], keys: Sequence[str] | None = None, *, rtol: float = 1e-8
) -> OrthonormalBasis:
    """The basis of the vectors' span over ``keys`` (default: all of the first vector's keys)."""
    if not vectors:
        raise VectorError("orthonormalising needs at least one vector")
    keys = list(keys if keys is not None else vectors[0])
    gram = gram_matrix(vectors, keys)
    eigenvalues, eigenvectors = torch.linalg.eigh(gram)
    keep = eigenvalues > rtol * float(eigenvalues.max())
    if not bool(keep.any()):
        raise VectorError("the vectors are all zero on these tensors: no direction to orthonormalise")
    mixing = (eigenvectors[:, keep] / eigenvalues[keep].sqrt()).T.flip(0)  # largest direction first
    scale = float(gram.diagonal().mean().sqrt())
    return OrthonormalBasis(mixing.contiguous(), scale)


def orthonormalise(
    vectors: Sequence[Mapping[str, Tensor]], basis: OrthonormalBasis, keys: Sequence[str] | None = None
) -> list[dict[str, Tensor]]:
    """The basis vectors themselves, Q_j = Σ_i mixing[j, i] τ_i (materialised: for checks and export;
    the learned search never builds them, it maps coefficients instead)."""
    keys = list(keys if keys is not None else vectors[0])
    out: list[dict[str, Tensor]] = [{} for _ in range(basis.rank)]
    for key in keys:
        flat = torch.stack([v[key].detach().to(torch.float64) for v in vectors])
        for j in range(basis.rank):
            out[j][key] = torch.tensordot(basis.mixing[j].to(flat.device), flat, dims=1)
    return out

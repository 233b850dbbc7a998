"""Orthonormalised subgroup vectors: orthonormal, the same span, and rank deficiency detected."""

from __future__ import annotations

import torch

from fairmerge.search import orthonormal_basis, orthonormalise


def _dot(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return float(sum((a[k].double() * b[k].double()).sum() for k in a))


def _vectors(n: int, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    return [
        {"w": torch.randn(6, 5, generator=generator), "b": torch.randn(5, generator=generator) * 3}
        for _ in range(n)
    ]


def test_basis_is_orthonormal_and_spans_the_vectors() -> None:
    vectors = _vectors(3)
    basis = orthonormal_basis(vectors)
    assert basis.rank == 3
    q = orthonormalise(vectors, basis)
    gram = torch.tensor([[_dot(a, b) for b in q] for a in q])
    torch.testing.assert_close(gram, torch.eye(3, dtype=gram.dtype), atol=1e-10, rtol=0)
    for v in vectors:  # each vector is its projection onto the basis: same span
        projection = {k: sum(_dot(v, qj) * qj[k] for qj in q) for k in v}
        for k in v:
            torch.testing.assert_close(projection[k], v[k].double(), atol=1e-9, rtol=0)
    # and λ = c·M maps basis coefficients to vector coefficients reproducing the same weights
    c = torch.tensor([0.3, -1.0, 2.0], dtype=torch.float64)
    lam = c @ basis.to_vector_coefficients()
    for k in vectors[0]:
        direct = sum(basis.scale * c[j] * q[j][k] for j in range(3))
        mapped = sum(lam[i] * vectors[i][k].double() for i in range(3))
        torch.testing.assert_close(direct, mapped, atol=1e-9, rtol=0)


def test_dependent_vectors_lose_a_direction() -> None:
    a, b = _vectors(2, seed=1)
    dependent = [a, b, {k: a[k] + 2 * b[k] for k in a}]
    basis = orthonormal_basis(dependent)
    assert basis.rank == 2
    q = orthonormalise(dependent, basis)
    assert abs(_dot(q[0], q[1])) < 1e-10 and abs(_dot(q[0], q[0]) - 1) < 1e-10

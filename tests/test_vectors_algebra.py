"""Property tests: task-vector algebra behaves like the math, applying behaves like θ_base + s·τ."""

from __future__ import annotations

import math
from collections.abc import Mapping

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fairmerge.errors import VectorError
from fairmerge.vectors import TaskVector, kernels
from fairmerge.vectors.kernels import Term, weighted_merge
from fairmerge.vectors.task_vector import cosine_from_gram, gram_matrix

SETTINGS = settings(max_examples=40, deadline=None)
DTYPES = [torch.float32, torch.bfloat16, torch.float16]


@st.composite
def layouts(draw: st.DrawFn) -> tuple[dict[str, tuple[int, ...]], torch.dtype, int]:
    """Random parameter names and shapes, one dtype, a seed."""
    n = draw(st.integers(1, 4))
    shapes = {
        f"layer.{i}.weight": tuple(draw(st.lists(st.integers(1, 5), min_size=0, max_size=3)))
        for i in range(n)
    }
    return shapes, draw(st.sampled_from(DTYPES)), draw(st.integers(0, 2**31 - 1))


def random_sd(
    shapes: Mapping[str, tuple[int, ...]], dtype: torch.dtype, seed: int
) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {k: torch.randn(s, generator=generator).to(dtype) for k, s in shapes.items()}


def vectors(layout: tuple[dict[str, tuple[int, ...]], torch.dtype, int], n: int) -> list[TaskVector]:
    shapes, dtype, seed = layout
    return [TaskVector(random_sd(shapes, dtype, seed + i)) for i in range(n)]


def tol(dtype: torch.dtype) -> float:
    """Relative rounding error of one operation in ``dtype``, with headroom for a few roundings."""
    return 4 * torch.finfo(dtype).eps


def assert_close(
    a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor], scale: float, dtype: torch.dtype
) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].dtype == b[key].dtype == dtype
        torch.testing.assert_close(a[key].float(), b[key].float(), rtol=0, atol=tol(dtype) * scale)


def magnitude(*vs: Mapping[str, torch.Tensor]) -> float:
    return max((float(v[k].float().abs().max()) for v in vs for k in v if v[k].numel()), default=1.0) + 1.0


@SETTINGS
@given(layouts())
def test_add_then_subtract_gives_back_the_vector(layout):
    a, b = vectors(layout, 2)
    assert_close((a + b) - b, a, 2 * magnitude(a, b), layout[1])


@SETTINGS
@given(layouts())
def test_doubling_negation_and_zero_are_exact(layout):
    (a,) = vectors(layout, 1)
    assert 2 * a == a + a
    assert a * 2 == 2 * a
    assert -(-a) == a  # noqa: B002 (double negation is the property under test)
    assert sum([a]) == a
    assert 0 + a is a and a + 0 is a
    assert (a - a).norm() == 0


@SETTINGS
@given(layouts())
def test_sum_and_analogy(layout):
    a, b, c = vectors(layout, 3)
    assert sum([a, b, c]) == (a + b) + c
    scale = 4 * magnitude(a, b, c)
    # analogy c + (b - a): adding the difference of two vectors moves a onto b
    assert_close(a + (b - a), b, scale, layout[1])
    assert_close((c + (b - a)) - c, b - a, scale, layout[1])
    assert_close(c + (b - a), (c + b) - a, scale, layout[1])


@SETTINGS
@given(layouts(), st.floats(-3, 3, allow_nan=False))
def test_scaling_is_linear_in_fp32(layout, s):
    (a,) = vectors(layout, 1)
    scaled = s * a
    for key in a:
        expected = (a[key].float() * s).to(a[key].dtype)
        assert torch.equal(scaled[key], expected)
    assert math.isclose((s * a).norm(), abs(s) * a.norm(), rel_tol=tol(layout[1]) * 4, abs_tol=1e-6)


@SETTINGS
@given(layouts())
def test_apply_at_zero_is_the_base_and_at_one_the_finetuned(layout):
    shapes, dtype, seed = layout
    base = random_sd(shapes, dtype, seed)
    ft = random_sd(shapes, dtype, seed + 1)
    tau = TaskVector.from_state_dicts(base, ft)
    at_zero = tau.apply_to(base, 0.0)
    assert all(torch.equal(at_zero[k], base[k]) for k in base)
    assert_close(tau.apply_to(base, 1.0), ft, 2 * magnitude(base, ft), dtype)
    kept_fp32 = TaskVector.from_state_dicts(base, ft, dtype=torch.float32)
    assert set(kept_fp32.dtypes) == {torch.float32}
    assert_close(kept_fp32.apply_to(base, 1.0), ft, 2 * magnitude(base, ft), dtype)


@SETTINGS
@given(layouts(), st.floats(-2, 2, allow_nan=False), st.floats(-2, 2, allow_nan=False))
def test_merge_kernel_accumulates_in_fp32_and_rounds_once(layout, l1, l2):
    shapes, dtype, seed = layout
    base, t1, t2 = (random_sd(shapes, dtype, seed + i) for i in range(3))
    for key in base:
        got = weighted_merge(base[key], [Term(t1[key], l1), Term(t2[key], l2, finetuned=True)])
        assert got.dtype == dtype
        b64 = base[key].double()
        exact = b64 + l1 * t1[key].double() + l2 * (t2[key].double() - b64)
        # one rounding to the output dtype (half an ulp) plus fp32 accumulation error
        torch.testing.assert_close(got.double(), exact, rtol=torch.finfo(dtype).eps, atol=1e-5)


def test_chunked_kernel_matches_whole_tensor(monkeypatch):
    generator = torch.Generator().manual_seed(3)
    base = torch.randn(5, 11, generator=generator).to(torch.bfloat16)
    terms = [Term(torch.randn(5, 11, generator=generator).to(torch.bfloat16), 0.7, finetuned=True)]
    whole = weighted_merge(base, terms)
    monkeypatch.setattr(kernels, "CHUNK_ELEMENTS", 7)
    assert torch.equal(weighted_merge(base, terms), whole)
    in_place = base.clone()
    weighted_merge(in_place, terms, out=in_place)
    assert torch.equal(in_place, whole)


@SETTINGS
@given(layouts())
def test_norms_cosine_and_sign_conflicts(layout):
    a, b = vectors(layout, 2)
    if a.norm() == 0:
        return
    assert math.isclose(a.cosine_similarity(a), 1.0, rel_tol=1e-5)
    assert math.isclose(a.cosine_similarity(-a), -1.0, rel_tol=1e-5)
    assert a.sign_conflict_rate(a) == 0.0
    assert a.sign_conflict_rate(-a) == 1.0
    cos = a.cosine_similarity(b)
    assert -1 - 1e-6 <= cos <= 1 + 1e-6
    assert math.isclose(sum(v**2 for v in a.per_layer_norms().values()), a.norm() ** 2, rel_tol=1e-6)


@SETTINGS
@given(layouts())
def test_gram_matrix_gives_the_pairwise_cosines_and_norms(layout):
    taus = vectors(layout, 3)
    if any(t.norm() == 0 for t in taus):
        return
    gram = gram_matrix(taus)
    matrix = cosine_from_gram(gram)
    for i, a in enumerate(taus):
        assert math.isclose(math.sqrt(gram[i, i]), a.norm(), rel_tol=1e-5)
        for j, b in enumerate(taus):
            assert math.isclose(matrix[i][j], a.cosine_similarity(b), rel_tol=1e-5, abs_tol=1e-6)
    total = sum(float(torch.sum(sum(t[k].double() for t in taus) ** 2)) for k in taus[0])  # ‖Σ τ‖², fp64
    assert math.isclose(float(gram.sum()), total, rel_tol=1e-4, abs_tol=1e-6)


def test_cosine_of_a_zero_vector_is_nan():
    a, zero = TaskVector({"w": torch.tensor([1.0, 2.0])}), TaskVector({"w": torch.zeros(2)})
    with pytest.warns(UserWarning, match=r"NaN"):
        matrix = cosine_from_gram(gram_matrix([a, zero]))
    assert matrix[0][0] == pytest.approx(1.0) and math.isnan(matrix[0][1]) and math.isnan(matrix[1][1])


def test_sign_conflict_counts_only_coordinates_nonzero_in_both():
    a = TaskVector({"w": torch.tensor([1.0, -1.0, 0.0, 2.0])})
    b = TaskVector({"w": torch.tensor([1.0, 1.0, 5.0, -2.0])})
    assert a.sign_conflict_rate(b) == pytest.approx(2 / 3)
    with pytest.warns(UserWarning, match=r"NaN"):
        assert math.isnan(TaskVector({"w": torch.zeros(4)}).cosine_similarity(b))


def test_vector_is_a_mapping_of_deltas():
    tau = TaskVector({"a.weight": torch.ones(2, 2), "b.bias": torch.zeros(3)})
    assert isinstance(tau, Mapping)
    assert list(tau) == ["a.weight", "b.bias"] and len(tau) == 2 and "a.weight" in tau
    assert dict(tau)["b.bias"].shape == (3,)
    assert tau.num_parameters == 7


def test_algebra_is_strict_about_keys_shapes_and_dtypes():
    a = TaskVector({"w": torch.ones(2), "v": torch.ones(1)})
    with pytest.raises(VectorError, match=r"'v'.*missing"):
        _ = a + TaskVector({"w": torch.ones(2)})
    with pytest.raises(VectorError, match=r"'w' differs: shape \[2\]"):
        _ = a - TaskVector({"w": torch.ones(3), "v": torch.ones(1)})
    with pytest.raises(VectorError, match=r"'w' differs.*bfloat16"):
        _ = a + TaskVector({"w": torch.ones(2, dtype=torch.bfloat16), "v": torch.ones(1)})
    with pytest.raises(TypeError):
        _ = a + 1.5
    with pytest.raises(VectorError, match=r"non-finite"):
        TaskVector({"w": torch.tensor([1.0, float("nan")])})
    with pytest.raises(VectorError, match=r"floating-point"):
        TaskVector({"ids": torch.arange(3)})

"""The multi-tensor kernel equals the per-tensor reference: fp32 bit for bit, bf16 within one ulp."""

from __future__ import annotations

import warnings

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from fairmerge.errors import ConfigError
from fairmerge.vectors import InPlaceMerger, kernels
from fairmerge.vectors.kernels import Term, merge_into, weighted_merge


def tiny_gpt2(dtype: torch.dtype) -> GPT2LMHeadModel:
    """Tied input/output embeddings, plus an integer buffer in the state dict."""
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=50, n_positions=16, n_embd=16, n_layer=2, n_head=2)
    model = GPT2LMHeadModel(config).to(dtype).eval()
    model.transformer.register_buffer("counts", torch.arange(3))
    return model


def bf16_ulps(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Distance in bf16 ulps (of the larger magnitude) between two bf16 tensors."""
    larger = torch.maximum(a.float().abs(), b.float().abs()).clamp(min=2**-126)
    ulp = torch.finfo(torch.bfloat16).eps * torch.exp2(torch.floor(torch.log2(larger)))
    return (a.float() - b.float()).abs() / ulp


def vectors_for(model: torch.nn.Module, n: int) -> list[dict[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(1)
    state = {k: v for k, v in model.state_dict().items() if v.is_floating_point() and k != "lm_head.weight"}
    return [
        {k: (0.05 * torch.randn(v.shape, generator=generator)).to(v.dtype) for k, v in state.items()}
        for _ in range(n)
    ]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_in_place_update_matches_per_tensor_reference(dtype, monkeypatch):
    monkeypatch.setattr(kernels, "CHUNK_ELEMENTS", 96)  # many chunks per tensor, tails included
    model = tiny_gpt2(dtype)
    base = {k: v.clone() for k, v in model.state_dict().items()}
    vectors = vectors_for(model, 2)
    merger = InPlaceMerger(model, base, vectors)
    for coefficients in ([0.3, -0.7], [0.45, 0.45]):
        merger.set_coefficients(coefficients)
        state = model.state_dict()
        for key, delta in vectors[0].items():
            if dtype == torch.float32:  # the reference: one torch op per tensor and vector
                if coefficients[0] == coefficients[1]:
                    want = torch.add(base[key], delta + vectors[1][key], alpha=coefficients[0])
                else:
                    want = torch.add(base[key], delta, alpha=coefficients[0])
                    want.add_(vectors[1][key], alpha=coefficients[1])
                assert torch.equal(state[key], want), key
            else:  # the reference accumulates in fp32 and rounds once; at most one bf16 ulp apart
                pairs = list(zip(coefficients, vectors, strict=True))
                want = base[key].float() + sum(c * v[key].float() for c, v in pairs)
                ulps = bf16_ulps(state[key], want.to(torch.bfloat16))
                # where the terms cancel to ~0, fp32 summation order alone moves the result by
                # a few fp32 ulps of the operands, which is many bf16 ulps of a tiny result
                operands = base[key].float().abs() + sum(abs(c) * v[key].float().abs() for c, v in pairs)
                cancelled = (state[key].float() - want).abs() <= 4 * torch.finfo(torch.float32).eps * operands
                assert ((ulps <= 1) | cancelled).all(), key
        # tied weights: one storage, written once, still tied; integer buffers untouched
        assert model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr()
        assert torch.equal(state["transformer.counts"], torch.arange(3))
    merger.restore()
    assert all(torch.equal(v, base[k]) for k, v in model.state_dict().items())


def test_one_multi_tensor_call_equals_one_call_per_tensor(monkeypatch):
    monkeypatch.setattr(kernels, "CHUNK_ELEMENTS", 64)
    generator = torch.Generator().manual_seed(2)
    shapes = [(7, 13), (300,), (1,), (33, 9)]
    for dtype in (torch.float32, torch.bfloat16):
        bases = [torch.randn(s, generator=generator).to(dtype) for s in shapes]
        terms = [
            [Term(torch.randn(s, generator=generator).to(dtype), 0.3), Term(b + 0.1, -1.2, finetuned=True)]
            for s, b in zip(shapes, bases, strict=True)
        ]
        singles = [weighted_merge(b, t) for b, t in zip(bases, terms, strict=True)]
        outs = [torch.empty_like(b) for b in bases]
        merge_into(outs, bases, terms)
        assert all(torch.equal(o, s) for o, s in zip(outs, singles, strict=True))


def test_accelerator_bucket_path_fuses_flat_buffers_and_scatters(monkeypatch):
    """The CUDA code path (flat spans + one foreach copy), exercised on CPU tensors."""
    generator = torch.Generator().manual_seed(3)
    sizes = [5, 17, 64, 3]
    for dtype in (torch.float32, torch.bfloat16):
        flat_base = torch.randn(sum(sizes), generator=generator).to(dtype)
        flat_tau = torch.randn(sum(sizes), generator=generator).to(dtype)
        bases, taus = list(flat_base.split(sizes)), list(flat_tau.split(sizes))
        for weights in ((0.5, 0.5), (0.5, -0.25)):
            outs = [torch.empty(n, dtype=dtype) for n in sizes]
            jobs = [
                kernels._make_job(b, o, [Term(t, weights[0]), Term(t * 2, weights[1])], sum_only=False)
                for b, o, t in zip(bases, outs, taus, strict=True)
            ]
            kernels._cuda_run(jobs)  # tau*2 is not flat: per-tensor fallback for this layout
            reference = [
                weighted_merge(b, [Term(t, weights[0]), Term(t * 2, weights[1])])
                for b, t in zip(bases, taus, strict=True)
            ]
            assert all(torch.equal(o, r) for o, r in zip(outs, reference, strict=True))
            fused_outs = [torch.empty(n, dtype=dtype) for n in sizes]
            doubled = flat_tau * 2
            jobs = [
                kernels._make_job(b, o, [Term(t, weights[0]), Term(d, weights[1])], sum_only=False)
                for b, o, t, d in zip(bases, fused_outs, taus, doubled.split(sizes), strict=True)
            ]
            kernels._cuda_run(jobs)  # every operand flat: one fused span per bucket
            for out, ref in zip(fused_outs, reference, strict=True):
                ulp = torch.finfo(dtype).eps * ref.double().abs().clamp(min=1e-30)
                assert bool(((out.double() - ref.double()).abs() <= ulp).all())


def test_accelerator_bucket_path_single_term_and_restore():
    generator = torch.Generator().manual_seed(4)
    sizes = [9, 40, 2]
    for dtype in (torch.float32, torch.bfloat16):
        flat_base = torch.randn(sum(sizes), generator=generator).to(dtype)
        flat_sum = torch.randn(sum(sizes), generator=generator)  # a uniform sweep's fp32 sum
        bases, sums = list(flat_base.split(sizes)), list(flat_sum.split(sizes))
        for terms_of in (lambda s: [Term(s, 0.7)], lambda s: []):
            outs = [torch.empty(n, dtype=dtype) for n in sizes]
            jobs = [
                kernels._make_job(b, o, terms_of(s), sum_only=False)
                for b, o, s in zip(bases, outs, sums, strict=True)
            ]
            kernels._cuda_run(jobs)
            for out, b, s in zip(outs, bases, sums, strict=True):
                ref = weighted_merge(b, terms_of(s))
                assert (bf16_ulps(out.to(torch.bfloat16), ref.to(torch.bfloat16)) <= 1).all()
                if dtype == torch.float32:
                    torch.testing.assert_close(out, ref, rtol=2e-7, atol=0)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_chunks_accumulate_in_fp32_and_round_once(dtype, monkeypatch):
    """The chunked half-precision path equals whole-tensor fp32 arithmetic rounded once, bit for bit."""
    monkeypatch.setattr(kernels, "CHUNK_ELEMENTS", 100)  # chunk boundaries inside every tensor
    generator = torch.Generator().manual_seed(5)
    base = torch.randn(37, 11, generator=generator).to(dtype)
    deltas = [(0.1 * torch.randn(37, 11, generator=generator)).to(dtype) for _ in range(3)]
    summed = torch.randn(37, 11, generator=generator)  # a uniform sweep's fp32 sum
    weighted = base.float().add_(deltas[0].float(), alpha=0.3).add_(deltas[1].float(), alpha=-0.7)
    uniform = base.float().add_(deltas[0].float() + deltas[1].float() + deltas[2].float(), alpha=0.45)
    cases = [
        ([Term(deltas[0], 0.3), Term(deltas[1], -0.7), Term(deltas[2], 0.0)], weighted),
        ([Term(d, 0.45) for d in deltas], uniform),
        ([Term(summed, 0.3)], base.float().add_(summed, alpha=0.3)),
    ]
    for terms, reference in cases:
        out = base.clone()
        weighted_merge(out, terms, out=out)  # in place, as a sweep writes a model's weights
        assert torch.equal(out, reference.to(dtype))


@pytest.fixture
def compiled_state(monkeypatch):
    """A fresh record of what this process compiled and trusted, kept from other tests."""
    state = kernels._Compiled()
    monkeypatch.setattr(kernels, "_compiled", state)
    return state


def test_compiled_half_path_gives_the_eager_bits(monkeypatch, compiled_state):
    """bf16 sweep points (per-vector, tied λ, uniform fp32 sum) through the compiled spans equal the
    eager chunks bit for bit; tied weights stay tied and integer buffers untouched."""
    monkeypatch.setattr(kernels, "CHUNK_ELEMENTS", 64)  # tensors from 64 elements take the path
    monkeypatch.setattr(kernels, "SPAN_ELEMENTS", 300)  # several spans per tensor, tails included
    model = tiny_gpt2(torch.bfloat16)
    base = {k: v.clone() for k, v in model.state_dict().items()}
    vectors = vectors_for(model, 2)
    points = [(False, [0.3, -0.7]), (False, [0.45, 0.45]), (True, 0.45)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for uniform, coefficients in points:
            merger = InPlaceMerger(model, base, vectors, uniform=uniform)
            monkeypatch.setenv("FAIRMERGE_MERGE_COMPILE", "off")
            eager = {k: v.clone() for k, v in merger.set_coefficients(coefficients).state_dict().items()}
            monkeypatch.setenv("FAIRMERGE_MERGE_COMPILE", "on")
            compiled = merger.set_coefficients(coefficients).state_dict()
            assert all(torch.equal(compiled[k], v) for k, v in eager.items()), coefficients
            assert model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr()
            assert torch.equal(compiled["transformer.counts"], torch.arange(3))
    reasons = [str(w.message) for w in caught if "compiled half-precision" in str(w.message)]
    assert not any("bits differ" in r for r in reasons), reasons
    if compiled_state.off:
        pytest.skip(f"torch.compile is unavailable here, the eager chunks ran: {reasons}")
    assert len(compiled_state.trusted) == 3  # per-vector, tied λ (summed first), fp32 sum


def test_compiled_path_whose_bits_differ_is_never_used(monkeypatch, compiled_state):
    monkeypatch.setattr(kernels, "CHUNK_ELEMENTS", 64)

    def unfused(out, base, deltas, weights, uniform):  # w·δ rounded before it is added: not the fma
        acc = base.float()
        for i, delta in enumerate(deltas):
            acc = acc + delta.float() * weights[0 if uniform else i]
        out.copy_(acc)

    compiled_state.function = unfused
    generator = torch.Generator().manual_seed(6)
    base = torch.randn(4000, generator=generator).to(torch.bfloat16)
    terms = [Term((0.1 * torch.randn(4000, generator=generator)).to(torch.bfloat16), w) for w in (0.3, -0.7)]
    monkeypatch.setenv("FAIRMERGE_MERGE_COMPILE", "on")
    with pytest.warns(UserWarning, match="bits differ from the eager chunks"):
        merged = weighted_merge(base, terms)
    assert compiled_state.off and not compiled_state.trusted
    monkeypatch.setenv("FAIRMERGE_MERGE_COMPILE", "off")
    assert torch.equal(merged, weighted_merge(base, terms))


def test_compiled_path_waits_for_a_large_call_and_rejects_unknown_modes(monkeypatch, compiled_state):
    monkeypatch.setattr(kernels, "CHUNK_ELEMENTS", 64)
    base = torch.ones(1000, dtype=torch.bfloat16)
    terms = [Term(torch.full((1000,), 0.5, dtype=torch.bfloat16), 0.25)]
    monkeypatch.delenv("FAIRMERGE_MERGE_COMPILE", raising=False)  # auto: 1000 < COMPILE_MIN_ELEMENTS
    assert torch.equal(weighted_merge(base, terms), torch.full((1000,), 1.125, dtype=torch.bfloat16))
    assert compiled_state.function is None
    monkeypatch.setenv("FAIRMERGE_MERGE_COMPILE", "yes")
    with pytest.raises(ConfigError, match="FAIRMERGE_MERGE_COMPILE must be auto, on or off, got 'yes'"):
        weighted_merge(base, terms)

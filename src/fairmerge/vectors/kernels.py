"""The one arithmetic kernel behind apply, task arithmetic and injection: θ = θ_base + Σ w_i·δ_i.

Half-precision weights are accumulated in fp32 and rounded once to the base dtype. On CPU the
work is done in cache-sized chunks with reused fp32 scratch buffers: converting whole bf16
tensors to fp32 allocates (and page-faults) a full fp32 copy per operand, which runs several
times slower than the memory bandwidth; chunking keeps temporaries small and in cache.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

CHUNK_ELEMENTS = 1 << 18
"""Elements per chunk on CPU (1 MiB of fp32): fits the L2 cache next to the operand chunks."""


@dataclass(frozen=True)
class Term:
    """One summand ``weight · δ``: ``δ = tensor`` for a delta, ``δ = tensor − base`` if ``finetuned``."""

    tensor: torch.Tensor
    weight: float
    finetuned: bool = False


class NonFiniteResult(ArithmeticError):
    """The merged tensor holds NaN or ±inf (callers turn this into a VectorError naming the key)."""


def weighted_merge(
    base: torch.Tensor,
    terms: Sequence[Term],
    *,
    out: torch.Tensor | None = None,
    check_finite: bool = False,
) -> torch.Tensor:
    """Return ``base + Σ w_i·δ_i`` in ``base``'s dtype, accumulated in fp32 (fp64 stays fp64).

    ``out`` may be ``base`` itself (in-place update of a model parameter). With ``check_finite``
    a :class:`NonFiniteResult` is raised when the result has a NaN or ±inf.
    """
    for term in terms:
        if term.tensor.shape != base.shape:
            raise ValueError(
                f"term of shape {tuple(term.tensor.shape)} does not match base {tuple(base.shape)}"
            )
    if out is None:
        out = torch.empty_like(base, memory_format=torch.contiguous_format)
    if not out.is_contiguous():
        result = weighted_merge(base, terms, check_finite=check_finite)
        out.copy_(result)
        return out
    acc_dtype = torch.float64 if base.dtype == torch.float64 else torch.float32
    device = base.device
    flat_base = base.reshape(-1)
    flat_out = out.view(-1)
    flats = [(t.tensor.to(device).reshape(-1), float(t.weight), t.finetuned) for t in terms]
    n = flat_base.numel()
    chunk = min(n, CHUNK_ELEMENTS) if device.type == "cpu" else n
    chunk = max(chunk, 1)
    acc_buf = torch.empty(chunk, dtype=acc_dtype, device=device)
    tmp_buf = torch.empty(chunk, dtype=acc_dtype, device=device) if flats else acc_buf
    need_base_copy = base.dtype != acc_dtype and any(f for _, _, f in flats)
    base_buf = torch.empty(chunk, dtype=acc_dtype, device=device) if need_base_copy else None
    total = 0.0
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        m = stop - start
        acc = acc_buf[:m]
        base_chunk = flat_base[start:stop]
        if base_buf is not None:
            base_acc = base_buf[:m]
            base_acc.copy_(base_chunk)
        else:
            base_acc = base_chunk
        acc.copy_(base_chunk)
        for flat, weight, finetuned in flats:
            x = flat[start:stop]
            if x.dtype != acc_dtype:
                x = tmp_buf[:m].copy_(x)
                if finetuned:
                    x.sub_(base_acc)
            elif finetuned:
                x = torch.sub(x, base_acc, out=tmp_buf[:m])
            acc.add_(x, alpha=weight)
        if check_finite:
            total += float(acc.sum())
        flat_out[start:stop].copy_(acc)
    if check_finite and not math.isfinite(total) and not bool(torch.isfinite(out).all()):
        # A finite sum proves every value finite; an infinite sum may only be an overflow of the
        # sum itself, so the exact check decides.
        raise NonFiniteResult("non-finite values in the result")
    return out

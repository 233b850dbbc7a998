"""The one arithmetic kernel behind apply, task arithmetic and injection: θ = θ_base + Σ w_i·δ_i.

Half-precision weights are accumulated in fp32 and rounded once to the base dtype. On CPU the
work is split into cache-sized chunks with reused fp32 scratch buffers: converting whole bf16
tensors to fp32 allocates (and page-faults) a full fp32 copy per operand and runs several times
slower than memory bandwidth. Chunks are shared out to worker threads that each run
single-threaded torch ops (torch releases the GIL): thousands of small multi-threaded ops would
each end in an OpenMP barrier, which stalls whenever another process holds one of the cores.
"""

from __future__ import annotations

import itertools
import math
import os
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch

CHUNK_ELEMENTS = 1 << 18
"""Elements per chunk on CPU (1 MiB of fp32): fits the L2 cache next to the operand chunks."""

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


@dataclass(frozen=True)
class Term:
    """One summand ``weight · δ``: ``δ = tensor`` for a delta, ``δ = tensor − base`` if ``finetuned``."""

    tensor: torch.Tensor
    weight: float
    finetuned: bool = False


class NonFiniteResult(ArithmeticError):
    """The merged tensor holds NaN or ±inf (callers turn this into a VectorError naming the key)."""


def _forget_pool() -> None:
    """In a forked child the pool's threads do not exist: start a new pool when needed."""
    global _pool, _pool_lock
    _pool = None
    _pool_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_pool)


def _workers() -> ThreadPoolExecutor:
    """A process-wide pool of single-threaded torch workers, one per CPU."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                max_workers=os.cpu_count() or 1,
                thread_name_prefix="fairmerge-merge",
                initializer=torch.set_num_threads,  # per thread: the caller's setting is untouched
                initargs=(1,),
            )
        return _pool


@dataclass(frozen=True)
class _Job:
    base: torch.Tensor  # flat
    out: torch.Tensor  # flat
    terms: list[tuple[torch.Tensor, float, bool]]  # flat tensors
    acc_dtype: torch.dtype
    chunk: int
    check_finite: bool


def _run_chunks(job: _Job, chunks: Iterator[int], n_chunks: int) -> float:
    """Process chunks drawn from a shared iterator; return the sum of the results (for the finite check)."""
    device = job.base.device
    size = min(job.chunk, job.base.numel())
    acc_buf = torch.empty(size, dtype=job.acc_dtype, device=device)
    tmp_buf = torch.empty(size, dtype=job.acc_dtype, device=device)
    needs_copy = job.base.dtype != job.acc_dtype
    base_buf = torch.empty(size, dtype=job.acc_dtype, device=device) if needs_copy else None
    total = 0.0
    n = job.base.numel()
    for index in chunks:
        if index >= n_chunks:
            break
        start = index * job.chunk
        stop = min(n, start + job.chunk)
        m = stop - start
        base_chunk = job.base[start:stop]
        base_acc = base_chunk if base_buf is None else base_buf[:m].copy_(base_chunk)
        acc: torch.Tensor | None = None
        for flat, weight, finetuned in job.terms:
            x = flat[start:stop]
            if x.dtype != job.acc_dtype:
                x = tmp_buf[:m].copy_(x)
                if finetuned:
                    x.sub_(base_acc)
            elif finetuned:
                x = torch.sub(x, base_acc, out=tmp_buf[:m])
            if acc is None:
                acc = torch.add(base_acc, x, alpha=weight, out=acc_buf[:m])
            else:
                acc.add_(x, alpha=weight)
        result = base_acc if acc is None else acc
        if job.check_finite:
            total += float(result.sum())
        job.out[start:stop].copy_(result)
    return total


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
            raise ValueError(f"term shape {tuple(term.tensor.shape)} does not match base {tuple(base.shape)}")
    if out is None:
        out = torch.empty_like(base, memory_format=torch.contiguous_format)
    if not out.is_contiguous():
        out.copy_(weighted_merge(base, terms, check_finite=check_finite))
        return out
    n = base.numel()
    cpu = base.device.type == "cpu"
    chunk = max(1, CHUNK_ELEMENTS if cpu else n)
    job = _Job(
        base=base.reshape(-1),
        out=out.view(-1),
        terms=[(t.tensor.to(base.device).reshape(-1), float(t.weight), t.finetuned) for t in terms],
        acc_dtype=torch.float64 if base.dtype == torch.float64 else torch.float32,
        chunk=chunk,
        check_finite=check_finite,
    )
    n_chunks = math.ceil(n / chunk)
    workers = min(torch.get_num_threads(), n_chunks) if cpu else 1
    if workers <= 1:
        total = _run_chunks(job, iter(range(n_chunks)), n_chunks)
    else:
        shared = itertools.count()  # next() on a count is atomic under the GIL: a shared work queue
        futures = [_workers().submit(_run_chunks, job, shared, n_chunks) for _ in range(workers)]
        total = sum(f.result() for f in futures)
    if check_finite and not math.isfinite(total) and not bool(torch.isfinite(out).all()):
        # A finite sum proves every value finite; an infinite sum may only be an overflow of the
        # sum itself, so the exact check decides.
        raise NonFiniteResult("non-finite values in the result")
    return out

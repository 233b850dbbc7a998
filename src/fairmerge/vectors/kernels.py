"""The one arithmetic kernel of every merge: θ = θ_base + Σ w_i·δ_i, for one tensor or many at once.

Every code path (``fairmerge merge``, :func:`merge_state_dict`, ``TaskVector.apply_to`` and the
in-place sweeps of :class:`fairmerge.vectors.InPlaceMerger`) calls this module, and its arithmetic
is canonical, so two paths given the same inputs agree bit for bit:

- terms of weight 0 are dropped (λ = 0 gives the base exactly);
- values are accumulated in fp32 (fp64 for fp64 weights) and rounded once to the base's dtype;
- when every remaining weight is the same ``w``: θ = base + w·(δ_1 + … + δ_n), the sum being what a
  uniform-λ sweep precomputes once (:func:`sum_deltas`); otherwise θ = ((base + w_1 δ_1) + w_2 δ_2) + ….

On CPU the work is split into cache-sized chunks with reused fp32 scratch buffers (converting whole
bf16 tensors to fp32 would allocate and page-fault a full fp32 copy per operand), and the chunks of
*all* tensors of one call are shared out to worker threads that each run single-threaded torch ops
(torch releases the GIL): thousands of small multi-threaded ops would each end in an OpenMP
barrier, which stalls whenever another process holds one of the cores. On CUDA the tensors are
grouped into buckets; a bucket whose tensors lie back to back in one buffer (the merger's flat
per-dtype buffers) is computed by one fused elementwise kernel and scattered into the targets with
one ``torch._foreach_copy_``, so a point costs a few launches instead of several per tensor.
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

CHUNK_ELEMENTS = 1 << 16
"""Elements per chunk on CPU (256 KiB of fp32): the fp32 scratch of a half-precision chunk (an
accumulator and one converted operand) and its operand chunks stay in a core's L2 cache, so only
the operands' first read and the result's write go to memory (2**18 spilled to L3 and ran at about
0.8x the speed of 2**16 in bf16)."""
BUCKET_ELEMENTS = 1 << 26
"""Elements per bucket on CUDA (256 MiB of fp32 scratch at most): bounds the temporaries."""

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


@dataclass(frozen=True)
class Term:
    """One summand ``weight · δ``: ``δ = tensor`` for a delta, ``δ = tensor − base`` if ``finetuned``."""

    tensor: torch.Tensor
    weight: float
    finetuned: bool = False


class NonFiniteResult(ArithmeticError):
    """A merged tensor holds NaN or ±inf (callers turn this into a VectorError naming the key)."""

    def __init__(self, index: int = 0) -> None:
        super().__init__(f"non-finite values in result {index}")
        self.index = index


def accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    """fp64 stays fp64; every other floating dtype accumulates in fp32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


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
    """One tensor's update, everything flat: ``out = base + Σ w δ`` (or ``out = Σ δ`` if ``sum_only``)."""

    base: torch.Tensor
    out: torch.Tensor
    terms: tuple[tuple[torch.Tensor, float, bool], ...]
    acc_dtype: torch.dtype
    uniform: float | None  # the common weight when all weights are equal
    sum_only: bool

    @property
    def numel(self) -> int:
        return self.base.numel()


def _make_job(base: torch.Tensor, out: torch.Tensor, terms: Sequence[Term], *, sum_only: bool) -> _Job:
    for term in terms:
        if term.tensor.shape != base.shape:
            raise ValueError(f"term shape {tuple(term.tensor.shape)} does not match base {tuple(base.shape)}")
    kept = tuple(
        (t.tensor.to(base.device).reshape(-1), float(t.weight), t.finetuned)
        for t in terms
        if sum_only or t.weight != 0
    )
    weights = {w for _, w, _ in kept}
    return _Job(
        base=base.reshape(-1),
        out=out.view(-1),
        terms=kept,
        acc_dtype=accumulation_dtype(base.dtype),
        uniform=weights.pop() if len(weights) == 1 else None,
        sum_only=sum_only,
    )


class _Scratch:
    """A worker's reusable chunk buffers, one set per accumulation dtype."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._buffers: dict[tuple[torch.dtype, str], torch.Tensor] = {}

    def get(self, dtype: torch.dtype, name: str, size: int) -> torch.Tensor:
        key = (dtype, name)
        buffer = self._buffers.get(key)
        if buffer is None or buffer.numel() < size:
            buffer = torch.empty(max(size, CHUNK_ELEMENTS), dtype=dtype, device=self.device)
            self._buffers[key] = buffer
        return buffer[:size]


def _accumulate(
    job: _Job, acc: torch.Tensor, out: torch.Tensor, start: int, stop: int, scratch: _Scratch
) -> torch.Tensor:
    """``acc += Σ w δ`` over plain (not finetuned) terms, in :func:`_chunk`'s order; rounded into ``out``."""

    def operand(flat: torch.Tensor, buffer: str) -> torch.Tensor:
        x = flat[start:stop]
        return x if x.dtype == acc.dtype else scratch.get(acc.dtype, buffer, stop - start).copy_(x)

    if job.uniform is not None:
        (first, _, _), *rest = job.terms
        total = operand(first, "sum")
        if rest:
            if total.data_ptr() == first[start:stop].data_ptr():  # not converted: start a sum buffer
                total = scratch.get(acc.dtype, "sum", stop - start).copy_(total)
            for flat, _, _ in rest:
                total.add_(operand(flat, "tmp"))
        acc.add_(total, alpha=job.uniform)
    else:
        for flat, weight, _ in job.terms:
            acc.add_(operand(flat, "tmp"), alpha=weight)
    out.copy_(acc)
    return acc


def _chunk(job: _Job, start: int, stop: int, scratch: _Scratch) -> torch.Tensor:
    """Compute one chunk of a job into ``job.out``; return the chunk's result in the accumulation dtype."""
    m = stop - start
    acc_dtype = job.acc_dtype
    base = job.base[start:stop]
    out = job.out[start:stop]
    converts = base.dtype != acc_dtype
    if converts and job.terms and not job.sum_only and not any(f for _, _, f in job.terms):
        # Half precision without finetuned terms: the base is converted straight into the
        # accumulator (one scratch buffer fewer in cache; the same operations, so the same bits).
        return _accumulate(job, scratch.get(acc_dtype, "acc", m).copy_(base), out, start, stop, scratch)
    base_acc = scratch.get(acc_dtype, "base", m).copy_(base) if converts else base
    if not job.terms:
        if job.sum_only:
            return out.zero_()
        if out.data_ptr() != base.data_ptr():
            out.copy_(base)
        return base_acc

    def delta(flat: torch.Tensor, finetuned: bool, buffer: str) -> torch.Tensor:
        x = flat[start:stop]
        if x.dtype != acc_dtype:
            x = scratch.get(acc_dtype, buffer, m).copy_(x)
            if finetuned:
                x.sub_(base_acc)
        elif finetuned:
            x = torch.sub(x, base_acc, out=scratch.get(acc_dtype, buffer, m))
        return x

    # The result may go straight into ``out`` when no conversion is needed and ``out`` is not the
    # base a later finetuned term still has to read.
    aliased = out.data_ptr() == base.data_ptr()
    direct = out.dtype == acc_dtype and not (aliased and any(f for _, _, f in job.terms))
    target = out if direct else scratch.get(acc_dtype, "acc", m)
    if job.uniform is not None or job.sum_only:
        (first, _, first_ft), *rest = job.terms
        if rest:
            total = delta(first, first_ft, "sum")
            if total.data_ptr() == first[start:stop].data_ptr():  # no copy was made: start a sum buffer
                total = scratch.get(acc_dtype, "sum", m).copy_(total)
            for flat, _, finetuned in rest:
                total.add_(delta(flat, finetuned, "tmp"))
        else:
            total = delta(first, first_ft, "sum")
        if job.sum_only:
            out.copy_(total)
            return total
        result = torch.add(base_acc, total, alpha=job.uniform, out=target)
    else:
        (first, weight, finetuned), *rest = job.terms
        result = torch.add(base_acc, delta(first, finetuned, "tmp"), alpha=weight, out=target)
        for flat, weight, finetuned in rest:
            result.add_(delta(flat, finetuned, "tmp"), alpha=weight)
    if result.data_ptr() != out.data_ptr():
        out.copy_(result)
    return result


def _cpu_run(jobs: Sequence[_Job], check_finite: bool) -> list[float]:
    """Run every chunk of every job on the worker pool; return each job's result sum (finite check)."""
    plan = [
        (j, start, min(job.numel, start + CHUNK_ELEMENTS))
        for j, job in enumerate(jobs)
        for start in range(0, max(job.numel, 1), CHUNK_ELEMENTS)
        if job.numel
    ]

    def work(indices: Iterator[int]) -> dict[int, float]:
        scratch = _Scratch(torch.device("cpu"))
        sums: dict[int, float] = {}
        for index in indices:
            if index >= len(plan):
                break
            j, start, stop = plan[index]
            result = _chunk(jobs[j], start, stop, scratch)
            if check_finite:
                sums[j] = sums.get(j, 0.0) + float(result.sum())
        return sums

    workers = min(torch.get_num_threads(), len(plan))
    if workers <= 1:
        parts = [work(iter(range(len(plan))))]
    else:
        shared = itertools.count()  # next() on a count is atomic under the GIL: a shared work queue
        futures = [_workers().submit(work, shared) for _ in range(workers)]
        parts = [f.result() for f in futures]
    totals = [0.0] * len(jobs)
    for part in parts:
        for j, value in part.items():
            totals[j] += value
    return totals


def _contiguous_run(tensors: Sequence[torch.Tensor]) -> torch.Tensor | None:
    """One flat view spanning ``tensors`` when they lie back to back in one storage, else None."""
    first = tensors[0]
    if not all(t.is_contiguous() and t.dtype == first.dtype for t in tensors):
        return None
    storage = first.untyped_storage().data_ptr()
    position = first.storage_offset()
    for tensor in tensors:
        if tensor.untyped_storage().data_ptr() != storage or tensor.storage_offset() != position:
            return None
        position += tensor.numel()
    total = position - first.storage_offset()
    return first.new_empty(0).set_(first.untyped_storage(), first.storage_offset(), (total,), (1,))


def _cuda_bucket(jobs: Sequence[_Job]) -> None:
    """Jobs that share weights and term layout: fused over flat spans when possible, else per tensor.

    A single term is one ``torch.add`` over the whole span: CUDA computes half-precision inputs in
    fp32 registers and rounds once, which is the canonical result without any fp32 temporary.
    """
    head = jobs[0]
    bases = [j.base for j in jobs]
    outs = [j.out for j in jobs]
    flat_base = _contiguous_run(bases)
    flat_terms = [_contiguous_run([j.terms[i][0] for j in jobs]) for i in range(len(head.terms))]
    if flat_base is None or any(t is None for t in flat_terms):
        for job in jobs:  # tensors scattered in memory: whole-tensor ops, one job at a time
            _chunk(job, 0, job.numel, _Scratch(job.base.device))
        return
    sizes = [j.numel for j in jobs]
    if not head.terms and not head.sum_only:
        torch._foreach_copy_(outs, list(flat_base.split(sizes)))
        return
    out_dtype = head.acc_dtype if head.sum_only else flat_base.dtype
    flat_out = torch.empty(flat_base.numel(), dtype=out_dtype, device=flat_base.device)
    if len(head.terms) == 1 and not head.terms[0][2] and not head.sum_only:
        torch.add(flat_base, flat_terms[0], alpha=head.terms[0][1], out=flat_out)  # type: ignore[arg-type]
    else:
        fused = _Job(
            base=flat_base,
            out=flat_out,
            terms=tuple((t, w, f) for t, (_, w, f) in zip(flat_terms, head.terms, strict=True)),  # type: ignore[misc]
            acc_dtype=head.acc_dtype,
            uniform=head.uniform,
            sum_only=head.sum_only,
        )
        _chunk(fused, 0, fused.numel, _Scratch(flat_base.device))
    torch._foreach_copy_(outs, list(flat_out.split(sizes)))


def _cuda_run(jobs: Sequence[_Job]) -> None:
    def signature(job: _Job) -> tuple[object, ...]:
        layout = tuple((t.dtype, w, f) for t, w, f in job.terms)
        return (job.base.dtype, job.out.dtype, job.acc_dtype, job.uniform, job.sum_only, layout)

    bucket: list[_Job] = []
    size = 0
    for job in jobs:
        if bucket and (signature(job) != signature(bucket[0]) or size + job.numel > BUCKET_ELEMENTS):
            _cuda_bucket(bucket)
            bucket, size = [], 0
        bucket.append(job)
        size += job.numel
    if bucket:
        _cuda_bucket(bucket)


def _run(jobs: Sequence[_Job], check_finite: bool) -> None:
    if not jobs:
        return
    if jobs[0].base.device.type == "cpu":
        totals = _cpu_run(jobs, check_finite)
        if check_finite:
            for index, (job, total) in enumerate(zip(jobs, totals, strict=True)):
                # A finite sum proves every value finite; an infinite one may only be an overflow of
                # the sum itself, so the exact check decides.
                if not math.isfinite(total) and not bool(torch.isfinite(job.out).all()):
                    raise NonFiniteResult(index)
        return
    _cuda_run(jobs)
    if check_finite:
        for index, job in enumerate(jobs):
            if not bool(torch.isfinite(job.out).all()):
                raise NonFiniteResult(index)


def merge_into(
    outs: Sequence[torch.Tensor],
    bases: Sequence[torch.Tensor],
    terms: Sequence[Sequence[Term]],
    *,
    check_finite: bool = False,
) -> None:
    """The multi-tensor kernel: ``outs[k] = bases[k] + Σ w·δ`` over ``terms[k]``, in one call.

    ``outs[k]`` may be ``bases[k]`` itself and must be contiguous; each result has ``outs[k]``'s
    dtype. With ``check_finite`` a :class:`NonFiniteResult` carrying the index of the first
    non-finite result is raised.
    """
    if not len(outs) == len(bases) == len(terms):
        raise ValueError(f"{len(outs)} outputs, {len(bases)} bases and {len(terms)} term lists")
    jobs = [_make_job(b, o, t, sum_only=False) for o, b, t in zip(outs, bases, terms, strict=True)]
    _run(jobs, check_finite)


def weighted_merge(
    base: torch.Tensor,
    terms: Sequence[Term],
    *,
    out: torch.Tensor | None = None,
    check_finite: bool = False,
) -> torch.Tensor:
    """Return ``base + Σ w_i·δ_i`` in ``base``'s dtype (one tensor; see :func:`merge_into`).

    ``out`` may be ``base`` itself (in-place update of a model parameter). With ``check_finite``
    a :class:`NonFiniteResult` is raised when the result has a NaN or ±inf.
    """
    if out is None:
        out = torch.empty_like(base, memory_format=torch.contiguous_format)
    if not out.is_contiguous():
        out.copy_(weighted_merge(base, terms, check_finite=check_finite))
        return out
    merge_into([out], [base], [terms], check_finite=check_finite)
    return out


def sum_deltas(base: torch.Tensor, terms: Sequence[Term], *, out: torch.Tensor | None = None) -> torch.Tensor:
    """``δ_1 + … + δ_n`` in the accumulation dtype, summed exactly as the uniform-weight merge sums.

    ``weighted_merge(base, [Term(sum_deltas(base, terms), w)])`` equals ``weighted_merge(base,
    [Term(t.tensor, w, t.finetuned) for t in terms])`` bit for bit; a uniform-λ sweep stores this one
    sum instead of every vector. Weights are ignored.
    """
    acc_dtype = accumulation_dtype(base.dtype)
    if out is None:
        out = torch.empty(base.shape, dtype=acc_dtype, device=base.device)
    if out.dtype != acc_dtype or not out.is_contiguous():
        raise ValueError(f"sum_deltas needs a contiguous {acc_dtype} output, got {out.dtype}")
    _run([_make_job(base, out, terms, sum_only=True)], check_finite=False)
    return out

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

Half precision on CPU has an optional second code path: eager chunks pay one pass through the
cache per conversion and per term (six for two bf16 vectors), while one loop compiled by
``torch.compile`` reads each operand once. It is used when ``FAIRMERGE_MERGE_COMPILE`` is ``on``,
or ``auto`` (the default) and one call updates at least :data:`COMPILE_MIN_ELEMENTS` elements.
It states the same arithmetic (``w·δ + acc`` as one fused multiply-add, like ``Tensor.add_(δ,
alpha=w)``; the uniform sum left to right) and each of its signatures is checked bit for bit
against the eager chunks on the call's own data before it is trusted; a missing compiler or a
check that fails turns it off for the process with one warning, so the results never depend on
which path ran.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch

from fairmerge.errors import ConfigError

CHUNK_ELEMENTS = 1 << 16
"""Elements per chunk on CPU (256 KiB of fp32): the fp32 scratch of a half-precision chunk (an
accumulator and one converted operand) and its operand chunks stay in a core's L2 cache, so only
the operands' first read and the result's write go to memory (2**18 spilled to L3 and ran at about
0.8x the speed of 2**16 in bf16)."""
BUCKET_ELEMENTS = 1 << 26
"""Elements per bucket on CUDA (256 MiB of fp32 scratch at most): bounds the temporaries."""

COMPILE_MIN_ELEMENTS = 1 << 27
"""Elements one call must update before ``auto`` uses the compiled path: compiling costs about
10-20 s once per process and signature, and below this size (256 MB of bf16) the time a sweep
point saves takes too many points to repay it."""
SPAN_ELEMENTS = 1 << 22
"""Elements per call of the compiled loop (a worker's share at a time). A call costs a few hundred
µs of guards and wrappers, so spans are large. A bf16 point's time ÷ the eager chunks' (same runs,
under load 13): spans of 2**18, 2**20, 2**22 elements 0.88, 0.52, 0.42; in another run 2**21,
2**22, 2**24 0.43, 0.40, 0.41."""
COMPILED_SIGNATURES = 8
"""At most this many signatures are compiled per process (each costs seconds once)."""

logger = logging.getLogger("fairmerge.vectors")
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


def _after_fork() -> None:
    """In a forked child the pool's threads do not exist (a new pool starts when needed) and no
    thread holds a lock."""
    global _pool, _pool_lock
    _pool = None
    _pool_lock = threading.Lock()
    _compiled.lock = threading.Lock()  # a parent's thread may have held it at the fork


os.register_at_fork(after_in_child=_after_fork)


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


def _cpu_run(
    jobs: Sequence[_Job],
    check_finite: bool,
    compute: Callable[[_Job, int, int, _Scratch], torch.Tensor | None] | None = None,
    step: int = 0,
) -> list[float]:
    """Run every chunk of every job on the worker pool; return each job's result sum (finite check).

    ``compute`` (default :func:`_chunk`) does one span of ``step`` elements (default one chunk).
    """
    compute = compute or _chunk
    step = step or CHUNK_ELEMENTS
    plan = [
        (j, start, min(job.numel, start + step))
        for j, job in enumerate(jobs)
        for start in range(0, max(job.numel, 1), step)
        if job.numel
    ]

    def work(indices: Iterator[int]) -> dict[int, float]:
        scratch = _Scratch(torch.device("cpu"))
        sums: dict[int, float] = {}
        for index in indices:
            if index >= len(plan):
                break
            j, start, stop = plan[index]
            result = compute(jobs[j], start, stop, scratch)
            if check_finite and result is not None:
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


def _fused_half(
    out: torch.Tensor, base: torch.Tensor, deltas: list[torch.Tensor], weights: torch.Tensor, uniform: bool
) -> None:
    """:func:`_chunk`'s half-precision arithmetic as one expression, for ``torch.compile`` to fuse."""
    acc = base.float()
    if uniform:
        total = deltas[0].float()
        for delta in deltas[1:]:
            total = total + delta.float()
        acc = torch.ops.prims.fma(total, weights[0], acc)
    else:
        for i, delta in enumerate(deltas):
            acc = torch.ops.prims.fma(delta.float(), weights[i], acc)
    out.copy_(acc)


class _Compiled:
    """The compiled half-precision path of this process: its function and the signatures it passed."""

    def __init__(self) -> None:
        self.function: Callable[..., None] | None = None
        self.trusted: set[tuple[object, ...]] = set()
        self.off = False
        self.lock = threading.Lock()

    def give_up(self, reason: str) -> None:
        self.off = True
        message = f"the compiled half-precision merge is off for this process ({reason}); eager chunks run"
        warnings.warn(message, stacklevel=4)


_compiled = _Compiled()


def compiled_signatures() -> int:
    """How many signatures the compiled path has checked and uses in this process (0 when off)."""
    return 0 if _compiled.off else len(_compiled.trusted)


def compile_mode() -> str:
    """``FAIRMERGE_MERGE_COMPILE``: ``auto`` (default), ``on`` or ``off`` (see the module docstring)."""
    mode = os.environ.get("FAIRMERGE_MERGE_COMPILE", "auto")
    if mode not in ("auto", "on", "off"):
        raise ConfigError(f"FAIRMERGE_MERGE_COMPILE must be auto, on or off, got {mode!r}")
    return mode


def _fusable(job: _Job) -> bool:
    """A half-precision update of one whole tensor by plain terms, its output aliasing no input."""
    if job.sum_only or not job.terms or job.base.dtype not in (torch.bfloat16, torch.float16):
        return False
    if job.out.dtype != job.base.dtype or job.numel < CHUNK_ELEMENTS or any(f for _, _, f in job.terms):
        return False
    written = job.out.untyped_storage().data_ptr()
    inputs = [job.base, *(t for t, _, _ in job.terms)]
    return all(t.untyped_storage().data_ptr() != written for t in inputs)


def _call_fused(
    function: Callable[..., None], job: _Job, start: int, stop: int, out: torch.Tensor | None = None
) -> None:
    """Elements ``start:stop`` of ``job``'s result by ``function``, into ``out`` (default the job's)."""
    weights = [job.uniform] if job.uniform is not None else [w for _, w, _ in job.terms]
    # Room for the variants Dynamo compiles per signature (views, storage offsets), and an error
    # instead of running the function uncompiled when even that is used up (names vary by version).
    wanted = {"recompile_limit": 64, "cache_size_limit": 64, "fail_on_recompile_limit_hit": True}
    wanted["fail_on_cache_limit_hit"] = True
    settings = {k: v for k, v in wanted.items() if hasattr(torch._dynamo.config, k)}
    with torch.no_grad(), torch._dynamo.config.patch(settings):
        deltas = [t[start:stop] for t, _, _ in job.terms]
        target = job.out[start:stop] if out is None else out
        scalars = torch.tensor(weights, dtype=job.acc_dtype)  # as eager rounds alpha: to fp32
        function(target, job.base[start:stop], deltas, scalars, job.uniform is not None)


def _signature(job: _Job) -> tuple[object, ...]:
    return (job.base.dtype, job.uniform is not None, tuple(t.dtype for t, _, _ in job.terms))


def _trusted(job: _Job) -> bool:
    """Compile ``job``'s signature once and check it against the eager chunks on the job's own data.

    Runs on a pool worker: Inductor fixes a loop's thread count when it compiles it, and a worker's
    is 1, so the compiled spans share out the cores as the eager chunks do (no OpenMP barrier that
    waits for a core another process holds).
    """
    signature = _signature(job)
    with _compiled.lock:
        if signature in _compiled.trusted or _compiled.off:
            return not _compiled.off
        if len(_compiled.trusted) >= COMPILED_SIGNATURES:
            return False
        logger.info("compiling the fused half-precision merge for %s (once per process)", signature)
        size = min(job.numel // 2, CHUNK_ELEMENTS + 4099)  # a chunk boundary and a vector tail
        for start, pad in ((0, 0), (job.numel - size, 2)):  # views at storage offset 0 and inside
            terms = tuple((t[start : start + size], w, f) for t, w, f in job.terms)
            eager = torch.empty(size, dtype=job.out.dtype)
            sample = _Job(job.base[start : start + size], eager, terms, job.acc_dtype, job.uniform, False)
            eager_acc = _chunk(sample, 0, size, _Scratch(torch.device("cpu")))
            # The fp32 accumulator too: a rounding that differs in fp32 rarely shows after bf16's.
            compiled = torch.empty(size + pad, dtype=job.out.dtype)[pad:]
            compiled_acc = torch.empty(size, dtype=job.acc_dtype)
            try:
                if _compiled.function is None:
                    _compiled.function = torch.compile(_fused_half, dynamic=True, fullgraph=True)
                _call_fused(_compiled.function, job, start, start + size, compiled)
                _call_fused(_compiled.function, job, start, start + size, compiled_acc)
            except Exception as error:  # no compiler, a torch without prims.fma, ...: eager is right
                _compiled.give_up(f"{type(error).__name__}: {(str(error) or '?').splitlines()[0]}")
                return False
            same = torch.equal(compiled.view(torch.int16), eager.view(torch.int16))
            if not (same and torch.equal(compiled_acc.view(torch.int32), eager_acc.view(torch.int32))):
                _compiled.give_up(f"its bits differ from the eager chunks for {signature}")
                return False
        _compiled.trusted.add(signature)
        return True


def _run_compiled(jobs: Sequence[_Job]) -> set[int]:
    """Run the jobs the compiled path takes (see the module docstring); return their indices."""
    mode = compile_mode()
    if mode == "off" or _compiled.off:
        return set()
    chosen = [i for i, job in enumerate(jobs) if _fusable(job)]
    if mode == "auto" and sum(jobs[i].numel for i in chosen) < COMPILE_MIN_ELEMENTS:
        return set()
    firsts = {_signature(jobs[i]): i for i in reversed(chosen)}
    trusted = {s for s, i in firsts.items() if _workers().submit(_trusted, jobs[i]).result()}
    done = [i for i in chosen if _signature(jobs[i]) in trusted]
    function = _compiled.function

    def span(job: _Job, start: int, stop: int, scratch: _Scratch) -> None:
        _call_fused(function, job, start, stop)  # type: ignore[arg-type]

    try:
        _cpu_run([jobs[i] for i in done], False, span, SPAN_ELEMENTS)
    except Exception as error:  # these jobs are redone by the eager chunks, which overwrite them
        _compiled.give_up(f"{type(error).__name__} during a merge")
        return set()
    return set(done)


def _run(jobs: Sequence[_Job], check_finite: bool) -> None:
    if not jobs:
        return
    if jobs[0].base.device.type == "cpu":
        compiled = _run_compiled(jobs)
        eager = [i for i in range(len(jobs)) if i not in compiled]
        totals = dict(zip(eager, _cpu_run([jobs[i] for i in eager], check_finite), strict=True))
        if check_finite:
            for index, job in enumerate(jobs):
                # A finite sum proves every value finite; an infinite one may only be an overflow of
                # the sum itself (and compiled jobs keep no sum), so the exact check decides.
                if not math.isfinite(totals.get(index, math.inf)) and not bool(torch.isfinite(job.out).all()):
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

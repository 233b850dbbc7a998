"""Merge methods over task vectors, in a small registry: θ = θ_base + Σ λ_i · prepare(τ)_i.

- ``task_arithmetic``: θ_base + Σ λ_i τ_i (one λ for all vectors, or one per vector).
- ``ties``: trim each τ_i to its top-``density`` magnitudes, elect a sign per coordinate (on the
  unweighted trimmed vectors), average the λ-weighted values that agree (peft's ``prune`` /
  ``calculate_majority_sign_mask`` / ``disjoint_merge``).
- ``dare``: drop each coordinate of τ_i with probability 1 − ``density``, rescale the rest by
  1/``density`` (peft's ``random_pruning``), then task arithmetic. Seeded per tensor, so the
  result does not depend on the order tensors are processed in (in memory or streamed).
- ``inject``: task arithmetic onto any model with matching keys (the study's θ_FFT + λ·τ_worst);
  unlike the others it does not expect the vectors to come from this base.

Every argument is validated before any tensor is read.
"""

from __future__ import annotations

import hashlib
import math
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from fairmerge.errors import ConfigError, VectorError
from fairmerge.vectors.checkpoint_io import (
    DEFAULT_MAX_SHARD_BYTES,
    CheckpointReader,
    TensorSpec,
    state_dict_fingerprint,
)
from fairmerge.vectors.kernels import NonFiniteResult, Term, weighted_merge
from fairmerge.vectors.sources import StateDictLike, state_dict_of
from fairmerge.vectors.streaming import check_vectors_against, stream_merge
from fairmerge.vectors.task_vector import TaskVector


@dataclass(frozen=True)
class MergeOptions:
    """Per-merge settings shared by every tensor: sparsification density and the DARE seed."""

    density: float | None = None
    seed: int = 0


Prepare = Callable[[str, torch.Tensor, Sequence[Term], MergeOptions], list[torch.Tensor]]
"""(key, base tensor, one term per vector, options) → one effective fp32 delta per vector."""


@dataclass(frozen=True)
class MergeMethod:
    """A registered merge method: θ = θ_base + Σ λ_i · prepare(τ)_i.

    ``prepare`` rewrites each tensor's deltas independently of the coefficients (TIES trims and
    keeps the sign-agreeing share, DARE drops and rescales); ``None`` keeps the vectors as they
    are. The coefficients are then applied by the one kernel (:mod:`fairmerge.vectors.kernels`),
    so a merge written to disk and an in-place sweep point compute the same bits, and a sweep can
    prepare once and reuse the result at every λ.
    """

    name: str
    prepare: Prepare | None
    uses_density: bool
    same_base: bool
    """Whether vectors are expected to come from the model they are merged into."""
    description: str

    def terms(self, key: str, base: torch.Tensor, terms: Sequence[Term], options: MergeOptions) -> list[Term]:
        """The terms the kernel sums for one tensor: the vectors' own, or their prepared deltas."""
        if self.prepare is None:
            return list(terms)
        prepared = self.prepare(key, base, terms, options)
        return [Term(delta, term.weight) for delta, term in zip(prepared, terms, strict=True)]


METHODS: dict[str, MergeMethod] = {}


def register(method: MergeMethod) -> MergeMethod:
    """Add a merge method to the registry (names are unique)."""
    if method.name in METHODS:
        raise ValueError(f"merge method {method.name!r} is already registered")
    METHODS[method.name] = method
    return method


def _deltas_fp32(base: torch.Tensor, terms: Sequence[Term]) -> list[torch.Tensor]:
    base32 = base.float()
    return [t.tensor.float() - base32 if t.finetuned else t.tensor.float() for t in terms]


# peft is imported inside the methods that use it: importing it loads transformers (seconds and
# ~150 MB), which a plain task-arithmetic merge of a large checkpoint does not need.


def _ties(key: str, base: torch.Tensor, terms: Sequence[Term], options: MergeOptions) -> list[torch.Tensor]:
    from peft.utils.merge_utils import calculate_majority_sign_mask, prune

    assert options.density is not None
    deltas = _deltas_fp32(base, terms)
    if options.density < 1:
        deltas = [prune(d, options.density, method="magnitude") for d in deltas]
    stacked = torch.stack(deltas)
    mask = calculate_majority_sign_mask(stacked, method="total")
    # peft's disjoint_merge (Σ_i λ_i τ_i·mask_i / count) factored per vector, so the coefficients
    # apply after this λ-independent step: τ'_i = τ_i·mask_i / count.
    count = mask.sum(dim=0).clamp(min=1)
    return list((stacked * mask) / count)


def tensor_seed(seed: int, key: str) -> int:
    """A seed for one tensor, derived from the merge seed and the tensor's name."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def _dare(key: str, base: torch.Tensor, terms: Sequence[Term], options: MergeOptions) -> list[torch.Tensor]:
    from peft.utils.merge_utils import random_pruning

    assert options.density is not None
    deltas = _deltas_fp32(base, terms)
    if options.density < 1:
        # peft's random_pruning draws from the global generator: fork it so the caller's RNG
        # state is untouched, and seed it per tensor for order-independent results.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(tensor_seed(options.seed, key))
            deltas = [random_pruning(d, options.density, rescale=True) for d in deltas]
    return deltas


register(MergeMethod("task_arithmetic", None, False, True, "θ_base + Σ λ_i τ_i"))
register(
    MergeMethod("ties", _ties, True, True, "TIES: trim to top-density magnitudes, elect sign, disjoint mean")
)
register(MergeMethod("dare", _dare, True, True, "DARE: random drop with rescale (seeded), then Σ λ_i τ_i"))
register(MergeMethod("inject", None, False, False, "θ_model + Σ λ_i τ_i into any model with matching keys"))


def validate_merge_args(
    n_vectors: int,
    lambdas: float | Sequence[float],
    *,
    method: str = "task_arithmetic",
    density: float | None = None,
    seed: int = 0,
) -> tuple[MergeMethod, list[float], MergeOptions]:
    """Check method, coefficients, density and seed; return the method, one λ per vector, options."""
    if method not in METHODS:
        raise ConfigError(f"unknown merge method {method!r}; choose one of {', '.join(sorted(METHODS))}")
    chosen = METHODS[method]
    if n_vectors < 1:
        raise ConfigError("at least one task vector is needed")
    values = [lambdas] if isinstance(lambdas, int | float) else list(lambdas)
    if len(values) == 1:
        values = values * n_vectors
    if len(values) != n_vectors:
        raise ConfigError(
            f"{len(values)} lambdas for {n_vectors} vectors: give one lambda, or one per vector"
        )
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ConfigError(f"lambda must be a finite number, got {value!r}")
    if chosen.uses_density:
        if density is None:
            raise ConfigError(f"method {method!r} needs a density in (0, 1] (the share of each vector kept)")
        if not (0 < density <= 1):
            raise ConfigError(f"density must be in (0, 1], got {density!r}")
    elif density is not None:
        raise ConfigError(f"density applies to ties and dare, not to {method!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    return chosen, [float(v) for v in values], MergeOptions(density, seed)


def _key_merger(
    method: MergeMethod, options: MergeOptions, what: str
) -> Callable[[str, torch.Tensor, list[Term]], torch.Tensor]:
    def merge_key(key: str, base: torch.Tensor, terms: list[Term]) -> torch.Tensor:
        try:
            return weighted_merge(base, method.terms(key, base, terms, options), check_finite=True)
        except NonFiniteResult:
            if not bool(torch.isfinite(base).all()):
                raise VectorError(f"non-finite values (NaN or inf) in tensor {key!r} of {what}") from None
            raise VectorError(
                f"non-finite values (NaN or inf) in tensor {key!r} of a task vector, or the merge overflowed "
                f"{base.dtype}"
            ) from None
        except RuntimeError as exc:  # torch: a coefficient such as 1e40 does not fit the dtype
            if "overflow" not in str(exc):
                raise
            raise VectorError(f"tensor {key!r}: a coefficient overflows {base.dtype} ({exc})") from None

    return merge_key


def _load_vectors(vectors: Sequence[TaskVector | str | os.PathLike[str]]) -> list[TaskVector]:
    return [v if isinstance(v, TaskVector) else TaskVector.load(v, lazy=True) for v in vectors]


def _warn_other_base(vectors: Sequence[TaskVector], fingerprint: str, what: str) -> None:
    for i, vector in enumerate(vectors, start=1):
        made_from = vector.metadata.get("base_fingerprint")
        if made_from and made_from != fingerprint:
            warnings.warn(
                f"vector {i} was made from another base (fingerprint {made_from}) than {what} "
                f"({fingerprint}); "
                "use method 'inject' to add vectors to a different model on purpose",
                stacklevel=3,
            )


def merge_state_dict(
    base: StateDictLike,
    vectors: Sequence[TaskVector | str | os.PathLike[str]],
    lambdas: float | Sequence[float],
    *,
    method: str = "task_arithmetic",
    density: float | None = None,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """Merge in memory: a new state dict ``base + combine(λ, τ)`` (untouched tensors are shared)."""
    chosen, weights, options = validate_merge_args(
        len(vectors), lambdas, method=method, density=density, seed=seed
    )
    base_sd = state_dict_of(base, "base")
    loaded = _load_vectors(vectors)
    changed = check_vectors_against({k: TensorSpec.of(v) for k, v in base_sd.items()}, loaded, "the base")
    if chosen.same_base:
        _warn_other_base(loaded, state_dict_fingerprint(base_sd), "the base state dict")
    merge_key = _key_merger(chosen, options, "the base state dict")
    result = dict(base_sd)
    with torch.no_grad():
        for key in changed:
            terms = [Term(v[key], w) for v, w in zip(loaded, weights, strict=True)]
            result[key] = merge_key(key, base_sd[key].detach(), terms)
    return result


def merge_checkpoints(
    base_dir: str | os.PathLike[str],
    vectors: Sequence[TaskVector | str | os.PathLike[str]],
    lambdas: float | Sequence[float],
    out_dir: str | os.PathLike[str],
    *,
    method: str = "task_arithmetic",
    density: float | None = None,
    seed: int = 0,
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
    overwrite: bool = False,
    progress: bool = False,
) -> Path:
    """Merge into a new Hugging Face checkpoint directory, streaming tensor by tensor.

    ``vectors`` are TaskVectors (lazy ones from :meth:`TaskVector.from_checkpoints` stream
    straight from the fine-tuned checkpoints) or paths of saved vectors. The output has the
    base's config and tokenizer files and its dtype, sharded above ``max_shard_bytes``, and
    appears only when complete.
    """
    chosen, weights, options = validate_merge_args(
        len(vectors), lambdas, method=method, density=density, seed=seed
    )
    if max_shard_bytes < 1:
        raise ConfigError(f"max_shard_bytes must be positive, got {max_shard_bytes}")
    base = CheckpointReader(base_dir)
    loaded = _load_vectors(vectors)
    check_vectors_against(base.specs, loaded, f"base {base.path}")
    if chosen.same_base:
        _warn_other_base(loaded, base.fingerprint(), f"base {base.path}")
    merge_key = _key_merger(chosen, options, f"base {base.path}")
    return stream_merge(
        base,
        loaded,
        weights,
        merge_key,
        out_dir,
        max_shard_bytes=max_shard_bytes,
        overwrite=overwrite,
        progress=progress,
    )


def inject(
    target: StateDictLike | str | os.PathLike[str],
    vector: TaskVector | str | os.PathLike[str],
    lam: float,
    out_dir: str | os.PathLike[str] | None = None,
) -> object:
    """θ_target + λ·τ for any model with matching keys (e.g. θ_FFT + λ·τ_worst).

    A module is updated in place and returned; a state dict gives a new dict; a checkpoint
    directory gives a new checkpoint at ``out_dir``.
    """
    _, weights, _ = validate_merge_args(1, lam, method="inject")
    if isinstance(target, str | os.PathLike):
        if out_dir is None:
            raise ConfigError("inject into a checkpoint directory needs out_dir")
        return merge_checkpoints(target, [vector], weights, out_dir, method="inject")
    loaded = _load_vectors([vector])[0]
    if isinstance(target, Mapping | torch.nn.Module):
        return loaded.apply_to(target, weights[0])
    raise VectorError(f"cannot inject into a {type(target).__name__}")

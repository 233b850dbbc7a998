"""Write θ = base + Σ λ_i · prepare(τ)_i into one model's parameters, in place, for any λ.

A λ sweep needs one model in memory, not one per point: every point rewrites the touched tensors
from a stored copy of the base through the same kernel and method registry as ``fairmerge merge``
(:mod:`fairmerge.vectors.kernels`, :data:`fairmerge.vectors.merge.METHODS`), so a sweep point and
the checkpoint ``fairmerge merge`` writes at the same coefficients hold the same bits. No
checkpoint is written or re-read, no module is rebuilt, and the model object handed to the
evaluator is the same at every point. The same class performs injection (base = the FFT model's
weights, vectors = [τ_worst]).

What stays resident besides the model is one copy of the base plus, by mode:

- ``uniform=True`` (one λ for every vector): the one summed vector Σ prepare(τ)_i, built once by
  reading each source tensor by tensor, so memory does not grow with the number of vectors;
- per-vector coefficients, in-memory vectors: the vectors themselves (moved to the model's device);
- per-vector coefficients, lazy vectors (:meth:`TaskVector.from_checkpoints`, ``TaskVector.load(...,
  lazy=True)``, :meth:`TaskVector.from_lora_adapter` with ``lazy=True``): nothing; each point
  streams the deltas tensor by tensor (a LoRA vector forms ΔW = s·B·A per tensor as it is written);
- per-vector coefficients with ``ties`` / ``dare``: the prepared (trimmed / dropped) deltas, once.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence

import torch
from torch import Tensor

from fairmerge.errors import ConfigError, VectorError
from fairmerge.vectors.checkpoint_io import CheckpointReader, TensorSpec
from fairmerge.vectors.checks import check_specs
from fairmerge.vectors.kernels import Term, accumulation_dtype, merge_into, sum_deltas
from fairmerge.vectors.merge import MergeMethod, MergeOptions, validate_merge_args
from fairmerge.vectors.streaming import vector_term
from fairmerge.vectors.task_vector import TaskVector

VectorSource = TaskVector | Mapping[str, Tensor] | str | os.PathLike[str]
"""A task vector, a plain mapping of deltas, or the path of a saved vector file (read lazily)."""
BaseSource = Mapping[str, Tensor] | str | os.PathLike[str]
"""The base weights: a state dict, or a checkpoint directory read tensor by tensor."""

STREAM_BYTES = 256 * 1024**2
"""Streamed vectors are read and merged in groups of about this many bytes (all vectors together)."""


class InPlaceMerger:
    """Sets a model's weights to ``base + Σ λ_i · vectors[i]`` (through a registered merge method).

    Only the floating-point tensors named in the vectors are touched; everything else keeps the
    model's own values. All vectors must name the same keys. Integer / bool entries of a plain
    mapping must be zero deltas (they are dropped); weights tied in the model are written once.

    ``base`` is copied once onto the model's device and dtype (so ``restore()`` is bit-exact and
    the caller may free its mapping). ``method`` / ``density`` / ``seed`` are those of
    :func:`fairmerge.vectors.merge_checkpoints`. With ``uniform=True`` only one λ for all vectors
    can be set and only their sum is kept (see the module docstring for what each mode holds).
    Construction writes the base into the touched tensors (all coefficients 0).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        base: BaseSource,
        vectors: Sequence[VectorSource],
        *,
        method: str = "task_arithmetic",
        density: float | None = None,
        seed: int = 0,
        uniform: bool = False,
    ) -> None:
        if len(vectors) == 0:
            raise VectorError("InPlaceMerger needs at least one task vector, got none")
        chosen, _, options = validate_merge_args(len(vectors), 0.0, method=method, density=density, seed=seed)
        self.model = model
        self.method: MergeMethod = chosen
        self.uniform = uniform
        self._options: MergeOptions = options
        self._n = len(vectors)
        self._vectors = [_as_vector(v, i) for i, v in enumerate(vectors, start=1)]
        if not isinstance(base, Mapping | str | os.PathLike):
            raise VectorError(f"base must be a state dict or a checkpoint path, got {type(base).__name__}")
        self._reader = CheckpointReader(base) if isinstance(base, str | os.PathLike) else None
        base_map: Mapping[str, Tensor] = self._reader.specs if self._reader else base  # type: ignore[assignment]
        self._params = self._targets(base_map)
        self._base = self._copy_base(base)
        self._held: list[dict[str, Tensor]] | None = None  # per-vector deltas on the model's device
        self._summed: dict[str, Tensor] | None = None  # uniform mode: Σ prepared deltas
        if uniform:
            self._summed = self._sum_vectors()
            self._vectors = []  # the sum is all a uniform sweep needs: drop the sources
        elif chosen.prepare is not None:
            self._held = self._prepare_all()
        elif not any(v.is_lazy for v in self._vectors):
            self._held = [self._on_device(v) for v in self._vectors]
        self._coefficients: tuple[float, ...] = (0.0,) * self._n
        self.restore()

    @classmethod
    def from_model(
        cls, model: torch.nn.Module, vectors: Sequence[VectorSource], **options: object
    ) -> InPlaceMerger:
        """Use the model's current weights as the base (e.g. the FFT model for injection)."""
        return cls(model, model.state_dict(), vectors, **options)  # type: ignore[arg-type]

    @classmethod
    def from_checkpoints(
        cls,
        model: torch.nn.Module,
        base_dir: str | os.PathLike[str],
        finetuned_dirs: Sequence[str | os.PathLike[str]],
        **options: object,
    ) -> InPlaceMerger:
        """Vectors τ_i = θ_i − θ_base read lazily from checkpoint directories; the base from ``base_dir``."""
        vectors = [TaskVector.from_checkpoints(base_dir, d) for d in finetuned_dirs]
        return cls(model, base_dir, vectors, **options)  # type: ignore[arg-type]

    # --- set-up --------------------------------------------------------------------------------

    def _targets(self, base: Mapping[str, object]) -> dict[str, Tensor]:
        """The model tensors the vectors change (one per storage), after the one key/shape check."""
        live = dict(self.model.state_dict(keep_vars=True))  # aliases of tied weights included
        specs = {k: TensorSpec.of(v) for k, v in live.items()}
        names = [f"vector {i}" for i in range(1, self._n + 1)]
        keys = check_specs(specs, [v.specs for v in self._vectors], "the model's state dict", names)
        base_specs = {
            k: v if isinstance(v, TensorSpec) else TensorSpec.of(v)  # type: ignore[arg-type]
            for k, v in base.items()
            if k in keys
        }
        check_specs(base_specs, [{k: specs[k] for k in keys}], "the base", ["the model"])
        targets: dict[str, Tensor] = {}
        seen: set[tuple[int, int]] = set()
        for key in keys:
            param = live[key].data
            storage = (param.untyped_storage().data_ptr(), param.storage_offset())
            if storage in seen:  # tied weights: one storage, update it once
                continue
            if not param.is_contiguous():
                raise VectorError(f"model tensor {key!r} is not contiguous; cannot update it in place")
            seen.add(storage)
            targets[key] = param
        if not targets:
            raise VectorError("the vectors touch no floating-point tensor of the model")
        return targets

    def _copy_base(self, base: BaseSource) -> dict[str, Tensor]:
        specs = {k: TensorSpec.of(p) for k, p in self._params.items()}
        views = _flat_buffers(specs, {k: p.device for k, p in self._params.items()})
        with torch.no_grad():
            for key, view in views.items():
                if self._reader is not None:
                    source = self._reader.get(key)
                elif isinstance(base, Mapping):
                    source = base[key]
                view.copy_(source.detach().reshape(view.shape))
        return views

    def _terms(self, key: str, weights: Sequence[float], vectors: Sequence[TaskVector]) -> list[Term]:
        """One kernel term per vector for ``key`` (a fine-tuned tensor when it shares our base file)."""
        if self._reader is not None:
            return [vector_term(v, key, w, self._reader) for v, w in zip(vectors, weights, strict=True)]
        return [Term(v[key], w) for v, w in zip(vectors, weights, strict=True)]

    def _sum_vectors(self) -> dict[str, Tensor]:
        """Σ_i prepare(τ)_i per key in the accumulation dtype, reading one source tensor at a time.

        Plain task arithmetic folds the vectors into the sum one by one (the kernel's own left fold,
        so the bits are those of a merge that sums on the fly); ``ties`` / ``dare`` need a key's
        tensors of all vectors together.
        """
        summed: dict[str, Tensor] = {}
        with torch.no_grad():
            for key, param in self._params.items():
                base = self._base[key]
                if self.method.prepare is not None:
                    terms = self._terms(key, [1.0] * self._n, self._vectors)
                    terms = self.method.terms(key, base, terms, self._options)
                    out = torch.empty(param.shape, dtype=accumulation_dtype(param.dtype), device=param.device)
                    summed[key] = sum_deltas(base, terms, out=out)
                    continue
                first = self._terms(key, [1.0], self._vectors[:1])[0]
                if self._n == 1 and not first.finetuned:  # one vector needs no sum: keep it as it is
                    summed[key] = first.tensor.to(param.device).reshape(param.shape).contiguous()
                    continue
                out = torch.empty(param.shape, dtype=accumulation_dtype(param.dtype), device=param.device)
                sum_deltas(base, [first], out=out)
                del first
                for vector in self._vectors[1:]:
                    term = self._terms(key, [1.0], [vector])[0]
                    sum_deltas(base, [Term(out, 1.0), term], out=out)
                summed[key] = out
        return summed

    def _prepare_all(self) -> list[dict[str, Tensor]]:
        """ties / dare per-vector mode: each vector's prepared deltas, computed once."""
        held: list[dict[str, Tensor]] = [{} for _ in range(self._n)]
        with torch.no_grad():
            for key, param in self._params.items():
                terms = self._terms(key, [1.0] * self._n, self._vectors)
                for i, term in enumerate(self.method.terms(key, self._base[key], terms, self._options)):
                    held[i][key] = term.tensor.to(param.device).reshape(param.shape).contiguous()
        return held

    def _on_device(self, vector: TaskVector) -> dict[str, Tensor]:
        """An in-memory vector's tensors on the model's device (flat per dtype on an accelerator)."""
        devices = {k: p.device for k, p in self._params.items()}
        if all(d.type == "cpu" for d in devices.values()):  # no copy: the CPU kernel reads them as they are
            return {k: vector[k].detach().contiguous() for k in self._params}
        views = _flat_buffers({k: vector.specs[k] for k in self._params}, devices)
        with torch.no_grad():
            for key, view in views.items():
                view.copy_(vector[key].reshape(view.shape))
        return views

    # --- public --------------------------------------------------------------------------------

    @property
    def keys(self) -> list[str]:
        """State-dict keys this merger writes (one per storage of tied weights)."""
        return list(self._params)

    @property
    def coefficients(self) -> tuple[float, ...]:
        """The λ per vector currently written into the model (all 0 after ``restore()``)."""
        return self._coefficients

    @property
    def resident_bytes(self) -> int:
        """Bytes this merger holds besides the model: the base copy plus summed or held deltas."""
        tensors = list(self._base.values())
        tensors += list((self._summed or {}).values())
        tensors += [t for held in self._held or [] for t in held.values()]
        storages = {(t.untyped_storage().data_ptr(), t.untyped_storage().nbytes()) for t in tensors}
        return sum(nbytes for _, nbytes in storages)

    @torch.no_grad()
    def set_coefficients(self, lams: float | Sequence[float]) -> torch.nn.Module:
        """Write ``base + Σ λ_i τ_i`` (through the merge method) into the model and return the model."""
        coefficients = self._check_coefficients(lams)
        keys = list(self._params)
        if self._summed is not None:
            self._write(keys, lambda key: [Term(self._summed[key], coefficients[0])])  # type: ignore[index]
        elif self._held is not None:
            held = self._held
            self._write(keys, lambda key: [Term(h[key], w) for h, w in zip(held, coefficients, strict=True)])
        else:  # lazy sources: stream them, a group of tensors at a time
            active = [(v, w) for v, w in zip(self._vectors, coefficients, strict=True) if w != 0]
            vectors, weights = [v for v, _ in active], [w for _, w in active]
            for group in _groups(keys, self._params, STREAM_BYTES // max(1, len(vectors))):
                self._write(group, lambda key: self._terms(key, weights, vectors))
        self._coefficients = coefficients
        return self.model

    @torch.no_grad()
    def restore(self) -> torch.nn.Module:
        """Reset every touched tensor to the base, bit-exactly; return the model."""
        self._write(list(self._params), lambda key: [])
        self._coefficients = (0.0,) * self._n
        return self.model

    def _write(self, keys: Sequence[str], terms_of: Callable[[str], list[Term]]) -> None:
        merge_into(
            [self._params[k] for k in keys],
            [self._base[k] for k in keys],
            [terms_of(k) for k in keys],
        )

    def _check_coefficients(self, lams: float | Sequence[float]) -> tuple[float, ...]:
        if isinstance(lams, int | float):
            values = (float(lams),) * self._n
        else:
            values = tuple(float(x) for x in lams)
            if len(values) != self._n:
                raise ConfigError(f"got {len(values)} coefficients for {self._n} vectors")
        if not all(math.isfinite(x) for x in values):
            raise ConfigError(f"coefficients must be finite, got {values}")
        if self.uniform and len(set(values)) > 1:
            raise ConfigError(
                "this merger was built with uniform=True and holds only the summed vector: "
                f"it cannot set one coefficient per vector ({values})"
            )
        return values


def _as_vector(source: VectorSource, index: int) -> TaskVector:
    if isinstance(source, TaskVector):
        return source
    if isinstance(source, str | os.PathLike):
        return TaskVector.load(source, lazy=True)
    if not isinstance(source, Mapping):
        raise VectorError(f"vector {index} is a {type(source).__name__}, not a task vector or a mapping")
    deltas: dict[str, Tensor] = {}
    for key, tensor in source.items():
        if isinstance(tensor, Tensor) and not tensor.is_floating_point():
            if bool(torch.count_nonzero(tensor)):
                raise VectorError(f"vector {index} holds a non-zero delta for non-float tensor {key!r}")
            continue  # a zero delta of an integer buffer (θ_ft − θ_base of a state dict): nothing to add
        deltas[key] = tensor
    return TaskVector(deltas)


def _flat_buffers(specs: Mapping[str, TensorSpec], devices: Mapping[str, torch.device]) -> dict[str, Tensor]:
    """Views into one new flat buffer per (device, dtype), laid out in key order (fused kernels)."""
    groups: dict[tuple[torch.device, torch.dtype], list[str]] = {}
    for key, spec in specs.items():
        groups.setdefault((devices[key], spec.dtype), []).append(key)
    views: dict[str, Tensor] = {}
    for (device, dtype), keys in groups.items():
        flat = torch.empty(sum(specs[k].numel for k in keys), dtype=dtype, device=device)
        for key, part in zip(keys, flat.split([specs[k].numel for k in keys]), strict=True):
            views[key] = part.view(specs[key].shape)
    return views


def _groups(keys: Sequence[str], params: Mapping[str, Tensor], budget: int) -> Iterator[list[str]]:
    """Consecutive keys in groups of about ``budget`` bytes of weights (bounds what streaming holds)."""
    group: list[str] = []
    size = 0
    for key in keys:
        group.append(key)
        size += params[key].numel() * params[key].element_size()
        if size >= budget:
            yield group
            group, size = [], 0
    if group:
        yield group

"""TaskVector: τ = θ_ft − θ_base, a mapping of parameter name → delta with algebra that reads like math.

``tau_a + tau_b``, ``tau_a - tau_b``, ``-tau``, ``0.3 * tau``, ``sum([...])`` and the analogy
``tau_c + (tau_b - tau_a)`` all return new vectors; ``tau.apply_to(model, scale)`` adds
``scale · tau`` to a model in place (or returns a new state dict). Integer and bool buffers are
never part of a vector.

This module is the algebra. Where deltas come from (state dicts, checkpoint diffs read lazily one
tensor at a time, LoRA adapters, saved files) is :mod:`fairmerge.vectors.sources`; norms, cosines
and the Gram matrix are :mod:`fairmerge.vectors.geometry`. The class's methods of the same names
call them.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from fairmerge.errors import VectorError
from fairmerge.vectors import geometry, sources
from fairmerge.vectors.checkpoint_io import TensorSpec, is_float_dtype
from fairmerge.vectors.checks import check_finite, check_same, check_specs
from fairmerge.vectors.geometry import cosine_from_gram, gram_matrix
from fairmerge.vectors.kernels import Term, weighted_merge
from fairmerge.vectors.keys import is_head_key, tied_keys
from fairmerge.vectors.lazy import LazyTensors
from fairmerge.vectors.sources import CheckpointDiff, StateDictLike, VectorParts

__all__ = ["StateDictLike", "TaskVector", "cosine_from_gram", "gram_matrix", "is_head_key"]


def _in_fp32(fn: Callable[..., torch.Tensor], *tensors: torch.Tensor) -> torch.Tensor:
    """Apply ``fn`` with fp32 accumulation for half-precision inputs; result in the first input's dtype."""
    dtype = tensors[0].dtype
    if dtype in (torch.float32, torch.float64):
        return fn(*tensors)
    return fn(*(t.float() for t in tensors)).to(dtype)


class TaskVector(Mapping[str, torch.Tensor]):
    """A task vector: parameter name → delta tensor (``θ_ft − θ_base``), floating point only.

    Build one with :meth:`from_state_dicts`, :meth:`from_checkpoints`, :meth:`from_lora_adapter`
    or :meth:`load`; or directly from a mapping of deltas. ``metadata`` (str → str) says where the
    vector came from and is saved with it.
    """

    __slots__ = ("_source", "_specs", "_tensors", "metadata")

    def __init__(
        self, tensors: Mapping[str, torch.Tensor], *, metadata: Mapping[str, str] | None = None
    ) -> None:
        specs: dict[str, TensorSpec] = {}
        checked: dict[str, torch.Tensor] = {}
        for key, tensor in tensors.items():
            if not isinstance(tensor, torch.Tensor):
                raise VectorError(f"value of {key!r} is a {type(tensor).__name__}, expected a torch.Tensor")
            if not is_float_dtype(tensor.dtype):
                raise VectorError(
                    f"tensor {key!r} has dtype {tensor.dtype}; task vectors hold floating-point deltas"
                )
            check_finite(tensor, key, "the task vector")
            checked[key] = tensor.detach()
            specs[key] = TensorSpec.of(tensor)
        self._tensors: Mapping[str, torch.Tensor] = checked
        self._specs = specs
        self._source: CheckpointDiff | None = None
        self.metadata: dict[str, str] = dict(metadata or {})
        self.metadata.setdefault("created_by", "deltas")

    @classmethod
    def _make(
        cls,
        tensors: Mapping[str, torch.Tensor],
        specs: Mapping[str, TensorSpec],
        metadata: Mapping[str, str],
        source: CheckpointDiff | None = None,
    ) -> TaskVector:
        """Trusted constructor (values already checked or checked on access)."""
        vector = cls.__new__(cls)
        vector._tensors = tensors
        vector._specs = dict(specs)
        vector._source = source
        vector.metadata = dict(metadata)
        return vector

    @classmethod
    def _from_parts(cls, parts: VectorParts) -> TaskVector:
        return cls._make(parts.tensors, parts.specs, parts.metadata, parts.source)

    # --- Mapping -------------------------------------------------------------------------------

    def __getitem__(self, key: str) -> torch.Tensor:
        return self._tensors[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def __contains__(self, key: object) -> bool:
        return key in self._specs

    def __repr__(self) -> str:
        kind = "lazy" if self.is_lazy else "in memory"
        return (
            f"TaskVector({len(self)} tensors, {self.num_parameters:,} parameters, {kind}, "
            f"created_by={self.metadata.get('created_by', '?')!r})"
        )

    @property
    def specs(self) -> Mapping[str, TensorSpec]:
        """Shape and dtype of every delta, known without reading values."""
        return dict(self._specs)

    @property
    def is_lazy(self) -> bool:
        """True when deltas are read (and checked) from files on each access."""
        return not isinstance(self._tensors, dict)

    @property
    def source(self) -> CheckpointDiff | None:
        """The two checkpoints a lazy vector reads, or ``None``."""
        return self._source

    @property
    def num_parameters(self) -> int:
        return sum(spec.numel for spec in self._specs.values())

    @property
    def nbytes(self) -> int:
        return sum(spec.nbytes for spec in self._specs.values())

    @property
    def dtypes(self) -> list[torch.dtype]:
        return sorted({spec.dtype for spec in self._specs.values()}, key=str)

    def materialize(self) -> TaskVector:
        """An in-memory copy (reads every delta once); in-memory vectors return themselves."""
        if not self.is_lazy:
            return self
        return TaskVector._make({k: self[k] for k in self._specs}, self._specs, self.metadata)

    def without_head(self) -> TaskVector:
        """The same vector without the classification head's deltas."""
        keys = [k for k in self._specs if not is_head_key(k)]
        tensors = LazyTensors(keys, self.__getitem__) if self.is_lazy else {k: self[k] for k in keys}
        return TaskVector._make(
            tensors,
            {k: self._specs[k] for k in keys},
            {**self.metadata, "include_head": "false"},
            self._source,
        )

    # --- constructors (:mod:`fairmerge.vectors.sources`) ---------------------------------------

    @classmethod
    def from_state_dicts(
        cls,
        base: StateDictLike,
        finetuned: StateDictLike,
        *,
        include_head: bool = True,
        dtype: torch.dtype | None = None,
    ) -> TaskVector:
        """τ = finetuned − base from two in-memory models or state dicts (strict key/shape/dtype checks).

        Deltas are computed in fp32 and stored in the base's dtype (or ``dtype``). Integer and
        bool buffers are left out; a weight tied to an earlier one (shared storage) is held once.
        """
        return cls._from_parts(
            sources.from_state_dicts(base, finetuned, include_head=include_head, dtype=dtype)
        )

    @classmethod
    def from_checkpoints(
        cls,
        base_dir: str | os.PathLike[str],
        finetuned_dir: str | os.PathLike[str],
        *,
        include_head: bool = True,
        dtype: torch.dtype | None = None,
    ) -> TaskVector:
        """τ = finetuned − base from two Hugging Face checkpoint directories, read lazily per tensor.

        Keys, shapes and dtypes are checked from the file headers before any value is read;
        values are checked for NaN/inf as each delta is read. Works with single or sharded
        safetensors and ``pytorch_model.bin`` checkpoints.
        """
        parts = sources.from_checkpoints(base_dir, finetuned_dir, include_head=include_head, dtype=dtype)
        return cls._from_parts(parts)

    @classmethod
    def from_lora_adapter(
        cls,
        adapter_dir: str | os.PathLike[str],
        base_dir: str | os.PathLike[str],
        *,
        include_head: bool = True,
        dtype: torch.dtype | None = None,
        lazy: bool = False,
    ) -> TaskVector:
        """τ of a peft LoRA adapter: exact ``scaling · B @ A`` per adapted weight, mapped to base names.

        Weights the adapter saves in full (``modules_to_save``, e.g. the classifier head, and
        trained biases) become deltas against the base checkpoint in ``base_dir``. ``lazy=True``
        keeps only the low-rank factors and forms each ΔW when it is read (a sweep over many
        adapters then holds no dense delta).
        """
        parts = sources.from_lora_adapter(
            adapter_dir, base_dir, include_head=include_head, dtype=dtype, lazy=lazy
        )
        return cls._from_parts(parts)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the vector as one safetensors file with metadata, atomically, one tensor at a time."""
        return sources.save(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, lazy: bool = False) -> TaskVector:
        """Read a vector saved by :meth:`save` (or any safetensors file of float deltas).

        ``lazy=True`` reads each delta from disk when it is used (for vectors larger than memory).
        """
        return cls._from_parts(sources.load(path, lazy=lazy))

    # --- algebra -------------------------------------------------------------------------------

    def _check_same(self, other: TaskVector, op: str) -> None:
        check_same(self._specs, other._specs, op)

    def _combine(
        self, others: Sequence[TaskVector], fn: Callable[..., torch.Tensor], description: str
    ) -> TaskVector:
        operands = (self, *others)

        def compute(key: str) -> torch.Tensor:
            return _in_fp32(fn, *(v[key] for v in operands))

        lazy = any(v.is_lazy for v in operands)
        keys = list(self._specs)
        tensors: Mapping[str, torch.Tensor] = (
            LazyTensors(keys, compute) if lazy else {k: compute(k) for k in keys}
        )
        metadata: dict[str, str] = {"created_by": sources.describe(description)}
        fingerprints = {v.metadata.get("base_fingerprint") for v in operands}
        if len(fingerprints) == 1 and None not in fingerprints:
            metadata["base_fingerprint"] = str(fingerprints.pop())
            if "base" in self.metadata:
                metadata["base"] = self.metadata["base"]
        return TaskVector._make(tensors, self._specs, metadata)

    def __add__(self, other: object) -> TaskVector:
        if isinstance(other, numbers.Number) and other == 0:
            return self
        if not isinstance(other, TaskVector):
            return NotImplemented
        self._check_same(other, "+")
        return self._combine([other], torch.add, f"({self._label()}) + ({other._label()})")

    def __radd__(self, other: object) -> TaskVector:
        # ``sum([...])`` starts from the integer 0.
        if isinstance(other, numbers.Number) and other == 0:
            return self
        return NotImplemented

    def __sub__(self, other: object) -> TaskVector:
        if not isinstance(other, TaskVector):
            return NotImplemented
        self._check_same(other, "-")
        return self._combine([other], torch.sub, f"({self._label()}) - ({other._label()})")

    def __neg__(self) -> TaskVector:
        return self._combine([], torch.neg, f"-({self._label()})")

    def __mul__(self, scale: object) -> TaskVector:
        if isinstance(scale, bool) or not isinstance(scale, numbers.Real):
            return NotImplemented
        factor = float(scale)
        if not math.isfinite(factor):
            raise VectorError(f"cannot scale a task vector by {scale!r}")
        return self._combine([], lambda t: t * factor, f"{factor:g} * ({self._label()})")

    __rmul__ = __mul__

    def __truediv__(self, scale: object) -> TaskVector:
        if isinstance(scale, bool) or not isinstance(scale, numbers.Real):
            return NotImplemented
        if float(scale) == 0:
            raise VectorError("cannot divide a task vector by 0")
        return self * (1.0 / float(scale))

    def _label(self) -> str:
        return self.metadata.get("name") or self.metadata.get("created_by", "τ")

    def __eq__(self, other: object) -> bool:
        """Exact equality: same keys, shapes, dtypes and bit-identical values."""
        if not isinstance(other, TaskVector):
            return NotImplemented
        return self._specs == other._specs and all(torch.equal(self[k], other[k]) for k in self._specs)

    __hash__ = None  # type: ignore[assignment]

    def allclose(self, other: TaskVector, *, rtol: float = 1e-5, atol: float = 1e-8) -> bool:
        """Same keys and shapes, values equal within tolerance (compared in fp32)."""
        if self._specs.keys() != other._specs.keys():
            return False
        return all(
            self._specs[k].shape == other._specs[k].shape
            and torch.allclose(self[k].float(), other[k].float(), rtol=rtol, atol=atol)
            for k in self._specs
        )

    # --- applying ------------------------------------------------------------------------------

    def apply_to(self, target: StateDictLike, scale: float = 1.0) -> Any:
        """Add ``scale · τ`` to a model (in place, returned) or to a state dict (a new dict returned).

        The target must hold every key of the vector with the same shape; keys the vector does
        not hold (integer buffers, an excluded head) are left as they are. Computed in fp32 for
        half-precision weights, stored in the target's dtype. Weights tied in the target are
        updated once.
        """
        scale = float(scale)
        if not math.isfinite(scale):
            raise VectorError(f"scale must be a finite number, got {scale!r}")
        if isinstance(target, nn.Module):
            self._apply_to_module(target, scale)
            return target
        if not isinstance(target, Mapping):
            raise VectorError(f"apply_to needs a torch module or a state dict, got {type(target).__name__}")
        self._check_target({k: TensorSpec.of(v) for k, v in target.items()}, "the state dict")
        result = dict(target)
        with torch.no_grad():
            for key in self._specs:
                result[key] = weighted_merge(target[key], [Term(self[key], scale)])
        return result

    def _check_target(self, specs: Mapping[str, TensorSpec], what: str) -> None:
        check_specs(specs, [self._specs], what, ["the task vector"])

    def _apply_to_module(self, model: nn.Module, scale: float) -> None:
        state = model.state_dict(keep_vars=True)
        self._check_target({k: TensorSpec.of(v) for k, v in state.items()}, "the model")
        aliases = tied_keys({k: state[k] for k in state if k in self._specs})
        with torch.no_grad():
            for key in self._specs:
                if key in aliases:
                    if not torch.equal(self[key], self[aliases[key]]):
                        raise VectorError(
                            f"keys {aliases[key]!r} and {key!r} are tied in the model but the task vector "
                            "holds different deltas for them"
                        )
                    continue
                param = state[key]
                weighted_merge(param.data, [Term(self[key], scale)], out=param.data)

    # --- geometry (:mod:`fairmerge.vectors.geometry`) -------------------------------------------

    def per_tensor_norms(self) -> dict[str, float]:
        """L2 norm of each delta (computed in fp32)."""
        return geometry.per_tensor_norms(self)

    def per_layer_norms(self) -> dict[str, float]:
        """L2 norm per layer (``...layer.3``), other parameters grouped by their module."""
        return geometry.per_layer_norms(self)

    def norm(self) -> float:
        """Global L2 norm over all deltas."""
        return geometry.norm(self)

    def dot(self, other: TaskVector) -> float:
        """Inner product ⟨self, other⟩ over all deltas (fp32 per tensor, summed in fp64)."""
        return geometry.dot(self, other)

    def cosine_similarity(self, other: TaskVector) -> float:
        """⟨a, b⟩ / (‖a‖‖b‖); NaN with a warning when either vector is zero."""
        return geometry.cosine_similarity(self, other)

    def sign_conflict_rate(self, other: TaskVector) -> float:
        """Share of coordinates, among those non-zero in both vectors, whose signs disagree (NaN if none)."""
        return geometry.sign_conflict_rate(self, other)

    def summary(self, kind: Literal["layer", "tensor"] = "layer") -> dict[str, Any]:
        """Size and norms, for ``fairmerge inspect`` and reports."""
        return geometry.summary(self, kind)

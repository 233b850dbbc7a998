"""TaskVector: τ = θ_ft − θ_base, a mapping of parameter name → delta with algebra that reads like math.

``tau_a + tau_b``, ``tau_a - tau_b``, ``-tau``, ``0.3 * tau``, ``sum([...])`` and the analogy
``tau_c + (tau_b - tau_a)`` all return new vectors; ``tau.apply_to(model, scale)`` adds
``scale · tau`` to a model in place (or returns a new state dict). Vectors made from checkpoint
directories or loaded lazily read one tensor at a time, so they work for models that do not fit
in memory. Integer and bool buffers are never part of a vector.
"""

from __future__ import annotations

import math
import numbers
import os
import re
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from fairmerge.errors import VectorError
from fairmerge.vectors.checkpoint_io import (
    CheckpointReader,
    SafetensorsFile,
    TensorSpec,
    is_float_dtype,
    state_dict_fingerprint,
    write_safetensors_file,
)
from fairmerge.vectors.checks import check_specs
from fairmerge.vectors.kernels import Term, weighted_merge

FORMAT = "fairmerge.task_vector/1"
HEAD_PREFIXES = ("classifier.", "score.", "pre_classifier.")
"""Sequence-classification heads: BERT/RoBERTa/DistilBERT ``classifier``, decoder ``score``."""

_LAYER = re.compile(r"^(.*?\.\d+)\.")
_MAX_DESCRIPTION = 400

StateDictLike = Mapping[str, torch.Tensor] | nn.Module


def is_head_key(key: str) -> bool:
    """Whether a parameter belongs to the classification head (``classifier.*``, ``score.*``, ...)."""
    return any(key.startswith(p) or f".{p}" in key for p in HEAD_PREFIXES)


def layer_of(key: str) -> str:
    """Group a parameter name into its layer: ``bert.encoder.layer.3.x.weight`` → ``bert.encoder.layer.3``."""
    match = _LAYER.match(key)
    if match:
        return match.group(1)
    return key.rsplit(".", 1)[0] if "." in key else key


def _short(text: str) -> str:
    return text if len(text) <= _MAX_DESCRIPTION else text[: _MAX_DESCRIPTION - 3] + "..."


def _in_fp32(fn: Callable[..., torch.Tensor], *tensors: torch.Tensor) -> torch.Tensor:
    """Apply ``fn`` with fp32 accumulation for half-precision inputs; result in the first input's dtype."""
    dtype = tensors[0].dtype
    if dtype in (torch.float32, torch.float64):
        return fn(*tensors)
    return fn(*(t.float() for t in tensors)).to(dtype)


def _state_dict(obj: StateDictLike, what: str) -> dict[str, torch.Tensor]:
    if isinstance(obj, nn.Module):
        return obj.state_dict()
    if isinstance(obj, Mapping):
        return dict(obj)
    raise VectorError(f"{what} must be a torch module or a state dict, got {type(obj).__name__}")


def _aliases(state_dict: Mapping[str, torch.Tensor]) -> dict[str, str]:
    """Keys whose tensor shares storage with an earlier key (tied weights) → that earlier key."""
    seen: dict[tuple[Any, ...], str] = {}
    aliases: dict[str, str] = {}
    for key, tensor in state_dict.items():
        if tensor.device.type == "meta":
            continue
        ident = (
            tensor.device,
            tensor.untyped_storage().data_ptr(),
            tensor.storage_offset(),
            tuple(tensor.shape),
            tuple(tensor.stride()),
        )
        if ident in seen:
            aliases[key] = seen[ident]
        else:
            seen[ident] = key
    return aliases


def _check_finite(tensor: torch.Tensor, key: str, where: str) -> None:
    if not bool(torch.isfinite(tensor).all()):
        raise VectorError(f"non-finite values (NaN or inf) in tensor {key!r} of {where}")


class _LazyTensors(Mapping[str, torch.Tensor]):
    """A mapping whose values are computed on access (one tensor at a time)."""

    def __init__(self, keys: Sequence[str], load: Callable[[str], torch.Tensor]) -> None:
        self._keys = list(keys)
        self._key_set = set(self._keys)
        self._load = load

    def __getitem__(self, key: str) -> torch.Tensor:
        if key not in self._key_set:
            raise KeyError(key)
        return self._load(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


@dataclass(frozen=True)
class CheckpointDiff:
    """Where a lazy vector's deltas come from: ``finetuned − base`` read from two checkpoints."""

    base: CheckpointReader
    finetuned: CheckpointReader
    dtype: torch.dtype | None
    verified: set[str] = field(default_factory=set, compare=False)
    """Keys whose delta was found finite (checkpoint files do not change while they are read)."""

    def delta(self, key: str) -> torch.Tensor:
        base = self.base.get(key)
        ft = self.finetuned.get(key)
        delta = torch.sub(ft.float(), base.float()) if base.dtype != torch.float64 else ft - base
        if key not in self.verified:  # a NaN or inf in either checkpoint makes the delta non-finite
            if not bool(torch.isfinite(delta).all()):
                _check_finite(base, key, f"base checkpoint {self.base.path}")
                _check_finite(ft, key, f"fine-tuned checkpoint {self.finetuned.path}")
                where = self.finetuned.path
                raise VectorError(f"tensor {key!r}: fine-tuned − base overflows (inf) in {where}")
            self.verified.add(key)
        return delta.to(self.dtype or base.dtype)


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
            _check_finite(tensor, key, "the task vector")
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
        tensors = _LazyTensors(keys, self.__getitem__) if self.is_lazy else {k: self[k] for k in keys}
        return TaskVector._make(
            tensors,
            {k: self._specs[k] for k in keys},
            {**self.metadata, "include_head": "false"},
            self._source,
        )

    # --- constructors --------------------------------------------------------------------------

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
        base_sd = _state_dict(base, "base")
        ft_sd = _state_dict(finetuned, "finetuned")
        check_specs(
            {k: TensorSpec.of(v) for k, v in base_sd.items()},
            [{k: TensorSpec.of(v) for k, v in ft_sd.items()}],
            "the base state dict",
            ["the fine-tuned state dict"],
            exact=True,
        )
        aliases = _aliases(base_sd)
        keys = _vector_keys({k: TensorSpec.of(v) for k, v in base_sd.items()}, aliases, include_head)
        deltas: dict[str, torch.Tensor] = {}
        for key in keys:
            b, f = base_sd[key].detach(), ft_sd[key].detach()
            _check_finite(b, key, "the base state dict")
            _check_finite(f, key, "the fine-tuned state dict")
            delta = torch.sub(f, b) if b.dtype == torch.float64 else torch.sub(f.float(), b.float())
            deltas[key] = delta.to(dtype or b.dtype)
        metadata = {
            "created_by": "from_state_dicts",
            "base_fingerprint": state_dict_fingerprint(base_sd),
            "include_head": str(include_head).lower(),
        }
        return cls._make(deltas, {k: TensorSpec.of(v) for k, v in deltas.items()}, metadata)

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
        base = CheckpointReader(base_dir)
        ft = CheckpointReader(finetuned_dir)
        check_specs(base.specs, [ft.specs], f"base {base.path}", [f"fine-tuned {ft.path}"], exact=True)
        aliases = {k: "" for k in base.aliases}
        keys = _vector_keys(base.specs, aliases, include_head)
        source = CheckpointDiff(base, ft, dtype)
        specs = {k: TensorSpec(base.specs[k].shape, dtype or base.specs[k].dtype) for k in keys}
        metadata = {
            "created_by": _short(f"from_checkpoints(base={base.path}, finetuned={ft.path})"),
            "base": str(base.path),
            "base_fingerprint": base.fingerprint(),
            "include_head": str(include_head).lower(),
        }
        name = (base.config() or {}).get("_name_or_path")
        if name:
            metadata["base"] = str(name)
        return cls._make(_LazyTensors(keys, source.delta), specs, metadata, source)

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
        from fairmerge.vectors.lora import lora_deltas

        base = CheckpointReader(base_dir)
        factories, specs, info = lora_deltas(adapter_dir, base, dtype=dtype)
        keys = [k for k in specs if include_head or not is_head_key(k)]
        where = f"LoRA adapter {adapter_dir}"

        def delta(key: str) -> torch.Tensor:
            tensor = factories[key]()
            _check_finite(tensor, key, where)
            return tensor

        tensors: Mapping[str, torch.Tensor] = (
            _LazyTensors(keys, delta) if lazy else {k: delta(k) for k in keys}
        )
        metadata = {
            "created_by": _short(f"from_lora_adapter(adapter={adapter_dir}, base={base.path})"),
            "base": str(base.path),
            "base_fingerprint": base.fingerprint(),
            "include_head": str(include_head).lower(),
            **info,
        }
        return cls._make(tensors, {k: specs[k] for k in keys}, metadata)

    # --- persistence ---------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the vector as one safetensors file with metadata, atomically, one tensor at a time."""
        path = Path(path)
        metadata = {
            **self.metadata,
            "format": "pt",
            "fairmerge_format": FORMAT,
            "dtype": ",".join(str(d).removeprefix("torch.") for d in self.dtypes),
            "num_parameters": str(self.num_parameters),
        }
        write_safetensors_file(path, self._specs, ((k, self[k]) for k in self._specs), metadata)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, lazy: bool = False) -> TaskVector:
        """Read a vector saved by :meth:`save` (or any safetensors file of float deltas).

        ``lazy=True`` reads each delta from disk when it is used (for vectors larger than memory).
        """
        file = SafetensorsFile(Path(path))
        for key, spec in file.specs.items():
            if not is_float_dtype(spec.dtype):
                raise VectorError(
                    f"{path}: tensor {key!r} has dtype {spec.dtype}; a task vector holds float deltas"
                )
        # Keys that save() derives from the tensors are dropped; the rest describes the origin.
        derived = ("format", "fairmerge_format", "dtype", "num_parameters")
        metadata = {k: v for k, v in file.metadata.items() if k not in derived}

        def read(key: str) -> torch.Tensor:
            tensor = file.get(key)
            _check_finite(tensor, key, str(path))
            return tensor

        tensors: Mapping[str, torch.Tensor] = (
            _LazyTensors(list(file.specs), read) if lazy else {k: read(k) for k in file.specs}
        )
        return cls._make(tensors, file.specs, metadata)

    # --- algebra -------------------------------------------------------------------------------

    def _check_same(self, other: TaskVector, op: str) -> None:
        check_specs(
            self._specs, [other._specs], "the left vector", [f"the right vector of {op!r}"], exact=True
        )

    def _combine(
        self, others: Sequence[TaskVector], fn: Callable[..., torch.Tensor], description: str
    ) -> TaskVector:
        operands = (self, *others)

        def compute(key: str) -> torch.Tensor:
            return _in_fp32(fn, *(v[key] for v in operands))

        lazy = any(v.is_lazy for v in operands)
        keys = list(self._specs)
        tensors: Mapping[str, torch.Tensor] = (
            _LazyTensors(keys, compute) if lazy else {k: compute(k) for k in keys}
        )
        metadata: dict[str, str] = {"created_by": _short(description)}
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
        aliases = _aliases({k: state[k] for k in state if k in self._specs})
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

    # --- measurements --------------------------------------------------------------------------

    def per_tensor_norms(self) -> dict[str, float]:
        """L2 norm of each delta (computed in fp32)."""
        return {k: float(torch.linalg.vector_norm(self[k].float())) for k in self._specs}

    def per_layer_norms(self) -> dict[str, float]:
        """L2 norm per layer (``...layer.3``), other parameters grouped by their module."""
        squares: dict[str, float] = {}
        for key, value in self.per_tensor_norms().items():
            layer = layer_of(key)
            squares[layer] = squares.get(layer, 0.0) + value**2
        return {layer: math.sqrt(s) for layer, s in squares.items()}

    def norm(self) -> float:
        """Global L2 norm over all deltas."""
        return math.sqrt(sum(v**2 for v in self.per_tensor_norms().values()))

    def dot(self, other: TaskVector) -> float:
        """Inner product ⟨self, other⟩ over all deltas (fp32 per tensor, summed in fp64)."""
        self._check_same(other, "dot")
        return sum(
            float(torch.dot(self[k].float().reshape(-1), other[k].float().reshape(-1))) for k in self._specs
        )

    def cosine_similarity(self, other: TaskVector) -> float:
        """⟨a, b⟩ / (‖a‖‖b‖); NaN with a warning when either vector is zero."""
        self._check_same(other, "cosine_similarity")
        return cosine_from_gram(gram_matrix([self, other]))[0][1]

    def sign_conflict_rate(self, other: TaskVector) -> float:
        """Share of coordinates, among those non-zero in both vectors, whose signs disagree.

        NaN with a warning when no coordinate is non-zero in both.
        """
        self._check_same(other, "sign_conflict_rate")
        conflicts, both = 0, 0
        for key in self._specs:
            a, b = self[key], other[key]
            nonzero = (a != 0) & (b != 0)
            both += int(nonzero.sum())
            conflicts += int((nonzero & (torch.signbit(a) != torch.signbit(b))).sum())
        if both == 0:
            warnings.warn(
                "no coordinate is non-zero in both task vectors; sign conflict rate is NaN", stacklevel=2
            )
            return math.nan
        return conflicts / both

    def summary(self, kind: Literal["layer", "tensor"] = "layer") -> dict[str, Any]:
        """Size and norms, for ``fairmerge inspect`` and reports."""
        norms = self.per_layer_norms() if kind == "layer" else self.per_tensor_norms()
        return {
            "tensors": len(self),
            "parameters": self.num_parameters,
            "bytes": self.nbytes,
            "dtypes": [str(d).removeprefix("torch.") for d in self.dtypes],
            "norm": math.sqrt(sum(v**2 for v in norms.values())),
            "norms": norms,
            "metadata": dict(self.metadata),
        }


def gram_matrix(vectors: Sequence[TaskVector]) -> torch.Tensor:
    """⟨τ_i, τ_j⟩ for every pair (float64, G × G), in one pass over the vectors' tensors.

    Each delta is read once (a lazy vector re-reads its checkpoints on every access, so pairwise
    :meth:`TaskVector.dot` calls would read each one G times); peak memory is G copies of the
    largest tensor. Norms are the square roots of the diagonal, and ‖Σ_i c_i τ_i‖² = cᵀ·G·c.
    """
    if not vectors:
        return torch.zeros(0, 0, dtype=torch.float64)
    first = vectors[0]
    for other in vectors[1:]:
        first._check_same(other, "gram_matrix")
    gram = torch.zeros(len(vectors), len(vectors), dtype=torch.float64)
    for key in first:
        stacked = torch.stack([vector[key].float().reshape(-1) for vector in vectors])
        gram += (stacked @ stacked.T).double()
    return gram


def cosine_from_gram(gram: torch.Tensor) -> list[list[float]]:
    """Pairwise cosine similarities from a :func:`gram_matrix`; a zero vector's row and column are NaN."""
    norms = gram.diagonal().sqrt()
    if bool((norms == 0).any()):
        warnings.warn("cosine similarity with a zero task vector is undefined; returning NaN", stacklevel=2)
    return (gram / torch.outer(norms, norms)).tolist()  # 0 / 0 = NaN where a vector is zero


def _vector_keys(
    specs: Mapping[str, TensorSpec], aliases: Mapping[str, str], include_head: bool
) -> list[str]:
    """Keys a vector holds: floating-point, not tied to an earlier key, head only if asked."""
    return [
        k
        for k, spec in specs.items()
        if is_float_dtype(spec.dtype) and k not in aliases and (include_head or not is_head_key(k))
    ]

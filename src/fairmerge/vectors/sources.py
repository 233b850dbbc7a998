"""Where a task vector's deltas come from: two state dicts, two checkpoints, a LoRA adapter, a file.

Each constructor returns :class:`VectorParts` (tensors, their specs, metadata, and for checkpoint
diffs the two readers), from which :class:`fairmerge.vectors.TaskVector` is built. Checkpoints,
lazy adapters and lazily loaded files are read one tensor at a time, when a delta is used, and
each delta is checked for NaN/inf as it is read.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

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
from fairmerge.vectors.checks import check_finite, check_specs
from fairmerge.vectors.keys import is_head_key, tied_keys, vector_keys
from fairmerge.vectors.lazy import LazyTensors

if TYPE_CHECKING:
    from fairmerge.vectors.task_vector import TaskVector

FORMAT = "fairmerge.task_vector/1"
_DERIVED = ("format", "fairmerge_format", "dtype", "num_parameters")
"""Metadata keys :func:`save` derives from the tensors (dropped on load; the rest is the origin)."""
_MAX_DESCRIPTION = 400

StateDictLike = Mapping[str, torch.Tensor] | nn.Module


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
                check_finite(base, key, f"base checkpoint {self.base.path}")
                check_finite(ft, key, f"fine-tuned checkpoint {self.finetuned.path}")
                where = self.finetuned.path
                raise VectorError(f"tensor {key!r}: fine-tuned − base overflows (inf) in {where}")
            self.verified.add(key)
        return delta.to(self.dtype or base.dtype)


@dataclass(frozen=True)
class VectorParts:
    """What a task vector is made of; ``tensors`` is a dict, or lazy (computed per access)."""

    tensors: Mapping[str, torch.Tensor]
    specs: Mapping[str, TensorSpec]
    metadata: Mapping[str, str]
    source: CheckpointDiff | None = None


def describe(text: str) -> str:
    """A ``created_by`` description, cut to a readable length."""
    return text if len(text) <= _MAX_DESCRIPTION else text[: _MAX_DESCRIPTION - 3] + "..."


def state_dict_of(obj: StateDictLike, what: str) -> dict[str, torch.Tensor]:
    """The state dict of a module, or a mapping as a dict; anything else is a one-line VectorError."""
    if isinstance(obj, nn.Module):
        return obj.state_dict()
    if isinstance(obj, Mapping):
        return dict(obj)
    raise VectorError(f"{what} must be a torch module or a state dict, got {type(obj).__name__}")


def from_state_dicts(
    base: StateDictLike, finetuned: StateDictLike, *, include_head: bool, dtype: torch.dtype | None
) -> VectorParts:
    """τ = finetuned − base in memory, computed in fp32, stored in the base's dtype (or ``dtype``)."""
    base_sd = state_dict_of(base, "base")
    ft_sd = state_dict_of(finetuned, "finetuned")
    base_specs = {k: TensorSpec.of(v) for k, v in base_sd.items()}
    check_specs(
        base_specs,
        [{k: TensorSpec.of(v) for k, v in ft_sd.items()}],
        "the base state dict",
        ["the fine-tuned state dict"],
        exact=True,
    )
    deltas: dict[str, torch.Tensor] = {}
    for key in vector_keys(base_specs, tied_keys(base_sd), include_head):
        b, f = base_sd[key].detach(), ft_sd[key].detach()
        check_finite(b, key, "the base state dict")
        check_finite(f, key, "the fine-tuned state dict")
        delta = torch.sub(f, b) if b.dtype == torch.float64 else torch.sub(f.float(), b.float())
        deltas[key] = delta.to(dtype or b.dtype)
    metadata = {
        "created_by": "from_state_dicts",
        "base_fingerprint": state_dict_fingerprint(base_sd),
        "include_head": str(include_head).lower(),
    }
    return VectorParts(deltas, {k: TensorSpec.of(v) for k, v in deltas.items()}, metadata)


def from_checkpoints(
    base_dir: str | os.PathLike[str],
    finetuned_dir: str | os.PathLike[str],
    *,
    include_head: bool,
    dtype: torch.dtype | None,
) -> VectorParts:
    """τ = finetuned − base of two checkpoint directories, specs checked from the headers, read lazily."""
    base = CheckpointReader(base_dir)
    ft = CheckpointReader(finetuned_dir)
    check_specs(base.specs, [ft.specs], f"base {base.path}", [f"fine-tuned {ft.path}"], exact=True)
    keys = vector_keys(base.specs, dict.fromkeys(base.aliases, ""), include_head)
    source = CheckpointDiff(base, ft, dtype)
    specs = {k: TensorSpec(base.specs[k].shape, dtype or base.specs[k].dtype) for k in keys}
    metadata = {
        "created_by": describe(f"from_checkpoints(base={base.path}, finetuned={ft.path})"),
        "base": str(base.path),
        "base_fingerprint": base.fingerprint(),
        "include_head": str(include_head).lower(),
    }
    name = (base.config() or {}).get("_name_or_path")
    if name:
        metadata["base"] = str(name)
    return VectorParts(LazyTensors(keys, source.delta), specs, metadata, source)


def from_lora_adapter(
    adapter_dir: str | os.PathLike[str],
    base_dir: str | os.PathLike[str],
    *,
    include_head: bool,
    dtype: torch.dtype | None,
    lazy: bool,
) -> VectorParts:
    """τ of a peft LoRA adapter (``scaling · B @ A`` per adapted weight), formed now or per access."""
    from fairmerge.vectors.lora import lora_deltas

    base = CheckpointReader(base_dir)
    factories, specs, info = lora_deltas(adapter_dir, base, dtype=dtype)
    keys = [k for k in specs if include_head or not is_head_key(k)]
    where = f"LoRA adapter {adapter_dir}"

    def delta(key: str) -> torch.Tensor:
        tensor = factories[key]()
        check_finite(tensor, key, where)
        return tensor

    tensors: Mapping[str, torch.Tensor] = LazyTensors(keys, delta) if lazy else {k: delta(k) for k in keys}
    metadata = {
        "created_by": describe(f"from_lora_adapter(adapter={adapter_dir}, base={base.path})"),
        "base": str(base.path),
        "base_fingerprint": base.fingerprint(),
        "include_head": str(include_head).lower(),
        **info,
    }
    return VectorParts(tensors, {k: specs[k] for k in keys}, metadata)


def save(vector: TaskVector, path: str | os.PathLike[str]) -> Path:
    """Write a vector as one safetensors file with metadata, atomically, one tensor at a time."""
    path = Path(path)
    metadata = {
        **vector.metadata,
        "format": "pt",
        "fairmerge_format": FORMAT,
        "dtype": ",".join(str(d).removeprefix("torch.") for d in vector.dtypes),
        "num_parameters": str(vector.num_parameters),
    }
    specs = vector.specs
    write_safetensors_file(path, specs, ((k, vector[k]) for k in specs), metadata)
    return path


def load(path: str | os.PathLike[str], *, lazy: bool) -> VectorParts:
    """A vector saved by :func:`save` (or any safetensors file of float deltas), read now or per access."""
    file = SafetensorsFile(Path(path))
    for key, spec in file.specs.items():
        if not is_float_dtype(spec.dtype):
            raise VectorError(
                f"{path}: tensor {key!r} has dtype {spec.dtype}; a task vector holds float deltas"
            )
    metadata = {k: v for k, v in file.metadata.items() if k not in _DERIVED}

    def read(key: str) -> torch.Tensor:
        tensor = file.get(key)
        check_finite(tensor, key, str(path))
        return tensor

    tensors: Mapping[str, torch.Tensor] = (
        LazyTensors(list(file.specs), read) if lazy else {k: read(k) for k in file.specs}
    )
    return VectorParts(tensors, file.specs, metadata)

"""Write θ = base + Σ λ_i τ_i into one model's parameters, in place.

A λ sweep needs one model in memory, not one per point: every point overwrites the touched tensors
from the stored base and adds the scaled vectors. No checkpoint is written or re-read, no module is
rebuilt, and the model object handed to the evaluator is the same one at every point. The same
class performs injection (base = the FFT model's weights, vectors = [τ_worst]).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from fairmerge.errors import ConfigError, VectorError

_HALF = (torch.float16, torch.bfloat16)


class InPlaceMerger:
    """Sets a model's weights to ``base + Σ λ_i · vectors[i]`` for any coefficients, in place.

    Only the floating-point tensors named in the vectors (parameters or floating buffers of
    ``model.state_dict()``) are touched; everything else keeps the model's own values. All vectors
    must name the same keys. Keys of integer / bool model tensors are never scaled: they are
    skipped, and rejected if a vector holds a non-zero delta for them.

    ``base`` is copied once onto the model's device and dtype (so ``restore()`` is bit-exact and the
    caller may mutate or free its mapping); vectors are moved to the model's device. For fp16 /
    bf16 models the sum is accumulated in fp32 and rounded once. Construction writes the base into
    the touched tensors (all coefficients 0).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        base: Mapping[str, Tensor],
        vectors: Sequence[Mapping[str, Tensor]],
    ) -> None:
        if len(vectors) == 0:
            raise VectorError("InPlaceMerger needs at least one task vector, got none")
        self.model = model
        targets = dict(model.state_dict(keep_vars=True))  # live tensors by key, aliases included
        keys = _common_keys(vectors)
        self._params: dict[str, Tensor] = {}
        self._base: dict[str, Tensor] = {}
        self._vectors: list[dict[str, Tensor]] = [{} for _ in vectors]
        seen_storage: set[int] = set()
        for key in keys:
            if key not in targets:
                raise VectorError(f"vector key {key!r} is not a tensor of the model's state dict")
            param = targets[key]
            deltas = [vector[key] for vector in vectors]
            for i, delta in enumerate(deltas):
                if tuple(delta.shape) != tuple(param.shape):
                    raise VectorError(
                        f"vector {i} key {key!r} has shape {tuple(delta.shape)}, "
                        f"the model's tensor has {tuple(param.shape)}"
                    )
            if not param.is_floating_point():
                if any(bool(torch.count_nonzero(d)) for d in deltas):
                    raise VectorError(f"vector holds a non-zero delta for non-float model tensor {key!r}")
                continue
            if param.data_ptr() in seen_storage:  # tied weights: one storage, update it once
                continue
            seen_storage.add(param.data_ptr())
            if key not in base:
                raise VectorError(f"base has no tensor for vector key {key!r}")
            if tuple(base[key].shape) != tuple(param.shape):
                raise VectorError(
                    f"base key {key!r} has shape {tuple(base[key].shape)}, "
                    f"the model's tensor has {tuple(param.shape)}"
                )
            for i, delta in enumerate(deltas):
                if not delta.is_floating_point():
                    raise VectorError(f"vector {i} key {key!r} has non-float dtype {delta.dtype}")
                if not bool(torch.isfinite(delta).all()):
                    raise VectorError(f"vector {i} key {key!r} has non-finite values")
                self._vectors[i][key] = delta.detach().to(device=param.device)
            self._params[key] = param
            self._base[key] = base[key].detach().to(device=param.device, dtype=param.dtype, copy=True)
        if not self._params:
            raise VectorError("the vectors touch no floating-point tensor of the model")
        self._summed: dict[str, Tensor] | None = None
        self._coefficients: tuple[float, ...] = (0.0,) * len(vectors)
        self.restore()

    @classmethod
    def from_model(cls, model: torch.nn.Module, vectors: Sequence[Mapping[str, Tensor]]) -> InPlaceMerger:
        """Use the model's current weights as the base (e.g. the FFT model for injection)."""
        return cls(model, model.state_dict(), vectors)

    @property
    def keys(self) -> list[str]:
        """State-dict keys this merger writes."""
        return list(self._params)

    @property
    def num_vectors(self) -> int:
        return len(self._vectors)

    @property
    def coefficients(self) -> tuple[float, ...]:
        """The λ per vector currently written into the model (all 0 after ``restore()``)."""
        return self._coefficients

    @torch.no_grad()
    def set_coefficients(self, lams: float | Sequence[float]) -> torch.nn.Module:
        """Write ``base + Σ λ_i τ_i`` into the model and return the model.

        A single float scales every vector by the same λ; this uses the summed vector (computed once
        on first use), so a point costs one fused ``base + λ·Στ`` kernel per tensor.
        """
        coefficients = self._check_coefficients(lams)
        if len(set(coefficients)) == 1:
            lam = coefficients[0]
            summed = self._summed_vector()
            for key, param in self._params.items():
                # Type promotion computes in fp32 when the summed vector is fp32 (half models).
                torch.add(self._base[key], summed[key], alpha=lam, out=param)
        else:
            for key, param in self._params.items():
                self._write_weighted(key, param, coefficients)
        self._coefficients = coefficients
        return self.model

    @torch.no_grad()
    def restore(self) -> torch.nn.Module:
        """Reset every touched tensor to the base, bit-exactly; return the model."""
        for key, param in self._params.items():
            param.copy_(self._base[key])
        self._coefficients = (0.0,) * len(self._vectors)
        return self.model

    def _write_weighted(self, key: str, param: Tensor, coefficients: tuple[float, ...]) -> None:
        deltas = [
            (lam, vector[key]) for lam, vector in zip(coefficients, self._vectors, strict=True) if lam != 0
        ]
        if param.dtype in _HALF:
            acc = self._base[key].float()
            for lam, delta in deltas:
                acc.add_(delta.float(), alpha=lam)
            param.copy_(acc)
            return
        if not deltas:
            param.copy_(self._base[key])
            return
        first_lam, first = deltas[0]
        torch.add(self._base[key], first, alpha=first_lam, out=param)
        for lam, delta in deltas[1:]:
            param.add_(delta, alpha=lam)

    def _summed_vector(self) -> dict[str, Tensor]:
        if self._summed is None:
            self._summed = {
                key: _sum_tensors([vector[key] for vector in self._vectors], param.dtype)
                for key, param in self._params.items()
            }
        return self._summed

    def _check_coefficients(self, lams: float | Sequence[float]) -> tuple[float, ...]:
        if isinstance(lams, int | float):
            values = (float(lams),) * len(self._vectors)
        else:
            values = tuple(float(x) for x in lams)
            if len(values) != len(self._vectors):
                raise ConfigError(f"got {len(values)} coefficients for {len(self._vectors)} vectors")
        if not all(math.isfinite(x) for x in values):
            raise ConfigError(f"coefficients must be finite, got {values}")
        return values


def _sum_tensors(tensors: list[Tensor], dtype: torch.dtype) -> Tensor:
    """Σ tensors, kept in fp32 for half-precision models so the later update rounds only once."""
    acc_dtype = torch.float32 if dtype in _HALF else dtype
    if len(tensors) == 1 and tensors[0].dtype == acc_dtype:
        return tensors[0]  # one vector: no copy needed
    total = tensors[0].to(dtype=acc_dtype, copy=True)
    for tensor in tensors[1:]:
        total.add_(tensor.to(dtype=acc_dtype))
    return total


def _common_keys(vectors: Sequence[Mapping[str, Tensor]]) -> list[str]:
    keys = list(vectors[0].keys())
    reference = set(keys)
    for i, vector in enumerate(vectors[1:], start=1):
        other = set(vector.keys())
        if other != reference:
            missing = sorted(reference - other)
            extra = sorted(other - reference)
            detail = f"missing {missing[0]!r}" if missing else f"extra key {extra[0]!r}"
            raise VectorError(f"vector {i} does not have vector 0's keys: {detail}")
    return keys

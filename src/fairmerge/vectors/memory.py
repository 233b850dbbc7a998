"""Peak memory of a sweep plan, estimated from a model's config before anything is loaded.

The estimate is the parameter count (from the config, by building the model on the ``meta``
device: no weights are allocated) times the bytes per value, times the number of resident copies
the plan holds, which follows from how :class:`fairmerge.vectors.InPlaceMerger` works:

- the model itself and the merger's copy of the base (one each);
- ``uniform``: one summed vector (fp32 for half-precision models unless a single plain vector is
  summed, which is kept in its own dtype), built one source tensor at a time;
- ``per_vector``: every vector in memory (prepared ``ties`` / ``dare`` deltas in fp32);
- ``streamed``: lazy vectors read from disk per point, a group of tensors at a time;
- ``lora``: lazy LoRA vectors, only their low-rank factors.

Activations of the evaluation forward passes and the framework's own footprint are not included;
``extra`` adds whatever else the caller keeps (e.g. the study's FFT state) in model copies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from fairmerge.errors import ConfigError, ModelError
from fairmerge.vectors import kernels
from fairmerge.vectors.inplace import STREAM_BYTES

Mode = Literal["uniform", "per_vector", "streamed", "lora"]
MODES = ("uniform", "per_vector", "streamed", "lora")
_GB = 1024**3


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes by item, on the device the model lives on, and the host total."""

    parameters: int
    dtype: torch.dtype
    device: str
    items: dict[str, int] = field(default_factory=dict)

    @property
    def device_bytes(self) -> int:
        """Peak bytes on the accelerator (0 when the model is on the CPU)."""
        return 0 if self.device == "cpu" else self.total_bytes

    @property
    def host_bytes(self) -> int:
        """Peak bytes of host memory the plan holds (the model's copies when it is on the CPU)."""
        if self.device == "cpu":
            return self.total_bytes
        return sum(v for k, v in self.items.items() if k.startswith("host:"))

    @property
    def total_bytes(self) -> int:
        return sum(v for k, v in self.items.items() if not k.startswith("host:"))

    def fits(self, device_gb: float) -> bool:
        return self.device_bytes <= device_gb * _GB

    def describe(self) -> str:
        """One line per item, then the totals (what ``fairmerge run --dry-run`` prints)."""
        dtype = str(self.dtype).removeprefix("torch.")
        lines = [f"memory estimate: {self.parameters / 1e9:.2f}B parameters, {dtype}, model on {self.device}"]
        lines += [f"  {name}: {nbytes / _GB:.2f} GiB" for name, nbytes in self.items.items()]
        if self.device != "cpu":
            lines.append(f"  peak device memory: {self.device_bytes / _GB:.2f} GiB (+ activations)")
        lines.append(f"  peak host memory: {self.host_bytes / _GB:.2f} GiB (+ the Python/torch runtime)")
        return "\n".join(lines)


def _meta_model(config: Any) -> torch.nn.Module:
    """The classifier of ``config`` (sequence or image) on the meta device: shapes without memory."""
    from transformers import AutoModelForImageClassification, AutoModelForSequenceClassification

    from fairmerge.models import is_image_config

    auto = AutoModelForImageClassification if is_image_config(config) else AutoModelForSequenceClassification
    try:
        with torch.device("meta"):
            # a config naming its own code (``auto_map``) must never run it: fairmerge reads weights only
            return auto.from_config(config, trust_remote_code=False)
    except ValueError as error:  # transformers' refusal: custom code, or an unknown model type
        model_type = getattr(config, "model_type", None) or "?"
        if getattr(config, "auto_map", None):
            raise ModelError(
                f"config of model type {model_type!r} has an auto_map naming its own code; fairmerge "
                "never runs a checkpoint's code (trust_remote_code=False)"
            ) from error
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelError(f"cannot build a classifier of model type {model_type!r}: {reason}") from error


def count_parameters(config: Any) -> tuple[int, int]:
    """(parameters, elements of the largest tensor) of the config's sequence classifier.

    Tied weights count once (they are one tensor in memory).
    """
    params = list(_meta_model(config).parameters())  # parameters() yields a tied tensor once
    return sum(p.numel() for p in params), max(p.numel() for p in params)


def lora_factor_parameters(config: Any, rank: int, targets: Sequence[str] | None = None) -> int:
    """Parameters of rank-``rank`` LoRA factors on the linear layers named by ``targets`` (all if None)."""
    model = _meta_model(config)
    total = 0
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and (targets is None or name.split(".")[-1] in targets):
            total += rank * (module.in_features + module.out_features)
    return total


def estimate_sweep_memory(
    config: Any,
    *,
    dtype: torch.dtype = torch.float32,
    n_vectors: int,
    mode: Mode = "uniform",
    device: str = "cpu",
    method: str = "task_arithmetic",
    lora_rank: int = 8,
    lora_targets: Sequence[str] | None = None,
    extra: Mapping[str, float] | None = None,
) -> MemoryEstimate:
    """Peak memory of a sweep with :class:`InPlaceMerger` over ``n_vectors`` vectors, from the config."""
    if mode not in MODES:
        raise ConfigError(f"unknown sweep memory mode {mode!r}; choose one of {', '.join(MODES)}")
    if n_vectors < 1:
        raise ConfigError("a sweep needs at least one vector")
    parameters, largest = count_parameters(config)
    size = parameters * dtype.itemsize
    acc_size = parameters * kernels.accumulation_dtype(dtype).itemsize
    items = {"model": size, "base copy": size}
    plain = method in ("task_arithmetic", "inject")
    if mode == "uniform":
        items["summed vector"] = size if (n_vectors == 1 and plain) else acc_size
    elif mode == "per_vector":
        items[f"{n_vectors} vectors in memory"] = n_vectors * (size if plain else acc_size)
    elif mode == "lora":
        factors = lora_factor_parameters(config, lora_rank, lora_targets)
        items[f"{n_vectors} LoRA factor sets"] = n_vectors * factors * 4
    if device != "cpu":
        # the kernel's scratch for one bucket (an fp32 accumulator and one operand at most)
        items["kernel scratch"] = min(parameters, kernels.BUCKET_ELEMENTS) * 4 * 2
    one_each = largest * dtype.itemsize * n_vectors  # a key's tensor from every source
    if mode in ("streamed", "lora"):  # a group of tensors of every vector, while a point is written
        in_flight = min(max(STREAM_BYTES, one_each), n_vectors * size)
    elif mode == "uniform" and plain:  # the sum folds in one source tensor at a time
        in_flight = largest * dtype.itemsize
    else:  # ties / dare prepare a key's tensors of all vectors together
        in_flight = one_each
    items["host: tensors in flight" if device != "cpu" else "tensors in flight"] = in_flight
    for name, copies in (extra or {}).items():
        items[name] = int(copies * size)
    return MemoryEstimate(parameters, dtype, device, items)

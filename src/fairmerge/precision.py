"""Numeric precision of forward passes: ``fp32``, ``bf16`` (autocast) or ``auto``.

``fp32`` is the default everywhere: scores are then the same on every machine. ``auto`` resolves
per device to ``bf16`` where the hardware has bf16 units and bf16 was measured to be faster:

- CPU: ``avx512_bf16`` or AMX. Measured on a 2-core AMD EPYC with avx512_bf16 and no AMX,
  MiniLM scoring on HateXplain ran 2.7x faster than fp32 when idle, 1.1-1.9x under load (README,
  Benchmarks); the issue that asked for this measured 3.1x on a CPU with AMX. Elsewhere ``auto``
  is ``fp32``.
- CUDA: ``bf16`` when ``torch.cuda.is_bf16_supported()``, else ``fp32``.

``bf16`` asked for explicitly is refused with a ConfigError where the device has no bf16 support
(on such a CPU it would be emulated and slow). The *resolved* value is what runs record in
their provenance and score-cache keys, so fp32 and bf16 numbers are never silently mixed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Literal, get_args

import torch

from fairmerge.errors import ConfigError

Precision = Literal["fp32", "bf16", "auto"]
ResolvedPrecision = Literal["fp32", "bf16"]
PRECISIONS: tuple[str, ...] = get_args(Precision)


def _cpu_flag(name: str) -> bool:
    """A torch CPU capability probe (``torch.cpu._is_*_supported``), False where torch lacks it."""
    probe = getattr(torch.cpu, name, None)
    return bool(probe()) if callable(probe) else False


def cpu_has_bf16_units() -> bool:
    """The CPU executes bf16 natively (avx512_bf16 or AMX)."""
    return _cpu_flag("_is_avx512_bf16_supported") or _cpu_flag("_is_amx_tile_supported")


def cpu_has_amx() -> bool:
    """The CPU has AMX tiles (Intel Sapphire Rapids and later), where bf16 matmuls pay off."""
    return _cpu_flag("_is_amx_tile_supported")


def resolve_precision(precision: str, device: torch.device | str) -> ResolvedPrecision:
    """What ``precision`` becomes on ``device`` (see the module docstring for the rule)."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    kind = torch.device(device).type
    if precision == "fp32":
        return "fp32"
    if kind == "cuda":
        supported = torch.cuda.is_bf16_supported()
        if precision == "bf16" and not supported:
            raise ConfigError("precision bf16 was requested but this CUDA device has no bf16 support")
        return "bf16" if supported else "fp32"
    if kind != "cpu":
        if precision == "bf16":
            raise ConfigError(f"precision bf16 is supported on cpu and cuda only, not {kind}")
        return "fp32"
    if precision == "bf16":
        if not cpu_has_bf16_units():
            raise ConfigError(
                "precision bf16 was requested but this CPU has no bf16 units (avx512_bf16/AMX): "
                "use fp32 or auto"
            )
        return "bf16"
    return "bf16" if cpu_has_bf16_units() else "fp32"


@contextlib.contextmanager
def autocast(precision: ResolvedPrecision, device: torch.device) -> Iterator[None]:
    """``torch.autocast(device.type, dtype=bfloat16)`` when ``precision`` is bf16, else nothing."""
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
        yield


def default_device() -> torch.device:
    """Where models are placed when no device is named (as :func:`fairmerge.models.pick_device`)."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def precision_provenance(precision: str, device: torch.device | str | None = None) -> dict[str, object]:
    """What ``precision`` resolved to on ``device`` (default device if None), and why: for provenance."""
    device = torch.device(device) if device is not None else default_device()
    return {
        "requested": precision,
        "resolved": resolve_precision(precision, device),
        "device": device.type,
        "cpu_avx512_bf16": _cpu_flag("_is_avx512_bf16_supported"),
        "cpu_amx": cpu_has_amx(),
    }

"""Numeric precision of forward passes: ``fp32``, ``bf16`` (autocast) or ``auto``.

``auto`` resolves per device:

- CUDA: ``bf16`` when ``torch.cuda.is_bf16_supported()`` (what scoring has always done there),
  else ``fp32``.
- CPU: ``bf16`` only where the CPU has AMX (``amx_bf16``/``amx_tile``). A CPU with
  ``avx512_bf16`` but no AMX stays ``fp32``: measured on a 2-core AMD EPYC with avx512_bf16,
  MiniLM scoring under bf16 autocast was no faster than fp32 (see the README's Benchmarks), so
  bf16 there would only cost agreement.

``bf16`` asked for explicitly runs wherever torch's autocast accepts it; on a CPU without bf16
units (neither flag) it is refused with a ConfigError, since it would be emulated and slow.
The *resolved* value is what runs record in their provenance and score-cache keys.
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
    return "bf16" if cpu_has_amx() else "fp32"


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

"""Which parameters a task vector holds: floating-point tensors, tied weights once, the head if asked."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch

from fairmerge.vectors.checkpoint_io import TensorSpec, is_float_dtype

HEAD_PREFIXES = ("classifier.", "score.", "pre_classifier.")
"""Sequence-classification heads: BERT/RoBERTa/DistilBERT ``classifier``, decoder ``score``."""

_LAYER = re.compile(r"^(.*?\.\d+)\.")


def is_head_key(key: str) -> bool:
    """Whether a parameter belongs to the classification head (``classifier.*``, ``score.*``, ...)."""
    return any(key.startswith(p) or f".{p}" in key for p in HEAD_PREFIXES)


def layer_of(key: str) -> str:
    """Group a parameter name into its layer: ``bert.encoder.layer.3.x.weight`` → ``bert.encoder.layer.3``."""
    match = _LAYER.match(key)
    if match:
        return match.group(1)
    return key.rsplit(".", 1)[0] if "." in key else key


def tied_keys(state_dict: Mapping[str, torch.Tensor]) -> dict[str, str]:
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


def vector_keys(specs: Mapping[str, TensorSpec], aliases: Mapping[str, str], include_head: bool) -> list[str]:
    """Keys a vector holds: floating-point, not tied to an earlier key, head only if asked."""
    return [
        k
        for k, spec in specs.items()
        if is_float_dtype(spec.dtype) and k not in aliases and (include_head or not is_head_key(k))
    ]

"""Exact task vectors from peft LoRA adapters: ΔW = scaling · B @ A per adapted weight.

peft's ``add_weighted_adapter(combination_type="linear")`` mixes A and B matrices separately,
which is not Σ w·ΔW, so we never go through it: each adapted weight's ΔW is formed here in fp32
and named after the base model's parameter. Weights the adapter saves whole (``modules_to_save``
such as the classification head, trained biases) become deltas against the base checkpoint.

This module imports peft (and with it transformers); :mod:`fairmerge.vectors` imports it only
when an adapter is read."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch
from peft import LoraConfig, PeftConfig
from peft.utils import load_peft_weights
from peft.utils.other import get_pattern_key

from fairmerge.errors import VectorError
from fairmerge.vectors.checkpoint_io import CheckpointReader, TensorSpec
from fairmerge.vectors.checks import check_specs

_PREFIX = "base_model.model."
_LORA_PART = re.compile(
    r"^(?P<module>.+)\.(?P<part>lora_A|lora_B|lora_embedding_A|lora_embedding_B)(?:\.(?P<kind>weight|bias))?$"
)
_UNSUPPORTED_PARTS = ("lora_magnitude_vector", "trainable_tokens", "lora_E", "lora_T")


def _load_config(adapter_dir: Path) -> LoraConfig:
    """The adapter's ``peft.LoraConfig``, refusing other adapter types and DoRA."""
    if not (adapter_dir / "adapter_config.json").is_file():
        raise VectorError(f"{adapter_dir} is not a peft adapter directory (no adapter_config.json)")
    try:
        config = PeftConfig.from_pretrained(str(adapter_dir))
    except Exception as exc:  # peft raises ValueError/TypeError/JSONDecodeError for bad configs
        raise VectorError(f"cannot read adapter config in {adapter_dir}: {exc}") from exc
    if not isinstance(config, LoraConfig):
        raise VectorError(f"{adapter_dir} holds a {type(config).__name__}, only LoRA adapters are supported")
    if config.use_dora:
        raise VectorError(f"{adapter_dir} is a DoRA adapter: its update is not a fixed ΔW = s·B·A")
    return config


def _strip(key: str) -> str:
    """peft's saved name → the base model's (``base_model.model.`` prefix, wrapper segments gone)."""
    key = key.removeprefix(_PREFIX)
    return key.replace(".modules_to_save.", ".").replace(".base_layer.", ".")


DeltaFactory = Callable[[], torch.Tensor]


def lora_deltas(
    adapter_dir: str | os.PathLike[str], base: CheckpointReader, *, dtype: torch.dtype | None = None
) -> tuple[dict[str, DeltaFactory], dict[str, TensorSpec], dict[str, str]]:
    """How to compute each ΔW of a LoRA adapter (base parameter name → factory), their specs, metadata.

    Only the low-rank factors (and the few weights saved whole) are held; calling a factory forms
    that one ΔW = s·B·A in fp32 and returns it in the base parameter's dtype (or ``dtype``), so a
    vector built on these stays low-rank until each tensor is written.
    """
    adapter_dir = Path(adapter_dir)
    config = _load_config(adapter_dir)
    try:
        weights = load_peft_weights(str(adapter_dir), device="cpu")
    except Exception as exc:  # missing or corrupt adapter_model.safetensors / .bin
        raise VectorError(f"cannot read adapter weights in {adapter_dir}: {exc}") from exc

    factors: dict[str, dict[str, torch.Tensor]] = {}
    full: dict[str, torch.Tensor] = {}
    for raw_key, tensor in weights.items():
        key = _strip(raw_key)
        if any(part in key for part in _UNSUPPORTED_PARTS):
            raise VectorError(f"adapter tensor {raw_key!r} is of a kind fairmerge cannot turn into ΔW")
        match = _LORA_PART.match(key)
        if match:
            part = match["part"] + (".bias" if match["kind"] == "bias" else "")
            factors.setdefault(match["module"], {})[part] = tensor
        else:
            full[key] = tensor

    found: dict[str, tuple[tuple[int, ...], DeltaFactory]] = {}
    for module, parts in factors.items():
        found.update(_module_deltas(module, parts, config))
    for key, tensor in full.items():
        found[key] = (tuple(tensor.shape), partial(_full_delta, tensor, base, key))
    changed = check_specs(
        base.specs,
        [
            {
                k: TensorSpec(shape, base.specs[k].dtype if k in base.specs else torch.float32)
                for k, (shape, _) in found.items()
            }
        ],
        f"the base checkpoint {base.path}",
        [f"adapter {adapter_dir}"],
    )
    factories: dict[str, DeltaFactory] = {}
    specs: dict[str, TensorSpec] = {}
    for key in changed:
        shape, make = found[key]
        target = dtype or base.specs[key].dtype
        factories[key] = partial(_in_dtype, make, target)
        specs[key] = TensorSpec(shape, target)
    info = {
        "peft_type": "LORA",
        "lora_r": str(config.r),
        "lora_alpha": str(config.lora_alpha),
        "use_rslora": str(bool(config.use_rslora)).lower(),
        "adapter": str(adapter_dir),
    }
    return factories, specs, info


def _in_dtype(make: DeltaFactory, dtype: torch.dtype) -> torch.Tensor:
    return make().to(dtype)


def _full_delta(tensor: torch.Tensor, base: CheckpointReader, key: str) -> torch.Tensor:
    """A weight the adapter saves whole (``modules_to_save``, a trained bias) minus the base's."""
    return torch.sub(tensor.float(), base.get(key).float())


def _low_rank(a: torch.Tensor, b: torch.Tensor, scaling: float, transpose: bool) -> torch.Tensor:
    delta = (b.float() @ a.float()) * scaling
    return (delta.T if transpose else delta).contiguous()


def _module_deltas(
    module: str, parts: dict[str, torch.Tensor], config: LoraConfig
) -> dict[str, tuple[tuple[int, ...], DeltaFactory]]:
    """Shape and factory of ΔW (and Δbias with ``lora_bias``) of one adapted module."""
    embedding = "lora_embedding_A" in parts or "lora_embedding_B" in parts
    a_name, b_name = ("lora_embedding_A", "lora_embedding_B") if embedding else ("lora_A", "lora_B")
    if a_name not in parts or b_name not in parts:
        raise VectorError(f"adapter module {module!r} has only one of {a_name}/{b_name}")
    a, b = parts[a_name], parts[b_name]
    if a.dim() != 2 or b.dim() != 2:
        raise VectorError(f"adapter module {module!r} is not a linear or embedding LoRA (A is {a.dim()}-D)")
    ranks, alphas = config.rank_pattern or {}, config.alpha_pattern or {}
    rank = ranks.get(get_pattern_key(list(ranks), module), config.r)
    alpha = alphas.get(get_pattern_key(list(alphas), module), config.lora_alpha)
    if a.shape[0] != rank or b.shape[1] != rank:
        raise VectorError(f"adapter module {module!r} has rank {a.shape[0]} but its config says r={rank}")
    scaling = alpha / math.sqrt(rank) if config.use_rslora else alpha / rank
    transpose = bool(embedding or config.fan_in_fan_out)
    shape = (a.shape[1], b.shape[0]) if transpose else (b.shape[0], a.shape[1])
    out: dict[str, tuple[tuple[int, ...], DeltaFactory]] = {
        f"{module}.weight": (shape, partial(_low_rank, a, b, scaling, transpose))
    }
    if f"{b_name}.bias" in parts:
        bias = parts[f"{b_name}.bias"]
        out[f"{module}.bias"] = (tuple(bias.shape), partial(torch.mul, bias.float(), scaling))
    return out

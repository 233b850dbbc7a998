"""LoRA through ``peft``: target modules per architecture, a trained head, and merging into a checkpoint.

The attention query/value projections are adapted (peft's own per-architecture table, completed
for encoders it lacks); the classification head (``classifier`` / ``score`` / DistilBERT's
``pre_classifier``) is trained in full through ``modules_to_save``, because a random θ_base head
frozen would leave the adapter little to work with — unless ``trainable='body'`` asks for a frozen
head (sensible on a linear-probed θ_base).
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, TaskType, get_peft_model
from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
from transformers import PreTrainedModel
from transformers.pytorch_utils import Conv1D

from fairmerge.atomic import atomic_directory
from fairmerge.errors import ConfigError, ModelError
from fairmerge.inference import InputProcessor
from fairmerge.models import load_classifier, load_processor
from fairmerge.training.config import TrainConfig
from fairmerge.training.heads import head_modules

ADAPTER_DIR = "adapter"
"""Sub-directory of a LoRA cache entry that holds the peft adapter next to the merged checkpoint."""

_EXTRA_TARGETS: dict[str, list[str]] = {
    # model types peft's table lacks (peft 0.21): their attention projection names.
    "distilbert": ["q_lin", "v_lin"],
    "albert": ["query", "value"],
    "mpnet": ["q", "v"],
    "modernbert": ["Wqkv"],
    "phi3": ["qkv_proj"],
    # image classifiers; transformers 5 names ViT's attention query/value projections q_proj/v_proj
    "vit": ["q_proj", "v_proj"],
    "fairmerge_efficientnet_lite": ["_expand_conv", "_project_conv"],  # the blocks' 1×1 convolutions
}


def linear_layer_names(model: torch.nn.Module) -> list[str]:
    """Distinct last name components of the model's linear layers (what LoRA can target); 1×1
    convolutions count as linear layers (CNNs such as the embedded EfficientNet-Lite0)."""
    names = {
        name.rsplit(".", 1)[-1]
        for name, module in model.named_modules()
        if name and (isinstance(module, torch.nn.Linear | Conv1D) or _is_pointwise_conv(module))
    }
    return sorted(names)


def _is_pointwise_conv(module: torch.nn.Module) -> bool:
    return isinstance(module, torch.nn.Conv2d) and module.kernel_size == (1, 1) and module.groups == 1


def lora_target_modules(model: PreTrainedModel) -> list[str]:
    """The LoRA target modules for the model's architecture (``config.model_type``)."""
    model_type = getattr(model.config, "model_type", None)
    targets = _EXTRA_TARGETS.get(str(model_type)) or TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING.get(
        str(model_type)
    )
    if targets is None:
        raise ModelError(
            f"no LoRA target modules are known for model type {model_type!r}; set lora_target_modules in the "
            f"training config to some of this model's linear layers: {linear_layer_names(model)}"
        )
    return list(targets)


def at_rank(config: TrainConfig, rank: int) -> TrainConfig:
    """``config``'s LoRA at another rank, α kept: the update's scale α/r falls as the rank grows.

    The adapter adds (α/r)·B·A to each wrapped weight. Three rules were compared on HateXplain val
    at the ``--fast`` budget (400 posts, learning rate 1e-3, θ_base linear-probed; one seed,
    measured under load; majority class 0.517): rank 8 at α = 16 reached val accuracy 0.743 (loss
    0.554); rank 64 at α = 16 0.740 (loss 0.564); rank 64 at α = 45, rsLoRA's rank-stabilised
    α·√(r'/r) (Kalajdzievski 2023, arXiv:2312.03732), 0.680 (loss 0.720); α grown with r (128,
    the scale of rank 8 at every rank) nearly collapsed to one class on UTKFace (README). So α
    stays ``config``'s, chosen on validation; with Adam this keeps the weight update's size near
    rank 8's at the same learning rate.
    """
    return config.replace(lora_r=rank)


def apply_lora(model: PreTrainedModel, config: TrainConfig) -> PeftModel:
    """Wrap ``model`` with fresh LoRA adapters (initialised from ``config.seed``) and a trainable head.

    ``config.trainable`` 'body' keeps the head frozen; 'head' is not a LoRA fine-tune (an error).
    """
    if config.trainable == "head":
        raise ConfigError("trainable='head' (a linear probe) is not a LoRA fine-tune; use method 'fft'")
    targets = list(config.lora_target_modules) if config.lora_target_modules else lora_target_modules(model)
    present = set(linear_layer_names(model))
    missing = [t for t in targets if t not in present]
    if missing:
        raise ModelError(
            f"LoRA target module(s) {missing} are not linear layers of this {model.config.model_type} model; "
            f"its linear layers are: {sorted(present)}"
        )
    lora_config = LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=targets,
        modules_to_save=None if config.trainable == "body" else head_modules(model),
    )
    torch.manual_seed(config.seed)  # LoRA's A matrices are drawn at random
    with _quiet_peft():
        peft_model = get_peft_model(model, lora_config)
    if config.trainable == "body":  # peft's SEQ_CLS task adds the head to modules_to_save anyway
        for name, param in peft_model.named_parameters():
            if "modules_to_save" in name:
                param.requires_grad_(False)
    return peft_model  # type: ignore[return-value]


def save_merged(
    peft_model: PeftModel, out_dir: str | os.PathLike[str], tokenizer: InputProcessor | None
) -> PreTrainedModel:
    """Merge the adapters into the weights (W + s·B·A) and save a plain checkpoint into ``out_dir``.

    ``peft_model`` is consumed: peft unloads its adapters in place.
    """
    merged = peft_model.merge_and_unload()
    merged.save_pretrained(out_dir)
    if tokenizer is not None:
        tokenizer.save_pretrained(out_dir)
    return merged  # type: ignore[no-any-return]


def merge_lora(
    adapter: str | os.PathLike[str] | PeftModel,
    out_dir: str | os.PathLike[str],
    *,
    base_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """Write a full checkpoint (base + merged adapter) that ``load_classifier`` loads as is.

    ``adapter`` is a peft adapter directory (its base is ``base_dir`` or the adapter config's
    ``base_model_name_or_path``) or an in-memory ``PeftModel`` (which is consumed). The output is
    written atomically.
    """
    out = Path(out_dir)
    if isinstance(adapter, PeftModel):
        peft_model = adapter
        base = base_dir or getattr(
            peft_model.peft_config[peft_model.active_adapter], "base_model_name_or_path", None
        )
    else:
        adapter_path = Path(adapter)
        if not (adapter_path / "adapter_config.json").is_file():
            raise ModelError(f"{adapter_path} is not a peft adapter directory (no adapter_config.json)")
        base = base_dir or LoraConfig.from_pretrained(str(adapter_path)).base_model_name_or_path
        if base is None:
            raise ModelError(f"adapter {adapter_path} does not name its base model; pass base_dir")
        try:
            with _quiet_peft():
                peft_model = PeftModel.from_pretrained(
                    load_classifier(str(base), device="cpu"), str(adapter_path)
                )
        except (OSError, ValueError, RuntimeError) as exc:
            raise ModelError(f"cannot load adapter {adapter_path} onto base {base}: {exc}") from exc
    tokenizer = load_processor(str(base)) if base is not None and Path(base).is_dir() else None
    with atomic_directory(out) as tmp:
        save_merged(peft_model, tmp, tokenizer)
    return out


@contextlib.contextmanager
def _quiet_peft() -> Iterator[None]:
    """peft 0.21 calls an API that transformers 5 deprecates (a FutureWarning users cannot act on)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        yield

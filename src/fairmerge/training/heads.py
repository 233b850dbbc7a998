"""Which parameters form a sequence-classification model's head, for freezing the head or the body."""

from __future__ import annotations

import torch

from fairmerge.errors import ModelError


def head_modules(model: torch.nn.Module) -> list[str]:
    """Top-level modules outside the backbone that hold parameters: the classification head."""
    backbone = getattr(model, "base_model_prefix", "")
    heads = [
        name
        for name, module in model.named_children()
        if name != backbone and any(True for _ in module.parameters())
    ]
    if not heads:
        raise ModelError(
            f"cannot find the classification head of {type(model).__name__}: no parameterised module "
            f"besides the backbone {backbone!r}"
        )
    return heads


def head_parameter_names(model: torch.nn.Module) -> set[str]:
    """Full names of the head's parameters (``classifier.weight`` …)."""
    prefixes = tuple(f"{name}." for name in head_modules(model))
    return {name for name, _ in model.named_parameters() if name.startswith(prefixes)}

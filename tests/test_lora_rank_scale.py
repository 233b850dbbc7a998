"""lora[r=64]: the rank reaches every adapter with the scale α/r of lora's α (issue #26)."""

from __future__ import annotations

import pytest
from training_tiny import one_torch_thread, tiny_model  # noqa: F401 (autouse fixture)

from fairmerge.training import TrainConfig
from fairmerge.training.lora import apply_lora, at_rank


def test_a_larger_rank_changes_only_the_rank() -> None:
    base = TrainConfig(lora_r=8, lora_alpha=16, learning_rate=1e-3)
    assert at_rank(base, 8) == base  # the base rank keeps its config (and so its cache key)
    wide = at_rank(base, 64)
    assert (wide.lora_r, wide.lora_alpha) == (64, 16)
    assert wide.replace(lora_r=8) == base  # nothing else changes


def test_the_rank_and_the_scale_reach_every_adapter() -> None:
    config = at_rank(TrainConfig(lora_r=8, lora_alpha=16), 64)
    peft_model = apply_lora(tiny_model("bert"), config)
    adapted = [m for _, m in peft_model.named_modules() if hasattr(m, "lora_A") and m.lora_A]
    assert adapted
    for module in adapted:
        assert module.r["default"] == 64 and module.lora_A["default"].weight.shape[0] == 64
        assert module.scaling["default"] == pytest.approx(16 / 64)  # α/r, α = lora's 16

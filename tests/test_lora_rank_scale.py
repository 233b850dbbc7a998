"""lora[r=64]: the rank reaches the adapter and its scale is rank-stabilised (rsLoRA), issue #26."""

from __future__ import annotations

import math

import pytest
from training_tiny import one_torch_thread, tiny_model  # noqa: F401 (autouse fixture)

from fairmerge.training import TrainConfig
from fairmerge.training.lora import apply_lora, at_rank


def test_a_larger_rank_keeps_the_rank_stable_scale_of_the_base_rank() -> None:
    base = TrainConfig(lora_r=8, lora_alpha=16, learning_rate=1e-3)
    assert at_rank(base, 8) == base  # the base rank keeps its α (and so its cache key)
    wide = at_rank(base, 64)
    assert (wide.lora_r, wide.lora_alpha) == (64, 45)  # 16·√8 = 45.25
    assert wide.replace(lora_r=8, lora_alpha=16) == base  # nothing else changes
    # scale·√r is the rsLoRA invariant: (α'/r')·√r' equals (α/r)·√r up to α's rounding
    assert wide.lora_alpha / 64 * math.sqrt(64) == pytest.approx(16 / 8 * math.sqrt(8), rel=0.01)
    # neither α/r kept (scale 2, too large at r = 64) nor α kept (scale 0.25, too small)
    assert 16 / 64 < wide.lora_alpha / 64 < 2


def test_the_rank_and_the_scale_reach_every_adapter() -> None:
    config = at_rank(TrainConfig(lora_r=8, lora_alpha=16), 64)
    peft_model = apply_lora(tiny_model("bert"), config)
    adapted = [m for _, m in peft_model.named_modules() if hasattr(m, "lora_A") and m.lora_A]
    assert adapted
    for module in adapted:
        assert module.r["default"] == 64 and module.lora_A["default"].weight.shape[0] == 64
        assert module.scaling["default"] == pytest.approx(45 / 64)

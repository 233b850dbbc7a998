"""LoRA adapters: the exact ΔW = s·B·A vector applied to the base equals peft's merge_and_unload."""

from __future__ import annotations

import pytest
import torch
from peft import LoraConfig, TaskType, get_peft_model
from vectors_tiny import input_ids, save, tiny_bert

from fairmerge.errors import VectorError
from fairmerge.vectors import TaskVector

VARIANTS = {
    "plain": dict(r=4, lora_alpha=8, target_modules=["query", "value"]),
    "rslora+patterns+embedding+bias": dict(
        r=4,
        lora_alpha=8,
        use_rslora=True,
        target_modules=["query", "key", "dense", "word_embeddings"],
        rank_pattern={"key": 2},
        alpha_pattern={"layer.1.attention.self.query": 3},
        lora_bias=False,
        bias="lora_only",
    ),
}


def _adapter(tmp_path, variant: str, seed: int = 0):
    base = tiny_bert(0)
    base_dir = save(base, tmp_path / "base", tokenizer=False)
    config = LoraConfig(task_type=TaskType.SEQ_CLS, modules_to_save=["classifier"], **VARIANTS[variant])
    model = get_peft_model(tiny_bert(0), config)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad:  # B starts at zero: give every trained tensor a value
                param.add_(0.1 * torch.randn(param.shape, generator=generator))
    model.save_pretrained(str(tmp_path / "adapter"))
    return base, base_dir, model


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_lora_vector_applied_to_base_equals_merge_and_unload(tmp_path, variant):
    base, base_dir, peft_model = _adapter(tmp_path, variant)
    merged = peft_model.merge_and_unload().eval()
    tau = TaskVector.from_lora_adapter(tmp_path / "adapter", base_dir)
    assert "classifier.weight" in tau and "bert.encoder.layer.0.attention.self.query.weight" in tau
    assert not any("lora" in k for k in tau)
    rebuilt = tau.apply_to(base.state_dict(), 1.0)
    expected = merged.state_dict()
    assert rebuilt.keys() == expected.keys()
    for key in expected:
        torch.testing.assert_close(rebuilt[key], expected[key], rtol=0, atol=1e-5, msg=key)
    applied = tiny_bert(0)
    tau.apply_to(applied, 1.0)
    with torch.no_grad():
        torch.testing.assert_close(
            applied.eval()(**input_ids()).logits, merged(**input_ids()).logits, rtol=1e-5, atol=1e-5
        )
    assert tau.metadata["peft_type"] == "LORA"
    without_head = TaskVector.from_lora_adapter(tmp_path / "adapter", base_dir, include_head=False)
    assert "classifier.weight" not in without_head


def test_dora_and_non_adapters_are_refused(tmp_path):
    base_dir = save(tiny_bert(0), tmp_path / "base", tokenizer=False)
    config = LoraConfig(task_type=TaskType.SEQ_CLS, r=2, target_modules=["query"], use_dora=True)
    get_peft_model(tiny_bert(0), config).save_pretrained(str(tmp_path / "dora"))
    with pytest.raises(VectorError, match="DoRA"):
        TaskVector.from_lora_adapter(tmp_path / "dora", base_dir)
    with pytest.raises(VectorError, match="not a peft adapter"):
        TaskVector.from_lora_adapter(base_dir, base_dir)

"""LoRA: target modules per architecture, the head trained too, merging into a full checkpoint."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from training_tiny import (
    one_torch_thread,  # noqa: F401 (autouse fixture)
    save_tiny_bert,
    tiny_dataset,
    tiny_model,
)

from fairmerge.efficientnet import EfficientNetLiteConfig, EfficientNetLiteForImageClassification
from fairmerge.errors import ModelError
from fairmerge.models import load_classifier
from fairmerge.training import (
    ADAPTER_DIR,
    TrainConfig,
    TrainingCache,
    lora_target_modules,
    make_base_checkpoint,
    merge_lora,
    train_lora,
)
from fairmerge.training.lora import apply_lora, head_modules


@pytest.mark.parametrize(
    ("model_type", "targets", "head"),
    [
        ("bert", ["query", "value"], ["classifier"]),
        ("distilbert", ["q_lin", "v_lin"], ["pre_classifier", "classifier"]),
        ("llama", ["q_proj", "v_proj"], ["score"]),
        ("qwen2", ["q_proj", "v_proj"], ["score"]),
    ],
)
def test_targets_and_head_per_architecture(model_type: str, targets: list[str], head: list[str]) -> None:
    model = tiny_model(model_type)
    assert lora_target_modules(model) == targets
    assert head_modules(model) == head
    base = {k: v.clone() for k, v in model.state_dict().items()}
    peft_model = apply_lora(model, TrainConfig(lora_r=4))
    trainable = {n for n, p in peft_model.named_parameters() if p.requires_grad}
    assert any("lora_A" in n for n in trainable)
    assert all(
        any(f".{h}." in n for h in head) for n in trainable if "lora_" not in n
    )  # only head besides LoRA
    with torch.no_grad():  # pretend training happened, then merge
        for param in peft_model.parameters():
            if param.requires_grad:
                param.add_(0.05)
    x = torch.randint(1, 100, (3, 9))
    peft_model.eval()
    expected = peft_model(input_ids=x).logits
    merged = peft_model.merge_and_unload()
    assert set(merged.state_dict()) == set(base)  # same keys as θ_base: task vectors line up
    torch.testing.assert_close(merged(input_ids=x).logits, expected, atol=1e-5, rtol=1e-5)
    changed = {k.rsplit(".", 2)[-2] for k, v in merged.state_dict().items() if not torch.equal(v, base[k])}
    assert changed == set(targets) | set(head)


def test_unknown_architecture_lists_linear_layers() -> None:
    model = tiny_model("bert")
    model.config.model_type = "mystery-net"
    with pytest.raises(ModelError, match=r"mystery-net.*\['classifier', 'dense', 'key', 'query', 'value'\]"):
        lora_target_modules(model)
    with pytest.raises(ModelError, match=r"q_proj.*not linear layers"):
        apply_lora(tiny_model("bert"), TrainConfig(lora_target_modules=("q_proj",)))


def test_train_lora_stores_adapter_and_merged_checkpoint(tmp_path: Path) -> None:
    cache = TrainingCache(tmp_path / "cache")
    base = make_base_checkpoint(str(save_tiny_bert(tmp_path / "tiny")), seed=0, cache=cache)
    config = TrainConfig(epochs=1, batch_size=16, lora_r=4)
    entry = train_lora(tiny_dataset(), base_dir=base, config=config, cache=cache, progress=False)
    assert json.loads((entry / ADAPTER_DIR / "adapter_config.json").read_text())["r"] == 4
    merged = load_file(str(entry / "model.safetensors"))
    base_sd = load_file(str(base / "model.safetensors"))
    assert set(merged) == set(base_sd)
    changed = {k for k in merged if not torch.equal(merged[k], base_sd[k])}
    assert changed and all(".query." in k or ".value." in k or k.startswith("classifier.") for k in changed)
    # merging the stored adapter again gives the stored merged checkpoint
    again = merge_lora(entry / ADAPTER_DIR, tmp_path / "merged", base_dir=base)
    remerged = load_file(str(again / "model.safetensors"))
    for key, value in merged.items():
        torch.testing.assert_close(remerged[key], value)
    load_classifier(str(again))  # a plain checkpoint transformers loads as is
    with pytest.raises(ModelError, match="not a peft adapter"):
        merge_lora(base, tmp_path / "nope")
    assert not (tmp_path / "nope").exists()


def _tiny_efficientnet() -> torch.nn.Module:
    torch.manual_seed(0)
    return EfficientNetLiteForImageClassification(EfficientNetLiteConfig(image_size=32, num_labels=2))


@pytest.mark.parametrize("rank", [8, 64])
@pytest.mark.parametrize("make_model", [lambda: tiny_model("bert"), _tiny_efficientnet], ids=["bert", "cnn"])
def test_lora_rank_reaches_every_adapter(rank: int, make_model: Callable[[], torch.nn.Module]) -> None:
    model = make_model()
    targets = set(lora_target_modules(model))
    wrapped_names = [n for n, _ in model.named_modules() if n.rsplit(".", 1)[-1] in targets]
    peft_model = apply_lora(model, TrainConfig(lora_r=rank))
    adapted = {n: m for n, m in peft_model.named_modules() if hasattr(m, "lora_A") and m.lora_A}
    assert len(adapted) == len(wrapped_names) > 0
    total = 0
    for name, module in adapted.items():
        layer = module.base_layer
        fan_in, fan_out = (
            (layer.in_features, layer.out_features)
            if isinstance(layer, torch.nn.Linear)
            else (layer.in_channels, layer.out_channels)  # a 1x1 convolution
        )
        count = sum(p.numel() for p in (*module.lora_A.parameters(), *module.lora_B.parameters()))
        assert count == rank * (fan_in + fan_out), name
        total += count
    lora_params = sum(p.numel() for n, p in peft_model.named_parameters() if "lora_" in n and p.requires_grad)
    assert lora_params == total

